"""Passport machine-readable zone (ICAO 9303 TD3): the published specimen,
check digits, keyboard-wedge input forms and country codes."""
from datetime import date

import pytest

from shared.mrz import MrzError, check_digit, country_of, looks_like_mrz, parse_td3

# ICAO Doc 9303 part 4, the specimen passport.
LINE1 = "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<"
LINE2 = "L898902C36UTO7408122F1204159ZE184226B<<<<<10"
SPECIMEN = f"{LINE1}\n{LINE2}"
TODAY = date(2026, 11, 28)
MRZ_CHARS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ<"

# Positions of line 2 that a check digit covers: document number + check,
# birth date + check, expiry + check, optional data + check, composite.
CHECKED = [*range(0, 10), *range(13, 20), *range(21, 44)]


def value(ch):
    return 0 if ch == "<" else int(ch, 36)


def td3(surname="CHEN", given="MEI", number="E12345678", state="CHN", nationality="CHN",
        birth="880314", sex="F", expiry="340101", optional=""):
    """A valid zone with correct check digits, to build cases the specimen lacks."""
    names = f"{surname}<<{given.replace(' ', '<')}"
    line1 = f"P<{state:<<3}{names}".ljust(44, "<")
    number_field = f"{number:<<9}"
    optional_field = f"{optional:<<14}"
    opt_check = "<" if not optional else str(check_digit(optional_field))
    line2 = (f"{number_field}{check_digit(number_field)}{nationality:<<3}{birth}{check_digit(birth)}"
             f"{sex}{expiry}{check_digit(expiry)}{optional_field}{opt_check}")
    line2 += str(check_digit(line2[0:10] + line2[13:20] + line2[21:43]))
    return line1, line2


def test_the_icao_specimen_reads_with_every_field():
    p = parse_td3(SPECIMEN, today=TODAY)
    assert p.document_type == "P<"
    assert p.document_number == "L898902C3"
    assert p.issuing_state == "UTO" and p.issuing_country is None
    assert p.nationality_code == "UTO" and p.nationality is None
    assert (p.surname, p.given_names) == ("ERIKSSON", "ANNA MARIA")
    assert p.full_name == "ANNA MARIA ERIKSSON"
    assert p.birth_date == date(1974, 8, 12)
    assert p.sex == "F"
    assert p.expiry_date == date(2012, 4, 15)
    assert p.optional_data == "ZE184226B"


def test_the_specimen_expired_in_2012_and_is_still_read():
    assert parse_td3(SPECIMEN, today=TODAY).expired is True
    assert parse_td3(SPECIMEN, today=date(2012, 4, 15)).expired is False  # valid through its expiry day
    assert parse_td3(SPECIMEN, today=date(2012, 4, 16)).expired is True


def test_check_digits_of_the_specimen_fields():
    assert check_digit("L898902C3") == 6
    assert check_digit("740812") == 2
    assert check_digit("120415") == 9
    assert check_digit("ZE184226B<<<<<") == 1
    assert check_digit("L898902C36" + "7408122" + "1204159ZE184226B<<<<<1") == 0


@pytest.mark.parametrize("typed", [
    f"{LINE1}\n{LINE2}",
    f"{LINE1}\r\n{LINE2}\r\n",
    f"{LINE1}\r{LINE2}\r",
    f"{LINE1}{LINE2}",
    f"  {LINE1}{LINE2}\n",
    f"{LINE1.lower()}\n{LINE2.lower()}",
], ids=["lf", "crlf", "cr", "one-88-char-string", "padded", "lower-case"])
def test_keyboard_wedge_input_forms_all_read(typed):
    assert parse_td3(typed, today=TODAY).document_number == "L898902C3"
    assert looks_like_mrz(typed)


@pytest.mark.parametrize("pos", CHECKED)
def test_any_change_in_a_checked_position_fails_unless_the_7_3_1_scheme_cannot_see_it(pos):
    """The specimen with one character of line 2 changed is refused, for every
    changed character in every position a check digit covers. The one blind
    spot of the 7-3-1 scheme is a substitution whose value differs by a
    multiple of 10 (``1`` -> ``B``, ``L`` -> ``B``): letters are refused in
    the date fields anyway, so it remains only in the document number and
    the optional data, where both the field check and the composite miss it."""
    original = LINE2[pos]
    undetected = []
    for ch in MRZ_CHARS:
        if ch == original:
            continue
        changed = LINE2[:pos] + ch + LINE2[pos + 1:]
        try:
            parse_td3(f"{LINE1}\n{changed}", today=TODAY)
        except MrzError:
            continue
        undetected.append(ch)
    in_alphanumeric_field = pos < 9 or 28 <= pos < 42
    blind_spot = [ch for ch in MRZ_CHARS if ch != original and (value(ch) - value(original)) % 10 == 0]
    assert undetected == (blind_spot if in_alphanumeric_field else [])


def test_a_changed_check_digit_names_the_field_it_guards():
    with pytest.raises(MrzError) as err:
        parse_td3(f"{LINE1}\n{LINE2[:19]}3{LINE2[20:]}", today=TODAY)
    assert err.value.field == "birth_date"


@pytest.mark.parametrize("pos,ch,field", [
    (0, "I", "document_type"),  # an ID card's TD1/TD3-like line, not a passport
    (2, "1", "issuing_state"),
], ids=["not-a-passport", "digit-in-state"])
def test_unchecked_fields_of_line_1_are_checked_for_shape(pos, ch, field):
    with pytest.raises(MrzError) as err:
        parse_td3(f"{LINE1[:pos]}{ch}{LINE1[pos + 1:]}\n{LINE2}", today=TODAY)
    assert err.value.field == field


@pytest.mark.parametrize("pos,ch,field", [(11, "7", "nationality"), (20, "Q", "sex")])
def test_unchecked_fields_of_line_2_are_checked_for_shape(pos, ch, field):
    with pytest.raises(MrzError) as err:
        parse_td3(f"{LINE1}\n{LINE2[:pos]}{ch}{LINE2[pos + 1:]}", today=TODAY)
    assert err.value.field == field


@pytest.mark.parametrize("typed", [
    "", LINE1, LINE2, f"{LINE1}\n{LINE2[:-1]}", f"{LINE1}\n{LINE2}\n{LINE2}",
    f"{LINE1}\n{LINE2[:10]}é{LINE2[11:]}", "https://example.com/not-a-passport",
])
def test_text_that_is_not_a_zone_is_refused(typed):
    with pytest.raises(MrzError):
        parse_td3(typed, today=TODAY)
    assert not looks_like_mrz(typed)


@pytest.mark.parametrize("icao,iso", [
    ("CHN", "CN"), ("D<<", "DE"), ("D", "DE"), ("USA", "US"), ("GBR", "GB"), ("GBN", "GB"),
    ("NLD", "NL"), ("RKS", "XK"), ("UTO", None), ("XXA", None), ("UNO", None), ("QQQ", None),
])
def test_icao_codes_map_to_iso_alpha_2_or_to_unknown(icao, iso):
    assert country_of(icao) == iso


def test_a_chinese_passport_gives_cn_for_state_and_nationality():
    line1, line2 = td3()
    p = parse_td3(f"{line1}\n{line2}", today=TODAY)
    assert (p.issuing_state, p.issuing_country, p.nationality) == ("CHN", "CN", "CN")
    assert p.document_number == "E12345678"
    assert (p.surname, p.given_names) == ("CHEN", "MEI")
    assert p.birth_date == date(1988, 3, 14)
    assert p.expiry_date == date(2034, 1, 1)
    assert not p.expired


def test_a_german_passport_writes_d_with_fillers():
    line1, line2 = td3(surname="MUSTERMANN", given="ERIKA", number="C01X00T47", state="D", nationality="D")
    assert line1.startswith("P<D<<MUSTERMANN")
    p = parse_td3(line1 + line2, today=TODAY)
    assert (p.issuing_state, p.issuing_country, p.nationality) == ("D", "DE", "DE")


def test_a_child_born_this_century_gets_a_20xx_birth_date():
    line1, line2 = td3(birth="190704", expiry="240704")
    p = parse_td3(f"{line1}\n{line2}", today=TODAY)
    assert p.birth_date == date(2019, 7, 4)
    assert p.expired


def test_a_document_number_longer_than_nine_characters_continues_in_the_optional_data():
    # Doc 9303 part 4 note j: "<" in the check position, the rest of the
    # number and its check digit at the start of the optional data.
    full = "D23145890734"
    rest_with_check = full[9:] + str(check_digit(full))
    line1, line2 = td3(number=full[:9], optional=rest_with_check)
    line2 = line2[:9] + "<" + line2[10:]
    line2 = line2[:43] + str(check_digit(line2[0:10] + line2[13:20] + line2[21:43]))
    p = parse_td3(f"{line1}\n{line2}", today=TODAY)
    assert p.document_number == full
    assert p.optional_data == ""


def test_an_impossible_date_is_refused_even_with_a_matching_check_digit():
    line1, line2 = td3(birth="881332")
    with pytest.raises(MrzError) as err:
        parse_td3(f"{line1}\n{line2}", today=TODAY)
    assert err.value.field == "birth_date"
