"""The API as a kiosk sees it: scans, passport look-ups, pairing, keys, health.

A small ``requests`` client with a device token and short timeouts. Every
way the API can be out of reach (no route, refused connection, timeout,
5xx, 429) is one exception, :class:`Offline`, because the kiosk does the
same thing for all of them: verify locally and queue. Answers that will not
change on a retry (4xx) are :class:`ApiError` with the problem's ``code``.
"""
from __future__ import annotations

import email.utils
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

import requests

# Connect fast or call it offline: a traveller is waiting. Reading allows a
# little more (a scan is a database write on the server).
DEFAULT_TIMEOUT = (2.0, 5.0)


class Offline(Exception):
    """The API cannot be reached or cannot answer now; retry later."""


class ApiError(Exception):
    """The API refused the request (4xx); the same request will fail again.

    ``code`` is the problem document's machine-readable code.
    """

    def __init__(self, status: int, code: str, detail: str, errors: dict | None = None):
        super().__init__(f"{status} {code}: {detail}")
        self.status = status
        self.code = code
        self.detail = detail
        self.errors = errors or {}


class DeviceRejected(ApiError):
    """401/403: the device token is wrong or revoked; staff must re-pair."""


@dataclass(frozen=True)
class Verdict:
    """The API's verdict on one form (``POST /api/v1/scans``)."""

    verdict: str  # "validated", "check_required" or "refused"
    reason_code: str | None
    message: str
    form_id: str | None = None
    export_deadline: date | None = None
    desk_location: str | None = None
    payer: str | None = None  # who pays the refund, when validated
    replayed: bool = False  # the API had already answered this Idempotency-Key

    @classmethod
    def from_json(cls, body: dict, replayed: bool = False) -> "Verdict":
        deadline = body.get("export_deadline")
        return cls(
            verdict=body["verdict"],
            reason_code=body.get("reason_code"),
            message=body.get("message", ""),
            form_id=body.get("form_id"),
            export_deadline=date.fromisoformat(deadline) if deadline else None,
            desk_location=body.get("desk_location"),
            payer=body.get("payer"),
            replayed=replayed,
        )


@dataclass(frozen=True)
class PairedDevice:
    """What pairing gave this device: its identity and its token."""

    id: str
    name: str
    kind: str
    exit_point: str
    token: str


def iso_utc(moment: datetime) -> str:
    """``moment`` as the ISO 8601 UTC text the API takes for ``scanned_at``
    (whole seconds: the API allows for that)."""
    if moment.tzinfo is None:
        raise ValueError("scanned_at must be timezone-aware")
    return moment.astimezone(timezone.utc).isoformat(timespec="seconds")


class KioskClient:
    """Calls the API as one device (kiosk or tablet), identified by its token."""

    def __init__(self, base_url: str, device_token: str | None, *,
                 timeout: tuple[float, float] = DEFAULT_TIMEOUT,
                 session: requests.Session | None = None):
        self.base_url = base_url.rstrip("/")
        self.device_token = device_token
        self.timeout = timeout
        self._http = session or requests.Session()
        # Server time minus local time, learned from each answer's Date
        # header, so offline scans are dated by the server's clock even when
        # the kiosk's drifts.
        self.clock_offset = timedelta(0)

    # --- calls ------------------------------------------------------------

    def health(self) -> bool:
        """True if the API answers ``/healthz``; never raises."""
        try:
            self._request("GET", "/healthz", auth=False)
        except (Offline, ApiError):
            return False
        return True

    def jwks(self) -> dict:
        """The published keys that verify QR payloads (cache them)."""
        return self._request("GET", "/.well-known/jwks.json", auth=False).json()

    def scan(self, qr_payload: str, *, idempotency_key: str | None = None,
             scanned_at: datetime | None = None) -> Verdict:
        """Send a scanned QR payload; the API's verdict for its form.

        ``idempotency_key``: the same scan sent again (after a timeout, or from
        the offline queue) is answered once. ``scanned_at``: when the traveller
        scanned, for a scan made offline and sent later (marked ``queued``);
        a live scan leaves it out and is dated when the API receives it.
        """
        body = {"qr_payload": qr_payload}
        if scanned_at is not None:
            body.update(queued=True, scanned_at=iso_utc(scanned_at))
        return self.send_scan("qr", body, idempotency_key)

    def scan_passport(self, passport_number: str, passport_country: str, *,
                      idempotency_key: str | None = None,
                      scanned_at: datetime | None = None) -> list[Verdict]:
        """Every open form of the passport's holder, each with its verdict."""
        body = {"passport_number": passport_number, "passport_country": passport_country}
        if scanned_at is not None:
            body.update(queued=True, scanned_at=iso_utc(scanned_at))
        return self.send_scan("passport", body, idempotency_key)

    def send_scan(self, kind: str, body: dict, idempotency_key: str | None):
        """Send a scan request body as built by :meth:`scan` or
        :meth:`scan_passport` (the offline queue stores bodies as sent)."""
        path = {"qr": "/api/v1/scans", "passport": "/api/v1/scans/passport"}[kind]
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        response = self._request("POST", path, json=body, headers=headers)
        replayed = response.headers.get("Idempotent-Replayed") == "true"
        data = response.json()
        if kind == "passport":
            return [Verdict.from_json(item, replayed) for item in data["items"]]
        return Verdict.from_json(data, replayed)

    def report_refused(self, refused: list[dict]) -> int:
        """Tell the API about scans from the offline queue that it refused
        (``POST /api/v1/scans/refused``); returns how many were new to it."""
        fields = ("idempotency_key", "kind", "form_id", "scanned_at", "status", "code", "detail")
        items = [{**{name: item[name] for name in fields}, "refused_at": item["failed_at"]} for item in refused]
        return self._request("POST", "/api/v1/scans/refused", json={"items": items}).json()["recorded"]

    def pair(self, code: str) -> PairedDevice:
        """Exchange a one-time pairing code for this device's token
        (``POST /api/v1/devices/pair``). A used, expired or unknown code is
        an ApiError; the token is not set on this client (the caller stores
        it first)."""
        data = self._request("POST", "/api/v1/devices/pair", json={"code": code}, auth=False).json()
        return PairedDevice(id=data["id"], name=data["name"], kind=data["kind"],
                            exit_point=data["exit_point"], token=data["token"])

    def heartbeat(self, body: dict) -> dict:
        """Report this device's health (``shared.heartbeat``); the API's
        stored heartbeat, with the clock skew it computed."""
        return self._request("POST", "/api/v1/devices/me/heartbeat", json=body).json()

    def now(self) -> datetime:
        """The current time by the server's clock, as last learned."""
        return datetime.now(timezone.utc) + self.clock_offset

    # --- plumbing ---------------------------------------------------------

    def _request(self, method: str, path: str, *, auth: bool = True, **kwargs) -> requests.Response:
        headers = kwargs.pop("headers", {})
        if auth:
            if not self.device_token:
                raise DeviceRejected(401, "unauthorized", "this kiosk has no device token")
            headers["Authorization"] = f"Bearer {self.device_token}"
        try:
            response = self._http.request(method, self.base_url + path, headers=headers,
                                          timeout=self.timeout, **kwargs)
        except requests.RequestException as exc:  # refused, reset, DNS, timeout
            raise Offline(f"{method} {path}: {type(exc).__name__}") from exc
        self._learn_clock(response)
        if response.status_code >= 500 or response.status_code == 429:
            raise Offline(f"{method} {path}: HTTP {response.status_code}")
        if response.status_code >= 400:
            try:
                problem = response.json()
            except ValueError:
                problem = {}
            error = DeviceRejected if response.status_code in (401, 403) else ApiError
            raise error(response.status_code, problem.get("code", "error"),
                        problem.get("detail", response.reason or ""), problem.get("errors"))
        return response

    def _learn_clock(self, response: requests.Response) -> None:
        stamp = response.headers.get("Date")
        if not stamp:
            return
        try:
            server = email.utils.parsedate_to_datetime(stamp)
        except (TypeError, ValueError):
            return
        if server.tzinfo is None:  # "-0000": UTC by RFC 5322
            server = server.replace(tzinfo=timezone.utc)
        # The header has whole seconds; only correct drifts worth correcting.
        offset = server - datetime.now(timezone.utc)
        self.clock_offset = offset if abs(offset) > timedelta(seconds=2) else timedelta(0)


def wait_until_online(client: KioskClient, timeout: float, interval: float = 0.2) -> bool:
    """Poll ``health`` until the API answers or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if client.health():
            return True
        time.sleep(interval)
    return False
