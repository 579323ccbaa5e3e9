"""The API as a customs officer's handheld sees it.

Sign-in with a username and password (a JWT access token, refreshed before
it expires), going on duty at an exit point's desk, the desk's queue of
checks, the officer's history, forms by id or by passport, their audit
trail, and decisions with an Idempotency-Key.

Errors follow :mod:`shared.client`: the API out of reach (no route, refused,
timeout, 5xx, 429) is :class:`~shared.client.Offline`; an answer that will
not change on a retry is :class:`~shared.client.ApiError` with the problem's
``code``. A 401 on a signed-in call is :class:`NotSignedIn`: the token ran
out or was refused, and the officer must log in again.

Nothing here imports Kivy; the app calls these methods on worker threads.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Callable
from urllib.parse import quote

import jwt
import requests

from .client import DEFAULT_TIMEOUT, ApiError, Offline, iso_utc

# Refresh a token once this share of its lifetime is used up (and at the
# latest a minute before it ends), so a slow network never lets it expire.
REFRESH_AT_SHARE = 0.8
REFRESH_AT_LATEST = 60.0
# A queue longer than this many pages is not a queue the desk can work on;
# stop paging rather than hold the handheld's memory hostage.
MAX_PAGES = 10


class NotSignedIn(ApiError):
    """401 on a signed-in call: the access token expired or was refused."""


@dataclass(frozen=True)
class Officer:
    """Who is signed in, as the access token says."""

    username: str
    user_id: int | None  # from the token's ``sub`` ("user:7")
    role: str

    @property
    def actor(self) -> str:
        """How the audit trail names this officer (``user:7``)."""
        return f"user:{self.user_id}"


@dataclass(frozen=True)
class DecisionAnswer:
    form: dict  # the form as the API returns it after the decision
    replayed: bool  # the API had already answered this Idempotency-Key


class OfficerClient:
    """Calls the API as one officer. Thread-safe: the app's queue refresher,
    decision sender and screens call it from several worker threads."""

    def __init__(self, base_url: str, *, timeout: tuple[float, float] = DEFAULT_TIMEOUT,
                 session: requests.Session | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._http = session or requests.Session()
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._issued_at = 0.0
        self._expires_at = 0.0
        self.officer: Officer | None = None

    # --- signing in ------------------------------------------------------------

    @property
    def signed_in(self) -> bool:
        with self._lock:
            return self._token is not None and self._clock() < self._expires_at

    def login(self, username: str, password: str) -> Officer:
        """Exchange the officer's password for an access token.

        Wrong credentials are ApiError ``invalid_credentials`` (401); too many
        attempts are ApiError ``too_many_attempts`` (429), not Offline: the
        officer must wait, not retry at once.
        """
        response = self._request("POST", "/api/v1/auth/token", auth=False, login=True,
                                 json={"username": username, "password": password})
        officer = self._take_token(response.json(), username)
        return officer

    def refresh(self) -> Officer:
        """A fresh token for the signed-in officer (the current one must still be valid)."""
        username = self.officer.username if self.officer else ""
        response = self._request("POST", "/api/v1/auth/refresh")
        return self._take_token(response.json(), username)

    def refresh_due(self) -> bool:
        """True when the token should be refreshed now (see REFRESH_AT_SHARE)."""
        with self._lock:
            if self._token is None:
                return False
            lifetime = self._expires_at - self._issued_at
            due = min(self._issued_at + lifetime * REFRESH_AT_SHARE,
                      self._expires_at - REFRESH_AT_LATEST)
            return self._clock() >= due

    def seconds_left(self) -> float:
        with self._lock:
            return max(0.0, self._expires_at - self._clock()) if self._token else 0.0

    def logout(self) -> None:
        """Forget the token (access tokens are short-lived JWTs; there is
        nothing to revoke on the server)."""
        with self._lock:
            self._token = None
            self._expires_at = 0.0
            self.officer = None

    def _take_token(self, body: dict, username: str) -> Officer:
        token = body["access_token"]
        # Read, not verified: the API verifies its own tokens; the app only
        # needs to know whose token it holds.
        claims = jwt.decode(token, options={"verify_signature": False})
        sub = str(claims.get("sub", ""))
        user_id = int(sub.split(":", 1)[1]) if sub.startswith("user:") and sub[5:].isdigit() else None
        officer = Officer(username=username, user_id=user_id, role=str(claims.get("role", "")))
        now = self._clock()
        with self._lock:
            self._token = token
            self._issued_at = now
            self._expires_at = now + float(body.get("expires_in") or 0)
            self.officer = officer
        return officer

    def detached(self) -> "OfficerClient":
        """A client holding the current token that this one's logout does not
        clear: for a last call (signing off the desk) sent in the background
        after the officer has been logged out on the handheld."""
        copy = OfficerClient(self.base_url, timeout=self.timeout, session=self._http, clock=self._clock)
        with self._lock:
            copy._token, copy._issued_at, copy._expires_at = self._token, self._issued_at, self._expires_at
            copy.officer = self.officer
        return copy

    # --- the desk ----------------------------------------------------------------

    def exit_points(self) -> list[dict]:
        return self._request("GET", "/api/v1/exit-points").json()

    def sign_on(self, exit_point: str) -> dict:
        """Go on duty at ``exit_point``'s desk: the API takes decisions only on
        the checks of the exit point the officer is on duty at."""
        return self._request("POST", "/api/v1/duty", json={"exit_point": exit_point}).json()

    def sign_off(self) -> None:
        """End the officer's duty at the desk."""
        self._request("DELETE", "/api/v1/duty")

    def checks(self, *, exit_point: str | None = None, status: str = "pending",
               mine: bool = False, decided_since: datetime | None = None,
               limit: int = 100) -> list[dict]:
        """Checks, oldest first, every page: the desk's queue (``pending`` at
        ``exit_point``) or the officer's history (``decided``, ``mine``)."""
        params: dict = {"status": status, "limit": limit}
        if exit_point:
            params["exit_point"] = exit_point
        if mine:
            params["officer"] = "me"
        if decided_since is not None:
            params["decided_since"] = iso_utc(decided_since)
        items: list[dict] = []
        for _ in range(MAX_PAGES):
            page = self._request("GET", "/api/v1/checks", params=params).json()
            items.extend(page["items"])
            if not page.get("next_cursor"):
                break
            params["cursor"] = page["next_cursor"]
        return items

    def form(self, form_id: str) -> dict:
        """A form in full (traveller's passport number, birth date, lines)."""
        return self._request("GET", f"/api/v1/forms/{quote(form_id, safe='')}").json()

    def lookup(self, passport_number: str, passport_country: str) -> list[dict]:
        """Every form of a passport, newest first (POST: the number stays out of URLs)."""
        body = {"passport_number": passport_number, "passport_country": passport_country}
        return self._request("POST", "/api/v1/forms/lookup", json=body).json()["items"]

    def events(self, form_id: str) -> list[dict]:
        """The form's audit trail, oldest first."""
        return self._request("GET", f"/api/v1/forms/{quote(form_id, safe='')}/events").json()["items"]

    def decide(self, form_id: str, body: dict, idempotency_key: str) -> DecisionAnswer:
        """Send a decision. The same key and body sent again (a retry, the
        offline queue) gets the first answer; a form another officer decided
        first is ApiError ``already_decided`` (409)."""
        response = self._request("POST", f"/api/v1/forms/{quote(form_id, safe='')}/decision",
                                 json=body, headers={"Idempotency-Key": idempotency_key})
        return DecisionAnswer(response.json(), response.headers.get("Idempotent-Replayed") == "true")

    def desk_traveller(self, desk_pass: str) -> list[dict]:
        """The forms of the traveller whose desk pass (the QR code of the
        traveller's app) was scanned, each with its ``check`` (or None)."""
        return self._request("POST", "/api/v1/desk/travellers", json={"desk_pass": desk_pass}).json()["items"]

    def open_check(self, form_id: str, idempotency_key: str) -> dict:
        """Open a check for a traveller who came straight to the desk, at the
        exit point the officer is on duty at (ApiError ``not_on_duty`` when
        they are on duty nowhere: sign on first)."""
        return self._request("POST", "/api/v1/checks", json={"form_id": form_id},
                             headers={"Idempotency-Key": idempotency_key}).json()

    def jwks(self) -> dict:
        """The keys that verify form QR codes."""
        return self._request("GET", "/.well-known/jwks.json", auth=False).json()

    def qr_png(self, form_id: str) -> bytes:
        """The form's QR code as a PNG image."""
        return self._request("GET", f"/api/v1/forms/{quote(form_id, safe='')}/qr.png").content

    # --- plumbing ------------------------------------------------------------------

    def _request(self, method: str, path: str, *, auth: bool = True, login: bool = False,
                 **kwargs) -> requests.Response:
        headers = kwargs.pop("headers", {})
        if auth:
            with self._lock:
                token = self._token
            if token is None:
                raise NotSignedIn(401, "not_signed_in", "Log in first.")
            headers["Authorization"] = f"Bearer {token}"
        try:
            response = self._http.request(method, self.base_url + path, headers=headers,
                                          timeout=self.timeout, **kwargs)
        except requests.RequestException as exc:  # refused, reset, DNS, timeout
            raise Offline(f"{method} {path}: {type(exc).__name__}") from exc
        status = response.status_code
        if status >= 500 or (status == 429 and not login):
            raise Offline(f"{method} {path}: HTTP {status}")
        if status >= 400:
            try:
                problem = response.json()
            except ValueError:
                problem = {}
            if not isinstance(problem, dict):
                problem = {}
            code = problem.get("code") or ("too_many_attempts" if status == 429 else "error")
            error = NotSignedIn if status == 401 and auth else ApiError
            raise error(status, code, problem.get("detail", response.reason or ""), problem.get("errors"))
        return response


DESK_PASS_TYPE = "desk-pass+jwt"


def looks_like_desk_pass(text: str) -> bool:
    """True for the desk pass a traveller's app shows (a JWT whose header
    says ``desk-pass+jwt``); the API checks its signature."""
    try:
        return jwt.get_unverified_header((text or "").strip()).get("typ") == DESK_PASS_TYPE
    except jwt.InvalidTokenError:
        return False
