"""Firmware version, reported at boot, over BLE (Device Information) and by the bench tools."""

FIRMWARE_VERSION = "0.1.0"
MODEL = "FSH-1 fever-screening helmet"
MANUFACTURER = "Open fever-screening helmet project"
