"""A CPython stand-in for the helmet firmware, speaking the bridge protocol.

Why: it proves bridge -> bluezoo -> bleak -> companion_app.link before the
MicroPython `bluetooth` module and firmware exist, and drives the bench.  It
registers the screening service from shared/protocol, keeps a journal of
events until acknowledged, answers the control point (ACK, REPLAY, LIVE
start/stop) and chunks live frames at the negotiated MTU.  Not the firmware:
no flash, no security, no Health Thermometer service.
"""

import asyncio
import json
import time

import protocol as P
import protocol_control as PC
import protocol_frames as PF
import protocol_gatt as PG

from . import wire

H_EVENTS, H_FRAMES, H_CONTROL, H_CONFIG = 11, 14, 17, 20


def _adv_payload(name):
    uuid_le = bytes(reversed(bytes.fromhex(PG.SCREENING_SERVICE.replace("-", ""))))
    nm = name.encode()
    return bytes([2, 0x01, 0x06, 17, 0x07]) + uuid_le + bytes([len(nm) + 1, 0x09]) + nm


class FakeHelmet:
    def __init__(self, bridge_address, name="helmet-sim", first_seq=1, replay_overlap=0):
        self.host, port = bridge_address.rsplit(":", 1)
        self.port = int(port)
        self.name = name
        self.next_seq = first_seq
        self.journal = {}  # seq -> encoded record, until acknowledged
        self.acked = first_seq - 1
        self.decided_at_ns = {}  # seq -> time.time_ns() when "decided" (wall clock, like the firmware's)
        self.conn = None
        self.mtu = 23
        self.live = False
        self.connected = asyncio.Event()
        self.writes = []  # (handle, data) received from the central
        self.replays = []  # from_seq of every OP_REPLAY
        self.encryption = []  # "encryption" messages from the bridge
        self._reader = self._writer = self._task = None
        self._frame_id = 0
        # Replay this many already-acknowledged events too (tests duplicate dropping).
        self.replay_overlap = replay_overlap
        self._sent_log = {}  # every record ever journaled, for overlap replays

    async def start(self):
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        chars = [
            {"uuid": PG.EVENTS_CHAR, "flags": wire.FLAG_NOTIFY, "handle": H_EVENTS},
            {"uuid": PG.LIVE_FRAMES_CHAR, "flags": wire.FLAG_NOTIFY, "handle": H_FRAMES},
            {"uuid": PG.CONTROL_POINT_CHAR, "flags": wire.FLAG_WRITE | wire.FLAG_NOTIFY, "handle": H_CONTROL},
            {"uuid": PG.CONFIGURATION_CHAR, "flags": wire.FLAG_READ, "handle": H_CONFIG},
        ]
        self._send({"t": "register", "services": [{"uuid": PG.SCREENING_SERVICE, "chars": chars}]})
        self._send({"t": "value", "handle": H_CONFIG, "data": P.encode_config(P.DeviceConfig())})
        self.advertise()
        self._task = asyncio.create_task(self._read_loop())
        return self

    async def stop(self):
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def __aenter__(self):
        return await self.start()

    async def __aexit__(self, *exc):
        await self.stop()

    # --- radio primitives ------------------------------------------------------------
    def _send(self, msg):
        self._writer.write(wire.encode(msg))

    def advertise(self, on=True):
        adv = _adv_payload(self.name)
        self._send({"t": "advertise", "adv": adv, "resp": b"", "interval_us": 100000 if on else None})

    def notify(self, handle, data):
        """Raw notification (also used to inject malformed data)."""
        if self.conn is not None:
            self._send({"t": "notify", "conn": self.conn, "handle": handle, "data": bytes(data)})

    def disconnect(self):
        if self.conn is not None:
            self._send({"t": "disconnect", "conn": self.conn})

    async def drain(self):
        await self._writer.drain()

    # --- the screening side ------------------------------------------------------------
    def emit(self, **fields):
        """Journal a screening event and notify it if a central is connected."""
        seq = self.next_seq
        self.next_seq += 1
        fields.setdefault("outcome", P.CLEAR)
        fields.setdefault("core_c", 36.8)
        fields.setdefault("core_u_c", 0.3)
        fields.setdefault("skin_c", 35.1)
        fields.setdefault("skin_u_c", 0.2)
        fields.setdefault("distance_m", 1.5)
        fields.setdefault("time", int(time.time()))
        record = P.encode_event(P.ScreeningEvent(seq=seq, **fields))
        self.journal[seq] = record
        self._sent_log[seq] = record
        self.decided_at_ns[seq] = time.time_ns()
        self.notify(H_EVENTS, record)
        return seq

    def send_frame(self, width=32, height=24, ta_c=25.0, pixels=None):
        if pixels is None:
            pixels = [30.0 + (i % 7) * 0.5 for i in range(width * height)]
        body = P.encode_frame_body(width, height, ta_c, pixels)
        self._frame_id = (self._frame_id + 1) & 0xFFFF
        for chunk in PF.frame_chunks(body, self._frame_id, self.mtu):
            self.notify(H_FRAMES, chunk)
        return self._frame_id

    def _replay(self, from_seq):
        start = max(0, from_seq - self.replay_overlap)
        seqs = sorted(s for s in self._sent_log if s >= start and (s in self.journal or s < from_seq))
        for s in seqs:
            self.notify(H_EVENTS, self._sent_log[s])
        return len(seqs)

    def _control(self, data):
        try:
            op, arg = PC.decode_command(data)
        except P.ProtocolError as e:
            self.notify(H_CONTROL, PC.encode_response(PC.command_opcode(data), PC.result_for_error(e)))
            return
        value = 0
        if op == PC.OP_ACK:
            for s in [s for s in self.journal if s <= arg]:
                del self.journal[s]
            self.acked = max(self.acked, arg)
        elif op == PC.OP_REPLAY:
            self.replays.append(arg)
            # Respond first so the app knows how many follow.
            value = len([s for s in self._sent_log if s >= max(0, arg - self.replay_overlap)])
        elif op in (PC.OP_LIVE_START, PC.OP_LIVE_STOP):
            self.live = op == PC.OP_LIVE_START
        self.notify(H_CONTROL, PC.encode_response(op, PC.RESULT_SUCCESS, value))
        if op == PC.OP_REPLAY:
            self._replay(arg)

    async def _read_loop(self):
        while line := await self._reader.readline():
            msg = json.loads(line)
            t = msg["t"]
            if t == "connect":
                self.conn = msg["conn"]
                self.advertise(False)  # one central at a time, like the firmware
                self.connected.set()
            elif t == "disconnect":
                self.conn = None
                self.live = False
                self.connected.clear()
                self.advertise(True)
            elif t == "mtu":
                self.mtu = msg["mtu"]
            elif t == "encryption":
                self.encryption.append(msg)
            elif t == "write":
                data = bytes.fromhex(msg["data"])
                self.writes.append((msg["handle"], data))
                if msg["handle"] == H_CONTROL:
                    self._control(data)
