"""The app built against the live API (the fixture the end-to-end tests use):
signing in reaches the server, with the passport in the request body and
nothing personal in any URL."""
from __future__ import annotations

from tests.traveller.samples import PERSONAL


def test_signing_in_asks_the_live_api_for_a_session_with_nothing_personal_in_a_url(
        start_traveller, traveller_api, tmp_path):
    phone = start_traveller(traveller_api.url, tmp_path / "phone")
    phone.sign_in()
    assert phone.current == "forms" and phone.app.wallet.passport.number == "E12345678"
    assert ("POST", "/api/v1/traveller/session", "") in traveller_api.requests
    assert not phone.app.notice.startswith("No connection")  # it was reached
    for method, path, query in traveller_api.requests:
        for secret in PERSONAL:
            assert secret.decode() not in path + "?" + query, (method, path)
