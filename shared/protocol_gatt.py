"""GATT UUIDs of the helmet's services and characteristics (the radio and
the app; the helmet without the radio does not load this module).

Standard services make the helmet readable by generic BLE health apps; the
screening service carries the helmet's own records (protocol.py).
"""

# --- standard services --------------------------------------------------------------
HEALTH_THERMOMETER_SERVICE = 0x1809
TEMPERATURE_MEASUREMENT = 0x2A1C  # indicate
TEMPERATURE_TYPE = 0x2A1D  # read
INTERMEDIATE_TEMPERATURE = 0x2A1E  # notify
DEVICE_INFORMATION_SERVICE = 0x180A
MANUFACTURER_NAME = 0x2A29
MODEL_NUMBER = 0x2A24
SERIAL_NUMBER = 0x2A25
FIRMWARE_REVISION = 0x2A26
BATTERY_SERVICE = 0x180F
BATTERY_LEVEL = 0x2A19

_UUID_SUFFIX = "-41a6-4357-aae4-276bb3e09524"
SCREENING_SERVICE = "1a980001" + _UUID_SUFFIX
EVENTS_CHAR = "1a980002" + _UUID_SUFFIX  # notify
LIVE_FRAMES_CHAR = "1a980003" + _UUID_SUFFIX  # notify
CONTROL_POINT_CHAR = "1a980004" + _UUID_SUFFIX  # write + notify responses
CONFIGURATION_CHAR = "1a980005" + _UUID_SUFFIX  # read
