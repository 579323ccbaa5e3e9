"""integration: webhooks with their outbox and attempts, the forms change feed

``forms.change_seq`` orders the change feed by commit (see
api/services/changes.py); existing forms are numbered in the order they last
changed, and the counter starts after them.

Revision ID: 0002
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa

import api.models

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "webhooks",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("events", sa.JSON(), nullable=False),
        sa.Column("secret", sa.String(length=100), nullable=False),
        sa.Column("retailer_id", sa.Integer(), nullable=True),
        sa.Column("intermediary_id", sa.Integer(), nullable=True),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", api.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", api.models.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint("(retailer_id IS NULL) != (intermediary_id IS NULL)",
                           name=op.f("ck_webhooks_one_owner")),
        sa.ForeignKeyConstraint(["intermediary_id"], ["intermediaries.id"],
                                name=op.f("fk_webhooks_intermediary_id_intermediaries")),
        sa.ForeignKeyConstraint(["retailer_id"], ["retailers.id"],
                                name=op.f("fk_webhooks_retailer_id_retailers")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhooks")),
    )
    op.create_index(op.f("ix_webhooks_intermediary_id"), "webhooks", ["intermediary_id"])
    op.create_index(op.f("ix_webhooks_retailer_id"), "webhooks", ["retailer_id"])

    op.create_table(
        "webhook_deliveries",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("webhook_id", sa.String(length=32), nullable=False),
        sa.Column("event_id", BigId, nullable=False),
        sa.Column("event_type", sa.String(length=40), nullable=False),
        sa.Column("message_id", sa.String(length=40), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempt_count", sa.Integer(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", api.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("retry_window_start", api.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("leased_until", api.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("lease_token", sa.String(length=32), nullable=True),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("delivered_at", api.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", api.models.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("status IN ('pending', 'delivered', 'failed', 'cancelled')",
                           name=op.f("ck_webhook_deliveries_status")),
        sa.ForeignKeyConstraint(["event_id"], ["events.id"],
                                name=op.f("fk_webhook_deliveries_event_id_events")),
        sa.ForeignKeyConstraint(["webhook_id"], ["webhooks.id"],
                                name=op.f("fk_webhook_deliveries_webhook_id_webhooks")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_deliveries")),
    )
    op.create_index(op.f("ix_webhook_deliveries_webhook_id"), "webhook_deliveries", ["webhook_id"])
    op.create_index("ix_webhook_deliveries_due", "webhook_deliveries", ["status", "next_attempt_at"])

    op.create_table(
        "webhook_attempts",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("delivery_id", BigId, nullable=False),
        sa.Column("attempted_at", api.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.String(length=500), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["delivery_id"], ["webhook_deliveries.id"],
                                name=op.f("fk_webhook_attempts_delivery_id_webhook_deliveries")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_attempts")),
    )
    op.create_index(op.f("ix_webhook_attempts_delivery_id"), "webhook_attempts", ["delivery_id"])

    op.create_table(
        "change_counters",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_change_counters")),
    )

    # A plain ADD COLUMN and CREATE INDEX: no table rebuild on SQLite, which
    # would trip over the events' foreign keys.
    op.add_column("forms", sa.Column("change_seq", sa.BigInteger(), nullable=True))
    _number_existing_forms()
    op.create_index(op.f("ix_forms_change_seq"), "forms", ["change_seq"], unique=True)


def _number_existing_forms() -> None:
    bind = op.get_bind()
    forms = sa.table("forms", sa.column("id", sa.String), sa.column("updated_at"),
                     sa.column("change_seq", sa.BigInteger))
    ids = bind.execute(sa.select(forms.c.id).order_by(forms.c.updated_at, forms.c.id)).scalars().all()
    if ids:
        bind.execute(
            forms.update().where(forms.c.id == sa.bindparam("b_id")).values(change_seq=sa.bindparam("b_seq")),
            [{"b_id": form_id, "b_seq": n} for n, form_id in enumerate(ids, start=1)],
        )
    counters = sa.table("change_counters", sa.column("name", sa.String), sa.column("value", sa.BigInteger))
    bind.execute(counters.insert().values(name="forms", value=len(ids)))


def downgrade() -> None:
    op.drop_index(op.f("ix_forms_change_seq"), table_name="forms")
    op.drop_column("forms", "change_seq")
    op.drop_table("change_counters")
    op.drop_index(op.f("ix_webhook_attempts_delivery_id"), table_name="webhook_attempts")
    op.drop_table("webhook_attempts")
    op.drop_index("ix_webhook_deliveries_due", table_name="webhook_deliveries")
    op.drop_index(op.f("ix_webhook_deliveries_webhook_id"), table_name="webhook_deliveries")
    op.drop_table("webhook_deliveries")
    op.drop_index(op.f("ix_webhooks_retailer_id"), table_name="webhooks")
    op.drop_index(op.f("ix_webhooks_intermediary_id"), table_name="webhooks")
    op.drop_table("webhooks")
