"""flask --app api purge-personal-data: a while after a form's final status
the traveller's personal data goes, everywhere in the database, and the
anonymous figures stay as they were."""
from __future__ import annotations

import json
from collections import Counter
from datetime import date, timedelta

import jsonschema_rs
import pytest
from sqlalchemy import create_engine, func, inspect, select, text, update

from api import database
from api.models import Form, IdempotencyRecord, PortalSession, RateLimit, utcnow
from api.services import retention
from tests.builders import form_body, item, traveller
from tests.portal.portal_support import portal_login

STATUSES = ("issued", "check_required", "validated", "partially_validated", "rejected", "cancelled",
            "expired", "refunded")
FINAL = {"validated", "partially_validated", "rejected", "cancelled", "expired", "refunded"}
WATCH = item(60500, category="watches", description="Diver watch", serial_number="SN-77")
COAT = item(24900, description="Wool coat")


def person(age: str, status: str, n: int) -> dict:
    """A traveller of their own, with values found nowhere else."""
    name = status.replace("_", "").capitalize()
    return traveller(first_name=f"{age.capitalize()}{name}", last_name=f"Tr{age}{name}",
                     passport_number=f"{age[0].upper()}{n:08d}", date_of_birth=f"19{50 + n}-0{1 + n % 9}-1{n % 10}",
                     email=f"{age}.{name.lower()}@example.org", passport_country="CN", nationality="CN",
                     residence_country=("CN", "US", "JP")[n % 3])


def form_in(world, status: str, who: dict, key: str) -> dict:
    """A form brought to ``status`` through the API, its writes sent with
    Idempotency-Keys (whose stored responses hold the traveller's data)."""
    goods = [WATCH, COAT] if status in ("check_required", "partially_validated", "rejected") else [COAT]
    r = world.post("shop", "/api/v1/forms", form_body(*goods, invoice=f"INV-{key}", traveller=who),
                   headers={"Idempotency-Key": key})
    assert r.status_code == 201, r.get_json()
    form = r.get_json()
    if status in ("check_required", "partially_validated", "rejected", "validated", "refunded"):
        assert world.scan("kiosk", form["qr_payload"]).status_code == 200
    decision = {
        "partially_validated": {"outcome": "partially_validated",
                                "lines": [{"line": 1, "present": False}, {"line": 2, "present": True}]},
        "rejected": {"outcome": "rejected", "reason_code": "other",
                     "note": f"{who['first_name']} {who['last_name']} could not show the watch"},
    }.get(status)
    if decision:
        r = world.post("officer", f"/api/v1/forms/{form['id']}/decision", decision,
                       headers={"Idempotency-Key": f"{key}-decision"})
        assert r.status_code == 200, r.get_json()
    if status == "refunded":
        r = world.post("shop", f"/api/v1/forms/{form['id']}/refund",
                       {"amount_cents": 3000, "paid_at": utcnow().isoformat()})
        assert r.status_code == 200, r.get_json()
    if status == "cancelled":
        assert world.post("shop", f"/api/v1/forms/{form['id']}/cancel").status_code == 200
    return form


def expire(app, runner, form_ids):
    with app.app_context():
        session = database.session()
        session.execute(update(Form).where(Form.id.in_(form_ids)).values(export_deadline=date.today() - timedelta(days=1)))
        session.commit()
    result = runner.invoke(args=["expire-forms"])
    assert result.exit_code == 0 and f"{len(form_ids)} form(s) expired" in result.output, result.output


def age(app, form_ids, days: int, key_prefix: str | None = None):
    """Make the forms' last status change (and their stored responses) ``days`` old."""
    then = utcnow() - timedelta(days=days)
    with app.app_context():
        session = database.session()
        session.execute(update(Form).where(Form.id.in_(form_ids))
                        .values(updated_at=then, created_at=then - timedelta(days=30)))
        if key_prefix:
            session.execute(update(IdempotencyRecord).where(IdempotencyRecord.key.startswith(key_prefix))
                            .values(created_at=then - timedelta(days=30)))
        session.commit()


def purge(runner, *args) -> str:
    result = runner.invoke(args=["purge-personal-data", *args])
    assert result.exit_code == 0, result.output
    return result.output


def everything_stored(app) -> str:
    """Every value of every column of every table, as text."""
    engine = create_engine(app.config["DATABASE_URL"])
    try:
        with engine.connect() as conn:
            lines = []
            for table in inspect(conn).get_table_names():
                for row in conn.execute(text(f"SELECT * FROM {table}")):
                    lines.append(" | ".join(json.dumps(v, default=str) if isinstance(v, (dict, list)) else str(v)
                                            for v in row))
            return "\n".join(lines)
    finally:
        engine.dispose()


def secrets_of(who: dict, passport_key: str) -> list[str]:
    return [who["first_name"], who["last_name"], who["passport_number"], who["date_of_birth"], who["email"],
            passport_key]


def figures_of(world) -> dict:
    """The anonymous figures: forms by status and by country of residence,
    amounts, scans and decisions, as officers and retailers read them."""
    forms, cursor = [], None
    while True:
        page = world.get("officer", "/api/v1/forms", query_string={"limit": 200, **({"cursor": cursor} if cursor else {})})
        forms += page.get_json()["items"]
        cursor = page.get_json()["next_cursor"]
        if cursor is None:
            break
    full = [world.get("officer", f"/api/v1/forms/{f['id']}").get_json() for f in forms]
    decided = world.get("officer", "/api/v1/checks", query_string={"status": "decided", "limit": 200}).get_json()
    return {
        "by_status": Counter(f["status"] for f in full),
        "by_residence": Counter(f["traveller"]["residence_country"] for f in full),
        "by_nationality": Counter(f["traveller"]["nationality"] for f in full),
        "amounts": sorted((f["id"], f["total_cents"], f["vat_cents"], f["refund_cents"], f["validated_total_cents"],
                           f["refunded_cents"], f["exit_point"], f["purchase_date"]) for f in full),
        "lines": sorted((f["id"], i["line"], i["description"], i["serial_number"], i["present"])
                        for f in full for i in f["items"]),
        "decisions": sorted((c["form_id"], c["outcome"], c["decided_at"]) for c in decided["items"]),
    }


# --- the whole story -------------------------------------------------------------

def test_old_final_forms_lose_the_traveller_and_nothing_else(app, world, runner, client, figures):
    app.config["WEBHOOKS_ALLOW_PRIVATE"] = True
    hook = world.post("shop", "/api/v1/webhooks", {"url": "http://127.0.0.1:9/hook", "events": ["form.validated"]})
    assert hook.status_code == 201
    people, made = {}, {}
    for n, status in enumerate(STATUSES):
        for when in ("old", "recent"):
            people[when, status] = person(when, status, n if when == "old" else n + 20)
            made[when, status] = form_in(world, status, people[when, status], f"{when}-{status}")
    expire(app, runner, [made[when, "expired"]["id"] for when in ("old", "recent")])
    age(app, [made["old", s]["id"] for s in STATUSES], 400, key_prefix="old-")
    with app.app_context():
        keys = dict(database.session().execute(select(Form.id, Form.passport_key)).all())
    before = figures_of(world)
    stored = everything_stored(app)
    assert all(people[k]["last_name"] in stored for k in people)
    # Passport numbers are encrypted wherever they are kept (the forms, the
    # stored responses of idempotent requests).
    assert not any(people[k]["passport_number"] in stored for k in people)

    output = purge(runner, "--older-than-days", "30", "--batch", "4")

    gone = {k for k in made if k[0] == "old" and k[1] in FINAL}
    assert output.startswith(f"{len(gone)} form(s) had their personal data removed "
                             f"(final status more than 30 day(s) ago) in 2 batch(es)")
    # Each form, as the API shows it.
    spec = client.get("/openapi.json").get_json()
    form_schema = jsonschema_rs.validator_for({"$ref": "#/components/schemas/Form", "components": spec["components"]})
    for k, form in made.items():
        shown = world.get("officer", f"/api/v1/forms/{form['id']}").get_json()
        form_schema.validate(shown)
        t = shown["traveller"]
        assert shown["status"] == k[1]
        if k in gone:
            assert (t["first_name"], t["last_name"], t["passport_number"], t["date_of_birth"], t["email"]) == (None,) * 5
            assert shown["personal_data_removed_at"] is not None
            assert (t["passport_country"], t["residence_country"]) == ("CN", people[k]["residence_country"])
            assert [e["type"] for e in world.get("shop", f"/api/v1/forms/{form['id']}/events").get_json()["items"]
                    ][-1] == "form.personal_data_removed"
        else:
            assert (t["last_name"], t["passport_number"], shown["personal_data_removed_at"]) == (
                people[k]["last_name"], people[k]["passport_number"], None)
    assert figures_of(world) == before

    # Nowhere in the database any more, while the others' data is all there.
    stored = everything_stored(app)
    found = [(k, value) for k in gone for value in secrets_of(people[k], keys[made[k]["id"]]) if value in stored]
    assert found == []
    for k in set(made) - gone:
        assert all(value in stored for value in (people[k]["first_name"], people[k]["last_name"],
                                                 keys[made[k]["id"]])), k
    figures(forms=len(made), removed=len(gone), kept=len(made) - len(gone),
            personal_values_left=len(found), figures_changed=int(figures_of(world) != before))


def test_a_removed_traveller_is_found_by_no_lookup(app, world, runner):
    old = person("old", "cancelled", 1)
    form = form_in(world, "cancelled", old, "old-1")
    twin = world.issue("shop", traveller=old)  # the same passport, still in use
    age(app, [form["id"]], 400)

    purge(runner, "--older-than-days", "30")

    lookup = {"passport_number": old["passport_number"], "passport_country": "CN"}
    found = world.post("officer", "/api/v1/forms/lookup", lookup).get_json()["items"]
    assert [f["id"] for f in found] == [twin["id"]]
    status = world.client.post(f"/api/v1/status/{form['id']}", json={"last_name": old["last_name"]})
    assert status.status_code == 404
    listed = {f["id"]: f for f in world.get("shop", "/api/v1/forms").get_json()["items"]}
    assert (listed[form["id"]]["traveller_name"], listed[form["id"]]["passport_number"]) == (None, None)
    assert listed[form["id"]]["personal_data_removed_at"] is not None
    assert listed[twin["id"]]["traveller_name"] == f"{old['first_name']} {old['last_name']}"


def test_the_pages_say_removed(app, world, runner, client):
    old = person("old", "rejected", 2)
    form = form_in(world, "rejected", old, "old-2")
    age(app, [form["id"]], 400)
    purge(runner, "--older-than-days", "30")
    assert portal_login(client, "shop").status_code == 302

    detail = client.get(f"/portal/forms/{form['id']}").get_data(as_text=True)
    listing = client.get("/portal/forms").get_data(as_text=True)
    printed = client.get(f"/portal/forms/{form['id']}/print").get_data(as_text=True)
    export = client.get("/portal/forms.csv").get_data().decode("utf-8-sig")

    assert "Removed on" in detail and "personal data removed after the retention period" in detail
    assert "Removed" in listing and "Personal data removed" in printed
    for page in (detail, listing, printed, export):
        assert old["last_name"] not in page and "None" not in page
    header, row = export.splitlines()[:2]
    assert header.endswith(",personal_data_removed_at") and row.split(",")[-1].startswith(str(date.today().year))


def test_rerunning_changes_nothing_and_the_trail_still_verifies(app, world, runner, figures):
    forms = [form_in(world, "refunded", person("old", "refunded", n), f"old-{n}") for n in range(3)]
    age(app, [f["id"] for f in forms], 400, key_prefix="old-")
    first = purge(runner, "--older-than-days", "30")
    after_first = everything_stored(app)

    app.config["PERSONAL_DATA_RETENTION_DAYS"] = 30  # the default when no option is given
    second = purge(runner)

    assert first.startswith("3 form(s)") and "deleted 3 stored Idempotency-Key response(s)" in first
    assert second.startswith("0 form(s)") and "deleted 0 stored" in second
    assert everything_stored(app) == after_first
    verified = runner.invoke(args=["verify-audit"])
    assert verified.exit_code == 0 and verified.output.startswith("audit trail intact"), verified.output
    figures(forms=3, removed_first_run=3, removed_second_run=0)


def test_an_interrupted_run_finishes_on_the_next_without_doing_a_form_twice(app, world, runner, monkeypatch, figures):
    forms = [form_in(world, "cancelled", person("old", "cancelled", n), f"old-{n}") for n in range(5)]
    age(app, [f["id"] for f in forms], 400)
    recorded = []
    real_record = retention.audit.record

    def interrupted(session, form_id, *args, **kwargs):
        if len(recorded) == 3:
            raise KeyboardInterrupt  # Ctrl+C in the middle of the second batch
        recorded.append(form_id)
        return real_record(session, form_id, *args, **kwargs)

    monkeypatch.setattr(retention.audit, "record", interrupted)
    with app.app_context(), pytest.raises(KeyboardInterrupt):
        retention.purge(database.session(), utcnow(), 30, batch=2)
    monkeypatch.undo()
    with app.app_context():
        done_first = database.session().scalar(
            select(func.count()).select_from(Form).where(Form.personal_data_removed_at.is_not(None)))

    second = purge(runner, "--older-than-days", "30", "--batch", "2")

    events = Counter()
    for form in forms:
        items = world.get("shop", f"/api/v1/forms/{form['id']}/events").get_json()["items"]
        events[form["id"]] = sum(e["type"] == "form.personal_data_removed" for e in items)
    assert done_first == 2 and second.startswith("3 form(s)")
    assert set(events.values()) == {1}
    figures(forms=5, removed_before_interruption=done_first, removed_on_rerun=3,
            duplicated_events=sum(v - 1 for v in events.values()))


def test_expired_forms_keep_their_data_while_an_offline_scan_may_still_come(app, world, runner):
    expired = form_in(world, "expired", person("old", "expired", 1), "old-e")
    cancelled = form_in(world, "cancelled", person("old", "cancelled", 2), "old-c")
    expire(app, runner, [expired["id"]])
    age(app, [expired["id"], cancelled["id"]], 10)

    assert purge(runner, "--older-than-days", "5").startswith("1 form(s)")
    assert world.get("shop", f"/api/v1/forms/{expired['id']}").get_json()["personal_data_removed_at"] is None
    assert world.get("shop", f"/api/v1/forms/{cancelled['id']}").get_json()["personal_data_removed_at"] is not None

    age(app, [expired["id"]], 15)  # past the 14 days an offline kiosk may date a scan back
    assert purge(runner, "--older-than-days", "5").startswith("1 form(s)")


def test_ended_browser_sessions_and_old_rate_limit_counters_go(app, world, runner, client):
    assert portal_login(client, "shop").status_code == 302
    with app.app_context():
        session = database.session()
        live = set(session.scalars(select(PortalSession.id)))
        session.add(PortalSession(id="0" * 64, user_id=None, data={}, expires_at=utcnow() - timedelta(hours=1)))
        session.add(RateLimit(key="status-ip:192.0.2.7", window_start=int(utcnow().timestamp()) - 3 * 86400, hits=3))
        session.commit()

    output = purge(runner, "--older-than-days", "30")

    assert "1 ended browser session(s) and 1 old rate-limit counter(s)" in output
    with app.app_context():
        session = database.session()
        assert set(session.scalars(select(PortalSession.id))) == live
        keys = session.scalars(select(RateLimit.key)).all()
        assert "status-ip:192.0.2.7" not in keys and any(k.startswith("login-") for k in keys)
