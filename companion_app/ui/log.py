"""Log screen: stored events, filtered by outcome and time, a detail view,
and CSV export (header, ISO-8601 UTC times: store.export_csv)."""

from kivy.uix.boxlayout import BoxLayout
from kivy.uix.gridlayout import GridLayout
from kivy.uix.screenmanager import Screen
from kivy.uix.scrollview import ScrollView
from kivy.uix.togglebutton import ToggleButton

import protocol as P

from .. import controller as C
from .common import OUTCOME_RGBA, Panel, button, label

OUTCOME_FILTERS = (("All", None), ("FEVER", P.FEVER), ("RECHECK", P.RECHECK), ("CLEAR", P.CLEAR))
TIME_FILTERS = (("1 h", 3600.0), ("24 h", 86400.0), ("All time", None))
MAX_ROWS = 100  # the screen shows the newest; the export has them all


class LogScreen(Screen):
    def __init__(self, ctl, **kw):
        super().__init__(name="log", **kw)
        self.ctl = ctl
        self.outcome = None
        self.since_s = None
        self.selected = None
        box = BoxLayout(orientation="vertical", padding=6, spacing=4)
        self.outcome_buttons = self._toggles(box, "log-outcome", OUTCOME_FILTERS, self._set_outcome, 0)
        self.time_buttons = self._toggles(box, "log-time", TIME_FILTERS, self._set_since, 2)
        self.rows = GridLayout(cols=1, size_hint_y=None, spacing=2)
        self.rows.bind(minimum_height=self.rows.setter("height"))
        scroll = ScrollView()
        scroll.add_widget(self.rows)
        self.detail = Panel(orientation="vertical", size_hint_y=None, height=0, padding=4)
        self.detail_label = label("", height=None, font_size=13)
        self.detail.add_widget(self.detail_label)
        self.export_button = button("Export CSV", self.export)
        self.export_note = label("", height=None, font_size=12)
        for w in (scroll, self.detail, self.export_button, self.export_note):
            box.add_widget(w)
        self.add_widget(box)

    def _toggles(self, parent, group, choices, setter, default):
        row = BoxLayout(size_hint_y=None, height=40, spacing=4)
        buttons = []
        for i, (text, value) in enumerate(choices):
            b = ToggleButton(
                text=text, group=group, state="down" if i == default else "normal", allow_no_selection=False
            )
            b.bind(on_release=lambda _b, v=value: setter(v))
            row.add_widget(b)
            buttons.append(b)
        parent.add_widget(row)
        return buttons

    def _set_outcome(self, v):
        self.outcome = v
        self.refresh()

    def _set_since(self, v):
        self.since_s = v
        self.refresh()

    def on_pre_enter(self, *_):
        self.refresh()

    def refresh(self):
        u = self.ctl.settings.units
        self.rows.clear_widgets()
        self.shown = self.ctl.log_rows(self.outcome, self.since_s, limit=MAX_ROWS)
        for r in self.shown:
            text = "%s  %-7s %s %s  %s" % (
                C.fmt_time(r.event_time)[11:19],
                r.outcome_name,
                C.fmt_temp(r.core_c, u),
                C.fmt_uncertainty(r.core_u_c, u),
                C.fmt_distance(r.distance_m) if r.kind == P.EVENT_SCREENING else "",
            )
            b = button(text, lambda r=r: self.show_detail(r), height=36, halign="left")
            b.color = OUTCOME_RGBA.get(r.outcome_name, (0.9, 0.9, 0.9, 1))
            self.rows.add_widget(b)
        if not self.shown:
            self.rows.add_widget(label("no events match the filters", height=36))

    def show_detail(self, r):
        u = self.ctl.settings.units
        state = {o.seq: o for o in self.ctl.outbox_rows() if o.helmet_id == r.helmet_id}.get(r.seq)
        self.selected = r
        self.detail_label.text = "\n".join(
            (
                "%s  (helmet %s, event #%d, track %d)" % (r.outcome_name, r.helmet_id, r.seq, r.track_id),
                "time %s (%s clock)" % (C.fmt_time(r.event_time), "helmet" if r.time_from_helmet else "phone"),
                "core %s %s (expanded, k=%.1f)"
                % (C.fmt_temp(r.core_c, u), C.fmt_uncertainty(r.core_u_c, u), r.coverage_k),
                "skin %s %s | %s"
                % (C.fmt_temp(r.skin_c, u), C.fmt_uncertainty(r.skin_u_c, u), C.fmt_distance(r.distance_m)),
                "upload: %s" % (state.status if state else "not uploaded (CLEAR, fault and boot events stay local)"),
            )
        )
        self.detail.height = 120

    def export(self):
        path, n = self.ctl.export_csv(self.outcome, self.since_s)
        self.export_note.text = "%d event(s) written to %s" % (n, path)
