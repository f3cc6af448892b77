"""Migration 0051: a deal's former names become the names its versions were seen with
(``ref_deal_names``): each former name seen just before its ``until``, the next name at it, the
former table left for the previous release's consumers; and back, each change of name a former
name again."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from alembic import command
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.db.migrate import alembic_config, upgrade
from tests.integration.attribution.attribution_support import rows

TENANT = "acme-0051"
BEFORE = "0050_buyer_answers"
OCT_1 = datetime(2026, 10, 1, tzinfo=UTC)
NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
FORMER = f"SELECT deal_id, until, name FROM ref_deal_former_names WHERE tenant_id = '{TENANT}' ORDER BY until"
SEEN = f"SELECT deal_id, seen, name FROM ref_deal_names WHERE tenant_id = '{TENANT}' ORDER BY seen"
TABLES = (
    "SELECT table_name FROM information_schema.tables "
    "WHERE table_name IN ('ref_deal_former_names', 'ref_deal_names') ORDER BY table_name"
)


async def test_former_names_become_names_seen_and_back(database_url: str, db_engine: AsyncEngine) -> None:
    """``deal-m50``, "Payroll" until 1 October, "Payroll Rollout" until 1 November, "HR Suite"
    since."""
    await asyncio.to_thread(command.downgrade, alembic_config(database_url), BEFORE)
    async with db_engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO ref_deals (tenant_id, deal_id, name, account_id, owner_rep_id, stage, is_closed, "
                "is_won, created_at, contacts, updated_at) VALUES (:t, 'deal-m50', 'Acme - HR Suite', "
                "'acc-1', 'rep-1', 'proposal', false, false, :u, '[]', :u)"
            ),
            {"t": TENANT, "u": NOV_1},
        )
        await conn.execute(
            text(
                "INSERT INTO ref_deal_former_names (tenant_id, deal_id, until, name) VALUES "
                "(:t, 'deal-m50', :oct, 'Acme - Payroll'), (:t, 'deal-m50', :nov, 'Acme - Payroll Rollout')"
            ),
            {"t": TENANT, "oct": OCT_1, "nov": NOV_1},
        )

    await asyncio.to_thread(upgrade, database_url)
    just_before = timedelta(microseconds=1)
    assert await rows(db_engine, SEEN) == [
        ("deal-m50", OCT_1 - just_before, "Acme - Payroll"),
        ("deal-m50", OCT_1, "Acme - Payroll Rollout"),
        ("deal-m50", NOV_1 - just_before, "Acme - Payroll Rollout"),
        ("deal-m50", NOV_1, "Acme - HR Suite"),
    ]
    assert await rows(db_engine, TABLES) == [("ref_deal_former_names",), ("ref_deal_names",)]
    assert await rows(
        db_engine, "SELECT indexname FROM pg_indexes WHERE indexname = 'ref_deals_merged_into'"
    ) == [("ref_deals_merged_into",)]

    # An older version received late: "Acme - Pilot" on 1 September.
    async with db_engine.begin() as conn:
        await conn.execute(
            text("INSERT INTO ref_deal_names VALUES (:t, 'deal-m50', :u, 'Acme - Pilot')"),
            {"t": TENANT, "u": datetime(2026, 9, 1, tzinfo=UTC)},
        )

    await asyncio.to_thread(command.downgrade, alembic_config(database_url), BEFORE)
    assert await rows(db_engine, FORMER) == [
        ("deal-m50", OCT_1 - just_before, "Acme - Pilot"),
        ("deal-m50", OCT_1, "Acme - Payroll"),
        ("deal-m50", NOV_1, "Acme - Payroll Rollout"),
    ]
    assert await rows(db_engine, TABLES) == [("ref_deal_former_names",)]
    async with db_engine.begin() as conn:
        await conn.execute(text("DELETE FROM ref_deal_former_names WHERE tenant_id = :t"), {"t": TENANT})
        await conn.execute(text("DELETE FROM ref_deals WHERE tenant_id = :t"), {"t": TENANT})
    await asyncio.to_thread(upgrade, database_url)
