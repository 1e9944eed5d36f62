"""Kivy screens of the companion app (the only package, with main.py, that imports Kivy)."""
