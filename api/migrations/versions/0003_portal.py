"""Browser sessions of the web pages (retailer portal, dashboard, status page).

Revision ID: 0003
Revises: 0002
"""
from alembic import op
import sqlalchemy as sa

import api.models

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "portal_sessions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("created_at", api.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", api.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", api.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"],
                                name=op.f("fk_portal_sessions_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_portal_sessions")),
    )
    with op.batch_alter_table("portal_sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_portal_sessions_user_id"), ["user_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_portal_sessions_expires_at"), ["expires_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("portal_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_portal_sessions_expires_at"))
        batch_op.drop_index(batch_op.f("ix_portal_sessions_user_id"))
    op.drop_table("portal_sessions")
