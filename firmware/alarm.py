"""Alarm: screening outcomes -> buzzer patterns and the status LED.

Patterns are buzzer.py's (FEVER: high-low warble; RECHECK: two low beeps),
played WITHOUT blocking: tick(now_ms) advances the pattern from the main
loop, so screening never stops for a beep.

- FEVER event: FEVER pattern, repeated every FEVER_REPEAT_MS until the
  officer presses the button (acknowledge) or FEVER_REPEATS times; LED
  blinks fast (_LED_FAST_MS) until acknowledged.
- RECHECK: one RECHECK pattern when a person leaves while still RECHECK
  (on_final), not while they approach: "call them back / use a clinical
  thermometer".  LED blinks slowly for _RECHECK_LED_MS.
- CLEAR: silent (a crowd of CLEARs must not train the officer to ignore
  beeps); LED steady on briefly (CLEAR_LED_MS).
- Button (active low, IRQ on the falling edge, DEBOUNCE_MS): silences the
  buzzer at once and acknowledges the alarm; the next event may alarm again.
  `silenced` tells the screening to set FLAG_ALARM_SILENCED on events.
- Idle: LED off.  One alarm per person: the screening emits FEVER once per
  track; alarm also ignores a repeated FEVER for a track it already sounded.

Time: now_ms is time.ticks_ms(), which wraps (every 2**30 ms, 12.4 days, on
the ESP32): deadlines are made with ticks_add and compared with ticks_diff,
never with < or >.  A ticks_diff is right only within half the period, so
every deadline is short-lived: a pattern, the LED or the debounce is started
on the tick after the event (on_event may come before any tick, when
``now`` is stale) and ends within seconds while tick() runs every few ms.
"""

import time

from micropython import const

import buzzer
import calibration

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

FEVER_REPEAT_MS = 3000
FEVER_REPEATS = 3
_LED_FAST_MS = const(100)
_LED_SLOW_MS = const(500)
_RECHECK_LED_MS = const(4000)
CLEAR_LED_MS = 1000
DEBOUNCE_MS = 50

LED_OFF = 0
_LED_STEADY = const(1)
_LED_SLOW = const(2)
_LED_FAST = const(3)


class Alarm:
    """buzz: buzzer.Buzzer (its pwm is driven step by step here); led: a Pin;
    button: a Pin (pull-up) or None."""

    def __init__(self, buzz, led, button=None):
        self.buzz = buzz
        self.led = led
        self.pattern: "Any" = None
        self.step = 0
        self.step_on = False
        self.step_end: "Any" = 0  # ticks (typed Any: the stubs' ticks type)
        self.starting = False  # a pattern waits for the next tick to start
        self.repeats_left = 0
        self.repeat_at: "Any" = 0
        self.led_mode = LED_OFF
        self.led_ms = 0  # how long the LED mode lasts (0: until changed)
        self.led_until: "Any" = 0
        self.led_starting = False  # led_until is set on the next tick
        self.alarmed_track = -1
        self.pressed = False
        self.last_press: "Any" = 0
        self.debouncing = False  # within DEBOUNCE_MS of the last accepted press
        self.silenced = False
        self.now = 0
        if button is not None:
            button.irq(self._irq, trigger=1)  # Pin.IRQ_FALLING

    def _irq(self, pin):
        # keep the handler tiny: tick() does the work
        self.pressed = True

    def on_event(self, ev):
        """A protocol.ScreeningEvent from the screening."""
        if ev.outcome == calibration.FEVER:
            if ev.track_id == self.alarmed_track:
                return
            self.alarmed_track = ev.track_id
            self.silenced = False
            self._start(buzzer.FEVER, FEVER_REPEATS - 1)
            self._led(_LED_FAST, 0)
        elif ev.outcome == calibration.CLEAR and self.led_mode != _LED_FAST:
            self._led(_LED_STEADY, CLEAR_LED_MS)

    def on_final(self, track_id, outcome):
        """A person left; outcome is their last reported one."""
        if outcome == calibration.RECHECK and self.pattern is None:
            self._start(buzzer.RECHECK, 0)
            if self.led_mode != _LED_FAST:
                self._led(_LED_SLOW, _RECHECK_LED_MS)

    def _start(self, pattern, repeats):
        self.pattern = pattern
        self.repeats_left = repeats
        self.step = 0
        self.step_on = False
        self.starting = True

    def _led(self, mode, ms):
        """LED mode for ms (0: until changed)."""
        self.led_mode = mode
        self.led_ms = ms
        self.led_starting = ms > 0

    def acknowledge(self):
        """Silence the buzzer and clear a FEVER alarm (the button does this)."""
        self.pattern = None
        self.repeats_left = 0
        self.buzz.silence()
        self.silenced = True
        self._led(LED_OFF, 0)

    def tick(self, now_ms):
        """Advance buzzer and LED; call every few ms from the main loop."""
        self.now = now_ms
        if self.debouncing and time.ticks_diff(now_ms, self.last_press) >= DEBOUNCE_MS:
            self.debouncing = False
        if self.pressed:
            self.pressed = False
            if not self.debouncing:
                self.debouncing = True
                self.last_press = now_ms
                self.acknowledge()
        self._tick_buzzer(now_ms)
        self._tick_led(now_ms)

    def _tick_buzzer(self, now):
        pat = self.pattern
        if pat is None:
            if self.repeats_left > 0 and time.ticks_diff(now, self.repeat_at) >= 0:
                self.repeats_left -= 1
                self._start(buzzer.FEVER, self.repeats_left)
                pat = self.pattern
            else:
                return
        if self.starting:
            self.starting = False
            self.step_end = now
        pwm = self.buzz.pwm
        while time.ticks_diff(now, self.step_end) >= 0:
            if self.step_on:
                # end of the tone: rest for off_ms
                pwm.duty_u16(0)
                self.step_on = False
                self.step_end = time.ticks_add(self.step_end, pat[self.step][2])
                self.step += 1
                if self.step >= len(pat):
                    self.pattern = None
                    self.repeat_at = time.ticks_add(now, FEVER_REPEAT_MS)
                    return
            else:
                freq, on_ms, _off = pat[self.step]
                if self.buzz.enabled:
                    pwm.freq(freq)
                    pwm.duty_u16(buzzer.ON_DUTY)
                self.step_on = True
                self.step_end = time.ticks_add(self.step_end, on_ms)

    def _tick_led(self, now):
        mode = self.led_mode
        if self.led_starting:
            self.led_starting = False
            self.led_until = time.ticks_add(now, self.led_ms)
        elif self.led_ms and mode != LED_OFF and time.ticks_diff(now, self.led_until) >= 0:
            mode = self.led_mode = LED_OFF
            self.led_ms = 0
        if mode == LED_OFF:
            self.led.value(0)
        elif mode == _LED_STEADY:
            self.led.value(1)
        else:
            # the blink phase jumps once at the wrap (2**30 is no multiple
            # of the period): harmless
            period = _LED_FAST_MS if mode == _LED_FAST else _LED_SLOW_MS
            self.led.value((now // period) & 1)
