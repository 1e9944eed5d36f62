"""Preallocated buffers without a temporary of the same size.

array(typecode, bytes(n * size)) needs the bytes and the array at once, and
the freed bytes leave a hole of that size behind: on a 100 KB heap a few of
those at boot fragment it enough that a later 1 KB block no longer fits.
array(typecode, range(n)) is allocated once at its final size.
"""

from array import array


def zeros(typecode, n):
    """A zeroed array('typecode') of n items."""
    a = array(typecode, range(n))
    for i in range(n):
        a[i] = 0
    return a
