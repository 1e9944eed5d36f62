"""Boot the simulated board from its ROMFS partition, as a helmet built with
ROMFS boots: the code runs in place from memory-mapped flash.

Usage (through tests/support/romfs_launch.py, which maps the image):
    micropython -m rom_boot MODULE [ARGS...]   -> MODULE.main(ARGS)

The helmet's production image carries firmware/ and shared/ as .mpy files in
a ROMFS partition (MicroPython's VfsRom, mounted at /rom, first on sys.path).
Bytecode, strings and bytes constants are then used where they lie instead of
being copied into the heap; what the heap still holds per module is its
function and class objects, its globals and its interned names.  On the unix
port the launcher maps the image read-only outside the MicroPython heap (a
write to it faults, as a write to flash would) and names its address in
SIMBOARD_ROMFS ("address:size"); this module mounts it the way the ESP32's
firmware mounts its partition at start-up.  Without SIMBOARD_ROMFS nothing is
mounted and MODULE comes from the ordinary import path.
"""

import os
import sys

import uctypes
import vfs


def mount():
    """Mount the mapped image at /rom and put it first on the import path;
    False when no image was mapped."""
    spec = os.getenv("SIMBOARD_ROMFS")
    if not spec:
        return False
    address, size = spec.split(":")
    flash = uctypes.bytearray_at(int(address), int(size))
    vfs.mount(vfs.VfsRom(flash), "/rom")
    sys.path.insert(0, "/rom")
    return True


if __name__ == "__main__":
    mount()
    name = sys.argv[1]
    module = __import__(name)
    sys.exit(module.main(sys.argv[2:]))
