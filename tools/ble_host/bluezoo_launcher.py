"""Run bluezoo (PyPI, 1.0.2) with the fixes that a link able to reconnect needs.

Why: bluezoo exports a GATT "link" object per remote service/characteristic
when a central connects, but never removes them on disconnect.  The next
Connect then fails inside bluezoo (sd-bus refuses to export the same object
path twice: errno 17, EEXIST) and bleak gets
org.freedesktop.DBus.Error.Failed.  Real BlueZ tears the client-side GATT
objects down on disconnect, so this wrapper does the same, and also makes a
disconnect requested from the peripheral's side reach the central's device
object (bluezoo updates an unexported copy instead).

Second fix: real BlueZ reports every advertisement it receives while
discovering (at least an RSSI PropertiesChanged on the device object), so a
scanner also finds a device it already knows, e.g. a bonded helmet back from a
reboot.  bluezoo signals only fields that changed, so a rebooted helmet with
the same advertisement stayed invisible to bleak's scanner (the link then
never reconnected once it had gone back to scanning).  Run as:

    python -m ble_host.bluezoo_launcher <bluezoo arguments>
"""

import sys

from bluezoo import bluezoo as _bluezoo_main
from bluezoo.adapter import Adapter
from bluezoo.device import Device

_original_disconnect = Device.disconnect
_original_add_device = Adapter.add_device


def _counterpart(device):
    # The exported Device object that represents `device`'s adapter on the
    # peer adapter (the other end of the same link), if any.
    if device.adapter is None:
        return None
    path = "%s/dev_%s" % (device.peer_adapter.get_object_path(), device.adapter.address.replace(":", "_"))
    return device.peer_adapter.devices.get(path)


async def _drop_links(device):
    for link in list(device.services.values()):
        subscription = getattr(link, "client_props_changed_subscription", None)
        if subscription is not None:
            subscription.unsubscribe()
        device.peer_adapter.mock.remove_object(link)
    device.services.clear()
    if device.services_resolved:
        await device.ServicesResolved.set_async(False)


async def _disconnect(self, uuid=None):
    other = _counterpart(self)
    await _original_disconnect(self, uuid)
    if other is not None and other is not self.peer and other.connected:
        await other.Connected.set_async(False)
    for d in (self, other):
        if d is not None:
            await _drop_links(d)


async def _add_device(self, device):
    await _original_add_device(self, device)  # attaches `device`, so its path is known
    known = self.devices.get(device.get_object_path())
    if known is not None and known is not device and self.discovering:
        # An advertisement from a device already on the bus: report it, as BlueZ does.
        known.properties_changed.emit(("org.bluez.Device1", {"RSSI": ("n", known.rssi)}, []))


def main():
    Device.disconnect = _disconnect
    Adapter.add_device = _add_device
    sys.argv[0] = "bluezoo"
    return _bluezoo_main.main()


if __name__ == "__main__":
    sys.exit(main())
