"""The web pages: a retailer portal, a public traveller status page and a
customs supervisor dashboard, served by the API's Flask app.

Plain server-rendered HTML (Jinja2) with a little JavaScript from static
files. The pages share the API's services (``api.services``), so a form
issued in the portal obeys exactly the rules of one issued through the API.

- ``/portal``    retailer users: new form, print view, forms list, detail
- ``/status``    travellers: form id + last name -> status and next step
- ``/dashboard`` admins and officers: scans and desk queue per exit point

Browser sessions are server-side (``sessions``), every form carries a CSRF
token (Flask-WTF's ``CSRFProtect``, called by these blueprints only), and
every page is sent with a strict Content-Security-Policy (``web``).
"""
from __future__ import annotations

from flask import Flask
from flask_wtf.csrf import CSRFProtect

from . import i18n, web
from .sessions import DatabaseSessionInterface

csrf = CSRFProtect()

#: The blueprints that serve HTML pages rather than API operations; they are
#: not in the OpenAPI description.
PAGE_BLUEPRINTS = ("portal", "portal_status", "portal_dashboard")


def init_app(app: Flask) -> None:
    # The API never touches flask.session, so sessions exist for the pages
    # only; the interface loads nothing unless a view uses the session.
    app.session_interface = DatabaseSessionInterface()
    csrf.init_app(app)
    app.extensions["portal_csrf"] = csrf
    i18n.init_app(app)
    web.init_app(app)

    from . import dashboard, retailer, traveller

    # Each blueprint got the shared hooks (web.protect) when it was defined.
    for blueprint in (retailer.blp, traveller.blp, dashboard.blp):
        app.register_blueprint(blueprint)
