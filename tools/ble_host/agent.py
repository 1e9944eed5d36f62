"""A "Just Works" pairing agent: what the phone's OS provides on a real device.

bluezoo pairs only when a default agent with capability NoInputNoOutput is
registered (org.bluez.AgentManager1); without one, Device1.Pair returns
success without pairing.  Use as `async with PairingAgent(): ...`.  Just Works
gives an encrypted, bonded link that is NOT authenticated (no MITM protection).
"""

from dbus_fast import BusType, Message, MessageType
from dbus_fast.aio import MessageBus
from dbus_fast.annotations import DBusObjectPath, DBusStr, DBusUInt32
from dbus_fast.service import ServiceInterface, dbus_method

AGENT_PATH = "/helmet/agent"


class _Agent(ServiceInterface):
    def __init__(self):
        super().__init__("org.bluez.Agent1")

    @dbus_method()
    def Release(self):  # noqa: N802 (D-Bus names)
        pass

    @dbus_method()
    def RequestConfirmation(self, device: DBusObjectPath, passkey: DBusUInt32):  # noqa: N802
        pass  # Just Works: accept

    @dbus_method()
    def RequestAuthorization(self, device: DBusObjectPath):  # noqa: N802
        pass

    @dbus_method()
    def AuthorizeService(self, device: DBusObjectPath, uuid: DBusStr):  # noqa: N802
        pass

    @dbus_method()
    def Cancel(self):  # noqa: N802
        pass


class PairingAgent:
    def __init__(self, capability="NoInputNoOutput"):
        self.capability = capability
        self.bus = None

    async def _call(self, member, signature, body):
        reply = await self.bus.call(
            Message(
                destination="org.bluez",
                path="/org/bluez",
                interface="org.bluez.AgentManager1",
                member=member,
                signature=signature,
                body=body,
            )
        )
        if reply.message_type == MessageType.ERROR:
            raise RuntimeError("AgentManager1.%s: %s %s" % (member, reply.error_name, reply.body))

    async def __aenter__(self):
        self.bus = await MessageBus(bus_type=BusType.SYSTEM).connect()
        self.bus.export(AGENT_PATH, _Agent())
        await self._call("RegisterAgent", "os", [AGENT_PATH, self.capability])
        await self._call("RequestDefaultAgent", "o", [AGENT_PATH])
        return self

    async def __aexit__(self, *exc):
        # Dropping the connection unregisters the agent (bluezoo watches for it).
        self.bus.disconnect()
        self.bus = None
