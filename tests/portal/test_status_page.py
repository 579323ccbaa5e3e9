"""The traveller's status page: public, no personal data, rate-limited."""
from __future__ import annotations

from portal_support import csrf_token, item, traveller

from shared import formid


def _look_up(client, form_id: str, last_name: str, lang: str = "en"):
    token = csrf_token(client, f"/status?lang={lang}")
    return client.post("/status", data={"csrf_token": token, "form_id": form_id, "last_name": last_name})


def test_a_traveller_sees_status_deadline_and_the_next_step_and_nothing_personal(client, world):
    form = world.issue(traveller=traveller(last_name="Müller-Lüdenscheidt"))
    response = _look_up(client, form["id"].lower(), "MULLER LUDENSCHEIDT")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Not validated yet" in html
    assert form["export_deadline"] in html
    assert "Validate your form at your last EU airport or port, before you check in your luggage." in html
    for personal in ("Mei", "Müller", "MULLER", "E12345678", "Wool coat", "121"):
        assert personal not in html, personal
    assert response.headers["Cache-Control"] == "no-store"


def test_each_status_has_one_next_step(client, world):
    validated = world.issue()
    world.scan("kiosk", validated["qr_payload"])
    desk = world.issue("shop", item(125000, category="watches", serial_number="SN-9"))
    world.scan("kiosk", desk["qr_payload"])
    cancelled = world.issue()
    world.post("shop", f"/api/v1/forms/{cancelled['id']}/cancel")
    expectations = {
        validated["id"]: ("Export validated", "Your refund will be paid by Refunds Inc."),
        desk["id"]: ("Customs check needed", "Go to the customs desk with your goods, your passport and this form"),
        cancelled["id"]: ("Form cancelled by the shop", "Ask the shop if you have questions."),
    }
    for form_id, (heading, step) in expectations.items():
        html = _look_up(client, form_id, "Chen").get_data(as_text=True)
        assert heading in html and step in html, form_id


def test_a_wrong_name_and_an_unknown_form_get_the_same_answer(client, world):
    form = world.issue()
    wrong_name = _look_up(client, form["id"], "Smith")
    other = formid.new_form_id("NL")
    missing = _look_up(client, other, "Chen")
    assert wrong_name.status_code == missing.status_code == 404
    message = "We found no form with this number and last name."
    assert message in wrong_name.get_data(as_text=True) and message in missing.get_data(as_text=True)


def test_a_mistyped_form_number_is_caught_by_its_check_character(client, world):
    form = world.issue()
    typo = form["id"][:-1] + ("A" if form["id"][-1] != "A" else "B")
    response = _look_up(client, typo, "Chen")
    assert response.status_code == 422
    assert "This is not a valid form number. Check it on your form." in response.get_data(as_text=True)


def _one_window(monkeypatch):
    """Every lookup of the test in one rate-limit window."""
    from api.models import utcnow
    from api.portal import traveller as page

    moment = utcnow().replace(minute=10, second=10)
    monkeypatch.setattr(page, "utcnow", lambda: moment)


def test_lookups_are_rate_limited_per_address(app, client, world, monkeypatch):
    _one_window(monkeypatch)
    app.config["STATUS_LOOKUPS_PER_ADDRESS_PER_MINUTE"] = 2
    form = world.issue()
    statuses = [_look_up(client, form["id"], "Chen").status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    refused = _look_up(client, form["id"], "Chen")
    assert "Too many attempts" in refused.get_data(as_text=True)
    assert int(refused.headers["Retry-After"]) >= 1


def test_lookups_are_rate_limited_per_form_from_any_address(app, world, monkeypatch):
    _one_window(monkeypatch)
    app.config["STATUS_LOOKUPS_PER_FORM_PER_HOUR"] = 2
    form = world.issue()
    answers = []
    for n in range(3):
        client = app.test_client()
        token = csrf_token(client, "/status")
        answers.append(client.post("/status", data={"csrf_token": token, "form_id": form["id"], "last_name": "Guess"},
                                   environ_base={"REMOTE_ADDR": f"10.0.0.{n + 1}"}).status_code)
    assert answers[:2] == [404, 404] and answers[2] == 429


def test_the_page_speaks_the_kiosk_languages(client, world):
    form = world.issue()
    chinese = _look_up(client, form["id"], "Chen", lang="zh").get_data(as_text=True)
    assert '<html lang="zh-Hans" dir="ltr">' in chinese and "尚未验证" in chinese
    arabic = client.get("/status?lang=ar").get_data(as_text=True)
    assert '<html lang="ar" dir="rtl">' in arabic and "تحقق من نموذج استرداد الضريبة" in arabic
    for code, name in (("ja", "日本語"), ("ko", "한국어"), ("tr", "Türkçe"), ("ru", "Русский")):
        html = client.get(f"/status?lang={code}").get_data(as_text=True)
        assert f'<html lang="{code}"' in html and name in html


def test_a_page_left_open_too_long_is_simply_shown_again(client, world):
    form = world.issue()
    response = client.post("/status", data={"csrf_token": "stale", "form_id": form["id"], "last_name": "Chen"})
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "This page was open for a long time. Please send it again." in html
    assert f'value="{form["id"]}"' in html
