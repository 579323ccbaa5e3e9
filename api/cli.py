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


def init_app(app: Flask) -> None:
    for cmd in (init_db, seed_demo, create_user, rotate_keys, expire_forms, pair_device, deliver_webhooks,
                reencrypt_personal_data, verify_audit, purge_personal_data):
        app.cli.add_command(cmd)


def migrate(url: str, audit_chain_key: bytes | None = None) -> None:
    """Bring the database up to the newest schema. The audit chain's key
    lets a migration link events that exist already."""
    config = alembic_config(url)
    config.attributes["audit_chain_key"] = audit_chain_key
    command.upgrade(config, "heads")


@click.command("init-db")
@with_appcontext
def init_db():
    """Create or upgrade the database schema (Alembic) and the first signing key."""
    migrate(current_app.config["DATABASE_URL"], current_app.config["AUDIT_CHAIN_KEY"].encode())
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
@click.option("--password", required=True)
@click.option("--retailer", "retailer_vat", help="VAT number of the retailer (role retailer)")
@click.option("--intermediary", "intermediary_id", type=int, help="Intermediary id (role intermediary)")
def create_user(name, role, password, retailer_vat, intermediary_id):
    """Add a user who logs in with NAME and PASSWORD."""
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


@click.command("rotate-keys")
@with_appcontext
def rotate_keys():
    """Add a new signing key; the previous key keeps verifying, older ones retire."""
    session = database.session()
    new = keys.rotate(session)
    session.commit()
    current_app.extensions["keyring"].invalidate()
    live = [k.kid for k in keys.active_keys(session)]
    click.echo(f"New signing key {new.kid}; verifying with {', '.join(live)}.")


@click.command("expire-forms")
@with_appcontext
def expire_forms():
    """Mark issued forms whose export deadline has passed as expired."""
    from .services import forms

    session = database.session()
    expired = forms.expire_overdue(session, current_app.config["RULESET"], utcnow())
    session.commit()
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
    """Encrypt every passport number with the newest of PASSPORT_KEYS (after
    a key was added, before the old one is dropped)."""
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
    click.echo(f"{done} passport number(s) encrypted with the newest key.")


def _head(value: str | None) -> tuple[int, str] | None:
    if value is None:
        return None
    seq, sep, digest = value.partition(":")
    if not (sep and seq.isdigit() and len(digest) == 64 and all(c in "0123456789abcdefABCDEF" for c in digest)):
        raise click.BadParameter("give the head as SEQ:HASH, e.g. 1234:9f86d08...", param_hint="--expect-head")
    return int(seq), digest.lower()


@click.command("verify-audit")
@click.option("--expect-head", "expect_head", metavar="SEQ:HASH",
              help="A head printed by an earlier run: fail if that link is gone or different")
@click.option("--batch", default=2000, show_default=True, help="Links read per query")
@with_appcontext
def verify_audit(expect_head, batch):
    """Recompute the audit trail's hash chain and name the first broken link
    (exit code 1), or print the head to note somewhere else (exit code 0)."""
    from .services import audit_chain

    expected = _head(expect_head)
    report = audit_chain.verify(database.session(), current_app.config["AUDIT_CHAIN_KEY"].encode(),
                                batch=batch, expect_head=expected)
    if report.intact:
        click.echo(f"audit trail intact: {report.links} events, head seq {report.head_seq} hash {report.head_hash}")
        return
    click.echo(f"audit trail broken at {report.broken}")
    click.echo(f"verified before the break: {report.links} events, up to seq {report.head_seq} "
               f"hash {report.head_hash}")
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
    report = retention.purge(database.session(), utcnow(), days, batch=batch)
    click.echo(str(report) + ".")
