"""The traveller's app from the shop's till to the shop's webhook: the shop
issues a coat and a watch, the traveller validates on their phone at
Schiphol (the coat validated, the watch to the desk with a desk pass), the
officer scans the desk pass, finds the watch and validates it; the shop
hears of both exactly once. Then the desk's own side: a traveller who came
straight to the desk."""
from __future__ import annotations

from collections import Counter
from datetime import datetime, timezone

from tests.api.test_webhooks import Clock, Receiver, register, run_worker, verified
from tests.api.traveller_support import app_world, coat, watch  # noqa: F401


def test_shop_to_phone_to_desk_to_webhook(app_world, app):
    app.config["WEBHOOKS_ALLOW_PRIVATE"] = True  # the receiver listens on 127.0.0.1
    with Receiver() as receiver:
        hook = register(app_world.world, "shop", receiver.url(),
                        events=["form.validated", "form.check_required"])
        coat_form = app_world.issue_for(coat())
        watch_form = app_world.issue_for(watch())

        phone = app_world.phone().signed_in()
        listed = {f["id"]: f for f in phone.forms()}
        assert set(listed) == {coat_form["id"], watch_form["id"]}
        assert all(f["status"] == "issued" for f in listed.values())

        verdicts = phone.verdicts([coat_form["id"], watch_form["id"]])
        by_form = {i["form_id"]: i for i in verdicts["items"]}
        assert by_form[coat_form["id"]]["verdict"] == "validated"
        assert by_form[watch_form["id"]]["verdict"] == "check_required"
        assert by_form[watch_form["id"]]["desk_location"] == "Departures 2"
        desk_pass = verdicts["desk_pass"]
        assert desk_pass

        # At the desk: the officer scans the pass and sees the watch with why it is there.
        r = app_world.post("officer", "/api/v1/desk/travellers", {"desk_pass": desk_pass})
        assert r.status_code == 200, r.get_json()
        found = r.get_json()["items"]
        assert [f["id"] for f in found] == [watch_form["id"], coat_form["id"]]  # waiting checks first
        waiting = found[0]
        assert waiting["status"] == "check_required"
        assert waiting["traveller"]["passport_number"] == "E12345678"  # the officer holds the passport
        assert waiting["check"]["exit_point"] == "AMS" and waiting["check"]["status"] == "pending"
        assert [r["code"] for r in waiting["check"]["fired_rules"]] == ["high_value", "watched_category"]
        assert found[1]["check"] is None

        r = app_world.post("officer", f"/api/v1/forms/{watch_form['id']}/decision",
                           {"outcome": "validated", "lines": [{"line": 1, "present": True}]})
        assert r.status_code == 200 and r.get_json()["status"] == "validated"
        assert {f["id"]: f["status"] for f in phone.forms()} == {
            coat_form["id"]: "validated", watch_form["id"]: "validated"}

        clock = Clock(datetime.now(timezone.utc))
        run_worker(app, clock)
        run_worker(app, clock)  # a second run sends nothing again
        received = [verified(hook["secret"], request) for request in receiver.requests]

    seen = Counter((event["type"], event["data"]["form_id"]) for event in received)
    assert seen == Counter({
        ("form.validated", coat_form["id"]): 1,
        ("form.check_required", watch_form["id"]): 1,
        ("form.validated", watch_form["id"]): 1,
    })
    assert len({request["id"] for request in receiver.requests}) == len(receiver.requests) == 3
    assert "E12345678" not in str(received)


def test_a_desk_pass_opens_nothing_once_expired_or_altered(app_world, app):
    form = app_world.issue_for(watch())
    phone = app_world.phone().signed_in()
    desk_pass = phone.verdicts([form["id"]])["desk_pass"]
    head, payload, signature = desk_pass.split(".")
    altered = f"{head}.{payload[:-2]}{'AB' if payload[-2:] != 'AB' else 'CD'}.{signature}"
    r = app_world.post("officer", "/api/v1/desk/travellers", {"desk_pass": altered})
    assert (r.status_code, r.get_json()["code"]) == (422, "invalid_desk_pass")
    # Shops and kiosks cannot use a desk pass at all.
    assert app_world.post("shop", "/api/v1/desk/travellers", {"desk_pass": desk_pass}).status_code == 403
    assert app_world.post("kiosk", "/api/v1/desk/travellers", {"desk_pass": desk_pass}).status_code == 403
    app.config["DESK_PASS_TTL"] = -1
    expired = phone.post("/api/v1/traveller/desk-pass").get_json()["desk_pass"]
    r = app_world.post("officer", "/api/v1/desk/travellers", {"desk_pass": expired})
    assert (r.status_code, r.get_json()["code"]) == (422, "desk_pass_expired")


def test_a_desk_pass_the_desk_has_read_is_still_no_access_token(app_world):
    form = app_world.issue_for(watch())
    desk_pass = app_world.phone().signed_in().verdicts([form["id"]])["desk_pass"]
    assert app_world.post("officer", "/api/v1/desk/travellers", {"desk_pass": desk_pass}).status_code == 200
    # The API verified it once, as a desk pass: that says nothing of it as
    # anything else.
    r = app_world.world.client.get("/api/v1/forms", headers={"Authorization": f"Bearer {desk_pass}"})
    assert (r.status_code, r.get_json()["detail"]) == (401, "The access token is not valid.")


def test_a_traveller_who_came_straight_to_the_desk(app_world):
    form = app_world.issue_for(coat())

    r = app_world.post("officer", "/api/v1/checks", {"form_id": form["id"].lower()},
                       headers={"Idempotency-Key": "walk-in-1"})
    assert r.status_code == 201, r.get_json()
    check = r.get_json()
    assert (check["form_id"], check["exit_point"], check["status"]) == (form["id"], "AMS", "pending")
    assert [rule["code"] for rule in check["fired_rules"]] == ["desk_walk_in"]
    assert check["line_count"] == 1
    # Again: the same check, not a second one.
    again = app_world.post("officer", "/api/v1/checks", {"form_id": form["id"]})
    assert again.status_code == 200 and again.get_json()["id"] == check["id"]

    events = app_world.events(form["id"])
    assert events[-1]["type"] == "form.check_required" and events[-1]["data"]["channel"] == "desk"
    r = app_world.post("officer", f"/api/v1/forms/{form['id']}/decision",
                       {"outcome": "validated", "lines": [{"line": 1, "present": True}]})
    assert r.get_json()["status"] == "validated"
    # A decided form cannot be opened again; shops cannot open checks.
    r = app_world.post("officer", "/api/v1/checks", {"form_id": form["id"]})
    assert (r.status_code, r.get_json()["code"]) == (409, "form_not_open")
    other = app_world.issue_for(coat())
    assert app_world.post("shop", "/api/v1/checks", {"form_id": other["id"]}).status_code == 403
    # The desk is where the officer is on duty, not a field of the request.
    r = app_world.post("officer", "/api/v1/checks", {"form_id": other["id"], "exit_point": "RTM"})
    assert (r.status_code, r.get_json()["code"]) == (422, "invalid_request")
