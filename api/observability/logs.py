"""Structured logs (structlog): every log record, the app's and its
libraries', becomes one JSON line on stderr, and each request and each
background job writes one line of its own.

A request's line: ``request_id`` (the client's ``X-Request-ID`` when it is
well-formed, else a new one; echoed in the response), ``method``,
``route`` (the URL rule, ``/api/v1/forms/<form_id>``: never the path or the
query string), ``status``, ``duration_ms``, ``principal_kind``,
``principal_id`` and ``exit_point``. A job's line: ``job``, ``outcome``,
``duration_ms`` and what the job reports (counts). Neither ever holds a
passport number, a name or a date of birth: those travel in bodies and in
the status page's query, which are not logged.
"""
from __future__ import annotations

import logging
import re
import sys
import time
import uuid
from contextlib import contextmanager

import structlog

_REQUEST_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
_QUERY = re.compile(r"\?[^\s\"']*")
_configured = False

requests_log = structlog.get_logger("api.requests")
jobs_log = structlog.get_logger("api.jobs")


class _NoQueryStrings(logging.Filter):
    """Werkzeug's development server logs each request line with its query
    string, and the traveller status lookup carries a last name there: the
    query is cut off before the line is written."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "?" in message:
            record.msg, record.args = _QUERY.sub("", message), ()
        return True


def configure() -> None:
    """structlog through the standard library's logging, rendered as JSON.

    A handler on stderr is added only when nothing has configured logging
    yet (as ``logging.basicConfig`` would): gunicorn's own loggers, a test
    runner's capture or an operator's configuration are left alone."""
    global _configured
    if _configured:
        return
    shared = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=shared + [structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                structlog.processors.JSONRenderer(),
            ],
        ))
        root.addHandler(handler)
        root.setLevel(logging.INFO)
    logging.getLogger("werkzeug").addFilter(_NoQueryStrings())
    _configured = True


def start_request(given: str | None) -> str:
    """The request's id (the client's if well-formed), bound to every line
    logged while the request runs; returns it."""
    request_id = given if given and _REQUEST_ID.match(given) else uuid.uuid4().hex
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id=request_id)
    return request_id


def request_line(method: str, route: str, status: int, seconds: float,
                 caller: tuple[str | None, str | None, str | None]) -> None:
    kind, principal_id, exit_point = caller
    requests_log.info("request", method=method, route=route, status=status,
                      duration_ms=round(seconds * 1000, 2), principal_kind=kind,
                      principal_id=principal_id, exit_point=exit_point)


@contextmanager
def job(name: str, **fields):
    """One line for one run of a background job: ``with job("expire-forms")
    as line: line["expired"] = n``. A job that raises is logged with the
    exception's type (never its message, which may quote data) and the
    exception goes on."""
    line = dict(fields)
    started = time.perf_counter()
    with structlog.contextvars.bound_contextvars(job_id=uuid.uuid4().hex):
        try:
            yield line
        except BaseException as exc:
            jobs_log.error("job", job=name, outcome="error", error=type(exc).__name__,
                           duration_ms=round((time.perf_counter() - started) * 1000, 2), **line)
            raise
        jobs_log.info("job", job=name, outcome="ok",
                      duration_ms=round((time.perf_counter() - started) * 1000, 2), **line)
