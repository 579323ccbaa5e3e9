"""link_events: a commit's links and the chain's new head in one call

On PostgreSQL a transaction's last statement inserts its events' links and
moves the chain's head, sent with its COMMIT in one message (the simple
query protocol, which takes no parameters: the values are written in). The
server parsed and planned that statement on every commit, about 40 us,
while the transaction held the ``audit`` counter every writer waits for.
This function's statements are planned once per connection; the call
itself is a one-line SELECT.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-05
"""
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

# One INSERT per link: a plan for an array of unknown length would be made
# again on every call (migration 0015 says why); a commit links a few events.
# The last link's hash is the chain's new head.
LINK_EVENTS = """
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
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(LINK_EVENTS)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION link_events(bigint[], bigint[], text[])")
