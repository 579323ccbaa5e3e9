"""The kiosk app for exit points: travellers validate the export of their
tax-free purchases by scanning form QR codes, passports and boarding passes,
in their own language, online or offline.

``taxfree-kiosk`` (``kiosk_app.main:main``) starts it. Kivy is imported by
``kiosk_app.app`` only, so the logic (``desk``, ``wording``, ``wedge``,
``config``) can be used and tested without a window.
"""
