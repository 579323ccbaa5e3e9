"""Finding forms by passport zone and by typed id on the real screens; the
queue refreshing by itself without freezing the screen; the handheld
locking itself when idle; a session the API no longer accepts."""
from __future__ import annotations

import threading
import time
from dataclasses import replace

SPECIMEN = ("P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<\n"
            "L898902C36UTO7408122F1204159ZE184226B<<<<<10")


def test_the_document_reader_opens_every_open_form_of_the_passport(desk_world, handheld, passport_zone):
    world = desk_world
    first = world.waiting_form()
    second = world.waiting_form()
    device = handheld()
    device.log_in()
    device.tap(device.button("Find"))
    find = device.screen("find")

    # The specimen passport reads, but Utopia names no country forms can have.
    device.type(find.ids.passport, SPECIMEN)
    device.wait(lambda: "issued by UTO" in find.error, "the specimen refused")
    assert device.current == "find" and find.ids.passport.text == ""

    # The reader types Mei Chen's passport zone, line by line.
    line1, line2 = passport_zone("CHEN", "MEI", "E12345678", "CHN", "880314", "F", "340101").split("\n")
    device.type(find.ids.passport, line1 + "\n")
    assert device.current == "find"  # half a zone is not a passport yet
    device.type(find.ids.passport, line2)
    device.wait(lambda: device.current == "check", "the check screen")
    check = device.screen("check")
    assert [card.form_id for card in check.cards()] == [first["id"], second["id"]]
    assert [c.matches for c in check.case.comparisons()] == [True, True, True, True]
    assert device.find_all("DeskComparison", check)
    assert "does not match" not in check.warnings_text

    # A passport of someone else, read on the check screen, is flagged.
    other = passport_zone("CHEN", "MEI", "E99999999", "CHN", "880314", "F", "340101")
    device.type(check.ids.passport, other)
    device.wait(lambda: "Passport does not match the form: passport number." in check.warnings_text,
                "the mismatch warning")


def test_a_typed_form_id_is_forgiving_about_case_and_spaces_but_not_typos(desk_world, handheld):
    world = desk_world
    form = world.waiting_form()
    device = handheld()
    device.log_in()
    device.tap(device.button("Find"))
    find = device.screen("find")

    typo = form["id"][:-1] + ("A" if form["id"][-1] != "A" else "B")
    find.ids.form_id.text = typo
    device.tap(device.button("Open"))
    device.wait(lambda: "is not a form id" in find.error, "the typo caught by the check character")

    find.ids.form_id.text = f" {form['id'][:5].lower()} {form['id'][5:].lower()} "
    device.tap(device.button("Open"))
    device.wait(lambda: device.current == "check", "the check screen")
    assert [card.form_id for card in device.screen("check").cards()] == [form["id"]]


def test_the_handheld_locks_when_idle_only_the_officers_password_unlocks_and_logout_forgets(desk_world, handheld):
    device = handheld()
    device.log_in()
    device.app.settings = replace(device.app.settings, idle_lock=1.0)
    device.tap(device.button("Find"))
    device.wait(lambda: device.current == "lock", "the lock after idle time", timeout=5)
    lock = device.screen("lock")

    lock.ids.password.text = "not-the-password"
    device.tap(device.button("Unlock"))
    device.wait(lambda: lock.error == "Wrong password.", "the refusal")
    assert device.current == "lock"

    lock.ids.password.text = "correct-horse-battery"
    device.tap(device.button("Unlock"))
    device.wait(lambda: device.current == "find", "back where the officer was")
    assert lock.ids.password.text == ""

    # Logging out forgets the officer and the forms held in memory.
    device.app.lock()
    device.tap(device.button("Log out"))
    assert device.current == "login"
    assert device.app.desk.officer is None and device.app.desk.cached_form("anything") is None
    assert device.screen("login").ids.password.text == ""


def test_a_session_the_api_no_longer_accepts_goes_back_to_login(desk_world, handheld):
    device = handheld()
    device.log_in()
    device.app.desk.client._token = "expired-while-the-handheld-slept"
    device.app.refresh_queue()
    login = device.screen("login")
    device.wait(lambda: device.current == "login", "the login screen")
    assert login.error == "Your session ended: log in again."
    assert device.app.officer_name == "" and device.app.desk.officer is None


def test_the_queue_refreshes_by_itself_and_a_slow_api_never_freezes_the_screen(desk_world, desk_server, handheld):
    device = handheld(refresh=0.5)
    device.log_in()
    queue = device.screen("queue")
    assert queue.ids.list.data == []

    # A traveller is sent to the desk; nobody touches the handheld. The API
    # holds every queue request until the test lets it answer.
    release = threading.Event()
    desk_server.held_paths["/api/v1/checks"] = release
    desk_world.waiting_form()
    started = time.monotonic()
    while desk_server.holding == 0:
        assert time.monotonic() - started < 15, "the queue did not refresh by itself"
        device.pump()
        time.sleep(0.01)
    # While the API sits on the answer, the screen keeps drawing: a UI
    # thread waiting for the network would return from none of these frames
    # before the request was let go.
    for _ in range(20):
        device.pump()
        assert desk_server.holding >= 1, "a frame waited for the API's answer"
    assert queue.ids.list.data == []
    release.set()
    device.wait(lambda: queue.ids.list.data, "the refreshed queue")
    assert device.find_all("DeskTravellerCard", queue)[0].name == "Mei Chen"


def test_a_form_whose_personal_data_was_removed_opens_without_it(desk_world, handheld, app, runner):
    from datetime import timedelta

    from sqlalchemy import update

    from api import database
    from api.models import Form, utcnow

    form = desk_world.issue("shop")
    assert desk_world.post("shop", f"/api/v1/forms/{form['id']}/cancel").status_code == 200
    with app.app_context():
        session = database.session()
        session.execute(update(Form).where(Form.id == form["id"]).values(updated_at=utcnow() - timedelta(days=400)))
        session.commit()
    purged = runner.invoke(args=["purge-personal-data", "--older-than-days", "30"])
    assert purged.output.startswith("1 form(s)"), purged.output
    device = handheld()
    device.log_in()
    device.tap(device.button("Find"))
    find = device.screen("find")

    find.ids.form_id.text = form["id"]
    device.tap(device.button("Open"))
    device.wait(lambda: device.current == "check", "the check screen")

    check = device.screen("check")
    assert check.name_text == "Personal data removed"
    assert check.passport_text.startswith("Passport  ·") and "Born" not in check.details_text
    assert "Lives in" in check.details_text
