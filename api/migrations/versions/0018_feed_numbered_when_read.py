"""the change feed's numbers are given when the feed is read, not by writers

A write that changes a form now only marks it changed (``change_seq``
negated; a new form's is NULL); whoever reads the feed next numbers every
changed form that has committed, under the ``forms`` counter's lock, and
commits before listing (api/services/changes.py). Writers no longer take
that counter, so none waits for another's commit to get a number.

PostgreSQL's functions lose their ``forms`` part, and are named for what
they now do (replacing ``take_early_numbers`` and ``take_commit_numbers``):

- ``take_chain_numbers(events)``: the audit chain's numbers and head, in a
  write's own statement.
- ``mark_forms_take_chain_numbers(form_ids, events)``: marks the forms
  changed, then takes the chain's numbers, in one round trip at the
  commit.

Downgrading numbers the forms still marked, as a read of the feed would,
so the old writers find every form numbered.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-05
"""
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

# A counter row that is missing (never made, or lost) starts after the
# highest link there is, as the application's own statements do.
TAKE_AUDIT = """\
        UPDATE change_counters SET value = value + events WHERE name = 'audit'
        RETURNING value, head_hash INTO audit_last, audit_head;"""
MAKE_AUDIT = """\
        IF NOT FOUND THEN
            INSERT INTO change_counters (name, value, head_hash)
            VALUES ('audit', (SELECT coalesce(max(seq), 0) FROM audit_links) + events,
                    (SELECT hash FROM audit_links ORDER BY seq DESC LIMIT 1))
            ON CONFLICT (name) DO UPDATE SET value = change_counters.value + events
            RETURNING value, head_hash INTO audit_last, audit_head;
        END IF;"""

# In a write's statement a missing counter row gives NULL: the commit then
# takes the numbers (mark_forms_take_chain_numbers), creating the row.
TAKE_CHAIN_NUMBERS = f"""
CREATE FUNCTION take_chain_numbers(events bigint, OUT audit_last bigint, OUT audit_head text)
LANGUAGE plpgsql AS $$
BEGIN
    IF events > 0 THEN
{TAKE_AUDIT}
    END IF;
END
$$
"""

# One form at a time by its key (migration 0015 says why); a form the
# transaction already marked (its own write did, or it is new) is left as
# it is: no second version of its row. Its number negated, not dropped:
# the highest number given stays there should the counter row be lost.
MARK_FORMS_TAKE_CHAIN_NUMBERS = f"""
CREATE FUNCTION mark_forms_take_chain_numbers(form_ids text[], events bigint,
                                              OUT audit_last bigint, OUT audit_head text)
LANGUAGE plpgsql AS $$
BEGIN
    FOR n IN 1 .. coalesce(cardinality(form_ids), 0) LOOP
        UPDATE forms SET change_seq = -change_seq WHERE id = form_ids[n] AND change_seq > 0;
    END LOOP;
    IF events > 0 THEN
{TAKE_AUDIT}
{MAKE_AUDIT}
    END IF;
END
$$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION take_early_numbers(bigint, bigint)")
        op.execute("DROP FUNCTION take_commit_numbers(text[], bigint)")
        op.execute(TAKE_CHAIN_NUMBERS)
        op.execute(MARK_FORMS_TAKE_CHAIN_NUMBERS)


# The functions as migrations 0015 and 0016 left them, written out whole:
# a migration stands on its own.
OLD_TAKE_EARLY_NUMBERS = """
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
OLD_TAKE_COMMIT_NUMBERS = f"""
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
        FOR n IN 1 .. changed LOOP
            UPDATE forms SET change_seq = forms_last - changed + n WHERE id = form_ids[n];
        END LOOP;
    END IF;
    IF events > 0 THEN
{TAKE_AUDIT}
{MAKE_AUDIT}
    END IF;
END
$$
"""
# The forms still marked, numbered after the highest number given, in the
# order they changed (as api/services/changes.number_changed does).
NUMBER_MARKED = """
WITH marked AS (
    SELECT id, row_number() OVER (ORDER BY updated_at, id) AS n FROM forms
    WHERE change_seq IS NULL OR change_seq < 0
), start AS (
    SELECT coalesce(max(given), 0) AS value FROM (
        SELECT value AS given FROM change_counters WHERE name = 'forms'
        UNION ALL SELECT abs(change_seq) FROM forms) AS numbers
)
UPDATE forms SET change_seq = (SELECT value FROM start) + marked.n FROM marked WHERE forms.id = marked.id
"""
COUNT_MARKED = """
UPDATE change_counters SET value = coalesce((SELECT max(change_seq) FROM forms), 0) WHERE name = 'forms'
"""


def downgrade() -> None:
    op.execute(NUMBER_MARKED)
    op.execute(COUNT_MARKED)
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION take_chain_numbers(bigint)")
        op.execute("DROP FUNCTION mark_forms_take_chain_numbers(text[], bigint)")
        op.execute(OLD_TAKE_EARLY_NUMBERS)
        op.execute(OLD_TAKE_COMMIT_NUMBERS)
