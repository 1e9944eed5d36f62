"""Settings screen: threshold and skin-to-core offset (pushed to the helmet),
upload endpoint and token, retention days, units."""

from kivy.uix.boxlayout import BoxLayout
from kivy.uix.gridlayout import GridLayout
from kivy.uix.screenmanager import Screen
from kivy.uix.textinput import TextInput
from kivy.uix.togglebutton import ToggleButton

from .common import button, label, spawn


class SettingsScreen(Screen):
    def __init__(self, ctl, **kw):
        super().__init__(name="settings", **kw)
        self.ctl = ctl
        box = BoxLayout(orientation="vertical", padding=6, spacing=6)
        grid = GridLayout(cols=2, size_hint_y=None, row_default_height=40, row_force_default=True, spacing=4)
        grid.bind(minimum_height=grid.setter("height"))

        def field(title, **kw):
            grid.add_widget(label(title, height=40, font_size=14))
            t = TextInput(multiline=False, write_tab=False, font_size=15, **kw)
            grid.add_widget(t)
            return t

        self.threshold = field("Fever threshold (°C)", input_filter="float")
        self.offset = field("Skin-to-core offset (°C)", input_filter="float")
        self.endpoint = field("Upload endpoint (https://...)")
        # The token is a credential: masked on screen.
        self.token = field("Upload token", password=True)
        self.retention = field("Keep log (days)", input_filter="float")
        grid.add_widget(label("Units", height=40, font_size=14))
        units = BoxLayout(spacing=4)
        self.unit_c = ToggleButton(text="°C", group="units", allow_no_selection=False)
        self.unit_f = ToggleButton(text="°F", group="units", allow_no_selection=False)
        units.add_widget(self.unit_c)
        units.add_widget(self.unit_f)
        grid.add_widget(units)
        self.save_button = button("Save (threshold and offset go to the helmet)", self.save)
        self.note = label("", height=None, font_size=13)
        hint = label(
            "Thresholds differ by country (38.0 °C in most guidance, 37.3 °C in some). "
            "Calibrate the skin-to-core offset per site. Threshold and offset are always entered in °C.",
            height=None,
            font_size=12,
        )
        for w in (grid, self.save_button, self.note, hint, BoxLayout()):
            box.add_widget(w)
        self.add_widget(box)
        self.refresh()

    def refresh(self):
        s = self.ctl.settings
        self.threshold.text = "%.2f" % s.threshold_c
        self.offset.text = "%.2f" % s.skin_to_core_offset_c
        self.endpoint.text = s.endpoint
        self.token.text = s.token
        self.retention.text = "%g" % s.retention_days
        self.unit_c.state, self.unit_f.state = ("down", "normal") if s.units == "C" else ("normal", "down")
        self.note.text = self.ctl.message

    def values(self):
        def num(t, what):
            try:
                return float(t.text)
            except ValueError:
                raise ValueError("%s: not a number" % what) from None

        return dict(
            threshold_c=num(self.threshold, "threshold"),
            skin_to_core_offset_c=num(self.offset, "offset"),
            endpoint=self.endpoint.text.strip(),
            token=self.token.text.strip(),
            retention_days=num(self.retention, "retention days"),
            units="F" if self.unit_f.state == "down" else "C",
        )

    def save(self):
        try:
            changes = self.values()
        except ValueError as e:
            self.note.text = "not saved: %s" % e
            return None
        return spawn(self._save(changes))

    async def _save(self, changes):
        self.note.text = await self.ctl.save_settings(**changes)
