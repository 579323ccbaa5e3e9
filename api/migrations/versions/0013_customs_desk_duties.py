"""officers' duties at exit points, expired checks, the fee in force on each form

- ``duties``: an officer signs on at an exit point's desk and decides only
  the checks there; a decided check names the duty it was decided on.
- checks can be ``expired``: closed without a decision once the export
  deadline and the desk's grace period are over.
- ``forms.fee_bp``: the intermediary's fee when the form was issued. Forms
  that exist already get the fee of the intermediary that issued them
  (``forms.intermediary_id``) where that fee reproduces the form's stored
  fee, and otherwise the fee the stored amounts imply.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03
"""
from alembic import op
import sqlalchemy as sa

import api.models

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "duties",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("officer_id", sa.Integer(), nullable=False),
        sa.Column("exit_point_id", sa.Integer(), nullable=False),
        sa.Column("started_at", api.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ended_at", api.models.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["officer_id"], ["users.id"], name=op.f("fk_duties_officer_id_users")),
        sa.ForeignKeyConstraint(["exit_point_id"], ["exit_points.id"],
                                name=op.f("fk_duties_exit_point_id_exit_points")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_duties")),
    )
    op.create_index("ix_duties_officer_started", "duties", ["officer_id", "started_at"])

    # SQLite rebuilds the table to change a constraint; the partial index is
    # dropped first and made again after, so it keeps its WHERE clause.
    op.drop_index("ix_checks_pending_queue", table_name="checks")
    with op.batch_alter_table("checks") as batch:
        batch.drop_constraint(op.f("ck_checks_status"), type_="check")
        batch.create_check_constraint(op.f("ck_checks_status"),
                                      "status IN ('pending', 'decided', 'expired')")
        batch.add_column(sa.Column("duty_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(op.f("fk_checks_duty_id_duties"), "duties", ["duty_id"], ["id"])
    op.create_index(
        "ix_checks_pending_queue", "checks", ["opened_at", "id"],
        postgresql_where=sa.text("status = 'pending'"), sqlite_where=sa.text("status = 'pending'"),
    )

    with op.batch_alter_table("forms") as batch:
        batch.add_column(sa.Column("fee_bp", sa.Integer(), nullable=False, server_default="0"))
    # The issuing intermediary's fee, where it gives the fee stored on the form ...
    op.execute(
        "UPDATE forms SET fee_bp = (SELECT i.fee_bp FROM intermediaries i WHERE i.id = forms.intermediary_id)"
        " WHERE intermediary_id IS NOT NULL"
    )
    # ... else the fee the stored amounts imply (rounded half up), so that
    # recomputing the form's fee from its VAT gives back the stored fee.
    op.execute(
        "UPDATE forms SET fee_bp = CASE WHEN vat_cents > 0"
        " THEN (fee_cents * 10000 + vat_cents / 2) / vat_cents ELSE 0 END"
        " WHERE fee_cents != (vat_cents * fee_bp + 5000) / 10000"
    )


def downgrade() -> None:
    with op.batch_alter_table("forms") as batch:
        batch.drop_column("fee_bp")
    op.drop_index("ix_checks_pending_queue", table_name="checks")
    op.execute("UPDATE checks SET status = 'decided' WHERE status = 'expired'")
    with op.batch_alter_table("checks") as batch:
        batch.drop_constraint(op.f("fk_checks_duty_id_duties"), type_="foreignkey")
        batch.drop_column("duty_id")
        batch.drop_constraint(op.f("ck_checks_status"), type_="check")
        batch.create_check_constraint(op.f("ck_checks_status"), "status IN ('pending', 'decided')")
    op.create_index(
        "ix_checks_pending_queue", "checks", ["opened_at", "id"],
        postgresql_where=sa.text("status = 'pending'"), sqlite_where=sa.text("status = 'pending'"),
    )
    op.drop_index("ix_duties_officer_started", table_name="duties")
    op.drop_table("duties")
