"""``machine`` for the simulated ESP32 board (MicroPython unix port only).

Same names, signatures and error behaviour as the ESP32 port's ``machine``
for the parts the helmet uses: Pin, PWM, I2C/SoftI2C, ADC, WDT, reset.
Every call lands on the board state in ``simboard``, where tests attach
device models and read back what the firmware did.
"""

import simboard

PWRON_RESET = 1
HARD_RESET = 2
WDT_RESET = 3
DEEPSLEEP_RESET = 4
SOFT_RESET = 5

_UNIQUE_ID = b"\x24\x0a\xc4\x5e\x1a\x98"  # a plausible ESP32 base MAC


def unique_id():
    return _UNIQUE_ID


def freq(hz=None):
    return 240000000


def reset_cause():
    return simboard.reset_cause


def reset():
    simboard.fire_reset(HARD_RESET, "machine.reset()")


def soft_reset():
    simboard.fire_reset(SOFT_RESET, "machine.soft_reset()")


def idle():
    simboard.poll_watchdog()


class Pin:
    IN = 1
    OUT = 3
    OPEN_DRAIN = 7
    PULL_UP = 1
    PULL_DOWN = 2
    IRQ_FALLING = 1
    IRQ_RISING = 2

    def __init__(self, id, mode=-1, pull=-1, value=None):
        if not isinstance(id, int) or not 0 <= id <= 39:
            raise ValueError("invalid pin")
        self.id = id
        self.init(mode, pull, value)

    def init(self, mode=-1, pull=-1, value=None):
        if mode != -1:
            self.mode = mode
        if pull == Pin.PULL_UP and self.id not in simboard.pin_levels:
            simboard.pin_levels[self.id] = 1
        elif pull == Pin.PULL_DOWN and self.id not in simboard.pin_levels:
            simboard.pin_levels[self.id] = 0
        if value is not None:
            self.value(value)

    def value(self, v=None):
        simboard.poll_watchdog()
        if v is None:
            return simboard.pin_levels.get(self.id, 0)
        simboard.pin_levels[self.id] = 1 if v else 0
        return None

    def __call__(self, v=None):
        return self.value(v)

    def on(self):
        self.value(1)

    def off(self):
        self.value(0)

    def irq(self, handler=None, trigger=IRQ_FALLING | IRQ_RISING):
        if handler is None:
            simboard.pin_irqs.pop(self.id, None)
        else:
            simboard.pin_irqs[self.id] = (handler, trigger, self)

    def __repr__(self):
        return "Pin(%d)" % self.id


def _pin_id(pin):
    return pin.id if isinstance(pin, Pin) else pin


class PWM:
    """LEDC PWM.  Every change of frequency or duty is written to the pin's
    timeline in ``simboard.pwm_timeline`` with the board time."""

    def __init__(self, dest, freq=None, duty_u16=None, duty=None):
        self.pin = _pin_id(dest)
        self._freq = 5000
        self._duty = 0
        self.init(freq=freq, duty_u16=duty_u16, duty=duty)

    def init(self, freq=None, duty_u16=None, duty=None):
        if freq is not None:
            self.freq(freq)
        if duty_u16 is not None:
            self.duty_u16(duty_u16)
        elif duty is not None:
            self.duty(duty)
        else:
            simboard.record_pwm(self.pin, self._freq, self._duty)

    def freq(self, value=None):
        if value is None:
            return self._freq
        if not 1 <= value <= 40000000:
            raise ValueError("frequency must be from 1Hz to 40MHz")
        self._freq = int(value)
        simboard.record_pwm(self.pin, self._freq, self._duty)
        return None

    def duty_u16(self, value=None):
        if value is None:
            return self._duty
        if not 0 <= value <= 65535:
            raise ValueError("duty_u16 must be from 0 to 65535")
        self._duty = int(value)
        simboard.record_pwm(self.pin, self._freq, self._duty)
        return None

    def duty(self, value=None):
        """The ESP32's older 10-bit duty API."""
        if value is None:
            return self._duty >> 6
        self.duty_u16(min(1023, max(0, value)) * 65535 // 1023)
        return None

    def deinit(self):
        self._duty = 0
        simboard.record_pwm(self.pin, self._freq, 0)


class I2C:
    """Hardware I2C controller routing transactions to device models."""

    def __init__(self, id=0, scl=None, sda=None, freq=400000, timeout=50000):
        if id not in (0, 1):
            raise ValueError("I2C(%s) doesn't exist" % id)
        self.bus = id
        self.freq = freq
        self.timeout = timeout

    def scan(self):
        found = []
        for addr in range(0x08, 0x78):
            try:
                simboard.i2c_transaction(self.bus, addr, 0, self.freq)
                found.append(addr)
            except OSError:
                pass
        return found

    def readfrom_mem_into(self, addr, memaddr, buf, addrsize=8):
        simboard.i2c_transaction(self.bus, addr, len(buf) + addrsize // 8, self.freq).read_mem(memaddr, buf, addrsize)

    def readfrom_mem(self, addr, memaddr, nbytes, addrsize=8):
        buf = bytearray(nbytes)
        self.readfrom_mem_into(addr, memaddr, buf, addrsize)
        return bytes(buf)

    def writeto_mem(self, addr, memaddr, buf, addrsize=8):
        simboard.i2c_transaction(self.bus, addr, len(buf) + addrsize // 8, self.freq).write_mem(memaddr, buf, addrsize)

    def readfrom_into(self, addr, buf, stop=True):
        simboard.i2c_transaction(self.bus, addr, len(buf), self.freq).read(buf)

    def readfrom(self, addr, nbytes, stop=True):
        buf = bytearray(nbytes)
        self.readfrom_into(addr, buf, stop)
        return bytes(buf)

    def writeto(self, addr, buf, stop=True):
        simboard.i2c_transaction(self.bus, addr, len(buf), self.freq).write(buf)
        return len(buf)


SoftI2C = I2C


class ADC:
    ATTN_0DB = 0
    ATTN_11DB = 3

    def __init__(self, pin, atten=ATTN_11DB):
        self.pin = _pin_id(pin)

    def atten(self, value):
        pass

    def read_u16(self):
        return simboard.adc_values.get(self.pin, 0)

    def read_uv(self):
        # 11 dB attenuation spans about 0..3.1 V on the ESP32.
        return simboard.adc_values.get(self.pin, 0) * 3100000 // 65535


class WDT:
    def __init__(self, id=0, timeout=5000):
        if timeout < 1:
            raise ValueError("WDT timeout too short")
        simboard.watchdog = [timeout, simboard.ticks_ms(), 0]

    def feed(self):
        simboard.poll_watchdog()
        if simboard.watchdog is not None:
            simboard.watchdog[1] = simboard.ticks_ms()
            simboard.watchdog[2] += 1
