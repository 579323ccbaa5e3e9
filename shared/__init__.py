"""Domain code shared by the API, the kiosk and the officer apps.

Pure Python (standard library and ``pycountry`` only): it must never import
Flask or Kivy, so every app and every test can use it without a framework.
"""
