"""The API as the traveller's own phone sees it (``/api/v1/traveller/...``).

A session token is asked for with the passport's number, issuing country
and date of birth (the API answers the same whether or not forms exist);
it lives in memory only and is asked for again when it runs out, so a
call made after the phone slept just works. Errors follow
:mod:`shared.client`: the API out of reach (no route, refused, timeout,
5xx) is :class:`~shared.client.Offline`; 429 is :class:`RateLimited` (also
Offline: try later) with the seconds to wait; an answer that will not
change on a retry is :class:`~shared.client.ApiError` with the problem's
``code`` (``passport_mismatch``, ``form_not_found`` ...).

Nothing here imports Kivy; the app calls these methods on worker threads.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import date, datetime
from typing import Callable

import requests

from .client import DEFAULT_TIMEOUT, ApiError, Offline

# Ask for a new token this many seconds before the old one runs out.
TOKEN_MARGIN = 30.0


class RateLimited(Offline):
    """429: too many sessions from this address or for this passport."""

    def __init__(self, message: str, retry_after: float | None):
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Credentials:
    """What opens a traveller session: the passport and its holder's birth date."""

    passport_number: str
    passport_country: str  # ISO 3166-1 alpha-2
    date_of_birth: date


@dataclass(frozen=True)
class Form:
    """A tax-free form as the traveller's app is shown it."""

    id: str
    shop: str
    purchase_date: date
    goods: tuple[str, ...]
    total_cents: int
    refund_cents: int
    currency: str
    export_deadline: date
    status: str
    payer: str | None = None
    exit_point: str | None = None
    validated_at: datetime | None = None
    refunded_at: datetime | None = None

    @classmethod
    def from_json(cls, body: dict) -> "Form":
        def moment(value):
            return datetime.fromisoformat(value) if value else None

        return cls(id=body["id"], shop=body["shop"], purchase_date=date.fromisoformat(body["purchase_date"]),
                   goods=tuple(body.get("goods") or ()), total_cents=int(body["total_cents"]),
                   refund_cents=int(body["refund_cents"]), currency=body.get("currency", "EUR"),
                   export_deadline=date.fromisoformat(body["export_deadline"]), status=body["status"],
                   payer=body.get("payer"), exit_point=body.get("exit_point"),
                   validated_at=moment(body.get("validated_at")), refunded_at=moment(body.get("refunded_at")))

    def to_json(self) -> dict:
        return {"id": self.id, "shop": self.shop, "purchase_date": self.purchase_date.isoformat(),
                "goods": list(self.goods), "total_cents": self.total_cents, "refund_cents": self.refund_cents,
                "currency": self.currency, "export_deadline": self.export_deadline.isoformat(),
                "status": self.status, "payer": self.payer, "exit_point": self.exit_point,
                "validated_at": self.validated_at.isoformat() if self.validated_at else None,
                "refunded_at": self.refunded_at.isoformat() if self.refunded_at else None}

    @property
    def open(self) -> bool:
        """Still to be validated at the exit (issued, or waiting for a check)."""
        return self.status in ("issued", "check_required")


@dataclass(frozen=True)
class Zone:
    name: str
    polygon: dict  # GeoJSON Polygon


@dataclass(frozen=True)
class Sailing:
    """A ferry leaving a seaport today; ``id`` is what a ferry trip names."""

    id: str  # "HVH-HAR-2026-12-03T22:00"
    operator: str
    route: str
    destination_port: str
    destination_country: str  # ISO 3166-1 alpha-2
    departs_at: datetime  # timezone-aware

    @classmethod
    def from_json(cls, body: dict) -> "Sailing":
        return cls(id=body["id"], operator=body.get("operator") or "", route=body.get("route") or "",
                   destination_port=body["destination_port"], destination_country=body["destination_country"],
                   departs_at=datetime.fromisoformat(body["departs_at"]))

    def to_json(self) -> dict:
        return {"id": self.id, "operator": self.operator, "route": self.route,
                "destination_port": self.destination_port, "destination_country": self.destination_country,
                "departs_at": self.departs_at.isoformat()}


@dataclass(frozen=True)
class ExitPoint:
    code: str
    name: str
    kind: str  # "airport", "seaport"
    desk_location: str
    zones: tuple[Zone, ...]
    posts: tuple[str, ...]
    sailings: tuple[Sailing, ...] = ()  # seaports: today's sailings still to leave, when the list was fetched

    @classmethod
    def from_json(cls, body: dict) -> "ExitPoint":
        return cls(code=body["code"], name=body["name"], kind=body.get("kind", "airport"),
                   desk_location=body.get("desk_location") or "",
                   zones=tuple(Zone(z.get("name", ""), z["polygon"]) for z in body.get("zones") or ()),
                   posts=tuple(body.get("posts") or ()),
                   sailings=tuple(Sailing.from_json(s) for s in body.get("sailings") or ()))

    def to_json(self) -> dict:
        return {"code": self.code, "name": self.name, "kind": self.kind, "desk_location": self.desk_location,
                "zones": [{"name": z.name, "polygon": z.polygon} for z in self.zones],
                "posts": list(self.posts), "sailings": [s.to_json() for s in self.sailings]}


@dataclass(frozen=True)
class FormVerdict:
    """The API's answer for one form of a validation."""

    form_id: str
    verdict: str  # "validated", "check_required", "refused"
    reason_code: str | None
    message: str
    reference: str | None = None
    desk_location: str | None = None
    export_deadline: date | None = None

    @classmethod
    def from_json(cls, body: dict) -> "FormVerdict":
        deadline = body.get("export_deadline")
        return cls(form_id=body["form_id"], verdict=body["verdict"], reason_code=body.get("reason_code"),
                   message=body.get("message") or "", reference=body.get("reference"),
                   desk_location=body.get("desk_location"),
                   export_deadline=date.fromisoformat(deadline) if deadline else None)


@dataclass(frozen=True)
class ValidationResult:
    verdicts: tuple[FormVerdict, ...]
    desk_pass: str | None = None  # the "show this to the officer" QR, when any form must go to the desk
    replayed: bool = False


@dataclass
class _Token:
    value: str
    expires_at: float  # on the client's monotonic clock


class TravellerClient:
    """Calls the traveller endpoints for one passport. Thread-safe."""

    def __init__(self, base_url: str, install_id: str, *, timeout: tuple[float, float] = DEFAULT_TIMEOUT,
                 session: requests.Session | None = None, clock: Callable[[], float] = time.monotonic):
        self.base_url = base_url.rstrip("/")
        self.install_id = install_id
        self.timeout = timeout
        self._http = session or requests.Session()
        self._clock = clock
        self._lock = threading.Lock()
        self._credentials: Credentials | None = None
        self._token: _Token | None = None

    # --- the session ------------------------------------------------------------

    def sign_in(self, credentials: Credentials) -> None:
        """Remember the passport and get a session token for it."""
        with self._lock:
            self._credentials, self._token = credentials, None
        self._session_token()

    def use(self, credentials: Credentials) -> None:
        """Remember the passport; a token is asked for at the first call."""
        with self._lock:
            self._credentials, self._token = credentials, None

    def forget(self) -> None:
        """Drop the passport and the token (``forget me``)."""
        with self._lock:
            self._credentials, self._token = None, None

    @property
    def signed_in(self) -> bool:
        return self._credentials is not None

    def _session_token(self) -> str:
        with self._lock:
            token, credentials = self._token, self._credentials
        if token is not None and self._clock() < token.expires_at - TOKEN_MARGIN:
            return token.value
        if credentials is None:
            raise ApiError(401, "no_passport", "no passport has been given")
        body = {"passport_number": credentials.passport_number,
                "passport_country": credentials.passport_country,
                "date_of_birth": credentials.date_of_birth.isoformat(),
                "install_id": self.install_id}
        answer = self._request("POST", "/api/v1/traveller/session", json=body, auth=False).json()
        token = _Token(answer["access_token"], self._clock() + float(answer.get("expires_in", 900)))
        with self._lock:
            if self._credentials == credentials:
                self._token = token
        return token.value

    # --- calls ------------------------------------------------------------------

    def forms(self) -> list[Form]:
        """Every open form of the passport, and those decided lately until refunded."""
        return [Form.from_json(item) for item in self._request("GET", "/api/v1/traveller/forms").json()["items"]]

    def claim(self, qr_payload: str) -> Form:
        """Add a form by its QR code; ApiError ``passport_mismatch`` if it
        names another passport."""
        return Form.from_json(self._request("POST", "/api/v1/traveller/forms/claim",
                                            json={"qr_payload": qr_payload}).json())

    def exit_points(self) -> list[ExitPoint]:
        return [ExitPoint.from_json(item)
                for item in self._request("GET", "/api/v1/traveller/exit-points").json()["items"]]

    def validate(self, exit_point: str, form_ids: list[str], evidence: dict, trip: dict | None,
                 idempotency_key: str) -> ValidationResult:
        """Ask for the export of ``form_ids`` to be validated here and now.
        The same key and body sent again (after a timeout) are answered once."""
        body = {"exit_point": exit_point, "form_ids": list(form_ids), "evidence": evidence, "trip": trip}
        response = self._request("POST", "/api/v1/traveller/validations", json=body,
                                 headers={"Idempotency-Key": idempotency_key})
        data = response.json()
        return ValidationResult(tuple(FormVerdict.from_json(item) for item in data["items"]),
                                data.get("desk_pass"), response.headers.get("Idempotent-Replayed") == "true")

    def desk_pass(self) -> str:
        """A fresh "show this to the officer" token."""
        return self._request("POST", "/api/v1/traveller/desk-pass").json()["desk_pass"]

    # --- plumbing ---------------------------------------------------------------

    def _request(self, method: str, path: str, *, auth: bool = True, retry_auth: bool = True,
                 **kwargs) -> requests.Response:
        headers = dict(kwargs.pop("headers", {}))
        if auth:
            headers["Authorization"] = f"Bearer {self._session_token()}"
        try:
            response = self._http.request(method, self.base_url + path, headers=headers,
                                          timeout=self.timeout, **kwargs)
        except requests.RequestException as exc:  # refused, reset, DNS, timeout
            raise Offline(f"{method} {path}: {type(exc).__name__}") from exc
        if response.status_code == 429:
            raise RateLimited(f"{method} {path}: HTTP 429", _seconds(response.headers.get("Retry-After")))
        if response.status_code >= 500:
            raise Offline(f"{method} {path}: HTTP {response.status_code}")
        if response.status_code == 401 and auth and retry_auth:
            # The token ran out (the phone slept): a new one, then once more.
            with self._lock:
                self._token = None
            return self._request(method, path, auth=True, retry_auth=False, headers=headers, **kwargs)
        if response.status_code >= 400:
            try:
                problem = response.json()
            except ValueError:
                problem = {}
            raise ApiError(response.status_code, problem.get("code", "error"),
                           problem.get("detail", response.reason or ""), problem.get("errors"))
        return response


def _seconds(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None
