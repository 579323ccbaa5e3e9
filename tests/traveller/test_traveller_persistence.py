"""What the phone keeps: the real app in a subprocess (its own entry point,
SDL offscreen) is killed with SIGKILL after the passport was entered and
forms kept, and started again: the passport and the forms are there.
"Forget me" leaves no personal data in the data folder. Going to the
background and back keeps everything and starts the sensors again."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from tests.traveller.conftest import INSIDE, POST, SECRET, fill_wallet, open_forms
from tests.traveller.samples import PERSONAL
from traveller_app.presence import SimulatedPresence
from traveller_app.wallet import Wallet

ROOT = Path(__file__).resolve().parents[2]


class PhoneProcess:
    def __init__(self, action: str, data_dir: Path, api_url: str, kivy_home: Path):
        env = {**os.environ, "KIVY_HOME": str(kivy_home), "PYTHONUNBUFFERED": "1"}
        env.pop("TAXFREE_TRAVELLER_SIMULATE", None)
        self.log = kivy_home.parent / f"phone-{action}.log"
        with self.log.open("a") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tests.traveller.phone_process", action, "--data-dir", str(data_dir),
                 "--api-url", api_url], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=log, text=True)
        # A hung app must not hang the suite: it is killed after two minutes.
        self.watchdog = threading.Timer(120, self.process.kill)
        self.watchdog.start()

    def said(self, word: str) -> dict:
        """The JSON after ``word`` on the app's stdout."""
        for line in self.process.stdout:
            if line.startswith(word + " "):
                return json.loads(line[len(word) + 1:])
        self.process.wait(30)
        raise AssertionError(f"the app ended ({self.process.returncode}) without {word}: "
                             f"{self.log.read_text()[-3000:]}")

    def exited(self, timeout: float = 60) -> int:
        code = self.process.wait(timeout)
        self.watchdog.cancel()
        self.process.stdout.close()
        return code

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.exited(30)


def personal_data_in(folder: Path) -> list[tuple[str, bytes]]:
    return [(path.name, secret) for path in folder.rglob("*") if path.is_file()
            for secret in PERSONAL if secret in path.read_bytes()]


def test_a_killed_app_starts_again_with_the_passport_and_forms_and_forget_me_erases_them(
        tmp_path, closed_port_url):
    data, home = tmp_path / "phone", tmp_path / "kivy-home"

    entering = PhoneProcess("enter", data, closed_port_url, home)
    ready = entering.said("READY")
    assert ready["screen"] == "forms" and ready["wallet_passport"]["number"] == "E12345678"
    entering.kill()  # no on_stop, no close: as the system kills an app in the background
    assert entering.process.returncode == -signal.SIGKILL

    restarted = PhoneProcess("report", data, closed_port_url, home)
    shown = restarted.said("SHOWN")
    assert restarted.exited() == 0
    assert shown["screen"] == "forms"  # straight to the forms: the passport is known
    assert shown["passport_text"] == "Passport E12345678 (CN)"
    assert shown["wallet_passport"] == {"number": "E12345678", "country": "CN", "date_of_birth": "1988-03-14",
                                        "expiry": "2034-01-01", "name": "MEI CHEN"}
    assert shown["wallet_forms"] == ["NL7KQ3X9PD", "NL4TR8W2MC"]
    assert [row.split(" · ")[0] for row in shown["rows"]] == ["NL7KQ3X9PD", "NL4TR8W2MC"]
    wallet = Wallet(data)  # and read directly, as a later version of the app would
    assert wallet.passport.number == "E12345678" and len(wallet.forms) == 2
    wallet.close()
    assert personal_data_in(data)  # the scan below finds the passport when it is there

    forgetting = PhoneProcess("forget", data, closed_port_url, home)
    forgotten = forgetting.said("FORGOTTEN")
    assert forgetting.exited() == 0
    assert forgotten["screen"] == "passport" and forgotten["wallet_passport"] is None
    assert forgotten["wallet_forms"] == [] and forgotten["rows"] != []
    assert personal_data_in(data) == []

    again = PhoneProcess("report", data, closed_port_url, home)
    shown = again.said("SHOWN")
    assert again.exited() == 0
    assert shown["screen"] == "passport" and shown["wallet_passport"] is None and shown["passport_text"] == ""


def test_going_to_the_background_and_back_keeps_everything_and_restarts_the_sensors(
        start_traveller, closed_port_url, tmp_path):
    data = tmp_path / "phone"
    fill_wallet(data, forms=open_forms(), language="de")
    presence = SimulatedPresence(secret=SECRET, **INSIDE, post_id=POST)
    phone = start_traveller(closed_port_url, data, presence=presence)
    phone.settle()
    phone.go("validate")
    assert phone.app.gate_open
    before = (phone.current, phone.app.language, phone.app.passport_text, phone.screen().chosen)

    assert phone.app.dispatch("on_pause") is True  # True: keep the app, do not end it
    assert not presence.running  # GPS and Bluetooth off while away
    phone.app.check_gate()
    phone.settle()
    assert not phone.app.gate_open  # no sensors, no evidence

    phone.app.dispatch("on_resume")
    phone.settle()
    assert presence.running
    phone.app.check_gate()
    phone.settle()
    assert phone.app.gate_open
    assert (phone.current, phone.app.language, phone.app.passport_text, phone.screen().chosen) == before
    assert phone.app.passport_text == "Reisepass E12345678 (CN)"
