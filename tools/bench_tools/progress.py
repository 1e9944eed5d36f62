"""A progress display for long steps: a bar on a terminal, one line per
step otherwise (CI logs, pipes), always on stderr so stdout stays the report."""

import sys
import time


class Progress:
    def __init__(self, title, total, stream=None):
        self.title = title
        self.total = max(1, total)
        self.done = 0
        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.start = time.monotonic()

    def step(self, what=""):
        self.done += 1
        if self.tty:
            width = 30
            full = width * self.done // self.total
            self.stream.write(
                "\r%s [%s%s] %d/%d %-40s" % (self.title, "#" * full, "." * (width - full), self.done, self.total, what)
            )
        else:
            self.stream.write("%s %d/%d %s\n" % (self.title, self.done, self.total, what))
        self.stream.flush()

    def finish(self, what="done"):
        elapsed = time.monotonic() - self.start
        if self.tty:
            self.stream.write("\n")
        self.stream.write("%s: %s in %.1f s\n" % (self.title, what, elapsed))
        self.stream.flush()
