"""The Kivy screens rendered OFFSCREEN (SDL offscreen driver + Mesa): each test
drives the app through a SimulatedLink, takes a screenshot, and checks what
it shows -- label texts from the widget tree AND pixel colours in the PNG
(banner colours where the banner is, heat-map colours where hot and cold
pixels are).  Screenshots are also copied to build/ui-screenshots/."""

import asyncio
import os
import shutil
import struct
import tempfile
import time
import zlib
from pathlib import Path

import pytest

os.environ["SDL_VIDEODRIVER"] = "offscreen"
os.environ.setdefault("KIVY_NO_ARGS", "1")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")  # alarms play into SDL's null device
os.environ.setdefault("KIVY_LOG_MODE", "PYTHON")
os.environ.setdefault("KIVY_CLIPBOARD", "sdl2")
os.environ.setdefault("KIVY_HOME", tempfile.mkdtemp(prefix="kivy-home-"))

INSTALL = (
    'install Kivy into the venv (.venv/bin/pip install "kivy>=2.3.1,<2.4") and Mesa for offscreen GL '
    "(Debian: libgl1-mesa-dri libegl1 libgl1)"
)
try:
    from kivy.config import Config

    Config.set("graphics", "width", "480")
    Config.set("graphics", "height", "800")
    Config.set("graphics", "maxfps", "0")
    from kivy.base import EventLoop
    from kivy.core.window import Window
except Exception as e:  # pragma: no cover - depends on the machine
    pytest.skip("Kivy cannot open an offscreen window (%s): %s" % (e, INSTALL), allow_module_level=True)
if Window is None:  # pragma: no cover
    pytest.skip("Kivy found no window provider: " + INSTALL, allow_module_level=True)

import protocol as P  # noqa: E402
import protocol_control as control  # noqa: E402
from companion_app import controller as C  # noqa: E402
from companion_app.link_state import LinkState  # noqa: E402
from companion_app.store import Store  # noqa: E402
from companion_app.ui import common  # noqa: E402
from companion_app.ui.app import build_root  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
KEEP = REPO / "build" / "ui-screenshots"


# --- PNG reading (standard library: the test needs no Pillow) -------------------------------
def read_png(path):
    """-> (width, height, rows) with rows[y][x] = (r, g, b); 8-bit RGB/RGBA only."""
    data = Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat = 8, b""
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + n]
        if kind == b"IHDR":
            w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and ctype in (2, 6) and interlace == 0, (depth, ctype, interlace)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    bpp = 3 if ctype == 2 else 4
    raw = zlib.decompress(idat)
    stride = w * bpp
    prev = bytearray(stride)
    rows = []
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append([tuple(line[x * bpp : x * bpp + 3]) for x in range(w)])
        prev = line
    return w, h, rows


def pixel(png, wx, wy):
    """Colour at window coordinates (Kivy: origin bottom-left)."""
    w, h, rows = png
    return rows[h - 1 - int(wy)][int(wx)]


def close(c1, c2, tol=4):
    return all(abs(a - b) <= tol for a, b in zip(c1, c2, strict=True))


# --- driving the app ----------------------------------------------------------------------
class Harness:
    def __init__(self, tmp_path, scanner=None):
        self.tmp = tmp_path
        self.store = Store(str(tmp_path / "app.db"))
        kw = {"scanner": scanner} if scanner else {}
        self.ctl = C.AppController(
            self.store, settings_path=str(tmp_path / "settings.json"), exports_dir=str(tmp_path), **kw
        )
        self.link = C.SimulatedLink()
        EventLoop.ensure_window()
        for child in list(Window.children):
            Window.remove_widget(child)
        self.root = build_root(self.ctl, cache_dir=str(tmp_path / "sounds"))
        Window.add_widget(self.root)
        self.shots = 0

    async def start(self):
        self.ctl.attach_link(self.link)
        await self.link.start()
        await self.pump()

    async def pump(self, frames=4):
        # Let the controller's tasks run, then let Kivy lay out, draw and flip.
        for _ in range(frames):
            for _ in range(10):
                await asyncio.sleep(0)
            EventLoop.idle()

    async def shot(self, name):
        await self.pump()
        self.shots += 1
        path = Window.screenshot(name=str(self.tmp / ("%s.png" % name)))
        assert path and Path(path).exists() and Path(path).stat().st_size > 1000
        KEEP.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, KEEP / ("%s.png" % name))
        return read_png(path)

    async def close(self):
        await self.ctl.stop()
        await self.link.stop()
        Window.remove_widget(self.root)
        self.store.close()


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


def at(hm, fx, fy):
    """Window coordinates of frame pixel (fx, fy): screens are relative layouts."""
    return hm.to_window(*hm.pixel_center(fx, fy))


def banner_probe(banner):
    """A point inside the banner, clear of its text and button."""
    return banner.x + 4, banner.top - 4


# --- tests -----------------------------------------------------------------------------------
def test_fever_banner_shows_reading_sounds_and_acknowledge_silences(tmp_path):
    async def go():
        h = Harness(tmp_path)
        await h.start()
        png = await h.shot("live-idle")
        assert h.root.banner.height == 0
        assert not close(pixel(png, 10, 795), common.rgb255(common.FEVER_RGBA))
        h.link.push_event(C.demo_event(7, P.FEVER))
        await h.pump()
        b = h.root.banner
        assert b.title.text == "FEVER" and "38.9 °C ± 0.5 °C at 1.5 m" in b.text.text
        assert "clinical thermometer" in b.text.text
        live = h.root.screens["live"]
        assert live.outcome.text == "FEVER" and live.temp.text == "core 38.9 °C ± 0.5 °C"
        assert "skin 37.6 °C ± 0.4 °C | 1.5 m" in live.detail.text
        assert h.root.alerts.played == ["FEVER"] and not h.root.alerts.sound_errors
        sound = h.root.alerts._current
        assert sound is not None and sound.state == "play" and sound.loop  # FEVER sounds until acknowledged
        png = await h.shot("live-fever-banner")
        x, y = banner_probe(b)
        assert close(pixel(png, x, y), common.rgb255(common.FEVER_RGBA)), pixel(png, x, y)
        assert y > 800 - 170  # the banner is at the top of the window
        # Acknowledge: OP_SILENCE to the helmet, banner turns grey and says so.
        b.ack_button.dispatch("on_release")
        await h.pump()
        assert h.link.commands[-1] == (control.OP_SILENCE, None)
        assert h.root.alerts._current is None and sound.state == "stop"
        assert b.title.text == "FEVER (acknowledged)" and "helmet silenced" in b.text.text
        png = await h.shot("live-fever-acknowledged")
        assert close(pixel(png, *banner_probe(b)), common.rgb255(common.ACKED_RGBA))
        b.ack_button.dispatch("on_release")  # Dismiss
        await h.pump()
        assert h.ctl.alarm is None and b.height == 0
        await h.close()

    run(go())


def test_recheck_banner_is_amber_and_says_come_closer(tmp_path):
    async def go():
        h = Harness(tmp_path)
        await h.start()
        h.link.push_event(C.demo_event(3, P.RECHECK))
        await h.pump()
        b = h.root.banner
        assert b.title.text == "RECHECK" and "come closer" in b.text.text and "3.2 m" in b.text.text
        png = await h.shot("live-recheck-banner")
        assert close(pixel(png, *banner_probe(b)), common.rgb255(common.RECHECK_RGBA))
        assert h.root.alerts.played == ["RECHECK"]
        await h.close()

    run(go())


def test_heat_map_colours_follow_the_frame_temperatures(tmp_path):
    async def go():
        h = Harness(tmp_path)
        await h.start()
        live = h.root.screens["live"]
        live.on_enter()
        await h.pump()
        assert (control.OP_LIVE_START, None) in h.link.commands
        px = [2200] * (32 * 24)  # 22 degC room
        for y in range(4, 10):
            for x in range(24, 30):
                px[y * 32 + x] = 3800  # a 38 degC block, upper right
        for y in range(18, 22):
            for x in range(2, 6):
                px[y * 32 + x] = 3000  # 30 degC, lower left
        h.link.push_frame(px, ambient_c=23.5)
        await h.pump()
        hm = live.heatmap
        assert hm.updates == 1 and hm.displayed >= 1
        assert hm.hot == (24, 4, 3, 38.0)
        assert "hottest spot 38.0 °C" in live.hot_label.text and "not a head detection" in live.hot_label.text
        png = await h.shot("live-heatmap")
        for (fx, fy), temp in (((26, 6), 38.0), ((3, 19), 30.0), ((12, 15), 22.0), ((0, 0), 22.0)):
            got = pixel(png, *at(hm, fx, fy))
            assert close(got, tuple(C.heat_color(temp)), 6), (fx, fy, temp, got)
        # Warmer reads brighter on this palette: the map is not just "some picture".
        assert sum(pixel(png, *at(hm, 26, 6))) > sum(pixel(png, *at(hm, 3, 19)))
        # The hottest-spot marker (cyan) is drawn on the edge of the block.
        x0, _, w, _ = hm.image_rect()
        _, my = hm.pixel_center(24, 5)
        edge = hm.to_window(x0 + 24 * w / 32, my)
        assert close(pixel(png, *edge), (51, 255, 255), 40), pixel(png, *edge)
        await h.close()

    run(go())


def test_log_filters_detail_and_csv_export(tmp_path):
    async def go():
        h = Harness(tmp_path)
        await h.start()
        now = time.time()
        h.link.push_event(C.demo_event(1, P.CLEAR, now=now - 7200))  # two hours ago
        h.link.push_event(C.demo_event(2, P.RECHECK, now=now - 60))
        h.link.push_event(C.demo_event(3, P.FEVER, now=now - 30))
        await h.pump()
        h.root.show("log")
        log = h.root.screens["log"]
        log.refresh()
        await h.pump()
        texts = [w.text for w in reversed(log.rows.children)]
        assert [t.split()[1] for t in texts] == ["FEVER", "RECHECK", "CLEAR"]
        log.outcome_buttons[1].dispatch("on_release")  # FEVER only
        await h.pump()
        texts = [w.text for w in reversed(log.rows.children)]
        assert len(texts) == 1 and "FEVER" in texts[0] and "38.9 °C ± 0.5 °C" in texts[0]
        log.outcome_buttons[0].dispatch("on_release")
        log.time_buttons[0].dispatch("on_release")  # last hour: the CLEAR drops out
        await h.pump()
        assert [w.text.split()[1] for w in reversed(log.rows.children)] == ["FEVER", "RECHECK"]
        list(reversed(log.rows.children))[0].dispatch("on_release")  # detail of the FEVER
        await h.pump()
        d = log.detail_label.text
        assert "FEVER  (helmet SIM:00:00:00:00:01, event #3" in d and "expanded, k=2.0" in d
        assert "upload: waiting to upload" in d
        png = await h.shot("log-detail")
        row = list(reversed(log.rows.children))[0]
        assert row.color[:3] == list(common.FEVER_RGBA[:3])
        log.export_button.dispatch("on_release")
        await h.pump()
        assert "2 event(s) written to" in log.export_note.text
        path = log.export_note.text.split(" written to ")[1]
        lines = Path(path).read_text().splitlines()
        assert lines[0].split(",")[:3] == ["helmet_id", "seq", "event_time"] and len(lines) == 3
        assert lines[1].split(",")[2].endswith("+00:00")
        assert png[0] == 480
        await h.close()

    run(go())


def test_uploads_show_states_reasons_and_retry_now(tmp_path):
    async def go():
        h = Harness(tmp_path)
        await h.start()
        for seq in (1, 2, 3):
            h.link.push_event(C.demo_event(seq, P.FEVER))
        await h.pump()
        rows = h.store.outbox()
        h.store.mark_sent(rows[0].id, "Observation/1", 201, "created (HTTP 201)")
        h.store.mark_failed(rows[1].id, "not authorised (HTTP 401): check the upload token: bad token", 401)
        h.root.show("uploads")
        up = h.root.screens["uploads"]
        up.refresh()
        await h.pump()
        assert up.counts.text == "pending 1 | sending 0 | sent 1 | failed 1"
        texts = [w.text for w in up.rows.children]
        failed = [t for t in texts if "FAILED" in t]
        assert len(failed) == 1 and "HTTP 401" in failed[0] and "check the upload token" in failed[0]
        assert any("SENT" in t and "created (HTTP 201)" in t for t in texts)
        png = await h.shot("uploads")
        lab = [w for w in up.rows.children if "FAILED" in w.text][0]
        assert tuple(lab.color) == common.FEVER_RGBA
        up.retry_button.dispatch("on_release")
        await h.pump()
        assert up.counts.text == "pending 2 | sending 0 | sent 1 | failed 0"
        assert png[1] == 800
        await h.close()

    run(go())


def test_settings_push_threshold_and_switch_units(tmp_path):
    async def go():
        h = Harness(tmp_path)
        await h.start()
        h.root.show("settings")
        s = h.root.screens["settings"]
        assert s.threshold.text == "38.00" and s.offset.text == "1.30"
        s.threshold.text = "37.3"
        s.offset.text = "1.1"
        s.retention.text = "2"
        s.unit_f.state, s.unit_c.state = "down", "normal"
        task = s.save()
        await task
        await h.pump()
        sent = [arg for op, arg in h.link.commands if op == control.OP_SET_CONFIG]
        assert len(sent) == 1
        cfg = sent[0]
        assert (cfg.threshold_c, cfg.skin_to_core_offset_c) == (37.3, 1.1)
        assert "helmet now uses threshold 37.30 °C (99.1 °F)" in s.note.text
        assert h.ctl.settings.units == "F" and h.ctl.settings.retention_days == 2
        await h.shot("settings-saved")
        # Units reach the other screens: the reading is shown in F.
        h.link.push_event(C.demo_event(1, P.CLEAR))
        h.root.show("live")
        await h.pump()
        assert h.root.screens["live"].temp.text == "core 98.2 °F ± 0.9 °F"
        s.threshold.text = "45"
        await s.save()
        assert s.note.text.startswith("settings not saved") and h.ctl.settings.threshold_c == 37.3
        await h.close()

    run(go())


def test_devices_scan_connect_and_helmet_facts(tmp_path):
    async def scanner(seconds):
        return [C.FoundHelmet("AA:BB:CC:DD:EE:02", "helmet-2", -72), C.FoundHelmet("AA:BB:CC:DD:EE:01", "helmet", -55)]

    async def go():
        h = Harness(tmp_path, scanner=scanner)
        h.root.show("devices")
        dev = h.root.screens["devices"]
        dev.scan_button.dispatch("on_release")
        await h.pump()
        texts = [w.text for w in reversed(dev.found.children)]
        assert texts == ["Connect: helmet-2  AA:BB:CC:DD:EE:02  -72 dBm", "Connect: helmet  AA:BB:CC:DD:EE:01  -55 dBm"]
        made = []

        def factory(address=None, resume=None):
            made.append(address)
            return h.link

        h.ctl.link_factory = factory
        list(reversed(dev.found.children))[1].dispatch("on_release")
        await h.pump(8)
        assert made == ["AA:BB:CC:DD:EE:01"] and h.ctl.link_state.state == LinkState.CONNECTED
        assert dev.state.text.startswith("Helmet: connected")
        assert dev.bond.text == "bond: bonded (encrypted link)"
        assert dev.battery.text == "battery: 87 %"
        assert dev.signal.text == "signal: -58 dBm"
        assert dev.firmware.text == "firmware: helmet 0.1.0 (simulated)"
        await h.shot("devices")
        await h.close()

    run(go())
