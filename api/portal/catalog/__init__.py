"""Message catalogs: ``MESSAGES`` maps the English text to the translation.

``nl`` covers every page; the other kiosk languages cover the traveller
status page (``status.html``, ``traveller_base.html``, ``traveller.py``,
``error.html``). tests/portal/test_i18n.py checks both.
"""
