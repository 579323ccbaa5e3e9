def test_world_builds_and_a_form_is_validated_at_the_kiosk(world):
    form = world.issue()
    r = world.scan("kiosk", form["qr_payload"])
    assert r.status_code == 200
    assert r.get_json()["verdict"] == "validated"
