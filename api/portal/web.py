"""What every page blueprint shares: security headers, the CSRF check, the
language, the logged-in user, and HTML error pages.

The API answers errors with problem+json; the pages answer with a page a
person can read, in their language, with a way back.
"""
from __future__ import annotations

import functools
import logging
import traceback
from urllib.parse import unquote, urlsplit

from flask import (
    Blueprint, Flask, current_app, flash, g, make_response, redirect, render_template, request, session, url_for,
)
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException
from werkzeug.http import HTTP_STATUS_CODES

from .. import database, problems
from ..auth import Principal
from ..models import User
from ..problems import Problem
from . import i18n
from .i18n import gettext as _

log = logging.getLogger(__name__)

# No inline script or style anywhere: scripts and styles come from
# /portal/static, images are inline SVG or same-origin. No framing
# (clickjacking), no <base> tricks, forms post only to this site.
CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self'",
    "font-src 'self'",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])


PAGE_PREFIXES = ("/portal", "/status", "/dashboard")


def init_app(app: Flask) -> None:
    app.jinja_env.globals.update(_=_, current_user=current_user, url_with=url_with)
    # An address under the pages that matches no page gets a page too; every
    # other 404/405 stays the API's problem+json.
    app.register_error_handler(404, _unrouted)
    app.register_error_handler(405, _unrouted)


def _unrouted(error: HTTPException):
    if request.path.startswith(PAGE_PREFIXES) and request.blueprint is None:
        i18n.select_language()
        # No blueprint's after_request runs for an address that matched none.
        return _security_headers(make_response(_http_error_page(error)))
    return problems.handle_http_exception(error)


def url_with(**overrides) -> str:
    """This page's address with some query arguments changed (the language
    links keep the list's filters)."""
    rule = request.url_rule
    if rule is None or "GET" not in (rule.methods or ()):
        # An error page, or a page rendered by a POST-only action.
        return url_for("portal.home", **overrides)
    args = request.args.to_dict() if request.method == "GET" else {}
    args.update(overrides)
    return url_for(request.endpoint, **(request.view_args or {}), **args)


def protect(blueprint: Blueprint) -> None:
    """Give a page blueprint the shared hooks."""
    blueprint.before_request(_before_request)
    blueprint.after_request(_security_headers)
    blueprint.register_error_handler(CSRFError, _csrf_refused)
    blueprint.register_error_handler(Problem, _problem_page)
    blueprint.register_error_handler(HTTPException, _http_error_page)
    blueprint.register_error_handler(Exception, _unexpected_page)


def _before_request() -> None:
    if request.endpoint == "portal.static":
        return  # styles and scripts need no session, language or token
    i18n.select_language()
    # Flask-WTF's check, on these blueprints only (WTF_CSRF_CHECK_DEFAULT
    # is off for the API).
    current_app.extensions["portal_csrf"].protect()


def _security_headers(response):
    headers = response.headers
    headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    headers["X-Frame-Options"] = "DENY"
    headers["X-Content-Type-Options"] = "nosniff"
    headers["Referrer-Policy"] = "same-origin"
    headers["Cross-Origin-Opener-Policy"] = "same-origin"
    headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=(), payment=()"
    if request.endpoint != "portal.static":
        # Pages carry personal data or a CSRF token bound to the session:
        # never in a shared cache, never from the back-button cache.
        headers["Cache-Control"] = "no-store"
        headers["Pragma"] = "no-cache"
    if current_app.config["PORTAL_COOKIE_SECURE"] and request.is_secure:
        headers["Strict-Transport-Security"] = "max-age=31536000"
    return response


# --- the user ---------------------------------------------------------------

def current_user() -> User | None:
    if "portal_user" not in g:
        user_id = session.get("user_id")
        user = database.session().get(User, user_id) if user_id else None
        if user is not None and (user.disabled_at is not None
                                 or session.get("token_version") != user.token_version):
            # Disabled, or a new password or role since this login: the
            # session ends as the user's access tokens do.
            session.clear()
            session.expired = True
            user = None
        g.portal_user = user
    return g.portal_user


def principal() -> Principal:
    """The logged-in user as the services know callers."""
    user = current_user()
    return Principal(kind="user", id=str(user.id), role=user.role,
                     retailer_id=user.retailer_id, intermediary_id=user.intermediary_id)


def login_required(*roles: str):
    """Only logged-in users with one of ``roles``; others go to the login
    page (and come back after it) or get a 403 page."""

    def decorator(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            user = current_user()
            if user is None:
                if getattr(session, "expired", False):
                    flash(_("Your session has ended. Please log in again."), "info")
                target = request.full_path if request.method == "GET" else None
                return redirect(url_for("portal.login", next=target))
            if user.role not in roles:
                return error_page(403, _("Your account cannot open this page."))
            return view(*args, **kwargs)

        return wrapper

    return decorator


def home_for(user: User) -> str:
    """Where a user lands after logging in."""
    if user.role == "retailer":
        return url_for("portal.forms_list")
    return url_for("portal_dashboard.dashboard")


# Where a login may send the browser back to: the pages that need one.
_NEXT_PREFIXES = ("/portal/", "/dashboard")
# Printable ASCII only, without the backslash: browsers drop tabs and
# newlines from addresses and read "\\" as "/", both of which turn a local
# path into "//another.site"; a percent-encoded one stays a path.
_NEXT_CHARACTERS = frozenset(chr(c) for c in range(0x21, 0x7F)) - {"\\"}


def safe_next(target: str | None) -> str | None:
    """A path of these pages to return to after login, never another site:
    anything else (another host, a scheme, a backslash, a control
    character, an encoded one, a page outside the portal) gives None and
    the user's home page instead."""
    if not target or len(target) > 2000 or not set(target) <= _NEXT_CHARACTERS:
        return None
    decoded = unquote(target)
    if not set(decoded) <= _NEXT_CHARACTERS or decoded.startswith("//"):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith(_NEXT_PREFIXES):
        return None
    if parts.path.startswith("//") or "/." in decoded.split("?", 1)[0]:
        return None  # "/portal/../.." and friends stay out too
    return target


# --- error pages ------------------------------------------------------------

def error_page(status: int, message: str, *, headers=None):
    titles = {
        400: _("The request could not be handled"),
        403: _("Not allowed"),
        404: _("Not found"),
        405: _("Not allowed"),
        409: _("This could not be done"),
        413: _("Too much data"),
        422: _("This could not be done"),
        429: _("Too many attempts"),
        500: _("Something went wrong"),
    }
    title = titles.get(status, HTTP_STATUS_CODES.get(status, _("Something went wrong")))
    body = render_template("portal/error.html", status=status, title=title, message=message)
    return body, status, headers or {}


def _csrf_refused(error: CSRFError):
    if request.blueprint == "portal_status":
        # A traveller who left the page open too long: just ask again.
        from .traveller import page_expired

        return page_expired()
    if getattr(session, "expired", False):
        message = _("Your session has ended. Please log in again.")
    else:
        message = _("This form was not accepted because its security token is missing or "
                    "out of date. Go back, reload the page and try again.")
    return error_page(400, message)


def _problem_page(error: Problem):
    return error_page(error.status, _(error.detail), headers=error.headers)


def _http_error_page(error: HTTPException):
    messages = {
        404: _("There is no page at this address."),
        405: _("This page cannot be used like that."),
        413: _("The form sent too much data."),
    }
    status = error.code or 500
    return error_page(status, messages.get(status, _("The request could not be handled.")))


def _unexpected_page(error: Exception):
    if isinstance(error, HTTPException):
        return _http_error_page(error)
    # As the API does: the type and frames, never the message (it may hold
    # personal data from a form).
    log.error("unhandled %s on %s %s\n%s", type(error).__name__, request.method, request.path,
              "".join(traceback.format_tb(error.__traceback__)))
    database.session().rollback()
    return error_page(500, _("Something went wrong on our side. Please try again."))
