"""python -m companion_app: see companion_app/main.py."""

import sys

from companion_app.main import main

sys.exit(main())
