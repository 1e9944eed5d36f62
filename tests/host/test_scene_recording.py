"""Recording export for the MicroPython side, the CLI and render speed."""

import json
import os
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest

from scene import Scenario, Scene, read_recording, read_truth, write_recording

REPO = Path(__file__).resolve().parents[2]


def test_recording_round_trip_is_exact(tmp_path):
    path = str(tmp_path / "crowd.htrs")
    sc = Scene(Scenario.load("crowd_walk"), seed=3)
    n = write_recording(sc, path, rate_hz=4, duration_s=2.5)
    assert n == 10
    rec = read_recording(path)
    assert rec.rate_hz == 4.0 and rec.object_c.shape == (10, 24, 32) and rec.object_c.dtype == np.float32
    for k in range(n):
        frame = Scene(Scenario.load("crowd_walk"), seed=3).render(k / 4, subpage_rate_hz=4)
        assert rec.t_s[k] == np.float32(k / 4) and rec.ta_c[k] == np.float32(frame.ta_c)
        assert np.array_equal(rec.object_c[k], frame.object_c)
    truth = read_truth(path)
    assert truth["rate_hz"] == 4 and truth["seed"] == 3 and len(truth["frames"]) == n
    assert truth["frames"][8]["t_s"] == 2.0
    assert {p["id"] for p in truth["frames"][0]["people"]} >= {"walker1", "febrile", "mask", "glasses"}


def test_binary_layout_is_as_documented(tmp_path):
    path = str(tmp_path / "r.htrs")
    write_recording(Scene(Scenario.load("hot_objects")), path, rate_hz=2, duration_s=1.0)
    data = Path(path).read_bytes()
    assert data[:4] == b"HTRS"
    assert struct.unpack_from("<HHHfI", data, 4) == (1, 32, 24, 2.0, 2)
    assert len(data) == 18 + 2 * (8 + 768 * 4)
    t1, _ta = struct.unpack_from("<ff", data, 18 + 3080)
    assert t1 == 0.5
    first = struct.unpack_from("<768f", data, 18 + 8)
    rec = read_recording(path)
    assert np.array_equal(np.array(first, dtype=np.float32).reshape(24, 32), rec.object_c[0])


def test_corrupt_recordings_are_rejected(tmp_path):
    path = tmp_path / "r.htrs"
    write_recording(Scene(Scenario.load("hot_objects")), str(path), rate_hz=1, duration_s=1.0)
    data = path.read_bytes()
    path.write_bytes(data[:-4])
    with pytest.raises(ValueError, match="expected"):
        read_recording(str(path))
    path.write_bytes(b"XXXX" + data[4:])
    with pytest.raises(ValueError, match="not an HTRS"):
        read_recording(str(path))


def run_cli(*args, cwd):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO / "tools"), str(REPO / "shared")]))
    return subprocess.run([sys.executable, "-m", "scene", *args], cwd=cwd, env=env, capture_output=True, text=True)


def png_pixels(path):
    data = Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    w, h = struct.unpack(">II", data[16:24])
    idat, pos = b"", 8
    while pos < len(data):
        (length,) = struct.unpack_from(">I", data, pos)
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        assert zlib.crc32(kind + body) == struct.unpack_from(">I", data, pos + 8 + length)[0]
        if kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    assert len(raw) == h * (1 + 3 * w)
    return w, h


def test_cli_render_and_record(tmp_path):
    r = run_cli("render", "crowd_walk", "--t", "3.0", "--png", "out.png", "--boxes", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "walker1" in r.stdout
    assert png_pixels(tmp_path / "out.png") == (320, 240)
    r = run_cli("record", "single_distance_sweep", "out.htrs", "--rate", "8", "--duration", "1", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    rec = read_recording(str(tmp_path / "out.htrs"))
    assert len(rec.t_s) == 8
    assert json.loads((tmp_path / "out.htrs.truth.json").read_text())["frames"][0]["people"][0]["id"] == "subject"


def test_cli_reports_invalid_scenarios(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"version": 1, "name": "b", "ambient_c": 99}))
    r = run_cli("render", str(bad), cwd=tmp_path)
    assert r.returncode == 2 and "ambient_c: 99 is out of range" in r.stderr


def test_render_is_fast():
    # Budget: well under 50 ms per frame.  Typical here: 1-7 ms for the crowd.
    sc = Scene(Scenario.load("crowd_walk"), seed=0)
    sc.render(0.0)
    times = []
    for t in np.linspace(0.0, 20.0, 41):
        t0 = time.perf_counter()
        sc.render(float(t))
        times.append(time.perf_counter() - t0)
    assert float(np.median(times)) < 0.025
