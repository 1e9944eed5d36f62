"""The whole simulated link in one context manager, for tests, the bench and
the demo: private bus + bluezoo, the bridge, a helmet (the CPython fake unless
one is supplied) and, optionally, the companion app's HelmetLink on adapter B.
"""

import asyncio
import contextlib

from .agent import PairingAgent
from .bridge import BleBridge
from .environment import BleEnvironment
from .fake_helmet import FakeHelmet


@contextlib.asynccontextmanager
async def simulated_link(mtu=247, helmet=True, link_kwargs=None, log_path=None, pairing_agent=True):
    """Yields a namespace with env, bridge, helmet (or None) and link (or None).
    pairing_agent: register a Just Works agent, as the phone's OS would."""
    from companion_app.backoff import Backoff
    from companion_app.link import HelmetLink

    async with contextlib.AsyncExitStack() as stack:
        env = await stack.enter_async_context(BleEnvironment(log_path=log_path))
        stack.push_async_callback(_release_bleak_bus)
        if pairing_agent:
            await stack.enter_async_context(PairingAgent())
        bridge = await stack.enter_async_context(BleBridge(adapter=env.peripheral_adapter, mtu=mtu))
        fake = None
        if helmet:
            fake = await stack.enter_async_context(FakeHelmet(bridge.address))
        link = None
        if link_kwargs is not None:
            kw = {"adapter": env.central_adapter, "backoff": Backoff(0.05, 1.0), "scan_timeout_s": 5.0}
            kw.update(link_kwargs)
            link = HelmetLink(**kw)
            stack.push_async_callback(link.stop)
        yield _Chain(env, bridge, fake, link)


class _Chain:
    def __init__(self, env, bridge, helmet, link):
        self.env, self.bridge, self.helmet, self.link = env, bridge, helmet, link


async def _release_bleak_bus():
    # bleak keeps one D-Bus connection per event loop (its BlueZ manager).  Close
    # it before the private bus goes away, or its reader logs an EOFError
    # ("Future exception was never retrieved").  Private bleak API, hence guarded.
    try:
        from bleak.backends.bluezdbus import manager

        m = manager._global_instances.pop(asyncio.get_running_loop(), None)
        if m is not None and m._bus is not None:
            m._bus.disconnect()
    except Exception:  # noqa: BLE001 - cosmetic only
        pass
