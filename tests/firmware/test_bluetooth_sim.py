"""The simulated radio behaves like MicroPython's `bluetooth` (NimBLE) where the firmware relies on it."""

INTERPRETERS = ("micropython",)

import errno  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402

import bluetooth  # noqa: E402

import ble_air  # noqa: E402
import loopback  # noqa: E402
from ble_central import Central  # noqa: E402
from checks import raises  # noqa: E402

NOTIFY_CHAR = bluetooth.UUID("6e400003-b5a3-f393-e0a9-e50e24dcca9e")
SECURE_CHAR = bluetooth.UUID("6e400002-b5a3-f393-e0a9-e50e24dcca9e")


class Recorder:
    """An IRQ handler that keeps what it was given, copying nothing
    (the mistake the simulation must expose)."""

    def __init__(self, store=None):
        self.events = []
        self.store = {} if store is None else store

    def __call__(self, event, data):
        self.events.append((event, data))
        if event == 29:  # _IRQ_GET_SECRET
            sec_type, index, key = data
            if key is None:
                found = [v for (t, _), v in self.store.items() if t == sec_type]
                return found[index] if index < len(found) else None
            return self.store.get((sec_type, bytes(key)))
        if event == 30:  # _IRQ_SET_SECRET
            sec_type, key, value = data
            self.store[(sec_type, bytes(key))] = None if value is None else bytes(value)
            return True
        return None

    def codes(self):
        return [e for e, _ in self.events]


def setup(handler=None):
    bluetooth.sim_reset()
    ble = bluetooth.BLE()
    rec = handler or Recorder()
    ble.irq(rec)
    ble.active(True)
    ble.config(bond=True, le_secure=True, io=3)
    ((h_notify, h_secure, h_plain),) = ble.gatts_register_services(
        (
            (
                bluetooth.UUID(0x1809),
                (
                    (NOTIFY_CHAR, bluetooth.FLAG_READ | bluetooth.FLAG_NOTIFY | bluetooth.FLAG_INDICATE),
                    (SECURE_CHAR, bluetooth.FLAG_WRITE | bluetooth.FLAG_WRITE_ENCRYPTED | bluetooth.FLAG_READ
                     | bluetooth.FLAG_READ_ENCRYPTED),
                    (bluetooth.UUID(0x2A1D), bluetooth.FLAG_READ | bluetooth.FLAG_WRITE),
                ),
            ),
        )
    )  # fmt: skip
    ble.gap_advertise(100000, b"\x02\x01\x06")
    return ble, rec, h_notify, h_secure, h_plain


def test_ble_is_a_singleton_with_the_ports_config_behaviour():
    ble, _, _, _, _ = setup()
    assert bluetooth.BLE() is ble and ble.active()
    ble.config(gap_name="helmet", mtu=247)
    assert ble.config("gap_name") == b"helmet" and ble.config("mtu") == 247
    with raises(ValueError):
        ble.config("no_such_param")
    with raises(ValueError):
        ble.config(mtu=600)
    addr_type, public = ble.config("mac")
    assert addr_type == 0 and len(public) == 6
    ble.config(addr_mode=2)
    addr_type, rpa = ble.config("mac")
    assert addr_type == 1 and rpa[0] >> 6 == 0b01 and rpa != public  # resolvable private address
    ble.active(False)
    with raises(OSError):
        ble.gap_advertise(100000, b"")


def test_handles_values_and_buffers_follow_the_port():
    ble, rec, h_notify, h_secure, h_plain = setup()
    assert len({h_notify, h_secure, h_plain}) == 3
    assert ble.gatts_read(h_plain) == b""
    ble.gatts_write(h_plain, b"\x02")
    central = Central()
    central.connect()
    assert central.read(h_plain) == (0, b"\x02")
    # A remote write is cut to the 20-byte default buffer ...
    assert central.write(h_plain, bytes(range(30))) == 0
    assert ble.gatts_read(h_plain) == bytes(range(20))
    # ... unless the firmware enlarged it; append mode collects and clears on read.
    ble.gatts_set_buffer(h_plain, 40)
    central.write(h_plain, bytes(range(30)))
    assert ble.gatts_read(h_plain) == bytes(range(30))
    ble.gatts_set_buffer(h_plain, 8, True)
    central.write(h_plain, b"abc")
    central.write(h_plain, b"defghijk")
    assert ble.gatts_read(h_plain) == b"abcdefgh"
    assert ble.gatts_read(h_plain) == b""
    # A local write grows the buffer.
    ble.gatts_write(h_plain, bytes(100))
    assert len(ble.gatts_read(h_plain)) == 100
    with raises(OSError):
        ble.gatts_read(9999)


def test_irq_memoryviews_are_only_valid_during_the_handler():
    ble, rec, _, _, _ = setup()
    central = Central(identity=b"\x11\x22\x33\x44\x55\x66")
    conn = central.connect()
    event, (c, addr_type, addr) = [e for e in rec.events if e[0] == 1][0]
    assert c == conn and addr_type == 1
    assert isinstance(addr, memoryview)
    assert bytes(addr) != bytes([0x51, 0x22, 0x33, 0x44, 0x55, 0x66])  # overwritten after the IRQ returned


def test_connect_stops_advertising_and_gap_disconnect_raises_its_irq_later():
    ble, rec, _, _, _ = setup()
    central = Central()
    conn = central.connect()
    assert ble_air.advertising(ble) is None
    with raises(OSError):
        Central().connect()  # nobody can connect while the helmet does not advertise
    assert ble.gap_disconnect(conn)
    assert 2 not in rec.codes()  # not inside the call
    central.process()
    assert rec.codes().count(2) == 1 and not central.connected()
    assert not ble.gap_disconnect(conn)


def test_notifications_are_cut_to_mtu_and_flow_controlled():
    ble, rec, h_notify, _, _ = setup()
    central = Central()
    conn = central.connect()
    central.subscribe(h_notify)
    ble.gatts_notify(conn, h_notify, bytes(range(40)))
    central.process()
    assert central.take(h_notify) == [bytes(range(20))]  # MTU 23: 20-byte payloads
    assert central.exchange_mtu(100) == 100 and rec.events[-1][1] == (conn, 100)
    ble.gatts_notify(conn, h_notify, bytes(range(120)))
    central.process()
    assert central.take(h_notify) == [bytes(range(97))]
    ble.gatts_write(h_notify, b"value")
    ble.gatts_notify(conn, h_notify)  # data None: the current value
    sent = 1
    with raises(OSError) as caught:
        for _ in range(100):
            ble.gatts_notify(conn, h_notify, b"x")
            sent += 1
    assert caught.value.args[0] == errno.ENOMEM and sent == bluetooth.sim_tx_capacity
    central.process()
    got = central.take(h_notify)
    assert got[0] == b"value" and len(got) == sent
    ble.gatts_notify(conn, h_notify, b"again")  # room again once the air took them
    with raises(OSError) as caught:
        ble.gatts_notify(conn + 1, h_notify, b"x")
    assert caught.value.args[0] == errno.ENOTCONN


def test_unsubscribed_notifications_are_dropped_by_the_phone():
    ble, _, h_notify, _, _ = setup()
    central = Central()
    conn = central.connect()
    ble.gatts_notify(conn, h_notify, b"lost")  # sent regardless of subscription ...
    central.process()
    assert central.take(h_notify) == [] and central.dropped_unsubscribed == 1  # ... and ignored


def test_one_indication_at_a_time_confirmed_by_indicate_done():
    ble, rec, h_notify, _, _ = setup()
    central = Central()
    conn = central.connect()
    central.subscribe(h_notify, indicate=True)
    ble.gatts_indicate(conn, h_notify, b"one")
    with raises(OSError) as caught:
        ble.gatts_indicate(conn, h_notify, b"two")
    assert caught.value.args[0] == errno.EALREADY
    central.process()
    assert central.take(h_notify) == [b"one"]
    assert rec.events[-1] == (20, (conn, h_notify, 0))
    ble.gatts_indicate(conn, h_notify, b"two")


def test_encrypted_only_characteristics_are_refused_by_the_stack_before_the_irq():
    ble, rec, _, h_secure, h_plain = setup()
    central = Central()
    central.connect()
    n = len(rec.events)
    assert central.write(h_secure, b"\x01\x01\x00\x00\x00\x00") == bluetooth.ATT_INSUFFICIENT_ENCRYPTION
    assert central.read(h_secure)[0] == bluetooth.ATT_INSUFFICIENT_ENCRYPTION
    assert len(rec.events) == n  # the firmware never saw the write
    assert central.write(h_plain, b"ok") == 0 and rec.events[-1][0] == 3
    assert central.pair()
    event, data = rec.events[-1]
    assert event == 28 and data[1:] == (True, False, True, 16)  # encrypted, just works, bonded
    assert central.write(h_secure, b"secret") == 0 and rec.events[-1] == (3, (central.conn, h_secure))
    assert ble.gatts_read(h_secure) == b"secret"


def test_bond_keys_live_in_the_firmwares_secret_store_across_power_cycles():
    store = {}
    setup(Recorder(store))
    central = Central()
    central.connect()
    assert central.pair()
    assert any(t == 1 for t, _ in store) and (10, b"irk") in store  # LTK and our IRK were handed over
    irk = store[(10, b"irk")]
    central.disconnect()
    # Power cycle with the same flash: the stack reloads the IRK and the bond.
    setup(Recorder(store))
    assert store[(10, b"irk")] == irk
    central.connect()
    assert central.encrypt()
    # Power cycle with the store wiped: the phone's key no longer works.
    setup(Recorder({}))
    central.connect()
    assert not central.encrypt()
    stranger = Central(identity=b"\x01\x02\x03\x04\x05\x06", ltk=central.ltk)
    setup(Recorder(store))
    stranger.connect()
    assert not stranger.encrypt()  # someone else's key is not a bond


def test_legacy_or_mitm_pairing_is_refused_by_a_secure_connections_only_helmet():
    _, rec, _, h_secure, _ = setup()
    central = Central()
    central.connect()
    assert not central.pair(le_secure=False)
    assert not central.pair(mitm=True)  # no display, no keyboard: MITM protection impossible
    assert central.write(h_secure, b"x") == bluetooth.ATT_INSUFFICIENT_ENCRYPTION


def test_a_failing_irq_handler_is_reported_not_propagated():
    def bad(event, data):
        raise RuntimeError("firmware bug")

    bluetooth.sim_reset()
    ble = bluetooth.BLE()
    ble.irq(bad)
    ble.active(True)
    ble.gatts_register_services(((bluetooth.UUID(0x180F), ((bluetooth.UUID(0x2A19), bluetooth.FLAG_READ),)),))
    ble.gap_advertise(100000, b"")
    Central().connect()
    assert len(bluetooth.sim_errors) >= 1 and "firmware bug" in str(bluetooth.sim_errors[-1])


def _lines(sock, want):
    """Read JSON lines from the helmet until `want` messages arrived."""
    buf = b""
    out = []
    while len(out) < want:
        chunk = sock.recv(4096)
        assert chunk, "bridge closed"
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            out.append(json.loads(line))
    return out


def test_host_bridge_speaks_the_json_line_protocol():
    srv, port = loopback.listen()
    os.putenv("HELMET_BLE_BRIDGE", "127.0.0.1:%d" % port)
    try:
        bluetooth.sim_reset()
        ble = bluetooth.BLE()
        rec = Recorder()
        ble.irq(rec)
        ble.active(True)  # connects to the host
    finally:
        os.unsetenv("HELMET_BLE_BRIDGE")
    host, _ = srv.accept()
    try:
        ((h,),) = ble.gatts_register_services(
            ((bluetooth.UUID(0x1809), ((bluetooth.UUID(0x2A1C), bluetooth.FLAG_INDICATE | bluetooth.FLAG_WRITE),)),)
        )
        ble.gap_advertise(100000, b"\x02\x01\x06", resp_data=b"\x03\x09ab")
        reg, adv = _lines(host, 2)
        assert reg == {
            "t": "register",
            "services": [
                {
                    "uuid": "00001809-0000-1000-8000-00805f9b34fb",
                    "chars": [{"uuid": "00002a1c-0000-1000-8000-00805f9b34fb", "flags": 0x28, "handle": h}],
                }
            ],
        }
        assert adv == {"t": "advertise", "adv": "020106", "resp": "030961 62".replace(" ", ""), "interval_us": 100000}
        for msg in (
            {"t": "connect", "conn": 3, "addr": "c0ffee000001"},
            {"t": "mtu", "conn": 3, "mtu": 100},
            {"t": "encryption", "conn": 3, "encrypted": True, "authenticated": False, "bonded": True, "key_size": 16},
            {"t": "write", "conn": 3, "handle": h, "data": "0102"},
        ):
            host.send((json.dumps(msg) + "\n").encode())
        import time

        for _ in range(100):
            bluetooth.sim_poll()
            if 3 in rec.codes():
                break
            time.sleep_ms(5)
        assert rec.codes()[-4:] == [1, 21, 28, 3]
        assert ble.gatts_read(h) == b"\x01\x02"
        (stopped,) = _lines(host, 1)
        assert stopped["t"] == "advertise" and stopped["interval_us"] is None  # connecting stopped advertising
        ble.gatts_indicate(3, h, bytes(200))  # cut to MTU - 3
        ble.gatts_notify(3, h, b"\xab")
        ble.gatts_write(h, b"\x07")
        ind, note, value = _lines(host, 3)
        assert ind == {"t": "indicate", "conn": 3, "handle": h, "data": "00" * 97}
        assert note == {"t": "notify", "conn": 3, "handle": h, "data": "ab"}
        assert value == {"t": "value", "handle": h, "data": "07"}
        host.send(b'{"t":"indicate_done","conn":3,"handle":%d,"status":0}\n' % h)
        host.send(b'{"t":"disconnect","conn":3}\n')
        for _ in range(100):
            bluetooth.sim_poll()
            if 2 in rec.codes():
                break
            time.sleep_ms(5)
        assert rec.codes()[-2:] == [20, 2]
    finally:
        host.close()
        srv.close()
        bluetooth.sim_reset()
