"""What a validation at the desk is worth: the refund is that of the goods
shown, with the intermediary's fee as it was when the form was issued
(not whatever it is by the time of the check, nor another intermediary's),
and never more than the refund due; a partial validation below the
member state's minimum amount is still certified."""
from __future__ import annotations

from datetime import date, datetime, timezone

from sqlalchemy import create_engine, text, update

from api import database
from api.cli import migrate
from api.migrations import alembic_config
from api.models import Intermediary, Retailer
from tests.builders import item, traveller

WATCH = item(49999, category="watches", description="Diver watch")  # VAT 86.78
BOOKS = item(1999, quantity=2, vat_rate=9, category="books", description="Atlas")  # VAT 3.30


def at_the_desk(world, *items) -> dict:
    form = world.issue("shop", *items, traveller=traveller(passport_number=f"F{world.invoices + 1:07d}"))
    assert world.scan("kiosk", form["qr_payload"]).get_json()["verdict"] == "check_required"
    return form


def partially(world, form_id, present: list[bool]) -> dict:
    r = world.post("officer", f"/api/v1/forms/{form_id}/decision", {
        "outcome": "partially_validated",
        "lines": [{"line": n, "present": p} for n, p in enumerate(present, start=1)]})
    assert r.status_code == 200, r.get_json()
    return r.get_json()


def amounts(form) -> tuple:
    return (form["validated_total_cents"], form["validated_vat_cents"], form["validated_refund_cents"])


# --- the fee in force when the form was issued -------------------------------------

def test_a_fee_raised_after_the_form_was_issued_does_not_shrink_its_refund(app, world):
    form = at_the_desk(world, WATCH, BOOKS)
    assert (form["fee_cents"], form["refund_cents"]) == (901, 8107)  # 10 % of 90.08
    with app.app_context():
        session = database.session()
        session.execute(update(Intermediary).where(Intermediary.id == world.ids["intermediary"])
                        .values(fee_bp=3000))
        session.commit()

    body = partially(world, form["id"], [True, False])

    # The watch alone: 86.78 of VAT less 10 % (8.68), not less 30 %.
    assert amounts(body) == (49999, 8678, 7810)


def test_a_fee_cut_after_the_form_was_issued_does_not_raise_its_refund_above_the_refund_due(app, world):
    form = at_the_desk(world, WATCH, BOOKS)
    with app.app_context():
        session = database.session()
        session.execute(update(Intermediary).where(Intermediary.id == world.ids["intermediary"]).values(fee_bp=0))
        session.commit()

    r = world.post("officer", f"/api/v1/forms/{form['id']}/decision", {"outcome": "validated"})

    assert r.status_code == 200, r.get_json()
    assert amounts(r.get_json()) == (53997, 9008, 8107)
    assert r.get_json()["validated_refund_cents"] == form["refund_cents"]


def test_a_retailer_that_changed_intermediary_keeps_the_old_one_for_its_old_forms(app, world):
    form = at_the_desk(world, WATCH, BOOKS)
    app.config["WEBHOOKS_ALLOW_PRIVATE"] = True
    hooks = {}
    for who in ("refunds", "other"):
        r = world.post(who, "/api/v1/webhooks", {"url": "http://127.0.0.1:9/hook", "events": ["form.partially_validated"]})
        hooks[who] = r.get_json()["id"]
    # The shop moves to the other intermediary (no fee).
    with app.app_context():
        session = database.session()
        session.execute(update(Retailer).where(Retailer.id == world.ids["shop"])
                        .values(intermediary_id=world.ids["other_intermediary"]))
        session.commit()

    body = partially(world, form["id"], [True, False])

    assert amounts(body) == (49999, 8678, 7810)  # the fee of the intermediary that issued it
    # The intermediary that issued the form still sees it and hears of it;
    # the shop's new one has no business with it.
    assert world.get("refunds", f"/api/v1/forms/{form['id']}").status_code == 200
    assert world.get("other", f"/api/v1/forms/{form['id']}").status_code == 404
    assert world.get("other", f"/api/v1/forms/{form['id']}/events").status_code == 404
    assert form["id"] not in world.get("other", "/api/v1/forms").get_data(as_text=True)
    assert [d["payload"]["data"]["form_id"] for d in world.get(
        "refunds", f"/api/v1/webhooks/{hooks['refunds']}/deliveries").get_json()["items"]] == [form["id"]]
    assert world.get("other", f"/api/v1/webhooks/{hooks['other']}/deliveries").get_json()["items"] == []
    # Forms issued from now on are the new intermediary's.
    newer = world.issue("shop", item(), traveller=traveller(passport_number="F9999999"))
    assert (newer["fee_cents"], newer["refund_cents"]) == (0, 2100)
    assert world.get("other", f"/api/v1/forms/{newer['id']}").status_code == 200
    assert world.get("refunds", f"/api/v1/forms/{newer['id']}").status_code == 404


# --- the refund due is the cap ---------------------------------------------------

def test_the_refund_recorded_is_capped_at_the_refund_due_not_the_vat(world):
    form = at_the_desk(world, WATCH, BOOKS)
    partially(world, form["id"], [False, True])  # the books: VAT 3.30, fee 0.33
    pay = {"paid_at": "2026-12-01T10:00:00+00:00"}

    too_much = world.post("shop", f"/api/v1/forms/{form['id']}/refund", {"amount_cents": 330, **pay})

    assert too_much.status_code == 422 and too_much.get_json()["errors"] == {"amount_cents": ["At most 297."]}
    assert world.post("shop", f"/api/v1/forms/{form['id']}/refund", {"amount_cents": 297, **pay}).status_code == 200


# --- the member state's minimum and a partial validation -----------------------------

def test_a_partial_validation_worth_less_than_the_minimum_is_still_certified(world):
    # EUR 50.00 exactly, the Dutch minimum: a watch of 49.99 and a 0.01 bag.
    form = at_the_desk(world, item(4999, category="watches"), item(1, description="Carrier bag"))
    assert form["total_cents"] == 5000

    body = partially(world, form["id"], [True, False])

    assert body["status"] == "partially_validated"
    assert amounts(body) == (4999, 868, 781)  # below EUR 50.00: certified as shown
    kiosk = world.scan("kiosk", form["qr_payload"]).get_json()
    assert (kiosk["verdict"], kiosk["reason_code"]) == ("validated", "partially_validated")


def test_a_partial_validation_of_exactly_the_minimum_is_certified_alike(world):
    form = at_the_desk(world, item(5000, category="watches"), item(100, description="Carrier bag"))
    assert amounts(partially(world, form["id"], [True, False]))[0] == 5000


# --- forms that exist already get the fee they were issued with --------------------------

def test_the_migration_gives_existing_forms_the_fee_they_were_issued_with(database_url):
    from alembic import command

    # The database as it was before forms kept their fee (and back again:
    # the downgrade works too).
    url = database_url
    command.downgrade(alembic_config(url), "0012")
    engine = create_engine(url)
    now = datetime(2026, 11, 1, tzinfo=timezone.utc)
    if url.startswith("sqlite"):
        now = now.replace(tzinfo=None)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO intermediaries (id, name, fee_bp, created_at) VALUES (1, 'Refunds', 1000, :t)"),
                     {"t": now})
        conn.execute(text("INSERT INTO retailers (id, vat_number, name, address, intermediary_id, created_at) "
                          "VALUES (1, 'NL859559001B01', 'Watch House', '', 1, :t), "
                          "(2, 'NL000099998B57', 'Bookshop', '', NULL, :t)"), {"t": now})
        # (id, retailer, intermediary, vat, fee): issued at today's 10 %; at
        # 15 % before the intermediary lowered its fee; without intermediary.
        for form_id, retailer, intermediary, vat, fee in [
            ("NLAAAAAAA1", 1, 1, 9008, 901), ("NLAAAAAAA2", 1, 1, 9008, 1351), ("NLAAAAAAA3", 2, None, 2100, 0),
        ]:
            conn.execute(text(
                "INSERT INTO forms (id, retailer_id, intermediary_id, status, invoice_number, purchase_date, "
                "passport_country, nationality, residence_country, currency, total_cents, vat_cents, fee_cents, "
                "refund_cents, export_deadline, qr_payload, created_at, updated_at) VALUES (:id, :r, :i, 'issued', "
                ":id, :d, 'CN', 'CN', 'CN', 'EUR', 50000, :vat, :fee, :refund, :d, 'x', :t, :t)"),
                {"id": form_id, "r": retailer, "i": intermediary, "vat": vat, "fee": fee, "refund": vat - fee,
                 "d": date(2026, 11, 1), "t": now})
    engine.dispose()

    migrate(url)

    engine = create_engine(url)
    with engine.connect() as conn:
        fees = dict(conn.execute(text("SELECT id, fee_bp FROM forms")).all())
    engine.dispose()
    assert fees == {"NLAAAAAAA1": 1000, "NLAAAAAAA2": 1500, "NLAAAAAAA3": 0}


def test_a_refund_paid_in_the_future_is_refused(world):
    from datetime import timedelta

    form = world.issue("shop")
    world.scan("kiosk", form["qr_payload"])
    tomorrow = (datetime.now(timezone.utc) + timedelta(days=1)).isoformat()

    r = world.post("shop", f"/api/v1/forms/{form['id']}/refund", {"amount_cents": 1890, "paid_at": tomorrow})

    assert r.status_code == 422 and r.get_json()["errors"] == {"paid_at": ["Must not be in the future."]}
    assert world.get("shop", f"/api/v1/forms/{form['id']}").get_json()["status"] == "validated"
