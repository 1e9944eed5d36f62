"""Live view, configuration and journal over the real mpremote against the
simulated board; the simulated board's own clean-up."""

import pytest

import protocol
from bench_tools import config, journal, live, mpr, simulated_board
from bench_tools.simulated_board import SimulatedBoard

pytestmark = pytest.mark.skipif(simulated_board.socat_path() is None, reason="socat is missing: apt-get install socat")


@pytest.fixture(scope="module")
def board():
    with SimulatedBoard(preload=True) as b:
        b.set_blackbody(40.0)
        yield b


class Sink:
    def __init__(self):
        self.text = ""

    def write(self, s):
        self.text += s

    def flush(self):
        pass

    def isatty(self):
        return False


def test_live_view_streams_frames_to_a_terminal_map_and_pngs(board, tmp_path):
    out = Sink()
    n, files = live.run(board.url, count=3, rate_hz=16, png_dir=tmp_path, out=out)
    assert n == 3 and len(files) == 3
    for f in files:
        assert open(f, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    assert out.text.count("frame ") == 3
    lines = out.text.splitlines()
    assert len(lines[0]) == 64  # two characters per pixel, 32 pixels
    assert "@@" in out.text and "  " in out.text  # the blackbody hot, the room cold
    assert "max 39.8" in out.text or "max 39.9" in out.text  # 40 degC at emissivity 0.99


def test_config_round_trip_and_a_bad_value_is_refused_before_the_device(board):
    cfg, reason = config.read(board.url)
    assert reason == "missing" and cfg == protocol.DeviceConfig()
    back = config.write(board.url, threshold_c=37.3, buzzer=False)
    assert back.threshold_c == pytest.approx(37.3) and back.buzzer is False
    cfg, reason = config.read(board.url)
    assert reason is None and cfg.threshold_c == pytest.approx(37.3)
    with pytest.raises(protocol.OutOfRange, match="threshold"):
        config.write(board.url, threshold_c=45.0)
    with pytest.raises(ValueError, match="unknown configuration field"):
        config.write(board.url, colour="red")


def test_journal_pull(board):
    events, counters = journal.pull(board.url)
    assert events == [] and counters is None  # no journal yet, and pulling did not create one
    assert not (board.flash / "journal.bin").exists()
    mpr.run(
        board.url,
        "exec",
        "import journal, protocol\nj = journal.Journal()\n"
        "j.append(protocol.ScreeningEvent(kind=protocol.EVENT_BOOT))\n"
        "j.append(protocol.ScreeningEvent(kind=protocol.EVENT_FAULT, outcome=protocol.FAULT_SENSOR_BUS))\n"
        "j.close()",
    )
    events, counters = journal.pull(board.url)
    assert [(e["seq"], e["kind_name"]) for e in events] == [(1, "boot"), (2, "fault")]
    assert events[1]["outcome"] == protocol.FAULT_SENSOR_BUS
    assert counters["next_seq"] == 3 and counters["acked"] == 0


def test_every_process_is_stopped_even_when_the_body_fails():
    with pytest.raises(RuntimeError, match="boom"):
        with SimulatedBoard() as b:
            mpr.run(b.url, "exec", "print(1)")
            mpr.run(b.url, "exec", "print(2)")
            pgid, root, port = b._proc.pid, b._root, b.port
            raise RuntimeError("boom")
    # socat and every board session it forked: gone, and reaped (no zombies)
    assert simulated_board.group_members(pgid, zombies=True) == []
    assert not root.exists()
    assert not simulated_board._listening(port)
