"""GET /forms as a change feed for pollers: following cursors never skips or
repeats a change, even while other requests commit changes meanwhile."""
from __future__ import annotations

import threading
import time
from datetime import date, datetime, timedelta

import pytest
import requests
from alembic import command
from sqlalchemy import create_engine, select, text

from api import database, pagination
from api.auth import Principal
from api.migrations import alembic_config
from api.models import ChangeCounter, Form, utcnow
from api.services import changes, forms
from tests.builders import form_body, in_time, item
from tests.conftest import BACKENDS

FEED = "/api/v1/forms"


def seq(listed: dict) -> int:
    return pagination.decode(listed["cursor"], 1)[0]


def walk(world, who="shop", cursor=None, limit=3, **query) -> tuple[list[dict], str | None]:
    """Every page from ``cursor`` on; the items and the cursor to resume from."""
    seen = []
    for _page in range(100):
        r = world.get(who, FEED, query_string={"limit": limit, **query, **({"cursor": cursor} if cursor else {})})
        assert r.status_code == 200, r.get_json()
        page = r.get_json()
        seen += page["items"]
        if page["items"]:
            cursor = page["items"][-1]["cursor"]
        if page["next_cursor"] is None:
            return seen, cursor
        assert page["next_cursor"] == cursor
    raise AssertionError("the feed did not end")


def test_a_change_that_commits_late_with_an_earlier_timestamp_is_not_skipped(app, world):
    first = world.issue("shop")
    seen, cursor = walk(world)
    assert [f["id"] for f in seen] == [first["id"]]

    # A request that began (and stamped its form) ten seconds earlier
    # commits only now, after the poller read past the first form.
    began = datetime.fromisoformat(first["updated_at"]) - timedelta(seconds=10)
    with app.app_context():
        session = database.session()
        kid, key = app.extensions["keyring"].signing_key(session)
        issuer = forms.Issuer(app.config["RULESET"], app.config["PASSPORT_HASH_KEY"].encode(), kid, key)
        shop = Principal("user", "0", "retailer", retailer_id=world.ids["shop"])
        body = form_body(invoice="LATE-1")
        body["purchase_date"] = date.fromisoformat(body["purchase_date"])
        body["traveller"]["date_of_birth"] = date(1988, 3, 14)
        body["items"] = [{**item(), "vat_rate_bp": 2100}]
        late = forms.issue(session, shop, body, issuer, began)
        session.commit()
        late_id = late.id

    more, _ = walk(world, cursor=cursor)
    assert [f["id"] for f in more] == [late_id]
    assert more[0]["updated_at"] < first["updated_at"]


def test_a_form_that_changes_again_comes_again_as_a_new_change_never_twice_per_change(world):
    a, b, c = (world.issue("shop") for _ in range(3))
    seen, cursor = walk(world, limit=2)
    assert [f["id"] for f in seen] == [a["id"], b["id"], c["id"]]
    assert [seq(f) for f in seen] == sorted(seq(f) for f in seen)

    world.post("shop", f"/api/v1/forms/{a['id']}/cancel")
    world.scan("kiosk", c["qr_payload"])
    world.scan("kiosk", c["qr_payload"])  # a re-scan changes nothing
    more, cursor = walk(world, cursor=cursor, limit=2)

    assert [(f["id"], f["status"]) for f in more] == [(a["id"], "cancelled"), (c["id"], "validated")]
    assert seq(more[0]) > seq(seen[-1]) and seq(more[1]) > seq(more[0])
    assert walk(world, cursor=cursor) == ([], cursor)
    # From the start, each form once, at its latest change.
    everything, _ = walk(world, limit=2)
    assert [(f["id"], f["status"]) for f in everything] == [
        (b["id"], "issued"), (a["id"], "cancelled"), (c["id"], "validated")]


def test_forms_changed_in_one_transaction_are_marked_and_numbered_at_the_next_reading(app, world):
    """A writer only marks the forms it changes (their numbers negated);
    the feed's next reading numbers them after every number given, in the
    order they were last stamped, and lists them."""
    a, b, c = (world.issue("shop")["id"] for _ in range(3))
    seen, cursor = walk(world)
    numbers = {f["id"]: seq(f) for f in seen}
    with app.app_context():
        session = database.session()
        for form_id in (c, a, b):
            session.get(Form, form_id).email = f"{form_id.lower()}@example.org"
            session.flush()
        session.commit()
        marked = dict(session.execute(select(Form.id, Form.change_seq).where(Form.id.in_((a, b, c)))).all())
        counter = session.get(ChangeCounter, "forms").value
    assert marked == {form_id: -n for form_id, n in numbers.items()}
    assert counter == max(numbers.values())  # the writer did not take it

    more, _ = walk(world, cursor=cursor)
    assert [(f["id"], seq(f)) for f in more] == [(a, counter + 1), (b, counter + 2), (c, counter + 3)]


def test_every_kind_of_change_moves_the_form_in_the_feed(app, world):
    def last_changed(form_id):
        everything, _ = walk(world, who="officer", limit=50)
        assert everything[-1]["id"] == form_id
        return everything[-1]

    pay = {"amount_cents": 100, "paid_at": "2026-12-01T10:00:00+00:00"}
    validated = world.issue("shop")
    watch = world.issue("shop", item(60500, category="watches"))
    assert last_changed(watch["id"])["status"] == "issued"
    world.scan("kiosk", validated["qr_payload"])
    assert last_changed(validated["id"])["status"] == "validated"
    world.scan("kiosk", watch["qr_payload"])
    assert last_changed(watch["id"])["status"] == "check_required"
    world.post("shop", f"/api/v1/forms/{validated['id']}/refund", pay)
    assert last_changed(validated["id"])["status"] == "refunded"
    world.post("officer", f"/api/v1/forms/{watch['id']}/decision",
               {"outcome": "rejected", "reason_code": "goods_not_presented"})
    assert last_changed(watch["id"])["status"] == "rejected"
    batch = world.post("refunds", "/api/v1/forms/batch", {"forms": [
        form_body(invoice="BATCH-1", retailer_vat="NL859559001B01"),
        form_body(invoice="BATCH-2", retailer_vat="NL859559001B01")]}).get_json()["items"]
    # Issued in one transaction, stamped alike: the last two, in either order.
    everything, _ = walk(world, who="officer", limit=50)
    assert sorted(f["invoice_number"] for f in everything[-2:]) == ["BATCH-1", "BATCH-2"]
    issued = world.issue("shop")
    with app.app_context():
        session = database.session()
        expired = forms.expire_overdue(session, app.config["RULESET"], utcnow() + timedelta(days=130),
                                         grace=timedelta(0))
        session.commit()
    assert sorted(expired) == sorted([issued["id"], batch[0]["body"]["id"], batch[1]["body"]["id"]])
    everything, _ = walk(world, who="officer", limit=50)
    assert sorted((f["id"], f["status"]) for f in everything[-3:]) == sorted((i, "expired") for i in expired)
    with app.app_context():
        numbers = database.session().scalars(select(Form.change_seq).order_by(Form.change_seq)).all()
    assert None not in numbers and len(set(numbers)) == len(numbers)


def test_updated_since_and_cursors_work_together(world):
    a = world.issue("shop")
    b = world.issue("shop")
    world.post("shop", f"/api/v1/forms/{a['id']}/cancel")
    since = world.get("shop", f"/api/v1/forms/{b['id']}").get_json()["updated_at"]
    seen, cursor = walk(world, updated_since=since, limit=1)
    assert [f["id"] for f in seen] == [b["id"], a["id"]]
    assert walk(world, cursor=cursor, updated_since=since) == ([], cursor)


def test_a_cursor_this_api_did_not_give_out_is_a_400(world):
    old_style = pagination.encode("2026-11-28T10:00:00+00:00", "NL7KQ3X9PD")
    for cursor in ("garbage", old_style, pagination.encode("7"), pagination.encode(2**70),
                   pagination.encode(True), pagination.encode(-1)):
        r = world.get("shop", FEED, query_string={"cursor": cursor})
        assert (r.status_code, r.get_json()["code"]) == (400, "invalid_cursor")


def test_pollers_paging_while_writers_commit_see_every_change_once(app, world, live_server):
    writers, forms_each = 3, 12
    headers = {"Authorization": f"Bearer {world.tokens['shop']}"}
    done = threading.Event()
    errors = []

    def write(n):
        try:
            with requests.Session() as http:
                for k in range(forms_each):
                    r = http.post(f"{live_server}{FEED}", headers=headers, timeout=30,
                                  json=form_body(invoice=f"W{n}-{k}"))
                    assert r.status_code == 201, r.text
                    if k % 3 == 0:
                        r = http.post(f"{live_server}{FEED}/{r.json()['id']}/cancel", headers=headers, timeout=30)
                        assert r.status_code == 200, r.text
        except Exception as exc:
            errors.append(exc)

    seen = []

    def read():
        cursor = None
        with requests.Session() as http:
            for _ in range(5000):
                finished = done.is_set()  # read before the page: nothing commits after it
                r = http.get(f"{live_server}{FEED}", headers=headers, timeout=30,
                             params={"limit": 4, **({"cursor": cursor} if cursor else {})})
                page = r.json()
                seen.extend(page["items"])
                if page["items"]:
                    cursor = page["items"][-1]["cursor"]
                if finished and page["next_cursor"] is None:
                    return
        errors.append(AssertionError("the poller never caught up"))

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    poller = threading.Thread(target=read)
    started = time.monotonic()
    poller.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    done.set()
    poller.join(120)

    assert errors == []
    numbers = [seq(f) for f in seen]
    assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)  # in order, none twice
    last_seen = {f["id"]: (f["status"], seq(f)) for f in seen}
    with app.app_context():
        final = {f.id: (f.status, f.change_seq) for f in database.session().scalars(select(Form))}
    assert len(final) == writers * forms_each
    assert last_seen == final  # every form, at its latest change
    assert sum(1 for status, _ in final.values() if status == "cancelled") == writers * 4
    assert time.monotonic() - started < 120


@pytest.mark.parametrize("database_url", [b for b in BACKENDS if b == "postgresql"], indirect=True)
def test_writers_never_wait_for_the_feeds_counter(app, world, live_server):
    """While another transaction holds the change feed's counter, forms are
    issued and scanned as usual: writers only mark what they change."""
    form = world.issue("shop")
    _, cursor = walk(world)  # the counter's row exists, the form is numbered
    headers = {"Authorization": f"Bearer {world.tokens['shop']}"}
    with app.extensions["db_engine"].connect() as holder:
        holder.execute(text("SELECT value FROM change_counters WHERE name = 'forms' FOR UPDATE"))
        scanned = in_time(lambda: requests.post(f"{live_server}/api/v1/scans", json={
            "qr_payload": form["qr_payload"]}, headers=world.auth("kiosk"), timeout=30))
        issued = in_time(lambda: requests.post(f"{live_server}{FEED}", json=form_body(invoice="WAITS-NOT-1"),
                                                headers=headers, timeout=30))
        holder.rollback()
    assert scanned is not None and scanned.json()["verdict"] == "validated", "the scan waited for the counter"
    assert issued is not None and issued.status_code == 201, "the issue waited for the counter"
    more, _ = walk(world, cursor=cursor)
    assert [(f["id"], f["status"]) for f in more][-2:] == [(form["id"], "validated"), (issued.json()["id"], "issued")]


@pytest.mark.parametrize("database_url", [b for b in BACKENDS if b == "postgresql"], indirect=True)
def test_a_reading_leaves_a_form_another_transaction_holds_to_the_next(app, world, live_server):
    """A reading of the feed does not wait for a form's row another
    transaction holds (it may be changing it): that form keeps its mark,
    the rest are numbered and listed, and the next reading after it is let
    go lists it, after them."""
    held_form, other = world.issue("shop"), world.issue("shop")
    headers = {"Authorization": f"Bearer {world.tokens['shop']}"}
    with app.extensions["db_engine"].connect() as holder:
        holder.execute(text("SELECT id FROM forms WHERE id = :id FOR UPDATE"), {"id": held_form["id"]})
        page = in_time(lambda: requests.get(f"{live_server}{FEED}", headers=headers, timeout=30))
        holder.rollback()
    assert page is not None, "the reading waited for the form's row"
    assert [f["id"] for f in page.json()["items"]] == [other["id"]]
    cursor = page.json()["items"][-1]["cursor"]
    more, _ = walk(world, cursor=cursor)
    assert [f["id"] for f in more] == [held_form["id"]] and seq(more[0]) > seq(page.json()["items"][0])


def test_a_reading_numbers_a_bounded_number_of_changes_the_longest_marked_first(app, world):
    """After a long pause a reading numbers at most so many changes, the
    oldest first, and lists them; the next numbers the rest, after them."""
    a, b, c = (world.issue("shop")["id"] for _ in range(3))
    with app.app_context():
        session = database.session()
        assert changes.number_changed(session, at_most=2) == 2
        numbered = dict(session.execute(select(Form.id, Form.change_seq)).all())
    assert (numbered[a], numbered[b], numbered[c]) == (1, 2, None)
    seen, cursor = walk(world)  # a reading as usual numbers the rest
    assert [(f["id"], seq(f)) for f in seen] == [(a, 1), (b, 2), (c, 3)]


def test_downgrading_numbers_the_forms_still_marked(tmp_path):
    """Before this way of numbering, every form had its number: going back
    numbers those still marked after the highest number given."""
    url = f"sqlite:///{tmp_path / 'marked.sqlite3'}"
    _forms_at_0001(url)
    command.upgrade(alembic_config(url), "heads")
    engine = create_engine(url)
    with engine.begin() as conn:
        # Changed since numbered: B (1) and A (3), marked by negating.
        conn.execute(text("UPDATE forms SET change_seq = -change_seq WHERE id IN ('NLBBBBBBBB', 'NLAAAAAAAA')"))
    engine.dispose()

    command.downgrade(alembic_config(url), "0017")

    engine = create_engine(url)
    with engine.connect() as conn:
        numbered = conn.execute(text("SELECT id, change_seq FROM forms ORDER BY change_seq")).all()
        counter = conn.execute(text("SELECT value FROM change_counters WHERE name = 'forms'")).scalar()
    engine.dispose()
    assert [tuple(r) for r in numbered] == [("NLCCCCCCCC", 2), ("NLBBBBBBBB", 4), ("NLAAAAAAAA", 5)]
    assert counter == 5


def _forms_at_0001(url: str) -> None:
    """A database at the first revision with three forms, changed in the
    order B, C, A."""
    command.upgrade(alembic_config(url), "0001")
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO retailers (id, vat_number, name, address, created_at) "
                          "VALUES (1, 'NL859559001B01', 'Watch House', '', '2026-01-01 00:00:00')"))
        for form_id, updated in [("NLAAAAAAAA", "2026-03-01 10:00:00"), ("NLBBBBBBBB", "2026-02-01 10:00:00"),
                                 ("NLCCCCCCCC", "2026-03-01 09:00:00")]:
            conn.execute(text(
                "INSERT INTO forms (id, retailer_id, status, invoice_number, purchase_date, first_name, "
                "last_name, passport_number, passport_country, passport_key, nationality, residence_country, "
                "date_of_birth, currency, total_cents, vat_cents, fee_cents, refund_cents, export_deadline, "
                "qr_payload, created_at, updated_at) VALUES (:id, 1, 'issued', :id, '2026-01-15', 'Mei', 'Chen', "
                "'E1', 'CN', 'k', 'CN', 'CN', '1988-03-14', 'EUR', 12100, 2100, 0, 2100, '2026-04-30', 'q', "
                ":at, :at)"), {"id": form_id, "at": updated})
    engine.dispose()


def test_existing_forms_are_numbered_in_the_order_they_changed_when_migrating(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    _forms_at_0001(url)

    command.upgrade(alembic_config(url), "heads")

    engine = create_engine(url)
    with engine.connect() as conn:
        numbered = conn.execute(text("SELECT id, change_seq FROM forms ORDER BY change_seq")).all()
        counter = conn.execute(text("SELECT name, value FROM change_counters")).all()
    engine.dispose()
    assert [tuple(r) for r in numbered] == [("NLBBBBBBBB", 1), ("NLCCCCCCCC", 2), ("NLAAAAAAAA", 3)]
    assert [tuple(r) for r in counter] == [("forms", 3)]
