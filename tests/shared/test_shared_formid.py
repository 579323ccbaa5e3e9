"""Form ids: typeable, self-checking, forgiving of look-alike letters."""
import random

import pytest

from shared.formid import (
    ALPHABET,
    ID_LENGTH,
    is_valid_form_id,
    luhn_check_symbol,
    new_form_id,
    normalize_form_id,
)


def sample_ids(count, seed=2026):
    rng = random.Random(seed)
    return [new_form_id("NL", rng=rng) for _ in range(count)]


class ScriptedChoice:
    """An rng whose choices are fixed in advance."""

    def __init__(self, symbols):
        self._symbols = iter(symbols)

    def choice(self, _alphabet):
        return next(self._symbols)


def test_alphabet_is_crockford_base32_without_i_l_o_u():
    assert ALPHABET == "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
    assert len(set(ALPHABET)) == 32


def test_a_new_form_id_is_country_prefix_seven_symbols_and_a_check_symbol():
    form_id = new_form_id("NL", rng=random.Random(1))
    assert len(form_id) == ID_LENGTH == 10
    assert form_id[:2] == "NL"
    assert all(symbol in ALPHABET for symbol in form_id[2:])
    assert form_id[-1] == luhn_check_symbol(form_id[2:9])
    assert is_valid_form_id(form_id)


def test_new_form_ids_use_the_secrets_module_by_default():
    first, second = new_form_id(), new_form_id()
    assert is_valid_form_id(first) and is_valid_form_id(second)
    assert first != second


def test_form_id_for_another_member_state_carries_its_prefix():
    form_id = new_form_id("IT", rng=random.Random(3))
    assert form_id.startswith("IT")
    assert is_valid_form_id(form_id)


def test_a_form_id_prefix_must_be_a_country():
    with pytest.raises(ValueError):
        new_form_id("XX")
    with pytest.raises(ValueError):
        new_form_id("nl")


def test_check_symbol_computed_by_hand():
    # Rightmost body symbol is doubled: 1 * 2 = 2, check = 32 - 2 = 30 -> "Y".
    assert luhn_check_symbol("0000001") == "Y"
    # Z = 31 doubled is 62 -> 1 + 30 = 31, check = 1.
    assert luhn_check_symbol("000000Z") == "1"
    assert luhn_check_symbol("0000000") == "0"
    assert is_valid_form_id("NL0000001Y")
    assert not is_valid_form_id("NL0000001Z")


def test_typed_id_is_normalised_to_upper_case_without_spaces_or_hyphens():
    assert normalize_form_id(" nl-7k3q w9xd ") == "NL7K3QW9XD"


def test_look_alike_letters_in_the_body_are_read_as_digits_but_not_in_the_prefix():
    assert normalize_form_id("nlOoIiLl0000") == "NL0011110000"
    assert normalize_form_id("LIO") == "LI0"


def test_an_id_typed_with_o_for_zero_is_still_valid():
    assert is_valid_form_id("nl-0000-001y")
    assert is_valid_form_id("NL OOOO OO1Y")


@pytest.mark.parametrize(
    "text",
    [
        "NL0000001",     # too short
        "NL0000001Y0",   # too long
        "XX0000001Y",    # prefix is not a country
        "N10000001Y",    # prefix is not letters
        "NLU000001Y",    # U is not a Crockford symbol
        "NL00000#1Y",
        "",
        None,
        12345,
    ],
)
def test_malformed_ids_are_not_valid(text):
    assert not is_valid_form_id(text)


def test_every_single_symbol_error_is_detected():
    for form_id in sample_ids(40):
        for position in range(2, ID_LENGTH):
            for symbol in ALPHABET:
                if symbol == form_id[position]:
                    continue
                typo = form_id[:position] + symbol + form_id[position + 1:]
                assert not is_valid_form_id(typo), (form_id, typo)


def test_every_adjacent_transposition_of_an_issued_id_is_detected():
    checked = 0
    for form_id in sample_ids(200):
        for position in range(2, ID_LENGTH - 1):
            a, b = form_id[position], form_id[position + 1]
            if a == b:
                continue
            swapped = form_id[:position] + b + a + form_id[position + 2:]
            assert not is_valid_form_id(swapped), (form_id, swapped)
            checked += 1
    assert checked > 1_300


def test_luhn_mod_32_misses_only_the_swap_of_0_and_z():
    missed = set()
    for a in ALPHABET:
        for b in ALPHABET:
            if a == b:
                continue
            body = "00000" + a + b
            swapped = "00000" + b + a
            if luhn_check_symbol(body) == luhn_check_symbol(swapped):
                missed.add(frozenset((a, b)))
    assert missed == {frozenset("0Z")}


def test_issued_ids_never_put_0_next_to_z():
    for form_id in sample_ids(3_000, seed=7):
        assert "0Z" not in form_id[2:] and "Z0" not in form_id[2:], form_id


def test_a_draw_with_0_next_to_z_is_drawn_again():
    rng = ScriptedChoice("0Z00000" + "1234567")
    assert new_form_id("NL", rng=rng) == "NL1234567" + luhn_check_symbol("1234567")


def test_a_draw_whose_check_symbol_would_follow_0_with_z_is_drawn_again():
    # Body "0000010": the 1 has weight 1, so the check is 32 - 1 = 31 -> "Z",
    # which would stand right after the final 0.
    assert luhn_check_symbol("0000010") == "Z"
    rng = ScriptedChoice("0000010" + "1234567")
    assert new_form_id("NL", rng=rng) == "NL1234567" + luhn_check_symbol("1234567")
