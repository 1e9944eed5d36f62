"""BLE wire formats (shared/protocol.py): behaviour, under CPython and MicroPython.

Exact bytes and every decoder's rejections are pinned by the vectors
(test_protocol_vectors.py); this module tests what a table cannot: round
trips, rounding directions, buffers and offsets, allocation, reassembly.
Kept small on purpose: MicroPython compiles it inside a 100 KB heap.
"""

import calibration
import protocol as p
import protocol_control as pc
import protocol_frames as pf
import protocol_gatt as pg
import protocol_hts as ph
from checks import heapsize, near, raises
from protocol import LongRecord, OutOfRange, ProtocolError, ShortRecord, UnknownOpcode, UnknownVersion

INTERPRETERS = ("cpython", "micropython")

h = bytes.fromhex
INF = float("inf")
FULL_EVENT_HEX = "01120403020100f15365020f05100e0f1e0b0a05"
CONFIG_HEX = "01a60e7d000a00041948260400"


def _event(**kw):
    ev = p.ScreeningEvent(
        seq=0x01020304,
        time=1700000000,
        kind=p.EVENT_SCREENING,
        outcome=calibration.FEVER,
        core_c=38.42,
        core_u_c=0.1,
        skin_c=36.0,
        skin_u_c=0.3,
        distance_m=1.5,
        track_id=0x0A0B,
        flags=p.FLAG_TIME_VALID | p.FLAG_CALIBRATED,
    )
    for k in kw:
        setattr(ev, k, kw[k])
    return ev


def _config(**kw):
    c = p.DeviceConfig(37.5, 1.25, 0.1, 4, 2.5, 0.98, 4, False)
    for k in kw:
        setattr(c, k, kw[k])
    return c


def _no_alloc(fn):
    """Run fn with the MicroPython heap locked (any allocation raises
    MemoryError); under CPython just run it."""
    try:
        import micropython
    except ImportError:
        return fn()
    micropython.heap_lock()
    try:
        return fn()
    finally:
        micropython.heap_unlock()


def test_uuids_and_errors():
    assert (
        pg.HEALTH_THERMOMETER_SERVICE,
        pg.TEMPERATURE_MEASUREMENT,
        pg.TEMPERATURE_TYPE,
        pg.INTERMEDIATE_TEMPERATURE,
    ) == (0x1809, 0x2A1C, 0x2A1D, 0x2A1E)
    assert (
        pg.DEVICE_INFORMATION_SERVICE,
        pg.MANUFACTURER_NAME,
        pg.MODEL_NUMBER,
        pg.SERIAL_NUMBER,
        pg.FIRMWARE_REVISION,
    ) == (0x180A, 0x2A29, 0x2A24, 0x2A25, 0x2A26)
    assert (pg.BATTERY_SERVICE, pg.BATTERY_LEVEL) == (0x180F, 0x2A19)
    uuids = (pg.SCREENING_SERVICE, pg.EVENTS_CHAR, pg.LIVE_FRAMES_CHAR, pg.CONTROL_POINT_CHAR, pg.CONFIGURATION_CHAR)
    for i in range(5):
        assert uuids[i] == "1a98000%d-41a6-4357-aae4-276bb3e09524" % (i + 1)
    for cls in (ShortRecord, LongRecord, UnknownVersion, OutOfRange, UnknownOpcode):
        assert issubclass(cls, ProtocolError)
    assert issubclass(ProtocolError, ValueError)


def test_float_round_trips_and_specials():
    assert ph.encode_float(37.2) == h("740100ff")  # design.md example
    for v, d in ((37.2, 2), (37.25, 2), (-0.5, 1), (123.4567, 4), (-40.0, 0), (0.001, 3)):
        assert ph.decode_float(ph.encode_float(v, d)) == v, (v, d)
    assert ph.decode_float(ph.encode_float(37.256, 2)) == 37.26
    assert ph.decode_float(ph.encode_float(INF)) == INF
    assert ph.decode_float(ph.encode_float(-INF)) == -INF
    for word in (ph.FLOAT_NAN, ph.FLOAT_NRES, ph.FLOAT_RESERVED):
        v = ph.decode_float(bytes([word & 0xFF, (word >> 8) & 0xFF, word >> 16, 0]))
        assert v != v
    x = ph.decode_float(ph.encode_float(float("nan")))
    assert x != x


def test_float_reduces_precision_instead_of_failing():
    assert ph.encode_float(8388605, 0) == h("fdff7f00")  # largest mantissa
    assert ph.decode_float(ph.encode_float(8388606, 0)) == 8388610.0
    assert ph.decode_float(ph.encode_float(123456789.0)) == 123456800.0
    near(ph.decode_float(ph.encode_float(8e133)), 8e133, 1e121)
    with raises(OutOfRange, match="too large"):
        ph.encode_float(9e133)


def test_measurement_round_trip():
    b = ph.encode_temperature_measurement(
        38.5, fahrenheit=True, timestamp=[2025, 1, 2, 3, 4, 5], temperature_type=ph.TEMPERATURE_TYPE_BODY
    )
    assert len(b) == 13
    m = ph.decode_temperature_measurement(b)
    assert m == ph.TemperatureMeasurement(38.5, True, (2025, 1, 2, 3, 4, 5), 2)
    assert m != ph.TemperatureMeasurement(38.5, False, (2025, 1, 2, 3, 4, 5), 2)
    assert "temperature_type=2" in repr(m)


GOOD = (
    (ph.decode_float, "740100ff"),
    (ph.decode_temperature_measurement, "00740100ff"),
    (p.decode_event, FULL_EVENT_HEX),
    (p.decode_frame_body, "0101012c016400"),
    (pf.decode_chunk, "01010000017f"),
    (p.decode_config, CONFIG_HEX),
    (pc.decode_command, "010104030201"),
    (pc.decode_response, "0180020105000000"),
)


def test_decoders_accept_bytes_bytearray_memoryview():
    for fn, hx in GOOD:
        want = fn(h(hx))
        assert fn(bytearray(h(hx))) == want, hx
        assert fn(memoryview(h("ee" + hx + "ee"))[1:-1]) == want, hx


# --- screening event ------------------------------------------------------------------


def test_event_round_trip_and_equality():
    ev = _event()
    assert p.encode_event(ev) == h(FULL_EVENT_HEX)
    assert p.decode_event(p.encode_event(ev)) == ev
    assert _event(track_id=1) != ev and not (_event(track_id=1) == ev)
    assert "ScreeningEvent(seq=16909060, time=1700000000" in repr(ev)


def test_event_is_20_bytes_one_notification_at_default_mtu():
    assert p.EVENT_SIZE == 20 == 23 - 3
    worst = p.ScreeningEvent(
        seq=0xFFFFFFFF,
        time=0xFFFFFFFF,
        outcome=calibration.RECHECK,
        core_c=-50.0,
        core_u_c=INF,
        skin_c=150.0,
        skin_u_c=5.0,
        distance_m=INF,
        track_id=0xFFFF,
        flags=0x1F,
    )
    for ev in (
        worst,
        p.ScreeningEvent(),
        _event(),
        p.ScreeningEvent(kind=p.EVENT_BOOT),
        p.ScreeningEvent(kind=p.EVENT_FAULT, outcome=p.FAULT_JOURNAL_OVERFLOW),
    ):
        b = p.encode_event(ev)
        assert len(b) == 20
        assert p.decode_event(b) == ev


def test_fault_codes_1_to_6_round_trip_and_have_names():
    assert p.FAULT_DISTANCE_SENSOR == 6
    assert len(p.FAULT_NAMES) == 7 and p.FAULT_NAMES[0] == ""
    for code in range(1, 7):
        ev = p.ScreeningEvent(seq=code, time=1700000000, kind=p.EVENT_FAULT, outcome=code)
        b = p.encode_event(ev)
        assert b[1] == 0x20 | code and p.decode_event(b) == ev
        name = p.FAULT_NAMES[code]
        assert 0 < len(name) <= 40 and p.FAULT_NAMES.count(name) == 1, name
    assert "distance" in p.FAULT_NAMES[p.FAULT_DISTANCE_SENSOR]
    with raises(OutOfRange, match="fault code 7 outside 1..6"):
        p.encode_event(p.ScreeningEvent(kind=p.EVENT_FAULT, outcome=7))


def test_a_newer_helmets_fault_code_decodes_as_a_fault():
    """Codes 7..15 are not ours yet, but an app must not take a newer
    helmet's fault for a malformed record: it could then never acknowledge
    it, and the helmet's journal would stall behind it."""
    b = bytearray(p.encode_event(p.ScreeningEvent(seq=9, kind=p.EVENT_FAULT, outcome=p.FAULT_DISTANCE_SENSOR)))
    for code in (7, 15):
        b[1] = 0x20 | code
        ev = p.decode_event(bytes(b))
        assert (ev.seq, ev.kind, ev.outcome, ev.core_c) == (9, p.EVENT_FAULT, code, None)
    b[1] = 0x20  # code 0 is no fault at all
    with raises(OutOfRange, match="fault code 0 outside 1..15"):
        p.decode_event(bytes(b))


def _u_steps(u):
    return p.encode_event(_event(core_u_c=u))[12]


def test_event_uncertainty_rounds_up():
    assert [_u_steps(u) for u in (0.0, 0.02, 0.1, 0.3, 5.08)] == [0, 1, 5, 15, 254]  # exact steps stay
    assert [_u_steps(u) for u in (0.001, 0.1001, 0.11, 5.0801, 5.1, INF)] == [1, 6, 6, 255, 255, 255]
    u = 0.0
    while u < 5.2:  # never understated after a round trip
        back = p.decode_event(p.encode_event(_event(core_u_c=u))).core_u_c
        assert back >= u - 1e-4, (u, back)
        assert back - u < 0.02 + 1e-9 or back == INF, (u, back)
        u += 0.0137
    for bad in (-0.01, float("nan"), None):
        with raises(OutOfRange, match="core uncertainty"):
            p.encode_event(_event(core_u_c=bad))


def test_event_into_writes_only_its_bytes():
    buf = bytearray(b"\xaa" * 26)
    assert p.encode_event_into(buf, 3, _event()) == 20
    assert buf[:3] == b"\xaa" * 3 and buf[23:] == b"\xaa" * 3
    assert bytes(buf[3:23]) == h(FULL_EVENT_HEX)
    p.encode_event_into(memoryview(buf), 6, _event())
    assert bytes(buf[6:26]) == h(FULL_EVENT_HEX) and buf[:3] == b"\xaa" * 3
    with raises(ValueError, match="buffer too small"):
        p.encode_event_into(bytearray(25), 6, _event())


# --- live frames -----------------------------------------------------------------


class _Pixels:
    """A 32x24-sized pixel sequence computed on demand: a 768-float array
    would need a 3 KB block, more than the fragmented test heap offers."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if not 0 <= i < self.n:
            raise IndexError(i)
        return 20.0 + (i % 97) / 10 - (i % 3) * 0.004

    def __iter__(self):
        for i in range(self.n):
            yield self[i]


def test_frame_32x24_encode_and_chunk_on_the_helmet():
    import struct

    px = _Pixels(768)
    body = bytearray(1541)
    assert p.encode_frame_body_into(body, 0, 32, 24, 31.25, px) == 1541 == p.frame_body_size(32, 24)
    assert body[:9] == h("012018350cd007da07")  # v1, 32x24, Ta 31.25, 20.00, 20.10
    for i in range(768):
        assert struct.unpack_from("<h", body, 5 + 2 * i)[0] == round(px[i] * 100), i
    n = 0
    for c in pf.frame_chunks(body, 0x1234, 23):
        assert len(c) <= 20  # one notification at MTU 23
        assert pf.decode_chunk(c)[:3] == (0x1234, n, 103)  # ceil(1541 / 15) chunks
        assert c[5:] == body[n * 15 : n * 15 + 15]
        n += 1
    assert n == 103


@heapsize("200k")  # reassembly and decoding run in the app (CPython); 100 KB is for helmet code
def test_frame_32x24_reassemble_and_decode_in_the_app():
    px = _Pixels(768)
    body = p.encode_frame_body(32, 24, -1.5, px)
    a = pf.FrameAssembler()
    out = [a.feed(c) for c in pf.frame_chunks(body, 9, 23)]
    assert out[:-1] == [None] * 102 and out[-1] == body
    w, hh, ta, pixels = p.decode_frame_body(out[-1])
    assert (w, hh, ta, len(pixels)) == (32, 24, -1.5, 768)
    for i in range(768):
        assert pixels[i] == round(px[i] * 100), i


def test_frame_body_into_offset():
    px = [1.0, 2.0, 3.0, 4.0]
    buf = bytearray(b"\xaa" * 20)
    assert p.encode_frame_body_into(buf, 4, 2, 2, 25.0, px) == 13
    assert buf[:4] == b"\xaa" * 4 and buf[17:] == b"\xaa" * 3
    assert bytes(buf[4:17]) == p.encode_frame_body(2, 2, 25.0, px)
    with raises(ValueError, match="buffer too small"):
        p.encode_frame_body_into(bytearray(16), 4, 2, 2, 25.0, px)


def test_frame_chunk_sizes():
    assert [len(c) for c in pf.frame_chunks(bytes(1541), 7, 517)] == [512, 512, 512, 5 + 1541 - 3 * 507]
    assert [len(c) for c in pf.frame_chunks(bytes(31), 7, 23)] == [20, 20, 6]
    n = 0
    for _c in pf.frame_chunks(bytes(255 * 15), 1, 23):
        n += 1
    assert n == 255
    with raises(OutOfRange, match="needs 256 chunks"):
        pf.frame_chunks(bytes(255 * 15 + 1), 1, 23)  # checked at once, not on iteration


def test_chunk_into_offset():
    buf = bytearray(b"\xaa" * 12)
    assert pf.encode_chunk_into(buf, 2, 0xBEEF, 1, 3, b"xyz") == 8
    assert bytes(buf) == b"\xaa\xaa" + h("01efbe0103") + b"xyz" + b"\xaa\xaa"
    with raises(ValueError, match="buffer too small"):
        pf.encode_chunk_into(bytearray(8), 1, 0, 0, 1, b"xyz")
    with raises(OutOfRange, match="payload of 508 bytes"):
        pf.encode_chunk_into(bytearray(600), 0, 0, 0, 1, bytes(508))


def test_chunk_and_response_into_do_not_allocate():
    buf = bytearray(64)
    payload = memoryview(bytes(range(40)))

    def work():
        pf.encode_chunk_into(buf, 3, 513, 2, 9, payload)
        pc.encode_response_into(buf, 50, pc.OP_REPLAY, pc.RESULT_SUCCESS, 1000)

    _no_alloc(work)
    assert bytes(buf[3:8]) == h("0101020209") and bytes(buf[8:48]) == bytes(range(40))
    assert bytes(buf[50:58]) == h("01800201e8030000")


def _frame(fid, n=40):
    body = bytes((fid * 7 + i) & 0xFF for i in range(n))
    return body, list(pf.frame_chunks(body, fid, 23))


def _feed(a, chunks):
    return [a.feed(c) for c in chunks]


def test_assembler_completes_in_order():
    a = pf.FrameAssembler()
    body, chunks = _frame(1)
    assert _feed(a, chunks) == [None, None, body]
    body2, chunks2 = _frame(2, 15)  # single-chunk frame
    assert a.feed(chunks2[0]) == body2
    assert a.feed(chunks2[0]) is None  # late duplicate: ignored
    assert (a.frames_completed, a.frames_dropped) == (2, 0)


@heapsize("200k")  # FrameAssembler runs in the app (CPython); 100 KB is for helmet code
def test_assembler_never_returns_partial_frames():
    frames = {}
    stream = []
    for fid in range(24):
        body, chunks = _frame(fid, 20 + fid * 3)
        frames[fid] = body
        stream.extend(chunks)
    state = 12345
    a = pf.FrameAssembler()
    complete = 0
    for c in stream:
        state = (state * 1103515245 + 12345) & 0x7FFFFFFF
        r = state % 10
        if r == 0:
            continue  # lost
        for x in (c, c) if r == 1 else (c,):  # or duplicated
            out = a.feed(x)
            if out is not None:
                assert out == frames[pf.decode_chunk(c)[0]]
                complete += 1
    assert complete == a.frames_completed > 0 and a.frames_dropped > 0
    assert a.frames_completed + a.frames_dropped <= 24


# --- configuration and control point ---------------------------------------------------


def test_config_defaults_come_from_calibration():
    c = p.DeviceConfig()
    assert c.threshold_c == calibration.DEFAULT_THRESHOLD_C == 38.0
    assert c.skin_to_core_offset_c == calibration.DEFAULT_SKIN_TO_CORE_OFFSET_C
    assert c.hysteresis_c == calibration.DEFAULT_HYSTERESIS_C
    assert c.coverage_k == calibration.DEFAULT_COVERAGE_K
    assert c.emissivity == calibration.SKIN_EMISSIVITY
    assert (c.frame_rate_hz, c.confirm_frames, c.buzzer) == (8, 3, True)
    assert c.validate() is c
    assert p.decode_config(p.encode_config(c)) == c
    assert p.encode_config(_config()) == h(CONFIG_HEX)
    assert "DeviceConfig(threshold_c=37.5" in repr(_config())


def test_commands_and_responses_round_trip():
    for op, arg in (
        (pc.OP_ACK, 7),
        (pc.OP_REPLAY, 0),
        (pc.OP_SET_TIME, 0xFFFFFFFF),
        (pc.OP_SET_CONFIG, _config()),
        (pc.OP_LIVE_START, None),
        (pc.OP_LIVE_STOP, None),
        (pc.OP_SILENCE, None),
    ):
        b = pc.encode_command(op, arg)
        assert pc.decode_command(b) == (op, arg) and pc.command_opcode(b) == op
    assert pc.command_opcode(b"\x01") == 0
    buf = bytearray(b"\xaa" * 11)
    assert pc.encode_response_into(buf, 2, pc.OP_ACK, pc.RESULT_INVALID_LENGTH, 7) == 8
    assert bytes(buf) == b"\xaa\xaa" + h("0180010407000000") + b"\xaa"
    assert pc.decode_response(pc.encode_response(0x42, pc.RESULT_NOT_SUPPORTED)) == (0x42, 2, 0)
    assert len(pc.RESULT_NAMES) == 7 and pc.RESULT_NAMES[pc.RESULT_BUSY] == "BUSY"


def test_result_for_error():
    def answer(data):
        try:
            pc.decode_command(data)
        except Exception as e:  # noqa: BLE001 - mapping any decode failure is the point
            return pc.result_for_error(e)
        return pc.RESULT_SUCCESS

    assert answer(h("0101")) == pc.RESULT_INVALID_LENGTH
    assert answer(h("01010000000000")) == pc.RESULT_INVALID_LENGTH
    assert answer(h("0109")) == pc.RESULT_NOT_SUPPORTED
    assert answer(h("0201")) == pc.RESULT_NOT_SUPPORTED
    assert answer(h("0104" + CONFIG_HEX[:-4] + "0300")) == pc.RESULT_INVALID_PARAMETER
    assert answer(h("0105")) == pc.RESULT_SUCCESS
    assert pc.result_for_error(RuntimeError("x")) == pc.RESULT_FAILED
