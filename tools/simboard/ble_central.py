"""A simulated phone (BLE central) for MicroPython tests of the helmet's GATT server.

It talks to the simulated stack in ``bluetooth`` the way a phone's BLE stack
talks over the air: it connects to the advertising helmet, exchanges the MTU,
pairs and bonds (LE Secure Connections) or re-encrypts with its stored key,
subscribes (CCCD), writes and reads by handle, and collects what the helmet
notifies and indicates.  Like a phone's host stack it drops notifications for
characteristics it has not subscribed to and confirms indications itself.

    central = Central()
    conn = central.connect()
    central.exchange_mtu(247)
    central.pair()
    central.subscribe(handle)
    central.write(handle, data)   # -> ATT status, 0 = written
    central.process()             # move packets over the air, deliver stack events
    central.take(handle)          # -> [bytes, ...] received on that handle

``on_packet(kind, handle, data)`` (kind "n" or "i") may be given instead of
collecting, so long runs keep no history.
"""

import bluetooth

import ble_air


class Central:
    def __init__(self, identity=b"\xc0\xff\xee\x00\x00\x01", ltk=None, on_packet=None):
        self.identity = bytes(identity)  # the phone's identity address
        self.ltk = ltk  # our copy of the bond's key (None = not bonded)
        self.on_packet = on_packet
        self.conn = None
        self.mtu = 23
        self.received = {}  # handle -> [bytes, ...]
        self.dropped_unsubscribed = 0
        self.subscribed = {}
        self.confirm_indications = True
        self._ble = bluetooth.BLE()
        self._seq = 0

    # ------------------------------------------------------------ link
    def connect(self):
        """Connect to the advertising helmet; returns the conn handle."""
        if (
            ble_air.advertising(
                self._ble,
            )
            is None
        ):
            raise OSError("helmet is not advertising")
        adv = ble_air.advertising(
            self._ble,
        )
        if not adv[3]:
            raise OSError("helmet is not connectable")
        # Phones connect from a private address; the bond is tied to the identity.
        addr = bytes([0x40 | (self.identity[0] & 0x3F)]) + self.identity[1:]
        self.conn = ble_air.connect(self._ble, addr, 1)
        self.mtu = 23
        self.subscribed = {}
        return self.conn

    def disconnect(self):
        """The link drops (walked out of range, phone restarted)."""
        if self.conn is not None:
            ble_air.disconnect(self._ble, self.conn)
        self.conn = None

    def connected(self):
        return self.conn is not None and ble_air.conn(self._ble, self.conn) is not None

    def exchange_mtu(self, mtu=247):
        self.mtu = ble_air.mtu(self._ble, self.conn, mtu)
        return self.mtu

    def pair(self, bond=True, le_secure=True, mitm=False):
        """Pair (just works, LE Secure Connections).  True when encrypted."""
        self._seq += 1
        ltk = bytes((self.identity[i % 6] + 31 * self._seq + i) & 0xFF for i in range(16))
        ok = ble_air.pair(self._ble, self.conn, ltk, self._key(), bond, le_secure, mitm)
        if ok and bond:
            self.ltk = ltk
        return ok

    def encrypt(self):
        """Re-encrypt a reconnection with the stored bond (no new pairing)."""
        if self.ltk is None:
            return False
        return ble_air.encrypt(self._ble, self.conn, self.ltk, self._key())

    def _key(self):
        return b"\x00" + self.identity  # identity address type + address, NimBLE's store key

    # ------------------------------------------------------------ GATT client
    def subscribe(self, handle, indicate=False):
        status = ble_air.subscribe(self._ble, self.conn, handle, not indicate, indicate)
        if status == 0:
            self.subscribed[handle] = True
        return status

    def write(self, handle, data):
        return ble_air.write(self._ble, self.conn, handle, data)

    def read(self, handle):
        return ble_air.read(self._ble, self.conn, handle)

    # ------------------------------------------------------------ the air
    def process(self, limit=1000):
        """Move queued packets to this phone and deliver pending stack events.
        Returns how many packets arrived."""
        bluetooth.sim_poll()
        if not self.connected():
            self.conn = None
            return 0
        n = 0
        for kind, handle, data in ble_air.take(self._ble, self.conn, limit):
            n += 1
            if kind == "i" and self.confirm_indications:
                ble_air.indicate_done(self._ble, self.conn, handle, 0)
            if not self.subscribed.get(handle):
                self.dropped_unsubscribed += 1
                continue
            if self.on_packet is not None:
                self.on_packet(kind, handle, data)
            else:
                self.received.setdefault(handle, []).append(data)
        bluetooth.sim_poll()
        return n

    def take(self, handle):
        got = self.received.pop(handle, [])
        return got
