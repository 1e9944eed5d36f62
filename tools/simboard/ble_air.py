"""The air side of the simulated BLE stack: what a central (the simulated
phone in ``ble_central`` or the host bridge in ``ble_bridge``) does to the
helmet's stack in ``bluetooth``: connect, exchange the MTU, pair or
re-encrypt, write, read, subscribe, take the packets the helmet sent, confirm
indications.  Each action raises the IRQ the real stack would raise, with the
real stack's permission checks in front of it."""

from bluetooth import (
    _IRQ_CENTRAL_CONNECT,
    _IRQ_CENTRAL_DISCONNECT,
    _IRQ_ENCRYPTION_UPDATE,
    _IRQ_GATTS_INDICATE_DONE,
    _IRQ_GATTS_WRITE,
    _IRQ_MTU_EXCHANGED,
    ATT_INSUFFICIENT_AUTHENTICATION,
    ATT_INSUFFICIENT_ENCRYPTION,
    ATT_INVALID_HANDLE,
    ATT_OK,
    ATT_READ_NOT_PERMITTED,
    ATT_WRITE_NOT_PERMITTED,
    FLAG_INDICATE,
    FLAG_NOTIFY,
    FLAG_READ,
    FLAG_READ_AUTHENTICATED,
    FLAG_READ_ENCRYPTED,
    FLAG_WRITE,
    FLAG_WRITE_AUTHENTICATED,
    FLAG_WRITE_ENCRYPTED,
    FLAG_WRITE_NO_RESPONSE,
    SEC_OUR_LTK,
    SEC_PEER_LTK,
    _Conn,
)


def connect(ble, addr, addr_type=1, conn_handle=None):
    """A central connects (advertising stops, as NimBLE does).  Returns the conn handle."""
    ble._need_active()
    if conn_handle is None:
        conn_handle = 0
        while conn_handle in ble._conns:
            conn_handle += 1
    c = _Conn(conn_handle, addr_type, addr)
    ble._conns[conn_handle] = c
    if ble._adv is not None:
        ble._adv = None
        if ble._bridge is not None:
            ble._tell({"t": "advertise", "adv": "", "resp": "", "interval_us": None})
    ble._irq(_IRQ_CENTRAL_CONNECT, (conn_handle, addr_type, ble._view(0, c.addr)))
    return conn_handle


def disconnect(ble, conn_handle):
    c = ble._conns.get(conn_handle)
    if c is not None:
        drop(ble, c)


def drop(ble, c, deliver=True):
    del ble._conns[c.handle]
    c.txq = []
    if deliver:
        ble._irq(_IRQ_CENTRAL_DISCONNECT, (c.handle, c.addr_type, ble._view(0, c.addr)))


def mtu(ble, conn_handle, peer_mtu):
    c = ble._conns[conn_handle]
    c.mtu = max(23, min(peer_mtu, ble._cfg["mtu"]))
    ble._irq(_IRQ_MTU_EXCHANGED, (conn_handle, c.mtu))
    return c.mtu


def encryption(ble, conn_handle, encrypted, authenticated, bonded, key_size):
    c = ble._conns[conn_handle]
    c.encrypted, c.authenticated, c.bonded, c.key_size = encrypted, authenticated, bonded, key_size
    ble._irq(_IRQ_ENCRYPTION_UPDATE, (conn_handle, encrypted, authenticated, bonded, key_size))


def pair(ble, conn_handle, ltk, identity, bond=True, le_secure=True, mitm=False):
    """Pairing initiated by the central.  LE Secure Connections with
    just-works (the helmet has no display or keyboard): encrypted, not
    authenticated.  A bond is stored through _IRQ_SET_SECRET."""
    if mitm and ble._cfg["io"] == 3:
        encryption(ble, conn_handle, False, False, False, 0)  # MITM impossible without I/O
        return False
    if ble._cfg["le_secure"] and not le_secure:
        encryption(ble, conn_handle, False, False, False, 0)  # legacy pairing refused
        return False
    bonded = bool(bond and ble._cfg["bond"])
    if bonded:
        ble._set_secret(SEC_OUR_LTK, identity, b"SIMLTK" + ltk)
        ble._set_secret(SEC_PEER_LTK, identity, b"SIMLTK" + ltk)
    encryption(ble, conn_handle, True, False, bonded, 16)
    return True


def encrypt(ble, conn_handle, ltk, identity):
    """A bonded central re-encrypts with its stored key; the stack asks the
    firmware's secret store for it.  Returns True if the key matched."""
    stored = ble._get_secret(SEC_OUR_LTK, 0, identity)
    if stored is None or stored != b"SIMLTK" + ltk:
        encryption(ble, conn_handle, False, False, False, 0)
        return False
    encryption(ble, conn_handle, True, False, True, 16)
    return True


def write(ble, conn_handle, value_handle, data):
    """A write from the central; returns the ATT status (0 = written, IRQ raised)."""
    c = ble._conns.get(conn_handle)
    if c is None:
        return ATT_INVALID_HANDLE
    a = ble._attrs.get(value_handle)
    if a is None:
        return ATT_INVALID_HANDLE
    if not a.flags & (FLAG_WRITE | FLAG_WRITE_NO_RESPONSE):
        return ATT_WRITE_NOT_PERMITTED
    if a.flags & FLAG_WRITE_AUTHENTICATED and not c.authenticated:
        return ATT_INSUFFICIENT_AUTHENTICATION
    if a.flags & FLAG_WRITE_ENCRYPTED and not c.encrypted:
        return ATT_INSUFFICIENT_ENCRYPTION
    if a.append:
        a.value = (a.value + bytes(data))[: a.alloc]
    else:
        a.value = bytearray(bytes(data)[: a.alloc])  # NimBLE cuts a write to the buffer
    ble._irq(_IRQ_GATTS_WRITE, (conn_handle, value_handle))
    return ATT_OK


def read(ble, conn_handle, value_handle):
    """A read from the central: (ATT status, bytes)."""
    c = ble._conns.get(conn_handle)
    a = ble._attrs.get(value_handle)
    if c is None or a is None:
        return ATT_INVALID_HANDLE, b""
    status = _read_permission(c, a)
    return status, (bytes(a.value) if status == ATT_OK else b"")


def _read_permission(c, a):
    if not a.flags & FLAG_READ:
        return ATT_READ_NOT_PERMITTED
    if a.flags & FLAG_READ_AUTHENTICATED and not c.authenticated:
        return ATT_INSUFFICIENT_AUTHENTICATION
    if a.flags & FLAG_READ_ENCRYPTED and not c.encrypted:
        return ATT_INSUFFICIENT_ENCRYPTION
    return ATT_OK


def subscribe(ble, conn_handle, value_handle, notify=True, indicate=False):
    """A CCCD write.  Characteristics readable only encrypted need an
    encrypted link for their CCCD too (the simulation's rule)."""
    c = ble._conns.get(conn_handle)
    a = ble._attrs.get(value_handle)
    if c is None or a is None:
        return ATT_INVALID_HANDLE
    if (notify and not a.flags & FLAG_NOTIFY) or (indicate and not a.flags & FLAG_INDICATE):
        return ATT_WRITE_NOT_PERMITTED
    if a.flags & FLAG_READ_ENCRYPTED and not c.encrypted:
        return ATT_INSUFFICIENT_ENCRYPTION
    c.cccd[value_handle] = (1 if notify else 0) | (2 if indicate else 0)
    return ATT_OK


def take(ble, conn_handle, limit=1000):
    """Take up to `limit` packets off the connection's transmit queue (the air)."""
    c = ble._conns.get(conn_handle)
    if c is None:
        return []
    out = c.txq[:limit]
    c.txq = c.txq[limit:]
    return out


def indicate_done(ble, conn_handle, value_handle, status=0):
    c = ble._conns.get(conn_handle)
    if c is None or c.indicating != value_handle:
        return
    c.indicating = None
    ble._irq(_IRQ_GATTS_INDICATE_DONE, (conn_handle, value_handle, status))


def advertising(ble):
    """(interval_us, adv, resp, connectable) or None."""
    return ble._adv


def conn(ble, conn_handle):
    return ble._conns.get(conn_handle)


def process(ble):
    """Deliver the stack events the firmware caused (disconnects, pairing)."""
    while ble._pending:
        what, conn_handle = ble._pending.pop(0)
        c = ble._conns.get(conn_handle)
        if c is None:
            continue
        if what == "drop":
            drop(ble, c)
