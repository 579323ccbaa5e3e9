"""The retailer portal never tells a shop why customs checked its form, nor
which officer decided: the form's page, its timeline (also as Chromium
renders it), the forms list and the CSV export."""
from __future__ import annotations

import pytest

from shared import risk
from tests.api.traveller_support import app_world, coat  # noqa: F401

from portal_support import browser_login, item, traveller

WATCH = item(125000, category="watches", description="Chronograph", serial_number="SN-10077")


@pytest.fixture
def checked(app, world):
    """The shop's watch, from a shop on customs' watch list, at the desk."""
    form = world.issue("shop", WATCH, traveller=traveller(passport_number="W7654321"))
    app.config["RISK"] = risk.policy_from_dict({
        "sample_rate": 1.0, "retailer_watchlist": ["NL859559001B01"]})
    assert world.scan("kiosk", form["qr_payload"]).get_json()["verdict"] == "check_required"
    [check] = world.get("officer", "/api/v1/checks?exit_point=AMS").get_json()["items"]
    secrets = [s for rule in check["fired_rules"] for s in (rule["code"], rule["detail"])]
    assert len(secrets) == 8  # high value, watched goods, random check, shop on the watch list
    return form, secrets + ["High value", "Watched goods", "Random check", "Shop on watch list",
                            "watchlist", "watch list"]


def leaks(text: str, secrets: list[str]) -> list[str]:
    return [s for s in secrets if s.lower() in text.lower()]


def test_the_form_page_says_where_customs_want_to_see_the_goods_not_why(shop, world, checked):
    form, secrets = checked

    html = shop.get(f"/portal/forms/{form['id']}").get_data(as_text=True)

    assert "Customs check required at AMS" in html
    assert leaks(html, secrets) == []


def test_the_forms_list_and_the_csv_export_say_nothing_of_why_either(shop, world, checked):
    form, secrets = checked
    listed = shop.get("/portal/forms").get_data(as_text=True)
    exported = shop.get("/portal/forms.csv").get_data(as_text=True)
    assert form["id"] in listed and form["id"] in exported
    assert leaks(listed, secrets) == [] and leaks(exported, secrets) == []


def test_after_the_decision_the_timeline_names_customs_not_the_officer(shop, world, checked):
    form, secrets = checked
    r = world.post("officer", f"/api/v1/forms/{form['id']}/decision", {"outcome": "validated"})
    assert r.status_code == 200, r.get_json()

    html = shop.get(f"/portal/forms/{form['id']}").get_data(as_text=True)

    assert "Export validated" in html and "Customs · AMS" in html
    assert ">officer<" not in html and "officer2" not in html
    assert leaks(html, secrets) == []
    # The same page in Dutch.
    dutch = shop.get(f"/portal/forms/{form['id']}?lang=nl").get_data(as_text=True)
    assert "Douanecontrole nodig op AMS" in dutch and "Douane · AMS" in dutch


def test_in_the_browser_the_timeline_reads_check_required_at_ams_and_nothing_more(
        page, live_server, world, checked):
    form, secrets = checked
    browser_login(page, live_server, "shop")

    page.goto(f"{live_server}/portal/forms/{form['id']}")

    timeline = page.inner_text("ol.timeline")
    assert "Customs check required at AMS" in timeline
    assert leaks(page.inner_text("body"), secrets) == []


def test_a_form_validated_in_the_app_reads_so_and_names_no_phone(shop, app_world):
    form = app_world.issue_for(coat())
    phone = app_world.phone().signed_in()
    assert phone.verdicts([form["id"]])["items"][0]["verdict"] == "validated"
    phone_actor = app_world.events(form["id"])[1]["actor"]

    html = shop.get(f"/portal/forms/{form['id']}").get_data(as_text=True)

    assert "Export validated in the traveller&#39;s app" in html
    assert "Traveller&#39;s app · AMS" in html
    assert phone_actor not in html and phone_actor.split(":")[1] not in html
    dutch = shop.get(f"/portal/forms/{form['id']}?lang=nl").get_data(as_text=True)
    assert "Uitvoer gevalideerd in de app van de reiziger" in dutch and "App van de reiziger · AMS" in dutch
