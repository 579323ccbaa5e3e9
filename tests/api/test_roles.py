"""Who may call what: every route of the API against every role, from one
table. Customs roles and retail roles are kept apart: the administrator
runs the system (exit points and where the traveller's app may validate,
intermediaries, retailers, users, devices) and reads forms as customs staff
do, but never acts as a shop (issue, cancel, record a refund); only an
officer works the desk (decides, opens a check, reads a traveller's desk
pass); only a retailer's or an intermediary's users act on their forms;
a traveller's token opens the app's routes and nothing else, and no other
credential opens those; devices scan and report on themselves.

A route missing from the table fails the test: a new route needs a decision
about who may call it."""
from __future__ import annotations

import re
import uuid

import pytest

from api.auth import Principal
from api.problems import Problem
from tests.api.traveller_support import AMS_ZONE, app_world  # noqa: F401
from tests.builders import form_body, item

ADMIN, RETAILER, INTERMEDIARY, OFFICER, DEVICE, TRAVELLER = "root", "shop", "refunds", "officer", "kiosk", "phone"
ROLES = (ADMIN, RETAILER, INTERMEDIARY, OFFICER, DEVICE, TRAVELLER)
USERS = (ADMIN, RETAILER, INTERMEDIARY, OFFICER)
RETAIL = (RETAILER, INTERMEDIARY)
CUSTOMS_READ = (ADMIN, OFFICER)
PUBLIC = "public"

# (method, route) -> the roles let through; PUBLIC needs no credentials.
MATRIX: dict[tuple[str, str], tuple[str, ...] | str] = {
    ("POST", "/api/v1/auth/token"): PUBLIC,
    ("POST", "/api/v1/auth/refresh"): USERS,
    # System administration.
    ("GET", "/api/v1/exit-points"): (ADMIN, OFFICER),
    ("POST", "/api/v1/exit-points"): (ADMIN,),
    ("GET", "/api/v1/exit-points/<code>/zones"): (ADMIN,),
    ("POST", "/api/v1/exit-points/<code>/zones"): (ADMIN,),
    ("DELETE", "/api/v1/exit-points/<code>/zones/<int:zone_id>"): (ADMIN,),
    ("GET", "/api/v1/exit-points/<code>/sensor-posts"): (ADMIN,),
    ("POST", "/api/v1/exit-points/<code>/sensor-posts"): (ADMIN,),
    ("DELETE", "/api/v1/exit-points/<code>/sensor-posts/<post_id>"): (ADMIN,),
    ("GET", "/api/v1/exit-points/<code>/sailings"): (ADMIN,),
    ("POST", "/api/v1/exit-points/<code>/sailings"): (ADMIN,),
    ("GET", "/api/v1/intermediaries"): (ADMIN,),
    ("POST", "/api/v1/intermediaries"): (ADMIN,),
    ("GET", "/api/v1/retailers"): (ADMIN,),
    ("POST", "/api/v1/retailers"): (ADMIN,),
    ("POST", "/api/v1/users"): (ADMIN,),
    ("POST", "/api/v1/users/<int:user_id>/disable"): (ADMIN,),
    ("POST", "/api/v1/users/<int:user_id>/enable"): (ADMIN,),
    ("PUT", "/api/v1/users/<int:user_id>/password"): (ADMIN,),
    ("GET", "/api/v1/devices"): (ADMIN,),
    ("POST", "/api/v1/devices"): (ADMIN,),
    ("DELETE", "/api/v1/devices/<device_id>"): (ADMIN,),
    ("GET", "/api/v1/devices/fleet"): CUSTOMS_READ,
    ("GET", "/api/v1/devices/me"): (DEVICE,),
    ("POST", "/api/v1/devices/me/heartbeat"): (DEVICE,),
    ("POST", "/api/v1/devices/pair"): PUBLIC,
    # The shop's side of a form.
    ("POST", "/api/v1/forms"): RETAIL,
    ("POST", "/api/v1/forms/batch"): RETAIL,
    ("POST", "/api/v1/forms/<form_id>/cancel"): RETAIL,
    ("POST", "/api/v1/forms/<form_id>/refund"): RETAIL,
    ("GET", "/api/v1/webhooks"): RETAIL,
    ("POST", "/api/v1/webhooks"): RETAIL,
    ("GET", "/api/v1/webhooks/<webhook_id>"): RETAIL,
    ("DELETE", "/api/v1/webhooks/<webhook_id>"): RETAIL,
    ("GET", "/api/v1/webhooks/<webhook_id>/deliveries"): RETAIL,
    ("POST", "/api/v1/webhooks/<webhook_id>/deliveries/<int:delivery_id>/retry"): RETAIL,
    # Reading a form: its owners, and customs staff.
    ("GET", "/api/v1/forms"): RETAIL + CUSTOMS_READ,
    ("GET", "/api/v1/forms/<form_id>"): RETAIL + CUSTOMS_READ,
    ("GET", "/api/v1/forms/<form_id>/events"): RETAIL + CUSTOMS_READ,
    ("GET", "/api/v1/forms/<form_id>/qr.png"): RETAIL + CUSTOMS_READ,
    ("GET", "/api/v1/forms/<form_id>/qr.svg"): RETAIL + CUSTOMS_READ,
    # The exit point: kiosks scan, officers work the desk.
    ("POST", "/api/v1/scans"): (DEVICE,),
    ("POST", "/api/v1/scans/passport"): (DEVICE,),
    ("POST", "/api/v1/scans/refused"): (DEVICE,),
    ("GET", "/api/v1/checks"): CUSTOMS_READ,
    ("POST", "/api/v1/checks"): (OFFICER,),
    ("POST", "/api/v1/desk/travellers"): (OFFICER,),
    ("POST", "/api/v1/forms/lookup"): (OFFICER,),
    ("POST", "/api/v1/forms/<form_id>/decision"): (OFFICER,),
    ("GET", "/api/v1/duty"): (OFFICER,),
    ("POST", "/api/v1/duty"): (OFFICER,),
    ("DELETE", "/api/v1/duty"): (OFFICER,),
    # The traveller: the status page, and their app.
    ("POST", "/api/v1/status/<form_id>"): PUBLIC,
    ("POST", "/api/v1/traveller/session"): PUBLIC,
    ("GET", "/api/v1/traveller/forms"): (TRAVELLER,),
    ("POST", "/api/v1/traveller/forms/claim"): (TRAVELLER,),
    ("GET", "/api/v1/traveller/exit-points"): (TRAVELLER,),
    ("POST", "/api/v1/traveller/validations"): (TRAVELLER,),
    ("POST", "/api/v1/traveller/desk-pass"): (TRAVELLER,),
}

VALUES = {"form_id": "NL3KQ7XP9D", "device_id": "not-a-device", "webhook_id": "wh_0000", "delivery_id": "1",
          "user_id": "999999", "code": "AMS", "zone_id": "999999", "post_id": "AMS-NONE-01"}


@pytest.fixture
def everyone(world):
    """The world's users and kiosk, and a traveller signed in to the app."""
    r = world.client.post("/api/v1/traveller/session", json={
        "passport_number": "E12345678", "passport_country": "CN", "date_of_birth": "1988-03-14",
        "install_id": str(uuid.uuid4())})
    assert r.status_code == 200, r.get_json()
    world.tokens[TRAVELLER] = r.get_json()["access_token"]
    return world


def api_routes(app) -> set[tuple[str, str]]:
    return {(method, rule.rule) for rule in app.url_map.iter_rules() if rule.rule.startswith("/api/v1/")
            for method in rule.methods - {"HEAD", "OPTIONS"}}


def concrete(route: str) -> str:
    return re.sub(r"<(?:\w+:)?(\w+)>", lambda m: VALUES[m.group(1)], route)


def call(world, who: str | None, method: str, route: str):
    headers = world.auth(who) if who else {}
    kwargs = {"json": {}} if method in ("POST", "PUT", "PATCH") else {}
    if route.endswith("/status/<form_id>"):
        kwargs["json"] = {"last_name": "Chen"}
    return world.client.open(concrete(route), method=method, headers=headers, **kwargs)


def refused(response) -> bool:
    return response.status_code in (401, 403) and (response.get_json() or {}).get("code") in (
        "forbidden", "unauthorized")


def test_the_matrix_names_every_route_of_the_api(app):
    assert api_routes(app) == set(MATRIX)


@pytest.mark.parametrize("method, route", sorted(MATRIX))
def test_each_role_gets_through_exactly_where_the_matrix_says(everyone, method, route):
    allowed = MATRIX[method, route]
    seen = {}
    for who in ROLES:
        seen[who] = not refused(call(everyone, who, method, route))
    anonymous = not refused(call(everyone, None, method, route))
    if allowed == PUBLIC:
        assert anonymous and all(seen.values()), seen
    else:
        assert not anonymous
        assert {who for who, through in seen.items() if through} == set(allowed), seen


def test_no_role_s_token_scrapes_the_metrics_only_the_monitoring_token_does(everyone, app):
    """GET /metrics is outside /api/v1: it takes the monitoring system's
    token (or an allowed network), and no user's, device's or traveller's."""
    app.config["METRICS_TOKEN"] = "metrics-token-for-the-role-test"
    for who in ROLES:
        r = everyone.client.get("/metrics", headers=everyone.auth(who))
        assert (r.status_code, r.get_json()["code"]) == (401, "unauthorized"), who
    r = everyone.client.get("/metrics", headers={"Authorization": "Bearer metrics-token-for-the-role-test"})
    assert r.status_code == 200


# --- the administrator is no shop ---------------------------------------------------

def problem_of(r, status, code):
    assert r.status_code == status, r.get_json()
    assert r.get_json()["code"] == code


def test_an_administrator_cannot_issue_a_form_for_a_retailer(world):
    body = form_body(item(), invoice="ADMIN-1", retailer_vat="NL859559001B01")
    problem_of(world.post(ADMIN, "/api/v1/forms", body), 403, "forbidden")
    problem_of(world.post(ADMIN, "/api/v1/forms/batch", {"forms": [body]}), 403, "forbidden")
    assert world.get(RETAILER, "/api/v1/forms").get_json()["items"] == []


def test_an_administrator_cannot_cancel_a_shop_s_form(world):
    form = world.issue(RETAILER)
    problem_of(world.post(ADMIN, f"/api/v1/forms/{form['id']}/cancel"), 403, "forbidden")
    assert world.get(RETAILER, f"/api/v1/forms/{form['id']}").get_json()["status"] == "issued"


def test_an_administrator_cannot_record_a_refund(world):
    form = world.issue(RETAILER)
    world.scan(DEVICE, form["qr_payload"])
    problem_of(world.post(ADMIN, f"/api/v1/forms/{form['id']}/refund",
                          {"amount_cents": 1890, "paid_at": "2026-12-01T10:00:00+00:00"}), 403, "forbidden")
    assert world.get(RETAILER, f"/api/v1/forms/{form['id']}").get_json()["status"] == "validated"


def test_the_administrator_still_runs_the_system(world):
    r = world.post(ADMIN, "/api/v1/exit-points", {"code": "EIN", "name": "Eindhoven", "kind": "airport"})
    assert r.status_code == 201, r.get_json()
    r = world.post(ADMIN, "/api/v1/devices", {"name": "kiosk-ein", "kind": "kiosk", "exit_point": "EIN"})
    assert r.status_code == 201, r.get_json()
    r = world.post(ADMIN, "/api/v1/users", {"username": "officer3", "password": "long-enough-pw", "role": "officer"})
    assert r.status_code == 201, r.get_json()
    form = world.issue(RETAILER)
    assert world.get(ADMIN, f"/api/v1/forms/{form['id']}").status_code == 200
    assert world.get(ADMIN, "/api/v1/checks").status_code == 200


def test_the_services_refuse_customs_roles_the_shop_s_steps_too(app, world):
    """The portal calls the services directly: they check the role as well."""
    from api import database
    from api.models import Form
    from api.services import forms

    form = world.issue(RETAILER)
    with app.app_context():
        session = database.session()
        row = session.get(Form, form["id"])
        for role in ("admin", "officer"):
            someone = Principal("user", "1", role)
            for step in (lambda: forms.cancel(session, someone, row, row.created_at),
                         lambda: forms.resolve_retailer(session, someone, "NL859559001B01")):
                with pytest.raises(Problem) as refusal:
                    step()
                assert (refusal.value.status, refusal.value.code) == (403, "forbidden")
        session.rollback()
        assert session.get(Form, form["id"]).status == "issued"


def test_accounts_and_shops_an_administrator_adds_are_in_the_audit_trail(app, world):
    """An administrator could still make a retailer account and act as the
    shop through it: the trail says who made the account, and when."""
    from sqlalchemy import select

    from api import database
    from api.models import Event

    r = world.post(ADMIN, "/api/v1/users", {"username": "till-2", "password": "long-enough-pw",
                                            "role": "retailer", "retailer_id": world.ids["shop"]})
    assert r.status_code == 201, r.get_json()
    with app.app_context():
        rows = database.session().execute(select(Event.type, Event.actor, Event.data).where(
            Event.type.in_(("user.created", "retailer.created", "intermediary.created", "exit_point.created")))
            .order_by(Event.id)).all()
    admin = rows[0].actor
    assert admin.startswith("user:") and {r.actor for r in rows} == {admin}
    assert [r.type for r in rows].count("exit_point.created") == 2
    assert rows[-1].type == "user.created"
    assert rows[-1].data == {"user": "till-2", "user_id": r.get_json()["id"], "role": "retailer",
                             "retailer": world.ids["shop"], "intermediary": None}
    assert {"intermediary": world.ids["intermediary"], "fee_bp": 1000} in [r.data for r in rows]


def test_where_the_app_may_validate_changes_only_with_an_entry_in_the_audit_trail(app, app_world):
    """A zone drawn over the wrong place, or a post's secret in the wrong
    hands, lets phones validate from there: each change names who made it."""
    from sqlalchemy import select

    from api import database
    from api.models import Event

    zone = app_world.admin("/api/v1/exit-points/AMS/zones", {"name": "Pier G", "polygon": AMS_ZONE})
    assert app_world.world.client.delete(f"/api/v1/exit-points/AMS/zones/{zone['id']}",
                                         headers=app_world.auth(ADMIN)).status_code == 204
    assert app_world.world.client.delete("/api/v1/exit-points/AMS/sensor-posts/AMS-D2-01",
                                         headers=app_world.auth(ADMIN)).status_code == 200
    with app.app_context():
        rows = database.session().execute(select(Event.type, Event.actor, Event.exit_point, Event.data).where(
            Event.type.like("zone.%") | Event.type.like("sensor_post.%")).order_by(Event.id)).all()
    admin = {r.actor for r in rows}
    assert len(admin) == 1 and admin.pop().startswith("user:")
    assert [(r.type, r.exit_point) for r in rows] == [
        ("zone.added", "AMS"), ("zone.added", "RTM"), ("sensor_post.added", "AMS"), ("sensor_post.added", "RTM"),
        ("zone.added", "AMS"), ("zone.removed", "AMS"), ("sensor_post.retired", "AMS")]
    assert rows[4].data == {"zone": zone["id"], "name": "Pier G", "polygon": AMS_ZONE}
    assert rows[-1].data == {"sensor_post": "AMS-D2-01"}
