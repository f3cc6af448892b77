"""What a re-match window reads for its contacts: their own activities (``activities_participants``,
migration 0053), never the tenant's whole window, without parsing any row's participants.

Before, a contact of another account (a role on the deal), and one of the window's account who ever
changed company, put her identities on a branch that read every activity of the tenant since the
window's start, one row at a time through ``payload -> 'participants'``, on every page of a
``rematch`` job. Rows read are counted (``pg_stat_xact_user_tables``), and calls of
``activity_identities`` (``pg_stat_xact_user_functions``), not timed.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.attribution.adapters.repository import windowed_activities
from services.attribution.domain.rematch import RematchWindow

NOW = datetime(2026, 12, 1, tzinfo=UTC)
START = NOW - timedelta(days=60)
_INSERT = (
    "INSERT INTO activities (tenant_id, activity_id, source, external_id, kind, direction, outcome, "
    "occurred_at, payload, ingested_at) SELECT 'big', md5(CAST(:prefix AS text) || n)::uuid, 'email', CAST(:prefix AS text) || n, "
    "'email', 'outbound', 'sent', CAST(:at AS timestamptz) + n * interval '1 minute', "
    "jsonb_build_object('participants', jsonb_build_array(jsonb_build_object('email', "
    "'ana@seller.example'), jsonb_build_object('email', replace(CAST(:to AS text), '#', n::text)))), now() FROM generate_series(1, :n) n"
)
_DECIDE = (
    "INSERT INTO attributions (tenant_id, activity_id, version, status, rep_id, account_id, confidence, "
    "decided_at, occurred_at, kind) SELECT tenant_id, activity_id, 1, 'attributed', 'rep-ana', CAST(:account AS text), "
    "0.9, now(), occurred_at, kind FROM activities WHERE tenant_id = 'big' AND external_id LIKE :prefix || '%'"
)


async def _mail(conn: AsyncConnection, prefix: str, to: str, account: str, n: int) -> None:
    await conn.execute(text(_INSERT), {"prefix": prefix, "at": START, "to": to, "n": n})
    await conn.execute(text(_DECIDE), {"prefix": prefix, "account": account})


async def _read(conn: AsyncConnection) -> int:
    """The ``activities`` rows this transaction read so far: fetched through an index or scanned."""
    found = await conn.execute(
        text(
            "SELECT coalesce(idx_tup_fetch, 0) + seq_tup_read FROM pg_stat_xact_user_tables "
            "WHERE relname = 'activities'"
        )
    )
    return int(found.scalar_one())


async def _windowed(
    engine: AsyncEngine, windows: list[RematchWindow], limit: int
) -> tuple[list[str], int, int]:
    """What ``windowed_activities`` finds (their external ids, sorted), the ``activities`` rows it
    read, and its calls of ``activity_identities``, in a transaction rolled back."""
    async with engine.connect() as conn:
        await conn.begin()
        await conn.execute(text("SET LOCAL track_functions = 'all'"))
        start = await _read(conn)
        found = await windowed_activities(conn, "big", windows, limit)
        read = await _read(conn) - start
        calls = await conn.execute(
            text(
                "SELECT coalesce(sum(calls), 0) FROM pg_stat_xact_user_functions "
                "WHERE funcname = 'activity_identities'"
            )
        )
        names = await conn.execute(
            text("SELECT external_id FROM activities WHERE tenant_id = 'big' AND activity_id = ANY(:a)"),
            {"a": [activity_id for activity_id, _ in found]},
        )
        await conn.rollback()
    return sorted(row.external_id for row in names), read, int(calls.scalar_one())


async def test_a_moved_contact_of_the_windows_account_reads_her_former_accounts_mail_alone(
    db_engine: AsyncEngine,
) -> None:
    async with db_engine.begin() as conn:
        await conn.execute(text("INSERT INTO tenants (tenant_id, name) VALUES ('big', 'big')"))
        await conn.execute(
            text(
                "INSERT INTO ref_contacts (tenant_id, contact_id, emails, account_id, updated_at) VALUES "
                "('big', 'con-bo', ARRAY['bo@initech.example'], 'acc-initech', now()), "
                "('big', 'con-cy', ARRAY['cy@hooli.example'], 'acc-hooli', now())"
            )
        )
        await conn.execute(
            text(
                "INSERT INTO ref_contact_identities (tenant_id, identity, contact_id) VALUES "
                "('big', 'bo@initech.example', 'con-bo'), ('big', 'cy@hooli.example', 'con-cy')"
            )
        )
        await conn.execute(
            text(
                "INSERT INTO ref_contact_former_accounts (tenant_id, contact_id, until, account_id) "
                "VALUES ('big', 'con-bo', CAST(:at AS timestamptz), 'acc-globex')"
            ),
            {"at": START},
        )
        await _mail(conn, "cy-", "cy@hooli.example", "acc-hooli", 20000)  # other accounts'
        await conn.execute(  # over 400 accounts, as a tenant's are
            text(
                "UPDATE attributions SET account_id = 'acc-' || (substr(a.external_id, 4)::int % 400) "
                "FROM activities a WHERE a.tenant_id = attributions.tenant_id "
                "AND a.activity_id = attributions.activity_id AND a.external_id LIKE 'cy-%'"
            )
        )
        await _mail(conn, "bo-", "bo@initech.example", "acc-globex", 2)  # hers, decided by her old role
        await _mail(conn, "gx-", "ed@globex.example", "acc-globex", 5)  # her former account's, not hers
        await conn.execute(text("ANALYZE"))
    window = RematchWindow(frozenset({"acc-initech"}), frozenset({"con-bo"}), START, None)

    names, read, _ = await _windowed(db_engine, [window], 100)

    assert names == ["bo-1", "bo-2"]
    # Her former account's 7 activities (5 not hers): none of the other accounts' 20,000.
    assert read < 50, read


async def test_contacts_of_the_window_read_their_own_activities_alone_whichever_account_decided_them(
    db_engine: AsyncEngine,
) -> None:
    """A contact of another account (a role on the deal) and a contact of the deal's own account
    (no role) are read through ``activities_participants``: their own activities, wherever they
    were decided (Bo's meeting with a Globex buyer, decided on Globex before Initech's deal), not
    the tenant's 20,000 other activities in the window."""
    async with db_engine.begin() as conn:
        await conn.execute(text("INSERT INTO tenants (tenant_id, name) VALUES ('big', 'big')"))
        await conn.execute(
            text(
                "INSERT INTO ref_contacts (tenant_id, contact_id, emails, phones, account_id, updated_at) VALUES "
                "('big', 'con-bo', ARRAY['bo@initech.example'], '{}', 'acc-initech', now()), "
                "('big', 'con-cy', ARRAY['cy@hooli.example'], ARRAY['+14155550100'], 'acc-hooli', now())"
            )
        )
        await conn.execute(
            text(
                "INSERT INTO ref_contact_identities (tenant_id, identity, contact_id) VALUES "
                "('big', 'bo@initech.example', 'con-bo'), ('big', 'cy@hooli.example', 'con-cy'), "
                "('big', '+14155550100', 'con-cy')"
            )
        )
        await _mail(conn, "x-", "buyer#@other.example", "acc-hooli", 20000)  # other people's
        await conn.execute(  # over 400 accounts, as a tenant's are
            text(
                "UPDATE attributions SET account_id = 'acc-' || (substr(a.external_id, 3)::int % 400) "
                "FROM activities a WHERE a.tenant_id = attributions.tenant_id "
                "AND a.activity_id = attributions.activity_id AND a.external_id LIKE 'x-%'"
            )
        )
        await _mail(conn, "cy-", "cy@hooli.example", "acc-hooli", 3)  # hers, on her account
        await _mail(conn, "bo-", "bo@initech.example", "acc-globex", 2)  # his, decided on Globex
        await conn.execute(  # a call to Cy's phone: the participants' phone is read too
            text(
                "INSERT INTO activities (tenant_id, activity_id, source, external_id, kind, direction, "
                "outcome, occurred_at, payload, ingested_at) VALUES ('big', md5('call-1')::uuid, 'dialer', "
                "'call-1', 'call', 'outbound', 'connected', CAST(:at AS timestamptz) + interval '1 day', "
                "jsonb_build_object('participants', jsonb_build_array(jsonb_build_object('phone', "
                "'+14155550199'), jsonb_build_object('phone', '+14155550100'))), now())"
            ),
            {"at": START},
        )
        await conn.execute(text(_DECIDE), {"prefix": "call-", "account": None})
        await conn.execute(text("ANALYZE"))
    window = RematchWindow(frozenset({"acc-initech"}), frozenset({"con-cy"}), START, None)

    names, read, _ = await _windowed(db_engine, [window], 100)

    assert names == ["bo-1", "bo-2", "call-1", "cy-1", "cy-2", "cy-3"]
    # The 6 found alone (before ``activities_participants``: 40,012, the window read twice over).
    assert read == 6, read


async def test_a_contacts_new_address_reads_the_activities_holding_it_alone(db_engine: AsyncEngine) -> None:
    """A contact's new email or phone (``rematch.identity_rematch_window``: a new contact, an
    address added) re-decides the activities holding it, attributed ones included, read through
    ``activities_participants``: not her other identities' activities, not the tenant's 20,000
    others in the window."""
    async with db_engine.begin() as conn:
        await conn.execute(text("INSERT INTO tenants (tenant_id, name) VALUES ('big', 'big')"))
        await conn.execute(
            text(
                "INSERT INTO ref_contacts (tenant_id, contact_id, emails, account_id, updated_at) VALUES "
                "('big', 'con-bo', ARRAY['bo@initech.example', 'bo.r@initech.example'], 'acc-initech', now())"
            )
        )
        await conn.execute(
            text(
                "INSERT INTO ref_contact_identities (tenant_id, identity, contact_id) VALUES "
                "('big', 'bo@initech.example', 'con-bo'), ('big', 'bo.r@initech.example', 'con-bo')"
            )
        )
        await _mail(conn, "x-", "buyer#@initech.example", "acc-initech", 20000)  # other people's
        await _mail(conn, "old-", "bo@initech.example", "acc-initech", 3)  # his address held before
        await _mail(conn, "new-", "bo.r@initech.example", "acc-globex", 2)  # the new one's, decided on Globex
        await conn.execute(text("ANALYZE"))
    window = RematchWindow(frozenset(), frozenset(), START, None, frozenset({"bo.r@initech.example"}))

    names, read, _ = await _windowed(db_engine, [window], 100)

    assert names == ["new-1", "new-2"]
    assert read == 2, read


_THEIRS = (
    "INSERT INTO activities (tenant_id, activity_id, source, external_id, kind, direction, outcome, "
    "occurred_at, payload, ingested_at) SELECT 'big', md5(CAST(:prefix AS text) || n)::uuid, 'email', "
    "CAST(:prefix AS text) || n, 'email', 'outbound', 'sent', CAST(:at AS timestamptz) + n * interval '1 hour', "
    "jsonb_build_object('participants', jsonb_build_array(jsonb_build_object('email', 'ana@seller.example'), "
    "CASE WHEN n % 2 = 0 THEN jsonb_build_object('email', 'c' || (n % :contacts + 1) || '@big.example') "
    "ELSE jsonb_build_object('phone', '+1415555' || lpad((n % :contacts + 1)::text, 4, '0')) END)), now() "
    "FROM generate_series(1, :n) n"
)


async def test_a_large_accounts_contacts_are_matched_to_their_activities_without_parsing_each_rows_participants(
    db_engine: AsyncEngine,
) -> None:
    """A deal change on an account of 40 contacts (an email and a phone each: 80 identities) finds
    their 200 activities in the window, and a second window on one of them her earlier ones, without
    calling ``activity_identities`` on a single row: each identity's activities come from
    ``activities_participants``. Before, every row the index found was matched against the
    identities one at a time, parsing its participants for each (about rows x identities / 2 calls:
    16,020,275 calls and 185 s for 800 contacts and 22,000 activities; docs/performance.md)."""
    async with db_engine.begin() as conn:
        await conn.execute(text("INSERT INTO tenants (tenant_id, name) VALUES ('big', 'big')"))
        await conn.execute(
            text(
                "INSERT INTO ref_contacts (tenant_id, contact_id, emails, phones, account_id, updated_at) "
                "SELECT 'big', 'con-' || i, ARRAY['c' || i || '@big.example'], "
                "ARRAY['+1415555' || lpad(i::text, 4, '0')], 'acc-big', now() FROM generate_series(1, 40) i"
            )
        )
        await conn.execute(
            text(
                "INSERT INTO ref_contact_identities (tenant_id, identity, contact_id) "
                "SELECT tenant_id, unnest(emails || phones), contact_id FROM ref_contacts WHERE tenant_id = 'big'"
            )
        )
        await conn.execute(text(_THEIRS), {"prefix": "t-", "at": START, "contacts": 40, "n": 200})
        # Before the window: Con-2's (odd n: her phone) and Con-1's (even n: her email).
        await conn.execute(
            text(_THEIRS), {"prefix": "early-", "at": START - timedelta(days=25), "contacts": 2, "n": 20}
        )
        await _mail(conn, "x-", "buyer#@other.example", "acc-other", 500)  # other people's
        await conn.execute(text(_DECIDE), {"prefix": "t-", "account": "acc-big"})
        await conn.execute(text(_DECIDE), {"prefix": "early-", "account": "acc-big"})
        await conn.execute(text("ANALYZE"))
    windows = [
        RematchWindow(frozenset({"acc-big"}), frozenset(), START, None),
        RematchWindow(
            frozenset(), frozenset({"con-1"}), START - timedelta(days=30), START - timedelta(days=20)
        ),
    ]

    names, read, calls = await _windowed(db_engine, windows, 1000)

    assert names == sorted([f"t-{n}" for n in range(1, 201)] + [f"early-{n}" for n in range(2, 21, 2)])
    # No row's participants parsed (before: 7,770 calls here, each row matched identity by identity).
    assert calls == 0
    # Each identity's own activities: the 220 of the account's contacts for the account's window
    # (the 20 before it dropped), Con-1's 15 again for hers; none of the 500 others.
    assert read == 235, read
