"""`make demo`: the most complete simulated deployment the project can run so far.

1. The helmet firmware boots under the real MicroPython interpreter on the
   simulated board, with the virtual MLX90640 looking at a scene from the
   thermal scene simulator: self-test (EEPROM check, one frame through the
   driver), boot chirp on the buzzer, and its first journal event, which the
   host decodes with the very same shared/protocol code.  The frame the
   driver read is shown beside the scene's ground truth.
2. The same boot with the thermal sensor unplugged, and with a sensor whose
   EEPROM is blank: a clear failure and a fault event, never a reading.
3. The physics of distance with shared/calibration, computed on both
   interpreters, which must agree exactly.
4. The whole chain (tools/demo_chain.py): the helmet's main loop under
   MicroPython screening a scripted crowd, the emulated radio (bridge,
   bluezoo, bleak), the companion app (a window when there is a display and
   --headless is not given) and the FHIR ingest server over HTTPS, checked
   against the scene's ground truth.  The last line is the app's summary,
   ``uploaded=N fever=N recheck=N clear=N``.
"""

import argparse
import binascii
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "shared"), str(REPO / "tools"), str(REPO / "tests" / "support")]

import calibration  # noqa: E402
import demo_chain  # noqa: E402
import demo_physics  # noqa: E402
import protocol  # noqa: E402
from mpharness import run_micropython_file  # noqa: E402
from scene import Scenario, Scene, write_recording  # noqa: E402

RUN_HELMET = REPO / "tools" / "simboard" / "run_helmet.py"
# The virtual sensor runs in the firmware's interpreter, so the process gets
# more than the helmet's 100 KB; the firmware's own share is reported apart.
HEAPSIZE = "320k"
SHADES = " .:-=+*#%@"


def boot_helmet(*flags):
    result = run_micropython_file(RUN_HELMET, args=flags, heapsize=HEAPSIZE)
    if result.returncode not in (0, 3):  # 3 = self-test failed, reported below
        sys.exit("the firmware crashed under MicroPython:\n" + result.stderr)
    console, events, pwm, heap, frame = [], [], [], None, None
    for line in result.stdout.splitlines():
        kind, _, rest = line.partition(" ")
        if kind == "FRAME":
            frame = [float(v) for v in rest.split()]
        elif kind == "EVENT":
            events.append(protocol.decode_event(binascii.unhexlify(rest)))
        elif kind == "PWM":
            pwm.append(tuple(int(v) for v in rest.split()))
        elif kind == "HEAP":
            heap = [int(v) for v in rest.split()]
        else:
            console.append(line)
    return console, events, pwm, heap, frame


FAULT_NAMES = {
    protocol.FAULT_SENSOR_BUS: "thermal sensor not answering on the bus",
    protocol.FAULT_SENSOR_DATA: "thermal sensor answering with bad data",
}


def describe_event(event):
    if event.kind == protocol.EVENT_BOOT:
        return "BOOT (seq %d)" % event.seq
    if event.kind == protocol.EVENT_FAULT:
        return "FAULT code %d = %s (seq %d)" % (event.outcome, FAULT_NAMES.get(event.outcome, "?"), event.seq)
    return repr(event)


def scene_recording(tmp):
    """A crowd_walk frame with the febrile walker closest to the officer but still in view."""
    scene = Scene(Scenario.load("crowd_walk"), seed=1)
    febrile = max(scene.render(0.0, noise=False).people, key=lambda p: p.core_c).id
    best_t, best_d = 0.0, 99.0
    for k in range(0, 400):
        people = {p.id: p for p in scene.render(k * 0.1, noise=False).people}
        walker = people[febrile]
        if walker.in_fov and not walker.hidden_by and 0.9 <= walker.distance_m < best_d:
            best_t, best_d = k * 0.1, walker.distance_m
    path = tmp / "demo.htrs"
    write_recording(_At(scene, best_t), str(path), rate_hz=1, duration_s=1)
    return path, scene.render(best_t, noise=False)


class _At:
    """The scene frozen at one time, for a one-frame recording."""

    def __init__(self, scene, t_s):
        self.scene, self.t_s = scene, t_s
        self.scenario, self.seed = scene.scenario, scene.seed

    def render(self, t_s, **kw):
        return self.scene.render(self.t_s + t_s, **kw)


def heat_map(frame, truth):
    lo, hi = 18.0, 36.0
    lines = []
    for row in range(24):
        cells = frame[row * 32 : (row + 1) * 32]
        lines.append("".join(SHADES[min(9, max(0, int((t - lo) / (hi - lo) * 9.99)))] for t in cells))
    notes = ["%s..%s C" % (lo, hi)]
    for p in truth.people:
        if p.in_fov:
            worn = (" wearing " + "+".join(p.wearing)) if p.wearing else ""
            notes.append("%s at %.1f m, core %.1f C%s" % (p.id, p.distance_m, p.core_c, worn))
    for d in truth.distractors:
        if d.in_fov:
            notes.append("%s at %.0f C" % (d.kind, d.temperature_c))
    return [line + "   " + (notes[i] if i < len(notes) else "") for i, line in enumerate(lines)]


def notes(pwm):
    """The buzzer's notes as (Hz, ms) from the PWM timeline."""
    return [(f, pwm[i + 1][1] - t) for i, (_, t, f, duty) in enumerate(pwm[:-1]) if duty > 0]


def section(title):
    print("\n== %s" % title)


def physics_rows_on_micropython():
    result = run_micropython_file(REPO / "tools" / "demo_physics.py", extra_path=(REPO / "tools",))
    if result.returncode != 0:
        sys.exit("demo_physics failed under MicroPython:\n" + result.stderr)
    return [tuple(float(v) for v in line.split()[1:]) for line in result.stdout.splitlines() if line.startswith("ROW")]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--headless", action="store_true", help="no app window, even when a display exists")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="helmet-demo-") as tmp:
        recording, truth = scene_recording(Path(tmp))
        section("1. Helmet boot: firmware under MicroPython, virtual MLX90640 looking at a crowd")
        console, events, pwm, heap, frame = boot_helmet("--scene", str(recording))
    for line in console:
        print("  helmet> " + line)
    print("  boot chirp (Hz, ms): %s" % notes(pwm))
    print("  first event, decoded on the host with shared/protocol: %s" % describe_event(events[0]))
    print("  heap: firmware %d B, simulated sensor %d B, free %d B" % tuple(heap))
    print("  the frame the driver read over the simulated I2C bus (scene truth on the right):")
    for line in heat_map(frame, truth):
        print("    " + line)
    booted_ok = events[0].kind == protocol.EVENT_BOOT

    section("2. The same boot with the thermal sensor unplugged, then with a blank EEPROM")
    fault_ok = True
    for flag, expected in (("--no-sensor", protocol.FAULT_SENSOR_BUS), ("--blank-sensor", protocol.FAULT_SENSOR_DATA)):
        console, fault_events, _, _, _ = boot_helmet(flag)
        for line in console:
            print("  helmet> " + line)
        print("  first event: %s" % describe_event(fault_events[0]))
        fault_ok = fault_ok and fault_events[0].kind == protocol.EVENT_FAULT and fault_events[0].outcome == expected

    section("3. Why distance matters: one face, 55-degree lens, shared/calibration on both interpreters")
    host_rows = demo_physics.table()
    mp_rows = physics_rows_on_micropython()
    identical = [tuple(float(v) for v in row) for row in host_rows] == mp_rows  # bit for bit
    print("  %-6s %-8s %-9s %-12s %-22s %s" % ("core", "distance", "skin frac", "pixel reads", "estimate", "outcome"))
    cleared_febrile = 0
    for core, distance, fraction, apparent, estimate, expanded, outcome in host_rows:
        shown = "%.2f +/- %.2f" % (estimate, expanded) if expanded != float("inf") else "%.2f +/- unknown" % estimate
        row = (core, "%.1f m" % distance, fraction, "%.2f C" % apparent, shown, calibration.OUTCOME_NAMES[outcome])
        print("  %-6.1f %-8s %-9.2f %-12s %-22s %s" % row)
        if core >= calibration.DEFAULT_THRESHOLD_C and outcome == calibration.CLEAR:
            cleared_febrile += 1
    print("  MicroPython and CPython results identical: %s" % ("yes" if identical else "NO"))

    section("4. The whole chain: helmet firmware -> emulated BLE -> companion app -> FHIR ingest server")
    chain_ok, summary = demo_chain.run_section(args.headless)

    ok = booted_ok and fault_ok and identical and cleared_febrile == 0 and chain_ok
    print(
        "\ndemo: boot=%s sensor_fault=%s interpreters_agree=%s febrile_reported_clear=%d chain=%s -> %s"
        % (
            "passed" if booted_ok else "FAILED",
            "reported" if fault_ok else "MISSED",
            "yes" if identical else "NO",
            cleared_febrile,
            "matches the scene" if chain_ok else "FAILED",
            "OK" if ok else "PROBLEM",
        )
    )
    print(summary)  # last: the app's summary line
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
