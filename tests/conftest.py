"""Test configuration: the MicroPython harness is a pytest plugin in support/."""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / "support"))
os.environ.setdefault("KIVY_NO_ARGS", "1")

pytest_plugins = ["mp_pytest_plugin"]
