"""The webhook delivery worker: sends the outbox rows, records every
attempt, retries on a schedule.

Claim, send, record: a worker claims a few due rows in one short
transaction (``SELECT ... FOR UPDATE SKIP LOCKED`` on PostgreSQL, so workers
on several machines never claim the same row), marks them leased for a
while and commits; only then does it make the HTTP requests, holding no
transaction open; then it records each attempt in another short
transaction. A worker killed mid-delivery leaves a lease that runs out, and
the row is sent again: delivery is at least once, under the same
``webhook-id``, so receivers can deduplicate. A worker never starts a
request it could not finish before its lease ends. A worker asked to stop
(SIGTERM, Ctrl+C) finishes and records the request it is making, gives the
rest of its leases back and exits.

Failed attempts (no answer within the timeout, a connection error, any
non-2xx answer, a redirect, which is never followed) are retried with
exponential backoff and jitter for three days; then the delivery is marked
failed. ``POST /webhooks/{id}/deliveries/{id}/retry`` starts it over.
"""
from __future__ import annotations

import logging
import random
import secrets
import signal
import socket
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable

import requests
from requests.adapters import HTTPAdapter
from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session, sessionmaker
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import NameResolutionError, NewConnectionError

from .. import custody
from ..models import Webhook, WebhookAttempt, WebhookDelivery, utcnow
from ..observability import logs, metrics
from . import webhooks

log = logging.getLogger(__name__)

# The retry schedule: 5 s after the first failure, four times longer after
# each next one (20 s, 80 s, 5 min, 21 min, 85 min, 5.7 h), at most 12 h
# apart, each wait stretched or shrunk by up to 20 % so that receivers that
# come back are not hit by every retry at once. The last attempt is made
# when the retry window (3 days) closes.
FIRST_RETRY_SECONDS = 5.0
BACKOFF_FACTOR = 4
LONGEST_WAIT_SECONDS = 12 * 3600.0
JITTER = 0.2
RETRY_WINDOW = timedelta(days=3)


def backoff(failures: int, rand: float) -> timedelta:
    """How long to wait after the ``failures``-th failure in a row;
    ``rand`` in [0, 1) picks the jitter (0.5: none)."""
    wait = min(FIRST_RETRY_SECONDS * BACKOFF_FACTOR ** min(failures - 1, 30), LONGEST_WAIT_SECONDS)
    return timedelta(seconds=wait * (1 - JITTER + 2 * JITTER * rand))


def next_attempt(failures: int, window_start: datetime, now: datetime, window: timedelta,
                 rand: float) -> datetime | None:
    """When to try again after a failure, or None once the window has closed."""
    closes = window_start + window
    if now >= closes:
        return None
    return min(now + backoff(failures, rand), closes)


@dataclass(frozen=True)
class Settings:
    """How the worker sends; ``from_config`` reads the app's settings."""

    timeout_seconds: float = 5.0
    lease_seconds: float = 120.0
    batch_size: int = 10
    retry_window: timedelta = RETRY_WINDOW
    allow_private: bool = False

    @classmethod
    def from_config(cls, config) -> Settings:
        return cls(
            timeout_seconds=float(config["WEBHOOKS_TIMEOUT_SECONDS"]),
            lease_seconds=float(config["WEBHOOKS_LEASE_SECONDS"]),
            batch_size=int(config["WEBHOOKS_BATCH_SIZE"]),
            retry_window=timedelta(hours=float(config["WEBHOOKS_RETRY_HOURS"])),
            allow_private=bool(config["WEBHOOKS_ALLOW_PRIVATE"]),
        )

    @property
    def longest_send(self) -> timedelta:
        """An upper bound of one attempt: connecting, then waiting for the answer."""
        return timedelta(seconds=2 * self.timeout_seconds + 1)

    def __post_init__(self):
        if self.lease_seconds <= 2 * self.longest_send.total_seconds():
            raise ValueError("the lease must be well over two attempts long")


# --- refusing private addresses at connect time --------------------------------

class PrivateAddressRefused(NewConnectionError):
    """The host name led to an address that is not public."""


class _PublicOnly:
    # The host name is resolved here, at every connection, and every
    # address it gives is checked before any is connected to; then the
    # connection goes to an address just checked, not to whatever a second
    # lookup would answer. So a DNS answer that changed since the URL was
    # registered (DNS rebinding) cannot reach an internal host: not even a
    # TCP handshake, whose success or failure would tell the webhook's
    # owner which internal ports are open.
    def _new_conn(self):
        name = self._dns_host
        try:
            addresses = list(dict.fromkeys(
                info[4][0] for info in socket.getaddrinfo(name.strip("[]"), self.port, type=socket.SOCK_STREAM)))
        except socket.gaierror as e:
            raise NameResolutionError(self.host, self, e) from e
        refused = [a for a in addresses if not webhooks.is_public_address(a)]
        if refused or not addresses:
            raise PrivateAddressRefused(
                self, f"{self.host} resolves to {(refused or ['nothing'])[0]}, which is not a public address"
            )
        error: Exception | None = None
        try:
            for address in addresses:
                self._dns_host = address
                try:
                    return super()._new_conn()
                except NewConnectionError as failed:
                    error = failed
            raise error
        finally:
            self._dns_host = name


class _PublicHTTPConnection(_PublicOnly, HTTPConnection):
    pass


class _PublicHTTPSConnection(_PublicOnly, HTTPSConnection):
    pass


class _PublicHTTPPool(HTTPConnectionPool):
    ConnectionCls = _PublicHTTPConnection


class _PublicHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _PublicHTTPSConnection


class PublicOnlyAdapter(HTTPAdapter):
    """A requests adapter that connects to public addresses only."""

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _PublicHTTPPool, "https": _PublicHTTPSPool}


def http_session(allow_private: bool) -> requests.Session:
    """The HTTP client of one worker run; close it when done."""
    http = requests.Session()
    # No proxies or .netrc from the environment: deliveries go straight to
    # the receiver, and the address check sees the receiver's address.
    http.trust_env = False
    if not allow_private:
        http.mount("http://", PublicOnlyAdapter())
        http.mount("https://", PublicOnlyAdapter())
    return http


# --- claim, send, record ---------------------------------------------------------------

@dataclass(frozen=True)
class Claimed:
    """A delivery this worker holds the lease of."""

    id: int
    url: str
    secret: str = field(repr=False)  # opened for signing; never in a log line
    message_id: str
    payload: str
    failures: int
    retry_window_start: datetime
    lease_token: str
    leased_until: datetime


@dataclass(frozen=True)
class Outcome:
    attempted_at: datetime
    status_code: int | None
    error: str | None
    duration_ms: int

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


@dataclass
class Report:
    """What one run of the worker did."""

    delivered: int = 0
    retrying: int = 0
    failed: int = 0
    released: int = 0
    message_ids: list[str] = field(default_factory=list)

    @property
    def attempts(self) -> int:
        return self.delivered + self.retrying + self.failed

    def __str__(self) -> str:
        return (f"{self.attempts} delivery attempt(s): {self.delivered} delivered, "
                f"{self.retrying} to retry, {self.failed} failed for good")


def _due(now: datetime):
    return (
        WebhookDelivery.status == "pending",
        WebhookDelivery.next_attempt_at <= now,
        or_(WebhookDelivery.leased_until.is_(None), WebhookDelivery.leased_until <= now),
    )


def claim(sessions: sessionmaker, settings: Settings, now: datetime) -> list[Claimed]:
    """Lease up to ``batch_size`` due deliveries, oldest due first; an empty
    list when none is due."""
    for _race in range(10):
        claimed = _claim_once(sessions, settings, now)
        if claimed is not None:
            return claimed
    return []  # other workers keep taking them: they are being sent


def _claim_once(sessions: sessionmaker, settings: Settings, now: datetime) -> list[Claimed] | None:
    """One short claiming transaction; None if other workers leased every
    row found between reading and leasing (SQLite: read, then lease)."""
    token = secrets.token_hex(16)
    leased_until = now + timedelta(seconds=settings.lease_seconds)
    with sessions() as session, session.begin():
        query = (
            select(WebhookDelivery.id)
            .where(*_due(now))
            .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
            .limit(settings.batch_size)
        )
        if session.get_bind().dialect.name == "postgresql":
            # Rows another worker is claiming right now are skipped, not
            # waited for; the lease keeps them apart after its commit.
            query = query.with_for_update(skip_locked=True)
        ids = list(session.scalars(query))
        if not ids:
            return []
        # Compare-and-set: on SQLite, where rows are not locked, a worker
        # that read the same rows finds them leased already.
        session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id.in_(ids), *_due(now))
            .values(leased_until=leased_until, lease_token=token)
        )
        rows = session.execute(
            select(WebhookDelivery, Webhook.url, Webhook.secret)
            .join(Webhook, WebhookDelivery.webhook_id == Webhook.id)
            .where(WebhookDelivery.lease_token == token)
            .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
        ).all()
        if not rows:
            return None
        cipher = custody.cipher_of(session)
        return [
            Claimed(d.id, url, custody.unseal(cipher, secret), d.message_id, d.payload, d.failures,
                    d.retry_window_start, token, leased_until)
            for d, url, secret in rows
        ]


def release(sessions: sessionmaker, items: list[Claimed]) -> None:
    """Give leases back unused, so another run sends these at once."""
    if not items:
        return
    with sessions() as session, session.begin():
        for item in items:
            session.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id == item.id, WebhookDelivery.lease_token == item.lease_token)
                .values(leased_until=None, lease_token=None)
            )


def _reason(exc: Exception) -> str:
    """A short account of a failed request (urllib3 wraps the cause)."""
    cause = exc
    while cause is not None:
        if isinstance(cause, PrivateAddressRefused):
            return "refused: " + str(cause).split(": ", 1)[-1]
        if isinstance(cause, NewConnectionError):
            return "could not connect: " + str(cause).split(": ", 1)[-1][:200]
        reason = getattr(cause, "reason", None)
        if isinstance(reason, Exception):
            cause = reason
        elif cause.args and isinstance(cause.args[0], Exception):
            cause = cause.args[0]
        else:
            cause = None
    if isinstance(exc, requests.ConnectionError):
        return "could not connect"
    return f"request failed ({type(exc).__name__})"


def send(http: requests.Session, item: Claimed, settings: Settings, now: datetime) -> Outcome:
    """One attempt: POST the signed payload, never following a redirect,
    and only over https unless private receivers are allowed (development,
    tests)."""
    if not settings.allow_private and not item.url.lower().startswith("https://"):
        return Outcome(now, None, "refused: plain http; events are only sent over https", 0)
    headers = webhooks.signed_headers(item.secret, item.message_id, int(now.timestamp()), item.payload)
    started = time.monotonic()
    status_code = error = None
    try:
        with http.post(item.url, data=item.payload.encode(), headers=headers,
                       timeout=(settings.timeout_seconds, settings.timeout_seconds),
                       allow_redirects=False, stream=True) as response:
            status_code = response.status_code
            if response.is_redirect or 300 <= status_code < 400:
                error = f"redirect to {response.headers.get('Location', '?')[:200]} not followed"
            elif not 200 <= status_code < 300:
                error = f"the receiver answered {status_code}"
    except requests.Timeout:
        error = f"no answer within {settings.timeout_seconds:g} s"
    except requests.RequestException as exc:
        error = _reason(exc)
    duration_ms = int((time.monotonic() - started) * 1000)
    return Outcome(now, status_code, error, duration_ms)


def record(sessions: sessionmaker, item: Claimed, outcome: Outcome, settings: Settings,
           now: datetime, rand: float) -> str:
    """Store the attempt and what comes next: delivered, another try later,
    or failed once the retry window has closed. Returns the new status."""
    values: dict = {
        "attempt_count": WebhookDelivery.attempt_count + 1,
        "last_status_code": outcome.status_code,
        "last_error": outcome.error,
        "leased_until": None,
        "lease_token": None,
    }
    if outcome.delivered:
        status = "delivered"
        values.update(status=status, delivered_at=now, next_attempt_at=None)
    else:
        failures = item.failures + 1
        when = next_attempt(failures, item.retry_window_start, now, settings.retry_window, rand)
        status = "pending" if when is not None else "failed"
        values.update(status=status, failures=failures, next_attempt_at=when)
    with sessions() as session, session.begin():
        session.add(WebhookAttempt(
            delivery_id=item.id, attempted_at=outcome.attempted_at, status_code=outcome.status_code,
            error=outcome.error, duration_ms=outcome.duration_ms,
        ))
        # Only while the lease is still ours and nobody cancelled the
        # delivery (its webhook deleted) in the meantime.
        session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == item.id, WebhookDelivery.lease_token == item.lease_token,
                   WebhookDelivery.status == "pending")
            .values(**values)
        )
    return status


def deliver_due(
    sessions: sessionmaker,
    settings: Settings,
    *,
    clock: Callable[[], datetime] = utcnow,
    rand: Callable[[], float] = random.random,
    http: requests.Session | None = None,
    stop: threading.Event | None = None,
) -> Report:
    """Send every delivery that is due now, a batch at a time, until none is
    left or ``stop`` is set; returns what happened."""
    report = Report()
    own_http = http is None
    http = http or http_session(settings.allow_private)
    stop = stop or threading.Event()
    try:
        while not stop.is_set():
            batch = claim(sessions, settings, clock())
            if not batch:
                return report
            # One log line per batch: what came of each claimed delivery.
            with logs.job("deliver-webhooks", claimed=len(batch)) as line:
                for n, item in enumerate(batch):
                    # Asked to stop, or the lease would run out mid-request: the
                    # rest of the batch goes back at once instead of waiting
                    # for its lease to run out.
                    if stop.is_set() or clock() + settings.longest_send >= item.leased_until:
                        release(sessions, batch[n:])
                        report.released += len(batch) - n
                        line["released"] = len(batch) - n
                        break
                    outcome = send(http, item, settings, clock())
                    status = record(sessions, item, outcome, settings, clock(), rand())
                    report.message_ids.append(item.message_id)
                    result = "retrying" if status == "pending" else status
                    setattr(report, result, getattr(report, result) + 1)
                    line[result] = line.get(result, 0) + 1
                    metrics.count_delivery(result)
                    if outcome.error:
                        log.info("webhook delivery %s: %s", item.id, outcome.error)
        return report
    finally:
        if own_http:
            http.close()


def run_forever(sessions: sessionmaker, settings: Settings, poll_seconds: float,
                stop: threading.Event, on_report: Callable[[Report], None] = lambda r: None) -> None:
    """Deliver until ``stop`` is set, pausing ``poll_seconds`` when idle."""
    with http_session(settings.allow_private) as http:
        while not stop.is_set():
            try:
                report = deliver_due(sessions, settings, http=http, stop=stop)
            except Exception:
                # The database may be away for a moment; try again later.
                log.exception("webhook delivery run failed")
                report = Report()
            if report.attempts:
                on_report(report)
            else:
                stop.wait(poll_seconds)


@contextmanager
def stopped_by_signals(stop: threading.Event, signals=(signal.SIGTERM, signal.SIGINT)):
    """While inside, the first of ``signals`` sets ``stop`` instead of
    ending the process at once (a delivery cut off mid-request is sent
    again only once its lease runs out); a second one acts as it normally
    would, for an operator who does not want to wait. Off the main thread
    (where Python allows no signal handlers) ``stop`` is only yielded."""
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    # None: a handler not set from Python; the default is the closest match.
    previous = {signum: signal.getsignal(signum) or signal.SIG_DFL for signum in signals}

    def restore():
        for signum, handler in previous.items():
            signal.signal(signum, handler)

    def asked_to_stop(_signum, _frame):
        stop.set()
        restore()

    for signum in signals:
        signal.signal(signum, asked_to_stop)
    try:
        yield stop
    finally:
        restore()


def retry_now(session: Session, delivery: WebhookDelivery, now: datetime) -> WebhookDelivery:
    """Send a delivery again at once, with a fresh retry window; a delivery
    already sent is sent once more (a replay), under the same webhook-id."""
    session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == delivery.id)
        .values(status="pending", next_attempt_at=now, failures=0, retry_window_start=now)
    )
    session.refresh(delivery)
    return delivery


# --- retention -------------------------------------------------------------------------------

FINISHED = ("delivered", "failed", "cancelled")


def purge(session: Session, now: datetime, days: int, *, batch: int = 500) -> int:
    """Delete deliveries that are over and were last scheduled more than
    ``days`` ago, with their attempts, a batch per transaction; returns how
    many. Pending deliveries stay whatever their age, and so do the audit
    events they came from (the chain is untouched).

    A delivery's age counts from ``retry_window_start``: its event, or the
    last time its owner sent it again by hand. Every statement repeats the
    condition, so a delivery sent again while the purge runs is kept."""
    def finished_and_old():
        return (WebhookDelivery.status.in_(FINISHED),
                WebhookDelivery.retry_window_start < now - timedelta(days=days))

    postgres = session.get_bind().dialect.name == "postgresql"
    deleted = 0
    while True:
        query = select(WebhookDelivery.id).where(*finished_and_old()).order_by(WebhookDelivery.id).limit(batch)
        if postgres:
            # Rows a retry is changing right now wait for the next run.
            query = query.with_for_update(skip_locked=True)
        ids = list(session.scalars(query))
        if not ids:
            session.commit()
            return deleted
        still = select(WebhookDelivery.id).where(WebhookDelivery.id.in_(ids), *finished_and_old())
        session.execute(delete(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(still)))
        deleted += session.execute(
            delete(WebhookDelivery).where(WebhookDelivery.id.in_(ids), *finished_and_old())).rowcount
        session.commit()
