"""The bench's traveller-app load (bench/traveller_load.py) sends validations
the API accepts.

The bench measures POST /traveller/validations with requests it makes
itself: travellers signed in through the API, a zone and a sensor post made
through the admin API, evidence with the post's current token and a GPS fix
in the zone, a boarding pass for today. Should the API's contract change
(a field, the token's formula, a rule), the bench would quietly measure
refusals or trips to the desk; this test fails instead. It drives a real
gunicorn API, with the bench's settings, over HTTP, with the very lines
the bench hands to wrk.
"""
from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

from api.services.traveller import judge_flight
from shared import rules
from tests.builders import rows
from tests.servers import free_port, gunicorn_command, serving

BENCH = Path(__file__).resolve().parent.parent / "bench"


@pytest.fixture
def bench(monkeypatch):
    """The bench's modules, imported as bench/run.py imports them."""
    monkeypatch.syspath_prepend(str(BENCH))
    import fixture
    import traveller_load

    return fixture, traveller_load


@pytest.fixture
def bench_world(bench, database_url, tmp_path):
    fixture, _ = bench
    return fixture.build_world(database_url, tmp_path / "instance")


def test_the_bench_validations_are_validated_by_a_live_api(bench, bench_world, database_url, tmp_path):
    _, traveller_load = bench
    post = traveller_load.add_zone_and_post(bench_world)
    travellers = traveller_load.load_travellers(bench_world, 6)
    feed = traveller_load.TravellerFeed(travellers[:5], post, "test")
    feed.path = tmp_path / "validations.tsv"
    # The bench's settings, but no random check: every form's verdict is known.
    policy = {**json.loads(traveller_load.APP_ENV["RISK_POLICY"]), "sample_rate": 0.0}
    env = {**bench_world.env, **traveller_load.APP_ENV, "RISK_POLICY": json.dumps(policy),
           "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics")}
    port = free_port()
    with serving(gunicorn_command(port, 2), port, {**os.environ, **env},
                 output=tmp_path / "gunicorn.log") as base, requests.Session() as http:
        lines = Path(feed.file(base, 5)).read_text().splitlines()
        answers = []
        for n, line in enumerate(lines):
            token, body = line.split("\t")
            r = http.post(base + "/api/v1/traveller/validations", data=body, headers={
                "Authorization": f"Bearer {token}", "Content-Type": "application/json",
                "Idempotency-Key": f"test-{n}"})
            assert r.status_code == 200, r.text
            answers.append(r.json())
        # Evidence from two minutes ago: the token has rotated twice since.
        late = travellers[5]
        traveller_load.sign_in(base, [late])
        stale = traveller_load.validation_body(late, post, datetime.now(UTC) - timedelta(seconds=90))
        r = http.post(base + "/api/v1/traveller/validations", json=stale, headers={
            "Authorization": f"Bearer {late.token}", "Idempotency-Key": "test-late"})
    assert len(lines) == 5
    assert [[(i["form_id"], i["verdict"]) for i in a["items"]] for a in answers] == [
        [(t.form_id, "validated")] for t in travellers[:5]]
    assert all(a["items"][0]["reference"].startswith("AMS-") and a["desk_pass"] is None for a in answers)
    assert r.status_code == 200, r.text
    assert [(i["form_id"], i["verdict"]) for i in r.json()["items"]] == [(late.form_id, "check_required")]
    # Validated at AMS through the app, each traveller's own form.
    ids = [t.form_id for t in travellers[:5]]
    stored = rows(database_url, "SELECT f.id, f.status, e.code, s.channel, s.verdict FROM forms f "
                                "JOIN exit_points e ON e.id = f.exit_point_id JOIN scans s ON s.form_id = f.id "
                                "WHERE f.id IN (" + ", ".join(f"'{i}'" for i in ids) + ") ORDER BY f.id")
    assert stored == [(i, "validated", "AMS", "app", "validated") for i in sorted(ids)]


def test_the_boarding_pass_is_for_today_from_ams_leaving_the_eu(bench):
    _, traveller_load = bench
    now = datetime.now(UTC)
    today = rules.local_today(now, "Europe/Amsterdam")
    assert judge_flight(traveller_load.boarding_pass(today), "AMS", now, "Europe/Amsterdam") is None
    assert judge_flight(traveller_load.boarding_pass(today - timedelta(days=1)), "AMS", now,
                        "Europe/Amsterdam").reason_code == "not_departing_today"
