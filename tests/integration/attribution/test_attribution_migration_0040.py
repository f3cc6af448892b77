"""Migration 0040: CRM rows an earlier release stored dated more than a day ahead (a CRM clock in
2099) are re-dated to the migration's time, in every newest-``updated_at``-wins table (and a
deal's ``closed_at`` so far ahead), so the CRM's next real edit replaces them; a time within a day
ahead, or past, is kept. The downgrade is a no-op (nothing to undo: the times are not kept)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from alembic import command
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.contracts.crm import CrmEntityChangedV1, DealV1
from libs.common.db.migrate import alembic_config, upgrade
from services.attribution.adapters.repository import ChangedReferences, apply_crm_entities
from tests.integration.attribution.attribution_support import rows

TENANT = "acme-0040"
BEFORE = "0039_accounts_by_relationship"
FROZEN = datetime(2099, 1, 1, tzinfo=UTC)
PAST = datetime(2026, 11, 2, tzinfo=UTC)

#: table -> (id column, insert of a row ``:id`` dated ``:u``).
TABLES = {
    "ref_reps": ("rep_id", "INSERT INTO ref_reps (tenant_id, rep_id, updated_at) VALUES (:t, :id, :u)"),
    "ref_teams": ("team_id", "INSERT INTO ref_teams (tenant_id, team_id, updated_at) VALUES (:t, :id, :u)"),
    "ref_team_memberships": (
        "membership_id",
        "INSERT INTO ref_team_memberships (tenant_id, membership_id, rep_id, team_id, valid_from, updated_at) "
        "VALUES (:t, :id, 'rep-1', 'team-1', '2026-01-01', :u)",
    ),
    "ref_accounts": (
        "account_id",
        "INSERT INTO ref_accounts (tenant_id, account_id, updated_at) VALUES (:t, :id, :u)",
    ),
    "ref_contacts": (
        "contact_id",
        "INSERT INTO ref_contacts (tenant_id, contact_id, updated_at) VALUES (:t, :id, :u)",
    ),
    "ref_deals": (
        "deal_id",
        "INSERT INTO ref_deals (tenant_id, deal_id, stage, created_at, updated_at) "
        "VALUES (:t, :id, 'proposal', '2026-10-01', :u)",
    ),
}


async def _times(engine: AsyncEngine) -> dict[tuple[str, str], datetime]:
    found: dict[tuple[str, str], datetime] = {}
    for table, (key, _) in TABLES.items():
        for row_id, updated_at in await rows(
            engine, f"SELECT {key}, updated_at FROM {table} WHERE tenant_id = :t", {"t": TENANT}
        ):
            found[(table, row_id)] = updated_at
    return found


async def _deal(engine: AsyncEngine, deal_id: str) -> tuple[object, ...]:
    [row] = await rows(
        engine,
        "SELECT stage, is_closed, closed_at, updated_at FROM ref_deals WHERE tenant_id = :t AND deal_id = :d",
        {"t": TENANT, "d": deal_id},
    )
    return row


async def _edit(engine: AsyncEngine, deal_id: str, stage: str, updated_at: datetime) -> None:
    """The CRM's next real edit of the deal, stored as attribution's CRM consumer stores it."""
    deal = DealV1(
        id=deal_id, stage=stage, updated_at=updated_at, created_at=datetime(2026, 10, 1, tzinfo=UTC)
    )
    async with engine.begin() as conn:
        event = CrmEntityChangedV1(tenant_id=TENANT, source="test", entity=deal)
        await apply_crm_entities(conn, TENANT, [event], ChangedReferences())


async def test_crm_rows_dated_far_ahead_are_re_dated_to_the_migration_and_a_later_edit_wins(
    database_url: str, db_engine: AsyncEngine
) -> None:
    await asyncio.to_thread(command.downgrade, alembic_config(database_url), BEFORE)
    soon = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=12)
    async with db_engine.begin() as conn:
        for _, insert in TABLES.values():
            for row_id, updated_at in (("frozen", FROZEN), ("soon", soon), ("past", PAST)):
                await conn.execute(text(insert), {"t": TENANT, "id": row_id, "u": updated_at})
        # A won deal closed without a date, stored with the close taken from its 2099 clock.
        await conn.execute(
            text(
                "UPDATE ref_deals SET is_closed = true, is_won = true, closed_at = :u "
                "WHERE tenant_id = :t AND deal_id = 'frozen'"
            ),
            {"t": TENANT, "u": FROZEN},
        )
    # Before the migration, a real edit is older than 2099: dropped (the row is frozen).
    await _edit(db_engine, "frozen", "negotiation", PAST + timedelta(days=1))
    assert await _deal(db_engine, "frozen") == ("proposal", True, FROZEN, FROZEN)

    started = datetime.now(UTC)
    await asyncio.to_thread(upgrade, database_url)
    ended = datetime.now(UTC)
    times = await _times(db_engine)
    redated = {times[(table, "frozen")] for table in TABLES}
    assert len(redated) == 1  # one time for every row: the migration's
    [at] = redated
    assert started <= at <= ended
    assert {k: v for k, v in times.items() if k[1] != "frozen"} == {
        **{(table, "soon"): soon for table in TABLES},
        **{(table, "past"): PAST for table in TABLES},
    }
    assert await _deal(db_engine, "frozen") == ("proposal", True, at, at)

    # The CRM's next edit, dated after the migration, replaces the row.
    edited = ended + timedelta(minutes=1)
    await _edit(db_engine, "frozen", "negotiation", edited)
    assert await _deal(db_engine, "frozen") == ("negotiation", False, None, edited)

    # Downgrade is a no-op: the times stay as re-dated and edited.
    await asyncio.to_thread(command.downgrade, alembic_config(database_url), BEFORE)
    assert await _times(db_engine) == {**times, ("ref_deals", "frozen"): edited}
    async with db_engine.begin() as conn:
        for table in TABLES:
            await conn.execute(text(f"DELETE FROM {table} WHERE tenant_id = :t"), {"t": TENANT})
    await asyncio.to_thread(upgrade, database_url)
