"""The blackbody calibration record on the helmet's flash: what the helmet
screens with, and what it does when the record is missing or damaged."""

INTERPRETERS = ("micropython",)

import os  # noqa: E402

import calibration  # noqa: E402
import calstore  # noqa: E402

BENCH_FIT = [(30.0, 30.4), (35.0, 35.3), (40.0, 40.2)]  # (blackbody, sensor) degC


def test_missing_record_means_uncalibrated_and_says_so():
    cal, why = calstore.load("nothing_here.json")
    assert cal == calibration.IDENTITY and why == "missing"
    assert cal.uncertainty_c >= calibration.UNCALIBRATED_UNCERTAINTY_C


def test_store_load_round_trip_replaces_the_old_record():
    first = calibration.fit_calibration(BENCH_FIT)
    calstore.store(first)
    got, why = calstore.load()
    assert why is None and got == first
    assert got.uncertainty_c < calibration.UNCALIBRATED_UNCERTAINTY_C
    second = calibration.fit_calibration([(t, t) for t in (30.0, 35.0, 40.0)])
    calstore.store(second)
    assert calstore.load() == (second, None)
    assert calstore.PATH + ".tmp" not in os.listdir()


def test_damaged_record_falls_back_to_uncalibrated_with_the_reason():
    calstore.store(calibration.fit_calibration(BENCH_FIT))
    with open(calstore.PATH) as f:
        text = f.read()
    with open(calstore.PATH, "w") as f:
        f.write(text[: len(text) // 2])  # cut short
    cal, why = calstore.load()
    assert cal == calibration.IDENTITY
    assert why.startswith("invalid")


def test_power_cut_between_remove_and_rename_keeps_the_new_record():
    new = calibration.fit_calibration(BENCH_FIT)
    with open(calstore.PATH + ".tmp", "w") as f:
        f.write(new.to_json())  # store() got as far as removing the old file
    assert calstore.load() == (new, None)
