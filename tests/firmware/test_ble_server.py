"""The helmet's GATT server: bonded-only screening data, in-order delivery, standard health profile.

These tests run the firmware's server, its journal and a simulated phone
(tools/simboard/ble_central.py) in one MicroPython process.  The simulated
stack itself costs about 20 KB of heap that the ESP32's C stack does not, so
they ask for a larger heap; the server's own footprint is measured in
test_server_resident_memory_and_steady_state.
"""

INTERPRETERS = ("micropython",)

import gc  # noqa: E402
import os  # noqa: E402
import struct  # noqa: E402
from array import array  # noqa: E402

import bluetooth  # noqa: E402

import loopback  # noqa: E402
import protocol  # noqa: E402
import protocol_control  # noqa: E402
import protocol_frames  # noqa: E402
import protocol_gatt  # noqa: E402
import protocol_hts  # noqa: E402
from ble_central import Central  # noqa: E402
from ble_server import BleServer, adv_payload, civil_from_unix, uuid128_le  # noqa: E402
from checks import heapsize  # noqa: E402
from journal import Journal  # noqa: E402

ATT_INSUFFICIENT_ENCRYPTION = 0x0F


class Hooks:
    def __init__(self):
        self.times = []
        self.configs = []
        self.silenced = 0
        self.refuse_config = False

    def set_time(self, t):
        self.times.append(t)

    def config(self, cfg):
        if self.refuse_config:
            return False
        self.configs.append(cfg)
        return True

    def silence(self):
        self.silenced += 1


def boot(capacity=256, hooks=None, fresh=True):
    """Power on the helmet: a radio with no memory, the journal and bonds from flash."""
    if fresh:
        for name in ("journal.bin", "journal.meta", "ble_bonds.bin"):
            try:
                os.remove(name)
            except OSError:
                pass
    bluetooth.sim_reset()
    hooks = hooks or Hooks()
    journal = Journal(capacity=capacity)
    server = BleServer(
        bluetooth.BLE(),
        journal,
        on_set_time=hooks.set_time,
        on_config=hooks.config,
        on_silence=hooks.silence,
        serial="240ac45e1a98",
    )
    return server, journal, hooks


def screening(outcome=protocol.CLEAR, track=0, time=0, core=37.0):
    return protocol.ScreeningEvent(
        time=time,
        kind=protocol.EVENT_SCREENING,
        outcome=outcome,
        core_c=core,
        core_u_c=0.4,
        skin_c=35.0,
        skin_u_c=0.3,
        distance_m=1.0,
        track_id=track,
        flags=protocol.FLAG_TIME_VALID if time else 0,
    )


def link(server, central=None, mtu=247, bond=True):
    """A phone connects, exchanges the MTU, pairs (or re-encrypts) and subscribes."""
    central = central or Central()
    central.connect()
    central.exchange_mtu(mtu)
    if central.ltk is None or not central.encrypt():
        assert central.pair(bond=bond)
    for h in (server._h_events, server._h_control, server._h_frames):
        assert central.subscribe(h) == 0
    assert central.subscribe(server._h_tm, indicate=True) == 0
    return central


def run(server, central, rounds=20):
    for _ in range(rounds):
        more = server.pump()
        moved = central.process()
        if not more and not moved:
            break


def command(server, central, opcode, arg=None, raw=None):
    """Write a request, let both sides work; returns the decoded response (or None)."""
    status = central.write(server._h_control, raw if raw is not None else protocol_control.encode_command(opcode, arg))
    if status:
        return status
    run(server, central)
    rsp = central.take(server._h_control)
    assert len(rsp) == 1, rsp
    return protocol_control.decode_response(rsp[0])


def seqs(server, central):
    return [protocol.decode_event(b).seq for b in central.take(server._h_events)]


@heapsize("200k")
def test_advertises_the_screening_and_thermometer_services_from_a_private_address():
    server, _, _ = boot()
    ble = bluetooth.BLE()
    import ble_air

    interval, adv, resp, connectable = ble_air.advertising(ble)
    assert connectable and interval == 100000 and len(adv) <= 31
    assert uuid128_le(protocol_gatt.SCREENING_SERVICE) in adv
    assert b"\x03\x03\x09\x18" in adv  # 16-bit service list: 0x1809
    assert b"\x09FSH-1" in resp
    assert ble.config("addr_mode") == 2 and ble.config("mac")[0] == 1
    assert ble.config("le_secure") and ble.config("bond")
    # The payload builder refuses what does not fit.
    assert adv_payload(name=b"x" * 26) and len(adv_payload(name=b"x" * 26)) == 31
    failed = False
    try:
        adv_payload(name=b"x" * 27)
    except ValueError:
        failed = True
    assert failed


@heapsize("200k")
def test_standard_services_are_readable_and_screening_data_needs_a_bond():
    server, journal, _ = boot()
    central = Central()
    central.connect()
    assert central.read(server._h_config)[0] == ATT_INSUFFICIENT_ENCRYPTION
    assert central.subscribe(server._h_events) == ATT_INSUFFICIENT_ENCRYPTION
    status, value = central.read(server._h_tm - 0)  # indicate-only: no read
    assert status != 0
    ble = bluetooth.BLE()
    dis = [ble.gatts_read(h) for h in range(server._h_batt - 12, server._h_batt) if h in ble._attrs]
    assert b"Open fever-screening helmet project" in dis and b"0.1.0" in dis and b"240ac45e1a98" in dis
    assert central.read(server._h_batt) == (0, b"\x64")
    # Before bonding: nothing flows, and the stack turns control writes away.
    server.record(screening())
    run(server, central)
    assert central.dropped_unsubscribed == 0 and central.take(server._h_events) == []
    assert central.write(server._h_control, protocol_control.encode_command(protocol_control.OP_ACK, 1)) == (
        ATT_INSUFFICIENT_ENCRYPTION
    )
    assert journal.acked == 0
    # Encrypted but not bonded: the firmware answers NOT_AUTHORIZED and changes nothing.
    assert central.pair(bond=False)
    central.subscribe(server._h_control)
    assert command(server, central, protocol_control.OP_ACK, 1) == (
        protocol_control.OP_ACK,
        protocol_control.RESULT_NOT_AUTHORIZED,
        0,
    )
    assert command(server, central, protocol_control.OP_LIVE_START) == (
        protocol_control.OP_LIVE_START,
        protocol_control.RESULT_NOT_AUTHORIZED,
        0,
    )
    assert journal.acked == 0 and not server.live()
    assert central.take(server._h_events) == []
    # Bonded: the configuration reads, the event arrives.
    central.disconnect()
    central = link(server)
    run(server, central)
    assert seqs(server, central) == [1]
    status, value = central.read(server._h_config)
    assert status == 0 and protocol.decode_config(value) == protocol.DeviceConfig()


@heapsize("200k")
def test_events_arrive_in_order_one_per_notification_and_acks_persist():
    server, journal, _ = boot()
    central = link(server, mtu=23)
    for i in range(40):
        server.record(screening(track=i))
    run(server, central, 50)
    got = central.take(server._h_events)
    assert [protocol.decode_event(b).seq for b in got] == list(range(1, 41))
    assert all(len(b) == protocol.EVENT_SIZE for b in got)
    assert command(server, central, protocol_control.OP_ACK, 30) == (
        protocol_control.OP_ACK,
        protocol_control.RESULT_SUCCESS,
        10,
    )
    assert journal.acked == 30
    # Reconnect: the oldest unacknowledged event comes first.
    central.disconnect()
    run(server, central)
    central = link(server, central)
    run(server, central)
    assert seqs(server, central) == list(range(31, 41))


@heapsize("200k")
def test_replay_resends_from_any_retained_sequence_number():
    server, journal, _ = boot()
    central = link(server)
    for i in range(10):
        server.record(screening(track=i))
    run(server, central)
    assert seqs(server, central) == list(range(1, 11))
    command(server, central, protocol_control.OP_ACK, 10)
    assert command(server, central, protocol_control.OP_REPLAY, 4) == (
        protocol_control.OP_REPLAY,
        protocol_control.RESULT_SUCCESS,
        7,
    )
    run(server, central)
    assert seqs(server, central) == list(range(4, 11))  # acknowledged ones too, while retained
    assert command(server, central, protocol_control.OP_REPLAY, 12) == (
        protocol_control.OP_REPLAY,
        protocol_control.RESULT_INVALID_PARAMETER,
        0,
    )
    assert command(server, central, protocol_control.OP_ACK, 11) == (
        protocol_control.OP_ACK,
        protocol_control.RESULT_INVALID_PARAMETER,
        0,
    )
    assert journal.acked == 10


def _state(server, journal):
    ble = bluetooth.BLE()
    return (journal.acked, journal.next_seq, server._cursor, server.live(), ble.gatts_read(server._h_config))


@heapsize("200k")
def test_malformed_requests_get_the_right_error_and_change_nothing():
    server, journal, hooks = boot()
    central = link(server)
    for _ in range(5):
        server.record(screening())
    run(server, central)
    central.take(server._h_events)
    before = _state(server, journal)
    bad_cfg = bytearray(protocol_control.encode_command(protocol_control.OP_SET_CONFIG, protocol.DeviceConfig()))
    struct.pack_into("<h", bad_cfg, 3, 4500)  # threshold 45.00 degC: out of range
    cases = (
        (b"", 0, protocol_control.RESULT_INVALID_LENGTH),
        (b"\x01", 0, protocol_control.RESULT_INVALID_LENGTH),
        (b"\x02\x01\x01\x00\x00\x00", 0x01, protocol_control.RESULT_NOT_SUPPORTED),  # unknown version
        (b"\x01\x09", 0x09, protocol_control.RESULT_NOT_SUPPORTED),  # unknown opcode, echoed
        (b"\x01\x01\x01\x00", 0x01, protocol_control.RESULT_INVALID_LENGTH),  # short ACK
        (b"\x01\x01\x01\x00\x00\x00\x00", 0x01, protocol_control.RESULT_INVALID_LENGTH),  # long ACK
        (b"\x01\x05\x00", 0x05, protocol_control.RESULT_INVALID_LENGTH),  # LIVE_START with a parameter
        (bytes(bad_cfg), 0x04, protocol_control.RESULT_INVALID_PARAMETER),
        (b"\x01\x04" + bytes(30), 0x04, protocol_control.RESULT_INVALID_LENGTH),  # longer than any request
        (
            protocol_control.encode_command(protocol_control.OP_ACK, 99),
            0x01,
            protocol_control.RESULT_INVALID_PARAMETER,
        ),  # never assigned
    )
    for raw, opcode, result in cases:
        assert command(server, central, None, raw=raw) == (opcode, result, 0), raw
        assert _state(server, journal) == before, raw
    assert hooks.configs == [] and hooks.times == [] and central.take(server._h_events) == []
    # A hook that refuses the configuration: FAILED, and the characteristic keeps its value.
    hooks.refuse_config = True
    cfg = protocol.DeviceConfig(threshold_c=37.3)
    assert command(server, central, protocol_control.OP_SET_CONFIG, cfg)[1] == protocol_control.RESULT_FAILED
    assert _state(server, journal) == before


@heapsize("200k")
def test_commands_reach_the_firmware_hooks():
    server, journal, hooks = boot()
    central = link(server)
    cfg = protocol.DeviceConfig(threshold_c=37.3, frame_rate_hz=4, buzzer=False)
    assert command(server, central, protocol_control.OP_SET_CONFIG, cfg) == (
        protocol_control.OP_SET_CONFIG,
        protocol_control.RESULT_SUCCESS,
        0,
    )
    assert hooks.configs == [cfg] and server.config() == cfg
    assert protocol.decode_config(central.read(server._h_config)[1]) == cfg
    assert command(server, central, protocol_control.OP_SET_TIME, 1767225600)[1] == protocol_control.RESULT_SUCCESS
    assert hooks.times == [1767225600]
    assert command(server, central, protocol_control.OP_SILENCE)[1] == protocol_control.RESULT_SUCCESS
    assert hooks.silenced == 1
    # Without hooks the helmet says so.
    bare, _, _ = boot()
    bare._on_set_time = bare._on_config = bare._on_silence = None
    central = link(bare)
    assert command(bare, central, protocol_control.OP_SILENCE)[1] == protocol_control.RESULT_NOT_SUPPORTED
    assert command(bare, central, protocol_control.OP_SET_TIME, 5)[1] == protocol_control.RESULT_NOT_SUPPORTED


@heapsize("200k")
def test_fuzzed_control_point_writes_never_break_the_server():
    server, journal, hooks = boot()
    central = link(server)
    for i in range(20):
        server.record(screening(track=i))
    run(server, central)
    x = 12345
    answered = 0
    for n in range(1500):
        x = (1103515245 * x + 12345) & 0x7FFFFFFF  # deterministic LCG
        length = x % 24
        data = bytearray(length)
        for i in range(length):
            x = (1103515245 * x + 12345) & 0x7FFFFFFF
            data[i] = (x >> 16) & 0xFF
        if length and n % 2:
            data[0] = 1  # half of them with the right version, to reach the decoders
        if length > 1 and n % 4 == 1:
            data[1] = 1 + (x >> 8) % 8
        assert central.write(server._h_control, bytes(data)) == 0
        run(server, central, 3)
        rsp = central.take(server._h_control)
        assert len(rsp) == 1, (n, bytes(data))
        op, result, value = protocol_control.decode_response(rsp[0])
        assert op == (data[1] if length >= 2 else 0) and 1 <= result <= 7
        answered += 1
        central.take(server._h_events)
        central.take(server._h_frames)
    assert answered == 1500 and bluetooth.sim_errors == []
    assert journal.next_seq <= 21 + journal.dropped_total + 1  # only ever what the helmet recorded


@heapsize("200k")
def test_flagged_screenings_are_also_standard_temperature_measurements():
    server, _, _ = boot()
    central = link(server)
    server.record(screening(protocol.CLEAR, core=36.8))
    server.record(screening(protocol.FEVER, core=38.62, time=1767225600))  # 2026-01-01 00:00:00
    server.record(screening(protocol.RECHECK, core=None))
    run(server, central)
    got = [protocol_hts.decode_temperature_measurement(b) for b in central.take(server._h_tm)]
    assert len(got) == 2
    assert abs(got[0].value - 38.62) < 1e-4 and got[0].temperature_type == protocol_hts.TEMPERATURE_TYPE_BODY
    assert got[0].timestamp == (2026, 1, 1, 0, 0, 0) and not got[0].fahrenheit
    assert got[1].value != got[1].value  # RECHECK without an estimate: NaN, as the profile says
    assert civil_from_unix(951782400) == (2000, 2, 29, 0, 0, 0)
    assert civil_from_unix(1700000000) == (2023, 11, 14, 22, 13, 20)


class FrameCollector:
    def __init__(self, handle, body):
        self.handle = handle
        self.body = body
        self.asm = protocol_frames.FrameAssembler()
        self.bodies = []  # True for each reassembled frame equal to the one sent
        self.longest = 0

    def on_packet(self, kind, handle, data):
        if handle == self.handle:
            self.longest = max(self.longest, len(data))
            b = self.asm.feed(data)
            if b is not None:
                self.bodies.append(b == self.body)


@heapsize("200k")
def test_live_frames_flow_only_in_live_view_and_reassemble_at_any_mtu():
    for mtu in (23, 247):
        server, _, _ = boot()
        central = link(server, mtu=mtu)
        pixels = array("f", bytes(4 * 32 * 24))
        for i in range(32 * 24):
            pixels[i] = 20.0 + (i % 37) * 0.5
        body = protocol.encode_frame_body(32, 24, 25.0, pixels)
        assert not server.send_frame(body)  # not asked for: privacy
        run(server, central)
        assert central.take(server._h_frames) == []
        assert command(server, central, protocol_control.OP_LIVE_START)[1] == protocol_control.RESULT_SUCCESS
        frames = FrameCollector(server._h_frames, body)
        central.on_packet = frames.on_packet
        for _ in range(2):
            assert server.send_frame(body)
            run(server, central, 400)
        central.on_packet = None
        assert frames.bodies == [True, True] and frames.asm.frames_dropped == 0
        longest = frames.longest
        assert longest == mtu - 3  # chunks fill the ATT payload exactly
        # Events overtake frames.
        server.send_frame(body)
        server.record(screening())
        server.pump()
        central.process()
        assert len(central.take(server._h_events)) == 1
        assert command(server, central, protocol_control.OP_LIVE_STOP)[1] == protocol_control.RESULT_SUCCESS
        assert not server.send_frame(body)


@heapsize("200k")
def test_bond_survives_a_helmet_reboot_and_strangers_get_nothing():
    server, journal, _ = boot()
    central = link(server)
    ltk = central.ltk
    server.record(screening())
    run(server, central)
    assert seqs(server, central) == [1]
    command(server, central, protocol_control.OP_ACK, 1)
    journal.close()
    # Reboot: a new radio and new objects, from flash.
    server, journal, _ = boot(fresh=False)
    server.record(screening())
    central.conn = None
    central.connect()
    assert central.encrypt() and central.ltk == ltk  # no new pairing needed
    for h in (server._h_events, server._h_control):
        central.subscribe(h)
    run(server, central)
    assert seqs(server, central) == [2]
    central.disconnect()
    run(server, central)
    # A stranger with a made-up key: no encryption, no data.
    stranger = Central(identity=b"\x0b\xad\x0b\xad\x0b\xad", ltk=ltk)
    stranger.connect()
    assert not stranger.encrypt()
    assert stranger.subscribe(server._h_events) == ATT_INSUFFICIENT_ENCRYPTION
    server.record(screening())
    run(server, stranger)
    assert stranger.take(server._h_events) == [], stranger.received
    assert stranger.dropped_unsubscribed == 0, stranger.dropped_unsubscribed


class App:
    """The phone app's event path: dedupe by seq, acknowledge every 25, ask
    for a replay from the first missing seq after (re)subscribing."""

    def __init__(self, server):
        self.server = server
        self.expected = 1
        self.log = bytearray(1200)  # times each seq was stored
        self.resent = 0  # notifications for seqs already stored (at-least-once delivery)
        self.gaps = 0
        self.since_ack = 0

    def on_packet(self, kind, handle, data):
        if handle != self.server._h_events:
            return
        seq = struct.unpack_from("<I", data, 2)[0]
        if seq < self.expected:
            self.resent += 1
            return
        if seq > self.expected:
            self.gaps += 1
            return
        ev = protocol.decode_event(data)
        assert ev.track_id == seq % 65536  # the payload is the one recorded for this seq
        self.log[seq] += 1
        self.expected += 1
        self.since_ack += 1


@heapsize("200k")
def test_a_thousand_events_survive_disconnects_and_a_reboot_without_loss_or_duplicates():
    server, journal, _ = boot()
    app = App(server)
    central = Central(on_packet=app.on_packet)

    def connect():
        link(server, central, mtu=23 if app.expected % 2 else 247)
        command_quiet(protocol_control.OP_REPLAY, app.expected)

    def command_quiet(op, arg):
        central.write(server._h_control, protocol_control.encode_command(op, arg))

    connect()
    x = 7
    disconnects = reboots = 0
    for i in range(1, 1001):
        flagged = protocol.FEVER if i % 10 == 0 else protocol.CLEAR
        ev = screening(flagged, track=i)
        assert server.record(ev) == i
        x = (1103515245 * x + 12345) & 0x7FFFFFFF
        if central.connected():
            # The air moves a random share of what is queued, then the app acks.
            server.pump()
            central.process(limit=x % 6)
            if app.since_ack >= 25:
                command_quiet(protocol_control.OP_ACK, app.expected - 1)
                app.since_ack = 0
            if x % 97 == 0:
                central.disconnect()  # out of range, with packets still in flight
                disconnects += 1
        elif x % 5 == 0:
            connect()
        if i == 500:
            # The helmet reboots (power cycle): new radio, objects rebuilt from flash.
            journal.close()
            server, journal, _ = boot(fresh=False)
            app.server = server
            central.conn = None
            reboots += 1
            connect()
    if not central.connected():
        connect()
    for _ in range(200):
        server.pump()
        central.process()
        if app.expected > 1000:
            break
    command_quiet(protocol_control.OP_ACK, app.expected - 1)
    run(server, central)
    lost = sum(1 for s in range(1, 1001) if app.log[s] == 0)
    duplicated = sum(1 for s in range(1, 1001) if app.log[s] > 1)
    print(
        "1000 events: lost %d, duplicated %d, resent (deduplicated) %d, gaps %d, disconnects %d, reboots %d"
        % (lost, duplicated, app.resent, app.gaps, disconnects, reboots)
    )
    assert disconnects >= 3 and reboots == 1
    assert lost == 0 and duplicated == 0 and app.gaps == 0
    assert app.expected == 1001  # in order: each seq was taken only right after its predecessor
    assert journal.acked == 1000 and journal.pending() == 0 and journal.dropped_total == 0
    assert bluetooth.sim_errors == []


@heapsize("200k")
def test_server_resident_memory_and_steady_state():
    for name in ("journal.bin", "journal.meta", "ble_bonds.bin"):
        try:
            os.remove(name)
        except OSError:
            pass
    bluetooth.sim_reset()
    ble = bluetooth.BLE()
    ble.active(True)
    gc.collect()
    base = gc.mem_alloc()
    journal = Journal()
    gc.collect()
    after_journal = gc.mem_alloc()
    server = BleServer(ble, journal)
    gc.collect()
    after_server = gc.mem_alloc()
    central = link(server)
    ev = screening()
    for _ in range(60):  # warm up
        server.record(ev)
        run(server, central)
        central.take(server._h_events)
    command(server, central, protocol_control.OP_ACK, journal.next_seq - 1)
    gc.collect()
    before = gc.mem_alloc()
    for _ in range(200):
        server.record(ev)
        run(server, central)
        central.take(server._h_events)
    command(server, central, protocol_control.OP_ACK, journal.next_seq - 1)
    gc.collect()
    grown = gc.mem_alloc() - before
    # What the simulated stack holds for the registered services is C memory on the ESP32.
    central.disconnect()
    gc.collect()
    with_tables = gc.mem_alloc()
    ble._registered = []
    ble._attrs = {}
    gc.collect()
    tables = with_tables - gc.mem_alloc()
    own = after_server - after_journal - tables
    print(
        "resident: journal %d bytes (256 slots), server %d bytes (+%d in the simulated stack's tables); "
        "heap growth over 200 events in steady state: %d bytes" % (after_journal - base, own, tables, grown)
    )
    assert after_journal - base < 3000
    assert own < 3000
    assert grown < 512, grown


@heapsize("256k")
def test_over_the_host_bridge_the_firmwares_own_asyncio_loop_drives_the_radio():
    import json
    import sys

    if ".frozen" not in sys.path:
        sys.path.append(".frozen")  # asyncio is frozen into the port; MICROPYPATH hides it
    import asyncio

    for name in ("journal.bin", "journal.meta", "ble_bonds.bin"):
        try:
            os.remove(name)
        except OSError:
            pass
    listener, port = loopback.listen()
    os.putenv("HELMET_BLE_BRIDGE", "127.0.0.1:%d" % port)
    try:
        bluetooth.sim_reset()
        journal = Journal()
        server = BleServer(bluetooth.BLE(), journal)  # active(True) connects and queues the bridge task
    finally:
        os.unsetenv("HELMET_BLE_BRIDGE")
    host, _ = listener.accept()
    host.setblocking(False)
    seen = []

    async def host_side():
        reader = asyncio.StreamReader(host)

        async def until(pred):
            while True:
                m = json.loads(await reader.readline())
                seen.append(m["t"])
                if pred(m):
                    return m

        def say(m):
            host.send((json.dumps(m) + "\n").encode())

        reg = await until(lambda m: m["t"] == "register")
        handles = {c["uuid"][:8]: c["handle"] for s in reg["services"] for c in s["chars"]}
        events, control = handles["1a980002"], handles["1a980004"]
        await until(lambda m: m["t"] == "advertise" and m["interval_us"])
        say({"t": "connect", "conn": 0, "addr": "40ffee000001"})
        say({"t": "mtu", "conn": 0, "mtu": 185})
        say({"t": "encryption", "conn": 0, "encrypted": True, "authenticated": False, "bonded": True, "key_size": 16})
        await asyncio.sleep_ms(20)
        server.record(screening(protocol.FEVER, core=38.4))  # the firmware records; nobody calls pump()
        m = await until(lambda m: m["t"] == "notify" and m["handle"] == events)
        assert protocol.decode_event(bytes.fromhex(m["data"])).seq == 1
        m = await until(lambda m: m["t"] == "indicate")
        assert protocol_hts.decode_temperature_measurement(bytes.fromhex(m["data"])).temperature_type == 2
        say({"t": "indicate_done", "conn": 0, "handle": m["handle"], "status": 0})
        say(
            {
                "t": "write",
                "conn": 0,
                "handle": control,
                "data": protocol_control.encode_command(protocol_control.OP_ACK, 1).hex(),
            }
        )
        m = await until(lambda m: m["t"] == "notify" and m["handle"] == control)
        assert protocol_control.decode_response(bytes.fromhex(m["data"])) == (
            protocol_control.OP_ACK,
            protocol_control.RESULT_SUCCESS,
            0,
        )
        say({"t": "disconnect", "conn": 0})
        await until(lambda m: m["t"] == "advertise" and m["interval_us"])  # advertising again

    async def main():
        task = asyncio.create_task(server.run())
        try:
            await asyncio.wait_for_ms(host_side(), 5000)
        finally:
            task.cancel()

    try:
        asyncio.run(main())
    finally:
        host.close()
        listener.close()
        bluetooth.sim_reset()
    assert journal.acked == 1 and not server.connected()
    assert bluetooth.sim_errors == []
