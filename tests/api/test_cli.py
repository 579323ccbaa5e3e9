"""Operator commands: flask --app api init-db | seed-demo | create-user | rotate-keys | expire-forms |
verify-audit | purge-personal-data."""
from __future__ import annotations

from collections import Counter
from datetime import date, timedelta
from pathlib import Path

from sqlalchemy import select

from api import database
from api.models import Form, FORM_STATUSES, SigningKey, User


def run(runner, *args):
    """What the command printed for the operator (its log lines go to stderr)."""
    result = runner.invoke(args=list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def test_init_db_can_run_again_on_a_migrated_database(runner):
    assert "up to date" in run(runner, "init-db")
    assert "up to date" in run(runner, "init-db")


def test_seed_demo_has_a_form_in_every_state_and_can_run_twice(app, runner):
    first = run(runner, "seed-demo")
    second = run(runner, "seed-demo")
    assert "tfd_" in first and "tfd_" in second
    token = Path(app.instance_path, "demo-kiosk-token").read_text().strip()
    assert token in second  # the newest token is the one kept
    with app.app_context():
        statuses = Counter(database.session().scalars(select(Form.status)))
    assert set(statuses) == set(FORM_STATUSES)


def test_the_demo_kiosk_token_printed_last_works(app, runner, client):
    run(runner, "seed-demo")
    token = Path(app.instance_path, "demo-kiosk-token").read_text().strip()
    r = client.post("/api/v1/scans", json={"qr_payload": "nonsense"}, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200 and r.get_json()["reason_code"] == "malformed_token"


def test_create_user_binds_a_retailer_user_to_its_shop(app, runner):
    run(runner, "seed-demo")
    run(runner, "create-user", "clerk", "--role", "retailer", "--password", "amber-ferry-lantern-7",
        "--retailer", "NL000099998B57")
    with app.app_context():
        clerk = database.session().scalar(select(User).where(User.username == "clerk"))
        assert clerk.role == "retailer" and clerk.retailer_id is not None
    bad = runner.invoke(args=["create-user", "x", "--role", "retailer", "--password", "amber-ferry-lantern-7",
                              "--retailer", "NL999999999B99"])
    assert bad.exit_code != 0 and "existing retailer" in bad.output
    dup = runner.invoke(args=["create-user", "clerk", "--role", "officer", "--password", "amber-ferry-lantern-7"])
    assert dup.exit_code != 0 and "already exists" in dup.output


def test_rotate_keys_rotates_one_purpose_and_says_until_when_each_key_verifies(app, runner, client):
    first = {k["kid"] for k in client.get("/.well-known/jwks.json").get_json()["keys"]}
    assert sorted(kid[:3] for kid in first) == ["at-", "qr-"]

    output = run(runner, "rotate-keys", "--purpose", "access-token")

    new_kid = output.splitlines()[0].removeprefix("New signing key ").removesuffix(".")
    assert new_kid.startswith("at-")
    lines = output.splitlines()[1:]
    assert lines[0] == f"  {new_kid} verifies while it signs"
    [old_at] = [kid for kid in first if kid.startswith("at-")]
    assert lines[1].startswith(f"  {old_at} verifies until ") and lines[1].endswith(" UTC")
    second = {k["kid"] for k in client.get("/.well-known/jwks.json").get_json()["keys"]}
    assert second == first | {new_kid}
    with app.app_context():
        rows = {k.kid: k for k in database.session().scalars(select(SigningKey))}
        assert rows[old_at].private_key is None and rows[old_at].verifies_until is not None
        [qr] = [kid for kid in first if kid.startswith("qr-")]
        assert rows[qr].private_key is not None and rows[qr].verifies_until is None  # untouched
    assert runner.invoke(args=["rotate-keys"]).exit_code != 0  # the purpose must be named


def test_expire_forms_expires_only_issued_forms_past_their_deadline(app, runner):
    run(runner, "seed-demo")
    with app.app_context():
        session = database.session()
        issued = session.scalars(select(Form).where(Form.status == "issued")).all()
        issued[0].export_deadline = date.today() - timedelta(days=1)
        session.commit()
        overdue_id = issued[0].id
    assert "1 form(s) expired" in run(runner, "expire-forms")
    assert "0 form(s) expired" in run(runner, "expire-forms")
    with app.app_context():
        assert database.session().get(Form, overdue_id).status == "expired"


def test_the_audit_trail_cannot_be_rewritten_even_by_sql(app, runner):
    import pytest
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    run(runner, "seed-demo")
    with app.app_context():
        session = database.session()
        for statement in ("UPDATE events SET type = 'form.validated'", "DELETE FROM events"):
            with pytest.raises(DBAPIError, match="append-only"):
                session.execute(text(statement))
            session.rollback()
        assert session.execute(text("SELECT count(*) FROM events")).scalar() > 10


def test_verify_audit_passes_on_the_demo_data_and_prints_the_head_to_note(app, runner):
    import re

    from api.models import AuditLink, Event
    from sqlalchemy import func

    run(runner, "seed-demo")
    output = run(runner, "verify-audit")
    events, seq, digest, noted = re.fullmatch(
        r"audit trail intact: (\d+) events, head seq (\d+) hash ([0-9a-f]{64})\nheads to note: (.+)\n", output
    ).groups()
    with app.app_context():
        session = database.session()
        # Seeded one write at a time: every link in chain 0.
        assert int(events) == int(seq) == session.scalar(select(func.count()).select_from(Event)) > 10
        assert session.scalar(select(AuditLink.hash).where(AuditLink.seq == int(seq))) == digest
    assert noted == f"{seq}:{digest}"
    assert run(runner, "verify-audit", "--expect-head", noted) == output


def test_purge_personal_data_empties_old_final_forms_once(app, runner):
    from api.models import utcnow

    run(runner, "seed-demo")
    with app.app_context():
        session = database.session()
        final = session.scalars(select(Form).where(Form.status.in_(["cancelled", "rejected", "refunded"]))).all()
        for form in final:
            form.updated_at = utcnow() - timedelta(days=400)
        session.commit()
        old = {f.id for f in final}
    assert old
    assert run(runner, "purge-personal-data").startswith(
        f"{len(old)} form(s) had their personal data removed (final status more than 365 day(s) ago)")
    assert run(runner, "purge-personal-data").startswith("0 form(s)")
    with app.app_context():
        forms = database.session().scalars(select(Form)).all()
        assert {f.id for f in forms if f.personal_data_removed_at is not None} == old
        assert all(f.last_name is None and f.passport_key is None for f in forms if f.id in old)
        assert all(f.last_name and f.passport_key for f in forms if f.id not in old)
    assert run(runner, "verify-audit").startswith("audit trail intact")
