"""Host side of the simulated BLE link: a private D-Bus with an emulated BlueZ
(bluezoo) and the bridge that makes the MicroPython helmet a BLE peripheral."""
