"""Boarding passes (IATA BCBP) and the last EU exit: the published samples,
and the EU-versus-Schengen traps (IATA Resolution 792 samples)."""
from datetime import date

import pytest

from shared import bcbp
from shared.airports import UnknownAirport, airport, is_last_eu_exit

IATA_EXAMPLE = "M1DESMARAIS/LUC       EABC123 YULFRAAC 0834 326J001A0025 100"
AMS_PEK = "M1CHEN/MEI            EXYZ789 AMSPEKKL 0897 332Y023C0042 100"
AMS_CDG = "M1SMITH/JOHN MR       EQWE456 AMSCDGAF 1241 332Y012F0007 100"
RTM_LHR = "M1OKAFOR/CHIDI        ELMN321 RTMLHRBA 4455 332Y003A0011 100"


def test_iatas_own_example_reads_every_mandatory_item():
    bp = bcbp.parse(IATA_EXAMPLE)
    assert bp.passenger_name == "DESMARAIS/LUC"
    assert (bp.surname, bp.given_names) == ("DESMARAIS", "LUC")
    assert bp.electronic_ticket
    [leg] = bp.legs
    assert leg.pnr == "ABC123"
    assert (leg.origin, leg.destination) == ("YUL", "FRA")
    assert (leg.carrier, leg.flight_number, leg.flight) == ("AC", "0834", "AC0834")
    assert leg.julian_date == 326
    assert (leg.compartment, leg.seat, leg.sequence, leg.passenger_status) == ("J", "1A", "25", "1")


@pytest.mark.parametrize("text", [IATA_EXAMPLE, AMS_PEK, AMS_CDG, RTM_LHR])
def test_every_sample_has_the_60_character_mandatory_part(text):
    assert len(text) == bcbp.MANDATORY_LENGTH
    assert bcbp.looks_like_bcbp(text)
    assert len(bcbp.parse(text).legs) == 1


def test_julian_day_332_is_28_november_in_a_common_year_and_27_in_a_leap_year():
    leg = bcbp.parse(AMS_PEK).legs[0]
    assert leg.flight_date(near=date(2026, 11, 28)) == date(2026, 11, 28)
    assert leg.flight_date(near=date(2028, 11, 20)) == date(2028, 11, 27)


def test_a_pass_scanned_in_early_january_for_a_late_december_flight_is_last_year():
    leg = bcbp.parse(IATA_EXAMPLE.replace(" 326J", " 365J")).legs[0]
    assert leg.flight_date(near=date(2027, 1, 2)) == date(2026, 12, 31)


@pytest.mark.parametrize("text,exit_here", [
    (AMS_PEK, True),   # Amsterdam -> Beijing: last EU exit, validate here
    (AMS_CDG, False),  # Amsterdam -> Paris: validate at the last EU airport instead
    (RTM_LHR, True),   # Rotterdam -> London: the UK left the EU
])
def test_the_dutch_samples_tell_whether_this_is_the_last_eu_exit(text, exit_here):
    bp = bcbp.parse(text)
    assert bp.leaves_eu_from(bp.legs[0].origin) is exit_here


@pytest.mark.parametrize("destination", ["ZRH", "GVA", "OSL", "LHR", "IST", "PEK", "JFK", "KEF"])
def test_schengen_but_not_eu_destinations_are_exits(destination):
    assert is_last_eu_exit(destination)


@pytest.mark.parametrize("destination", ["DUB", "LCA", "CDG", "FRA", "BER", "MAD", "OTP", "SOF"])
def test_eu_but_not_schengen_destinations_are_not_exits(destination):
    assert not is_last_eu_exit(destination)


def test_codes_come_from_airportsdata_with_iso_countries():
    assert airport("zrh").country == "CH"
    assert airport("LCA").country == "CY"
    assert airport("AMS").city == "Amsterdam"


def test_an_unknown_airport_code_is_an_error_not_a_guess():
    with pytest.raises(UnknownAirport):
        is_last_eu_exit("QQZ")


def leg_block(pnr, origin, destination, carrier, flight, julian, seat, seq, variable=""):
    return (f"{pnr:<7}{origin}{destination}{carrier:<3}{flight:<5}{julian:03d}Y{seat:>4}"
            f"{seq:<5}1{len(variable):02X}{variable}")


def test_a_connecting_pass_amsterdam_paris_beijing_says_validate_in_paris():
    # Leg 1 carries the conditional items (">5..." version 5) in its variable part.
    conditional = ">50B1WW6332BKL 2A05512345678900"
    text = ("M2CHEN/MEI            E"
            + leg_block("XYZ789", "AMS", "CDG", "KL", "1227", 332, "012A", "0042", conditional)
            + leg_block("XYZ789", "CDG", "PEK", "AF", "0128", 332, "031C", "0107"))
    bp = bcbp.parse(text)
    assert [(leg.origin, leg.destination, leg.flight) for leg in bp.legs] == [
        ("AMS", "CDG", "KL1227"), ("CDG", "PEK", "AF0128")]
    assert not bp.leaves_eu_from("AMS")
    assert bp.leaves_eu_from("CDG")
    assert bp.last_eu_exit() == "CDG"
    assert "Charles de Gaulle" in bcbp.destination_name("CDG")


def test_the_kiosk_picks_the_leg_leaving_from_its_own_airport():
    bp = bcbp.parse(AMS_PEK)
    assert bp.leg_from("ams").destination == "PEK"
    assert bp.leg_from("RTM") is bp.legs[0]  # not on the pass: the first leg


def test_a_scanner_line_end_is_tolerated():
    assert bcbp.parse(AMS_PEK + "\r\n").legs[0].destination == "PEK"


@pytest.mark.parametrize("text,field", [
    ("M1CHEN/MEI", "layout"),
    ("X" + AMS_PEK[1:], "format"),
    ("M0" + AMS_PEK[2:], "legs"),
    (AMS_PEK.replace("AMSPEK", "AM5PEK"), "origin"),
    (AMS_PEK.replace(" 332Y", " 3X2Y"), "julian_date"),
    (AMS_PEK.replace(" 332Y", " 400Y"), "julian_date"),
    ("M2" + AMS_PEK[2:], "layout"),  # says two legs, holds one
    (AMS_PEK[:-2] + "ZZ", "variable_size"),
])
def test_text_that_is_not_a_boarding_pass_is_refused(text, field):
    with pytest.raises(bcbp.BcbpError) as err:
        bcbp.parse(text)
    assert err.value.field == field
