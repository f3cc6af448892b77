"""Migration 0017_deal_engagement: the kept deal engagement is filled from existing contributions."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from alembic import command
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.contracts.activities import ActivityKind, Direction, Outcome
from libs.common.contracts.attribution import AttributionStatus
from libs.common.db.migrate import alembic_config, upgrade
from services.metrics.adapters import read_models
from tests.integration.metrics.metrics_support import apply, attributed, create_tenant

T = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)


async def _kept(engine: AsyncEngine) -> list[tuple[str, str, datetime, datetime | None, list[str]]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT tenant_id, deal_id, last_activity_at, last_buyer_reply_at, contact_ids "
                "FROM metric_deal_engagement ORDER BY tenant_id, deal_id"
            )
        )
        return [
            (r.tenant_id, r.deal_id, r.last_activity_at, r.last_buyer_reply_at, sorted(r.contact_ids))
            for r in rows
        ]


async def test_the_upgrade_fills_each_deals_engagement_from_every_contribution(
    database_url: str, db_engine: AsyncEngine
) -> None:
    for tenant in ("acme", "globex"):
        await create_tenant(db_engine, tenant)
    reply = {"kind": ActivityKind.EMAIL, "direction": Direction.INBOUND, "outcome": Outcome.RECEIVED}
    await apply(
        db_engine,
        [
            attributed(activity=1, deal_id="d1", occurred_at=T, external_contact_ids=("c1", "c2")),
            attributed(
                activity=2,
                deal_id="d1",
                occurred_at=T + timedelta(hours=1),
                external_contact_ids=("c2",),
                **reply,
            ),
            attributed(
                activity=3,
                deal_id="d2",
                secondary_deal_ids=("d1",),
                status=AttributionStatus.AMBIGUOUS,
                occurred_at=T + timedelta(hours=2),
            ),
            attributed(activity=4, deal_id="d3", occurred_at=T, automated=True),
            attributed(
                tenant_id="globex", activity=5, deal_id="d1", occurred_at=T, external_contact_ids=("c9",)
            ),
        ],
    )
    expected = [
        ("acme", "d1", T + timedelta(hours=2), T + timedelta(hours=1), ["c1", "c2"]),
        ("acme", "d2", T + timedelta(hours=2), None, []),
        ("globex", "d1", T, None, ["c9"]),
    ]
    async with db_engine.begin() as conn:
        for tenant in ("acme", "globex"):
            await read_models.catch_up_engagement(conn, tenant)
    assert await _kept(db_engine) == expected

    await asyncio.to_thread(command.downgrade, alembic_config(database_url), "0016_rep_former_identities")
    await asyncio.to_thread(upgrade, database_url)

    assert await _kept(db_engine) == expected
