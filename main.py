"""Android entry point: buildozer/python-for-android start the app from a
top-level main.py. On the desktop use `python -m companion_app`."""

from companion_app.main import main

main()
