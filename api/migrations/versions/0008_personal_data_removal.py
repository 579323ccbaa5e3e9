"""room for forms whose personal data was removed after the retention period

The traveller's name, passport number and its keyed hash, and date of birth
may be empty once ``personal_data_removed_at`` is set
(``flask --app api purge-personal-data``).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""
from alembic import op
import sqlalchemy as sa

import api.models

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

REMOVABLE = [
    ("first_name", sa.String(length=100)),
    ("last_name", sa.String(length=100)),
    ("passport_number", sa.String(length=255)),
    ("passport_key", sa.String(length=64)),
    ("date_of_birth", sa.Date()),
]


def upgrade() -> None:
    with op.batch_alter_table("forms") as batch:
        batch.add_column(sa.Column("personal_data_removed_at", api.models.UTCDateTime(timezone=True),
                                   nullable=True))
        for name, type_ in REMOVABLE:
            batch.alter_column(name, existing_type=type_, nullable=True)


def downgrade() -> None:
    # Only possible while no form has had its personal data removed.
    with op.batch_alter_table("forms") as batch:
        for name, type_ in REMOVABLE:
            batch.alter_column(name, existing_type=type_, nullable=False)
        batch.drop_column("personal_data_removed_at")
