"""The customs desk: officers decide the forms the risk engine sent there
(POST /api/v1/forms/{id}/decision), the desk's queue (GET /api/v1/checks),
and the refund the retailer reports after validation."""
from __future__ import annotations

import re
from datetime import datetime, timezone

import jwt
import pytest
from psycopg import sql
from sqlalchemy import event
from tests.builders import item, traveller

PROBLEM = "application/problem+json"
PAID_AT = "2025-06-01T10:30:00+00:00"


# --- small helpers ----------------------------------------------------------

# A watch sends the traveller to the desk. EUR 499.99 at 21 % holds
# EUR 86.775... of VAT, rounded half up to 86.78; two books at EUR 19.99
# and 9 % hold EUR 3.3011 -> 3.30.
WATCH = item(49999, category="watches", description="Diver watch")
BOOKS = item(1999, quantity=2, vat_rate=9, category="books", description="Atlas")


def issue(world, *items, who="shop") -> dict:
    """Issue a form for a traveller of its own (the frequent-traveller rule
    stays quiet)."""
    return world.issue(who, *items, traveller=traveller(passport_number=f"P{world.invoices + 1:07d}"))


def at_the_desk(world, *items, who="shop", device="kiosk") -> dict:
    """A form whose traveller was sent to the desk by the kiosk."""
    form = issue(world, *(items or (WATCH,)), who=who)
    r = world.scan(device, form["qr_payload"])
    assert r.status_code == 200 and r.get_json()["verdict"] == "check_required", r.get_json()
    return form


def decide(world, form_id, body, who="officer"):
    return world.post(who, f"/api/v1/forms/{form_id}/decision", body)


def decided(world, form_id, body, who="officer") -> dict:
    r = decide(world, form_id, body, who)
    assert r.status_code == 200, r.get_json()
    return r.get_json()


def events(world, form_id, who="shop") -> list[dict]:
    r = world.get(who, f"/api/v1/forms/{form_id}/events")
    assert r.status_code == 200, r.get_json()
    return r.get_json()["items"]


def get_form(world, form_id) -> dict:
    r = world.get("shop", f"/api/v1/forms/{form_id}")
    assert r.status_code == 200, r.get_json()
    return r.get_json()


def checks(world, query="exit_point=AMS") -> dict:
    r = world.get("officer", f"/api/v1/checks?{query}")
    assert r.status_code == 200, r.get_json()
    return r.get_json()


def assert_problem(r, status, code) -> dict:
    assert r.status_code == status, r.get_json()
    assert r.mimetype == PROBLEM
    body = r.get_json()
    assert body["status"] == status
    assert body["code"] == code
    return body


def money(form) -> tuple:
    return (form["validated_total_cents"], form["validated_vat_cents"], form["validated_refund_cents"])


def presence(form) -> list:
    return [(line["line"], line["present"]) for line in form["items"]]


def user_id(world, username) -> str:
    return jwt.decode(world.tokens[username], options={"verify_signature": False})["sub"]


# --- outcomes -----------------------------------------------------------------

def test_an_officer_validates_every_line(world):
    form = at_the_desk(world, WATCH, BOOKS)
    assert (form["total_cents"], form["vat_cents"], form["fee_cents"], form["refund_cents"]) == (
        53997, 9008, 901, 8107)

    body = decided(world, form["id"], {"outcome": "validated"})

    assert body["status"] == "validated"
    assert money(body) == (53997, 9008, 8107)
    assert presence(body) == [(1, True), (2, True)]
    assert body["exit_point"] == "AMS"
    assert body["validated_at"] is not None
    # Customs read the trail as written: which officer, on which duty.
    last = events(world, form["id"], who="officer")[-1]
    duty = world.get("officer", "/api/v1/duty").get_json()
    assert (last["type"], last["actor"], last["exit_point"]) == (
        "form.validated", user_id(world, "officer"), "AMS")
    assert last["data"] == {
        "by": "officer", "reason_code": None, "has_note": False,
        "lines": [{"line": 1, "present": True}, {"line": 2, "present": True}],
        "validated_total_cents": 53997, "duty": duty["id"],
    }
    # The shop learns what customs decided and where, not which officer.
    seen = events(world, form["id"])[-1]
    assert (seen["type"], seen["actor"], seen["exit_point"]) == ("form.validated", "customs", "AMS")
    assert seen["data"] == {
        "by": "officer", "reason_code": None,
        "lines": [{"line": 1, "present": True}, {"line": 2, "present": True}],
        "validated_total_cents": 53997,
    }
    r = world.scan("kiosk", form["qr_payload"])
    assert (r.get_json()["verdict"], r.get_json()["reason_code"]) == ("validated", None)


def test_a_partial_validation_recomputes_the_refund_for_the_goods_shown(world):
    form = at_the_desk(world, WATCH, BOOKS)

    body = decided(world, form["id"], {"outcome": "partially_validated", "lines": [
        {"line": 1, "present": True}, {"line": 2, "present": False}]})

    assert body["status"] == "partially_validated"
    # The watch alone: VAT 86.78, the intermediary keeps 10 % (8.678 -> 8.68).
    assert money(body) == (49999, 8678, 7810)
    # The form's own totals are those of the purchase.
    assert (body["total_cents"], body["vat_cents"], body["refund_cents"]) == (53997, 9008, 8107)
    assert presence(body) == [(1, True), (2, False)]
    assert get_form(world, form["id"])["status"] == "partially_validated"
    last = events(world, form["id"])[-1]
    assert last["type"] == "form.partially_validated"
    assert last["data"]["lines"] == [{"line": 1, "present": True}, {"line": 2, "present": False}]
    assert last["data"]["validated_total_cents"] == 49999


def test_a_partially_validated_form_shows_as_validated_for_the_goods_shown_at_the_kiosk(world):
    form = at_the_desk(world, WATCH, BOOKS)
    decided(world, form["id"], {"outcome": "partially_validated", "lines": [
        {"line": 1, "present": False}, {"line": 2, "present": True}]})

    r = world.scan("kiosk", form["qr_payload"])

    assert r.get_json() == {
        "form_id": form["id"], "verdict": "validated", "reason_code": "partially_validated",
        "message": "Export validated for the goods you showed. Your refund will be paid by Refunds Inc.",
        "export_deadline": form["export_deadline"], "desk_location": None, "payer": "Refunds Inc",
    }
    # The books alone: VAT 3.30, fee 0.33.
    assert money(get_form(world, form["id"])) == (3998, 330, 297)


def test_a_retailer_without_intermediary_refunds_all_the_vat_of_the_goods_shown(world):
    form = at_the_desk(world, WATCH, BOOKS, who="books")
    assert (form["fee_cents"], form["refund_cents"]) == (0, 9008)

    body = decided(world, form["id"], {"outcome": "partially_validated", "lines": [
        {"line": 1, "present": True}, {"line": 2, "present": False}]})

    assert money(body) == (49999, 8678, 8678)
    r = world.scan("kiosk", form["qr_payload"])
    assert r.get_json()["message"] == "Export validated for the goods you showed. Your refund will be paid by Bookshop."


def test_an_officer_rejects_with_a_reason_code(world):
    form = at_the_desk(world, WATCH, BOOKS)

    body = decided(world, form["id"], {"outcome": "rejected", "reason_code": "goods_used",
                                       "note": "Watch worn, strap scratched"})

    assert body["status"] == "rejected"
    assert money(body) == (None, None, None)
    assert body["validated_at"] is None
    last = events(world, form["id"], who="officer")[-1]
    assert last["type"] == "form.rejected"
    # The note may name the traveller: the unchangeable trail only says there was one.
    assert (last["data"]["reason_code"], last["data"]["has_note"]) == ("goods_used", True)
    assert "Watch worn" not in str(last["data"])
    # The shop learns the reason code, not that customs noted something.
    assert events(world, form["id"])[-1]["data"]["reason_code"] == "goods_used"
    assert "has_note" not in events(world, form["id"])[-1]["data"]
    [check] = checks(world, "exit_point=AMS&status=decided")["items"]
    assert (check["form_id"], check["outcome"], check["status"]) == (form["id"], "rejected", "decided")
    assert check["note"] == "Watch worn, strap scratched"


# --- decisions that do not add up --------------------------------------------

@pytest.mark.parametrize("body, field, message", [
    ({"outcome": "rejected"}, "reason_code",
     "Give a reason code for a rejection: goods_not_presented, goods_used, eu_residence, "
     "deadline_passed, passport_mismatch, other"),
    ({"outcome": "rejected", "reason_code": "other"}, "note", "Describe the reason in a note."),
    ({"outcome": "rejected", "reason_code": "other", "note": "   "}, "note", "Describe the reason in a note."),
    ({"outcome": "validated", "lines": [{"line": 1, "present": True}, {"line": 2, "present": False}]},
     "lines", "A full validation cannot have absent lines; validate partially."),
    ({"outcome": "partially_validated", "lines": [{"line": 1, "present": True}, {"line": 2, "present": True}]},
     "lines", "Every line is present: validate the form in full."),
    ({"outcome": "partially_validated", "lines": [{"line": 1, "present": False}, {"line": 2, "present": False}]},
     "lines", "No line is present: reject the form instead."),
    ({"outcome": "partially_validated", "lines": [{"line": 1, "present": True}]},
     "lines", "A partial validation lists every line as present or not."),
    ({"outcome": "partially_validated", "lines": [{"line": 1, "present": True}, {"line": 1, "present": False}]},
     "lines", "Line 1 is listed twice."),
])
def test_a_decision_that_contradicts_itself_is_refused_and_changes_nothing(world, body, field, message):
    form = at_the_desk(world, WATCH, BOOKS)

    problem = assert_problem(decide(world, form["id"], body), 422, "invalid_decision")

    assert problem["errors"] == {field: [message]}
    assert problem["detail"] == message
    after = get_form(world, form["id"])
    assert after["status"] == "check_required"
    assert presence(after) == [(1, None), (2, None)]
    assert [c["form_id"] for c in checks(world)["items"]] == [form["id"]]
    assert events(world, form["id"])[-1]["type"] == "form.scanned"


def test_a_line_the_form_does_not_have_is_refused(world):
    form = at_the_desk(world, WATCH, BOOKS)

    problem = assert_problem(decide(world, form["id"], {"outcome": "partially_validated", "lines": [
        {"line": 1, "present": True}, {"line": 2, "present": False}, {"line": 3, "present": True}]}),
        422, "invalid_decision")

    assert problem["errors"] == {"lines": [f"Form {form['id']} has no line 3."]}
    assert get_form(world, form["id"])["status"] == "check_required"


def test_an_unknown_reason_code_is_an_invalid_field(world):
    form = at_the_desk(world)

    problem = assert_problem(decide(world, form["id"], {"outcome": "rejected", "reason_code": "bad_mood"}),
                             422, "invalid_request")

    assert list(problem["errors"]) == ["reason_code"]


def test_a_second_decision_is_a_conflict(world):
    form = at_the_desk(world)
    decided(world, form["id"], {"outcome": "validated"})

    problem = assert_problem(
        decide(world, form["id"], {"outcome": "rejected", "reason_code": "goods_not_presented"}, who="officer2"),
        409, "already_decided")

    assert problem["detail"] == f"Form {form['id']} is not waiting for a decision (it is validated)."
    assert get_form(world, form["id"])["status"] == "validated"
    assert [e["type"] for e in events(world, form["id"])].count("form.validated") == 1
    assert [e["type"] for e in events(world, form["id"])].count("form.rejected") == 0


def test_a_form_that_was_never_sent_to_the_desk_cannot_be_decided(world):
    form = issue(world, WATCH)

    problem = assert_problem(decide(world, form["id"], {"outcome": "validated"}), 409, "already_decided")

    assert problem["detail"] == f"Form {form['id']} is not waiting for a decision (it is issued)."
    assert get_form(world, form["id"])["status"] == "issued"


def test_a_form_validated_at_the_kiosk_cannot_be_decided(world):
    form = issue(world)
    world.scan("kiosk", form["qr_payload"])

    assert_problem(decide(world, form["id"], {"outcome": "rejected", "reason_code": "goods_used"}),
                   409, "already_decided")

    assert get_form(world, form["id"])["status"] == "validated"


@pytest.mark.parametrize("who", ["kiosk", "shop", "refunds"])
def test_only_an_officer_decides(world, who):
    form = at_the_desk(world)

    assert_problem(decide(world, form["id"], {"outcome": "validated"}, who=who), 403, "forbidden")

    assert get_form(world, form["id"])["status"] == "check_required"


def test_deciding_a_form_that_does_not_exist_is_not_found(world):
    assert_problem(decide(world, "NL0000000", {"outcome": "validated"}), 404, "form_not_found")


# --- the desk's queue -----------------------------------------------------------

def test_the_queue_lists_pending_checks_at_one_exit_point_oldest_first(world):
    first = at_the_desk(world)
    second = at_the_desk(world)
    at_rotterdam = at_the_desk(world, device="rtm-kiosk")
    third = at_the_desk(world)

    page = checks(world)

    assert [c["form_id"] for c in page["items"]] == [first["id"], second["id"], third["id"]]
    assert {c["status"] for c in page["items"]} == {"pending"}
    assert {c["exit_point"] for c in page["items"]} == {"AMS"}
    assert page["next_cursor"] is None
    assert [c["form_id"] for c in checks(world, "exit_point=RTM")["items"]] == [at_rotterdam["id"]]
    assert [c["form_id"] for c in checks(world, "")["items"]] == [
        first["id"], second["id"], at_rotterdam["id"], third["id"]]


def test_a_decided_check_leaves_the_queue_and_is_listed_as_decided(world):
    first = at_the_desk(world)
    second = at_the_desk(world)

    decided(world, first["id"], {"outcome": "validated"})

    assert [c["form_id"] for c in checks(world)["items"]] == [second["id"]]
    [done] = checks(world, "exit_point=AMS&status=decided")["items"]
    assert (done["form_id"], done["status"], done["outcome"]) == (first["id"], "decided", "validated")
    assert done["decided_at"] is not None


def test_the_queue_is_walked_one_check_at_a_time_without_repeats(world):
    forms = [at_the_desk(world) for _ in range(4)]
    at_the_desk(world, device="rtm-kiosk")

    seen, cursor, pages = [], None, 0
    while True:
        page = checks(world, "exit_point=AMS&limit=1" + (f"&cursor={cursor}" if cursor else ""))
        pages += 1
        assert len(page["items"]) == 1
        seen += [c["form_id"] for c in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert pages < 10

    assert seen == [f["id"] for f in forms]
    assert pages == 4


def test_a_cursor_that_was_not_given_out_is_a_bad_request(world):
    assert_problem(world.get("officer", "/api/v1/checks?cursor=not-a-cursor"), 400, "invalid_cursor")


# --- the refund after validation --------------------------------------------

def refund(world, form_id, amount_cents, who="shop"):
    return world.post(who, f"/api/v1/forms/{form_id}/refund", {"amount_cents": amount_cents, "paid_at": PAID_AT})


def test_the_retailer_reports_the_refund_of_a_validated_form(world):
    form = at_the_desk(world, WATCH, BOOKS)
    decided(world, form["id"], {"outcome": "validated"})

    r = refund(world, form["id"], 8107)

    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert (body["status"], body["refunded_cents"], body["refunded_at"]) == ("refunded", 8107, PAID_AT)
    last = events(world, form["id"])[-1]
    assert (last["type"], last["data"]) == ("form.refunded", {"amount_cents": 8107, "paid_at": PAID_AT})
    # The traveller's kiosk still says validated.
    assert world.scan("kiosk", form["qr_payload"]).get_json()["verdict"] == "validated"


def test_a_refund_may_not_exceed_the_refund_due_for_the_goods_shown(world):
    form = at_the_desk(world, WATCH, BOOKS)
    decided(world, form["id"], {"outcome": "partially_validated", "lines": [
        {"line": 1, "present": True}, {"line": 2, "present": False}]})

    # The watch's VAT is 86.78, of which the intermediary keeps 8.68: the
    # traveller is owed 78.10, and 78.11 (let alone the whole VAT) is too much.
    for too_much in (7811, 8678):
        problem = assert_problem(refund(world, form["id"], too_much), 422, "refund_too_large")
        assert problem["errors"] == {"amount_cents": ["At most 7810."]}
    assert get_form(world, form["id"])["status"] == "partially_validated"
    r = refund(world, form["id"], 7810)
    assert r.status_code == 200, r.get_json()
    assert (r.get_json()["status"], r.get_json()["refunded_cents"]) == ("refunded", 7810)


def test_a_refund_may_not_exceed_the_refund_due_after_a_validation_at_the_kiosk(world):
    form = issue(world, item(12100))  # VAT 21.00, fee 2.10
    assert world.scan("kiosk", form["qr_payload"]).get_json()["verdict"] == "validated"

    problem = assert_problem(refund(world, form["id"], 1891), 422, "refund_too_large")

    assert problem["errors"] == {"amount_cents": ["At most 1890."]}
    assert refund(world, form["id"], 1890).status_code == 200


def test_a_form_is_refunded_only_once(world):
    form = issue(world)
    world.scan("kiosk", form["qr_payload"])
    assert refund(world, form["id"], 1890).status_code == 200

    problem = assert_problem(refund(world, form["id"], 1890), 409, "form_not_refundable")

    assert problem["detail"] == "Only a validated form can be refunded; this one is refunded."
    assert [e["type"] for e in events(world, form["id"])].count("form.refunded") == 1


def test_a_form_not_yet_validated_cannot_be_refunded(world):
    form = issue(world)

    problem = assert_problem(refund(world, form["id"], 1890), 409, "form_not_refundable")

    assert problem["detail"] == "Only a validated form can be refunded; this one is issued."
    assert get_form(world, form["id"])["status"] == "issued"


def test_a_rejected_form_cannot_be_refunded(world):
    form = at_the_desk(world)
    decided(world, form["id"], {"outcome": "rejected", "reason_code": "passport_mismatch"})

    assert_problem(refund(world, form["id"], 100), 409, "form_not_refundable")


def test_a_checks_cursor_for_an_unknown_check_is_a_400(world):
    import base64
    cursor = base64.urlsafe_b64encode(b"[999999]").rstrip(b"=").decode()
    r = world.get("officer", "/api/v1/checks", query_string={"cursor": cursor})
    assert r.status_code == 400 and r.get_json()["code"] == "invalid_cursor"


def test_a_decision_resent_from_an_offline_handheld_with_its_key_is_recorded_once(world):
    form = world.issue("shop", {"description": "Watch", "quantity": 1, "unit_price_cents": 30000,
                                "vat_rate": 21, "category": "watches"})
    world.scan("kiosk", form["qr_payload"])
    headers = {"Idempotency-Key": "handheld-3:decision-17"}
    body = {"outcome": "validated"}
    first = world.post("officer", f"/api/v1/forms/{form['id']}/decision", body, headers=headers)
    again = world.post("officer", f"/api/v1/forms/{form['id']}/decision", body, headers=headers)
    assert first.status_code == again.status_code == 200
    assert again.headers["Idempotent-Replayed"] == "true" and again.get_json() == first.get_json()
    assert first.headers["ETag"] == world.get("shop", f"/api/v1/forms/{form['id']}").headers["ETag"]
    other = world.post("officer2", f"/api/v1/forms/{form['id']}/decision", {"outcome": "rejected",
                       "reason_code": "goods_used"}, headers={"Idempotency-Key": "handheld-9:decision-1"})
    assert other.status_code == 409


def test_an_officer_sees_their_own_decisions_as_history(world):
    forms = [world.issue("shop", {"description": "Watch", "quantity": 1, "unit_price_cents": 30000,
                                  "vat_rate": 21, "category": "watches"}) for _ in range(3)]
    for form in forms:
        world.scan("kiosk", form["qr_payload"])
    world.post("officer", f"/api/v1/forms/{forms[0]['id']}/decision", {"outcome": "validated"})
    world.post("officer2", f"/api/v1/forms/{forms[1]['id']}/decision", {"outcome": "validated"})
    mine = world.get("officer", "/api/v1/checks", query_string={"status": "decided", "officer": "me"}).get_json()
    assert [c["form_id"] for c in mine["items"]] == [forms[0]["id"]]
    queue = world.get("officer", "/api/v1/checks", query_string={"exit_point": "AMS"}).get_json()["items"]
    assert [c["form_id"] for c in queue] == [forms[2]["id"]]
    assert len(queue[0]["traveller_ref"]) == 12


def test_a_check_in_the_queue_and_in_the_history_shows_every_field(world):
    form = at_the_desk(world, WATCH, BOOKS)
    [queued] = checks(world)["items"]
    fired = queued.pop("fired_rules")
    opened_at = queued.pop("opened_at")
    assert fired and all(set(rule) == {"code", "detail"} for rule in fired)
    assert queued == {
        "id": queued["id"], "form_id": form["id"], "status": "pending", "exit_point": "AMS",
        "traveller_name": "Mei Chen", "passport_number": "*****001", "passport_country": "CN",
        "total_cents": 49999 + 2 * 1999, "line_count": 2, "outcome": None, "decided_at": None,
        "officer_id": None, "note": None, "traveller_ref": queued["traveller_ref"]}
    assert len(queued["traveller_ref"]) == 12 and opened_at.endswith("+00:00")

    before = world.get("officer", "/api/v1/checks", query_string={"status": "decided", "officer": "me"})
    assert before.get_json()["items"] == []
    decided(world, form["id"], {"outcome": "rejected", "reason_code": "goods_not_presented", "note": "Box empty"})
    later = at_the_desk(world)
    since = datetime.now(timezone.utc)
    decided(world, later["id"], {"outcome": "validated"})
    history = checks(world, "status=decided&officer=me")["items"]
    assert [(c["form_id"], c["outcome"], c["note"]) for c in history] == [
        (form["id"], "rejected", "Box empty"), (later["id"], "validated", None)]
    assert all(c["decided_at"] and c["officer_id"] is not None for c in history)
    recent = world.get("officer", "/api/v1/checks", query_string={
        "status": "decided", "officer": "me", "decided_since": since.isoformat()}).get_json()["items"]
    assert [c["form_id"] for c in recent] == [later["id"]]


def test_the_officer_finds_a_travellers_forms_by_passport_without_it_in_the_url(world):
    mine = [world.issue("shop") for _ in range(2)]
    world.issue("shop", traveller={"first_name": "Ann", "last_name": "Lee", "passport_number": "X9988776",
                                   "passport_country": "US", "nationality": "US", "residence_country": "US",
                                   "date_of_birth": "1970-01-01"})
    r = world.post("officer", "/api/v1/forms/lookup", {"passport_number": "E12345678", "passport_country": "CN"})
    assert r.status_code == 200
    found = r.get_json()["items"]
    assert {f["id"] for f in found} == {f["id"] for f in mine}
    assert found[0]["traveller"]["passport_number"] == "E12345678"  # the officer holds the passport
    assert world.post("kiosk", "/api/v1/forms/lookup",
                      {"passport_number": "E12345678", "passport_country": "CN"}).status_code == 403


def test_the_desks_queue_reads_its_partial_index_in_a_plan_the_database_can_keep(app, world):
    """The queue's statement as sent, planned without its values (the plan
    PostgreSQL keeps for a prepared statement, and SQLite's only plan):
    pending checks are read from their partial index in order."""
    at_the_desk(world)
    sent = []

    def record(_conn, _cursor, statement, parameters, *_args):
        if "FROM checks" in statement and "line" in statement:
            sent.append((statement, parameters))

    engine = app.extensions["db_engine"]
    event.listen(engine, "before_cursor_execute", record)
    try:
        assert len(checks(world)["items"]) == 1
    finally:
        event.remove(engine, "before_cursor_execute", record)
    [(statement, parameters)] = sent
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            # PREPARE with $n for each named value, then its generic plan.
            names = list(dict.fromkeys(re.findall(r"%\((\w+)\)s", statement)))
            prepared = re.sub(r"%\((\w+)\)s", lambda m: f"${names.index(m.group(1)) + 1}", statement)
            with conn.connection.driver_connection.cursor() as cursor:
                cursor.execute(f"PREPARE queue AS {prepared}")
                cursor.execute("SET plan_cache_mode = force_generic_plan")
                cursor.execute(sql.SQL("EXPLAIN EXECUTE queue({})").format(
                    sql.SQL(", ").join(sql.Literal(parameters[name]) for name in names)))
                plan = "\n".join(row[0] for row in cursor.fetchall())
        else:
            plan = "\n".join(str(row[-1]) for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}",
                                                                         parameters))
    assert "ix_checks_pending_queue" in plan, plan
