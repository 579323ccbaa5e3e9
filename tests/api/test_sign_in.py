"""Password and last-name guessing: slowed down for the guesser, never a
long lock-out for the person whose account or form it is."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from tests.builders import PASSWORD

ATTACKER, OFFICE, HOME = "203.0.113.66", "198.51.100.10", "192.0.2.44"


class Clock:
    def __init__(self):
        self.now = datetime(2026, 11, 28, 9, 30, 0, tzinfo=timezone.utc)

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock(monkeypatch):
    from api.portal import traveller
    from api.resources import auth as auth_resource, status as status_resource

    clock = Clock()
    for module in (auth_resource, status_resource, traveller):
        monkeypatch.setattr(module, "utcnow", clock)
    return clock


def login(world, password, address, username="shop"):
    return world.client.post("/api/v1/auth/token", json={"username": username, "password": password},
                             environ_base={"REMOTE_ADDR": address})


def test_each_failure_after_the_free_ones_doubles_the_wait(world, clock):
    assert [login(world, f"guess-{n}", ATTACKER).status_code for n in range(3)] == [401, 401, 401]
    waits = []
    for n in range(6):
        r = login(world, "guess", ATTACKER)
        assert r.status_code == 429
        waits.append(int(r.headers["Retry-After"]))
        clock.advance(waits[-1])
        assert login(world, f"again-{n}", ATTACKER).status_code == 401
    assert waits == [1, 2, 4, 8, 16, 32]


def test_the_wait_stops_growing_at_the_maximum_and_an_hour_of_quiet_forgets(world, app, clock):
    app.config["FAILED_ATTEMPTS_MAX_WAIT_SECONDS"] = 60
    app.config["LOGIN_ATTEMPTS_PER_USER"] = 1000
    for n in range(12):
        r = login(world, f"guess-{n}", ATTACKER)
        if r.status_code == 429:
            clock.advance(int(r.headers["Retry-After"]))
            assert login(world, f"guess-{n}", ATTACKER).status_code == 401
    r = login(world, "guess", ATTACKER)
    assert r.status_code == 429 and int(r.headers["Retry-After"]) == 60
    clock.advance(60 + 3600)
    assert [login(world, f"late-{n}", ATTACKER).status_code for n in range(3)] == [401, 401, 401]


def test_guesses_from_one_address_do_not_lock_the_user_out_elsewhere(world, clock):
    for n in range(3):
        login(world, f"guess-{n}", ATTACKER)
    assert login(world, PASSWORD, ATTACKER).status_code == 429
    assert login(world, PASSWORD, OFFICE).status_code == 200


def test_a_success_forgets_the_failures_of_that_address(world, clock):
    for n in range(2):
        login(world, f"typo-{n}", OFFICE)
    assert login(world, PASSWORD, OFFICE).status_code == 200
    assert [login(world, f"typo-{n}", OFFICE).status_code for n in range(3)] == [401, 401, 401]


def test_guessing_from_many_addresses_is_capped_per_user_but_not_where_the_user_logs_in(world, app, clock):
    app.config["LOGIN_ATTEMPTS_PER_USER"] = 6
    # The office's first login counts (it is not familiar yet); then it is.
    assert login(world, PASSWORD, OFFICE).status_code == 200
    guesses = [login(world, "guess", f"203.0.113.{n}").status_code for n in range(8)]
    assert guesses == [401] * 5 + [429] * 3
    # From a new address the account waits, with Retry-After to the window's end ...
    held = login(world, PASSWORD, HOME)
    assert held.status_code == 429 and 0 < int(held.headers["Retry-After"]) <= 900
    # ... but never at the office, whatever the attacker does.
    assert login(world, PASSWORD, OFFICE).status_code == 200
    # And not for long: the next window lets the user in from anywhere.
    clock.advance(900)
    assert login(world, PASSWORD, HOME).status_code == 200


def test_an_unknown_username_is_slowed_down_like_a_real_one(world, clock):
    real = [login(world, "guess", ATTACKER).status_code for _ in range(4)]
    unknown = [login(world, "guess", ATTACKER, username="nobody-here").status_code for _ in range(4)]
    assert real == unknown == [401, 401, 401, 429]


def test_the_portal_login_page_counts_the_same_failures(world, client, clock, monkeypatch):
    from api.portal import retailer
    from tests.portal.portal_support import portal_login

    monkeypatch.setattr(retailer, "_now", clock)
    for n in range(3):
        assert login(world, f"guess-{n}", "127.0.0.1").status_code == 401
    page = portal_login(client, "shop")  # the test client's address, 127.0.0.1
    assert page.status_code == 429 and "Too many attempts" in page.get_data(as_text=True)


# --- the traveller status lookups -----------------------------------------------

def lookup(world, form_id, name, address):
    return world.client.post(f"/api/v1/status/{form_id}", json={"last_name": name},
                             environ_base={"REMOTE_ADDR": address})


def test_wrong_last_names_make_the_next_lookup_wait_and_only_for_that_address(world, clock):
    form = world.issue("shop")
    assert [lookup(world, form["id"], f"Guess{n}", ATTACKER).status_code for n in range(4)] == [404] * 3 + [429]
    assert lookup(world, form["id"], "Chen", HOME).status_code == 200
    clock.advance(1)
    assert lookup(world, form["id"], "Guess4", ATTACKER).status_code == 404
    assert lookup(world, form["id"], "Guess5", ATTACKER).status_code == 429


def test_a_traveller_who_looked_up_their_form_is_not_held_back_by_guessers(world, app, clock):
    app.config["STATUS_LOOKUPS_PER_FORM_PER_HOUR"] = 4
    form = world.issue("shop")
    assert lookup(world, form["id"], "Chen", HOME).status_code == 200
    assert [lookup(world, form["id"], "Guess", f"203.0.113.{n}").status_code for n in range(6)] == [404] * 3 + [429] * 3
    assert lookup(world, form["id"], "Chen", HOME).status_code == 200
    assert lookup(world, form["id"], "Chen", OFFICE).status_code == 429
    clock.advance(3600)
    assert lookup(world, form["id"], "Chen", OFFICE).status_code == 200


def test_the_status_page_counts_the_same_wrong_names(world, client, clock):
    from tests.portal.portal_support import csrf_token

    form = world.issue("shop")
    for n in range(3):
        assert lookup(world, form["id"], f"Guess{n}", "127.0.0.1").status_code == 404
    token = csrf_token(client, "/status")
    page = client.post("/status", data={"csrf_token": token, "form_id": form["id"], "last_name": "Chen"})
    assert page.status_code == 429


def test_familiar_addresses_are_kept_for_weeks_as_keyed_hashes_then_purged(app, world, clock, runner):
    from sqlalchemy import select

    from api import database
    from api.models import RateLimit
    from api.services import retention

    assert login(world, PASSWORD, OFFICE).status_code == 200
    with app.app_context():
        keys = database.session().scalars(select(RateLimit.key)).all()
        assert not any(OFFICE in k for k in keys if "-ok:" in k)  # no address kept for weeks
        session = database.session()
        start = datetime.now(timezone.utc)  # the world's own logins were made now
        # A week later the purge of old counters keeps the mark ...
        retention.purge(session, start + timedelta(days=7), 365)
        assert any("-ok:" in k for k in database.session().scalars(select(RateLimit.key)))
        # ... and a month later it is gone.
        retention.purge(session, start + timedelta(days=31), 365)
        assert not any("-ok:" in k for k in database.session().scalars(select(RateLimit.key)))
