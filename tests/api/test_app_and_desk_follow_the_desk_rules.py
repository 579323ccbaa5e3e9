"""The traveller's app and the desk's own ways of opening a check follow
the desk's rules as a kiosk's check does: a check opened at the desk is
opened where the officer is on duty, never at an exit point the request
names; an officer on duty nowhere neither reads a traveller's desk pass
nor opens a check; a check the app opened follows the traveller to the
desk they are sent to and expires after the deadline's grace period."""
from __future__ import annotations

from datetime import timedelta

from tests.api.test_desk_deadline import ended_deadline, expire, set_clock, validate_at
from tests.api.traveller_support import RTM_ZONE, app_world, coat, watch  # noqa: F401

IN_RTM = (51.9510, 4.1360)


def problem_of(r, status, code) -> dict:
    assert r.status_code == status, r.get_json()
    assert r.mimetype == "application/problem+json"
    assert r.get_json()["code"] == code
    return r.get_json()


def open_check(w, form_id, who="officer", key=None):
    headers = {"Idempotency-Key": key} if key else {}
    return w.post(who, "/api/v1/checks", {"form_id": form_id}, headers=headers)


def queue(w, exit_point) -> list[str]:
    return [c["form_id"] for c in w.get("officer", f"/api/v1/checks?exit_point={exit_point}").get_json()["items"]]


def moves(w, form_id) -> list[tuple]:
    return [(e["data"]["from_exit_point"], e["exit_point"], e["actor"].split(":")[0])
            for e in w.events(form_id) if e["type"] == "form.check_moved"]


def at_rotterdam(phone) -> dict:
    return phone.evidence(gps=phone.gps(IN_RTM), beacons=[phone.beacon("RTM-T1-01")])


def test_an_officer_on_duty_nowhere_neither_reads_a_desk_pass_nor_opens_a_check(app_world):
    form = app_world.issue_for(coat())
    desk_pass = app_world.phone().signed_in().post("/api/v1/traveller/desk-pass").get_json()["desk_pass"]
    assert app_world.client.delete("/api/v1/duty", headers=app_world.auth("officer")).status_code == 204

    read = app_world.post("officer", "/api/v1/desk/travellers", {"desk_pass": desk_pass})
    opened = open_check(app_world, form["id"])

    assert "sign on" in problem_of(read, 403, "not_on_duty")["detail"]
    problem_of(opened, 403, "not_on_duty")
    assert app_world.status(form["id"]) == "issued"
    # Signed on again, the same requests go through.
    app_world.sign_on("officer", "AMS")
    assert app_world.post("officer", "/api/v1/desk/travellers", {"desk_pass": desk_pass}).status_code == 200
    assert open_check(app_world, form["id"]).status_code == 201


def test_the_check_opens_at_the_desk_the_officer_is_on_duty_at(app_world):
    form = app_world.issue_for(coat())
    app_world.sign_on("officer2", "RTM")

    r = open_check(app_world, form["id"], who="officer2", key="walk-in-rtm")

    assert r.status_code == 201, r.get_json()
    assert r.get_json()["exit_point"] == "RTM"
    assert queue(app_world, "RTM") == [form["id"]] and queue(app_world, "AMS") == []
    check_required = [e for e in app_world.events(form["id"]) if e["type"] == "form.check_required"]
    assert [(e["exit_point"], e["data"]["channel"]) for e in check_required] == [("RTM", "desk")]
    # Schiphol's officer cannot decide it; Rotterdam's can.
    problem_of(app_world.post("officer", f"/api/v1/forms/{form['id']}/decision", {"outcome": "validated"}),
               403, "not_on_duty_here")
    decided = app_world.post("officer2", f"/api/v1/forms/{form['id']}/decision", {"outcome": "validated"})
    assert (decided.status_code, decided.get_json()["exit_point"]) == (200, "RTM")


def test_a_check_waiting_at_another_desk_moves_to_the_officer_s(app_world):
    form = app_world.issue_for(watch())
    assert app_world.scan("kiosk", form["qr_payload"]).get_json()["verdict"] == "check_required"
    app_world.sign_on("officer2", "RTM")

    r = open_check(app_world, form["id"], who="officer2")

    assert r.status_code == 200, r.get_json()
    assert (r.get_json()["exit_point"], r.get_json()["status"]) == ("RTM", "pending")
    assert queue(app_world, "RTM") == [form["id"]] and queue(app_world, "AMS") == []
    assert moves(app_world, form["id"]) == [("AMS", "RTM", "user")]
    assert app_world.post("officer2", f"/api/v1/forms/{form['id']}/decision",
                          {"outcome": "validated"}).status_code == 200


def test_a_check_the_app_opened_follows_the_traveller_to_the_next_exit_point(app_world):
    form = app_world.issue_for(watch())
    phone = app_world.phone().signed_in()
    assert phone.verdicts([form["id"]])["items"][0]["verdict"] == "check_required"
    assert queue(app_world, "AMS") == [form["id"]]

    at_rtm = phone.verdicts([form["id"]], evidence=at_rotterdam(phone), exit_point="RTM")

    [item] = at_rtm["items"]
    assert item["verdict"] == "check_required"
    assert at_rtm["desk_pass"]
    assert queue(app_world, "RTM") == [form["id"]] and queue(app_world, "AMS") == []
    assert moves(app_world, form["id"]) == [("AMS", "RTM", "traveller")]
    problem_of(app_world.post("officer", f"/api/v1/forms/{form['id']}/decision", {"outcome": "validated"}),
               403, "not_on_duty_here")
    app_world.sign_on("officer2", "RTM")
    assert app_world.post("officer2", f"/api/v1/forms/{form['id']}/decision",
                          {"outcome": "validated"}).status_code == 200


def test_a_check_the_app_opened_has_the_deadline_s_grace_and_then_expires(app, app_world, runner):
    in_time, too_late = app_world.issue_for(watch()), app_world.issue_for(watch())
    phone = app_world.phone().signed_in()
    verdicts = phone.verdicts([in_time["id"], too_late["id"]])
    assert [i["verdict"] for i in verdicts["items"]] == ["check_required", "check_required"]
    deadline, ends = ended_deadline()
    for form in (in_time, too_late):
        set_clock(app, form["id"], deadline, ends - timedelta(minutes=30), ends - timedelta(hours=2))

    # Decided (offline) ten minutes into the grace period: accepted.
    accepted = validate_at(app_world.world, in_time["id"], ends + timedelta(minutes=10))
    assert accepted.status_code == 200, accepted.get_json()
    # Nobody decided the other: once the grace period is over it expires ...
    assert "1 form(s) expired" in expire(runner)
    assert app_world.status(too_late["id"]) == "expired"
    # ... and the app cannot bring it back.
    [again] = phone.verdicts([too_late["id"]])["items"]
    assert (again["verdict"], again["reason_code"]) == ("refused", "deadline_passed")
    assert app_world.status(too_late["id"]) == "expired"
