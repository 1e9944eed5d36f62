"""Feasibility of the emulated BLE chain: private dbus-daemon + bluezoo (two
adapters) + a bless peripheral on hci0 + bleak's real BlueZ backend on hci1."""

import asyncio
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))

from ble_host.environment import BleEnvironment, unavailable_reason  # noqa: E402

pytestmark = pytest.mark.skipif(unavailable_reason() is not None, reason=unavailable_reason() or "")

SERVICE = "1a980001-41a6-4357-aae4-276bb3e09524"
CHAR = "1a980002-41a6-4357-aae4-276bb3e09524"


async def _set_adapter_discoverable(bus_address, adapter):
    from dbus_fast import Message, MessageType, Variant
    from dbus_fast.aio import MessageBus

    bus = await MessageBus(bus_address=bus_address).connect()
    try:
        reply = await bus.call(
            Message(
                destination="org.bluez",
                path="/org/bluez/" + adapter,
                interface="org.freedesktop.DBus.Properties",
                member="Set",
                signature="ssv",
                body=["org.bluez.Adapter1", "Discoverable", Variant("b", True)],
            )
        )
        assert reply.message_type == MessageType.METHOD_RETURN, reply.body
    finally:
        bus.disconnect()


async def _scenario():
    from bleak import BleakClient, BleakScanner
    from bless import BlessServer, GATTAttributePermissions, GATTCharacteristicProperties

    async with BleEnvironment() as env:
        server = BlessServer(name="helmet", adapter=env.peripheral_adapter)
        await server.add_new_service(SERVICE)
        await server.add_new_characteristic(
            SERVICE,
            CHAR,
            GATTCharacteristicProperties.read | GATTCharacteristicProperties.notify,
            bytearray(b"hello"),
            GATTAttributePermissions.readable,
        )
        server.read_request_func = lambda char, **kw: char.value
        # bless reports Notifying=True for every notify characteristic from the
        # start; bluezoo then takes the AcquireNotify path, which bless lacks.
        # (One reason the bridge exports its own GATT objects instead.)
        server.get_characteristic(CHAR).gatt._notifying = False
        await server.start()
        # bless's advertisement has no Discoverable property; bluezoo then
        # falls back to the adapter's, so make hci0 discoverable.
        await _set_adapter_discoverable(env.bus_address, env.peripheral_adapter)
        try:
            # bluezoo announces a device once (InterfacesAdded) and sends no
            # repeats for unchanged data: a callback given to the constructor
            # is registered before discovery starts, so it cannot miss it
            # (find_device_by_filter can).
            found = asyncio.get_running_loop().create_future()

            def on_adv(d, adv):
                if SERVICE in adv.service_uuids and not found.done():
                    found.set_result(d)

            async with BleakScanner(on_adv, service_uuids=[SERVICE], bluez={"adapter": env.central_adapter}):
                device = await asyncio.wait_for(found, 10)
            assert device is not None, "the bless peripheral was not discovered on hci1"
            got = asyncio.Queue()
            async with BleakClient(device, bluez={"adapter": env.central_adapter}, timeout=10) as client:
                assert bytes(await client.read_gatt_char(CHAR)) == b"hello"
                await client.start_notify(CHAR, lambda _c, data: got.put_nowait(bytes(data)))
                server.get_characteristic(CHAR).value = bytearray(b"notified")
                server.update_value(SERVICE, CHAR)
                assert await asyncio.wait_for(got.get(), 5) == b"notified"
        finally:
            await server.stop()
            server.bus.disconnect()  # before the bus goes away, or dbus_next logs EOFError


def test_bless_peripheral_bleak_central_read_and_notify():
    asyncio.run(asyncio.wait_for(_scenario(), 40))
