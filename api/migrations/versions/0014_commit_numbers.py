"""the audit chain's head on its counter; PostgreSQL takes a commit's numbers in one call

- ``change_counters.head_hash``: the hash of the newest link, kept on the
  ``audit`` counter's row and updated with every link. A committing
  transaction reads it in the statement that takes its numbers, under the
  row lock, instead of reading the previous link in a statement of its own.
- ``take_commit_numbers(form_ids, events)`` (PostgreSQL): the change
  feed's numbers for the forms a transaction changed, then the audit
  chain's numbers for its events and the chain's head, in that order, in
  one round trip (api/services/audit.py).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03
"""
from alembic import op
import sqlalchemy as sa

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

# The two counters in the one order every writer takes them (the change
# feed's, then the audit chain's: api/services/changes.py and
# audit_chain.py say why), each under its row lock until the transaction
# ends. A counter row that is missing (never made, or lost) starts after
# the highest number already given, as the application's own statements
# do. The forms' numbers follow the order of ``form_ids``.
TAKE_COMMIT_NUMBERS = """
CREATE FUNCTION take_commit_numbers(form_ids text[], events bigint,
                                    OUT forms_last bigint, OUT audit_last bigint, OUT audit_head text)
LANGUAGE plpgsql AS $$
DECLARE
    changed bigint := coalesce(cardinality(form_ids), 0);
BEGIN
    IF changed > 0 THEN
        UPDATE change_counters SET value = value + changed WHERE name = 'forms'
        RETURNING value INTO forms_last;
        IF NOT FOUND THEN
            INSERT INTO change_counters (name, value)
            VALUES ('forms', (SELECT coalesce(max(change_seq), 0) FROM forms) + changed)
            ON CONFLICT (name) DO UPDATE SET value = change_counters.value + changed
            RETURNING value INTO forms_last;
        END IF;
        UPDATE forms SET change_seq = forms_last - changed + numbered.n
        FROM unnest(form_ids) WITH ORDINALITY AS numbered(id, n)
        WHERE forms.id = numbered.id;
    END IF;
    IF events > 0 THEN
        UPDATE change_counters SET value = value + events WHERE name = 'audit'
        RETURNING value, head_hash INTO audit_last, audit_head;
        IF NOT FOUND THEN
            INSERT INTO change_counters (name, value, head_hash)
            VALUES ('audit', (SELECT coalesce(max(seq), 0) FROM audit_links) + events,
                    (SELECT hash FROM audit_links ORDER BY seq DESC LIMIT 1))
            ON CONFLICT (name) DO UPDATE SET value = change_counters.value + events
            RETURNING value, head_hash INTO audit_last, audit_head;
        END IF;
    END IF;
END
$$
"""


def upgrade() -> None:
    with op.batch_alter_table("change_counters") as batch:
        batch.add_column(sa.Column("head_hash", sa.String(length=64), nullable=True))
    op.execute("UPDATE change_counters SET head_hash = "
               "(SELECT hash FROM audit_links WHERE audit_links.seq = change_counters.value) "
               "WHERE name = 'audit'")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(TAKE_COMMIT_NUMBERS)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION take_commit_numbers(text[], bigint)")
    with op.batch_alter_table("change_counters") as batch:
        batch.drop_column("head_hash")
