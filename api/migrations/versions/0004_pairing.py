"""pairing codes for provisioning devices

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28
"""
from alembic import op
import sqlalchemy as sa
import api.models

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pairing_codes",
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("device_name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("exit_point_id", sa.Integer(), nullable=False),
        sa.Column("created_at", api.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", api.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("used_at", api.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("device_id", sa.String(length=36), nullable=True),
        sa.ForeignKeyConstraint(["device_id"], ["devices.id"], name=op.f("fk_pairing_codes_device_id_devices")),
        sa.ForeignKeyConstraint(["exit_point_id"], ["exit_points.id"],
                                name=op.f("fk_pairing_codes_exit_point_id_exit_points")),
        sa.PrimaryKeyConstraint("code_hash", name=op.f("pk_pairing_codes")),
    )


def downgrade() -> None:
    op.drop_table("pairing_codes")
