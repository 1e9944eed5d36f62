"""Runs one test function inside MicroPython for the pytest harness.

Usage: micropython mp_runner.py MODULE TEST_NAME
Exit status 0 = passed; otherwise the MicroPython traceback is on stderr.
"""

import sys


def main():
    module_name, test_name = sys.argv[1], sys.argv[2]
    module = __import__(module_name)
    test = getattr(module, test_name)
    try:
        test()
    except Exception as exc:  # noqa: BLE001 - report every failure with its traceback
        sys.print_exception(exc, sys.stderr)
        sys.exit(1)
    print("MICROPYTHON-TEST-PASSED", module_name, test_name)


main()
