"""Kivy pieces the apps share (the kiosk, the officer's handheld and the
traveller's phone): fonts and right-to-left text for every language, a
label that speaks the current language, the camera preview, and background
work off the UI thread. Unlike ``shared/``, this package imports Kivy."""
