"""Bench tools for the fever-screening helmet: deploy, self-test, live view,
blackbody calibration, configuration and journal, all over mpremote.

    PYTHONPATH=tools:shared python -m bench_tools bring-up --port /dev/ttyUSB0
    PYTHONPATH=tools:shared python -m bench_tools --help

Every device operation is the real ``mpremote`` command line (``connect PORT
resume ...``; ``resume`` because a soft reset would end the simulated
board's process and restart a real helmet's firmware).  The simulated bench
board (``simulated_board.py``) serves the MicroPython unix port on a loopback
TCP port through socat, so the same commands run without hardware.
"""
