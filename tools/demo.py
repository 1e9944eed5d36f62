"""`make demo`: the most complete simulated deployment the project can run so far.

1. The helmet firmware boots under the real MicroPython interpreter (heap
   limited like an ESP32) on the simulated board: self-test, boot chirp on
   the buzzer, and its first journal event, which the host decodes with the
   very same shared/protocol code.
2. The same boot with the thermal sensor unplugged: a clear failure and a
   sensor fault event, never a reading.
3. The physics of distance with shared/calibration, computed on both
   interpreters, which must agree exactly.
"""

import argparse
import binascii
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "shared"), str(REPO / "tools"), str(REPO / "tests" / "support")]

import calibration  # noqa: E402
import demo_physics  # noqa: E402
import protocol  # noqa: E402
from mpharness import DEFAULT_HEAPSIZE, run_micropython_file  # noqa: E402

RUN_HELMET = REPO / "tools" / "simboard" / "run_helmet.py"


def boot_helmet(*flags):
    result = run_micropython_file(RUN_HELMET, args=flags)
    if result.returncode not in (0, 3):  # 3 = self-test failed, reported below
        sys.exit("the firmware crashed under MicroPython:\n" + result.stderr)
    console, events, pwm, heap = [], [], [], None
    for line in result.stdout.splitlines():
        kind, _, rest = line.partition(" ")
        if kind == "EVENT":
            events.append(protocol.decode_event(binascii.unhexlify(rest)))
        elif kind == "PWM":
            pwm.append(tuple(int(v) for v in rest.split()))
        elif kind == "HEAP":
            heap = [int(v) for v in rest.split()]
        else:
            console.append(line)
    return console, events, pwm, heap


def describe_event(event):
    if event.kind == protocol.EVENT_BOOT:
        return "BOOT (seq %d)" % event.seq
    if event.kind == protocol.EVENT_FAULT:
        return "FAULT code %d = thermal sensor not answering on the bus (seq %d)" % (event.outcome, event.seq)
    return repr(event)


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
    parser.add_argument("--headless", action="store_true", help="no window (there is no app window yet)")
    parser.parse_args(argv)

    section("1. Helmet boot: firmware under MicroPython (heap %s) on the simulated board" % DEFAULT_HEAPSIZE)
    console, events, pwm, heap = boot_helmet()
    for line in console:
        print("  helmet> " + line)
    print("  boot chirp (Hz, ms): %s" % notes(pwm))
    print("  first event, decoded on the host with shared/protocol: %s" % describe_event(events[0]))
    print("  heap after boot: %d B used, %d B free" % (heap[1], heap[0]))
    booted_ok = events[0].kind == protocol.EVENT_BOOT

    section("2. The same boot with the thermal sensor unplugged")
    console, fault_events, _, _ = boot_helmet("--no-sensor")
    for line in console:
        print("  helmet> " + line)
    print("  first event: %s" % describe_event(fault_events[0]))
    fault_ok = fault_events[0].kind == protocol.EVENT_FAULT

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

    ok = booted_ok and fault_ok and identical and cleared_febrile == 0
    print(
        "\ndemo: boot=%s sensor_fault=%s interpreters_agree=%s febrile_reported_clear=%d -> %s"
        % (
            "passed" if booted_ok else "FAILED",
            "reported" if fault_ok else "MISSED",
            "yes" if identical else "NO",
            cleared_febrile,
            "OK" if ok else "PROBLEM",
        )
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
