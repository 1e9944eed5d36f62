"""Small building blocks shared by the screens: coloured panels, labels,
and the colours that carry meaning (kept in one place so the tests and the
screens agree on what "FEVER red" is)."""

import asyncio
import logging

from kivy.graphics import Color, Rectangle
from kivy.properties import ListProperty
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.button import Button
from kivy.uix.label import Label

log = logging.getLogger(__name__)

# RGBA 0..1.  Distinct hues *and* distinct brightness, so the banners stay
# tellable apart for colour-blind officers (the text says it as well).
FEVER_RGBA = (0.80, 0.05, 0.05, 1.0)
RECHECK_RGBA = (1.00, 0.65, 0.00, 1.0)
CLEAR_RGBA = (0.10, 0.55, 0.20, 1.0)
ACKED_RGBA = (0.35, 0.35, 0.40, 1.0)
BACKGROUND_RGBA = (0.08, 0.09, 0.11, 1.0)
PANEL_RGBA = (0.15, 0.16, 0.19, 1.0)
TAB_RGBA = (0.20, 0.22, 0.26, 1.0)

OUTCOME_RGBA = {"FEVER": FEVER_RGBA, "RECHECK": RECHECK_RGBA, "CLEAR": CLEAR_RGBA}


def rgb255(rgba):
    return tuple(round(c * 255) for c in rgba[:3])


class Panel(BoxLayout):
    """A BoxLayout with a solid background colour (bg)."""

    bg = ListProperty(PANEL_RGBA)

    def __init__(self, **kw):
        super().__init__(**kw)
        with self.canvas.before:
            self._color = Color(*self.bg)
            self._rect = Rectangle(pos=self.pos, size=self.size)
        self.bind(pos=self._redraw, size=self._redraw, bg=self._recolor)

    def _redraw(self, *_):
        self._rect.pos, self._rect.size = self.pos, self.size

    def _recolor(self, *_):
        self._color.rgba = self.bg


def label(text="", size_hint_y=None, height=28, font_size=15, bold=False, halign="left", **kw):
    """A left-aligned, wrapping label of fixed height (None: fit the text)."""
    lb = Label(text=text, size_hint_y=size_hint_y, font_size=font_size, bold=bold, halign=halign, valign="middle", **kw)
    lb.bind(width=lambda w, v: setattr(w, "text_size", (v - 8, None)))
    if height is None:
        lb.bind(texture_size=lambda w, v: setattr(w, "height", v[1] + 8))
    else:
        lb.height = height
    return lb


def button(text, on_press, height=44, **kw):
    b = Button(text=text, size_hint_y=None, height=height, **kw)
    b.bind(on_release=lambda *_: on_press())
    return b


def spawn(coro):
    """Run a controller coroutine from a Kivy callback (same asyncio loop)."""
    task = asyncio.get_running_loop().create_task(coro)
    task.add_done_callback(_report)
    return task


def _report(task):
    if not task.cancelled() and task.exception() is not None:
        log.error("ui task failed", exc_info=task.exception())
