"""Devices screen: scan for helmets, connect, and what the connected helmet
reports (bond state, battery, signal, firmware)."""

from kivy.uix.boxlayout import BoxLayout
from kivy.uix.gridlayout import GridLayout
from kivy.uix.screenmanager import Screen
from kivy.uix.scrollview import ScrollView

from .. import controller as C
from .common import Panel, button, label, spawn


def _or_unknown(v, fmt="%s"):
    return "unknown" if v is None else fmt % v


class DevicesScreen(Screen):
    def __init__(self, ctl, **kw):
        super().__init__(name="devices", **kw)
        self.ctl = ctl
        box = BoxLayout(orientation="vertical", padding=6, spacing=6)
        info = Panel(orientation="vertical", size_hint_y=None, height=200, padding=6)
        self.state = label("", font_size=18, bold=True, height=30)
        self.address = label("")
        self.bond = label("")
        self.battery = label("")
        self.signal = label("")
        self.firmware = label("")
        for w in (self.state, self.address, self.bond, self.battery, self.signal, self.firmware):
            info.add_widget(w)
        self.scan_button = button("Scan for helmets", lambda: spawn(self.ctl.scan()))
        self.found = GridLayout(cols=1, size_hint_y=None, spacing=4)
        self.found.bind(minimum_height=self.found.setter("height"))
        scroll = ScrollView()
        scroll.add_widget(self.found)
        for w in (info, self.scan_button, label("Helmets in range:", height=26), scroll):
            box.add_widget(w)
        self.add_widget(box)
        self.refresh()

    def refresh(self):
        c, d = self.ctl, self.ctl.device
        st = c.link_state
        self.state.text = "Helmet: %s" % C.link_text(st)
        self.address.text = "address: %s" % (d.address or c.settings.helmet_address or "first helmet found")
        self.bond.text = "bond: %s" % {True: "bonded (encrypted link)", False: "NOT bonded", None: "unknown"}[d.bonded]
        self.battery.text = "battery: %s" % _or_unknown(d.battery_pct, "%d %%")
        self.signal.text = "signal: %s" % _or_unknown(d.rssi, "%d dBm")
        self.firmware.text = "firmware: %s" % _or_unknown(d.firmware)
        self.scan_button.text = "Scanning..." if c.scanning else "Scan for helmets"
        self.scan_button.disabled = c.scanning
        self.found.clear_widgets()
        for h in c.scan_results:
            text = "%s  %s  %s" % (h.name, h.address, _or_unknown(h.rssi, "%d dBm"))
            self.found.add_widget(button("Connect: " + text, lambda a=h.address: spawn(self.ctl.connect(a))))
