"""Password guessing, slowed down without letting an attacker lock a user out.

Three counters, all in the database every worker shares
(``api.services.throttle``):

- per address, every attempt, generously (a shop or an airport office shares
  one address): a fixed window;
- per user and address, failures: the first few are free, then each doubles
  the wait before the next try from that address (up to 15 minutes), and an
  hour of quiet forgets them. An attacker slows down only themselves;
- per user, attempts from addresses where that user has not logged in during
  the last 30 days: a modest fixed window (30 per 15 minutes), which caps
  guessing spread over many addresses. The user's own usual addresses are
  never held back by it, and at any other address it lasts a window at most
  after the attack stops.

The API's token endpoint and the portal's login page share these counters,
so guessing through both gets no more tries. The traveller status lookups
use the same scheme with the form number in place of the user.
"""
from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from . import throttle


# How long a successful login (lookup) makes its address familiar, and how
# the counters that say so are named (api/services/retention.py keeps them
# that long).
FAMILIAR_FOR = timedelta(days=30)
FAMILIAR_MARK = "-ok:"


@dataclass(frozen=True)
class Guard:
    """One kind of secret-checking attempt (``login``, ``status``) and its limits."""

    name: str
    per_address: int  # attempts per address per minute
    per_subject: int  # attempts per subject per window, from unfamiliar addresses
    subject_window: int  # seconds
    backoff: throttle.Backoff = throttle.Backoff()
    familiar_for: timedelta = FAMILIAR_FOR
    # Keys the marks of familiar addresses, which are kept for weeks: they
    # name a user (or a form) and an address only as a keyed hash.
    secret: bytes = b""

    def _keys(self, subject: str, address: str) -> tuple[str, str, str, str]:
        pair = hmac.new(self.secret, f"{subject}\n{address}".encode(), hashlib.sha256).hexdigest()[:32]
        return (f"{self.name}-ip:{address}", f"{self.name}-user:{subject}",
                f"{self.name}-fail:{subject}:{address}", f"{self.name}{FAMILIAR_MARK}{pair}")

    def before(self, session: Session, subject: str, address: str, now: datetime) -> None:
        """Count an attempt on ``subject`` from ``address``, or raise a 429
        problem (with Retry-After) if it must wait. Commits the counters."""
        per_ip, per_subject, failures, familiar = self._keys(subject, address)
        throttle.hit(session, per_ip, self.per_address, 60, now)
        if not throttle.marked_since(session, familiar, now - self.familiar_for):
            throttle.hit(session, per_subject, self.per_subject, self.subject_window, now)
        throttle.charge(session, failures, self.backoff, now)

    def succeeded(self, session: Session, subject: str, address: str, now: datetime) -> None:
        """The attempt succeeded: its failures are forgotten and the address
        becomes familiar. Commits."""
        _, _, failures, familiar = self._keys(subject, address)
        throttle.forget(session, failures)
        throttle.mark(session, familiar, now)
        session.commit()


def _backoff(config) -> throttle.Backoff:
    return throttle.Backoff(free=config["FAILED_ATTEMPTS_FREE"],
                            base=config["FAILED_ATTEMPTS_FIRST_WAIT_SECONDS"],
                            cap=config["FAILED_ATTEMPTS_MAX_WAIT_SECONDS"])


def login_guard(config) -> Guard:
    return Guard("login", config["LOGIN_ATTEMPTS_PER_ADDRESS_PER_MINUTE"],
                 config["LOGIN_ATTEMPTS_PER_USER"], config["LOGIN_USER_WINDOW_SECONDS"], _backoff(config),
                 secret=config["SECRET_KEY"].encode())


def status_guard(config) -> Guard:
    return Guard("status", config["STATUS_LOOKUPS_PER_ADDRESS_PER_MINUTE"],
                 config["STATUS_LOOKUPS_PER_FORM_PER_HOUR"], 3600, _backoff(config),
                 secret=config["SECRET_KEY"].encode())
