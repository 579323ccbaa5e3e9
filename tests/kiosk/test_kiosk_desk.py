"""The kiosk's judgement of a scan, without the screens, against a live API:
forms, duplicates, passports, boarding passes, offline, pairing."""
from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

from kiosk_app import desk
from shared import scanning
from shared.client import KioskClient
from shared.mrz import check_digit
from shared.offline_queue import OfflineQueue

WATCH = {"description": "Watch", "quantity": 1, "unit_price_cents": 125000, "vat_rate": 21,
         "category": "watches", "serial_number": "SN-7"}
AMS_CDG = "M1SMITH/JOHN MR       EQWE456 AMSCDGAF 1241 332Y012F0007 100"
AMS_PEK = "M1CHEN/MEI            EXYZ789 AMSPEKKL 0897 332Y023C0042 100"


def passport_zone(number="E12345678", state="CHN", expiry="340101"):
    """The TD3 zone of Mei Chen's passport (the `world` traveller)."""
    line1 = f"P<{state}CHEN<<MEI".ljust(44, "<")
    line2 = f"{number}{check_digit(number)}{state}8803145F{expiry}{check_digit(expiry)}" + "<" * 14 + "<"
    line2 = line2[:13] + "880314" + str(check_digit("880314")) + line2[20:]
    line2 += str(check_digit(line2[0:10] + line2[13:20] + line2[21:43]))
    return f"{line1}\n{line2}"


@pytest.fixture
def make_desk(tmp_path, world):
    desks = []

    def make(url, token=None, name="kiosk"):
        queue = OfflineQueue(tmp_path / f"{name}-queue.sqlite3")
        d = desk.ExitDesk(KioskClient(url, token if token is not None else world.devices["kiosk"]), queue,
                          desk.KeyCache(tmp_path / f"{name}-jwks.json"), exit_point="AMS",
                          desk_location="Departures 2",
                          credentials=desk.DeviceCredentials(tmp_path / f"{name}-device.json"))
        desks.append(d)
        return d

    yield make
    for d in desks:
        d.queue.close()


def test_a_form_is_validated_and_names_who_pays_the_refund(live_server, world, make_desk):
    form = world.issue()
    [outcome] = make_desk(live_server).handle(form["qr_payload"], desk.TravellerSession())
    assert (outcome.kind, outcome.form_id, outcome.payer) == (desk.VALIDATED, form["id"], "Refunds Inc")


def test_a_form_scanned_twice_in_a_session_is_answered_politely_without_a_request(
        live_server, world, make_desk):
    form = world.issue()
    session, kiosk = desk.TravellerSession(), make_desk(live_server)
    kiosk.handle(form["qr_payload"], session)
    kiosk.client.base_url = "http://127.0.0.1:9"  # any request now would fail
    [again] = kiosk.handle(form["qr_payload"], session)
    assert again.kind == desk.DUPLICATE
    assert len(session.forms()) == 1


def test_a_passport_zone_pulls_up_every_open_form_of_its_holder(live_server, world, make_desk):
    coat, watch = world.issue(), world.issue("shop", WATCH)
    session = desk.TravellerSession()
    outcomes = make_desk(live_server).handle(passport_zone(), session)
    assert {(o.form_id, o.kind) for o in outcomes} == {
        (coat["id"], desk.VALIDATED), (watch["id"], desk.CHECK_REQUIRED)}
    assert {o.desk_location for o in outcomes if o.kind == desk.CHECK_REQUIRED} == {"Departures 2"}


def test_an_expired_passport_is_still_read_and_flagged_for_an_officer(live_server, world, make_desk):
    world.issue()
    [outcome] = make_desk(live_server).handle(passport_zone(expiry="240101"), desk.TravellerSession())
    assert outcome.kind == desk.VALIDATED and outcome.passport_expired


def test_a_boarding_pass_to_paris_warns_that_this_is_not_the_last_eu_exit(live_server, make_desk):
    [outcome] = make_desk(live_server).handle(AMS_CDG, desk.TravellerSession())
    assert outcome.kind == desk.NOT_LAST_EXIT
    assert "Charles de Gaulle" in outcome.destination


def test_a_boarding_pass_to_beijing_says_this_is_the_right_place(live_server, make_desk):
    [outcome] = make_desk(live_server).handle(AMS_PEK, desk.TravellerSession())
    assert outcome.kind == desk.LAST_EXIT_OK


def test_offline_a_genuine_form_is_recorded_and_a_forged_one_refused_on_the_spot(
        live_server, world, make_desk):
    good, other = world.issue(), world.issue()
    kiosk = make_desk(live_server)
    assert kiosk.refresh_keys()  # the keys were cached while online
    kiosk.client.base_url = "http://127.0.0.1:9"  # the network is gone
    session = desk.TravellerSession()
    [recorded] = kiosk.handle(good["qr_payload"], session)
    assert (recorded.kind, recorded.form_id) == (desk.RECORDED, good["id"])
    head, payload, signature = other["qr_payload"].split(".")
    forged = f"{head}.{payload}.{signature[:-4]}AAAA"
    [refused] = kiosk.handle(forged, session)
    assert (refused.kind, refused.reason_code) == (desk.REFUSED, "bad_signature")
    assert len(kiosk.queue) == 1 and not kiosk.online


def test_the_sync_sends_the_queue_once_the_api_is_back(live_server, world, make_desk):
    form = world.issue()
    kiosk = make_desk(live_server)
    kiosk.refresh_keys()
    kiosk.client.base_url = kiosk.sync_client.base_url = "http://127.0.0.1:9"
    kiosk.handle(form["qr_payload"], desk.TravellerSession())
    assert kiosk.sync().remaining == 1 and not kiosk.online
    kiosk.client.base_url = kiosk.sync_client.base_url = live_server
    report = kiosk.sync()
    assert report.remaining == 0 and kiosk.online
    assert [v.verdict for _, v in report.sent] == ["validated"]


def test_a_pairing_qr_code_printed_by_the_cli_provisions_an_unpaired_kiosk(
        live_server, world, make_desk, runner, tmp_path):
    png = tmp_path / "pairing.png"
    result = runner.invoke(args=["pair-device", "kiosk-7", "--exit-point", "RTM",
                                 "--api-url", live_server, "--png", str(png)])
    assert result.exit_code == 0, result.output
    [code] = scanning.decode_file(png)  # what the kiosk camera reads
    unpaired = make_desk(live_server, token="", name="new")
    [outcome] = unpaired.handle(code.text, desk.TravellerSession())
    assert (outcome.kind, outcome.destination) == (desk.PAIRED, "RTM")
    assert unpaired.exit_point == "RTM" and unpaired.client.device_token
    assert desk.DeviceCredentials(tmp_path / "new-device.json").load()["device_token"] == unpaired.client.device_token
    # The new token works: the kiosk scans a form.
    [verdict] = unpaired.handle(world.issue()["qr_payload"], desk.TravellerSession())
    assert verdict.kind == desk.VALIDATED
    # The code is single-use, and a paired kiosk ignores pairing codes.
    again = make_desk(live_server, token="", name="second")
    assert again.handle(code.text, desk.TravellerSession())[0].kind == desk.PAIRING_REFUSED
    assert unpaired.handle(code.text, desk.TravellerSession())[0].kind == desk.PAIRING_REFUSED


@pytest.mark.parametrize("text,kind", [
    ("taxfree-pair://device?api=http%3A%2F%2Fx&code=abc", "pairing"),
    (passport_zone(), "passport"),
    (AMS_PEK, "boarding_pass"),
    ("eyJhbGciOiJFZERTQSJ9.e30.sig", "qr"),
])
def test_scanned_text_is_routed_by_its_shape(text, kind):
    assert desk.classify(text) == kind


def test_a_pdf417_boarding_pass_image_reads_as_a_boarding_pass():
    import zxingcpp

    image = np.array(zxingcpp.write_barcode_to_image(
        zxingcpp.create_barcode(AMS_CDG, zxingcpp.BarcodeFormat.PDF417), scale=3))
    [code] = scanning.Decoder(scanning.BOARDING_PASS).decode(image)
    assert desk.classify(code.text) == "boarding_pass"


# --- offline: what the kiosk can and cannot vouch for --------------------------

def _card_text(outcome) -> str:
    from kiosk_app.wording import Wording

    card = Wording("en").card(outcome, "Departures 2")
    return f"{card.title}\n{card.body}"


def test_offline_with_no_keys_cached_a_form_goes_to_the_desk_never_called_genuine(
        live_server, world, make_desk):
    form = world.issue()
    kiosk = make_desk("http://127.0.0.1:9")  # never reached the API: no keys at all
    session = desk.TravellerSession()
    [outcome] = kiosk.handle(form["qr_payload"], session)
    assert (outcome.kind, outcome.form_id) == (desk.UNVERIFIED, form["id"])
    text = _card_text(outcome)
    assert text.startswith("Go to the customs desk") and "Departures 2" in text
    assert "genuine" not in text and "recorded" not in text.lower() and "saved" not in text
    # Kept for the record all the same, as a queued replay.
    [pending] = kiosk.queue.pending()
    assert pending.body["queued"] is True and "scanned_at" in pending.body
    # The traveller's summary says the same.
    assert [o.kind for o in session.forms()] == [desk.UNVERIFIED]


def test_offline_a_form_signed_with_a_key_the_cache_lacks_goes_to_the_desk(
        live_server, world, make_desk, runner):
    kiosk = make_desk(live_server)
    assert kiosk.refresh_keys()
    # A key the kiosk never saw (or a forger's own).
    assert runner.invoke(args=["rotate-keys", "--purpose", "qr"]).exit_code == 0
    form = world.issue()
    kiosk.client.base_url = "http://127.0.0.1:9"
    [outcome] = kiosk.handle(form["qr_payload"], desk.TravellerSession())
    assert outcome.kind == desk.UNVERIFIED and "genuine" not in _card_text(outcome)


def test_offline_a_passport_read_sends_the_traveller_to_the_desk(live_server, world, make_desk):
    world.issue()
    kiosk = make_desk("http://127.0.0.1:9")
    [outcome] = kiosk.handle(passport_zone(expiry="240101"), desk.TravellerSession())
    assert outcome.kind == desk.UNVERIFIED and outcome.passport_expired
    assert "genuine" not in _card_text(outcome) and "expired" in _card_text(outcome)
    [pending] = kiosk.queue.pending()
    assert pending.body["queued"] is True


def test_a_live_scan_sends_no_time_and_a_queued_one_is_marked_and_dated(live_server, world, make_desk):
    live, later = world.issue(), world.issue()
    kiosk = make_desk(live_server)
    kiosk.handle(live["qr_payload"], desk.TravellerSession())
    assert len(kiosk.queue) == 0
    kiosk.refresh_keys()
    kiosk.client.base_url = "http://127.0.0.1:9"
    [recorded] = kiosk.handle(later["qr_payload"], desk.TravellerSession())
    assert recorded.kind == desk.RECORDED
    [pending] = kiosk.queue.pending()
    assert set(pending.body) == {"qr_payload", "queued", "scanned_at"} and pending.body["queued"] is True


def test_while_scans_wait_in_the_queue_new_ones_join_it_in_order(live_server, world, make_desk):
    first, second = world.issue(), world.issue()
    kiosk = make_desk(live_server)
    kiosk.refresh_keys()
    kiosk.client.base_url = kiosk.sync_client.base_url = "http://127.0.0.1:9"
    kiosk.handle(first["qr_payload"], desk.TravellerSession())
    # The API is back, but the queue is not sent yet: a live scan now would
    # be newer than the queued one and shut it out.
    kiosk.client.base_url = kiosk.sync_client.base_url = live_server
    kiosk.online = True
    [outcome] = kiosk.handle(second["qr_payload"], desk.TravellerSession())
    assert outcome.kind == desk.RECORDED
    report = kiosk.sync()
    assert [v.form_id for _, v in report.sent] == [first["id"], second["id"]]
    assert [v.verdict for _, v in report.sent] == ["validated", "validated"]
    assert report.failed == [] and kiosk.online


def test_a_queued_scan_the_api_refuses_is_reported_for_the_supervisor(app, live_server, world, make_desk):
    from sqlalchemy import select

    from api import database
    from api.models import RefusedReplay

    form, other = world.issue(), world.issue()
    kiosk = make_desk(live_server)
    kiosk.refresh_keys()
    kiosk.client.base_url = kiosk.sync_client.base_url = "http://127.0.0.1:9"
    kiosk.client.clock_offset = -timedelta(minutes=10)  # the scan was made ten minutes ago
    kiosk.handle(form["qr_payload"], desk.TravellerSession())
    # A live scan arrived since, with this kiosk's token: a scan the kiosk
    # says it made before that cannot be taken on its word.
    assert world.post("kiosk", "/api/v1/scans", {"qr_payload": other["qr_payload"]}).status_code == 200
    kiosk.client.base_url = kiosk.sync_client.base_url = live_server
    report = kiosk.sync()
    [(item, error)] = report.failed
    assert (error.status, error.code) == (422, "scanned_before_last_contact")
    [refused] = kiosk.queue.failed()
    assert (refused["form_id"], refused["code"]) == (form["id"], "scanned_before_last_contact")
    assert refused["reported_at"] is not None and kiosk.queue.unreported() == []
    with app.app_context():
        [row] = database.session().scalars(select(RefusedReplay)).all()
        assert (row.form_id, row.code, row.kind, row.status) == (form["id"], "scanned_before_last_contact", "qr", 422)
    # Reported again (a lost answer): kept once.
    assert kiosk.sync_client.report_refused(kiosk.queue.failed()) == 0
    assert world.get("shop", f"/api/v1/forms/{form['id']}").get_json()["status"] == "issued"


def test_offline_with_a_full_disk_the_traveller_is_sent_to_the_desk_and_nothing_is_said_recorded(
        live_server, world, make_desk):
    from kiosk_app.wording import Wording

    kiosk = make_desk(live_server)
    assert kiosk.refresh_keys()
    kiosk.client.base_url = "http://127.0.0.1:9"  # the network is gone
    # The disk fills up: SQLite stops at max_page_count with the error a
    # full disk gives ("database or disk is full").
    pages = kiosk.queue._db.execute("PRAGMA page_count").fetchone()[0]
    kiosk.queue._db.execute(f"PRAGMA max_page_count = {pages + 2}")
    session = desk.TravellerSession()
    outcomes = []
    for _ in range(60):
        form = world.issue()
        [outcome] = kiosk.handle(form["qr_payload"], session)
        outcomes.append(outcome.kind)
        if outcome.kind != desk.RECORDED:
            break
    recorded = outcomes.count(desk.RECORDED)
    assert outcomes == [desk.RECORDED] * recorded + [desk.OUT_OF_SERVICE] and recorded >= 1
    assert (outcome.reason_code, outcome.form_id) == ("queue_unwritable", form["id"])
    assert len(kiosk.queue) == recorded and not kiosk.queue_writable
    card = Wording("en").card(outcome)
    assert card.title == "This kiosk is out of service"
    assert card.body == "Please go to the customs desk.\nThe customs desk is at: Departures 2."
    # Not recorded, so not "already scanned": once there is room again the
    # same form is recorded, and the kiosk reports its queue writable.
    kiosk.queue._db.execute(f"PRAGMA max_page_count = {pages + 1000}")
    [again] = kiosk.handle(form["qr_payload"], session)
    assert again.kind == desk.RECORDED and kiosk.queue_writable
    assert len(kiosk.queue) == recorded + 1


def test_offline_with_a_full_disk_a_passport_scan_is_sent_to_the_desk_too(live_server, world, make_desk):
    world.issue()
    kiosk = make_desk(live_server)
    kiosk.client.base_url = "http://127.0.0.1:9"
    # The disk went read-only (as a failing card does): no write succeeds.
    kiosk.queue._db.execute("PRAGMA query_only = 1")
    [outcome] = kiosk.handle(passport_zone(), desk.TravellerSession())
    assert (outcome.kind, outcome.reason_code) == (desk.OUT_OF_SERVICE, "queue_unwritable")
    assert not kiosk.queue_writable and len(kiosk.queue) == 0
