"""The Kivy app: a global alarm banner, five screens and a tab bar, on the
same asyncio loop as the BLE link (App.async_run).

    app = HelmetApp(ctl)                      # ctl: controller.AppController
    await app.async_run(async_lib="asyncio")  # beside ctl.run() (see companion_app/main.py)

Tests build the widget tree with build_root(ctl) and pump Kivy's event loop
themselves (see tests/host/test_ui_screens.py)."""

import logging
import math
import os
import struct
import tempfile
import wave

from kivy.app import App
from kivy.clock import Clock
from kivy.uix.screenmanager import NoTransition, ScreenManager
from kivy.uix.togglebutton import ToggleButton
from kivy.utils import platform

import protocol as P

from .. import controller as C
from .common import ACKED_RGBA, BACKGROUND_RGBA, FEVER_RGBA, RECHECK_RGBA, TAB_RGBA, Panel, button, label, spawn
from .devices import DevicesScreen
from .live import LiveScreen
from .log import LogScreen
from .settings import SettingsScreen
from .uploads import UploadsScreen

log = logging.getLogger(__name__)

TABS = (("live", "Live"), ("devices", "Devices"), ("log", "Log"), ("uploads", "Uploads"), ("settings", "Settings"))
# Vibration patterns (ms, off/on): FEVER long pulses, RECHECK two short ones,
# so the officer can tell them apart with the phone in a pocket.
ADVICE = {
    P.FEVER: "confirm with a clinical thermometer",
    P.RECHECK: "ask the person to come closer, or use a clinical thermometer",
}
VIBRATE = {P.FEVER: [0, 600, 200, 600, 200, 600], P.RECHECK: [0, 150, 150, 150]}


def _tone_file(path, bursts, freq, on_s, off_s, rate=22050):
    """Write a 16-bit mono WAV of `bursts` beeps (no audio assets to ship)."""
    frames = bytearray()
    for _ in range(bursts):
        n = int(rate * on_s)
        for i in range(n):
            env = min(1.0, i / 200, (n - i) / 200)  # soft edges: no clicks
            frames += struct.pack("<h", int(12000 * env * math.sin(2 * math.pi * freq * i / rate)))
        frames += b"\0\0" * int(rate * off_s)
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(bytes(frames))
    return path


class Alerts:
    """Sound (and vibration on Android) for a new alarm; stopped on acknowledge.
    Records what it did, so tests can see an alert was given even where
    the machine has no audio device."""

    def __init__(self, cache_dir):
        self.played = []  # outcome names, in order
        self.sound_errors = []
        self._sounds = {}
        self._current = None
        self._cache = cache_dir

    def _sound(self, outcome):
        if outcome not in self._sounds:
            from kivy.core.audio import SoundLoader

            os.makedirs(self._cache, exist_ok=True)
            if outcome == P.FEVER:
                path = _tone_file(os.path.join(self._cache, "fever.wav"), 3, 2000, 0.15, 0.1)
            else:
                path = _tone_file(os.path.join(self._cache, "recheck.wav"), 2, 880, 0.25, 0.25)
            self._sounds[outcome] = SoundLoader.load(path)
        return self._sounds[outcome]

    def alert(self, alarm):
        self.played.append(alarm.name)
        self.stop()
        try:
            s = self._sound(alarm.outcome)
            if s is None:
                raise RuntimeError("no audio provider")
            s.loop = alarm.outcome == P.FEVER  # a FEVER keeps sounding until acknowledged
            s.play()
            self._current = s
        except Exception as e:  # no audio device: the banner and vibration still work
            self.sound_errors.append(str(e))
            log.warning("alarm sound unavailable: %s", e)
        if platform == "android":
            from .. import android

            android.vibrate(VIBRATE.get(alarm.outcome, [0, 300]))
            android.notify(alarm.name, ADVICE[alarm.outcome])

    def stop(self):
        if self._current is not None:
            self._current.stop()
            self._current = None
        if platform == "android":
            from .. import android

            android.cancel_vibration()


class AlarmBanner(Panel):
    """Shown on every screen while an alarm is up: colour, words, acknowledge."""

    def __init__(self, ctl, **kw):
        super().__init__(orientation="vertical", size_hint_y=None, height=0, padding=6, spacing=4, **kw)
        self.ctl = ctl
        self.title = label("", font_size=24, bold=True, height=36, halign="center")
        self.text = label("", font_size=14, height=None, halign="center")
        self.ack_button = button("Acknowledge (silence helmet)", self._ack, height=44)
        for w in (self.title, self.text, self.ack_button):
            self.add_widget(w)
        self.opacity = 0
        self.refresh()

    def _ack(self):
        a = self.ctl.alarm
        if a is not None and a.acknowledged:
            self.ctl.dismiss_alarm()
        else:
            spawn(self.ctl.acknowledge_alarm())

    def refresh(self):
        a = self.ctl.alarm
        if a is None:
            self.height, self.opacity, self.disabled = 0, 0, True
            return
        self.height, self.opacity, self.disabled = 160, 1, False
        u = self.ctl.settings.units
        ev = a.reading.event
        reading = "core %s %s at %s" % (
            C.fmt_temp(ev.core_c, u),
            C.fmt_uncertainty(ev.core_u_c, u),
            C.fmt_distance(ev.distance_m),
        )
        self.title.text = a.name
        advice = ADVICE.get(a.outcome, "")
        if a.acknowledged:
            self.bg = ACKED_RGBA
            self.title.text += " (acknowledged)"
            self.text.text = "%s\n%s" % (reading, a.note)
            self.ack_button.text = "Dismiss"
        else:
            self.bg = FEVER_RGBA if a.outcome == P.FEVER else RECHECK_RGBA
            self.text.text = "%s\n%s" % (reading, advice)
            self.ack_button.text = "Acknowledge (silence helmet)"


class Root(Panel):
    def __init__(self, ctl, cache_dir=None, **kw):
        super().__init__(orientation="vertical", bg=BACKGROUND_RGBA, **kw)
        self.ctl = ctl
        self.alerts = Alerts(cache_dir or os.path.join(tempfile.gettempdir(), "helmet-app-sounds"))
        ctl.alert_sinks.append(self.alerts.alert)
        ctl.silence_sinks.append(self.alerts.stop)
        self.banner = AlarmBanner(ctl)
        self.sm = ScreenManager(transition=NoTransition())
        self.screens = {
            "live": LiveScreen(ctl),
            "devices": DevicesScreen(ctl),
            "log": LogScreen(ctl),
            "uploads": UploadsScreen(ctl),
            "settings": SettingsScreen(ctl),
        }
        for s in self.screens.values():
            self.sm.add_widget(s)
        self.message = label("", height=24, font_size=12)
        tabs = Panel(size_hint_y=None, height=52, bg=TAB_RGBA, spacing=2, padding=2)
        self.tabs = {}
        for name, text in TABS:
            b = ToggleButton(
                text=text, group="tabs", allow_no_selection=False, state="down" if name == "live" else "normal"
            )
            b.bind(on_release=lambda _b, n=name: self.show(n))
            tabs.add_widget(b)
            self.tabs[name] = b
        for w in (self.banner, self.sm, self.message, tabs):
            self.add_widget(w)
        self._dirty = set()
        self._refresh_ev = Clock.create_trigger(self._refresh, 0)
        ctl.add_listener(self.on_topic)

    def show(self, name):
        self.sm.current = name
        for n, b in self.tabs.items():
            b.state = "down" if n == name else "normal"

    def on_topic(self, topic):
        if topic == "frame":
            # Straight to the texture: the frame rate is the live view's point.
            if self.sm.current == "live":
                self.screens["live"].on_frame()
            return
        self._dirty.add(topic)
        self._refresh_ev()  # coalesced: one refresh per Kivy frame at most

    def _refresh(self, *_):
        dirty, self._dirty = self._dirty, set()
        s = self.screens
        if dirty & {"alarm", "settings"}:
            self.banner.refresh()
        if dirty & {"link", "reading", "settings"}:
            s["live"].refresh()
        if dirty & {"link", "device", "scan", "settings"}:
            s["devices"].refresh()
        if dirty & {"log", "settings"} and self.sm.current == "log":
            s["log"].refresh()
        if dirty & {"uploads", "log", "settings"}:
            s["uploads"].refresh()
        if "settings" in dirty:
            s["settings"].refresh()
        if "message" in dirty:
            self.message.text = self.ctl.message
            s["settings"].note.text = self.ctl.message

    def refresh_all(self):
        self._dirty |= set(C.TOPICS)
        self._refresh()


def build_root(ctl, cache_dir=None):
    return Root(ctl, cache_dir=cache_dir)


class HelmetApp(App):
    title = "Fever-screening helmet"

    def __init__(self, ctl, first_frame_cb=None, **kw):
        super().__init__(**kw)
        self.ctl = ctl
        self.first_frame_cb = first_frame_cb

    def build(self):
        from kivy.core.window import Window

        Window.clearcolor = BACKGROUND_RGBA
        self.root_widget = build_root(self.ctl, cache_dir=os.path.join(self.user_data_dir, "sounds"))
        if self.first_frame_cb is not None:
            hm = self.root_widget.screens["live"].heatmap

            def check(*_):
                if hm.displayed:
                    Window.unbind(on_flip=check)
                    self.first_frame_cb()

            Window.bind(on_flip=check)
        return self.root_widget

    def on_start(self):
        if platform == "android":
            from .. import android

            android.ask_permissions()
        # The live screen is the first one shown: ask for frames.
        self.root_widget.screens["live"].on_enter()
