"""Run bluezoo (PyPI, 1.0.2) with one fix that a link able to reconnect needs.

Why: bluezoo exports a GATT "link" object per remote service/characteristic
when a central connects, but never removes them on disconnect.  The next
Connect then fails inside bluezoo (sd-bus refuses to export the same object
path twice: errno 17, EEXIST) and bleak gets
org.freedesktop.DBus.Error.Failed.  Real BlueZ tears the client-side GATT
objects down on disconnect, so this wrapper does the same, and also makes a
disconnect requested from the peripheral's side reach the central's device
object (bluezoo updates an unexported copy instead).  Run as:

    python -m ble_host.bluezoo_launcher <bluezoo arguments>
"""

import sys

from bluezoo import bluezoo as _bluezoo_main
from bluezoo.device import Device

_original_disconnect = Device.disconnect


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


def main():
    Device.disconnect = _disconnect
    sys.argv[0] = "bluezoo"
    return _bluezoo_main.main()


if __name__ == "__main__":
    sys.exit(main())
