"""Migration 0040: CRM rows an earlier release stored dated more than a day ahead (a CRM clock in
2099) are re-dated to the migration's time, in every newest-``updated_at``-wins table (and a
deal's ``closed_at`` and ``created_at`` so far ahead), so the CRM's next real edit replaces them; a
time within a day ahead, or past, is kept. The times already copied from such versions into the
history tables (a deal's owner since, a rep's former address and absence, a contact's former phone
and account) are re-dated alike, one row kept where two would land on one key. The downgrade is a
no-op (nothing to undo: the times are not kept)."""

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


MICRO = timedelta(microseconds=1)
#: The history rows seeded (table, insert, select of the tenant's rows in a fixed order).
HISTORY = {
    "ref_deal_owners": (
        "INSERT INTO ref_deal_owners (tenant_id, deal_id, since, owner_rep_id) VALUES (:t, :k, :a, :v)",
        "SELECT deal_id, since, owner_rep_id FROM ref_deal_owners WHERE tenant_id = :t ORDER BY 1, 2",
    ),
    "ref_rep_former_identities": (
        "INSERT INTO ref_rep_former_identities (tenant_id, identity, rep_id, until) VALUES (:t, :k, :v, :a)",
        "SELECT identity, until, rep_id FROM ref_rep_former_identities WHERE tenant_id = :t ORDER BY 1, 2",
    ),
    "ref_contact_former_phones": (
        "INSERT INTO ref_contact_former_phones (tenant_id, phone, contact_id, until) VALUES (:t, :k, :v, :a)",
        "SELECT phone, until, contact_id FROM ref_contact_former_phones WHERE tenant_id = :t ORDER BY 1, 2",
    ),
    "ref_contact_former_accounts": (
        "INSERT INTO ref_contact_former_accounts (tenant_id, contact_id, until, account_id) VALUES (:t, :k, :a, :v)",
        "SELECT contact_id, until, account_id FROM ref_contact_former_accounts WHERE tenant_id = :t ORDER BY 1, 2",
    ),
}
ABSENCES = (
    "SELECT identity, left_at, returned_at FROM ref_rep_absences WHERE tenant_id = :t AND rep_id = 'rep-1' "
    "ORDER BY 1, 2"
)


def _history(soon: datetime) -> dict[str, list[tuple[str, datetime, str]]]:
    """(key, time, value) rows of each history table: past, within a day ahead, and far ahead."""
    return {
        # Owners: rep-b named by a 2099 version, rep-c by a later one (the owner now); after a
        # real owner named within a day ahead, the far-ahead one follows it.
        "ref_deal_owners": [
            ("deal-1", PAST, "rep-a"),
            ("deal-1", FROZEN, "rep-b"),
            ("deal-1", FROZEN + timedelta(days=1), "rep-c"),
            ("deal-2", soon, "rep-a"),
            ("deal-2", FROZEN, "rep-b"),
        ],
        "ref_rep_former_identities": [("gone@acme.test", FROZEN, "rep-1"), ("kept@acme.test", PAST, "rep-1")],
        "ref_contact_former_phones": [("+4930901820", FROZEN, "c-1"), ("+4930901821", PAST, "c-1")],
        # Moves: at acct-a until a 2099 version moved her to acct-b, moved on in a later one; the
        # account before the earliest move is where she was for everything until now.
        "ref_contact_former_accounts": [
            ("c-1", PAST, "acct-0"),
            ("c-1", FROZEN, "acct-a"),
            ("c-1", FROZEN + timedelta(days=1), "acct-b"),
            ("c-2", soon, "acct-a"),
            ("c-2", FROZEN, "acct-b"),
        ],
    }


async def _seed_history(engine: AsyncEngine, soon: datetime) -> None:
    async with engine.begin() as conn:
        for table, seeded in _history(soon).items():
            insert, _ = HISTORY[table]
            for key, at, value in seeded:
                await conn.execute(text(insert), {"t": TENANT, "k": key, "a": at, "v": value})
        for identity, left_at, returned_at in (
            ("back@acme.test", PAST, FROZEN),  # returned by a 2099 version
            ("twice@acme.test", FROZEN, FROZEN + timedelta(days=1)),  # left and came back in 2099
            ("soon@acme.test", soon, FROZEN),  # left within a day ahead
        ):
            await conn.execute(
                text(
                    "INSERT INTO ref_rep_absences (tenant_id, identity, rep_id, left_at, returned_at) "
                    "VALUES (:t, :i, 'rep-1', :l, :r)"
                ),
                {"t": TENANT, "i": identity, "l": left_at, "r": returned_at},
            )


async def _held_history(engine: AsyncEngine) -> dict[str, list[tuple[object, ...]]]:
    found = {
        table: [tuple(row) for row in await rows(engine, select, {"t": TENANT})]
        for table, (_, select) in HISTORY.items()
    }
    found["ref_rep_absences"] = [tuple(row) for row in await rows(engine, ABSENCES, {"t": TENANT})]
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
        # A deal created (by its CRM's clock) in 2099, and one created within a day ahead.
        await conn.execute(
            text("UPDATE ref_deals SET created_at = :u WHERE tenant_id = :t AND deal_id = 'frozen'"),
            {"t": TENANT, "u": FROZEN},
        )
        await conn.execute(
            text("UPDATE ref_deals SET created_at = :u WHERE tenant_id = :t AND deal_id = 'soon'"),
            {"t": TENANT, "u": soon},
        )
    await _seed_history(db_engine, soon)
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
    created = dict(
        await rows(db_engine, "SELECT deal_id, created_at FROM ref_deals WHERE tenant_id = :t", {"t": TENANT})
    )
    assert created == {"frozen": at, "soon": soon, "past": datetime(2026, 10, 1, tzinfo=UTC)}
    history = await _held_history(db_engine)
    assert history == {
        # The owner now (rep-c) from the migration; rep-b, named only between two 2099
        # versions, never owned it; after an owner named within a day ahead, just after it.
        "ref_deal_owners": [
            ("deal-1", PAST, "rep-a"),
            ("deal-1", at, "rep-c"),
            ("deal-2", soon, "rep-a"),
            ("deal-2", soon + MICRO, "rep-b"),
        ],
        "ref_rep_former_identities": [("gone@acme.test", at, "rep-1"), ("kept@acme.test", PAST, "rep-1")],
        "ref_contact_former_phones": [("+4930901820", at, "c-1"), ("+4930901821", PAST, "c-1")],
        # Her account until now is the one before the earliest 2099 move (acct-a).
        "ref_contact_former_accounts": [
            ("c-1", PAST, "acct-0"),
            ("c-1", at, "acct-a"),
            ("c-2", soon, "acct-a"),
            ("c-2", soon + MICRO, "acct-b"),
        ],
        # Back from the migration; away only in 2099: no absence; a return after a departure
        # within a day ahead just after it (an absence ends after it starts).
        "ref_rep_absences": [("back@acme.test", PAST, at), ("soon@acme.test", soon, soon + MICRO)],
    }

    # The CRM's next edit, dated after the migration, replaces the row.
    edited = ended + timedelta(minutes=1)
    await _edit(db_engine, "frozen", "negotiation", edited)
    assert await _deal(db_engine, "frozen") == ("negotiation", False, None, edited)

    # Downgrade is a no-op: the times stay as re-dated and edited.
    await asyncio.to_thread(command.downgrade, alembic_config(database_url), BEFORE)
    assert await _times(db_engine) == {**times, ("ref_deals", "frozen"): edited}
    assert await _held_history(db_engine) == history
    async with db_engine.begin() as conn:
        for table in [*TABLES, *HISTORY, "ref_rep_absences"]:
            await conn.execute(text(f"DELETE FROM {table} WHERE tenant_id = :t"), {"t": TENANT})
    await asyncio.to_thread(upgrade, database_url)
