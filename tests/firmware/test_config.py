"""Device configuration on flash: round trip, and defaults with a reason."""

INTERPRETERS = ("micropython",)

import config  # noqa: E402
import protocol  # noqa: E402
from checks import raises  # noqa: E402


def test_missing_file_gives_defaults_and_says_so():
    cfg, why = config.load("nothing_here.cfg")
    assert cfg == protocol.DeviceConfig()
    assert why == "missing"


def test_save_load_round_trip():
    cfg = protocol.DeviceConfig(threshold_c=37.3, skin_to_core_offset_c=1.6, confirm_frames=5, buzzer=False)
    config.save(cfg)
    got, why = config.load()
    assert why is None
    assert got == cfg
    config.save(protocol.DeviceConfig(threshold_c=38.5))  # replaces the old file
    assert config.load()[0].threshold_c == 38.5


def test_corrupt_file_falls_back_with_reason():
    config.save(protocol.DeviceConfig(threshold_c=37.3))
    with open(config.PATH, "rb") as f:
        data = bytearray(f.read())
    data[6] ^= 0x01  # one flipped bit in the threshold
    with open(config.PATH, "wb") as f:
        f.write(data)
    cfg, why = config.load()
    assert cfg == protocol.DeviceConfig()
    assert why.startswith("corrupt") and "checksum" in why
    with open(config.PATH, "wb") as f:
        f.write(b"HCF1short")
    assert config.load()[1].startswith("corrupt")


def test_out_of_range_values_are_refused():
    with raises(protocol.OutOfRange):
        config.save(protocol.DeviceConfig(threshold_c=42.0))
