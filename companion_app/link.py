"""The companion app's BLE link to a helmet (bleak; no Kivy here).

    link = HelmetLink(resume={"AA:BB:..": 1234})   # next sequence per helmet, from the store
    await link.start()
    async for item in link.events(): ...           # EventItem, in order, exactly once
    async for frame in link.frames(): ...          # FrameItem (live view), newest kept
    async for change in link.states(): ...         # StateChange for the UI
    await link.set_live_view(True)
    await link.stop()

What it does: scans for the screening service, connects, optionally pairs,
subscribes to events, live frames and control-point responses (notify only:
bleak on Android cannot subscribe to indications), asks the helmet to replay
its journal from the next expected sequence, delivers events in order without
duplicates (Sequencer), acknowledges up to the highest contiguous sequence,
reassembles frames (protocol_frames.FrameAssembler) and reconnects with exponential
backoff and jitter.  Malformed notifications are counted and logged, never
raised.  Wire formats come only from shared/protocol.
"""

import asyncio
import collections
import logging
import time

import protocol as P
import protocol_control as PC
import protocol_frames as PF
import protocol_gatt as PG

from .backoff import Backoff
from .link_state import EventItem, FrameItem, LinkState, LinkStats, StateChange
from .sequencer import Sequencer

log = logging.getLogger(__name__)

_END = object()  # queue sentinel: the link stopped


class LinkError(RuntimeError):
    pass


class NotConnected(LinkError):
    pass


class CommandFailed(LinkError):
    def __init__(self, opcode, result, value):
        super().__init__(
            "control point 0x%02x failed: %s (value %d)" % (opcode, PC.RESULT_NAMES.get(result, result), value)
        )
        self.opcode, self.result, self.value = opcode, result, value


def _bleak():
    # Imported lazily so the store and UI can import this module without bleak.
    import bleak

    return bleak


class HelmetLink:
    def __init__(
        self,
        *,
        adapter=None,
        address=None,
        resume=None,
        pair=False,
        scan_timeout_s=10.0,
        connect_timeout_s=10.0,
        command_timeout_s=5.0,
        ack_delay_s=0.02,
        gap_timeout_s=0.5,
        backoff=None,
        frame_queue=4,
        rescan_after_failures=3,
        ack_when_stored=False,
    ):
        self.adapter = adapter  # BlueZ adapter name (e.g. "hci1"); None = default
        self.address = address  # connect only to this helmet; None = first found
        self.resume = dict(resume or {})  # helmet id -> next expected sequence
        self.pair = pair
        self.scan_timeout_s = scan_timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.command_timeout_s = command_timeout_s
        self.ack_delay_s = ack_delay_s
        self.gap_timeout_s = gap_timeout_s
        self.backoff = backoff or Backoff()
        self.rescan_after_failures = rescan_after_failures
        self.state = LinkState.IDLE
        self.stats = LinkStats()
        self.helmet_id = None
        self._events = asyncio.Queue()
        self._frames = asyncio.Queue(maxsize=frame_queue)
        self._states = asyncio.Queue(maxsize=256)
        self._sequencers = {}
        self._assembler = PF.FrameAssembler()
        self._assembler_base = (0, 0, 0)  # counters carried over assembler resets
        self._frames_overrun = 0  # frames dropped because the UI was slower
        self._device = None
        self._client = None
        self._task = None
        self._stopping = False
        self._pending = collections.defaultdict(collections.deque)  # opcode -> futures
        self._cp_lock = asyncio.Lock()
        self._awaiting_replay_start = False
        self._prestart = []  # events held while the start of the journal is unknown
        self._replay_expected = None  # events the helmet said it will replay
        self._settle_timer = None
        self._acked = {}  # helmet id -> last acknowledged sequence
        # The helmet forgets what is acknowledged.  With ack_when_stored an
        # event is acknowledged only once the consumer has made it durable
        # (confirm_stored), so an app killed in between loses nothing: the
        # helmet still holds it and replays it from the store's resume point.
        self.ack_when_stored = ack_when_stored
        self._stored = {}  # helmet id -> highest sequence the consumer made durable

    # --- public API --------------------------------------------------------------------
    def confirm_stored(self, helmet_id, seq):
        """The consumer has made event ``seq`` durable.  Events are delivered
        in sequence order, so every earlier one is durable too."""
        if seq > self._stored.get(helmet_id, -1):
            self._stored[helmet_id] = seq

    async def start(self):
        if self._task is None:
            self._stopping = False
            self._task = asyncio.create_task(self._run(), name="helmet-link")
        return self

    async def stop(self):
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        self._set_state(LinkState.STOPPED)
        for q in (self._events, self._frames, self._states):
            self._put_dropping(q, _END)

    async def __aenter__(self):
        return await self.start()

    async def __aexit__(self, *exc):
        await self.stop()

    async def events(self):
        async for item in self._drain(self._events):
            yield item

    async def frames(self):
        async for item in self._drain(self._frames):
            yield item

    async def states(self):
        async for item in self._drain(self._states):
            yield item

    def next_seq(self, helmet_id=None):
        """Next expected sequence for a helmet (what the store persists)."""
        s = self._sequencers.get(helmet_id or self.helmet_id)
        return None if s is None else s.next_seq

    async def command(self, opcode, arg=None):
        """Write a control-point request and wait for its response -> (result, value).
        Raises NotConnected, CommandFailed or asyncio.TimeoutError."""
        result, value = await self._command(opcode, arg, wait=True)
        if result != PC.RESULT_SUCCESS:
            raise CommandFailed(opcode, result, value)
        return result, value

    async def set_live_view(self, on):
        await self.command(PC.OP_LIVE_START if on else PC.OP_LIVE_STOP)

    # --- supervisor --------------------------------------------------------------------
    async def _run(self):
        failures = 0
        while not self._stopping:
            reached = False
            try:
                if self._device is None or failures >= self.rescan_after_failures:
                    self._set_state(LinkState.SCANNING)
                    self._device = await self._scan()
                    failures = 0
                if self._device is not None:
                    reached = await self._session(self._device)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - any backend failure means "retry later"
                self.stats.failed_attempts += 1
                log.warning("helmet link: attempt failed: %s: %s", type(e).__name__, e)
            if reached:
                self.backoff.reset()
                failures = 0
            else:
                failures += 1
            delay = self.backoff.next_delay()
            self._set_state(LinkState.BACKOFF, detail="retry in %.2f s" % delay, delay_s=delay)
            await asyncio.sleep(delay)

    async def _scan(self):
        bleak = _bleak()
        found = asyncio.get_running_loop().create_future()

        def on_adv(device, adv):
            if found.done() or PG.SCREENING_SERVICE not in [u.lower() for u in adv.service_uuids]:
                return
            if self.address is None or device.address.upper() == self.address.upper():
                found.set_result(device)

        # The callback goes to the constructor so it is registered before
        # discovery starts: an emulated BlueZ may announce a device only once.
        async with bleak.BleakScanner(on_adv, service_uuids=[PG.SCREENING_SERVICE], **self._backend_kwargs()):
            try:
                return await asyncio.wait_for(found, self.scan_timeout_s)
            except asyncio.TimeoutError:
                log.info("helmet link: no helmet found in %.0f s", self.scan_timeout_s)
                return None

    def _backend_kwargs(self):
        return {"bluez": {"adapter": self.adapter}} if self.adapter else {}

    async def _session(self, device):
        """One connection; returns True if it got as far as CONNECTED."""
        bleak = _bleak()
        loop = asyncio.get_running_loop()
        lost = asyncio.Event()
        self._set_state(LinkState.CONNECTING, detail=device.address)
        client = bleak.BleakClient(
            device,
            disconnected_callback=lambda _c: loop.call_soon_threadsafe(lost.set),
            timeout=self.connect_timeout_s,
            **self._backend_kwargs(),
        )
        await client.connect()
        tasks = []
        reached = False
        try:
            self.helmet_id = device.address
            seq = self._sequencers.get(self.helmet_id)
            if seq is None:
                seq = self._sequencers[self.helmet_id] = Sequencer(self.resume.get(self.helmet_id))
            self._reset_assembler()
            if self.pair:
                await self._try_pair(client)
            self._client = client
            # Without a known start, hold events until the replay tells where
            # the helmet's journal begins (see _maybe_settle).
            self._awaiting_replay_start = seq.next_seq is None
            self._prestart, self._replay_expected = [], None
            await client.start_notify(PG.CONTROL_POINT_CHAR, self._on_response)
            await client.start_notify(PG.EVENTS_CHAR, self._on_event)
            await client.start_notify(PG.LIVE_FRAMES_CHAR, self._on_chunk)
            self.stats.connects += 1
            reached = True
            self._set_state(LinkState.CONNECTED, detail=device.address)
            # Both run beside the wait so that a lost link is noticed at once.
            tasks = [asyncio.create_task(self._request_replay(seq)), asyncio.create_task(self._ack_loop(seq))]
            await lost.wait()
        finally:
            self._client = None
            self._awaiting_replay_start = False  # held events come again next time
            self._prestart = []
            if self._settle_timer is not None:
                self._settle_timer.cancel()
                self._settle_timer = None
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for futures in self._pending.values():
                for f in futures:
                    if not f.done():
                        f.set_exception(NotConnected("link lost"))
            self._pending.clear()
            if client.is_connected:
                try:
                    await asyncio.wait_for(client.disconnect(), self.connect_timeout_s)
                except Exception as e:  # noqa: BLE001 - already leaving
                    log.debug("helmet link: disconnect: %s", e)
            if reached:
                self.stats.disconnects += 1
            self._set_state(LinkState.DISCONNECTED, detail=device.address)
        return reached

    async def _try_pair(self, client):
        # Bonding is the OS's job on Android and BlueZ's agent's on Linux; a
        # backend that cannot pair leaves us on an unencrypted link, and the
        # helmet then refuses the encrypted characteristics.
        try:
            await client.pair()
        except Exception as e:  # noqa: BLE001
            log.warning("helmet link: pairing not available: %s", e)

    async def _request_replay(self, seq):
        start = 0 if seq.next_seq is None else seq.next_seq
        self.stats.replays_requested += 1
        if await self._replay_once(start) == PC.RESULT_NOT_AUTHORIZED and self._client is not None:
            # The helmet serves bonded phones only.  A phone's OS pairs when the
            # helmet refuses for want of encryption; do the same, then ask again.
            await self._try_pair(self._client)
            self._awaiting_replay_start = seq.next_seq is None
            self._prestart, self._replay_expected = [], None
            await self._replay_once(start)

    async def _replay_once(self, start):
        """OP_REPLAY from `start` -> the helmet's result (NOT_AUTHORIZED also
        when its stack refused the write: not paired)."""
        try:
            result, _ = await self._command(PC.OP_REPLAY, start, wait=True)
            return result
        except (asyncio.TimeoutError, LinkError) as e:
            log.warning("helmet link: replay request unanswered: %s", e)
        except Exception as e:  # noqa: BLE001 - the backend's error for an ATT refusal
            log.warning("helmet link: replay request refused: %s", e)
            self._settle_start()
            return PC.RESULT_NOT_AUTHORIZED
        self._settle_start()
        return None

    async def _ack_loop(self, seq):
        gap_since = None
        while True:
            await asyncio.sleep(self.ack_delay_s)
            try:
                ack = seq.ack_seq
                if self.ack_when_stored and ack is not None:
                    stored = self._stored.get(self.helmet_id)
                    ack = None if stored is None else min(ack, stored)
                if ack is not None and ack > self._acked.get(self.helmet_id, -1):
                    await self._command(PC.OP_ACK, ack, wait=False)
                    self._acked[self.helmet_id] = ack
                    self.stats.acks_sent += 1
                # Early arrivals mean lost notifications: ask again from the gap.
                if seq.has_gap:
                    now = time.monotonic()
                    if gap_since is None:
                        gap_since = now
                    elif now - gap_since >= self.gap_timeout_s:
                        gap_since = now
                        self.stats.replays_requested += 1
                        await self._command(PC.OP_REPLAY, seq.next_seq, wait=False)
                else:
                    gap_since = None
            except NotConnected:
                return
            except Exception as e:  # noqa: BLE001 - a failed write is retried next round
                log.warning("helmet link: control-point write failed: %s", e)

    async def _command(self, opcode, arg, wait):
        client = self._client
        if client is None:
            raise NotConnected("no helmet connected")
        fut = None
        if wait:
            fut = asyncio.get_running_loop().create_future()
            self._pending[opcode].append(fut)
        try:  # a write that fails must not leave its future to take the next response
            async with self._cp_lock:
                await client.write_gatt_char(PG.CONTROL_POINT_CHAR, PC.encode_command(opcode, arg), response=True)
            if fut is None:
                return None
            _, result, value = await asyncio.wait_for(fut, self.command_timeout_s)
        finally:
            if fut in self._pending.get(opcode, ()):
                self._pending[opcode].remove(fut)
        return result, value

    # --- notification handlers (bleak callbacks: synchronous, must never raise) ------------
    def _on_event(self, _char, data):
        try:
            ev = P.decode_event(data)
        except P.ProtocolError as e:
            self.stats.malformed_events += 1
            log.warning("helmet link: malformed event (%d bytes): %s", len(data), e)
            return
        except Exception:  # noqa: BLE001
            self.stats.malformed_events += 1
            log.exception("helmet link: event decoder failed")
            return
        if self._awaiting_replay_start:
            self._prestart.append(ev)
            self._maybe_settle()
            return
        self._deliver(ev)

    def _deliver(self, ev):
        seq = self._sequencers[self.helmet_id]
        before = seq.duplicates
        now = time.time()
        for item in seq.offer(ev.seq, ev):
            self.stats.events += 1
            self._events.put_nowait(EventItem(self.helmet_id, item, now))
        self.stats.duplicates += seq.duplicates - before

    def _maybe_settle(self):
        # First connection without a known next sequence.  The events stream
        # reads: live events sent before the helmet saw OP_REPLAY (all still in
        # its journal, so part of the replay too), the replay in ascending
        # order, then newer live events.  Once as many distinct sequences as
        # the helmet announced have arrived, the oldest of them is the start
        # of the journal -- whatever order the response and the events took.
        n = self._replay_expected
        if n is not None and len({e.seq for e in self._prestart}) >= n:
            self._settle_start()

    def _settle_start(self):
        if not self._awaiting_replay_start:
            return
        self._awaiting_replay_start = False
        if self._settle_timer is not None:
            self._settle_timer.cancel()
            self._settle_timer = None
        held, self._prestart = sorted(self._prestart, key=lambda e: e.seq), []
        if held:
            seq = self._sequencers[self.helmet_id]
            if seq.next_seq is None:
                seq.next_seq = held[0].seq
            for ev in held:
                self._deliver(ev)

    def _on_chunk(self, _char, data):
        try:
            body = self._assembler.feed(bytes(data))
            self._sync_assembler_stats()
            if body is None:
                return
            w, h, ta, pixels = P.decode_frame_body(body)
        except P.ProtocolError as e:
            self.stats.malformed_frames += 1
            log.warning("helmet link: malformed frame: %s", e)
            return
        except Exception:  # noqa: BLE001
            self.stats.malformed_frames += 1
            log.exception("helmet link: frame decoder failed")
            return
        self.stats.frames += 1
        if not self._put_dropping(self._frames, FrameItem(self.helmet_id, w, h, ta, pixels, time.time())):
            self._frames_overrun += 1
            self._sync_assembler_stats()

    def _on_response(self, _char, data):
        try:
            op, result, value = PC.decode_response(data)
        except P.ProtocolError as e:
            self.stats.malformed_responses += 1
            log.warning("helmet link: malformed control-point response: %s", e)
            return
        if op == PC.OP_REPLAY and self._awaiting_replay_start and self._replay_expected is None:
            self._replay_expected = value if result == PC.RESULT_SUCCESS else 0
            # Safety net if fewer events come than announced.
            self._settle_timer = asyncio.get_running_loop().call_later(self.command_timeout_s, self._settle_start)
            self._maybe_settle()
        futures = self._pending.get(op)
        while futures:
            f = futures.popleft()
            if not f.done():
                f.set_result((op, result, value))
                break

    # --- helpers -------------------------------------------------------------------------------
    def _reset_assembler(self):
        a = self._assembler
        c, d, r = self._assembler_base
        self._assembler_base = (c + a.frames_completed, d + a.frames_dropped, r + a.chunks_rejected)
        self._assembler = PF.FrameAssembler()

    def _sync_assembler_stats(self):
        a, (_, d, r) = self._assembler, self._assembler_base
        self.stats.chunks_rejected = r + a.chunks_rejected
        self.stats.frames_dropped = d + a.frames_dropped + self._frames_overrun

    def _set_state(self, state, detail="", delay_s=0.0):
        self.state = state
        change = StateChange(state, self.helmet_id, detail, self.backoff.attempt, delay_s)
        log.debug("helmet link: %s %s", state.value, detail)
        self._put_dropping(self._states, change)

    @staticmethod
    def _put_dropping(q, item):
        """put_nowait; if full, drop the oldest.  -> False if something was dropped."""
        dropped = False
        while True:
            try:
                q.put_nowait(item)
                return not dropped
            except asyncio.QueueFull:
                q.get_nowait()
                dropped = True

    @staticmethod
    async def _drain(q):
        while True:
            item = await q.get()
            if item is _END:
                q.put_nowait(_END)  # let other consumers see the end too
                return
            yield item
