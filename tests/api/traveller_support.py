"""What the traveller's-app tests share: an exit point with a validation
zone and sensor posts (made through the admin API), and a phone that signs
in and sends evidence the way the app does."""
from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import text

from shared import presence
from tests.builders import item

# A rectangle over Schiphol's Departures 2 ([longitude, latitude]) and a
# point in the middle of it; a point in the car park outside.
AMS_ZONE = {"type": "Polygon", "coordinates": [[[4.7660, 52.3098], [4.7700, 52.3098], [4.7700, 52.3118],
                                                [4.7660, 52.3118], [4.7660, 52.3098]]]}
RTM_ZONE = {"type": "Polygon", "coordinates": [[[4.1340, 51.9495], [4.1380, 51.9495], [4.1380, 51.9525],
                                                [4.1340, 51.9525], [4.1340, 51.9495]]]}
IN_AMS = (52.3108, 4.7683)
OUTSIDE_AMS = (52.3080, 4.7630)  # about 300 m away, at the bus station
STEP = 30


def now() -> datetime:
    return datetime.now(timezone.utc)


def coat(**extra):
    return item(24900, description="Wool coat", **extra)


def watch(**extra):
    return item(125000, category="watches", description="Chronograph", serial_number="SN-10077", **extra)


class Phone:
    """The traveller's app on one phone: one install, one passport signed in."""

    def __init__(self, app_world, passport="E12345678", country="CN", dob="1988-03-14", install_id=None):
        self.w = app_world
        self.client = app_world.client
        self.install_id = install_id or str(uuid.uuid4())
        self.passport, self.country, self.dob = passport, country, dob
        self.token = None

    def sign_in(self, *, dob=None, address="127.0.0.1", passport=None):
        r = self.client.post("/api/v1/traveller/session", json={
            "passport_number": passport or self.passport, "passport_country": self.country,
            "date_of_birth": dob or self.dob, "install_id": self.install_id},
            environ_base={"REMOTE_ADDR": address})
        if r.status_code == 200:
            self.token = r.get_json()["access_token"]
        return r

    def signed_in(self, *, installed_minutes_ago: float = 24 * 60) -> "Phone":
        """Signed in, with the app set up ``installed_minutes_ago`` (the
        first-use rule looks at that)."""
        r = self.sign_in()
        assert r.status_code == 200, r.get_json()
        self.installed(installed_minutes_ago)
        return self

    def installed(self, minutes_ago: float) -> None:
        from api import database
        from api.services.traveller import install_key

        with self.w.app.app_context():
            session = database.session()
            key = install_key(self.w.app.config["PASSPORT_HASH_KEY"].encode(), self.install_id)
            session.execute(text("UPDATE app_installs SET first_seen_at = :at WHERE install_key = :key"),
                            {"at": _db_time(session, now() - timedelta(minutes=minutes_ago)), "key": key})
            session.commit()

    def headers(self, **extra):
        return {"Authorization": f"Bearer {self.token}", **extra}

    def get(self, path):
        return self.client.get(path, headers=self.headers())

    def post(self, path, body=None, **headers):
        return self.client.post(path, json=body, headers=self.headers(**headers))

    def forms(self) -> list[dict]:
        r = self.get("/api/v1/traveller/forms")
        assert r.status_code == 200, r.get_json()
        return r.get_json()["items"]

    # --- evidence ---------------------------------------------------------------

    def beacon(self, post_id="AMS-D2-01", *, steps_ago=0, seen_seconds_ago=2, token=None) -> dict:
        at = now()
        if token is None:
            secret = bytes.fromhex(self.w.secrets[post_id])
            token = presence.token_for_step(secret, post_id, presence.token_step(at, STEP) - steps_ago)
        return {"post_id": post_id, "token": token, "seen_at": (at - timedelta(seconds=seen_seconds_ago)).isoformat(),
                "rssi": -61}

    def gps(self, where=IN_AMS, *, accuracy=12.0, mock=False, seconds_ago=3, at=None) -> dict:
        return {"lat": where[0], "lon": where[1], "accuracy_m": accuracy, "mock": mock,
                "at": ((at or now()) - timedelta(seconds=seconds_ago)).isoformat()}

    def evidence(self, *, gps="default", beacons="default") -> dict:
        return {"install_id": self.install_id,
                "gps": self.gps() if gps == "default" else gps,
                "beacons": [self.beacon()] if beacons == "default" else beacons}

    def validate(self, form_ids, *, evidence=None, trip=None, exit_point="AMS", key=None):
        body = {"exit_point": exit_point, "form_ids": list(form_ids),
                "evidence": evidence or self.evidence(), "trip": trip}
        return self.post("/api/v1/traveller/validations", body,
                         **{"Idempotency-Key": key or str(uuid.uuid4())})

    def verdicts(self, form_ids, **kw) -> dict:
        r = self.validate(form_ids, **kw)
        assert r.status_code == 200, r.get_json()
        return r.get_json()


def _db_time(session, value: datetime):
    # Raw SQL: SQLite keeps naive UTC (api.models.UTCDateTime).
    return value.replace(tzinfo=None) if session.bind.dialect.name == "sqlite" else value


class AppWorld:
    """The API world, with zones and sensor posts at AMS and RTM."""

    def __init__(self, world, app):
        self.world, self.app, self.client = world, app, world.client
        self.secrets: dict[str, str] = {}

    def __getattr__(self, name):
        return getattr(self.world, name)

    def admin(self, path, body, status=201):
        r = self.world.post("root", path, body)
        assert r.status_code == status, r.get_json()
        return r.get_json()

    def phone(self, **kw) -> Phone:
        return Phone(self, **kw)

    def issue_for(self, *items, **traveller_overrides) -> dict:
        from tests.builders import traveller

        return self.world.issue("shop", *items, traveller=traveller(**traveller_overrides))

    def status(self, form_id) -> str:
        return self.world.get("officer", f"/api/v1/forms/{form_id}").get_json()["status"]

    def events(self, form_id) -> list[dict]:
        return self.world.get("officer", f"/api/v1/forms/{form_id}/events").get_json()["items"]

    def check(self, form_id) -> dict | None:
        r = self.world.get("officer", "/api/v1/checks?exit_point=AMS")
        return next((c for c in r.get_json()["items"] if c["form_id"] == form_id), None)

    def backdate_app_scans(self, install_id: str, minutes: float) -> None:
        from api import database
        from api.services.traveller import install_key

        with self.app.app_context():
            session = database.session()
            key = install_key(self.app.config["PASSPORT_HASH_KEY"].encode(), install_id)
            session.execute(text("UPDATE scans SET created_at = :at WHERE install_key = :key"),
                            {"at": _db_time(session, now() - timedelta(minutes=minutes)), "key": key})
            session.commit()


@pytest.fixture
def app_world(world, app) -> AppWorld:
    w = AppWorld(world, app)
    w.admin("/api/v1/exit-points/AMS/zones", {"name": "Departures 2", "polygon": AMS_ZONE})
    w.admin("/api/v1/exit-points/RTM/zones", {"name": "P&O terminal", "polygon": RTM_ZONE})
    for post_id, code in (("AMS-D2-01", "AMS"), ("RTM-T1-01", "RTM")):
        w.secrets[post_id] = w.admin(f"/api/v1/exit-points/{code}/sensor-posts", {"id": post_id})["secret"]
    return w


def rules_of(check: dict) -> list[str]:
    return [r["code"] for r in check["fired_rules"]]


def today_julian(day: date | None = None) -> int:
    day = day or datetime.now(timezone.utc).astimezone(__import__("zoneinfo").ZoneInfo("Europe/Amsterdam")).date()
    return day.timetuple().tm_yday
