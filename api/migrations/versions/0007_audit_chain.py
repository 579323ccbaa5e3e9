"""the audit trail's hash chain: audit_links, append-only like events

Existing events are linked in id order, so ``flask --app api verify-audit``
passes on an upgraded database. That needs the AUDIT_CHAIN_KEY, which
``flask --app api init-db`` hands over; a plain ``alembic upgrade`` can
bring in the chain only while there are no events yet.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""
from alembic import context, op
import sqlalchemy as sa

import api.models
from api.services import audit_chain

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    key = _key_if_needed()
    links = op.create_table(
        "audit_links",
        sa.Column("seq", BigId, autoincrement=False, nullable=False),
        sa.Column("event_id", BigId, nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["event_id"], ["events.id"], name=op.f("fk_audit_links_event_id_events")),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_audit_links")),
        sa.UniqueConstraint("event_id", name=op.f("uq_audit_links_event_id")),
    )
    if key is not None:
        counters = sa.table("change_counters", sa.column("name", sa.String), sa.column("value", sa.BigInteger))
        audit_chain.link_existing(op.get_bind(), key, EVENTS, links, counters)
    _append_only_links()


# Read with the application's column types, exactly as verify-audit reads them.
EVENTS = sa.table(
    "events", sa.column("id", BigId), sa.column("form_id", sa.String), sa.column("type", sa.String),
    sa.column("actor", sa.String), sa.column("exit_point", sa.String), sa.column("data", sa.JSON),
    sa.column("at", api.models.UTCDateTime(timezone=True)),
)


def _key_if_needed() -> bytes | None:
    """The key, if there are events to link. Asked before anything changes:
    SQLite runs DDL outside the migration's transaction."""
    if op.get_bind().execute(sa.select(EVENTS.c.id).limit(1)).first() is None:
        return None
    key = context.config.attributes.get("audit_chain_key")
    if key is None:
        raise RuntimeError("linking the existing audit events needs the AUDIT_CHAIN_KEY: "
                           "upgrade with flask --app api init-db")
    return key


def _append_only_links() -> None:
    if op.get_bind().dialect.name == "postgresql":
        # The function of migration 0001, with its message.
        op.execute("""
            CREATE TRIGGER audit_links_append_only BEFORE UPDATE OR DELETE ON audit_links
            FOR EACH ROW EXECUTE FUNCTION events_append_only()""")
    else:
        for action in ("UPDATE", "DELETE"):
            op.execute(f"""
                CREATE TRIGGER audit_links_no_{action.lower()} BEFORE {action} ON audit_links
                BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END""")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER audit_links_append_only ON audit_links")
    op.drop_table("audit_links")
    op.execute(sa.text("DELETE FROM change_counters WHERE name = :name").bindparams(name=audit_chain.COUNTER))
