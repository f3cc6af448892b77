"""``activity_identities`` (migration 0053, the keys of ``activities_participants``) as a PL/pgSQL
loop instead of a SQL query: the same keys for every payload, a third of the CPU.

Every activity inserted or updated computes its keys, and every ANALYZE of ``activities``
computes them for its sample. As SQL, each call ran a query (``jsonb_array_elements``, a lateral
``VALUES``, ``array_agg(DISTINCT ...)``'s sort) through the executor: 5.0 us a call over the
pipeline bench's 5,000 payloads, 1.5 us as this loop (performance.md, eighteenth round). The keys
come in the participants' order rather than sorted, each once as before; GIN stores an
element set, and the only reader, ``repository.windowed_activities``, asks ``&&``: same index
entries, same rows found. So an index built with the SQL body stays valid, and nothing is rebuilt:
``CREATE OR REPLACE`` keeps the function's oid, which the index refers to.

Revision ID: 0054_activity_identities_plpgsql
Revises: 0053_activities_by_participant
Create Date: 2026-12-05
"""

from alembic import op

revision = "0054_activity_identities_plpgsql"
down_revision = "0053_activities_by_participant"
branch_labels = None
depends_on = None

LOCK_TIMEOUT = "5s"
#: A participant's ``email`` and ``phone`` as ``->>`` reads them (a non-object element, a JSON
#: null or a missing key gives none), each "<tenant> <identity>" once; anything but an array
#: holds none. Simple expressions only: PL/pgSQL evaluates them without a query plan. Past 32
#: participants the keys are gathered by one sort (0053's query), not checked each against those
#: before it. ``keys``, not ``found``: PL/pgSQL's own ``FOUND`` is not shadowed (a server with
#: ``plpgsql.extra_errors = 'shadowed_variables'`` refuses that).
FUNCTION = """
CREATE OR REPLACE FUNCTION activity_identities(tenant text, participants jsonb) RETURNS text[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    keys text[] := '{}';
    participant jsonb;
    identity text;
BEGIN
    IF jsonb_typeof(participants) IS DISTINCT FROM 'array' THEN
        RETURN keys;
    END IF;
    IF jsonb_array_length(participants) > 32 THEN
        -- A large meeting: each key checked against those before it would be quadratic (1,000
        -- keys at the 500-participant cap); one sort instead, as 0053's body.
        RETURN (
            SELECT coalesce(array_agg(DISTINCT tenant || ' ' || x.identity), '{}')
            FROM jsonb_array_elements(participants) p
            CROSS JOIN LATERAL (VALUES (p ->> 'email'), (p ->> 'phone')) AS x(identity)
            WHERE x.identity IS NOT NULL
        );
    END IF;
    FOR i IN 0 .. jsonb_array_length(participants) - 1 LOOP
        participant := participants -> i;
        identity := tenant || ' ' || (participant ->> 'email');
        IF identity IS NOT NULL AND identity <> ALL (keys) THEN
            keys := keys || identity;
        END IF;
        identity := tenant || ' ' || (participant ->> 'phone');
        IF identity IS NOT NULL AND identity <> ALL (keys) THEN
            keys := keys || identity;
        END IF;
    END LOOP;
    RETURN keys;
END
$$
"""
#: 0053's body.
PREVIOUS = """
CREATE OR REPLACE FUNCTION activity_identities(tenant text, participants jsonb) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(array_agg(DISTINCT tenant || ' ' || x.identity), '{}')
    FROM jsonb_array_elements(CASE WHEN jsonb_typeof(participants) = 'array' THEN participants
                                   ELSE '[]'::jsonb END) p
    CROSS JOIN LATERAL (VALUES (p ->> 'email'), (p ->> 'phone')) AS x(identity)
    WHERE x.identity IS NOT NULL
$$
"""


def upgrade() -> None:
    op.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
    op.execute(FUNCTION)


def downgrade() -> None:
    op.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
    op.execute(PREVIOUS)
