"""Alarm: screening outcomes -> buzzer patterns and the status LED.

Patterns are buzzer.py's (FEVER: high-low warble; RECHECK: two low beeps),
played WITHOUT blocking: tick(now_ms) advances the pattern from the main
loop, so screening never stops for a beep.

- FEVER event: FEVER pattern, repeated every FEVER_REPEAT_MS until the
  officer presses the button (acknowledge) or FEVER_REPEATS times; LED
  blinks fast (LED_FAST_MS) until acknowledged.
- RECHECK: one RECHECK pattern when a person leaves while still RECHECK
  (on_final), not while they approach: "call them back / use a clinical
  thermometer".  LED blinks slowly for RECHECK_LED_MS.
- CLEAR: silent (a crowd of CLEARs must not train the officer to ignore
  beeps); LED steady on briefly (CLEAR_LED_MS).
- Button (active low, IRQ on the falling edge, DEBOUNCE_MS): silences the
  buzzer at once and acknowledges the alarm; the next event may alarm again.
  `silenced` tells the screening to set FLAG_ALARM_SILENCED on events.
- Idle: LED off.  One alarm per person: the screening emits FEVER once per
  track; alarm also ignores a repeated FEVER for a track it already sounded.
"""

import buzzer
import calibration

FEVER_REPEAT_MS = 3000
FEVER_REPEATS = 3
LED_FAST_MS = 100
LED_SLOW_MS = 500
RECHECK_LED_MS = 4000
CLEAR_LED_MS = 1000
DEBOUNCE_MS = 50

LED_OFF = 0
LED_STEADY = 1
LED_SLOW = 2
LED_FAST = 3


class Alarm:
    """buzz: buzzer.Buzzer (its pwm is driven step by step here); led: a Pin;
    button: a Pin (pull-up) or None."""

    def __init__(self, buzz, led, button=None):
        self.buzz = buzz
        self.led = led
        self.pattern = None
        self.step = 0
        self.step_on = False
        self.step_end = 0
        self.repeats_left = 0
        self.repeat_at = 0
        self.led_mode = LED_OFF
        self.led_until = 0
        self.alarmed_track = -1
        self.pressed = False
        self.last_press = -DEBOUNCE_MS
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
            self._led(LED_FAST, -1)
        elif ev.outcome == calibration.CLEAR and self.led_mode != LED_FAST:
            self._led(LED_STEADY, self.now + CLEAR_LED_MS)

    def on_final(self, track_id, outcome):
        """A person left; outcome is their last reported one."""
        if outcome == calibration.RECHECK and self.pattern is None:
            self._start(buzzer.RECHECK, 0)
            if self.led_mode != LED_FAST:
                self._led(LED_SLOW, self.now + RECHECK_LED_MS)

    def _start(self, pattern, repeats):
        self.pattern = pattern
        self.repeats_left = repeats
        self.step = 0
        self.step_on = False
        self.step_end = self.now

    def _led(self, mode, until):
        self.led_mode = mode
        self.led_until = until

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
        if self.pressed:
            self.pressed = False
            if now_ms - self.last_press >= DEBOUNCE_MS:
                self.last_press = now_ms
                self.acknowledge()
        self._tick_buzzer(now_ms)
        self._tick_led(now_ms)

    def _tick_buzzer(self, now):
        pat = self.pattern
        if pat is None:
            if self.repeats_left > 0 and now >= self.repeat_at:
                self.repeats_left -= 1
                self.pattern = buzzer.FEVER
                self.step = 0
                self.step_on = False
                self.step_end = now
            return
        pwm = self.buzz.pwm
        while now >= self.step_end:
            if self.step_on:
                # end of the tone: rest for off_ms
                pwm.duty_u16(0)
                self.step_on = False
                self.step_end += pat[self.step][2]
                self.step += 1
                if self.step >= len(pat):
                    self.pattern = None
                    self.repeat_at = now + FEVER_REPEAT_MS
                    return
            else:
                freq, on_ms, _off = pat[self.step]
                if self.buzz.enabled:
                    pwm.freq(freq)
                    pwm.duty_u16(buzzer.ON_DUTY)
                self.step_on = True
                self.step_end += on_ms

    def _tick_led(self, now):
        mode = self.led_mode
        if self.led_until >= 0 and mode != LED_OFF and now >= self.led_until and mode != LED_FAST:
            mode = self.led_mode = LED_OFF
        if mode == LED_OFF:
            self.led.value(0)
        elif mode == LED_STEADY:
            self.led.value(1)
        else:
            period = LED_FAST_MS if mode == LED_FAST else LED_SLOW_MS
            self.led.value((now // period) & 1)
