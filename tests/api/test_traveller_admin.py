"""Operators manage where the app may validate: zones, sensor posts (whose
secrets are kept encrypted and shown once) and sailings, through the admin
API and the flask commands; seed-demo sets up the three first locations."""
from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import text

from api import database
from shared import presence
from tests.api.traveller_support import AMS_ZONE, app_world, coat  # noqa: F401


def _raw(app, sql: str, **params):
    with app.app_context():
        return database.session().execute(text(sql), params).all()


def test_a_sensor_post_secret_is_shown_once_and_stored_encrypted(app_world, app):
    created = app_world.admin("/api/v1/exit-points/AMS/sensor-posts", {"id": "AMS-D1-01"})
    secret = created["secret"]
    assert len(bytes.fromhex(secret)) == 32 and created["exit_point"] == "AMS"
    [(stored,)] = _raw(app, "SELECT secret FROM sensor_posts WHERE id = 'AMS-D1-01'")
    assert stored.startswith("gAAAAA") and secret not in stored
    listed = app_world.world.get("root", "/api/v1/exit-points/AMS/sensor-posts").get_json()
    assert {p["id"] for p in listed} == {"AMS-D1-01", "AMS-D2-01"} and secret not in json.dumps(listed)
    again = app_world.world.post("root", "/api/v1/exit-points/AMS/sensor-posts", {"id": "AMS-D1-01"})
    assert (again.status_code, again.get_json()["code"]) == (409, "already_exists")


def test_a_retired_posts_tokens_count_for_nothing(app_world):
    form = app_world.issue_for(coat())
    r = app_world.world.client.delete("/api/v1/exit-points/AMS/sensor-posts/AMS-D2-01",
                                      headers=app_world.world.auth("root"))
    assert r.status_code == 200 and r.get_json()["retired_at"]
    phone = app_world.phone().signed_in()
    verdicts = phone.verdicts([form["id"]])
    assert verdicts["items"][0]["verdict"] == "check_required"
    assert "which is no sensor post" in str(app_world.check(form["id"])["fired_rules"])


def test_zones_are_checked_geojson_and_only_admins_manage_them(app_world):
    swapped = {"type": "Polygon", "coordinates": [[[52.31, 4.76], [52.31, 4.77], [52.32, 4.77], [52.31, 4.76]]]}
    r = app_world.world.post("root", "/api/v1/exit-points/AMS/zones", {"name": "Swapped", "polygon": swapped})
    assert r.status_code == 201  # plausible numbers either way round: the operator's to check
    bad = {"type": "Polygon", "coordinates": [[[4.76, 52.31], [4.77, 52.31], [4.77, 52.32]]]}
    r = app_world.world.post("root", "/api/v1/exit-points/AMS/zones", {"name": "Open", "polygon": bad})
    assert (r.status_code, r.get_json()["code"]) == (422, "invalid_zone")
    for who in ("officer", "shop", "kiosk"):
        assert app_world.world.post(who, "/api/v1/exit-points/AMS/zones",
                                    {"name": "X", "polygon": AMS_ZONE}).status_code == 403
        assert app_world.world.post(who, "/api/v1/exit-points/AMS/sensor-posts", {"id": "AMS-X-01"}).status_code == 403
    zones = app_world.world.get("root", "/api/v1/exit-points/AMS/zones").get_json()
    assert [z["name"] for z in zones] == ["Departures 2", "Swapped"]
    r = app_world.world.client.delete(f"/api/v1/exit-points/AMS/zones/{zones[1]['id']}",
                                      headers=app_world.world.auth("root"))
    assert r.status_code == 204
    r = app_world.world.client.delete(f"/api/v1/exit-points/RTM/zones/{zones[0]['id']}",
                                      headers=app_world.world.auth("root"))
    assert r.status_code == 404  # a zone of another exit point


def test_the_operator_commands(app, runner, world, tmp_path):
    zone = tmp_path / "zone.geojson"
    zone.write_text(json.dumps({"type": "Feature", "geometry": AMS_ZONE, "properties": {}}))
    result = runner.invoke(args=["add-zone", "AMS", "Departures 2", str(zone)])
    assert result.exit_code == 0 and "added to AMS" in result.output, result.output
    result = runner.invoke(args=["add-sensor-post", "ams", "ams-d2-01"])
    assert result.exit_code == 0, result.output
    secret = result.output.strip().splitlines()[-1]
    assert len(bytes.fromhex(secret)) == 32
    result = runner.invoke(args=["add-sensor-post", "AMS", "AMS-D2-01"])
    assert result.exit_code != 0 and "already exists" in result.output
    result = runner.invoke(args=["add-sailing", "RTM", "--operator", "P&O Ferries", "--route",
                                 "Rotterdam Europoort - Hull", "--to-port", "Hull", "--to-code", "HUL",
                                 "--to-country", "GB", "--departs", "2026-12-03T21:00"])
    assert result.exit_code == 0 and "RTM-HUL-2026-12-03T21:00" in result.output, result.output
    result = runner.invoke(args=["add-sailing", "AMS", "--operator", "X", "--route", "X", "--to-port", "X",
                                 "--to-code", "XXX", "--to-country", "GB", "--departs", "2026-12-03T21:00"])
    assert result.exit_code != 0 and "not a seaport" in result.output
    result = runner.invoke(args=["retire-sensor-post", "AMS", "AMS-D2-01"])
    assert result.exit_code == 0, result.output
    # Re-encrypting personal data re-encrypts the post secrets too.
    [(before,)] = _raw(app, "SELECT secret FROM sensor_posts")
    result = runner.invoke(args=["reencrypt-personal-data"])
    assert "1 sensor post secret(s)" in result.output
    [(after,)] = _raw(app, "SELECT secret FROM sensor_posts")
    assert after != before and after.startswith("gAAAAA")


def test_seed_demo_sets_up_the_first_three_locations_and_the_posts_file(app, runner):
    assert runner.invoke(args=["seed-demo"]).exit_code == 0
    result = runner.invoke(args=["seed-demo"])  # a second run adds nothing twice
    assert result.exit_code == 0 and "demo-sensor-posts.json" in result.output
    posts = json.loads(Path(app.instance_path, "demo-sensor-posts.json").read_text())
    assert posts["step_seconds"] == 30
    assert {p["exit_point"] for p in posts["posts"]} == {"AMS", "HVH", "RTM"}
    assert oct(Path(app.instance_path, "demo-sensor-posts.json").stat().st_mode)[-3:] == "600"
    zones = dict(_raw(app, "SELECT e.code, count(*) FROM validation_zones z JOIN exit_points e "
                           "ON e.id = z.exit_point_id GROUP BY e.code"))
    assert zones == {"AMS": 3, "HVH": 1, "RTM": 1}
    [(sailings,)] = _raw(app, "SELECT count(*) FROM sailings")
    assert sailings == 21
    # Each demo post stands inside a zone of its exit point, so a simulated
    # phone beside it proves presence.
    with app.app_context():
        from api.services import exit_point_presence as places
        from api.models import ExitPoint
        from sqlalchemy import select

        session = database.session()
        for post in posts["posts"]:
            point = session.scalar(select(ExitPoint).where(ExitPoint.code == post["exit_point"]))
            polygons = [z.polygon for z in places.zones_of(session, point.id)]
            assert any(presence.point_in_zone(post["lat"], post["lon"], p) for p in polygons), post["post_id"]
