"""`make traveller` against `make run`: the demo's setup (init-db, seed-demo,
the development server, on SQLite, with the README's demo risk settings),
the app's settings exactly as the Makefile gives them, and the app's own
session logic (no window): the demo traveller that `make run` names signs
in, sees the demo forms, and the simulated phone, hearing the demo post's
tokens from the file seed-demo wrote, validates at Schiphol."""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from datetime import date

import pytest

from shared.traveller_client import TravellerClient
from tests.servers import ROOT, free_port, serving
from traveller_app import config as traveller_config
from traveller_app.passport_entry import from_fields
from traveller_app.session import TravellerSession
from traveller_app.wallet import Wallet


def make_traveller_arguments(api_url: str) -> list[str]:
    """The app's arguments in the Makefile's `traveller` recipe, with its defaults."""
    makefile = (ROOT / "Makefile").read_text().replace("\\\n", " ")
    recipe = re.search(r"^traveller:.*\n\t(.*)$", makefile, re.M).group(1)
    command = recipe.split("taxfree-traveller", 1)[1].replace("$(TRAVELLER_ARGS)", "")
    command = re.sub(r"\$\$\{\w+:-([^}]*)\}", r"\1", command)  # $${TRAVELLER_SIMULATE:-AMS-D2-01}
    return shlex.split(command.replace("http://127.0.0.1:5000", api_url))


def readme_demo_risk_policy() -> str:
    readme = (ROOT / "README.md").read_text()
    return re.search(r"RISK_POLICY='([^']*)' make run", readme).group(1)


def test_the_demo_traveller_signs_in_and_validates_at_schiphol_with_make_travellers_settings(tmp_path):
    env = {**os.environ, "INSTANCE_PATH": str(tmp_path / "instance"), "PYTHONPATH": str(ROOT),
           "RISK_POLICY": readme_demo_risk_policy()}
    env.pop("DATABASE_URL", None)
    flask = [sys.executable, "-m", "flask", "--app", "api"]
    subprocess.run(flask + ["init-db"], env=env, check=True, capture_output=True, cwd=ROOT)
    seeded = subprocess.run(flask + ["seed-demo"], env=env, check=True, capture_output=True, text=True,
                            cwd=ROOT).stdout
    said = re.search(r"`make traveller`: sign in with .*number (\w+), issuing country (\w\w), born ([\d-]+)",
                     seeded)
    assert said, seeded
    number, country, born = said.groups()

    port = free_port()
    with serving(flask + ["run", "--port", str(port)], port, env):
        # Run where `instance/` is the server's instance folder, as `make traveller` does in a checkout.
        os.chdir(tmp_path)
        try:
            settings = traveller_config.load(make_traveller_arguments(f"http://127.0.0.1:{port}"), environ={})
            presence = settings.presence()
        finally:
            os.chdir(ROOT)
        assert presence.post_id == "AMS-D2-01" and presence.secret

        wallet = Wallet(tmp_path / "phone")
        session = TravellerSession(wallet, TravellerClient(settings.api_url, wallet.install_id), presence)
        refreshed = session.give_passport(from_fields(number, country, born, "2031-01-01", date.today()))
        assert refreshed.online
        forms = {f.goods: f for f in refreshed.forms}
        assert forms[("Atlas of the Low Countries",)].status == "issued"
        assert forms[("Chronograph watch", "Watch strap")].status == "check_required"  # waiting at the desk
        gate = session.gate()
        assert gate.open and gate.exit_point.code == "AMS" and gate.zone == "Departures 2"

        result = session.validate([f.id for f in refreshed.forms if f.open], None)
        wallet.close()
    verdicts = {v.form_id: v.verdict for v in result.verdicts}
    assert verdicts == {forms[("Atlas of the Low Countries",)].id: "validated",
                        forms[("Chronograph watch", "Watch strap")].id: "check_required"}
    assert result.desk_pass


@pytest.mark.parametrize("arguments,complaint", [
    (["--simulate", "AMS-D2-01"], "no sensor posts file"),
    (["--simulate", "AMS-D2-01", "--sensor-posts", "missing.json"], "run `make run` first"),
    (["--simulate", "AMS-X9-99", "--sensor-posts", "posts.json"], "sensor post AMS-X9-99 is not in posts.json"),
])
def test_a_simulated_post_without_its_secret_is_refused_before_the_window_opens(
        tmp_path, monkeypatch, capsys, arguments, complaint):
    from traveller_app.main import main

    (tmp_path / "posts.json").write_text('{"step_seconds": 30, "posts": []}')
    monkeypatch.chdir(tmp_path)
    assert main(arguments) == 2
    assert complaint in capsys.readouterr().err


def test_a_post_of_the_file_is_heard_with_its_secret_and_step_from_where_the_phone_stands(tmp_path):
    from shared.presence import beacon_token

    secret = "ab" * 32
    (tmp_path / "posts.json").write_text(
        '{"step_seconds": 20, "posts": [{"post_id": "RTM-T1-01", "exit_point": "RTM", "secret": "%s", '
        '"lat": 51.951, "lon": 4.136}]}' % secret)
    beside = traveller_config.simulated_presence("RTM-T1-01", str(tmp_path / "posts.json"))
    assert (beside.lat, beside.lon, beside.step_seconds) == (51.951, 4.136, 20)
    elsewhere = traveller_config.simulated_presence("52.0,4.0,RTM-T1-01", str(tmp_path / "posts.json"))
    [heard] = elsewhere.evidence("install").beacons
    assert (elsewhere.lat, heard.post_id) == (52.0, "RTM-T1-01")
    assert heard.token == beacon_token(bytes.fromhex(secret), heard.seen_at, 20, post_id="RTM-T1-01")
