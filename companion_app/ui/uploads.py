"""Uploads screen: the outbox (pending, sending, sent, failed with the
reason), the uploader's status line, and "retry now"."""

from kivy.uix.boxlayout import BoxLayout
from kivy.uix.gridlayout import GridLayout
from kivy.uix.screenmanager import Screen
from kivy.uix.scrollview import ScrollView

from ..store import FAILED, PENDING, SENDING, SENT
from .common import FEVER_RGBA, Panel, button, label

STATE_RGBA = {PENDING: (1, 0.8, 0.3, 1), SENDING: (0.5, 0.8, 1, 1), SENT: (0.5, 0.9, 0.5, 1), FAILED: FEVER_RGBA}


class UploadsScreen(Screen):
    def __init__(self, ctl, **kw):
        super().__init__(name="uploads", **kw)
        self.ctl = ctl
        box = BoxLayout(orientation="vertical", padding=6, spacing=4)
        head = Panel(orientation="vertical", size_hint_y=None, height=90, padding=4)
        self.counts = label("", font_size=16, bold=True)
        self.status = label("", height=None, font_size=13)
        head.add_widget(self.counts)
        head.add_widget(self.status)
        self.rows = GridLayout(cols=1, size_hint_y=None, spacing=2)
        self.rows.bind(minimum_height=self.rows.setter("height"))
        scroll = ScrollView()
        scroll.add_widget(self.rows)
        self.retry_button = button("Retry now", self.ctl.retry_uploads)
        for w in (head, scroll, self.retry_button):
            box.add_widget(w)
        self.add_widget(box)
        self.refresh()

    def refresh(self):
        c = self.ctl.outbox_counts()
        self.counts.text = "pending %d | sending %d | sent %d | failed %d" % (
            c[PENDING],
            c[SENDING],
            c[SENT],
            c[FAILED],
        )
        self.status.text = self.ctl.upload_status
        self.rows.clear_widgets()
        for o in reversed(self.ctl.outbox_rows()[-100:]):
            reason = o.last_error if o.state in (FAILED, PENDING) and o.last_error else o.status
            lb = label(
                "#%d %s  %s  (%d attempt(s))\n%s" % (o.seq, o.helmet_id, o.state.upper(), o.attempts, reason),
                height=None,
                font_size=13,
            )
            lb.color = STATE_RGBA.get(o.state, (1, 1, 1, 1))
            self.rows.add_widget(lb)
        if not self.rows.children:
            self.rows.add_widget(label("nothing to upload: only FEVER and RECHECK readings are sent", height=None))
