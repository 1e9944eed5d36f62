"""Exponential backoff with jitter for reconnect attempts.

Why jitter: several phones (or one phone restarting its BLE stack) retrying in
lock-step keep colliding; a random part spreads them out."""

import random


class Backoff:
    def __init__(self, initial_s=0.25, maximum_s=15.0, factor=2.0, jitter=0.5, rng=None):
        if initial_s <= 0 or maximum_s < initial_s or factor < 1 or not 0 <= jitter <= 1:
            raise ValueError("bad backoff parameters")
        self.initial_s, self.maximum_s, self.factor, self.jitter = initial_s, maximum_s, factor, jitter
        self.attempt = 0
        self._rng = rng or random.Random()

    def next_delay(self):
        """Delay before the next attempt; grows until reset()."""
        base = min(self.maximum_s, self.initial_s * self.factor**self.attempt)
        self.attempt += 1
        # "Equal jitter": keep at least (1 - jitter) of the base delay.
        return base * (1 - self.jitter * self._rng.random())

    def reset(self):
        self.attempt = 0
