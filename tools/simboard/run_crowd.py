"""Run the helmet's main loop on the simulated board through a scene recording.

Usage: micropython run_crowd.py RECORDING [--frames N] [--every K] [--passes P] [--tracks] [--ble]
                                  [--ram BYTES]

Boots the firmware (main.boot: self-test, chirp), builds the helmet as
helmet.main does (screening at the recording's 8 Hz, alarm, journal on the
board's flash, a machine.WDT fed by the helmet's feeder, the button) and
with --ble the GATT server, with a simulated phone
(tools/simboard/ble_central.py) bonded to it that takes every event and
acknowledges them every K frames, as the app does.  With --ble and
HELMET_BLE_BRIDGE=host:port set, the phone is the host's instead (the
simulated radio bridged to tools/ble_host, then bleak and the companion app:
`make demo`): --wait-link makes the crowd arrive only once a phone has
bonded, and after the last frame the helmet keeps serving (the app drains
the journal and acknowledges it) until the host ends the process.  It
runs Helmet.run for N frames (default: P passes of the recording; at its end
the recording starts again).  The virtual MLX90640 is fed one recording frame
per full frame the driver reads.  Simulated time is frames, not wall time:
the board clock is virtual and advances only when the firmware waits (the
driver's data-ready polls, the boot chirp), so the sensor runs at the
helmet's own rate (8 Hz frames, 16 Hz subpages), board time follows the
recording, a subpage is never "measured" in the middle of a bus read (with
a wall clock it can be, when the collector pauses the read, and the driver
then rightly refuses the frame), and real time is compute only: a minute of
crowd takes about ten seconds.

Output lines for the host (tools/bench/bench_soak.py, tests/host/test_helmet_crowd.py):
  SIM <simulation bytes>             heap held by the virtual sensor and the player
  LINK <bytes>                       (--ble) heap the phone's link added, counted as simulation
  BOOT <firmware bytes>              built: frame buffer, driver, screening, journal (no radio yet)
  EVENT <pass> <frame> <hex>         every journaled event, protocol record as hex
  T <pass> <frame> <id> <x> <y> <outcome> <core> <u> <dist>   tracks (--tracks)
  HEAP <frames> <firmware bytes> <free bytes>   after gc.collect, every K frames
  SENSORERROR <read> <message>       a read the driver refused (the helmet recovers)
  MEMORYERROR <frames> <message>     a MemoryError ended the run
  DONE <frames> <read errors> <reinits> <feeds> <resets> <seconds> <buzzer PWM changes>
  PHONE <events received> <last seq acknowledged> <journal pending> <events journaled>   (--ble)
  LINKED                             (bridged, --wait-link) a phone bonded: the crowd starts
  SERVING <events journaled>         (bridged) the frames are done, the radio still serves
  ACKED <seq>                        (bridged) the phone acknowledged up to seq (polled every 20 ms)
The firmware's share is gc.mem_alloc() minus the heap in use before the
simulated parts were made, minus the simulation's own bytes (SIM).

--ram BYTES: the firmware gets exactly BYTES of free heap, what a board of that
size has free at start-up (tests/support/mpharness.board_free_heap): the
simulated parts are not on the helmet, so they are built first in a heap
large enough for both, and a ballast (never freed) then takes every byte
above BYTES, leaving the firmware one run of free heap as on a fresh board
(see _ballast).  Run it from the ROMFS image (mpharness romfs=True)
so that the code, the firmware's and the simulator's, is in flash as on the
helmet.  Extra output line:
  RAM <free bytes the firmware starts with> <ballast bytes>
"""

import binascii
import gc
import os
import sys
import time

import simboard

gc.collect()
_START = gc.mem_alloc()


def _arg(args, name, default):
    if name in args:
        return int(args[args.index(name) + 1])
    return default


class SceneCamera:
    """The firmware's camera, with the recording advanced after every full
    frame it reads (simulation glue; the helmet sees an MLX90640)."""

    def __init__(self, camera, sensor, player, every, report):
        self.phone = None
        self.camera = camera
        self.sensor = sensor
        self.player = player
        self.every = every
        self.report = report
        self.passes = 0
        self.shown = 0  # recording frame (and pass) in the last image read
        self.shown_pass = 0
        self.reads = 0
        self.started = -1  # reads when the frame in progress began

    def show_next(self):
        p = self.player
        if not p.next():
            p.f.seek(18)  # the header: play the recording again
            p.index = -1
            self.passes += 1
            p.next()
        self.sensor.set_scene(p.frame)
        self.sensor.set_ambient(ta=p.ta_c)

    def _frame_starts(self):
        if self.reads % self.every == 0:
            self.report(self.reads)
        if self.phone is not None:
            self.phone.tick(self.reads % self.every == 0)

    def _frame_read(self):
        self.reads += 1
        self.shown = self.player.index
        self.shown_pass = self.passes
        self.show_next()

    def read_frame(self, out):
        self._frame_starts()
        try:
            ta = self.camera.read_frame(out)
        except Exception as e:
            print("SENSORERROR", self.reads, e)
            raise
        self._frame_read()
        return ta

    # the subpage reads the helmet's main loop uses (it awaits data_ready)
    def read_subpage_into(self, out):
        if self.started != self.reads:  # the first subpage of this frame
            self.started = self.reads
            self._frame_starts()
        try:
            return self.camera.read_subpage_into(out)
        except Exception as e:
            print("SENSORERROR", self.reads, e)
            raise

    def finish_frame(self, out):
        ta = self.camera.finish_frame(out)
        self._frame_read()
        return ta

    def data_ready(self):
        return self.camera.data_ready()

    def wait_data_ready(self, timeout_ms=None):
        return self.camera.wait_data_ready(timeout_ms)

    def data_timeout_ms(self):
        return self.camera.data_timeout_ms()

    @property
    def subpage_ms(self):
        return self.camera.subpage_ms

    def configure(self, rate):
        self.camera.configure(rate)

    def read_register(self, reg):
        return self.camera.read_register(reg)


class Phone:
    """The companion app on the simulated air: takes events, acknowledges them."""

    def __init__(self):
        from ble_central import Central

        self.central = Central(on_packet=self.on_packet)
        self.events = 0
        self.last = 0
        self.acked = 0
        self.server = None

    def link(self, server):
        import struct

        self.server = server
        self._struct = struct
        c = self.central
        c.connect()
        c.exchange_mtu(247)
        c.pair()
        for h in (server._h_events, server._h_control):
            c.subscribe(h)
        c.subscribe(server._h_tm, indicate=True)

    def on_packet(self, kind, handle, data):
        if handle == self.server._h_events:
            self.events += 1
            self.last = self._struct.unpack_from("<I", data, 2)[0]

    def tick(self, ack):
        import protocol_control

        self.central.process()
        if ack and self.last > self.acked:
            command = protocol_control.encode_command(protocol_control.OP_ACK, self.last)
            self.central.write(self.server._h_control, command)
            self.acked = self.last
        self.central.process()


def _ballast(ram):
    """Blocks that take every byte of free heap above ``ram``, so that the
    firmware gets one run of about ``ram`` free bytes at the top of the heap,
    as a fresh board has.  The heap is filled completely (big blocks first,
    then smaller ones into the holes the simulation left), then the blocks
    at the highest addresses are let go until ``ram`` is free: they are
    adjacent, so the free heap is one run (a ballast that only took the top
    would leave the firmware the simulation's holes, a few KB each: more
    fragmented than any board).  The blocks are tuples of None: one
    allocation each, so id() (the address) is where the whole block is."""
    blocks = [None] * 1024  # preallocated: a growing list would leave garbage behind
    gc.collect()
    n = 0
    items = 2048
    while items >= 4 and n < len(blocks):
        try:
            blocks[n] = (None,) * items
        except MemoryError:
            items //= 2
            continue
        n += 1
    while gc.mem_free() < ram:  # let go of the highest block (nothing allocated: the heap is full)
        top = -1
        for i in range(n):
            if blocks[i] is not None and (top < 0 or id(blocks[i]) > id(blocks[top])):
                top = i
        if top < 0:
            break
        blocks[top] = None
        gc.collect()
    return blocks


def _close_gap(blocks, ram):
    """Small blocks into the ballast's free slots until at most ``ram`` is
    free: they take the bottom of the free run (first fit)."""
    gc.collect()
    n = 0
    while gc.mem_free() > ram and n < len(blocks):
        if blocks[n] is None:
            blocks[n] = (None,) * max(1, (gc.mem_free() - ram) // 8 - 4)
            gc.collect()
        n += 1


def main(args):
    path = args[0]
    every = _arg(args, "--every", 80)
    simboard.reset_board()
    clock = simboard.VirtualClock()
    simboard.set_clock(clock.ticks_ms)  # before the device models read it
    sleep_ms = clock.sleep_ms  # the boot chirp, too, waits on the board clock

    # -- the simulated parts (not on the helmet)
    import board
    import virtual_mlx90640
    from scene_player import ScenePlayer

    sensor = virtual_mlx90640.VirtualMLX90640()
    player = ScenePlayer(path)
    player.next()
    sensor.set_scene(player.frame)
    sensor.set_ambient(ta=player.ta_c)
    simboard.attach_i2c(board.MLX90640_ADDRESS, sensor)
    simboard.adc_values[board.BATTERY_PIN] = 41000
    phone = None
    ble = "--ble" in args
    bridged = ble and bool(os.getenv("HELMET_BLE_BRIDGE"))  # the host's phone, not a simulated one
    if ble:
        import bluetooth

        bluetooth.sim_reset()
        if not bridged:
            phone = Phone()
    gc.collect()
    sim = gc.mem_alloc() - _START
    print("SIM", sim)
    ram = _arg(args, "--ram", 0)
    ballast = None
    if ram:
        gc.collect()
        spare = gc.mem_free() - ram
        if spare < 0:
            print("RAM", gc.mem_free(), 0)  # the process heap is too small for the simulation and the board
            return 5
        before = gc.mem_free()
        ballast = _ballast(ram)
        _close_gap(ballast, ram)
        gc.collect()
        print("RAM", gc.mem_free(), before - gc.mem_free())
        sim = gc.mem_alloc() - _START
    frames = _arg(args, "--frames", _arg(args, "--passes", 1) * player.count)
    tracks = "--tracks" in args

    # -- the firmware, in the helmet's order: main.py (and its imports: it
    # is what the board runs), helmet, then helmet.main's: frame buffer, the
    # modules, self-test, the rest (self-test before the modules needs 4 KB
    # more heap here: fragmentation)
    import i2c16
    import main as boot_main
    import mlx90640_device

    clock.install(mlx90640_device, i2c16)  # the driver waits on the board clock
    import helmet

    frame = helmet.new_frame()
    import machine

    import calstore
    import config
    import protocol
    from alarm import Alarm
    from buzzer import Buzzer
    from journal import Journal
    from screening import Screening

    if ble:
        import ble_server  # noqa: F401  (with the other modules, as helmet.main)
    report, boot_event = boot_main.boot(sleep_ms, frame)  # the test frame into the frame buffer, as helmet.main
    if not report.ok:
        print("BOOT FAILED")
        return 3
    camera = report.sensor.camera
    report = boot_main = None  # as helmet.main: the self-test's objects go
    sys.modules.pop("main", None)  # on the helmet main.py is __main__, not a module kept here
    cam = SceneCamera(camera, sensor, player, every, None)
    state = {"pwm": 0}

    class TapJournal(Journal):
        def append(self, ev):
            seq = Journal.append(self, ev)
            print("EVENT", cam.shown_pass, cam.shown, binascii.hexlify(protocol.encode_event(ev)).decode())
            return seq

    cfg, _why = config.load()  # the board's flash, as helmet.main
    cal, _why = calstore.load()
    gc.collect()  # as helmet.main, before each long-lived structure
    scr = Screening(cfg, cal)
    journal = TapJournal()
    journal.append(protocol.decode_event(boot_event))
    gc.collect()
    print("BOOT", gc.mem_alloc() - _START - sim)
    alarm = Alarm(Buzzer(board.make_buzzer_pwm(), sleep_ms), board.make_led())
    gc.collect()
    # board time runs a few times faster than the wall clock the feeder's
    # asyncio sleeps use: feed often so the watchdog's margin stays wide
    h = helmet.Helmet(
        cam,
        scr,
        alarm,
        journal,
        button=board.make_button(),
        frame=frame,
        clock=clock.ticks_ms,
        feed_ms=50,
        wait_ms=clock.wait_ms,  # board time moves while the helmet waits for the sensor
    )
    trk = scr.trk
    server = None
    if ble:
        import bluetooth

        from ble_server import BleServer

        gc.collect()  # as helmet.main
        server = BleServer(bluetooth.BLE(), journal, on_set_time=h.set_time, on_silence=h.silence)
        h.attach_ble(server)
    if phone is not None:
        gc.collect()
        before = gc.mem_alloc()
        phone.link(server)
        gc.collect()
        link = gc.mem_alloc() - before
        sim += link  # the air's connection state is the simulation's
        print("LINK", link)
        cam.phone = phone

    def report_heap(n):
        # the board's PWM history is the simulation's: count it, then drop it
        state["pwm"] += sum(len(v) for v in simboard.pwm_timeline.values())
        simboard.pwm_timeline.clear()
        gc.collect()
        print("HEAP", n, gc.mem_alloc() - _START - sim, gc.mem_free())

    cam.report = report_heap
    if tracks:
        process = scr.process

        def traced(frame, ta_c=0.0, unix_time=0, t_ms=0):
            n = process(frame, ta_c, unix_time, t_ms)
            for t in range(len(trk.active)):
                if trk.active[t] and not scr.obj[t] and trk.seen[t]:
                    print(
                        "T", cam.shown_pass, cam.shown, trk.ids[t], trk.x[t], trk.y[t],
                        scr.outcome[t], scr.core[t], scr.u_core[t], scr.dist[t],
                    )  # fmt: skip
            return n

        scr.process = traced
    h.wdt = machine.WDT(timeout=helmet.WDT_TIMEOUT_MS)
    import asyncio

    t0 = time.ticks_ms()

    async def session():
        nonlocal t0
        if bridged and "--wait-link" in args:
            while not server.secure():  # the officer's phone bonds before the crowd arrives
                await asyncio.sleep_ms(10)
            print("LINKED")
            t0 = time.ticks_ms()  # DONE's seconds: the crowd, not the wait
        await h.run(frames)

    try:
        asyncio.run(session())
    except MemoryError as e:
        print("MEMORYERROR", h.frames, e)
        return 4
    seconds = time.ticks_diff(time.ticks_ms(), t0) / 1000
    report_heap(cam.reads)
    print("DONE", h.frames, h.read_errors, h.reinits, h.feeds, len(simboard.resets), seconds, state["pwm"])
    if phone is not None:
        for _ in range(3):  # the last events and the last acknowledgement
            h.ble.pump()
            phone.tick(True)
        h.ble.pump()
        print("PHONE", phone.events, phone.acked, journal.pending(), journal.next_seq - 1)
    if bridged:
        print("SERVING", journal.next_seq - 1)
        asyncio.run(serve(server, journal))  # until the host ends the process
    return 0


async def serve(server, journal):
    """The radio alone, after the crowd: the app drains and acknowledges the journal."""
    import asyncio

    asyncio.create_task(server.run())
    last = -1
    while True:
        if journal.acked != last:
            last = journal.acked
            print("ACKED", last)
        await asyncio.sleep_ms(20)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
