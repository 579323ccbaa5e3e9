"""What the kiosk says for each outcome, in the traveller's language."""
from __future__ import annotations

from datetime import date

import pytest

from kiosk_app import desk
from kiosk_app.wording import BEFORE_CHECK_IN, Wording
from shared.i18n import LANGUAGES

KINDS = [desk.VALIDATED, desk.CHECK_REQUIRED, desk.REFUSED, desk.RECORDED, desk.DUPLICATE,
         desk.NOT_LAST_EXIT, desk.LAST_EXIT_OK, desk.NO_OPEN_FORMS, desk.UNREADABLE,
         desk.OUT_OF_SERVICE, desk.PAIRED, desk.PAIRING_REFUSED]


def outcome(kind):
    return desk.Outcome(kind, form_id="NL7KQ3X9PD", payer="Refunds Inc", reason_code="deadline_passed",
                        export_deadline=date(2026, 2, 28), desk_location="Departures 2",
                        destination="Paris (CDG, FR)")


def test_validated_names_the_payer_and_the_form():
    card = Wording("en").card(outcome(desk.VALIDATED))
    assert card.title == "Export validated"
    assert card.body == "Your refund will be paid by Refunds Inc.\nForm NL7KQ3X9PD"


def test_go_to_the_desk_says_where_and_to_do_it_before_check_in():
    card = Wording("en").card(outcome(desk.CHECK_REQUIRED))
    assert "The customs desk is at: Departures 2." in card.body
    assert BEFORE_CHECK_IN in card.body


def test_a_refusal_says_why_in_plain_words_with_the_date():
    card = Wording("en").card(outcome(desk.REFUSED))
    assert card.body.startswith("The export deadline for this form passed on 2026-02-28.")


@pytest.mark.parametrize("language", list(LANGUAGES))
@pytest.mark.parametrize("kind", KINDS)
def test_every_outcome_has_words_in_every_language(language, kind):
    card = Wording(language).card(outcome(kind))
    assert card.kind == kind and card.title and card.body
    if language != "en":
        assert card.title != Wording("en").card(outcome(kind)).title


def test_values_in_arabic_sentences_are_isolated_left_to_right_runs():
    body = Wording("ar").card(outcome(desk.REFUSED)).body
    assert "\u20662026-02-28\u2069" in body and "\u2066NL7KQ3X9PD\u2069" in body
