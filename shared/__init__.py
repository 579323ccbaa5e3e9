"""Domain code shared by the API, the kiosk and the officer apps: the rules,
QR tokens, form ids, the risk engine, passport and boarding-pass parsing,
QR decoding, the API client and the offline queue.

It never imports Flask or Kivy, so every app and every test can use it
without a framework. The decoding pipeline (``shared.scanning``) needs the
kiosk extra (zxing-cpp, numpy); the rest needs only the base install.
"""
