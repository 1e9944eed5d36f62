"""Companion app for the fever-screening helmet (Kivy; Android first, desktop Linux for development).

It decodes what the helmet sends with the very same ``protocol`` and
``calibration`` modules the firmware runs (from ``shared/``).  The BLE link,
the store, the uploader and the UI arrive with their issues.
"""
