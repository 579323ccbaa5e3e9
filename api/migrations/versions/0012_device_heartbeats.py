"""device heartbeats and exit points' opening hours

Each kiosk, tablet and handheld reports its health (offline queue, camera,
disk, clock) in a heartbeat; the last one per device is kept. An exit
point's opening hours tell a device that is silent at night from one that
failed while travellers are there.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03
"""
from alembic import op
import sqlalchemy as sa

import api.models

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("exit_points") as batch:
        batch.add_column(sa.Column("opening_hours", sa.String(length=11), nullable=True))
    op.create_table(
        "device_heartbeats",
        sa.Column("device_id", sa.String(length=36), nullable=False),
        sa.Column("received_at", api.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("app_version", sa.String(length=40), nullable=False),
        sa.Column("online_since", api.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("queue_depth", sa.Integer(), nullable=False),
        sa.Column("oldest_queued_at", api.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("queue_writable", sa.Boolean(), nullable=False),
        sa.Column("camera_ok", sa.Boolean(), nullable=True),
        sa.Column("free_disk_bytes", sa.BigInteger(), nullable=False),
        sa.Column("device_clock", api.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("clock_skew_seconds", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["device_id"], ["devices.id"],
                                name=op.f("fk_device_heartbeats_device_id_devices")),
        sa.PrimaryKeyConstraint("device_id", name=op.f("pk_device_heartbeats")),
    )


def downgrade() -> None:
    op.drop_table("device_heartbeats")
    with op.batch_alter_table("exit_points") as batch:
        batch.drop_column("opening_hours")
