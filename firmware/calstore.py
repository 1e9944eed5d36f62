"""The blackbody calibration record on the helmet's flash.

The bench (tools/bench_tools calibrate -> firmware/bench.py) fits the sensor
against a blackbody and stores the shared calibration.Calibration record
here; the helmet reads it at boot and screens with it.  Without a valid
record the helmet screens uncalibrated: the identity with the larger
uncertainty of a sensor nobody checked (calibration.UNCALIBRATED_UNCERTAINTY_C),
so it clears fewer people, and says so in the boot report and in every
event (FLAG_CALIBRATED clear).
"""

import os

import calibration

PATH = "calibration.json"


def load(path=PATH):
    """(Calibration, reason): the stored record, or the identity and why it
    is not used ("missing" or "invalid: ..."); reason None = the record."""
    text = _read(path)
    if text is None:
        # a power cut between store()'s remove and rename leaves the new
        # record complete under its temporary name
        text = _read(path + ".tmp")
    if text is None:
        return calibration.IDENTITY, "missing"
    try:
        return calibration.Calibration.from_json(text), None
    except ValueError as exc:
        return calibration.IDENTITY, "invalid: %s" % exc


def _read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def store(cal, path=PATH):
    """Write the record so that a power cut leaves the old one or the new one
    (load() finds it), never half of either."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(cal.to_json())
    try:
        os.remove(path)  # FAT's rename does not replace an existing file
    except OSError:
        pass
    os.rename(tmp, path)
