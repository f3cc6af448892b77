"""Migration 0053: activities by participant (``activity_identities``) and contacts by account,
which a re-match window reads its contacts through; and back."""

from __future__ import annotations

import asyncio

from alembic import command
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.db.migrate import alembic_config, upgrade
from tests.integration.attribution.attribution_support import rows

BEFORE = "0052_metric_deferred_events"
INDEXES = (
    "SELECT indexname, indexdef FROM pg_indexes "
    "WHERE indexname IN ('activities_participants', 'ref_contacts_by_account') ORDER BY indexname"
)
#: Contacts' activities, as ``repository.windowed_activities`` finds them (the test's empty table
#: would be read by tenant through ``activities_time``).
THEIRS = (
    "EXPLAIN SELECT activity_id FROM activities "
    "WHERE activity_identities(tenant_id, payload -> 'participants') && ARRAY['acme amy@buyer.example']"
)
FUNCTION = "SELECT count(*) FROM pg_proc WHERE proname = 'activity_identities'"


async def _plan(engine: AsyncEngine, sql: str) -> str:
    async with engine.connect() as conn:
        await conn.execute(text("SET LOCAL enable_seqscan = off"))
        plan = "\n".join(row[0] for row in await conn.execute(text(sql)))
        await conn.rollback()
    return plan


async def test_activities_are_found_by_participant_and_contacts_by_account_and_both_go_on_downgrade(
    database_url: str, db_engine: AsyncEngine
) -> None:
    await asyncio.to_thread(command.downgrade, alembic_config(database_url), BEFORE)
    assert await rows(db_engine, INDEXES) == []
    assert await rows(db_engine, FUNCTION) == [(0,)]

    await asyncio.to_thread(upgrade, database_url)
    assert await rows(db_engine, INDEXES) == [
        (
            "activities_participants",
            "CREATE INDEX activities_participants ON public.activities "
            "USING gin (activity_identities(tenant_id, (payload -> 'participants'::text)))",
        ),
        (
            "ref_contacts_by_account",
            "CREATE INDEX ref_contacts_by_account ON public.ref_contacts USING btree (tenant_id, account_id)",
        ),
    ]
    assert "activities_participants" in await _plan(db_engine, THEIRS)
    # Each participant's address and number under its tenant, once; anything but an array holds
    # none. In the participants' order since 0054 (a set to the index and its reader).
    assert await rows(
        db_engine,
        "SELECT activity_identities('acme', CAST(:p AS jsonb)), activity_identities('acme', '{}'), "
        "activity_identities('acme', 'null')",
        {
            "p": '[{"email": "ana@seller.example", "role": "organizer"}, {"phone": "+14155550100", '
            '"email": "bo@buyer.example"}, {"email": "ana@seller.example"}, "x", {"name": "Cy"}]'
        },
    ) == [(["acme ana@seller.example", "acme bo@buyer.example", "acme +14155550100"], [], [])]
    assert "ref_contacts_by_account" in await _plan(
        db_engine,
        "EXPLAIN SELECT contact_id FROM ref_contacts WHERE tenant_id = 'acme' AND account_id = 'acc-1'",
    )

    await asyncio.to_thread(command.downgrade, alembic_config(database_url), BEFORE)
    assert await rows(db_engine, INDEXES) == []
    assert await rows(db_engine, FUNCTION) == [(0,)]
    await asyncio.to_thread(upgrade, database_url)
