"""Live screen: the helmet's thermal frames as a heat map, the current
reading with its uncertainty and distance.

The live frame carries temperatures only, no head boxes (the helmet keeps its
detections to itself), so the map marks the hottest 3x3 spot and labels it as
such rather than pretending to show a detected head."""

import time

from kivy.core.window import Window
from kivy.graphics import Color, Line, Rectangle
from kivy.graphics.texture import Texture
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.screenmanager import Screen
from kivy.uix.widget import Widget

from .. import controller as C
from .common import OUTCOME_RGBA, Panel, label, spawn

MARK_RGBA = (0.2, 1.0, 1.0, 1.0)  # cyan: not in the heat palette


class HeatMap(Widget):
    """Draws FrameItems; counts uploads and displayed frames for the bench."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.frame_size = None
        self.texture = None
        self.hot = None  # (x, y, size, degC) of the marked spot
        self.updates = 0  # frames converted and uploaded to the texture
        self.displayed = 0  # window flips that showed a new frame
        self.display_times = []  # monotonic time of each such flip (last 64)
        self._dirty = False
        with self.canvas:
            Color(1, 1, 1, 1)
            self._rect = Rectangle()
            Color(*MARK_RGBA)
            self._mark = Line(rectangle=(0, 0, 0, 0), width=2)
        self.bind(pos=self._layout, size=self._layout)
        Window.bind(on_flip=self._on_flip)

    def image_rect(self):
        """(x, y, w, h) where the frame is drawn: the widget, aspect kept."""
        if self.frame_size is None:
            return self.x, self.y, 0, 0
        fw, fh = self.frame_size
        scale = min(self.width / fw, self.height / fh)
        w, h = fw * scale, fh * scale
        return self.x + (self.width - w) / 2, self.y + (self.height - h) / 2, w, h

    def pixel_center(self, px, py):
        """Window coordinates of frame pixel (px, py), row 0 at the top."""
        x, y, w, h = self.image_rect()
        fw, fh = self.frame_size
        return x + (px + 0.5) * w / fw, y + h - (py + 0.5) * h / fh

    def show(self, frame):
        w, h = frame.width, frame.height
        if self.texture is None or self.frame_size != (w, h):
            self.frame_size = (w, h)
            self.texture = Texture.create(size=(w, h), colorfmt="rgb")
            # Nearest: one sensor pixel is one block; smoothing would invent detail.
            self.texture.mag_filter = "nearest"
            self.texture.min_filter = "nearest"
            self._rect.texture = self.texture
        self.texture.blit_buffer(C.frame_rgb(frame.pixels_centi, w, h), colorfmt="rgb", bufferfmt="ubyte")
        self.hot = C.hottest_region(frame.pixels_centi, w, h)
        self.updates += 1
        self._dirty = True
        self._layout()
        self.canvas.ask_update()

    def clear(self):
        self.frame_size, self.hot = None, None
        self._rect.size = (0, 0)
        self._mark.rectangle = (0, 0, 0, 0)

    def _layout(self, *_):
        x, y, w, h = self.image_rect()
        self._rect.pos, self._rect.size = (x, y), (w, h)
        if self.hot is None or self.frame_size is None:
            self._mark.rectangle = (0, 0, 0, 0)
            return
        hx, hy, s, _ = self.hot
        fw, fh = self.frame_size
        px = w / fw
        self._mark.rectangle = (x + hx * px, y + h - (hy + s) * px, s * px, s * px)

    def _on_flip(self, *_):
        if self._dirty:
            self._dirty = False
            self.displayed += 1
            self.display_times.append(time.monotonic())
            del self.display_times[:-64]

    def fps(self):
        t = self.display_times
        if len(t) < 2 or time.monotonic() - t[-1] > 2.0:
            return 0.0
        return (len(t) - 1) / (t[-1] - t[0])


class ScaleBar(Widget):
    """The colour scale under the map, so a colour can be read as a temperature."""

    def __init__(self, **kw):
        super().__init__(**kw)
        n = 64
        tex = Texture.create(size=(n, 1), colorfmt="rgb")
        lo, hi = C.HEATMAP_LO_C, C.HEATMAP_HI_C
        tex.blit_buffer(b"".join(C.heat_color(lo + (hi - lo) * i / (n - 1)) for i in range(n)), colorfmt="rgb")
        with self.canvas:
            Color(1, 1, 1, 1)
            self._rect = Rectangle(texture=tex)
        self.bind(pos=self._layout, size=self._layout)

    def _layout(self, *_):
        self._rect.pos, self._rect.size = self.pos, self.size


class LiveScreen(Screen):
    def __init__(self, ctl, **kw):
        super().__init__(name="live", **kw)
        self.ctl = ctl
        box = BoxLayout(orientation="vertical", padding=6, spacing=4)
        self.status = label("", height=24, font_size=13)
        self.heatmap = HeatMap(size_hint_y=1)
        scale = BoxLayout(size_hint_y=None, height=22, spacing=4)
        u = ctl.settings.units
        self.scale_lo = label(C.fmt_temp(C.HEATMAP_LO_C, u), size_hint_x=None, width=70, height=22, font_size=12)
        self.scale_hi = label(C.fmt_temp(C.HEATMAP_HI_C, u), size_hint_x=None, width=70, height=22, font_size=12)
        scale.add_widget(self.scale_lo)
        scale.add_widget(ScaleBar())
        scale.add_widget(self.scale_hi)
        self.hot_label = label("", height=22, font_size=12)
        self.reading_panel = Panel(orientation="vertical", size_hint_y=None, height=120, padding=6)
        self.outcome = label("no reading yet", height=34, font_size=22, bold=True)
        self.temp = label("", height=30, font_size=20)
        self.detail = label("", height=24, font_size=13)
        for w in (self.outcome, self.temp, self.detail):
            self.reading_panel.add_widget(w)
        note = label(
            "Triage aid, not a diagnosis: confirm a FEVER or RECHECK with a clinical thermometer.",
            height=None,
            font_size=12,
        )
        for w in (self.status, self.heatmap, scale, self.hot_label, self.reading_panel, note):
            box.add_widget(w)
        self.add_widget(box)
        self.refresh()

    def on_enter(self, *_):
        spawn(self.ctl.set_live_wanted(True))

    def on_leave(self, *_):
        spawn(self.ctl.set_live_wanted(False))
        self.heatmap.clear()

    def on_frame(self):
        f = self.ctl.frame
        if f is None:
            return
        self.heatmap.show(f)
        hot = self.heatmap.hot
        u = self.ctl.settings.units
        self.hot_label.text = (
            "cyan box: hottest spot %s (display only, not a head detection); room %s"
            % (C.fmt_temp(hot[3], u), C.fmt_temp(f.ambient_c, u))
            if hot
            else ""
        )
        self.status.text = "%s | live view %.1f frames/s" % (C.link_text(self.ctl.link_state), self.heatmap.fps())

    def refresh(self):
        u = self.ctl.settings.units
        self.scale_lo.text, self.scale_hi.text = C.fmt_temp(C.HEATMAP_LO_C, u), C.fmt_temp(C.HEATMAP_HI_C, u)
        self.status.text = C.link_text(self.ctl.link_state)
        r = self.ctl.reading
        if r is None:
            return
        ev = r.event
        self.outcome.text = r.outcome
        self.outcome.color = OUTCOME_RGBA.get(r.outcome, (1, 1, 1, 1))
        self.temp.text = "core %s %s" % (C.fmt_temp(ev.core_c, u), C.fmt_uncertainty(ev.core_u_c, u))
        self.detail.text = "skin %s %s | %s | %s" % (
            C.fmt_temp(ev.skin_c, u),
            C.fmt_uncertainty(ev.skin_u_c, u),
            C.fmt_distance(ev.distance_m),
            time.strftime("%H:%M:%S", time.localtime(r.received_at)),
        )
