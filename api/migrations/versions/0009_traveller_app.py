"""the traveller's app: scan channels, validation zones, sensor posts,
sailings, app installs

Scans record their channel (kiosk, app, desk) and, for the app, the
install; a scan from the app or the desk has no device.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""
from alembic import op
import sqlalchemy as sa

import api.models

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("scans") as batch:
        batch.alter_column("device_id", existing_type=sa.String(length=36), nullable=True)
        batch.add_column(sa.Column("channel", sa.String(length=8), nullable=False, server_default="kiosk"))
        batch.add_column(sa.Column("install_key", sa.String(length=64), nullable=True))
        batch.create_check_constraint(op.f("ck_scans_channel"), "channel IN ('kiosk', 'app', 'desk')")
        batch.create_index("ix_scans_install_recent", ["install_key", "created_at"])
    op.create_table(
        "validation_zones",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("exit_point_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("polygon", sa.JSON(), nullable=False),
        sa.Column("created_at", api.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["exit_point_id"], ["exit_points.id"],
                                name=op.f("fk_validation_zones_exit_point_id_exit_points")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_validation_zones")),
        sa.UniqueConstraint("exit_point_id", "name", name=op.f("uq_validation_zones_exit_point_id_name")),
    )
    op.create_index(op.f("ix_validation_zones_exit_point_id"), "validation_zones", ["exit_point_id"])
    op.create_table(
        "sensor_posts",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("exit_point_id", sa.Integer(), nullable=False),
        sa.Column("secret", sa.String(length=255), nullable=False),
        sa.Column("created_at", api.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("retired_at", api.models.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["exit_point_id"], ["exit_points.id"],
                                name=op.f("fk_sensor_posts_exit_point_id_exit_points")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sensor_posts")),
    )
    op.create_index(op.f("ix_sensor_posts_exit_point_id"), "sensor_posts", ["exit_point_id"])
    op.create_table(
        "sailings",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("exit_point_id", sa.Integer(), nullable=False),
        sa.Column("operator", sa.String(length=100), nullable=False),
        sa.Column("route", sa.String(length=200), nullable=False),
        sa.Column("destination_port", sa.String(length=100), nullable=False),
        sa.Column("destination_country", sa.String(length=2), nullable=False),
        sa.Column("departs_at", api.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["exit_point_id"], ["exit_points.id"],
                                name=op.f("fk_sailings_exit_point_id_exit_points")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sailings")),
    )
    op.create_index("ix_sailings_departure", "sailings", ["exit_point_id", "departs_at"])
    op.create_table(
        "app_installs",
        sa.Column("install_key", sa.String(length=64), nullable=False),
        sa.Column("first_seen_at", api.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("install_key", name=op.f("pk_app_installs")),
    )


def downgrade() -> None:
    op.drop_table("app_installs")
    op.drop_index("ix_sailings_departure", table_name="sailings")
    op.drop_table("sailings")
    op.drop_index(op.f("ix_sensor_posts_exit_point_id"), table_name="sensor_posts")
    op.drop_table("sensor_posts")
    op.drop_index(op.f("ix_validation_zones_exit_point_id"), table_name="validation_zones")
    op.drop_table("validation_zones")
    with op.batch_alter_table("scans") as batch:
        batch.drop_index("ix_scans_install_recent")
        batch.drop_constraint(op.f("ck_scans_channel"), type_="check")
        batch.drop_column("install_key")
        batch.drop_column("channel")
        batch.alter_column("device_id", existing_type=sa.String(length=36), nullable=False)
