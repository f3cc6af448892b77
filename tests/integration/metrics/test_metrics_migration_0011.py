"""Migration 0011_insights backfills what existing data needs: engaged deals and team_rep rollups."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime

from alembic import command
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.db.migrate import alembic_config, upgrade


def _downgrade(url: str) -> None:
    command.downgrade(alembic_config(url), "0010_privacy")


async def test_existing_contributions_get_engaged_deals_and_team_rep_rollups(
    database_url: str, db_engine: AsyncEngine
) -> None:
    await asyncio.to_thread(_downgrade, database_url)
    at = datetime(2026, 4, 1, 15, 0, tzinfo=UTC)  # a Wednesday in a February-start fiscal year's Q1
    async with db_engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO tenants (tenant_id, timezone, fiscal_year_start_month) VALUES ('acme', 'UTC', 2)"
            )
        )
        for n, status, deal, secondary in (
            (1, "attributed", "deal-1", []),
            (2, "ambiguous", None, ["deal-2"]),
        ):
            activity = uuid.UUID(int=n)
            await conn.execute(
                text(
                    "INSERT INTO metric_contributions (tenant_id, activity_id, version, rep_id, team_id, deal_id, "
                    "status, occurred_at, day, kind, activities, dials, score) VALUES ('acme', :a, 1, 'rep-1', "
                    "'team-1', :deal, :status, :at, :day, 'call', 1, 1, 1.0)"
                ),
                {"a": activity, "deal": deal, "status": status, "at": at, "day": at.date()},
            )
            await conn.execute(
                text(
                    "INSERT INTO attributions (tenant_id, activity_id, version, status, rep_id, team_id, deal_id, "
                    "secondary_deal_ids, confidence, decided_at, occurred_at, kind) VALUES ('acme', :a, 1, :status, "
                    "'rep-1', 'team-1', :primary, :secondary, 0.9, :at, :at, 'call')"
                ),
                {
                    "a": activity,
                    "status": status,
                    "primary": deal or "deal-9",
                    "secondary": secondary,
                    "at": at,
                },
            )

    await asyncio.to_thread(upgrade, database_url)

    async with db_engine.connect() as conn:
        engaged = (
            await conn.execute(
                text("SELECT activity_id, engaged_deal_ids FROM metric_contributions ORDER BY activity_id")
            )
        ).all()
        team_rep = (
            await conn.execute(
                text(
                    "SELECT entity_id, granularity, period_start, activities, dials, score FROM metric_rollups "
                    "WHERE level = 'team_rep' ORDER BY granularity"
                )
            )
        ).all()
    # The ambiguous activity engages its primary candidate and its secondary deal.
    assert [(row[0].int, row[1]) for row in engaged] == [(1, ["deal-1"]), (2, ["deal-2", "deal-9"])]
    assert [tuple(row) for row in team_rep] == [
        ("team-1\x1frep-1", "day", date(2026, 4, 1), 2, 2, 2.0),
        ("team-1\x1frep-1", "month", date(2026, 4, 1), 2, 2, 2.0),
        ("team-1\x1frep-1", "quarter", date(2026, 2, 1), 2, 2, 2.0),
        ("team-1\x1frep-1", "week", date(2026, 3, 30), 2, 2, 2.0),
    ]
