"""The risk engine: which scans are validated at once and which go to the desk."""
import hashlib
import hmac
import json
import random
from dataclasses import replace

import pytest

from shared.risk import (
    Assessment,
    FiredRule,
    RiskPolicy,
    ScanFacts,
    assess,
    is_sampled,
    policy_from_dict,
    policy_to_dict,
)

# The server's secret behind the random check, as RISK_SAMPLING_KEY gives it.
KEY = b"risk-tests-sampling-key-0123456789abcdef"
# Not picked by the random check under the default policy and KEY.
PLAIN = ScanFacts(
    form_id="NL0000000",
    total_cents=12_100,
    categories=frozenset({"clothing"}),
    retailer_vat="NL123456789B01",
    traveller_key="traveller-1",
    passport_country="US",
    forms_by_traveller_recent=1,
)
NO_SAMPLING = RiskPolicy(sample_rate=0.0)


def fired_codes(assessment):
    return tuple(rule.code for rule in assessment.fired)


def test_plain_low_value_form_is_validated_under_the_default_policy():
    assert assess(PLAIN, RiskPolicy(), KEY) == Assessment("validated", ())


def test_default_policy_values():
    policy = RiskPolicy()
    assert policy.high_value_cents == 100_000
    assert policy.watched_categories == {"watches", "jewellery", "electronics"}
    assert policy.sample_rate == 0.05
    assert (policy.frequent_forms, policy.frequent_days) == (5, 7)
    assert policy.check_eu_passport is True


@pytest.mark.parametrize(
    ("policy_changes", "fact_changes", "code"),
    [
        ({}, {"total_cents": 100_001}, "high_value"),
        ({}, {"categories": frozenset({"watches", "clothing"})}, "watched_category"),
        ({"sample_rate": 1.0}, {}, "random_sample"),
        ({"retailer_watchlist": frozenset({"NL123456789B01"})}, {}, "retailer_watchlist"),
        ({"traveller_watchlist": frozenset({"traveller-1"})}, {}, "traveller_watchlist"),
        ({}, {"forms_by_traveller_recent": 5}, "frequent_traveller"),
        ({}, {"passport_country": "DE"}, "eu_passport_holder"),
    ],
)
def test_each_risk_rule_alone_sends_the_traveller_to_the_desk(policy_changes, fact_changes, code):
    result = assess(replace(PLAIN, **fact_changes), replace(NO_SAMPLING, **policy_changes), KEY)
    assert result.verdict == "check_required"
    assert fired_codes(result) == (code,)


def test_form_of_exactly_the_high_value_threshold_is_not_high_value():
    assert assess(replace(PLAIN, total_cents=100_000), NO_SAMPLING, KEY).fired == ()


def test_high_value_detail_names_both_amounts():
    result = assess(replace(PLAIN, total_cents=100_001), NO_SAMPLING, KEY)
    assert result.fired == (FiredRule("high_value", "Total EUR 1,000.01 is above EUR 1,000.00."),)


def test_high_value_rule_can_be_switched_off():
    policy = replace(NO_SAMPLING, high_value_cents=None)
    assert assess(replace(PLAIN, total_cents=10_000_000), policy, KEY).verdict == "validated"


def test_watched_category_detail_names_the_watched_categories_in_order():
    facts = replace(PLAIN, categories=frozenset({"watches", "clothing", "jewellery"}))
    assert assess(facts, NO_SAMPLING, KEY).fired == (
        FiredRule("watched_category", "Watched goods: jewellery, watches."),
    )


def test_four_forms_in_a_week_is_not_frequent():
    assert assess(replace(PLAIN, forms_by_traveller_recent=4), NO_SAMPLING, KEY).fired == ()


def test_frequent_traveller_detail_names_the_count_and_period():
    result = assess(replace(PLAIN, forms_by_traveller_recent=6), NO_SAMPLING, KEY)
    assert result.fired == (
        FiredRule("frequent_traveller", "6 forms in the last 7 days (check from 5)."),
    )


@pytest.mark.parametrize("country", ["CH", "NO", "GB", None])
def test_passport_from_outside_the_eu_or_not_yet_read_is_no_risk(country):
    assert assess(replace(PLAIN, passport_country=country), NO_SAMPLING, KEY).fired == ()


def test_eu_passport_holder_must_show_proof_of_residence_outside_the_eu():
    result = assess(replace(PLAIN, passport_country="FR"), NO_SAMPLING, KEY)
    assert result.fired == (
        FiredRule(
            "eu_passport_holder",
            "Passport issued by FR, an EU country: ask for proof of residence outside the EU.",
        ),
    )


def test_eu_passport_check_can_be_switched_off():
    policy = replace(NO_SAMPLING, check_eu_passport=False)
    assert assess(replace(PLAIN, passport_country="FR"), policy, KEY).verdict == "validated"


def test_unidentified_traveller_is_not_on_the_watchlist():
    policy = replace(NO_SAMPLING, traveller_watchlist=frozenset({"traveller-1"}))
    assert assess(replace(PLAIN, traveller_key=None), policy, KEY).fired == ()


def test_all_rules_fire_in_a_fixed_order():
    facts = ScanFacts(
        form_id="NL0000000",
        total_cents=500_000,
        categories=frozenset({"electronics"}),
        retailer_vat="NL999999999B01",
        traveller_key="k",
        passport_country="IT",
        forms_by_traveller_recent=9,
    )
    policy = RiskPolicy(
        sample_rate=1.0,
        retailer_watchlist=frozenset({"NL999999999B01"}),
        traveller_watchlist=frozenset({"k"}),
    )
    assert fired_codes(assess(facts, policy, KEY)) == (
        "high_value",
        "watched_category",
        "random_sample",
        "retailer_watchlist",
        "traveller_watchlist",
        "frequent_traveller",
        "eu_passport_holder",
    )


# --- random sampling -------------------------------------------------------

FORM_IDS = [f"NL{n:07d}" for n in range(2_000)]


def test_random_sample_is_a_keyed_hash_of_the_form_id():
    for form_id in FORM_IDS[:50]:
        digest = hmac.new(KEY, form_id.encode(), hashlib.sha256).digest()
        expected = int.from_bytes(digest[:8], "big") / 2**64 < 0.3
        assert is_sampled(KEY, form_id, 0.3) is expected


def test_the_old_public_seed_no_longer_predicts_the_random_check():
    # The old rule: random.Random(f"{seed}:{form_id}") with the seed known
    # from the policy (empty by default). Anyone could list the forms it
    # would pick; under a secret key its picks are another set.
    predicted = {f for f in FORM_IDS if random.Random(f":{f}").random() < 0.05}
    picked = {f for f in FORM_IDS if is_sampled(KEY, f, 0.05)}
    assert len(picked & predicted) < len(predicted) / 2


def test_the_random_check_needs_a_key():
    with pytest.raises(ValueError, match="secret"):
        is_sampled(b"", "NL0000007", 0.05)


def test_random_sample_gives_the_same_answer_on_a_re_scan():
    # Pinned: changing how the sample point is computed would change
    # verdicts already given.
    assert is_sampled(KEY, "NL0000055", 0.05)
    assert not is_sampled(KEY, "NL0000000", 0.05)
    first = [is_sampled(KEY, form_id, 0.05) for form_id in FORM_IDS]
    again = [is_sampled(KEY, form_id, 0.05) for form_id in FORM_IDS]
    assert first == again
    assert sum(first) == 94


def test_another_key_samples_other_forms():
    ours = {f for f in FORM_IDS if is_sampled(KEY, f, 0.05)}
    theirs = {f for f in FORM_IDS if is_sampled(b"another-key-of-the-same-length-000000000", f, 0.05)}
    assert len(theirs) == 101
    assert ours != theirs


def test_sample_rate_0_never_picks_and_1_always_picks():
    assert not any(is_sampled(KEY, form_id, 0.0) for form_id in FORM_IDS)
    assert all(is_sampled(KEY, form_id, 1.0) for form_id in FORM_IDS)


def test_random_sample_in_an_assessment_follows_the_key():
    policy = RiskPolicy()
    assert fired_codes(assess(replace(PLAIN, form_id="NL0000055"), policy, KEY)) == ("random_sample",)
    assert assess(replace(PLAIN, form_id="NL0000000"), policy, KEY).verdict == "validated"


# --- policy as configuration -----------------------------------------------

def test_policy_round_trips_through_json():
    policy = RiskPolicy(
        high_value_cents=None,
        sample_rate=0.1,
        retailer_watchlist=frozenset({"NL2", "NL1"}),
        traveller_watchlist=frozenset({"t"}),
        frequent_forms=3,
        frequent_days=14,
        check_eu_passport=False,
    )
    data = json.loads(json.dumps(policy_to_dict(policy)))
    assert policy_from_dict(data) == policy


def test_default_policy_as_data():
    assert policy_to_dict(RiskPolicy()) == {
        "high_value_cents": 100_000,
        "watched_categories": ["electronics", "jewellery", "watches"],
        "sample_rate": 0.05,
        "retailer_watchlist": [],
        "traveller_watchlist": [],
        "frequent_forms": 5,
        "frequent_days": 7,
        "check_eu_passport": True,
        "app_new_install_minutes": 30,
        "app_other_passports": 1,
        "app_passports_window_minutes": 60,
    }


def test_missing_settings_keep_their_defaults():
    assert policy_from_dict({"sample_rate": 0.2}) == RiskPolicy(sample_rate=0.2)


def test_a_seed_in_the_policy_is_refused_because_the_policy_may_be_shown():
    with pytest.raises(ValueError, match="RISK_SAMPLING_KEY"):
        policy_from_dict({"seed": "x"})
    assert "seed" not in policy_to_dict(RiskPolicy())


def test_a_misspelt_setting_is_refused():
    with pytest.raises(ValueError, match="sample_rte"):
        policy_from_dict({"sample_rte": 0.5})


def test_a_watchlist_given_as_one_string_is_refused():
    with pytest.raises(TypeError):
        policy_from_dict({"retailer_watchlist": "NL123456789B01"})


@pytest.mark.parametrize(
    "changes",
    [
        {"sample_rate": 1.5},
        {"sample_rate": -0.1},
        {"high_value_cents": -1},
        {"frequent_forms": 0},
        {"frequent_days": 0},
    ],
)
def test_impossible_policies_are_refused(changes):
    with pytest.raises(ValueError):
        RiskPolicy(**changes)


def test_a_watchlist_must_be_a_frozenset():
    with pytest.raises(TypeError):
        RiskPolicy(retailer_watchlist={"NL1"})
