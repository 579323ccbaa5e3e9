"""The traveller app's logic without a window: the OCR of generated passport
pages, typed passports, the validation gate and forgetting."""
from __future__ import annotations

import math
from datetime import date, datetime, timezone

import pytest

from shared import mrz_ocr
from shared.traveller_client import ExitPoint, Zone
from tests.data import passports
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


# How many camera frames a traveller gives the reader for one passport. A
# phone camera delivers 15-30 frames a second; the app's scan loop hands the
# reader at most 10 a second (ScanLoop max_fps=10), and reports a zone once
# two frames read it the same (AgreeingReads). Ten frames is about one
# second of holding the page to the camera: a traveller holds it longer
# than that without noticing, so a page not read within ten is one the app
# makes them wait for.
FRAMES = 10


class _Recorded:
    """A reader that keeps every zone it returned, for the wrong-zone check."""

    def __init__(self, reader):
        self.reader = reader
        self.reads = []

    def read(self, frame):
        found = self.reader.read(frame)
        self.reads.append(found)
        return found


@pytest.fixture(scope="module")
def camera_reads():
    """Per generated page (24 holders, tests/data/passports.py): every
    zone the reader returned, frame by frame, and what the app reported,
    reading frames until it reports one or FRAMES have gone by."""
    reader = mrz_ocr.TesseractMrzReader()
    out = {}
    for index, holder in enumerate(passports.HOLDERS):
        recorded = _Recorded(reader)
        app = mrz_ocr.AgreeingReads(recorded, frames=2)
        reported = []
        for take in range(FRAMES):
            frame, _ = passports.camera_frame(holder, index, take)
            reported = app.decode(frame)
            if reported:
                break
        out[holder.number] = (passports.zone(holder), recorded.reads, reported)
    reader.close()
    return out


def test_the_app_reads_nine_in_ten_passports_within_a_second_of_frames_and_never_a_wrong_zone(camera_reads):
    """The requirement: every zone the reader accepts is the printed one,
    and at least 90 % of the pages are read (reported by the app: two
    frames agreeing) within FRAMES camera frames. Measured: 24 of 24."""
    wrong = [number for number, (lines, reads, _) in camera_reads.items()
             for read in reads if read is not None and read.lines != lines]
    assert wrong == []
    reported = [number for number, (lines, _, codes) in camera_reads.items()
                if codes and codes[0].text == "\n".join(lines)]
    assert len(reported) >= math.ceil(0.9 * len(camera_reads)), sorted(set(camera_reads) - set(reported))


def test_one_camera_frame_reads_most_passports(camera_reads):
    """The first frame of each page alone, as a single snapshot would be
    read. Measured: 20 of 24 (the others wait for the next frames)."""
    first = [number for number, (lines, reads, _) in camera_reads.items()
             if reads[0] is not None and reads[0].lines == lines]
    assert len(first) >= 18


def test_a_page_printed_with_a_wrong_check_digit_is_never_read():
    """A forged or misprinted zone (one character of the document number
    changed, its check digit not) is refused frame after frame, however
    clearly it is printed."""
    reader = mrz_ocr.TesseractMrzReader()
    for index in (0, 7, 19):
        holder = passports.HOLDERS[index]
        line1, line2 = passports.zone(holder)
        forged = line2[:3] + ("7" if line2[3] != "7" else "4") + line2[4:]
        for take in range(3):
            frame, _ = passports.camera_frame(holder, index, take, printed=(line1, forged))
            assert reader.read(frame) is None, (holder.number, take)
    reader.close()


def test_a_doubtful_character_is_settled_by_the_check_digits_or_not_at_all():
    """Per cell, the reader keeps every character Tesseract nearly chose;
    check digits must leave exactly one zone, names need no doubt at all."""
    line1, line2 = passports.zone(passports.HOLDERS[0])  # E12345678, CHEN MEI
    first, second = list(line1), list(line2)

    def decide(first, second):
        found = mrz_ocr._decide(first, second)
        return found and found[:2]

    assert decide(first, second) == (line1, line2)
    # 1 or I in the document number: only 1 passes its check digit.
    assert decide(first, second[:1] + ["1I"] + second[2:]) == (line1, line2)
    # 3 or D weigh the same (D is 13): both pass, so no read.
    assert decide(first, second[:3] + ["3D"] + second[4:]) is None
    # C or H in the surname: no check digit covers it, so no read.
    assert decide(first[:5] + ["CH"] + first[6:], second) is None
    # Neither fits: no read either.
    assert decide(first, second[:1] + ["7"] + second[2:]) is None


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


def test_every_reason_the_api_refuses_a_travellers_form_is_said_in_their_language():
    """The API's own message is English; a traveller reading Arabic or
    Japanese gets the reason in their language for every refusal the API
    gives the app: each trip or place refusal in the API's source, and the
    form's own (cancelled, expired, validated elsewhere...)."""
    import re
    from pathlib import Path

    from shared.i18n import LANGUAGES
    from shared.traveller_client import FormVerdict
    from traveller_app.wording import Wording

    source = (Path(__file__).parents[2] / "api" / "services" / "traveller.py").read_text()
    trip_codes = set(re.findall(r'TripRefusal\(\s*"(\w+)"', source))
    assert {"wrong_exit_point", "not_last_eu_exit", "not_departing_today", "sailing_departed",
            "too_early", "not_at_exit_point"} <= trip_codes
    form_codes = {"form_cancelled", "deadline_passed", "rejected_at_check", "validated_elsewhere", "form_not_found"}
    english = "Words only the API would write."
    for code in trip_codes | form_codes:
        verdict = FormVerdict("AB12CD34EF", "refused", code, english, export_deadline=TODAY)
        said = {lang: Wording(lang).refusal(verdict) for lang in LANGUAGES}
        assert english not in said.values(), code
        assert len(set(said.values())) == len(LANGUAGES), (code, said)  # each language its own words
