"""Pin map of the reference build (ESP32 WROOM-32) and constructors for its parts.

Everything else in the firmware receives these objects instead of creating
them, so logic stays testable and a different board changes only this file.

    part                 GPIO        notes
    MLX90640 SDA/SCL     21 / 22     I2C0 at 400 kHz (enough up to 16 Hz subpages), address 0x33
    VL53L1X (optional)   21 / 22     same bus, address 0x29
    piezo buzzer         25          LEDC PWM
    status LED           2           active high (on-board LED of most dev kits)
    button               27          to ground, internal pull-up (GPIO0 is a boot strap: avoid it)
    battery sense        35          ADC1, 1:2 divider from the cell
"""

from machine import ADC, I2C, PWM, Pin
from micropython import const

_I2C_BUS = const(0)
_I2C_SDA = const(21)
_I2C_SCL = const(22)
_I2C_FREQ = const(400000)
BUZZER_PIN = 25
LED_PIN = 2
BUTTON_PIN = 27
BATTERY_PIN = 35

MLX90640_ADDRESS = 0x33
VL53L1X_ADDRESS = 0x29


def make_i2c():
    return I2C(_I2C_BUS, scl=Pin(_I2C_SCL), sda=Pin(_I2C_SDA), freq=_I2C_FREQ)


def make_buzzer_pwm():
    # Start silent: a PWM created with a non-zero duty would click at boot.
    return PWM(Pin(BUZZER_PIN), freq=2700, duty_u16=0)


def make_led():
    return Pin(LED_PIN, Pin.OUT, value=0)


def make_button():
    return Pin(BUTTON_PIN, Pin.IN, Pin.PULL_UP)


def make_battery_adc():
    return ADC(Pin(BATTERY_PIN), atten=ADC.ATTN_11DB)
