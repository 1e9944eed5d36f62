"""Host bridge of the simulated radio: the helmet's GATT server appears on the
host (e.g. as a BlueZ-emulated peripheral) through one TCP connection.

``bluetooth.BLE().active(True)`` calls ``start()`` when HELMET_BLE_BRIDGE=host:port
is set: a TCP client connects there and an asyncio task (``task()``) is put on
the firmware's event loop to read the host's messages; ``bluetooth.sim_poll()``
reads them instead when no loop runs.  Messages are JSON objects, one per line
(the protocol is in bluetooth.py's docstring).  Sending never drops a message:
when the socket is full it waits for the host.
"""

import errno
import json
import os
from binascii import unhexlify

import ble_air


def start(ble):
    spec = os.getenv("HELMET_BLE_BRIDGE")
    if not spec or ble._bridge is not None:
        return
    import socket

    host, port = spec.rsplit(":", 1)
    addr = socket.getaddrinfo(host, int(port))[0][-1]
    s = socket.socket()
    s.connect(addr)
    # TCP_NODELAY (IPPROTO_TCP 6, option 1; the port names neither): without it
    # Nagle holds each small notification until the host's delayed ACK, adding
    # up to 40 ms per event that no radio has.  (CPython's asyncio, the host
    # side, sets it by default.)
    s.setsockopt(6, 1, 1)
    s.setblocking(False)
    ble._bridge = [s, bytearray(), False]  # socket, partial input line, task running
    try:
        import asyncio
    except ImportError:  # e.g. MICROPYPATH without ".frozen": sim_poll() services the bridge
        return
    asyncio.create_task(task())  # runs on the firmware's own loop once it runs


def send(ble, msg):
    br = ble._bridge
    data = memoryview((json.dumps(msg) + "\n").encode())
    while data:
        try:
            n = br[0].send(data)
        except OSError as e:
            if e.args[0] != errno.EAGAIN:
                raise
            n = 0
        if n:
            data = data[n:]
        else:  # the host is slow: wait until it takes more
            import select

            p = select.poll()
            p.register(br[0], select.POLLOUT)
            p.poll(100)


def deliver_soon(ble):
    """Deliver pending stack events (a gap_disconnect's IRQ) from the loop, not
    from inside the firmware's call, as the real stack does."""
    if ble._bridge[2]:
        import asyncio

        async def later():
            ble_air.process(ble)

        asyncio.create_task(later())


def handle_line(ble, line):
    try:
        m = json.loads(line)
    except ValueError:
        return
    t = m.get("t")
    conn = m.get("conn")
    if t == "connect":
        ble_air.connect(ble, unhexlify(m.get("addr") or "000000000000"), 1, conn)
    elif conn not in ble._conns:
        return
    elif t == "disconnect":
        ble_air.disconnect(ble, conn)
    elif t == "write":
        ble_air.write(ble, conn, m["handle"], unhexlify(m["data"]))
    elif t == "mtu":
        ble_air.mtu(ble, conn, m["mtu"])
    elif t == "encryption":
        ble_air.encryption(
            ble, conn, bool(m["encrypted"]), bool(m["authenticated"]), bool(m["bonded"]), int(m.get("key_size", 16))
        )
    elif t == "indicate_done":
        ble_air.indicate_done(ble, conn, m["handle"], int(m.get("status", 0)))


def poll(ble):
    """Read and handle whatever the host sent, without blocking."""
    br = ble._bridge
    if br[2]:
        return  # the asyncio task owns the socket
    while True:
        try:
            chunk = br[0].recv(4096)
        except OSError as e:
            if e.args[0] == errno.EAGAIN:
                return
            raise
        if not chunk:
            return
        br[1] += chunk
        while True:
            i = br[1].find(b"\n")
            if i < 0:
                break
            line = bytes(br[1][:i])
            br[1] = br[1][i + 1 :]
            handle_line(ble, line)


async def task():
    import asyncio

    import bluetooth

    ble = bluetooth.BLE._instance
    if ble is None or ble._bridge is None:
        return
    br = ble._bridge
    br[2] = True
    reader = asyncio.StreamReader(br[0])
    try:
        while True:
            line = await reader.readline()
            if not line:
                return  # the host closed the bridge: the radio goes quiet
            if line[-1:] != b"\n":
                br[1] += line
                continue
            if br[1]:
                line = bytes(br[1]) + line
                br[1] = bytearray()
            handle_line(ble, line)
            ble_air.process(ble)
    finally:
        br[2] = False
