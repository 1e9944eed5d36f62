"""The helmet's GATT database and advertisement as BlueZ D-Bus objects
(org.bluez.GattService1 / GattCharacteristic1 / LEAdvertisement1), exported
with dbus-fast and registered through GattManager1 / LEAdvertisingManager1.

Why not bless: the bridge must know which central a read/write comes from
(the "device" option BlueZ passes), see StartNotify/StopNotify, publish the
MTU, receive indication confirmations (Confirm) and report Notifying=False
until a central subscribes; bless hides the options, swallows StartNotify,
reports Notifying=True for every notify characteristic (which makes bluezoo
take its AcquireNotify path, which bless lacks) and has no Confirm.
"""

from typing import Annotated

from dbus_fast import DBusError, PropertyAccess
from dbus_fast.annotations import (
    DBusBool,
    DBusBytes,
    DBusDict,
    DBusObjectPath,
    DBusSignature,
    DBusStr,
    DBusUInt16,
)
from dbus_fast.service import ServiceInterface, dbus_method, dbus_property

DBusStrList = Annotated[list[str], DBusSignature("as")]


class CharacteristicHooks:
    """What the bridge does when the central touches a characteristic."""

    async def on_write(self, char, device_path, data, with_response):  # pragma: no cover - interface
        raise NotImplementedError

    def on_subscribe(self, char, subscribed):  # pragma: no cover - interface
        raise NotImplementedError

    def on_confirm(self, char):  # pragma: no cover - interface
        raise NotImplementedError

    def mtu(self):  # pragma: no cover - interface
        raise NotImplementedError

    def check_access(self, char, device_path, op):  # pragma: no cover - interface
        """Raise DBusError if this central may not `op` ("read"/"write") now."""
        raise NotImplementedError


class GattService(ServiceInterface):
    def __init__(self, path, uuid):
        super().__init__("org.bluez.GattService1")
        self.path, self.uuid, self._handle = path, uuid, 0

    @dbus_property(access=PropertyAccess.READ)
    def UUID(self) -> DBusStr:  # noqa: N802 (D-Bus names)
        return self.uuid

    @dbus_property(access=PropertyAccess.READ)
    def Primary(self) -> DBusBool:  # noqa: N802
        return True

    # Handle 0 asks BlueZ to assign one (and write it back).
    @dbus_property()
    def Handle(self) -> DBusUInt16:  # noqa: N802
        return self._handle

    @Handle.setter
    def Handle(self, value: DBusUInt16):  # noqa: N802
        self._handle = value


class GattCharacteristic(ServiceInterface):
    def __init__(self, path, uuid, service_path, flags, mp_handle, hooks):
        super().__init__("org.bluez.GattCharacteristic1")
        self.path, self.uuid, self.service_path = path, uuid, service_path
        self.flags = list(flags)
        self.mp_handle = mp_handle  # the helmet's attribute handle
        self.hooks = hooks
        self.value = b""  # what a read returns (the helmet's gatts_write value)
        self.notifying = False
        self._handle = 0

    @dbus_property(access=PropertyAccess.READ)
    def UUID(self) -> DBusStr:  # noqa: N802
        return self.uuid

    @dbus_property(access=PropertyAccess.READ)
    def Service(self) -> DBusObjectPath:  # noqa: N802
        return self.service_path

    @dbus_property(access=PropertyAccess.READ)
    def Flags(self) -> DBusStrList:  # noqa: N802
        return self.flags

    @dbus_property(access=PropertyAccess.READ)
    def Value(self) -> DBusBytes:  # noqa: N802
        return self.value

    @dbus_property(access=PropertyAccess.READ)
    def Notifying(self) -> DBusBool:  # noqa: N802
        return self.notifying

    @dbus_property(access=PropertyAccess.READ)
    def MTU(self) -> DBusUInt16:  # noqa: N802
        return self.hooks.mtu()

    @dbus_property()
    def Handle(self) -> DBusUInt16:  # noqa: N802
        return self._handle

    @Handle.setter
    def Handle(self, value: DBusUInt16):  # noqa: N802
        self._handle = value

    @dbus_method()
    def ReadValue(self, options: DBusDict) -> DBusBytes:  # noqa: N802
        if "read" not in self.flags and not any(f.endswith("-read") for f in self.flags):
            raise DBusError("org.bluez.Error.NotPermitted", "Read not permitted")
        self.hooks.check_access(self, options["device"].value if "device" in options else "", "read")
        offset = options["offset"].value if "offset" in options else 0
        return self.value[offset:]

    @dbus_method()
    async def WriteValue(self, value: DBusBytes, options: DBusDict):  # noqa: N802
        if not any(f.startswith("write") or f.endswith("-write") for f in self.flags):
            raise DBusError("org.bluez.Error.NotPermitted", "Write not permitted")
        device = options["device"].value if "device" in options else ""
        kind = options["type"].value if "type" in options else "request"
        self.hooks.check_access(self, device, "write")
        await self.hooks.on_write(self, device, bytes(value), kind != "command")

    @dbus_method()
    def StartNotify(self):  # noqa: N802
        if not self.notifying:
            self.set_notifying(True)
            self.hooks.on_subscribe(self, True)

    @dbus_method()
    def StopNotify(self):  # noqa: N802
        if self.notifying:
            self.set_notifying(False)
            self.hooks.on_subscribe(self, False)

    @dbus_method()
    def Confirm(self):  # noqa: N802
        self.hooks.on_confirm(self)

    # --- called by the bridge --------------------------------------------------------
    def set_notifying(self, on):
        self.notifying = on
        self.emit_properties_changed({"Notifying": on})

    def send(self, data):
        """Notify/indicate: BlueZ sends a PropertiesChanged(Value) to subscribers."""
        self.value = data
        self.emit_properties_changed({"Value": data})


class Advertisement(ServiceInterface):
    def __init__(self, path, local_name, service_uuids, appearance):
        super().__init__("org.bluez.LEAdvertisement1")
        self.path = path
        self._name = local_name or ""
        self._uuids = list(service_uuids)
        self._appearance = appearance

    @dbus_property(access=PropertyAccess.READ)
    def Type(self) -> DBusStr:  # noqa: N802
        return "peripheral"

    @dbus_property(access=PropertyAccess.READ)
    def ServiceUUIDs(self) -> DBusStrList:  # noqa: N802
        return self._uuids

    @dbus_property(access=PropertyAccess.READ)
    def LocalName(self) -> DBusStr:  # noqa: N802
        return self._name

    @dbus_property(access=PropertyAccess.READ)
    def Appearance(self) -> DBusUInt16:  # noqa: N802
        return self._appearance or 0

    # The helmet advertises to be found: without this bluezoo falls back to the
    # adapter's BR/EDR discoverable setting and hides the advertisement.
    @dbus_property(access=PropertyAccess.READ)
    def Discoverable(self) -> DBusBool:  # noqa: N802
        return True

    @dbus_method()
    def Release(self):  # noqa: N802
        pass
