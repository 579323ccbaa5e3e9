"""take_early_numbers: a write takes its own numbers through a function

A write that is its transaction's only one takes the form's number in the
change feed and its events' numbers in the audit chain in its own
statement (api/services/audit.Numbers). Those were two UPDATEs of the
counters' rows written into the statement. When another transaction held
a counter, the write waited for it and then, under READ COMMITTED,
rechecked the counter's newest version (EvalPlanQual), which starts up a
copy of every subplan of the statement: the form's update, the scan's and
the events' inserts, each with its indexes. That ran after the counter was
locked, while every other scan and issue waited for it. Called from the
statement, this function's UPDATEs are statements of their own: a recheck
starts up one small plan.

Numbers, order and locks are as before: the ``forms`` counter first, then
the ``audit`` one, each held until the transaction ends. A counter with no
row yet gives NULL and takes nothing after it (no audit number without
the form's), as the statements did: the commit then takes the numbers
(take_commit_numbers), creating the rows.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05
"""
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

TAKE_EARLY_NUMBERS = """
CREATE FUNCTION take_early_numbers(forms bigint, events bigint,
                                   OUT forms_last bigint, OUT audit_last bigint, OUT audit_head text)
LANGUAGE plpgsql AS $$
BEGIN
    IF forms > 0 THEN
        UPDATE change_counters SET value = value + forms WHERE name = 'forms'
        RETURNING value INTO forms_last;
        IF NOT FOUND THEN
            RETURN;
        END IF;
    END IF;
    IF events > 0 THEN
        UPDATE change_counters SET value = value + events WHERE name = 'audit'
        RETURNING value, head_hash INTO audit_last, audit_head;
    END IF;
END
$$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(TAKE_EARLY_NUMBERS)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION take_early_numbers(bigint, bigint)")
