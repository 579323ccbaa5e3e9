"""A traveller sent to the desk at Schiphol who scans the form again in
Rotterdam is told to go to Rotterdam's desk: the check moves to Rotterdam's
queue, where an officer can see and decide it, and leaves Schiphol's. The
move is in the audit trail, happens once however many kiosks scan at once,
and never races a decision into two outcomes."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from tests.api.test_concurrency import all_at_once, bearer
from tests.builders import item, traveller

WATCH = item(60500, category="watches")


def at_schiphol_desk(world) -> dict:
    form = world.issue("shop", WATCH, traveller=traveller(passport_number=f"M{world.invoices + 1:07d}"))
    scanned = world.scan("kiosk", form["qr_payload"]).get_json()
    assert (scanned["verdict"], scanned["desk_location"]) == ("check_required", "Departures 2")
    return form


def queue(world, exit_point) -> list[str]:
    r = world.get("officer", f"/api/v1/checks?exit_point={exit_point}")
    assert r.status_code == 200, r.get_json()
    return [c["form_id"] for c in r.get_json()["items"]]


def trail(world, form_id, who="officer") -> list[dict]:
    return world.get(who, f"/api/v1/forms/{form_id}/events").get_json()["items"]


def moves(world, form_id) -> list[tuple]:
    return [(e["data"]["from_exit_point"], e["exit_point"]) for e in trail(world, form_id)
            if e["type"] == "form.check_moved"]


def decide(world, who, form_id):
    return world.post(who, f"/api/v1/forms/{form_id}/decision", {"outcome": "validated"})


def test_the_check_moves_to_the_desk_the_traveller_is_sent_to(world):
    form = at_schiphol_desk(world)

    at_rtm = world.scan("rtm-kiosk", form["qr_payload"]).get_json()

    assert (at_rtm["verdict"], at_rtm["reason_code"]) == ("check_required", "selected_for_check")
    assert queue(world, "RTM") == [form["id"]]
    assert queue(world, "AMS") == []
    assert world.get("shop", f"/api/v1/forms/{form['id']}").get_json()["exit_point"] == "RTM"
    [moved] = [e for e in trail(world, form["id"]) if e["type"] == "form.check_moved"]
    assert (moved["actor"], moved["exit_point"], moved["data"]) == (
        f"device:{world.ids['rtm-kiosk']}", "RTM", {"from_exit_point": "AMS"})
    # The shop may know where its traveller is checked, not who moved it.
    [seen] = [e for e in trail(world, form["id"], who="shop") if e["type"] == "form.check_moved"]
    assert (seen["actor"], seen["exit_point"], seen["data"]) == ("kiosk", "RTM", {"from_exit_point": "AMS"})


def test_rotterdam_s_officer_decides_it_and_schiphol_s_cannot(world):
    form = at_schiphol_desk(world)
    world.scan("rtm-kiosk", form["qr_payload"])
    world.sign_on("officer2", "RTM")

    refused = decide(world, "officer", form["id"])
    decided = decide(world, "officer2", form["id"])

    assert refused.status_code == 403 and refused.get_json()["code"] == "not_on_duty_here"
    assert decided.status_code == 200, decided.get_json()
    assert (decided.get_json()["status"], decided.get_json()["exit_point"]) == ("validated", "RTM")
    # Validated in Rotterdam: Schiphol's kiosk says so.
    assert world.scan("kiosk", form["qr_payload"]).get_json()["reason_code"] == "validated_elsewhere"


def test_scanning_again_where_the_check_is_moves_nothing_and_going_back_moves_it_back(world):
    form = at_schiphol_desk(world)
    for _ in range(3):
        world.scan("rtm-kiosk", form["qr_payload"])
    world.scan("kiosk", form["qr_payload"])

    assert moves(world, form["id"]) == [("AMS", "RTM"), ("RTM", "AMS")]
    assert queue(world, "AMS") == [form["id"]] and queue(world, "RTM") == []


def test_an_offline_scan_made_before_the_move_does_not_move_it_back(world):
    # A second kiosk at Schiphol, offline since it was paired.
    r = world.post("root", "/api/v1/devices", {"name": "ams-2", "kind": "kiosk", "exit_point": "AMS"})
    assert r.status_code == 201, r.get_json()
    offline_kiosk = r.get_json()["token"]
    form = at_schiphol_desk(world)
    world.scan("rtm-kiosk", form["qr_payload"])
    made = (datetime.now(timezone.utc) - timedelta(minutes=1)).isoformat()

    late = world.client.post("/api/v1/scans", json={"qr_payload": form["qr_payload"], "scanned_at": made,
                                                    "queued": True},
                             headers={"Authorization": f"Bearer {offline_kiosk}"})

    assert late.get_json()["verdict"] == "check_required"
    assert moves(world, form["id"]) == [("AMS", "RTM")]
    assert queue(world, "RTM") == [form["id"]]


def test_many_kiosks_in_rotterdam_scanning_at_once_move_the_check_once(world, live_server, figures):
    kiosks = [world.devices["rtm-kiosk"]]
    for n in range(2, 4):
        r = world.post("root", "/api/v1/devices", {"name": f"rtm-{n}", "kind": "kiosk", "exit_point": "RTM"})
        kiosks.append(r.get_json()["token"])
    form = at_schiphol_desk(world)

    responses = all_at_once([
        ("POST", f"{live_server}/api/v1/scans", bearer(kiosks[n % 3]), {"qr_payload": form["qr_payload"]})
        for n in range(12)
    ])

    assert {(status, body["verdict"]) for status, _, _, body in responses} == {(200, "check_required")}
    assert moves(world, form["id"]) == [("AMS", "RTM")]
    assert queue(world, "RTM") == [form["id"]] and queue(world, "AMS") == []
    figures(sent=12, moves=len(moves(world, form["id"])), errors=sum(s != 200 for s, *_ in responses))


def test_a_decision_at_schiphol_racing_scans_in_rotterdam_gives_one_consistent_outcome(
        world, live_server, figures):
    form = at_schiphol_desk(world)

    responses = all_at_once(
        [("POST", f"{live_server}/api/v1/forms/{form['id']}/decision", bearer(world.tokens["officer"]),
          {"outcome": "validated"})]
        + [("POST", f"{live_server}/api/v1/scans", bearer(world.devices["rtm-kiosk"]),
            {"qr_payload": form["qr_payload"]})] * 8
    )

    decision, scans = responses[0], responses[1:]
    assert {status for status, *_ in scans} == {200}
    after = world.get("shop", f"/api/v1/forms/{form['id']}").get_json()
    if decision[0] == 200:
        # The officer was first: validated at Schiphol, and the check never moved.
        assert (after["status"], after["exit_point"], moves(world, form["id"])) == ("validated", "AMS", [])
        assert {body["verdict"] for *_, body in scans} <= {"check_required", "refused"}
    else:
        # A scan was first: the check is in Rotterdam, undecided.
        assert (decision[0], decision[3]["code"]) == (403, "not_on_duty_here")
        assert (after["status"], after["exit_point"], moves(world, form["id"])) == (
            "check_required", "RTM", [("AMS", "RTM")])
        assert queue(world, "RTM") == [form["id"]]
    decisions = [e for e in trail(world, form["id"]) if e["type"] == "form.validated"]
    assert len(decisions) == (1 if decision[0] == 200 else 0)
    figures(sent=9, decided=int(decision[0] == 200), moves=len(moves(world, form["id"])),
            errors=sum(s not in (200, 403) for s, *_ in responses))
