"""Structured logs (structlog): one JSON line per request and per
background job on stderr, and every other log record (the app's warnings,
its libraries') as a JSON line too.

A request's line: ``request_id`` (the client's ``X-Request-ID`` when it is
well-formed, else a new one; echoed in the response), ``method``,
``route`` (the URL rule, ``/api/v1/forms/<form_id>``: never the path or the
query string), ``status``, ``duration_ms``, ``principal_kind``,
``principal_id`` and ``exit_point``. A job's line: ``job``, ``job_id``,
``outcome``, ``duration_ms`` and what the job reports (counts). Neither
ever holds a passport number, a name or a date of birth: those travel in
bodies and in the status page's query, which are not logged.

The request and job lines go from structlog straight to stderr, one write
each, not through the standard library's logging (a record, a handler and
a formatter per request would cost scans twice as much). An operator who
sets a level above INFO on the ``api.requests`` or ``api.jobs`` logger
quietens them (``logging.getLogger("api.requests").setLevel("WARNING")``).
"""
from __future__ import annotations

import itertools
import logging
import os
import re
import secrets
import sys
import time
import uuid
from contextlib import contextmanager

import structlog
from flask import g, has_request_context

_REQUEST_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
_QUERY = re.compile(r"\?[^\s\"']*")
_configured = False


class _StderrLines:
    """structlog's final logger: each rendered line is one write to the
    process's stderr as it is now (under gunicorn, the worker's; in tests,
    the captured one)."""

    def msg(self, message: str) -> None:
        sys.stderr.write(message + "\n")

    info = warning = error = msg


_RENDER = [structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
           structlog.processors.JSONRenderer()]
_requests, _jobs = (
    structlog.wrap_logger(_StderrLines(), processors=_RENDER,
                          wrapper_class=structlog.make_filtering_bound_logger(logging.INFO)).bind(logger=name)
    for name in ("api.requests", "api.jobs"))
_requests_level = logging.getLogger("api.requests")
_jobs_level = logging.getLogger("api.jobs")


def _request_id(_logger, _method, event: dict) -> dict:
    """Lines logged while a request runs carry its id."""
    if has_request_context() and "request_id" in g:
        event.setdefault("request_id", g.request_id)
    return event


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
    """Every standard-library log record as one JSON line on stderr.

    The handler is added only when nothing has configured logging yet (as
    ``logging.basicConfig`` would): gunicorn's own loggers, a test runner's
    capture or an operator's configuration are left alone."""
    global _configured
    if _configured:
        return
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_log_level, structlog.stdlib.add_logger_name, _request_id],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
                structlog.processors.format_exc_info,
                structlog.processors.JSONRenderer(),
            ],
        ))
        root.addHandler(handler)
        root.setLevel(logging.INFO)
    logging.getLogger("werkzeug").addFilter(_NoQueryStrings())
    _configured = True


# New request ids: a random prefix per process and a counter, unique across
# workers and hosts without a call for random bytes per request.
_prefix, _prefix_pid = secrets.token_hex(6), os.getpid()
_counter = itertools.count(1)


def request_id(given: str | None) -> str:
    """The request's id: the client's if well-formed, else a new one."""
    global _prefix, _prefix_pid, _counter
    if given and _REQUEST_ID.match(given):
        return given
    if os.getpid() != _prefix_pid:  # a forked worker gets a prefix of its own
        _prefix, _prefix_pid, _counter = secrets.token_hex(6), os.getpid(), itertools.count(1)
    return f"{_prefix}{next(_counter):010x}"


def request_line(request_id: str, method: str, route: str, status: int, seconds: float,
                 caller: tuple[str | None, str | None, str | None]) -> None:
    if _requests_level.level > logging.INFO:
        return
    kind, principal_id, exit_point = caller
    _requests.info("request", request_id=request_id, method=method, route=route, status=status,
                   duration_ms=round(seconds * 1000, 2), principal_kind=kind,
                   principal_id=principal_id, exit_point=exit_point, level="info")


@contextmanager
def job(name: str, **fields):
    """One line for one run of a background job: ``with job("expire-forms")
    as line: line["expired"] = n``. A job that raises is logged with the
    exception's type (never its message, which may quote data) and the
    exception goes on."""
    line = dict(fields)
    job_id = uuid.uuid4().hex
    started = time.perf_counter()
    try:
        yield line
    except BaseException as exc:
        if _jobs_level.level <= logging.ERROR:
            _jobs.error("job", job=name, job_id=job_id, outcome="error", error=type(exc).__name__,
                        duration_ms=round((time.perf_counter() - started) * 1000, 2), level="error", **line)
        raise
    if _jobs_level.level <= logging.INFO:
        _jobs.info("job", job=name, job_id=job_id, outcome="ok",
                   duration_ms=round((time.perf_counter() - started) * 1000, 2), level="info", **line)
