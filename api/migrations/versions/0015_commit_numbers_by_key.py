"""take_commit_numbers numbers each form by its primary key

Migration 0014's function numbered the forms with one ``UPDATE forms ...
FROM unnest(form_ids) WITH ORDINALITY``. PL/pgSQL keeps a custom plan for
a statement whose generic plan looks dearer, and this join's did (an array
parameter of unknown length): the statement was planned again on every
commit, about as long as it took to run. Numbering one form at a time by
its key is a statement whose generic plan costs what the custom one does,
so it is planned a few times per connection and then reused; a commit
changes one form, or a handful (a batch), so the loop costs nothing in
round trips (it runs inside the function). Numbers, order and locks are as
before: the forms in the order of ``form_ids``, the ``forms`` counter
before the ``audit`` one.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03
"""
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

# Migration 0014's function as it was but for the numbering, written out
# whole: a migration stands on its own.
TAKE_COMMIT_NUMBERS = """
CREATE OR REPLACE FUNCTION take_commit_numbers(form_ids text[], events bigint,
                                               OUT forms_last bigint, OUT audit_last bigint,
                                               OUT audit_head text)
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
{numbering}
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
NUMBERING_BY_JOIN = """\
        UPDATE forms SET change_seq = forms_last - changed + numbered.n
        FROM unnest(form_ids) WITH ORDINALITY AS numbered(id, n)
        WHERE forms.id = numbered.id;"""
NUMBERING_BY_KEY = """\
        FOR n IN 1 .. changed LOOP
            UPDATE forms SET change_seq = forms_last - changed + n WHERE id = form_ids[n];
        END LOOP;"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(TAKE_COMMIT_NUMBERS.format(numbering=NUMBERING_BY_KEY))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(TAKE_COMMIT_NUMBERS.format(numbering=NUMBERING_BY_JOIN))
