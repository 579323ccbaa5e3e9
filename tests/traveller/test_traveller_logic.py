"""The traveller app's logic without a window: the OCR of generated passport
pages, typed passports, the validation gate and forgetting."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from shared import mrz_ocr
from shared.traveller_client import ExitPoint, Zone
from tests.data.passports import pages
from traveller_app import gate, passport_entry
from traveller_app.presence import SimulatedPresence
from traveller_app.wallet import Passport, Wallet

TODAY = date(2026, 12, 3)
NOW = datetime(2026, 12, 3, 10, 15, tzinfo=timezone.utc)
SCHIPHOL = ExitPoint("AMS", "Amsterdam Airport Schiphol", "airport", "Departures 2",
                     (Zone("Departures 1", {"type": "Polygon", "coordinates": [[
                         [4.760, 52.305], [4.775, 52.305], [4.775, 52.315], [4.760, 52.315], [4.760, 52.305]]]}),),
                     ("AMS-D1-01",))
SECRET = bytes(range(32))


def test_every_zone_the_reader_accepts_is_the_printed_one():
    reader = mrz_ocr.TesseractMrzReader()
    accepted, wrong = set(), []
    for take in range(6):  # six camera frames of each page
        for page in pages(take=take):
            read = reader.read(page.frame)
            if read is not None:
                (accepted.add(page.holder.number) if read.lines == page.lines else wrong.append(page.name))
    assert wrong == []
    # Measured: 18 of 24 pages read within six frames (target 90 %, not met yet).
    assert len(accepted) >= 18


def test_a_typed_zone_with_a_wrong_check_digit_is_refused_naming_the_field():
    line1 = "P<CHNCHEN<<MEI<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<"
    good = "E123456782CHN8803148F3401011<<<<<<<<<<<<<<<6"
    assert passport_entry.from_zone(f"{line1}\n{good}", TODAY).number == "E12345678"
    with pytest.raises(passport_entry.EntryError) as refused:
        passport_entry.from_zone(f"{line1}\n{good.replace('8803148', '8803158')}", TODAY)
    assert refused.value.field == "mrz_birth_date"


def evidence(**place):
    return SimulatedPresence(clock=lambda: NOW, secret=SECRET, **place).evidence("install")


@pytest.mark.parametrize("place,reason", [
    (dict(lat=52.40, lon=4.90, post_id="AMS-D1-01"), gate.OUTSIDE_ZONE),
    (dict(lat=52.31, lon=4.768), gate.NO_BEACON),
    (dict(lat=52.31, lon=4.768, post_id="AMS-D1-01", seen_seconds_ago=300), gate.NO_BEACON),
    (dict(lat=52.31, lon=4.768, post_id="AMS-D1-01", accuracy_m=120), gate.POOR_ACCURACY),
    (dict(lat=52.31, lon=4.768, post_id="AMS-D1-01", mock=True), gate.MOCK_LOCATION),
    (dict(post_id="AMS-D1-01"), gate.NO_FIX),
    (dict(lat=52.31, lon=4.768, post_id="AMS-D1-01"), gate.OPEN),
])
def test_validate_now_opens_only_inside_the_zone_with_a_fresh_token_and_a_good_fix(place, reason):
    assert gate.validation_gate(evidence(**place), [SCHIPHOL], NOW).reason == reason


def test_forget_me_leaves_no_personal_data_in_the_data_folder(tmp_path):
    wallet = Wallet(tmp_path)
    wallet.keep_passport(Passport("E12345678", "CN", date(1988, 3, 14), date(2034, 1, 1), "MEI CHEN"))
    wallet.forget()
    for path in tmp_path.rglob("*"):
        data = path.read_bytes()
        for secret in (b"E12345678", b"CHEN", b"1988-03-14"):
            assert secret not in data, path
    assert Wallet(tmp_path).passport is None
