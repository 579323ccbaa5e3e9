"""The soak run's load: the people and machines that use the API in a day at
an exit point, each at a steady rate, from one asyncio event loop.

Open loop: every action is started at its scheduled moment whether or not
the previous one has answered, and its latency runs from that moment, so a
slow API cannot slow the load down and hide its own slowness (coordinated
omission). Each party keeps its own keep-alive connections, as a till, a
kiosk or an officer's handheld would; travellers looking up their form come
from their own loopback address (127.0.0.2 to 127.0.0.251), one connection
each, as phones would, so the per-address limits of the status lookups hold
as in production.

The HTTP/1.1 client is a small one on asyncio streams: the virtualenv has
neither httpx nor aiohttp, and the soak needs nothing more than keep-alive,
Content-Length and chunked bodies.
"""
from __future__ import annotations

import asyncio
import json
import random
import re
import secrets
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from urllib.parse import urlencode, urlsplit

# --- a small HTTP/1.1 client ----------------------------------------------------------

# gunicorn closes a keep-alive connection after 5 s idle (gunicorn.conf.py):
# the client drops its own sooner, so it never sends on a connection the
# server is closing at that very moment (which would look like an error).
IDLE_SECONDS = 2.0
TIMEOUT_SECONDS = 30.0  # gunicorn's worker timeout: a request still unanswered then is lost


class ConnectionLost(Exception):
    """The server closed the connection or the request could not be sent."""


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self):
        return json.loads(self.body)


class Connection:
    """One keep-alive HTTP/1.1 connection."""

    def __init__(self, host: str, port: int, local_address: str | None = None):
        self.host, self.port, self.local_address = host, port, local_address
        self.reader = self.writer = None
        self.last_used = 0.0
        self.reusable = True

    async def open(self) -> None:
        local = (self.local_address, 0) if self.local_address else None
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port, local_addr=local)

    async def request(self, method: str, path: str, headers: dict[str, str], body: bytes | None) -> Reply:
        head = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        head += [f"{k}: {v}" for k, v in headers.items()]
        if body is not None or method in ("POST", "PUT", "PATCH"):
            head.append(f"Content-Length: {len(body or b'')}")
        try:
            self.writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + (body or b""))
            await self.writer.drain()
            status_line = await self.reader.readline()
            if not status_line:
                raise ConnectionLost("the server closed the connection before answering")
            status = int(status_line.split()[1])
            reply_headers: dict[str, str] = {}
            cookies = []
            while True:
                line = (await self.reader.readline()).decode("latin-1").rstrip("\r\n")
                if not line:
                    break
                name, _, value = line.partition(":")
                name, value = name.strip().lower(), value.strip()
                if name == "set-cookie":
                    cookies.append(value)
                reply_headers[name] = value
            if cookies:
                reply_headers["set-cookie"] = "\n".join(cookies)
            if reply_headers.get("transfer-encoding", "").lower() == "chunked":
                content = await self._chunked()
            elif "content-length" in reply_headers:
                content = await self.reader.readexactly(int(reply_headers["content-length"]))
            else:
                content = await self.reader.read()
                self.reusable = False
        except (OSError, asyncio.IncompleteReadError, ValueError, IndexError) as exc:
            self.reusable = False
            raise ConnectionLost(f"{type(exc).__name__}: {exc}"[:200]) from exc
        if reply_headers.get("connection", "").lower() == "close":
            self.reusable = False
        self.last_used = time.monotonic()
        return Reply(status, reply_headers, content)

    async def _chunked(self) -> bytes:
        parts = []
        while True:
            size = int((await self.reader.readline()).split(b";")[0], 16)
            if size == 0:
                await self.reader.readline()
                return b"".join(parts)
            parts.append(await self.reader.readexactly(size))
            await self.reader.readline()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


class Pool:
    """The connections of one party (a till, a kiosk, an officer)."""

    def __init__(self, base: str, size: int = 8, local_address: str | None = None):
        parts = urlsplit(base)
        self.host, self.port = parts.hostname, parts.port
        self.local_address = local_address
        self.idle: list[Connection] = []
        self.slots = asyncio.Semaphore(size)
        self.opened = 0

    async def request(self, method: str, path: str, headers: dict[str, str], body: bytes | None) -> Reply:
        async with self.slots:
            connection = None
            while self.idle:
                candidate = self.idle.pop()
                if time.monotonic() - candidate.last_used < IDLE_SECONDS:
                    connection = candidate
                    break
                candidate.close()
            if connection is None:
                connection = Connection(self.host, self.port, self.local_address)
                try:
                    await connection.open()
                except OSError as exc:
                    raise ConnectionLost(f"could not connect: {exc}"[:200]) from exc
                self.opened += 1
            try:
                reply = await connection.request(method, path, headers, body)
            except BaseException:
                connection.close()
                raise
            if connection.reusable:
                self.idle.append(connection)
            else:
                connection.close()
            return reply

    def close(self) -> None:
        for connection in self.idle:
            connection.close()
        self.idle.clear()


# --- what every request did --------------------------------------------------------------

PERSONAL = re.compile(
    r'("(?:first_name|last_name|passport_number|date_of_birth|traveller_name|email)"\s*:\s*)"[^"]*"')


def redacted(body: bytes, limit: int = 400) -> str:
    """The start of an answer for the report, with travellers' details blanked."""
    text = body[:4000].decode("utf-8", "replace")
    return PERSONAL.sub(r'\1"..."', text)[:limit]


@dataclass
class Outcome:
    endpoint: str
    at: float  # seconds since the load started (the scheduled moment)
    latency_ms: float
    status: int | None
    error: str | None  # None, or the kind of error


@dataclass
class Recorder:
    """Every request's latency and outcome; the first few answers of each
    kind of error."""

    started: float
    outcomes: list[Outcome] = field(default_factory=list)
    samples: dict[str, list[dict]] = field(default_factory=dict)
    expected_4xx: Counter = field(default_factory=Counter)
    keep_samples: int = 3

    def add(self, endpoint: str, scheduled: float, status: int | None, error: str | None,
            detail: str = "") -> None:
        now = time.monotonic()
        self.outcomes.append(Outcome(endpoint, scheduled - self.started, (now - scheduled) * 1000, status, error))
        if error:
            kept = self.samples.setdefault(f"{endpoint}: {error}", [])
            if len(kept) < self.keep_samples:
                kept.append({"at_s": round(now - self.started, 1), "status": status, "detail": detail})
        elif status is not None and 400 <= status < 500:
            self.expected_4xx[f"{endpoint} {status}"] += 1


# --- the parties and their data -------------------------------------------------------------

@dataclass
class Parties:
    """Who sends the load: their bearer tokens, made by soak.py through the
    API before the load starts."""

    shop: str  # a retailer clerk at the till
    intermediary: str  # the refund company reading the change feed and paying refunds
    officers: dict[str, str]  # exit point code -> officer token
    kiosks: list[tuple[str, str]]  # (exit point code, device token)


# Rates per second at --rate 1: a steady, moderate mix (the API's workers
# use about a quarter of one core), so the soak watches stability, not
# saturation.
RATES = {
    "issue": 6.0,          # POST /forms at the tills
    "issue_batch": 0.3,    # POST /forms/batch, 20 forms each (a retailer's back office)
    "scan": 11.0,          # kiosks scanning forms issued earlier in the run
    "rescan": 4.0,         # travellers scanning the same form again
    "desk_queue": 2.0,     # officers' handhelds refreshing GET /checks (AMS, RTM in turn)
    "decide": 1.5,         # officers deciding the checks they saw (when one waits)
    "feed": 1.0,           # the intermediary following the change feed
    "refund": 1.0,         # the intermediary reporting refunds paid (when one is due)
    "cancel": 0.3,         # the till cancelling a form not used yet
    "status": 1.0,         # travellers' status lookups: API and web page in turn
    "bad": 0.5,            # requests that must be refused with the expected 4xx
}
BATCH_SIZE = 20
# Share of forms with a watch on them: the risk engine sends those to the
# desk (watched category), so officers have checks to decide besides the
# random sample.
WATCH_SHARE = 0.08
SCAN_AFTER_SECONDS = 5.0  # a traveller reaches the kiosk a little after buying

ITEMS = [
    {"description": "Wool coat", "quantity": 1, "unit_price_cents": 12100, "vat_rate": 21, "category": "clothing"},
    {"description": "Leather bag", "quantity": 1, "unit_price_cents": 34900, "vat_rate": 21,
     "category": "leather_goods"},
    {"description": "Silk scarf", "quantity": 2, "unit_price_cents": 8900, "vat_rate": 21, "category": "clothing"},
    {"description": "Guide book", "quantity": 1, "unit_price_cents": 2500, "vat_rate": 9, "category": "books"},
]
WATCH = {"description": "Chronograph", "quantity": 1, "unit_price_cents": 45000, "vat_rate": 21,
         "category": "watches", "serial_number": "SN-SOAK"}
TRAVELLERS = [("Mei", "Chen", "CN"), ("John", "Smith", "US"), ("Yuki", "Sato", "JP"),
              ("Ana", "Souza", "BR"), ("Olu", "Adeyemi", "NG"), ("Priya", "Nair", "IN")]


@dataclass
class Issued:
    form_id: str
    last_name: str
    qr_payload: str
    lines: int
    invoice_number: str


@dataclass
class State:
    """What the parties know as the run goes on."""

    issued: dict[str, Issued] = field(default_factory=dict)  # every form the load got a 201 for
    via_batch: int = 0
    waiting: deque = field(default_factory=deque)  # (ready at, form id): travellers on their way out
    scanned: list[str] = field(default_factory=list)  # forms scanned at least once (re-scans pick here)
    acknowledged_scans: Counter = field(default_factory=Counter)  # form id -> scans answered 200
    scan_verdicts: Counter = field(default_factory=Counter)
    desk: dict[str, deque] = field(default_factory=dict)  # exit point -> checks seen, to decide
    seen_checks: set = field(default_factory=set)
    decided: list[str] = field(default_factory=list)
    decisions: Counter = field(default_factory=Counter)
    feed_cursor: str | None = None
    feed_changes: int = 0
    refunds_due: deque = field(default_factory=deque)  # (form id, amount)
    refunds_queued: set = field(default_factory=set)
    refunded: int = 0
    cancelled: list[str] = field(default_factory=list)
    status_lookups: Counter = field(default_factory=Counter)
    skipped: Counter = field(default_factory=Counter)  # ticks with nothing to do (no form waiting ...)


class Load:
    """The mixed load against the API at ``base``."""

    def __init__(self, base: str, parties: Parties, recorder: Recorder, *, rate: float = 1.0,
                 seed: int = 1):
        self.base = base
        self.parties = parties
        self.recorder = recorder
        self.rate = rate
        self.rng = random.Random(seed)
        self.state = State(desk={code: deque() for code in parties.officers})
        self.tag = "SK" + secrets.token_hex(3).upper()  # invoice numbers unique to this run
        self.counter = 0
        self.till = Pool(base)
        self.back_office = Pool(base, size=2)
        self.intermediary = Pool(base, size=4)
        self.kiosks = [(code, token, Pool(base)) for code, token in parties.kiosks]
        self.handhelds = {code: Pool(base, size=4) for code in parties.officers}
        self.other = Pool(base, size=4)
        self.tasks: set[asyncio.Task] = set()
        self.bad_requests = self._bad_requests()
        self.bad_turn = 0
        self.status_turn = 0
        self.kiosk_turn = 0
        self.desk_turn = 0
        self.traveller_connections = 0
        self.feed_since = datetime.now(timezone.utc).isoformat()

    # --- running ------------------------------------------------------------------

    async def run(self, seconds: float) -> None:
        until = self.recorder.started + seconds
        actions = {
            "issue": self.issue, "issue_batch": self.issue_batch, "scan": self.scan,
            "rescan": self.rescan, "desk_queue": self.desk_queue, "decide": self.decide,
            "feed": self.feed, "refund": self.refund, "cancel": self.cancel,
            "status": self.status_lookup, "bad": self.bad,
        }
        await asyncio.gather(*(self._every(RATES[name] * self.rate, action, until)
                               for name, action in actions.items()))
        # Requests still in flight finish (or time out) before the counts are taken.
        if self.tasks:
            await asyncio.wait(set(self.tasks), timeout=TIMEOUT_SECONDS + 5)
        for pool in [self.till, self.back_office, self.intermediary, self.other,
                     *self.handhelds.values(), *(p for _, _, p in self.kiosks)]:
            pool.close()

    async def _every(self, per_second: float, action, until: float) -> None:
        interval = 1.0 / per_second
        next_at = self.recorder.started + self.rng.random() * interval  # parties out of step
        while next_at < until:
            delay = next_at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            task = asyncio.create_task(action(next_at))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
            next_at += interval

    async def call(self, endpoint: str, pool: Pool, method: str, path: str, *, token: str | None = None,
                   body=None, form: dict | None = None, headers: dict | None = None,
                   expect=(200,), scheduled: float | None = None, check=None) -> Reply | None:
        """One request; its outcome is recorded. Returns the reply when the
        status was one of ``expect`` and ``check`` (if any) found nothing
        wrong with it, else None."""
        scheduled = time.monotonic() if scheduled is None else scheduled
        sent_headers = {"Accept": "application/json"}
        data = None
        if token:
            sent_headers["Authorization"] = f"Bearer {token}"
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            sent_headers["Content-Type"] = "application/json"
        elif form is not None:
            data = urlencode(form).encode()
            sent_headers["Content-Type"] = "application/x-www-form-urlencoded"
        sent_headers.update(headers or {})
        try:
            reply = await asyncio.wait_for(pool.request(method, path, sent_headers, data), TIMEOUT_SECONDS)
        except asyncio.TimeoutError:
            self.recorder.add(endpoint, scheduled, None, "timeout", f"no answer within {TIMEOUT_SECONDS:.0f} s")
            return None
        except ConnectionLost as exc:
            self.recorder.add(endpoint, scheduled, None, "connection error", str(exc))
            return None
        if reply.status >= 500:
            self.recorder.add(endpoint, scheduled, reply.status, "5xx", redacted(reply.body))
            return None
        if reply.status not in expect:
            kind = "unexpected 4xx" if 400 <= reply.status < 500 else "unexpected status"
            self.recorder.add(endpoint, scheduled, reply.status, kind,
                              f"expected {'/'.join(map(str, expect))}: {redacted(reply.body)}")
            return None
        problem = None
        if check is not None:
            try:
                problem = check(reply)
            except (ValueError, KeyError, TypeError) as exc:
                problem = f"unreadable answer ({type(exc).__name__}: {exc})"
        if problem:
            self.recorder.add(endpoint, scheduled, reply.status, "wrong answer",
                              f"{problem}: {redacted(reply.body)}")
            return None
        self.recorder.add(endpoint, scheduled, reply.status, None)
        return reply

    # --- retailers -------------------------------------------------------------------

    def new_form(self) -> dict:
        self.counter += 1
        n = self.counter
        first, last, country = TRAVELLERS[n % len(TRAVELLERS)]
        items = [dict(self.rng.choice(ITEMS[:2]))]  # a coat or a bag: over the EUR 50 minimum
        items += [dict(i) for i in self.rng.sample(ITEMS[2:], self.rng.randrange(0, 3))]
        if self.rng.random() < WATCH_SHARE:
            items.append(dict(WATCH, serial_number=f"SN-{self.tag}-{n}"))
        return {
            "invoice_number": f"{self.tag}-{n}",
            "purchase_date": (date.today() - timedelta(days=1)).isoformat(),
            "payment_method": "card", "refund_method": "card",
            "traveller": {"first_name": first, "last_name": last, "passport_number": f"S{self.tag[2:]}{n:07d}",
                          "passport_country": country, "nationality": country, "residence_country": country,
                          "date_of_birth": "1985-06-01"},
            "items": items,
        }

    def _remember(self, form: dict, draft: dict) -> None:
        self.state.issued[form["id"]] = Issued(form["id"], draft["traveller"]["last_name"],
                                               form["qr_payload"], len(draft["items"]), draft["invoice_number"])
        self.state.waiting.append((time.monotonic() + SCAN_AFTER_SECONDS, form["id"]))

    async def issue(self, scheduled: float) -> None:
        draft = self.new_form()
        # Half the tills send an Idempotency-Key, as a till that retries would.
        headers = {"Idempotency-Key": f"{self.tag}-{self.counter}"} if self.rng.random() < 0.5 else {}

        def check(reply):
            form = reply.json()
            if form["invoice_number"] != draft["invoice_number"] or form["status"] != "issued":
                return "not the form sent"

        reply = await self.call("POST /forms", self.till, "POST", "/api/v1/forms", token=self.parties.shop,
                                body=draft, headers=headers, expect=(201,), scheduled=scheduled, check=check)
        if reply:
            self._remember(reply.json(), draft)

    async def issue_batch(self, scheduled: float) -> None:
        drafts = [self.new_form() for _ in range(BATCH_SIZE)]

        def check(reply):
            items = reply.json()["items"]
            refused = [i for i in items if i["status"] != 201]
            if len(items) != len(drafts) or refused:
                return f"{len(refused)} of {len(drafts)} forms not issued"

        reply = await self.call("POST /forms/batch", self.back_office, "POST", "/api/v1/forms/batch",
                                token=self.parties.shop, body={"forms": drafts}, scheduled=scheduled,
                                check=check)
        if reply:
            for item, draft in zip(reply.json()["items"], drafts):
                self._remember(item["body"], draft)
            self.state.via_batch += len(drafts)

    async def cancel(self, scheduled: float) -> None:
        # The newest form not used yet: a traveller who changed their mind at the till.
        if not self.state.waiting:
            self.state.skipped["cancel: no form to cancel"] += 1
            return
        _, form_id = self.state.waiting.pop()

        def check(reply):
            return None if reply.json()["status"] == "cancelled" else "not cancelled"

        if await self.call("POST /forms/{id}/cancel", self.till, "POST", f"/api/v1/forms/{form_id}/cancel",
                           token=self.parties.shop, scheduled=scheduled, check=check):
            self.state.cancelled.append(form_id)

    # --- kiosks -------------------------------------------------------------------------

    def _kiosk(self):
        self.kiosk_turn += 1
        return self.kiosks[self.kiosk_turn % len(self.kiosks)]

    async def _scan(self, endpoint: str, form_id: str, scheduled: float, verdicts) -> None:
        code, token, pool = self._kiosk()
        issued = self.state.issued[form_id]

        def check(reply):
            answer = reply.json()
            if answer["form_id"] != form_id or answer["verdict"] not in verdicts:
                return f"verdict {answer.get('verdict')} for {answer.get('form_id')}"

        reply = await self.call(endpoint, pool, "POST", "/api/v1/scans", token=token,
                                body={"qr_payload": issued.qr_payload}, scheduled=scheduled, check=check)
        if reply:
            self.state.acknowledged_scans[form_id] += 1
            self.state.scan_verdicts[f"{endpoint}: {reply.json()['verdict']}"] += 1

    async def scan(self, scheduled: float) -> None:
        waiting = self.state.waiting
        if not waiting or waiting[0][0] > time.monotonic():
            self.state.skipped["scan: no traveller at the kiosk"] += 1
            return
        _, form_id = waiting.popleft()
        await self._scan("POST /scans (fresh)", form_id, scheduled, ("validated", "check_required"))
        self.state.scanned.append(form_id)

    async def rescan(self, scheduled: float) -> None:
        if not self.state.scanned:
            self.state.skipped["rescan: nothing scanned yet"] += 1
            return
        # Mostly recent forms (travellers still at the airport), now and then an old one.
        recent = self.state.scanned[-500:]
        form_id = self.rng.choice(recent if self.rng.random() < 0.8 else self.state.scanned)
        # At another exit point a validated form is refused (validated elsewhere).
        await self._scan("POST /scans (re-scan)", form_id, scheduled, ("validated", "check_required", "refused"))

    # --- officers ---------------------------------------------------------------------------

    async def desk_queue(self, scheduled: float) -> None:
        codes = sorted(self.parties.officers)
        self.desk_turn += 1
        code = codes[self.desk_turn % len(codes)]

        def check(reply):
            items = reply.json()["items"]
            if any(c["status"] != "pending" or c["exit_point"] != code for c in items):
                return "a check in the queue that is not pending at this desk"

        reply = await self.call("GET /checks", self.handhelds[code], "GET",
                                f"/api/v1/checks?exit_point={code}&limit=20", token=self.parties.officers[code],
                                scheduled=scheduled, check=check)
        if reply:
            for c in reply.json()["items"]:
                if c["form_id"] not in self.state.seen_checks:
                    self.state.seen_checks.add(c["form_id"])
                    self.state.desk[code].append((c["form_id"], c["line_count"]))

    def _decision(self, lines: int) -> dict:
        roll = self.rng.random()
        if roll < 0.1:
            return {"outcome": "rejected", "reason_code": "goods_not_presented"}
        if roll < 0.25 and lines > 1:
            # The last line (the watch, on forms with one) was not shown.
            return {"outcome": "partially_validated",
                    "lines": [{"line": n, "present": n != lines} for n in range(1, lines + 1)]}
        return {"outcome": "validated", "lines": [{"line": n, "present": True} for n in range(1, lines + 1)]}

    async def decide(self, scheduled: float) -> None:
        desks = [code for code, queue in self.state.desk.items() if queue]
        if not desks:
            self.state.skipped["decide: no check waiting"] += 1
            return
        code = self.rng.choice(desks)
        form_id, lines = self.state.desk[code].popleft()
        decision = self._decision(lines)

        def check(reply):
            return None if reply.json()["status"] == decision["outcome"] else "another outcome stored"

        if await self.call("POST /forms/{id}/decision", self.handhelds[code], "POST",
                           f"/api/v1/forms/{form_id}/decision", token=self.parties.officers[code],
                           body=decision, scheduled=scheduled, check=check):
            self.state.decided.append(form_id)
            self.state.decisions[decision["outcome"]] += 1

    # --- the intermediary ---------------------------------------------------------------------

    async def feed(self, scheduled: float) -> None:
        query = {"limit": 200}
        if self.state.feed_cursor:
            query["cursor"] = self.state.feed_cursor
        else:
            query["updated_since"] = self.feed_since
        reply = await self.call("GET /forms (change feed)", self.intermediary, "GET",
                                "/api/v1/forms?" + urlencode(query), token=self.parties.intermediary,
                                scheduled=scheduled)
        if not reply:
            return
        page = reply.json()
        items = page["items"]
        self.state.feed_changes += len(items)
        for form in items:
            if form["status"] == "validated" and form["id"] not in self.state.refunds_queued:
                self.state.refunds_queued.add(form["id"])
                self.state.refunds_due.append((form["id"], form["refund_cents"]))
        cursors = [form["cursor"] for form in items if form["cursor"]]
        cursor = page.get("next_cursor") or (cursors[-1] if cursors else None)
        if cursor:
            self.state.feed_cursor = cursor

    async def refund(self, scheduled: float) -> None:
        if not self.state.refunds_due:
            self.state.skipped["refund: none due"] += 1
            return
        form_id, amount = self.state.refunds_due.popleft()
        body = {"amount_cents": amount, "paid_at": datetime.now(timezone.utc).isoformat()}

        def check(reply):
            return None if reply.json()["status"] == "refunded" else "not refunded"

        if await self.call("POST /forms/{id}/refund", self.intermediary, "POST", f"/api/v1/forms/{form_id}/refund",
                           token=self.parties.intermediary, body=body, scheduled=scheduled, check=check):
            self.state.refunded += 1

    # --- travellers ------------------------------------------------------------------------------

    def _traveller_pool(self) -> Pool:
        address = f"127.0.0.{2 + self.rng.randrange(250)}"
        self.traveller_connections += 1
        return Pool(self.base, size=1, local_address=address)

    def connections_opened(self) -> dict[str, int]:
        """Connections each kind of party opened over the run (keep-alive
        holds them; a number close to the requests' would mean it does not)."""
        return {"tills and back office": self.till.opened + self.back_office.opened,
                "kiosks": sum(p.opened for _, _, p in self.kiosks),
                "officers": sum(p.opened for p in self.handhelds.values()),
                "intermediary": self.intermediary.opened, "refused requests": self.other.opened,
                "travellers (one each)": self.traveller_connections}

    async def status_lookup(self, scheduled: float) -> None:
        if not self.state.issued:
            self.state.skipped["status: no form yet"] += 1
            return
        form = self.state.issued[self.rng.choice(list(self.state.issued)[-2000:])]
        pool = self._traveller_pool()
        self.status_turn += 1
        try:
            if self.status_turn % 2:
                def check(reply):
                    return None if reply.json()["form_id"] == form.form_id else "another form"

                # Names match whatever the case (the API's rule): typed in lower case here.
                if await self.call("POST /status/{id} (API)", pool, "POST", f"/api/v1/status/{form.form_id}",
                                   body={"last_name": form.last_name.lower()}, scheduled=scheduled, check=check):
                    self.state.status_lookups["api"] += 1
                return
            page = await self.call("GET /status (page)", pool, "GET", "/status", scheduled=scheduled,
                                   headers={"Accept": "text/html"})
            if not page:
                return
            token = re.search(rb'name="csrf_token" value="([^"]+)"', page.body)
            cookie = page.headers.get("set-cookie", "").split(";", 1)[0]

            def shows_form(reply):
                return None if form.form_id.encode() in reply.body else "the result does not name the form"

            if await self.call("POST /status (page)", pool, "POST", "/status",
                               form={"form_id": form.form_id, "last_name": form.last_name,
                                     "csrf_token": token.group(1).decode() if token else ""},
                               headers={"Accept": "text/html", "Cookie": cookie}, check=shows_form):
                self.state.status_lookups["page"] += 1
        finally:
            pool.close()

    # --- requests that must be refused ------------------------------------------------------------------

    def _bad_requests(self):
        """(name, expected status, request arguments): each must get exactly
        its status; anything else is an error like any other."""
        eu_resident = lambda: dict(self.new_form(), traveller=dict(self.new_form()["traveller"],  # noqa: E731
                                                                   residence_country="DE", nationality="DE"))
        shop, intermediary = self.parties.shop, self.parties.intermediary
        kiosk = self.parties.kiosks[0][1]
        return [
            ("EU resident's form", 422, lambda: dict(method="POST", path="/api/v1/forms", token=shop,
                                                     body=eu_resident())),
            ("form without items", 422, lambda: dict(method="POST", path="/api/v1/forms", token=shop,
                                                     body=dict(self.new_form(), items=[]))),
            ("scan without a device token", 401, lambda: dict(method="POST", path="/api/v1/scans",
                                                              body={"qr_payload": "x"})),
            ("unknown form", 404, lambda: dict(method="GET", path="/api/v1/forms/NL0000000000", token=shop)),
            ("forged cursor", 400, lambda: dict(method="GET", path="/api/v1/forms?cursor=not-a-cursor",
                                                token=intermediary)),
            ("malformed JSON", 400, lambda: dict(method="POST", path="/api/v1/forms", token=shop,
                                                 body=b'{"invoice_number": ')),
            ("method not allowed", 405, lambda: dict(method="DELETE", path="/api/v1/forms", token=shop)),
            ("same invoice twice", 409, self._duplicate_invoice),
            ("refund of a cancelled form", 409, self._early_refund),
            ("second decision", 409, self._second_decision),
            ("status with a wrong name", 404, self._wrong_name),
            ("officer's token at a kiosk", 403, lambda: dict(method="POST", path="/api/v1/scans",
                                                             token=next(iter(self.parties.officers.values())),
                                                             body={"qr_payload": "x"})),
            ("scan of a forged QR code", 200, lambda: dict(method="POST", path="/api/v1/scans", token=kiosk,
                                                           body={"qr_payload": "eyJhbGciOiJFZERTQSJ9.e30.c2ln"},
                                                           check=_refused)),
        ]

    def _duplicate_invoice(self):
        if not self.state.issued:
            return None
        draft = self.new_form()
        draft["invoice_number"] = next(iter(self.state.issued.values())).invoice_number
        return dict(method="POST", path="/api/v1/forms", token=self.parties.shop, body=draft)

    def _early_refund(self):
        # A cancelled form: one still waiting for its scan could be scanned
        # and validated while this request is on its way.
        if not self.state.cancelled:
            return None
        form_id = self.rng.choice(self.state.cancelled)
        return dict(method="POST", path=f"/api/v1/forms/{form_id}/refund", token=self.parties.intermediary,
                    body={"amount_cents": 100, "paid_at": datetime.now(timezone.utc).isoformat()})

    def _second_decision(self):
        if not self.state.decided:
            return None
        code = sorted(self.parties.officers)[0]
        return dict(method="POST", path=f"/api/v1/forms/{self.rng.choice(self.state.decided)}/decision",
                    token=self.parties.officers[code], body={"outcome": "rejected", "reason_code": "goods_used"})

    def _wrong_name(self):
        if not self.state.issued:
            return None
        form_id = self.rng.choice(list(self.state.issued)[-2000:])
        return dict(method="POST", path=f"/api/v1/status/{form_id}", body={"last_name": "Nobody"},
                    pool=self._traveller_pool())

    async def bad(self, scheduled: float) -> None:
        # In turn; one whose precondition is not there yet (no form decided
        # ...) gives its turn to the next.
        for _ in range(len(self.bad_requests)):
            name, status, make = self.bad_requests[self.bad_turn % len(self.bad_requests)]
            self.bad_turn += 1
            request = make()
            if request is not None:
                break
        else:
            return
        pool = request.pop("pool", None)
        try:
            await self.call(f"refused: {name}", pool or self.other, request.pop("method"), request.pop("path"),
                            expect=(status,), scheduled=scheduled, **request)
        finally:
            if pool is not None:
                pool.close()


def _refused(reply: Reply):
    return None if reply.json()["verdict"] == "refused" else "a forged QR code was not refused"
