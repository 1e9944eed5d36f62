"""The host bridge seen from both ends: a raw bridge-protocol client (the
MicroPython side) and bleak on adapter B (the phone).  Covers what the link
tests do not: reads of the helmet's value, write forwarding, MTU truncation,
indications and their confirmation, the helmet closing its socket, bad lines."""

import asyncio
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
for p in (ROOT / "tools", ROOT / "shared", ROOT):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

import protocol_gatt as gatt  # noqa: E402
import protocol_hts as hts  # noqa: E402
from ble_host import advdata, wire  # noqa: E402
from ble_host.environment import unavailable_reason  # noqa: E402

needs_dbus = pytest.mark.skipif(unavailable_reason() is not None, reason=unavailable_reason() or "")

HTS = "0x1809"
TM, NOTE, CMD = 0x2A1C, "1a9800aa-41a6-4357-aae4-276bb3e09524", "1a9800ab-41a6-4357-aae4-276bb3e09524"


class RawHelmet:
    """Just the bridge protocol, line by line."""

    async def open(self, address):
        host, port = address.rsplit(":", 1)
        self.r, self.w = await asyncio.open_connection(host, int(port))
        return self

    def send(self, **msg):
        self.w.write(wire.encode(msg))

    async def recv(self, t, timeout=5):
        async with asyncio.timeout(timeout):
            while True:
                msg = json.loads(await self.r.readline())
                if msg["t"] == t:
                    return msg


def _adv():
    return bytes([2, 1, 6, 3, 3, 0x09, 0x18]) + bytes([7, 9]) + b"helmet"


async def _find(env, uuid):
    from bleak import BleakScanner

    found = asyncio.get_running_loop().create_future()

    def on_adv(d, adv):
        if uuid in adv.service_uuids and not found.done():
            found.set_result(d)

    async with BleakScanner(on_adv, bluez={"adapter": env.central_adapter}):
        return await asyncio.wait_for(found, 10)


def test_wire_and_advdata_units():
    assert wire.normalize_uuid("0x2A1C") == "00002a1c-0000-1000-8000-00805f9b34fb"
    assert wire.normalize_uuid(gatt.EVENTS_CHAR.upper()) == gatt.EVENTS_CHAR
    with pytest.raises(wire.BridgeProtocolError):
        wire.normalize_uuid("nope")
    assert wire.bluez_flags(wire.FLAG_READ | wire.FLAG_NOTIFY | wire.FLAG_READ_ENCRYPTED) == [
        "read",
        "notify",
        "encrypt-read",
    ]
    assert wire.decode(b'{"t":"notify","conn":1,"handle":3,"data":"0a0b"}')["data"] == b"\n\x0b"
    for bad in (b"{", b'{"t":"bogus"}', b'{"t":"notify","data":"zz"}', b"[]"):
        with pytest.raises(wire.BridgeProtocolError):
            wire.decode(bad)
    uuid128 = bytes(reversed(bytes.fromhex(gatt.SCREENING_SERVICE.replace("-", ""))))
    f = advdata.parse(_adv() + bytes([17, 7]) + uuid128, bytes([3, 0x19, 0x00, 0x03]))
    assert f == {
        "local_name": "helmet",
        "service_uuids": ["00001809-0000-1000-8000-00805f9b34fb", gatt.SCREENING_SERVICE],
        "appearance": 0x0300,
    }
    assert advdata.parse(b"\x05\x09ab")["local_name"] is None  # truncated structure ignored


@needs_dbus
def test_bridge_read_write_mtu_indicate_and_teardown():
    async def scenario():
        from bleak import BleakClient

        from ble_host.bridge import BleBridge
        from ble_host.environment import BleEnvironment

        async with BleEnvironment() as env, BleBridge(adapter=env.peripheral_adapter, mtu=23) as bridge:
            h = await RawHelmet().open(bridge.address)
            h.send(t="not json at all")  # counted, ignored
            h.w.write(b"{oops\n")
            chars = [
                {"uuid": "0x2a1c", "flags": wire.FLAG_INDICATE, "handle": 3},
                {"uuid": NOTE, "flags": wire.FLAG_READ | wire.FLAG_NOTIFY, "handle": 5},
                {"uuid": CMD, "flags": wire.FLAG_WRITE | wire.FLAG_WRITE_NO_RESPONSE, "handle": 7},
            ]
            h.send(t="register", services=[{"uuid": HTS, "chars": chars}])
            h.send(t="value", handle=5, data=b"hello helmet")
            h.send(t="advertise", adv=_adv(), resp=b"", interval_us=100000)
            await asyncio.wait_for(bridge.registered.wait(), 5)
            dev = await _find(env, "00001809-0000-1000-8000-00805f9b34fb")
            assert dev.name == "helmet"
            async with BleakClient(dev, bluez={"adapter": env.central_adapter}, timeout=10) as client:
                conn = (await h.recv("connect"))["conn"]
                assert (await h.recv("mtu"))["mtu"] == 23
                assert bytes(await client.read_gatt_char(NOTE)) == b"hello helmet"
                await client.write_gatt_char(CMD, b"\x01\x02", response=True)
                w = await h.recv("write")
                assert (w["conn"], w["handle"], w["data"]) == (conn, 7, "0102")
                await client.write_gatt_char(CMD, b"\x03", response=False)
                assert (await h.recv("write"))["data"] == "03"

                notes, inds = asyncio.Queue(), asyncio.Queue()
                await client.start_notify(NOTE, lambda _c, d: notes.put_nowait(bytes(d)))
                await client.start_notify(
                    "00002a1c-0000-1000-8000-00805f9b34fb", lambda _c, d: inds.put_nowait(bytes(d))
                )
                h.send(t="notify", conn=conn, handle=5, data=bytes(range(30)))
                assert await asyncio.wait_for(notes.get(), 5) == bytes(range(20))  # MTU 23 -> 20 bytes
                h.send(t="indicate", conn=conn, handle=3, data=hts.encode_temperature_measurement(37.2))
                assert await asyncio.wait_for(inds.get(), 5) == hts.encode_temperature_measurement(37.2)
                done = await h.recv("indicate_done")
                assert (done["conn"], done["handle"], done["status"]) == (conn, 3, 0)

                h.send(t="disconnect", conn=conn)  # the helmet hangs up
                assert (await h.recv("disconnect"))["conn"] == conn
                async with asyncio.timeout(5):
                    while client.is_connected:
                        await asyncio.sleep(0.02)
            assert bridge.stats["bad_lines"] == 2
            # The helmet process exits: its services and advertisement go away.
            h.w.close()
            async with asyncio.timeout(5):
                while bridge.registered.is_set() or bridge.helmet_connected.is_set():
                    await asyncio.sleep(0.02)

    asyncio.run(asyncio.wait_for(scenario(), 60))


@needs_dbus
def test_encrypted_characteristics_need_pairing():
    async def scenario():
        from bleak import BleakClient
        from bleak.exc import BleakDBusError

        from ble_host.agent import PairingAgent
        from ble_host.bridge import BleBridge
        from ble_host.environment import BleEnvironment

        async with (
            BleEnvironment() as env,
            PairingAgent(),
            BleBridge(adapter=env.peripheral_adapter) as bridge,
        ):
            h = await RawHelmet().open(bridge.address)
            chars = [
                {"uuid": NOTE, "flags": wire.FLAG_READ | wire.FLAG_READ_ENCRYPTED, "handle": 5},
                {"uuid": CMD, "flags": wire.FLAG_WRITE | wire.FLAG_WRITE_AUTHENTICATED, "handle": 7},
            ]
            h.send(t="register", services=[{"uuid": HTS, "chars": chars}])
            h.send(t="value", handle=5, data=b"secret")
            h.send(t="advertise", adv=_adv(), resp=b"", interval_us=100000)
            dev = await _find(env, "00001809-0000-1000-8000-00805f9b34fb")
            async with BleakClient(dev, bluez={"adapter": env.central_adapter}, timeout=10) as client:
                conn = (await h.recv("connect"))["conn"]
                with pytest.raises(BleakDBusError, match="NotPermitted"):
                    await client.read_gatt_char(NOTE)
                await client.pair()
                enc = await h.recv("encryption")
                assert enc["conn"] == conn and enc["bonded"] and not enc["authenticated"]
                assert bytes(await client.read_gatt_char(NOTE)) == b"secret"
                # Just Works is not authenticated: *_AUTHENTICATED stays closed.
                with pytest.raises(BleakDBusError, match="NotPermitted"):
                    await client.write_gatt_char(CMD, b"\x01", response=True)
            assert bridge.stats["refused_read"] == 1 and bridge.stats["refused_write"] == 1

    asyncio.run(asyncio.wait_for(scenario(), 60))
