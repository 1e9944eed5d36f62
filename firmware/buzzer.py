"""Buzzer patterns an officer can tell apart without looking.

A pattern is a tuple of (frequency Hz, on ms, off ms) steps.  Frequencies
sit near a piezo's 2.7 kHz resonance, where it is loudest.  The outcome
patterns differ in rhythm and pitch, not only in length, so they are told
apart in a noisy street: FEVER is a long high-low warble, RECHECK two short
low beeps, the boot chirp a rising triad.
"""

import time

SELF_TEST = ((2000, 60, 20), (2700, 60, 20), (3400, 90, 0))
FEVER = ((3400, 150, 0), (2700, 150, 0)) * 3
RECHECK = ((2000, 80, 120), (2000, 80, 0))

ON_DUTY = 32768  # 50 %: a piezo's loudest square wave


class Buzzer:
    """Plays patterns on a PWM output.  ``sleep_ms`` is injectable so the
    simulated board can run patterns on its own clock."""

    def __init__(self, pwm, sleep_ms=time.sleep_ms):
        self.pwm = pwm
        self.sleep_ms = sleep_ms
        self.enabled = True

    def play(self, pattern):
        """Play a pattern to the end (blocking); silent when disabled."""
        if not self.enabled:
            return
        for freq, on_ms, off_ms in pattern:
            self.pwm.freq(freq)
            self.pwm.duty_u16(ON_DUTY)
            self.sleep_ms(on_ms)
            self.pwm.duty_u16(0)
            if off_ms:
                self.sleep_ms(off_ms)

    def silence(self):
        self.pwm.duty_u16(0)
