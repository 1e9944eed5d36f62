"""Boot the helmet firmware on the simulated board (MicroPython unix port).

Usage: micropython run_helmet.py [--scene RECORDING] [--no-sensor] [--blank-sensor] [--tof]

The thermal sensor is the virtual MLX90640 showing the first frame of a
scene recording (tools/scene), or a uniform 22 degC scene.  Prints the
firmware's own console output, then machine-readable lines for the host side
(tools/demo.py): EVENT <hex>, PWM <pin> <ms> <Hz> <duty>, FRAME <768 degC>
(one more frame read through the driver after boot), HEAP <firmware bytes>
<simulation bytes> <free bytes>.  The buzzer's sleeps skip board time, so the
boot chirp costs no real time.
"""

import binascii
import gc
import sys
import time
from array import array

import board
import simboard


def attach_sensor(args):
    if "--no-sensor" in args:
        return
    if "--blank-sensor" in args:  # answers on the bus, EEPROM all zeros
        simboard.attach_i2c(board.MLX90640_ADDRESS, simboard.RegisterDevice16())
        return
    import virtual_mlx90640

    sensor = virtual_mlx90640.VirtualMLX90640()
    sensor.set_scene(22.0)
    if "--scene" in args:
        from scene_player import ScenePlayer

        player = ScenePlayer(args[args.index("--scene") + 1])
        player.next()
        sensor.set_scene(player.frame)
        sensor.set_ambient(ta=player.ta_c)
    simboard.attach_i2c(board.MLX90640_ADDRESS, sensor)


def main(args):
    simboard.reset_board()
    skipped = [0]
    simboard.set_clock(lambda: time.ticks_add(time.ticks_ms(), skipped[0]))

    def sleep_ms(ms):
        skipped[0] += ms

    gc.collect()
    start = gc.mem_alloc()
    attach_sensor(args)
    if "--tof" in args:
        simboard.attach_i2c(board.VL53L1X_ADDRESS, simboard.RegisterDevice16())
    simboard.adc_values[board.BATTERY_PIN] = 41000  # about 3.9 V at the cell
    gc.collect()
    simulation = gc.mem_alloc() - start

    import main as firmware_main

    report, event = firmware_main.boot(sleep_ms)
    gc.collect()
    firmware = gc.mem_alloc() - start - simulation
    print("EVENT", binascii.hexlify(event).decode())
    for pin, timeline in simboard.pwm_timeline.items():
        for t, freq, duty in timeline:
            print("PWM", pin, t, freq, duty)
    if report.ok:
        image = array("f", bytes(4 * 768))
        report.sensor.camera.read_frame(image)
        print("FRAME", " ".join("%.2f" % t for t in image))
    print("HEAP", firmware, simulation, gc.mem_free())
    return 0 if report.ok else 3


sys.exit(main(sys.argv[1:]))
