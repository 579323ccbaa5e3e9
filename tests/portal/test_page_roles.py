"""Who may open which page: the retailer portal is for retailers only (an
administrator or an officer who logs in gets a 403 page on every shop page,
so they can neither issue, cancel nor record a refund through it); the
supervisors' dashboard and the device fleet are for customs (administrators
and officers); intermediaries work through the API and cannot log in at all."""
from __future__ import annotations

from datetime import date

import pytest

from portal_support import csrf_token, portal_login

SHOP_PAGES = [
    ("GET", "/portal/forms"),
    ("POST", "/portal/forms"),  # the search
    ("GET", "/portal/forms.csv"),
    ("GET", "/portal/forms/new"),
    ("POST", "/portal/forms/new"),
    ("GET", "/portal/forms/{id}"),
    ("GET", "/portal/forms/{id}/print"),
    ("POST", "/portal/forms/{id}/cancel"),
    ("POST", "/portal/forms/{id}/refund"),
]
CUSTOMS_PAGES = [("GET", "/dashboard"), ("GET", "/dashboard/fleet")]
PAGES = {**{p: ("shop",) for p in SHOP_PAGES}, **{p: ("root", "officer") for p in CUSTOMS_PAGES}}


def test_the_table_names_every_page(app):
    pages = {(m, rule.rule.replace("<form_id>", "{id}")) for rule in app.url_map.iter_rules()
             for m in rule.methods - {"HEAD", "OPTIONS"}
             if rule.rule.startswith(("/portal/forms", "/dashboard"))}
    assert pages == set(PAGES)


@pytest.mark.parametrize("who", ["shop", "root", "officer"])
def test_each_user_opens_exactly_the_pages_of_their_role(app, world, who):
    form = world.issue("shop")
    client = app.test_client()
    assert portal_login(client, who).status_code == 302
    # The session's CSRF token, from the page the user lands on.
    token = csrf_token(client, "/portal/forms" if who == "shop" else "/dashboard")
    for (method, path), allowed in PAGES.items():
        url = path.format(id=form["id"])
        if method == "GET":
            response = client.get(url)
        else:
            response = client.post(url, data={"csrf_token": token, "version": "x",
                                              "amount": "1.00", "paid_on": date.today().isoformat()})
        if who in allowed:
            assert response.status_code in (200, 302, 303, 422), (who, method, url, response.status_code)
        else:
            assert response.status_code == 403, (who, method, url, response.status_code)
            assert "Your account cannot open this page." in response.get_data(as_text=True)
    # Nothing an administrator or an officer did reached the form.
    assert world.get("shop", f"/api/v1/forms/{form['id']}").get_json()["status"] in ("issued", "cancelled")
    if who != "shop":
        assert world.get("shop", f"/api/v1/forms/{form['id']}").get_json()["status"] == "issued"


def test_an_intermediary_cannot_log_in_to_the_pages(client, world):
    response = portal_login(client, "refunds")
    assert response.status_code == 403
    assert client.get("/portal/forms").status_code == 302  # to the login page
