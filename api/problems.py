"""Every error as RFC 9457 problem details (``application/problem+json``).

Domain code raises :class:`Problem`; Flask's and webargs' HTTP errors and any
unexpected exception are turned into the same shape, so a client never meets
an HTML error page or a stack trace.
"""
from __future__ import annotations

import logging
import traceback

import marshmallow as ma
from flask import Flask, json, request
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException
from werkzeug.http import HTTP_STATUS_CODES

log = logging.getLogger(__name__)

MEDIA_TYPE = "application/problem+json"


class Problem(Exception):
    """An error with an HTTP status, a machine-readable ``code`` and a
    sentence for people; ``errors`` maps dotted field paths to messages."""

    def __init__(self, status: int, code: str, detail: str, *, errors=None, headers=None):
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.errors = errors
        self.headers = headers or {}


class ProblemSchema(ma.Schema):
    """RFC 9457 problem details, with ``code`` and per-field ``errors``."""

    type = ma.fields.String(metadata={"description": "URI of the problem type"})
    title = ma.fields.String()
    status = ma.fields.Integer()
    detail = ma.fields.String()
    instance = ma.fields.String()
    code = ma.fields.String(metadata={"description": "Machine-readable problem code"})
    errors = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.List(ma.fields.String()),
        metadata={"description": "Messages per field, by dotted path (items.0.vat_rate)"},
    )


def problem_response(status: int, code: str, detail: str, *, errors=None, headers=None):
    body = {
        "type": "about:blank",
        "title": HTTP_STATUS_CODES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "instance": request.path,
        "code": code,
    }
    if errors:
        body["errors"] = errors
    response = Flask.response_class(
        json.dumps(body), status=status, mimetype=MEDIA_TYPE
    )
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def flatten_errors(messages, prefix: str = "") -> dict[str, list[str]]:
    """Turn marshmallow's nested messages into ``{"a.0.b": [msg, ...]}``."""
    flat: dict[str, list[str]] = {}
    if isinstance(messages, dict):
        for key, value in messages.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            for k, v in flatten_errors(value, path).items():
                flat.setdefault(k, []).extend(v)
    elif isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        flat[prefix or "_schema"] = list(messages)
    elif isinstance(messages, list):
        for item in messages:
            for k, v in flatten_errors(item, prefix).items():
                flat.setdefault(k, []).extend(v)
    else:
        flat[prefix or "_schema"] = [str(messages)]
    return flat


_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    503: "service_unavailable",
    412: "precondition_failed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    428: "precondition_required",
    429: "too_many_requests",
}


def handle_http_exception(error: HTTPException):
    data = getattr(error, "data", None) or {}
    errors = None
    if "messages" in data:
        # webargs puts errors under the location ("json", "query"...); the
        # client only needs the field.
        messages = data["messages"]
        if isinstance(messages, dict) and len(messages) == 1:
            messages = next(iter(messages.values()))
        errors = flatten_errors(messages)
    elif "errors" in data:
        errors = flatten_errors(data["errors"])
    status = error.code or 500
    detail = data.get("message") or error.description or HTTP_STATUS_CODES.get(status, "")
    if status == 422 and errors and "message" not in data:
        detail = "The request has invalid fields: " + ", ".join(sorted(errors))
    headers = dict(data.get("headers") or {})
    if status == 405 and error.get_headers():
        headers.update({k: v for k, v in error.get_headers() if k == "Allow"})
    return problem_response(
        status, _CODES.get(status, "error"), detail, errors=errors, headers=headers
    )


def handle_problem(error: Problem):
    return problem_response(
        error.status, error.code, error.detail, errors=error.errors, headers=error.headers
    )


def handle_unexpected(error: Exception):
    if isinstance(error, HTTPException):
        return handle_http_exception(error)
    if isinstance(error, OperationalError) and str(getattr(error.orig, "sqlstate", "")).startswith("40"):
        # A deadlock or a serialization failure (SQLSTATE class 40):
        # PostgreSQL rolled the transaction back, nothing of it was kept,
        # and the same request sent again goes through.
        log.warning("transaction rolled back by the database on %s %s: %s", request.method, request.path,
                    type(error.orig).__name__)
        return problem_response(503, "try_again",
                                "Another request was changing the same data at the same moment; "
                                "send this request again.", headers={"Retry-After": "1"})
    if isinstance(error, OperationalError):
        # The database is down, restarting or locked: a moment's wait fixes
        # it, and the pool reconnects by itself (api/database.py).
        log.warning("database unavailable on %s %s: %s", request.method, request.path,
                    type(getattr(error, "orig", error)).__name__)
        return problem_response(503, "database_unavailable",
                                "The database is not reachable right now; try again shortly.",
                                headers={"Retry-After": "5"})
    # The message may hold personal data; the type and the path suffice here.
    # Database errors carry the statement's parameters (passport numbers,
    # names) in their message, so only the type and the frames are logged.
    log.error(
        "unhandled %s on %s %s\n%s",
        type(error).__name__,
        request.method,
        request.path,
        "".join(traceback.format_tb(error.__traceback__)),
    )
    return problem_response(500, "internal_error", "Something went wrong on our side.")


def _refuse_unstorable_url() -> None:
    """A NUL or a lone surrogate in the path or query (``%00``, ``%ED%A0%80``)
    is refused before any view puts it in a query."""
    from .schemas import storable_text

    values = [request.path, *request.args.keys(), *request.args.values()]
    if not all(storable_text(v) for v in values):
        raise Problem(400, "bad_request", "The URL holds a character that is not allowed.")


def init_app(app: Flask) -> None:
    app.register_error_handler(Problem, handle_problem)
    app.register_error_handler(Exception, handle_unexpected)
    app.before_request(_refuse_unstorable_url)
