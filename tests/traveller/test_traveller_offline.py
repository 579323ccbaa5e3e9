"""No connection: with the API out of reach (a closed port on 127.0.0.1),
pressing "Validate now" never shows a form as validated, queues nothing for
later (a phone's evidence is only good here and now), and sends the
traveller to a kiosk or the customs desk, in the traveller's language."""
from __future__ import annotations

import pytest

from tests.traveller.conftest import INSIDE, POST, SECRET, fill_wallet, open_forms
from traveller_app.presence import SimulatedPresence
from traveller_app.wording import OFFLINE, Wording


@pytest.mark.parametrize("language", ["en", "zh_CN", "ar"])
def test_validating_without_a_connection_never_shows_validated_and_points_to_the_kiosk_or_desk(
        start_traveller, closed_port_url, tmp_path, language):
    data = tmp_path / "phone"
    fill_wallet(data, forms=open_forms(), language=language)
    phone = start_traveller(closed_port_url, data, presence=SimulatedPresence(secret=SECRET, **INSIDE, post_id=POST))
    phone.settle()  # the refresh at start found no API
    w = Wording(language)
    assert phone.app.notice == w("No connection: showing what this phone kept.")
    assert phone.app.notice in phone.texts(phone.screen("forms"))

    for attempt in range(2):  # and again: still nothing validated
        phone.go("validate")
        send = phone.screen().ids.send
        assert not send.disabled  # in the zone, a fresh token: the phone may ask
        phone.tap(send)
        phone.wait(lambda: phone.current == "result", "the result screen")
        phone.settle()
        cards = phone.screen("result").cards()
        assert [c.kind for c in cards] == ["refused"]
        assert cards[0].title == w("Not validated") and cards[0].body == w(OFFLINE)
        assert w(OFFLINE) in phone.texts()
        if language == "en":
            assert "use a kiosk or the customs desk" in cards[0].body
        assert not phone.app.online and not phone.app.busy

    # Nothing was kept as validated or queued to send later.
    wallet = phone.app.wallet
    assert [f.status for f in wallet.forms] == ["issued", "issued"]
    assert wallet.last_result is None
    phone.go("afterwards")
    assert w("No validated forms yet.") in "\n".join(phone.texts())
