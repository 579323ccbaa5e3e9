"""Customs' risk rules are customs' own: a shop (retailer or intermediary)
whose form is sent to the desk learns that a check is required and where,
never why (which rules fired, thresholds, watch lists, the random sample),
and never which officer decided. Every way a shop reads a form is tried:
its audit trail, the form, the change feed, webhook bodies, the traveller's
status; customs staff still read the trail as written."""
from __future__ import annotations

import json

import pytest

from shared import risk
from tests.api.traveller_support import app_world, coat  # noqa: F401
from tests.builders import item, traveller

# A watched watch over the high-value threshold, from a shop on the watch
# list, bought by a traveller on the watch list, picked by the random check.
WATCH = item(125000, category="watches", description="Chronograph", serial_number="SN-10077")
RULES = ["high_value", "watched_category", "random_sample", "retailer_watchlist", "traveller_watchlist"]


@pytest.fixture
def watchful(app, world):
    """A risk policy under which every rule fires for the shop's form."""
    form = world.issue("shop", WATCH, traveller=traveller(passport_number="W1234567"))
    with app.app_context():
        from api import database
        from api.models import Form

        key = database.session().get(Form, form["id"]).passport_key
    app.config["RISK"] = risk.policy_from_dict({
        "sample_rate": 1.0, "retailer_watchlist": ["NL859559001B01"],
        "traveller_watchlist": [key], "high_value_cents": 100000,
    })
    app.config["WEBHOOKS_ALLOW_PRIVATE"] = True
    hooks = {}
    for who in ("shop", "refunds"):
        r = world.post(who, "/api/v1/webhooks", {"url": "http://127.0.0.1:9/hook",
                                                 "events": ["form.check_required", "form.validated"]})
        assert r.status_code == 201, r.get_json()
        hooks[who] = r.get_json()["id"]
    scanned = world.scan("kiosk", form["qr_payload"]).get_json()
    assert scanned["verdict"] == "check_required"
    return form, hooks


def fired_rules(world, form_id) -> list[dict]:
    [check] = [c for c in world.get("officer", "/api/v1/checks?exit_point=AMS").get_json()["items"]
               if c["form_id"] == form_id]
    return check["fired_rules"]


def why(rules: list[dict]) -> list[str]:
    """Every string that would tell a shop why customs checked the form."""
    found = []
    for rule in rules:
        found += [rule["code"], rule["detail"]]
    return found + ["fired_rules", "watchlist", "watch list", "1,000.00", "random"]


def leaks(text: str, secrets: list[str]) -> list[str]:
    lowered = text.lower()
    return [s for s in secrets if s.lower() in lowered]


def test_customs_see_why_the_form_was_sent_to_the_desk(world, watchful):
    form, _ = watchful
    rules = fired_rules(world, form["id"])
    assert [r["code"] for r in rules] == RULES
    trail = world.get("officer", f"/api/v1/forms/{form['id']}/events").get_json()["items"]
    [check_required] = [e for e in trail if e["type"] == "form.check_required"]
    assert check_required["data"] == {"fired_rules": rules, "channel": "kiosk"}
    assert check_required["actor"] == f"device:{world.ids['kiosk']}"
    admin = world.get("root", f"/api/v1/forms/{form['id']}/events").get_json()["items"]
    assert admin == trail


@pytest.mark.parametrize("who", ["shop", "refunds"])
def test_a_shop_reading_the_trail_learns_a_check_is_required_at_ams_and_nothing_about_why(world, watchful, who):
    form, _ = watchful
    secrets = why(fired_rules(world, form["id"]))

    r = world.get(who, f"/api/v1/forms/{form['id']}/events")

    assert r.status_code == 200
    trail = r.get_json()["items"]
    [check_required] = [e for e in trail if e["type"] == "form.check_required"]
    assert (check_required["exit_point"], check_required["actor"], check_required["data"]) == ("AMS", "kiosk", {})
    assert leaks(r.get_data(as_text=True), secrets) == []
    assert world.ids["kiosk"] not in r.get_data(as_text=True)


@pytest.mark.parametrize("who", ["shop", "refunds"])
def test_nothing_else_a_shop_reads_says_why_either(world, watchful, who):
    form, hooks = watchful
    secrets = why(fired_rules(world, form["id"]))
    texts = {
        "form": world.get(who, f"/api/v1/forms/{form['id']}").get_data(as_text=True),
        "change feed": world.get(who, "/api/v1/forms").get_data(as_text=True),
        "deliveries": world.get(who, f"/api/v1/webhooks/{hooks[who]}/deliveries").get_data(as_text=True),
        "status": world.client.post(f"/api/v1/status/{form['id']}", json={"last_name": "Chen"}).get_data(as_text=True),
    }
    [delivery] = json.loads(texts["deliveries"])["items"]
    assert (delivery["event_type"], delivery["payload"]["data"]["exit_point"]) == ("form.check_required", "AMS")
    assert json.loads(texts["form"])["status"] == "check_required"
    assert {name: leaks(text, secrets) for name, text in texts.items()} == {name: [] for name in texts}


def test_a_shop_sees_customs_decided_not_which_officer(world, watchful):
    form, hooks = watchful
    r = world.post("officer", f"/api/v1/forms/{form['id']}/decision",
                   {"outcome": "validated", "note": "Serial number checked against the form"})
    assert r.status_code == 200, r.get_json()
    officer = world.get("officer", f"/api/v1/forms/{form['id']}/events").get_json()["items"][-1]
    assert officer["actor"].startswith("user:")

    for who in ("shop", "refunds"):
        text = world.get(who, f"/api/v1/forms/{form['id']}/events").get_data(as_text=True)
        decision = json.loads(text)["items"][-1]
        assert (decision["type"], decision["actor"], decision["exit_point"]) == ("form.validated", "customs", "AMS")
        assert officer["actor"] not in text and "duty" not in text and "has_note" not in text
        deliveries = world.get(who, f"/api/v1/webhooks/{hooks[who]}/deliveries").get_data(as_text=True)
        assert officer["actor"] not in deliveries and "Serial number checked" not in deliveries


def test_a_shop_sees_its_own_people_by_name_in_the_trail(world):
    form = world.issue("shop")
    assert world.post("refunds", f"/api/v1/forms/{form['id']}/cancel").status_code == 200
    trail = world.get("shop", f"/api/v1/forms/{form['id']}/events").get_json()["items"]
    refunds = world.get("officer", f"/api/v1/forms/{form['id']}/events").get_json()["items"][-1]["actor"]
    assert [(e["type"], e["actor"]) for e in trail][-1] == ("form.cancelled", refunds)
    assert refunds.startswith("user:")


# --- the traveller's app --------------------------------------------------------------

def test_a_shop_learns_its_traveller_validated_in_the_app_and_nothing_of_the_phone(app_world):
    form = app_world.issue_for(coat())
    phone = app_world.phone().signed_in()
    assert phone.verdicts([form["id"]])["items"][0]["verdict"] == "validated"
    customs = app_world.events(form["id"])
    traveller_actor = customs[1]["actor"]
    assert traveller_actor.startswith("traveller:")

    for who in ("shop", "refunds"):
        r = app_world.get(who, f"/api/v1/forms/{form['id']}/events")
        trail = r.get_json()["items"]
        assert [(e["type"], e["actor"], e["data"]) for e in trail[1:]] == [
            ("form.validated", "traveller", {"by": "scan", "channel": "app"}),
            ("form.scanned", "traveller", {"verdict": "validated", "reason_code": None, "channel": "app"}),
        ]
        assert traveller_actor not in r.get_data(as_text=True)
        assert phone.install_id not in r.get_data(as_text=True)


def test_the_app_s_evidence_and_risk_rules_stay_with_customs(app_world):
    form = app_world.issue_for(coat())
    phone = app_world.phone().signed_in()
    # A sensor post's token of three steps ago: the app's rule sends the traveller to the desk.
    evidence = phone.evidence(beacons=[phone.beacon(steps_ago=3)])
    assert phone.verdicts([form["id"]], evidence=evidence)["items"][0]["verdict"] == "check_required"
    [rule] = app_world.check(form["id"])["fired_rules"]
    assert rule["code"] == "app_no_fresh_beacon"
    secrets = [rule["code"], rule["detail"], "AMS-D2-01", "fired_rules", "channel", phone.install_id]

    for who in ("shop", "refunds"):
        r = app_world.get(who, f"/api/v1/forms/{form['id']}/events")
        trail = r.get_json()["items"]
        assert [(e["type"], e["actor"], e["exit_point"], e["data"]) for e in trail[1:]] == [
            ("form.check_required", "traveller", "AMS", {}),
            ("form.scanned", "traveller", "AMS", {"verdict": "check_required", "reason_code": "selected_for_check"}),
        ]
        assert leaks(r.get_data(as_text=True), secrets) == []


def test_a_shop_does_not_learn_where_the_phone_was_when_the_app_refused(app_world):
    form = app_world.issue_for(coat())
    phone = app_world.phone().signed_in()
    # At home: nothing places the phone at the exit point.
    evidence = phone.evidence(beacons=[], gps=phone.gps((52.3676, 4.9041)))
    assert phone.verdicts([form["id"]], evidence=evidence)["items"][0]["reason_code"] == "not_at_exit_point"
    assert app_world.events(form["id"])[-1]["data"]["reason_code"] == "not_at_exit_point"

    r = app_world.get("shop", f"/api/v1/forms/{form['id']}/events")
    scanned = r.get_json()["items"][-1]
    assert (scanned["type"], scanned["actor"], scanned["data"]) == (
        "form.scanned", "traveller", {"verdict": "refused", "reason_code": None})
    assert "not_at_exit_point" not in r.get_data(as_text=True)
