"""the audit trail in several chains on PostgreSQL; a writer takes a free one

Every writer took the one chain's counter row and held it until its links
committed, one round trip to its worker later (the chain's key stays out of
the database): under load writers queued on it. Now there are ``CHAINS``
chains, each with its own counter row (``audit`` for chain 0, as before,
then ``audit.1`` ...) and head, and ``audit_links.chain`` says which chain a
link is in. A writer takes the first chain no other transaction holds
(``FOR UPDATE SKIP LOCKED``) and keeps it to its commit; with every chain
held it waits for chain 0. Each chain is sealed and verified as the one
chain was (api/services/audit_chain.py). SQLite, one writer at a time,
keeps to chain 0.

The functions of migration 0018 and 0017 take and return the chain:

- ``take_chain_numbers(events)``: a free chain's numbers, head and number
  (NULLs if none is free: the commit then takes one).
- ``mark_forms_take_chain_numbers(form_ids, events, held)``: marks the
  forms, then takes numbers of ``held`` (the transaction's chain, taken
  early) or of a free one, else waits for chain 0.
- ``link_events(on_chain, seqs, event_ids, hashes)``: the links and the
  chain's new head.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-05
"""
from alembic import op
import sqlalchemy as sa

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

# About two writers hold a chain at a time at 32 clients on two cores (a
# chain is held 1.5 to 2 ms, at 600 to 700 scans a second): eight leave
# room for bursts and bigger machines.
CHAINS = 8

# A counter row's chain: ``audit`` is chain 0, ``audit.N`` chain N.
CHAIN_OF = """
CREATE FUNCTION audit_chain_of(counter text) RETURNS smallint
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN counter = 'audit' THEN 0 ELSE substr(counter, 7)::smallint END
$$
"""
COUNTER_OF = """
CREATE FUNCTION audit_counter_of(chain smallint) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN chain = 0 THEN 'audit' ELSE 'audit.' || chain END
$$
"""

# The first chain no other transaction holds, its row locked until the
# transaction ends; none if all are held.
TAKE_FREE = """\
        SELECT name INTO counter FROM change_counters WHERE name = 'audit' OR name LIKE 'audit.%'
        ORDER BY name FOR UPDATE SKIP LOCKED LIMIT 1;
        IF FOUND THEN
            UPDATE change_counters SET value = value + events WHERE name = counter
            RETURNING value, head_hash INTO audit_last, audit_head;
            audit_chain := audit_chain_of(counter);
        END IF;"""

TAKE_CHAIN_NUMBERS = f"""
CREATE FUNCTION take_chain_numbers(events bigint, OUT audit_last bigint, OUT audit_head text,
                                   OUT audit_chain smallint)
LANGUAGE plpgsql AS $$
DECLARE
    counter text;
BEGIN
    IF events > 0 THEN
{TAKE_FREE}
    END IF;
END
$$
"""

# With no chain free, the chains whose counter rows are missing (never
# made, lost, or emptied with the table) are made again, each after its
# highest link, and one of them taken; failing that, the writer waits for
# chain 0.
MARK_FORMS_TAKE_CHAIN_NUMBERS = f"""
CREATE FUNCTION mark_forms_take_chain_numbers(form_ids text[], events bigint, held smallint,
                                              OUT audit_last bigint, OUT audit_head text,
                                              OUT audit_chain smallint)
LANGUAGE plpgsql AS $$
DECLARE
    counter text;
BEGIN
    FOR n IN 1 .. coalesce(cardinality(form_ids), 0) LOOP
        UPDATE forms SET change_seq = -change_seq WHERE id = form_ids[n] AND change_seq > 0;
    END LOOP;
    IF events = 0 THEN
        RETURN;
    END IF;
    IF held IS NOT NULL THEN
        UPDATE change_counters SET value = value + events WHERE name = audit_counter_of(held)
        RETURNING value, head_hash INTO audit_last, audit_head;
        audit_chain := held;
        RETURN;
    END IF;
{TAKE_FREE}
    IF audit_chain IS NULL THEN
        INSERT INTO change_counters (name, value, head_hash)
        SELECT audit_counter_of(c::smallint),
               (SELECT coalesce(max(seq), 0) FROM audit_links WHERE audit_links.chain = c),
               (SELECT hash FROM audit_links WHERE audit_links.chain = c ORDER BY seq DESC LIMIT 1)
        FROM generate_series(0, {CHAINS - 1}) AS c
        ON CONFLICT (name) DO NOTHING;
{TAKE_FREE}
    END IF;
    IF audit_chain IS NULL THEN
        UPDATE change_counters SET value = value + events WHERE name = 'audit'
        RETURNING value, head_hash INTO audit_last, audit_head;
        audit_chain := 0;
    END IF;
END
$$
"""

# One INSERT per link, as migration 0017 says why.
LINK_EVENTS = """
CREATE FUNCTION link_events(on_chain smallint, seqs bigint[], event_ids bigint[], hashes text[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF cardinality(seqs) IS DISTINCT FROM cardinality(event_ids)
            OR cardinality(seqs) IS DISTINCT FROM cardinality(hashes) OR cardinality(seqs) = 0 THEN
        RAISE EXCEPTION 'link_events: as many seqs, event ids and hashes, at least one';
    END IF;
    FOR n IN 1 .. cardinality(seqs) LOOP
        INSERT INTO audit_links (chain, seq, event_id, hash) VALUES (on_chain, seqs[n], event_ids[n], hashes[n]);
    END LOOP;
    UPDATE change_counters SET head_hash = hashes[cardinality(hashes)] WHERE name = audit_counter_of(on_chain);
END
$$
"""


def upgrade() -> None:
    op.add_column("audit_links", sa.Column("chain", sa.SmallInteger(), nullable=False, server_default="0"))
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_constraint("pk_audit_links", "audit_links", type_="primary")
    op.create_primary_key("pk_audit_links", "audit_links", ["chain", "seq"])
    # (Chain 0's row is made by the first writer if missing, as the others'.)
    op.execute(sa.text("INSERT INTO change_counters (name, value) SELECT 'audit.' || n, 0 "
                       "FROM generate_series(1, :last) AS n ON CONFLICT (name) DO NOTHING").bindparams(last=CHAINS - 1))
    op.execute("DROP FUNCTION take_chain_numbers(bigint)")
    op.execute("DROP FUNCTION mark_forms_take_chain_numbers(text[], bigint)")
    op.execute("DROP FUNCTION link_events(bigint[], bigint[], text[])")
    for function in (CHAIN_OF, COUNTER_OF, TAKE_CHAIN_NUMBERS, MARK_FORMS_TAKE_CHAIN_NUMBERS, LINK_EVENTS):
        op.execute(function)


# Migration 0018's and 0017's functions, written out whole: a migration
# stands on its own.
ONE_CHAIN = [
    """
CREATE FUNCTION take_chain_numbers(events bigint, OUT audit_last bigint, OUT audit_head text)
LANGUAGE plpgsql AS $$
BEGIN
    IF events > 0 THEN
        UPDATE change_counters SET value = value + events WHERE name = 'audit'
        RETURNING value, head_hash INTO audit_last, audit_head;
    END IF;
END
$$
""", """
CREATE FUNCTION mark_forms_take_chain_numbers(form_ids text[], events bigint,
                                              OUT audit_last bigint, OUT audit_head text)
LANGUAGE plpgsql AS $$
BEGIN
    FOR n IN 1 .. coalesce(cardinality(form_ids), 0) LOOP
        UPDATE forms SET change_seq = -change_seq WHERE id = form_ids[n] AND change_seq > 0;
    END LOOP;
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
""", """
CREATE FUNCTION link_events(seqs bigint[], event_ids bigint[], hashes text[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF cardinality(seqs) IS DISTINCT FROM cardinality(event_ids)
            OR cardinality(seqs) IS DISTINCT FROM cardinality(hashes) OR cardinality(seqs) = 0 THEN
        RAISE EXCEPTION 'link_events: as many seqs, event ids and hashes, at least one';
    END IF;
    FOR n IN 1 .. cardinality(seqs) LOOP
        INSERT INTO audit_links (seq, event_id, hash) VALUES (seqs[n], event_ids[n], hashes[n]);
    END LOOP;
    UPDATE change_counters SET head_hash = hashes[cardinality(hashes)] WHERE name = 'audit';
END
$$
"""]


def downgrade() -> None:
    # Only a trail that is all in chain 0 goes back to one chain.
    if op.get_bind().execute(sa.text("SELECT 1 FROM audit_links WHERE chain <> 0 LIMIT 1")).first():
        raise RuntimeError("the audit trail has links in chains other than 0: it cannot go back to one chain")
    if op.get_bind().dialect.name == "postgresql":
        for function in ("link_events(smallint, bigint[], bigint[], text[])",
                         "mark_forms_take_chain_numbers(text[], bigint, smallint)", "take_chain_numbers(bigint)",
                         "audit_counter_of(smallint)", "audit_chain_of(text)"):
            op.execute(f"DROP FUNCTION {function}")
        op.execute("DELETE FROM change_counters WHERE name LIKE 'audit.%'")
        op.drop_constraint("pk_audit_links", "audit_links", type_="primary")
        op.create_primary_key("pk_audit_links", "audit_links", ["seq"])
        for function in ONE_CHAIN:
            op.execute(function)
    # Native on both (SQLite 3.35 and later): a copied table would lose the
    # append-only triggers.
    op.execute("ALTER TABLE audit_links DROP COLUMN chain")
