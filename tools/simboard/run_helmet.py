"""Boot the helmet firmware on the simulated board (MicroPython unix port).

Usage: micropython run_helmet.py [--no-sensor] [--tof] [--nack-sensor]

Prints the firmware's own console output, then machine-readable lines for
the host side (tools/demo.py):  EVENT <hex>, PWM <pin> <ms> <Hz> <duty>,
HEAP <bytes free>.  The board clock is simulated, so the boot chirp takes
no real time.
"""

import binascii
import gc
import sys

import board
import simboard


def main(args):
    simboard.reset_board()
    now = [0]
    simboard.set_clock(lambda: now[0])

    def sleep_ms(ms):
        now[0] += ms

    if "--no-sensor" not in args:
        # Until the virtual MLX90640 lands, the sensor is a bare register file:
        # it answers the bus like the part does, nothing more.
        simboard.attach_i2c(board.MLX90640_ADDRESS, simboard.RegisterDevice16())
    if "--nack-sensor" in args:
        simboard.inject_i2c_fault(board.MLX90640_ADDRESS, "nack", count=-1)
    if "--tof" in args:
        simboard.attach_i2c(board.VL53L1X_ADDRESS, simboard.RegisterDevice16())
    simboard.adc_values[board.BATTERY_PIN] = 41000  # about 3.9 V at the cell

    import main as firmware_main

    report, event = firmware_main.boot(sleep_ms)
    print("EVENT", binascii.hexlify(event).decode())
    for pin, timeline in simboard.pwm_timeline.items():
        for t, freq, duty in timeline:
            print("PWM", pin, t, freq, duty)
    gc.collect()
    print("HEAP", gc.mem_free(), gc.mem_alloc())
    return 0 if report.ok else 3


sys.exit(main(sys.argv[1:]))
