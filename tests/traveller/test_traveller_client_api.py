"""Every call of the app's client (shared/traveller_client.py) against the
real API on 127.0.0.1: what the app sends is what the API's schemas take,
and what the API answers is what the app reads. Evidence comes from the
app's own simulated sensors, trips from the app's own trip module."""
from __future__ import annotations

import uuid
from datetime import datetime, time, timedelta, timezone

import pytest

from api.resources import traveller as traveller_resource
from shared.client import ApiError
from shared.traveller_client import Credentials, RateLimited, TravellerClient
from tests.api.traveller_support import IN_AMS, app_world, coat, today_julian, watch  # noqa: F401
from traveller_app import trip as trips
from traveller_app.presence import SimulatedPresence

MEI = Credentials("E12345678", "CN", datetime(1988, 3, 14).date())


def signed_in(app_world, api_url: str, credentials=MEI) -> TravellerClient:
    """The app's client, signed in, on a phone that has had the app since yesterday."""
    client = TravellerClient(api_url, str(uuid.uuid4()))
    client.sign_in(credentials)
    app_world.phone(install_id=client.install_id).installed(24 * 60)
    return client


def at_schiphol(app_world, **options) -> SimulatedPresence:
    return SimulatedPresence(lat=IN_AMS[0], lon=IN_AMS[1], post_id="AMS-D2-01",
                             secret=bytes.fromhex(app_world.secrets["AMS-D2-01"]), **options)


def test_forms_claims_exit_points_and_desk_pass_read_as_the_app_expects(app_world, traveller_api):
    coat_form = app_world.issue_for(coat())
    other = app_world.issue_for(coat(), passport_number="X98765432")
    client = signed_in(app_world, traveller_api.url)

    [form] = client.forms()
    assert (form.id, form.shop, form.goods, form.status, form.payer) == (
        coat_form["id"], "Watch House", ("Wool coat",), "issued", "Refunds Inc")
    assert (form.total_cents, form.refund_cents, form.currency) == (24900, coat_form["refund_cents"], "EUR")
    assert form.export_deadline.isoformat() == coat_form["export_deadline"] and form.open

    assert client.claim(coat_form["qr_payload"]) == form
    with pytest.raises(ApiError) as refused:
        client.claim(other["qr_payload"])
    assert (refused.value.status, refused.value.code) == (422, "passport_mismatch")
    with pytest.raises(ApiError) as refused:
        client.claim("not a form code")
    assert (refused.value.status, refused.value.code) == (422, "malformed_token")

    points = {p.code: p for p in client.exit_points()}
    assert set(points) == {"AMS", "RTM"}  # the exit points with a validation zone
    schiphol = points["AMS"]
    assert (schiphol.kind, schiphol.desk_location, schiphol.posts) == ("airport", "Departures 2", ("AMS-D2-01",))
    assert [z.name for z in schiphol.zones] == ["Departures 2"] and schiphol.sailings == ()
    assert points["RTM"].kind == "seaport"

    # The pass the app shows the officer opens this traveller's forms at the desk.
    desk_pass = client.desk_pass()
    r = app_world.post("officer", "/api/v1/desk/travellers", {"desk_pass": desk_pass})
    assert r.status_code == 200 and [f["id"] for f in r.get_json()["items"]] == [coat_form["id"]]


def test_a_validation_with_the_apps_evidence_and_boarding_pass_is_judged_once_and_replayed(
        app_world, traveller_api):
    coat_form, watch_form = app_world.issue_for(coat()), app_world.issue_for(watch())
    client = signed_in(app_world, traveller_api.url)
    boarding_pass = f"M1CHEN/MEI            EXYZ789 AMSPEKKL 0897 {today_julian():03d}Y023C0042 100"
    flight = trips.from_boarding_pass(boarding_pass, trips.local_today(), "AMS")
    assert flight.warnings == ()
    evidence = at_schiphol(app_world).evidence(client.install_id).to_json()
    key = str(uuid.uuid4())

    result = client.validate("AMS", [coat_form["id"], watch_form["id"]], evidence, flight.api_trip(), key)
    verdicts = {v.form_id: v for v in result.verdicts}
    assert verdicts[coat_form["id"]].verdict == "validated"
    assert verdicts[coat_form["id"]].reference.startswith("AMS-")
    assert verdicts[watch_form["id"]].verdict == "check_required"
    assert verdicts[watch_form["id"]].desk_location == "Departures 2"
    assert verdicts[watch_form["id"]].export_deadline.isoformat() == watch_form["export_deadline"]
    assert result.desk_pass and not result.replayed

    # The answer lost on the way back: the app sends the same request again.
    again = client.validate("AMS", [coat_form["id"], watch_form["id"]], evidence, flight.api_trip(), key)
    assert again.replayed and again.verdicts == result.verdicts
    assert [e["type"] for e in app_world.events(coat_form["id"])].count("form.validated") == 1


def test_a_ferry_trip_names_a_sailing_the_api_listed(app_world, traveller_api, monkeypatch):
    # The API's clock (and the phone's) at noon tomorrow, Dutch time: a
    # sailing at 14:30 that day is today's and in its window, whenever this runs.
    noon = datetime.combine(trips.local_today() + timedelta(days=1), time(12, 0), trips.EXIT_TIMEZONE)
    monkeypatch.setattr(traveller_resource, "utcnow", lambda: noon.astimezone(timezone.utc))
    departs = noon.replace(hour=14, minute=30)
    app_world.admin("/api/v1/exit-points/RTM/sailings", {
        "operator": "P&O Ferries", "route": "Rotterdam Europoort - Hull", "destination_port": "Hull",
        "destination_code": "HUL", "destination_country": "GB", "departs_at": departs.isoformat()})
    form = app_world.issue_for(coat())
    client = signed_in(app_world, traveller_api.url)

    [(port, sailing)] = trips.sailings(client.exit_points(), noon)
    assert (port.code, sailing.id, sailing.departs_at) == ("RTM", f"RTM-HUL-{departs:%Y-%m-%dT%H:%M}", departs)
    ferry = trips.ferry(port, sailing, noon.date())
    assert (ferry.departs_from, ferry.destination, ferry.warnings) == ("RTM", "Hull (United Kingdom)", ())

    phone = SimulatedPresence(lat=51.9510, lon=4.1360, post_id="RTM-T1-01",
                              secret=bytes.fromhex(app_world.secrets["RTM-T1-01"]), clock=lambda: noon)
    result = client.validate("RTM", [form["id"]], phone.evidence(client.install_id).to_json(), ferry.api_trip(),
                             str(uuid.uuid4()))
    [verdict] = result.verdicts
    assert (verdict.verdict, verdict.reference[:4]) == ("validated", "RTM-")


def test_too_many_sign_ins_for_a_passport_tell_the_app_how_long_to_wait(app, traveller_api):
    app.config["TRAVELLER_SIGNINS_PER_PASSPORT_PER_HOUR"] = 1
    TravellerClient(traveller_api.url, str(uuid.uuid4())).sign_in(MEI)
    with pytest.raises(RateLimited) as limited:
        TravellerClient(traveller_api.url, str(uuid.uuid4())).sign_in(MEI)
    assert limited.value.retry_after and 0 < limited.value.retry_after <= 3600


def test_a_validation_without_an_idempotency_key_is_refused(app_world, traveller_api):
    # The app always sends one; the API insists (a retry must not judge twice).
    import requests

    client = signed_in(app_world, traveller_api.url)
    form = app_world.issue_for(coat())
    body = {"exit_point": "AMS", "form_ids": [form["id"]], "trip": None,
            "evidence": at_schiphol(app_world).evidence(client.install_id).to_json()}
    r = requests.post(traveller_api.url + "/api/v1/traveller/validations", json=body, timeout=10,
                      headers={"Authorization": f"Bearer {client._session_token()}"})
    assert (r.status_code, r.json()["code"]) == (428, "idempotency_key_required")
    assert app_world.status(form["id"]) == "issued"
