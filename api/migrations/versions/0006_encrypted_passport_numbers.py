"""room for encrypted passport numbers

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28

Existing rows stay readable as they are; `flask --app api
reencrypt-personal-data` encrypts them with the app's PASSPORT_KEYS.
"""
from alembic import op
import sqlalchemy as sa

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("forms") as batch:
        batch.alter_column("passport_number", type_=sa.String(length=255), existing_nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("forms") as batch:
        batch.alter_column("passport_number", type_=sa.String(length=20), existing_nullable=False)
