"""The whole sensor chain: a simulated scene, through the virtual MLX90640 on
the simulated I2C bus, read by the firmware's driver under MicroPython.

The scene simulator renders the crowd walking toward the officer; the
recording is streamed into the virtual sensor, which turns temperatures into
raw words with the inverse datasheet model; the driver reads both subpages
over I2C and must give back the scene's temperatures.  Injected bus faults
and corrupted frames must surface as SensorError, never as a reading.
"""

import json

import pytest

from mpharness import run_micropython
from scene import Scenario, Scene, write_recording

LOOP = r"""
import array, json, sys
import machine, simboard, mlx90640, virtual_mlx90640
from scene_player import ScenePlayer

simboard.reset_board()
sensor = virtual_mlx90640.VirtualMLX90640()
simboard.attach_i2c(0x33, sensor)
cam = mlx90640.MLX90640(machine.I2C(0), refresh_rate=mlx90640.RATE_64HZ)
image = array.array("f", bytes(4 * 768))
player = ScenePlayer(%(path)r)
faults = %(faults)s
worst = 0.0
frames = 0
outcomes = []
while player.next():
    sensor.set_scene(player.frame)
    fault = faults.get(str(player.index))
    if fault == "nack":
        simboard.inject_i2c_fault(0x33, "nack", count=-1)
    elif fault:
        sensor.corrupt_next(fault)
    try:
        cam.read_frame(image)       # may mix the previous scene: discard
        ta = cam.read_frame(image)
    except mlx90640.SensorError as e:
        outcomes.append(["error", player.index, str(e)])
        simboard.clear_i2c_faults()
        continue
    err = max(abs(image[i] - player.frame[i]) for i in range(768))
    worst = max(worst, err)
    frames += 1
    outcomes.append(["frame", player.index, err])
print(json.dumps({"frames": frames, "worst": worst, "outcomes": outcomes}))
"""


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    path = tmp_path_factory.mktemp("scene") / "crowd.htrs"
    write_recording(Scene(Scenario.load("crowd_walk"), seed=7), str(path), rate_hz=4, duration_s=3.0)
    return path


def run_loop(path, faults=None):
    source = LOOP % {"path": str(path), "faults": json.dumps(faults or {})}
    lines = run_micropython(source, heapsize="400k").strip().splitlines()
    return json.loads(lines[-1])


def test_driver_recovers_the_scene_through_the_virtual_sensor(recording):
    result = run_loop(recording)
    assert result["frames"] == 12  # 3 s at 4 Hz, every frame read
    # The virtual sensor quantises raw words; its amplifier is set so one ADC
    # count is about 0.05 degC (tools/simboard/virtual_mlx90640.py).
    assert result["worst"] <= 0.06, result["outcomes"]


def test_faults_become_errors_never_readings(recording):
    faults = {"2": "nack", "4": "gain", "6": "vdd", "8": "control"}
    result = run_loop(recording, faults)
    errors = {o[1]: o[2] for o in result["outcomes"] if o[0] == "error"}
    assert sorted(errors) == [2, 4, 6, 8]
    assert "MLX90640" in errors[2]
    # Every frame that was returned is still the scene's, within quantisation.
    assert result["frames"] == 8
    assert result["worst"] <= 0.06
