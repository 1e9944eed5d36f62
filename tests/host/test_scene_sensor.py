"""Sensor model: noise level and its rate dependence, reproducibility, Ta."""

import numpy as np
import pytest

from scene import Scenario, Scene
from scene.builders import person, scenario


def flat_scene(seed=0, **sensor):
    d = scenario(ambient_c=25.0)
    d["sensor"].update(sensor)
    return Scene(Scenario.from_dict(d), seed)


@pytest.mark.parametrize("rate, rms", [(1, 0.1), (4, 0.2), (16, 0.4)])
def test_noise_rms_grows_with_sqrt_rate(rate, rms):
    sc = flat_scene()
    frames = np.array([sc.render(k / rate, subpage_rate_hz=rate).object_c for k in range(200)])
    err = frames - 25.0
    assert float(np.sqrt(np.mean(err**2))) == pytest.approx(rms, rel=0.03)
    assert abs(float(err.mean())) < 0.1 * rms


def test_noise_is_independent_between_frames_and_pixels():
    sc = flat_scene()
    a = sc.render(0.0, subpage_rate_hz=1).object_c.astype(np.float64) - 25.0
    b = sc.render(1.0, subpage_rate_hz=1).object_c.astype(np.float64) - 25.0
    assert abs(np.corrcoef(a.ravel(), b.ravel())[0, 1]) < 0.15
    assert abs(np.corrcoef(a[:, :-1].ravel(), a[:, 1:].ravel())[0, 1]) < 0.15


def test_same_seed_same_frames_in_any_order():
    d = Scenario.load("crowd_walk")
    s1, s2 = Scene(d, seed=7), Scene(d, seed=7)
    times = [0.0, 3.25, 7.5, 12.0]
    first = [s1.render(t).object_c for t in times]
    second = [s2.render(t).object_c for t in reversed(times)][::-1]
    for a, b in zip(first, second, strict=True):
        assert np.array_equal(a, b)
    assert s1.render(3.25).truth_dict() == s2.render(3.25).truth_dict()
    other = Scene(d, seed=8).render(3.25).object_c
    assert not np.array_equal(other, first[1])


def test_noise_off_is_deterministic_across_seeds():
    d = Scenario.from_dict(scenario([person()]))
    assert np.array_equal(Scene(d, 1).render(2.0, noise=False).object_c, Scene(d, 2).render(2.0, noise=False).object_c)


def test_sensor_ta_warms_up_to_a_plateau():
    sc = flat_scene(power_on_s=0.0, self_heating_k=6.0, warmup_tau_s=300.0)
    ta = [sc.render(t, noise=False).ta_c for t in (0.0, 60.0, 300.0, 900.0, 3000.0)]
    assert ta[0] == pytest.approx(25.0)
    assert all(a < b for a, b in zip(ta, ta[1:], strict=False))
    assert ta[2] == pytest.approx(25.0 + 6.0 * (1 - np.exp(-1)), abs=1e-9)
    assert ta[-1] == pytest.approx(31.0, abs=0.01)
    # To is compensated for the sensor's own temperature: a flat scene stays flat
    assert np.allclose(sc.render(60.0, noise=False).object_c, 25.0, atol=1e-4)


def test_warmup_bias_decays_and_offsets_apply():
    sc = flat_scene(power_on_s=0.0, warmup_bias_c=1.0, warmup_tau_s=100.0, offset_c=-0.5)
    assert float(sc.render(0.0, noise=False).object_c.mean()) == pytest.approx(25.5, abs=1e-4)
    assert float(sc.render(1000.0, noise=False).object_c.mean()) == pytest.approx(24.5, abs=1e-3)


def test_fixed_pattern_is_static_per_seed():
    sc = flat_scene(fixed_pattern_c=0.3)
    a, b = sc.render(0.0, noise=False).object_c, sc.render(5.0, noise=False).object_c
    assert np.array_equal(a, b) and 0.2 < float(np.std(a)) < 0.4


def test_chess_mode_mixes_two_subpage_times():
    sc = Scene(Scenario.load("crowd_walk"), seed=0)
    now, before = sc.render(3.0, noise=False), sc.render(3.0 - 1 / 8, noise=False)
    chess = sc.render(3.0, noise=False, chess=True)
    parity = np.add.outer(np.arange(24), np.arange(32)) % 2
    k = 24  # 3.0 s at 8 Hz: subpage 0, pixels with (row + col) even, is fresh
    assert np.array_equal(chess.object_c[parity == k % 2], now.object_c[parity == k % 2])
    assert np.array_equal(chess.object_c[parity != k % 2], before.object_c[parity != k % 2])
    assert not np.array_equal(now.object_c, before.object_c)  # people moved
    assert chess.truth_dict() == now.truth_dict()
