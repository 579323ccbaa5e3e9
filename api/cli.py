"""Operator commands: ``flask --app api <command>``."""
from __future__ import annotations

import click
from alembic import command
from flask import Flask, current_app
from flask.cli import with_appcontext
from sqlalchemy import select

from . import auth, database, keys
from .migrations import alembic_config
from .models import Intermediary, Retailer, User, utcnow
from .observability.logs import job


def init_app(app: Flask) -> None:
    for cmd in (init_db, seed_demo, create_user, rotate_keys, expire_forms, pair_device, deliver_webhooks,
                reencrypt_personal_data, verify_audit, purge_personal_data, add_zone, add_sensor_post,
                retire_sensor_post, add_sailing, disable_user, enable_user, set_password,
                reencrypt_signing_keys, purge_deliveries):
        app.cli.add_command(cmd)


def migrate(url: str, audit_chain_key: bytes | None = None, signing_key_encryption_keys: str | None = None) -> None:
    """Bring the database up to the newest schema. The audit chain's key
    lets a migration link events that exist already; the signing-key
    encryption keys let one encrypt signing secrets that exist already."""
    config = alembic_config(url)
    config.attributes["audit_chain_key"] = audit_chain_key
    config.attributes["signing_key_encryption_keys"] = signing_key_encryption_keys
    command.upgrade(config, "heads")


@click.command("init-db")
@with_appcontext
def init_db():
    """Create or upgrade the database schema (Alembic) and the first signing keys."""
    config = current_app.config
    migrate(config["DATABASE_URL"], config["AUDIT_CHAIN_KEY"].encode(), config["SIGNING_KEY_ENCRYPTION_KEYS"])
    keys.ensure_key(database.session())
    click.echo("Database is up to date.")


@click.command("seed-demo")
@with_appcontext
def seed_demo():
    """Load demo exit points, a retailer, an intermediary, devices, users and forms."""
    from .demo import seed

    for line in seed(database.session()):
        click.echo(line)


@click.command("create-user")
@with_appcontext
@click.argument("name")
@click.option("--role", required=True, type=click.Choice(auth.ROLES))
@click.option("--password", help="Better left out: then it is asked for, and stays out of the "
              "shell history and the process list")
@click.option("--password-stdin", "password_stdin", is_flag=True, help="Read the password from standard input")
@click.option("--retailer", "retailer_vat", help="VAT number of the retailer (role retailer)")
@click.option("--intermediary", "intermediary_id", type=int, help="Intermediary id (role intermediary)")
def create_user(name, role, password, password_stdin, retailer_vat, intermediary_id):
    """Add a user who logs in with NAME and a password (at least 12
    characters, not a common one)."""
    from . import passwords

    if password is None:
        password = _read_password(password_stdin)
    found = passwords.problems(password, name)
    if found:
        raise click.UsageError(f"password refused: {found[0]}")
    session = database.session()
    retailer_id = None
    if role == "retailer":
        retailer = session.scalar(select(Retailer).where(Retailer.vat_number == (retailer_vat or "")))
        if retailer is None:
            raise click.UsageError("--retailer must name an existing retailer's VAT number")
        retailer_id = retailer.id
    if role == "intermediary" and session.get(Intermediary, intermediary_id or 0) is None:
        raise click.UsageError("--intermediary must name an existing intermediary id")
    if session.scalar(select(User).where(User.username == name)):
        raise click.UsageError(f"user {name} already exists")
    session.add(User(username=name, role=role, password_hash=auth.hash_password(password),
                     retailer_id=retailer_id,
                     intermediary_id=intermediary_id if role == "intermediary" else None))
    session.commit()
    click.echo(f"User {name} ({role}) created.")


def _read_password(from_stdin: bool) -> str:
    # Never an argument: arguments show in the process list and the shell
    # history.
    if from_stdin:
        import sys

        return sys.stdin.readline().rstrip("\r\n")
    return click.prompt("Password", hide_input=True, confirmation_prompt=True)


def _named_user(name: str) -> User:
    user = database.session().scalar(select(User).where(User.username == name))
    if user is None:
        raise click.UsageError(f"no user {name}")
    return user


@click.command("disable-user")
@click.argument("name")
@with_appcontext
def disable_user(name):
    """Stop user NAME: no more logins; their access tokens and web sessions end now."""
    from .services import users

    session = database.session()
    users.disable(session, _named_user(name), "cli", utcnow())
    session.commit()
    click.echo(f"User {name} disabled; their tokens and sessions no longer work.")


@click.command("enable-user")
@click.argument("name")
@with_appcontext
def enable_user(name):
    """Let disabled user NAME log in again."""
    from .services import users

    session = database.session()
    users.enable(session, _named_user(name), "cli", utcnow())
    session.commit()
    click.echo(f"User {name} enabled.")


@click.command("set-password")
@click.argument("name")
@click.option("--stdin", "from_stdin", is_flag=True, help="Read the password from standard input")
@with_appcontext
def set_password(name, from_stdin):
    """Give user NAME a new password, asked for (or read from standard input
    with --stdin, never an argument); their tokens and sessions end."""
    from .problems import Problem
    from .services import users

    session = database.session()
    user = _named_user(name)
    try:
        users.set_password(session, user, _read_password(from_stdin), "cli", utcnow())
    except Problem as refused:
        raise click.UsageError(f"password refused: {refused.detail}")
    session.commit()
    click.echo(f"New password set for {name}; their tokens and sessions no longer work.")


@click.command("rotate-keys")
@click.option("--purpose", required=True, type=click.Choice(["qr", "access-token"]),
              help="qr: the key that signs forms' QR codes; access-token: the key that signs access tokens")
@with_appcontext
def rotate_keys(purpose):
    """Add a new signing key for PURPOSE; the key it replaces stops signing
    and verifies as long as needed: a QR key until the export deadlines of
    the forms it signed have passed, an access-token key for the token
    lifetime. Keys whose time has passed retire."""
    purpose = keys.ACCESS_TOKEN if purpose == "access-token" else keys.QR
    session = database.session()
    config = current_app.config
    # An access-token key also signs traveller tokens and desk passes: it
    # verifies as long as the longest-lived of them.
    token_ttl = max(config["ACCESS_TOKEN_TTL"], config["TRAVELLER_TOKEN_TTL"], config["DESK_PASS_TTL"])
    new = keys.rotate(session, purpose, access_token_ttl=token_ttl, ruleset=config["RULESET"])
    session.commit()
    current_app.extensions["keyring"].invalidate()
    click.echo(f"New signing key {new.kid}.")
    for key in keys.active_keys(session, purpose):
        until = "while it signs" if key.verifies_until is None else f"until {key.verifies_until:%Y-%m-%d %H:%M} UTC"
        click.echo(f"  {key.kid} verifies {until}")


@click.command("expire-forms")
@with_appcontext
def expire_forms():
    """Mark forms whose export deadline has passed as expired: issued forms, and
    forms still waiting at the customs desk once its grace period is over too."""
    from datetime import timedelta

    from .services import forms

    session = database.session()
    with job("expire-forms") as line:
        expired = forms.expire_overdue(session, current_app.config["RULESET"], utcnow(),
                                       grace=timedelta(minutes=current_app.config["DESK_DECISION_GRACE_MINUTES"]))
        session.commit()
        line["expired"] = len(expired)
    click.echo(f"{len(expired)} form(s) expired.")


@click.command("pair-device")
@click.argument("name")
@click.option("--exit-point", "exit_point_code", required=True, help="Exit point code, e.g. AMS")
@click.option("--kind", type=click.Choice(["kiosk", "tablet", "handheld"]), default="kiosk")
@click.option("--api-url", default="http://127.0.0.1:5000", show_default=True,
              help="Where the device reaches the API")
@click.option("--png", "png_path", type=click.Path(dir_okay=False), help="Also write the QR code here")
@click.option("--minutes", default=15, show_default=True, help="How long the code stays valid")
@with_appcontext
def pair_device(name, exit_point_code, kind, api_url, png_path, minutes):
    """Print a one-time pairing QR code that makes a new device NAME when scanned."""
    import io
    from datetime import timedelta
    from pathlib import Path

    import qrcode

    from shared.pairing import pairing_text

    from .models import ExitPoint
    from .services import devices

    session = database.session()
    exit_point = session.scalar(select(ExitPoint).where(ExitPoint.code == exit_point_code.upper()))
    if exit_point is None:
        raise click.UsageError(f"no exit point {exit_point_code}")
    code = devices.new_pairing_code(session, name, kind, exit_point, utcnow(), timedelta(minutes=minutes))
    session.commit()
    qr = qrcode.QRCode(border=2)
    qr.add_data(pairing_text(api_url.rstrip("/"), code))
    out = io.StringIO()
    qr.print_ascii(out=out, invert=True)
    click.echo(out.getvalue())
    png = Path(png_path or Path(current_app.instance_path) / f"pairing-{exit_point.code}-{kind}.png")
    qr.make_image().save(png)
    click.echo(f"Pairing code for {kind} {name!r} at {exit_point.code}, valid {minutes} minutes.")
    click.echo(f"QR code also written to {png}")


@click.command("deliver-webhooks")
@click.option("--forever", is_flag=True, help="Keep delivering, checking for new events every second")
@with_appcontext
def deliver_webhooks(forever):
    """Send due webhook deliveries (retries included) and exit; with
    --forever, keep going until interrupted. Run several on PostgreSQL.

    SIGTERM or Ctrl+C: the request being made is finished and recorded, the
    other leased deliveries are given back, and the command exits (0)."""
    import threading

    from .services import deliveries

    config = current_app.config
    settings = deliveries.Settings.from_config(config)
    sessions = current_app.extensions["db_sessionmaker"]
    with deliveries.stopped_by_signals(threading.Event()) as stop:
        if not forever:
            click.echo(str(deliveries.deliver_due(sessions, settings, stop=stop)) + ".")
            return
        click.echo("Delivering webhooks; Ctrl+C to stop.")
        deliveries.run_forever(sessions, settings, config["WEBHOOKS_POLL_SECONDS"], stop,
                               on_report=lambda report: click.echo(str(report) + "."))
    click.echo("Stopped; deliveries not sent yet are left for the next run.")


@click.command("reencrypt-personal-data")
@with_appcontext
def reencrypt_personal_data():
    """Encrypt every passport number and stored idempotent response with the
    newest of PASSPORT_KEYS (after a key was added, before the old one is
    dropped)."""
    from sqlalchemy import text

    from .personal_data import reencrypt

    session = database.session()
    # The raw column, past the ORM's decryption, a batch at a time.
    done, last = 0, ""
    while True:
        rows = session.execute(text(
            "SELECT id, passport_number FROM forms WHERE id > :last ORDER BY id LIMIT 500"), {"last": last}).all()
        if not rows:
            break
        for form_id, raw in rows:
            session.execute(text("UPDATE forms SET passport_number = :value WHERE id = :id"),
                            {"value": reencrypt(raw), "id": form_id})
        session.commit()
        done, last = done + len(rows), rows[-1][0]
    # The sensor posts' secrets are kept with the same keys.
    posts = session.execute(text("SELECT id, secret FROM sensor_posts")).all()
    for post_id, raw in posts:
        session.execute(text("UPDATE sensor_posts SET secret = :value WHERE id = :id"),
                        {"value": reencrypt(raw), "id": post_id})
    session.commit()
    # Stored responses of idempotent requests (they may hold whole forms).
    responses, last = 0, ("", "")
    while True:
        rows = session.execute(text(
            "SELECT owner, key, response_body FROM idempotency_records WHERE owner > :owner "
            "OR (owner = :owner AND key > :key) ORDER BY owner, key LIMIT 500"),
            {"owner": last[0], "key": last[1]}).all()
        if not rows:
            break
        for owner, key, raw in rows:
            session.execute(text("UPDATE idempotency_records SET response_body = :value "
                                 "WHERE owner = :owner AND key = :key"),
                            {"value": reencrypt(raw), "owner": owner, "key": key})
        session.commit()
        responses, last = responses + len(rows), (rows[-1][0], rows[-1][1])
    click.echo(f"{done} passport number(s), {len(posts)} sensor post secret(s) and {responses} stored "
               "response(s) encrypted with the newest key.")


def _heads(values: tuple[str, ...]) -> list:
    from .services.audit_chain import Head

    heads = []
    for value in values:
        chain, slash, rest = value.rpartition("/")
        seq, sep, digest = rest.partition(":")
        if not (sep and seq.isdigit() and (not slash or chain.isdigit()) and len(digest) == 64
                and all(c in "0123456789abcdefABCDEF" for c in digest)):
            raise click.BadParameter("give a head as SEQ:HASH (chain 0) or CHAIN/SEQ:HASH, "
                                     "e.g. 1234:9f86d08...", param_hint="--expect-head")
        heads.append(Head(int(chain) if slash else 0, int(seq), digest.lower()))
    return heads


@click.command("verify-audit")
@click.option("--expect-head", "expect_heads", metavar="[CHAIN/]SEQ:HASH", multiple=True,
              help="A head printed by an earlier run: fail if that link is gone or different (once per chain)")
@click.option("--batch", default=2000, show_default=True, help="Links read per query")
@with_appcontext
def verify_audit(expect_heads, batch):
    """Recompute the audit trail's hash chains and name the first broken link
    (exit code 1), or print each chain's head to note somewhere else (exit
    code 0)."""
    from .services import audit_chain

    expected = _heads(expect_heads)
    with job("verify-audit") as line:
        report = audit_chain.verify(database.session(), current_app.config["AUDIT_CHAIN_KEY"].encode(),
                                    batch=batch, expect_heads=expected)
        line.update(intact=report.intact, links=report.links, head_seq=report.head_seq)
    more = [head for head in report.heads[1:] if head.seq]
    if report.intact:
        click.echo(f"audit trail intact: {report.links} events, head seq {report.head_seq} hash {report.head_hash}")
        for head in more:
            click.echo(f"chain {head.chain}: head seq {head.seq} hash {head.hash}")
        click.echo("heads to note: " + " ".join(str(head) for head in (report.heads[0], *more)))
        return
    click.echo(f"audit trail broken at {report.broken}")
    click.echo(f"verified before the break: {report.links} events, up to seq {report.head_seq} "
               f"hash {report.head_hash}" + "".join(f"; chain {head.chain} up to seq {head.seq}" for head in more))
    raise click.exceptions.Exit(1)


@click.command("purge-personal-data")
@click.option("--older-than-days", "days", type=click.IntRange(min=0),
              help="Days after a form's final status (default: PERSONAL_DATA_RETENTION_DAYS)")
@click.option("--batch", default=200, show_default=True, help="Forms per transaction")
@with_appcontext
def purge_personal_data(days, batch):
    """Remove travellers' personal data from forms whose final status is older
    than the retention period, keeping the anonymous figures. Each batch
    commits on its own: interrupt and run again at will."""
    from .services import retention

    days = current_app.config["PERSONAL_DATA_RETENTION_DAYS"] if days is None else days
    with job("purge-personal-data", retention_days=days) as line:
        report = retention.purge(database.session(), utcnow(), days, batch=batch)
        line.update(forms=report.forms, batches=report.batches,
                    idempotency_records=report.idempotency_records,
                    portal_sessions=report.portal_sessions, rate_limits=report.rate_limits)
    click.echo(str(report) + ".")


# --- the traveller's app: where a phone may validate -----------------------------

def _exit_point(session, code: str):
    from .models import ExitPoint

    exit_point = session.scalar(select(ExitPoint).where(ExitPoint.code == code.upper()))
    if exit_point is None:
        raise click.UsageError(f"no exit point {code}")
    return exit_point


def _run(action):
    """Run a service call; its problem (a 4xx) becomes a usage error."""
    from .problems import Problem

    try:
        return action()
    except Problem as problem:
        database.session().rollback()
        raise click.UsageError(problem.detail)


@click.command("add-zone")
@click.argument("exit_point")
@click.argument("name")
@click.argument("geojson", type=click.File("r"))
@with_appcontext
def add_zone(exit_point, name, geojson):
    """Add validation zone NAME to EXIT_POINT: the GeoJSON Polygon in the
    file GEOJSON ("-" for standard input), [longitude, latitude] positions."""
    import json

    from .services import exit_point_presence

    session = database.session()
    try:
        polygon = json.load(geojson)
    except ValueError as exc:
        raise click.UsageError(f"GEOJSON is not JSON: {exc}")
    if polygon.get("type") == "Feature":
        polygon = polygon.get("geometry")
    zone = _run(lambda: exit_point_presence.add_zone(session, _exit_point(session, exit_point), name, polygon))
    session.commit()
    click.echo(f"Zone {zone.id} {name!r} added to {exit_point.upper()}.")


@click.command("add-sensor-post")
@click.argument("exit_point")
@click.argument("post_id")
@with_appcontext
def add_sensor_post(exit_point, post_id):
    """Add sensor post POST_ID at EXIT_POINT and print its secret (shown
    this once: load it into the post)."""
    from .services import exit_point_presence

    session = database.session()
    post, secret = _run(lambda: exit_point_presence.add_post(session, _exit_point(session, exit_point),
                                                             post_id.upper()))
    session.commit()
    click.echo(f"Sensor post {post.id} at {exit_point.upper()}; its secret (hex, shown once):")
    click.echo(secret)


@click.command("retire-sensor-post")
@click.argument("exit_point")
@click.argument("post_id")
@with_appcontext
def retire_sensor_post(exit_point, post_id):
    """Retire sensor post POST_ID: its tokens no longer count."""
    from .services import exit_point_presence

    session = database.session()
    _run(lambda: exit_point_presence.retire_post(session, _exit_point(session, exit_point), post_id.upper(),
                                                 utcnow()))
    session.commit()
    click.echo(f"Sensor post {post_id.upper()} retired.")


@click.command("add-sailing")
@click.argument("exit_point")
@click.option("--operator", required=True)
@click.option("--route", required=True, help='e.g. "Hook of Holland - Harwich"')
@click.option("--to-port", "destination_port", required=True, help="e.g. Harwich")
@click.option("--to-code", "destination_code", required=True, help="three letters, e.g. HAR")
@click.option("--to-country", "destination_country", required=True, help="ISO country code, e.g. GB")
@click.option("--departs", required=True, help="local date and time, e.g. 2026-12-03T22:00")
@with_appcontext
def add_sailing(exit_point, operator, route, destination_port, destination_code, destination_country, departs):
    """Add a ferry sailing from seaport EXIT_POINT (the app's "pick a sailing")."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from .services import exit_point_presence

    zone = ZoneInfo(current_app.config["RULESET"].timezone)
    try:
        departs_at = datetime.fromisoformat(departs)
    except ValueError:
        raise click.BadParameter("give a date and time like 2026-12-03T22:00", param_hint="--departs")
    if departs_at.tzinfo is None:
        departs_at = departs_at.replace(tzinfo=zone)
    session = database.session()
    sailing = _run(lambda: exit_point_presence.add_sailing(
        session, _exit_point(session, exit_point), operator=operator, route=route,
        destination_port=destination_port, destination_code=destination_code.upper(),
        destination_country=destination_country.upper(), departs_at=departs_at, zone=zone))
    session.commit()
    click.echo(f"Sailing {sailing.id} added.")


@click.command("reencrypt-signing-keys")
@with_appcontext
def reencrypt_signing_keys():
    """Encrypt the signing keys' private halves and the webhook secrets with
    the newest of SIGNING_KEY_ENCRYPTION_KEYS (after a key was added, before
    the old one is dropped)."""
    from . import custody

    done = custody.reseal_all(database.session())
    current_app.extensions["keyring"].invalidate()
    click.echo(f"{done} signing secret(s) encrypted with the newest key.")


@click.command("purge-deliveries")
@click.option("--older-than-days", "days", type=click.IntRange(min=1),
              help="Days since a delivery was last scheduled (default: WEBHOOKS_DELIVERY_RETENTION_DAYS)")
@click.option("--batch", default=500, show_default=True, help="Deliveries per transaction")
@with_appcontext
def purge_deliveries(days, batch):
    """Delete webhook deliveries that are over (delivered, failed, cancelled)
    and older than the retention period, with their attempts; pending ones
    and the audit events stay. Each batch commits on its own."""
    from .services import deliveries

    days = current_app.config["WEBHOOKS_DELIVERY_RETENTION_DAYS"] if days is None else days
    deleted = deliveries.purge(database.session(), utcnow(), days, batch=batch)
    click.echo(f"{deleted} finished webhook delivery(ies) older than {days} day(s) deleted, with their attempts.")
