"""The simulated ESP32 board behind ``machine`` on the MicroPython unix port.

Firmware never imports this module; tests and the demo do, to wire device
models onto the buses, press buttons, inject faults and read back what the
firmware did (the buzzer's PWM timeline, LED levels, watchdog feeds).

The board state is module-global because the hardware is: there is one
board per MicroPython process.  ``reset_board()`` returns it to power-on.

Faults behave like the ESP32 port: a device that does not acknowledge its
address raises ``OSError(ENODEV)``, a bus that times out (clock stretched
too long, SDA held low) raises ``OSError(ETIMEDOUT)``.
"""

import time

try:
    import errno

    ENODEV = errno.ENODEV
    ETIMEDOUT = errno.ETIMEDOUT
except (ImportError, AttributeError):  # pragma: no cover - every port has errno
    ENODEV = 19
    ETIMEDOUT = 110


class BoardReset(Exception):
    """Raised by ``machine.reset()`` and by a watchdog that was not fed:
    the simulated CPU restarts.  Tests catch it and boot the firmware again."""

    def __init__(self, cause):
        super().__init__("board reset: " + cause)
        self.cause = cause


class WatchdogReset(BoardReset):
    pass


# ---------------------------------------------------------------- clock
# Device models ask this clock, never time.ticks_ms() directly, so a test can
# swap in a virtual clock and simulate minutes in milliseconds.
_clock = None


def ticks_ms():
    if _clock is not None:
        return _clock()
    return time.ticks_ms()


def set_clock(clock):
    """Use ``clock()`` (returning milliseconds) as the board clock; None restores real time."""
    global _clock
    _clock = clock


class VirtualClock:
    """Board time that advances only while the firmware waits: sleeping moves
    the clock instead of waiting, so a simulated minute costs only the
    compute, and a virtual sensor never produces a subpage in the middle of a
    bus read.  ``install(*modules)`` makes it the board clock and the
    ``time`` of the firmware modules that wait (e.g. mlx90640_device, i2c16)."""

    def __init__(self):
        self.now = 0

    def ticks_ms(self):
        return self.now

    def ticks_add(self, a, b):
        return a + b

    def ticks_diff(self, a, b):
        return a - b

    def sleep_ms(self, ms):
        self.now += ms

    async def wait_ms(self, ms):
        """An asyncio wait on the board clock (the helmet's wait for the
        sensor's next subpage): moves the clock, lets the other tasks run."""
        import asyncio

        self.now += ms
        await asyncio.sleep_ms(0)

    def install(self, *modules):
        set_clock(self.ticks_ms)
        for module in modules:
            module.time = self
        return self


# ---------------------------------------------------------------- I2C devices
class I2CDevice:
    """Base of every device model on a simulated I2C bus.

    A model answers memory transactions (register address then data, with a
    repeated start for reads) and, where the part supports them, plain ones.
    The default refuses with a NACK, as a real part does for unsupported
    access patterns."""

    def read_mem(self, memaddr, buf, addrsize):
        raise OSError(ENODEV)

    def write_mem(self, memaddr, data, addrsize):
        raise OSError(ENODEV)

    def read(self, buf):
        raise OSError(ENODEV)

    def write(self, data):
        raise OSError(ENODEV)


class RegisterDevice16(I2CDevice):
    """A part with 16-bit register addresses and big-endian 16-bit words
    (the MLX90640's layout).  Subclasses override ``read_word``/``write_word``;
    this class does the byte framing and address auto-increment."""

    def __init__(self, words=None):
        self.words = {} if words is None else words

    def read_word(self, reg):
        return self.words.get(reg, 0)

    def write_word(self, reg, value):
        self.words[reg] = value

    def read_mem(self, memaddr, buf, addrsize):
        if addrsize != 16 or len(buf) % 2:
            raise OSError(ENODEV)
        for i in range(len(buf) // 2):
            w = self.read_word(memaddr + i) & 0xFFFF
            buf[2 * i] = w >> 8
            buf[2 * i + 1] = w & 0xFF

    def write_mem(self, memaddr, data, addrsize):
        if addrsize != 16 or len(data) % 2:
            raise OSError(ENODEV)
        for i in range(len(data) // 2):
            self.write_word(memaddr + i, (data[2 * i] << 8) | data[2 * i + 1])


# ---------------------------------------------------------------- board state
i2c_devices = {}  # (bus id, address) -> I2CDevice
i2c_faults = {}  # (bus id, address) -> [kind, remaining count]
i2c_stats = {}  # bus id -> [transactions, bytes moved, bus time in microseconds]
pin_levels = {}  # pin id -> level driven from outside (inputs) or by firmware (outputs)
pin_irqs = {}  # pin id -> (handler, trigger, Pin object)
pwm_timeline = {}  # pin id -> list of (ticks_ms, freq_hz, duty_u16)
adc_values = {}  # pin id -> raw 16-bit reading
watchdog = None  # [timeout_ms, last_feed_ms, feed count] once a WDT is created
resets = []  # causes of every reset, oldest first
reset_cause = 1  # machine.PWRON_RESET


def reset_board():
    """Power-cycle the board: forget devices, faults, pins, timelines."""
    global watchdog, reset_cause
    i2c_devices.clear()
    i2c_faults.clear()
    i2c_stats.clear()
    pin_levels.clear()
    pin_irqs.clear()
    pwm_timeline.clear()
    adc_values.clear()
    resets.clear()
    watchdog = None
    reset_cause = 1


def attach_i2c(address, device, bus=0):
    """Connect a device model at a 7-bit address."""
    if not 0x08 <= address <= 0x77:
        raise ValueError("I2C address 0x%02x is outside the usable 7-bit range" % address)
    i2c_devices[(bus, address)] = device


def detach_i2c(address, bus=0):
    """Unplug a device: from now on its address NACKs."""
    i2c_devices.pop((bus, address), None)


def inject_i2c_fault(address, kind, count=1, bus=0):
    """Make the next ``count`` transactions to ``address`` fail with ``kind``
    ("nack" or "timeout"); count -1 means until cleared."""
    if kind not in ("nack", "timeout"):
        raise ValueError("unknown I2C fault %r (use 'nack' or 'timeout')" % kind)
    i2c_faults[(bus, address)] = [kind, count]


def clear_i2c_faults():
    i2c_faults.clear()


def i2c_transaction(bus, address, nbytes, freq):
    """Account one transaction and return the device model, raising the
    injected or physical fault.  Bus time counts 9 clocks per byte plus the
    address byte, so benchmarks can report what the wire costs at ``freq``."""
    poll_watchdog()
    stats = i2c_stats.get(bus)
    if stats is None:
        stats = i2c_stats[bus] = [0, 0, 0]
    stats[0] += 1
    stats[1] += nbytes
    stats[2] += (nbytes + 1) * 9 * 1000000 // freq
    fault = i2c_faults.get((bus, address))
    if fault is not None and fault[1] != 0:
        if fault[1] > 0:
            fault[1] -= 1
        raise OSError(ENODEV if fault[0] == "nack" else ETIMEDOUT)
    device = i2c_devices.get((bus, address))
    if device is None:
        raise OSError(ENODEV)
    return device


# ---------------------------------------------------------------- pins
def set_pin(pin_id, level):
    """Drive an input pin from outside (a button, a sensor line) and fire
    its IRQ on the matching edge, as the ESP32 GPIO interrupt would."""
    old = pin_levels.get(pin_id, 1)
    level = 1 if level else 0
    pin_levels[pin_id] = level
    irq = pin_irqs.get(pin_id)
    if irq is None or old == level:
        return
    handler, trigger, pin = irq
    if (level and trigger & 2) or (not level and trigger & 1):  # IRQ_RISING=2, IRQ_FALLING=1
        handler(pin)


def press_button(pin_id):
    """A press and release of an active-low button (pull-up, to ground)."""
    set_pin(pin_id, 0)
    set_pin(pin_id, 1)


def record_pwm(pin_id, freq, duty_u16):
    timeline = pwm_timeline.get(pin_id)
    if timeline is None:
        timeline = pwm_timeline[pin_id] = []
    entry = (ticks_ms(), freq, duty_u16)
    if not timeline or timeline[-1][1:] != entry[1:]:
        timeline.append(entry)


# ---------------------------------------------------------------- watchdog
def poll_watchdog():
    """Check the watchdog against the board clock.  Called on every bus
    transaction and pin access, the moments real firmware would be running."""
    if watchdog is not None and time.ticks_diff(ticks_ms(), watchdog[1]) > watchdog[0]:
        fire_reset(3, "watchdog not fed for %d ms" % time.ticks_diff(ticks_ms(), watchdog[1]))


def fire_reset(cause_code, why):
    global watchdog, reset_cause
    watchdog = None  # a reset disarms the watchdog until firmware creates it again
    reset_cause = cause_code
    resets.append(why)
    if cause_code == 3:
        raise WatchdogReset(why)
    raise BoardReset(why)
