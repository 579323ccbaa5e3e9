"""What operators see of the running API: one JSON log line per request
and per background job (``logs``), and Prometheus metrics (``metrics``,
scraped at ``GET /metrics``), so that a fault shows on their screens before
a traveller reports it at the desk."""
from __future__ import annotations

import time

from flask import Flask, g, request

from . import logs, metrics


def init_app(app: Flask) -> None:
    """Configure logging, instrument the database engine (call after
    ``database.init_app``) and time every request."""
    logs.configure()
    metrics.init_app(app)
    # Registered before any other hook (problems.init_app comes later), so
    # a request refused by another before_request is still timed and logged.
    app.before_request(_started)
    app.after_request(_finished)


def _started() -> None:
    g.started = time.perf_counter()
    g.request_id = logs.request_id(request.headers.get("X-Request-ID"))


def _finished(response):
    started = g.get("started")
    if started is None:  # a request that never reached before_request
        return response
    duration = time.perf_counter() - started
    # The URL rule, never the path: form ids and the status page's query
    # (a last name) must not become labels or log fields.
    rule = request.url_rule
    route = rule.rule if rule is not None else "unmatched"
    metrics.observe_request(request.method, route, response.status_code, duration)
    logs.request_line(g.request_id, request.method, route, response.status_code, duration, _caller())
    response.headers["X-Request-ID"] = g.request_id
    return response


def _caller() -> tuple[str | None, str | None, str | None]:
    """Kind, id and exit point of whoever made the request, if known: an
    API principal, or a user logged in to the web pages."""
    principal = g.get("principal")
    if principal is not None:
        return principal.kind, principal.id, principal.exit_point_code
    user = g.get("portal_user")
    if user is not None:
        return "user", str(user.id), None
    return None, None, None
