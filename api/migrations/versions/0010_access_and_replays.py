"""revocable tokens, dated offline replays, refused replays for supervisors

- users: ``token_version`` (bumped to revoke every token of a user) and
  ``disabled_at``.
- scans: ``received_at`` (when the API got the scan; ``created_at`` stays
  when it was made) and ``queued`` (sent later from an offline queue), with
  an index to find a device's last live scan.
- refused_replays: queued scans the API refused, as the device reported them.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04
"""
from alembic import op
import sqlalchemy as sa

import api.models

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

UTC = api.models.UTCDateTime(timezone=True)
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("token_version", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("disabled_at", UTC, nullable=True))
    with op.batch_alter_table("scans") as batch:
        batch.add_column(sa.Column("received_at", UTC, nullable=True))
        batch.add_column(sa.Column("queued", sa.Boolean(), nullable=False, server_default=sa.text("false")))
    # Scans made before: received when they were made, as far as anyone knows.
    op.execute("UPDATE scans SET received_at = created_at")
    with op.batch_alter_table("scans") as batch:
        batch.alter_column("received_at", existing_type=UTC, nullable=False)
    op.create_index("ix_scans_device_live", "scans", ["device_id", "received_at"],
                    postgresql_where=sa.text("NOT queued"), sqlite_where=sa.text("NOT queued"))
    op.create_table(
        "refused_replays",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("device_id", sa.String(36), nullable=False),
        sa.Column("exit_point_id", sa.Integer(), nullable=False),
        sa.Column("idempotency_key", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("form_id", sa.String(40), nullable=True),
        sa.Column("scanned_at", UTC, nullable=True),
        sa.Column("refused_at", UTC, nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("detail", sa.String(500), nullable=False),
        sa.Column("reported_at", UTC, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refused_replays")),
        sa.ForeignKeyConstraint(["device_id"], ["devices.id"], name=op.f("fk_refused_replays_device_id_devices")),
        sa.ForeignKeyConstraint(["exit_point_id"], ["exit_points.id"],
                                name=op.f("fk_refused_replays_exit_point_id_exit_points")),
        sa.UniqueConstraint("device_id", "idempotency_key",
                            name=op.f("uq_refused_replays_device_id_idempotency_key")),
        sa.CheckConstraint("kind IN ('qr', 'passport')", name=op.f("ck_refused_replays_kind")),
    )
    op.create_index("ix_refused_replays_exit_point", "refused_replays", ["exit_point_id", "refused_at"])


def downgrade() -> None:
    op.drop_index("ix_refused_replays_exit_point", table_name="refused_replays")
    op.drop_table("refused_replays")
    op.drop_index("ix_scans_device_live", table_name="scans")
    with op.batch_alter_table("scans") as batch:
        batch.drop_column("queued")
        batch.drop_column("received_at")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("disabled_at")
        batch.drop_column("token_version")
