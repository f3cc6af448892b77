"""A tenant with a goal per rep, metric and period is measured by looking its goals up, not by reading them all for each.

The refresher measures every tenant in turn on the metrics process's event loop, which its
consumer shares: the goal of each (rep, metric, period) was found by reading all the tenant's
goals (and a period's working days counted day by day, for every rep and metric), so a tenant
setting its reps their own goals (150 reps, 6,600 goals: 2.1 s of processor time per refresh,
growing with the square of the reps) held back every tenant's metrics.
"""

from __future__ import annotations

import typing
from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.contracts.goals import GoalMetric
from libs.common.tenancy import create_tenant
from libs.common.testing.stack import TEST_SECRET_KEY
from services.metrics.domain import goals as goals_domain
from services.metrics.refresher import refresh_tenant

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
REPS = 150
METRICS: tuple[str, ...] = typing.get_args(GoalMetric)
GRAINS = ("day", "week", "month", "quarter")


async def test_a_goal_for_every_rep_metric_and_period_is_measured_without_reading_every_goal_for_each(
    db_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with db_engine.begin() as conn:
        await create_tenant(conn, "acme", TEST_SECRET_KEY)
        await conn.execute(
            text(
                "INSERT INTO ref_teams (tenant_id, team_id, name, updated_at) VALUES ('acme', 'team-1', 't', now())"
            )
        )
        await conn.execute(
            text(
                "INSERT INTO ref_reps (tenant_id, rep_id, name, updated_at) "
                "SELECT 'acme', 'rep-' || n, 'Rep ' || n, now() FROM generate_series(1, :n) AS n"
            ),
            {"n": REPS},
        )
        await conn.execute(
            text(
                "INSERT INTO ref_team_memberships (tenant_id, membership_id, rep_id, team_id, valid_from, updated_at) "
                "SELECT 'acme', 'm-' || n, 'rep-' || n, 'team-1', '2026-01-01', now() FROM generate_series(1, :n) AS n"
            ),
            {"n": REPS},
        )
        await conn.execute(
            text(
                "INSERT INTO activity_goals (tenant_id, goal_id, scope, subject_id, period, metric, target) "
                "SELECT 'acme', 'g-' || n || '-' || m || '-' || g, 'rep', 'rep-' || n, g, m, 10 "
                "FROM generate_series(1, :n) AS n, unnest(CAST(:metrics AS text[])) AS m, "
                "unnest(CAST(:grains AS text[])) AS g"
            ),
            {"n": REPS, "metrics": list(METRICS), "grains": list(GRAINS)},
        )
    # The work counted, not timed: how often the tenant's goals are read into an index.
    indexed: list[int] = []
    index_of = goals_domain.GoalIndex.of

    def counted(goals: typing.Iterable[goals_domain.GoalRow]) -> goals_domain.GoalIndex:
        index = index_of(goals)
        indexed.append(len(index.by_key))
        return index

    monkeypatch.setattr(goals_domain.GoalIndex, "of", counted)
    async with db_engine.begin() as conn:
        await refresh_tenant(conn, "acme", NOW)
    async with db_engine.connect() as conn:
        measured = await conn.scalar(text("SELECT count(*) FROM goal_attainment WHERE tenant_id = 'acme'"))
    # Every rep against its own goal on each metric, in the current and the last period of each grain.
    assert measured == REPS * len(METRICS) * len(GRAINS) * 2
    # The 6,600 goals read once for the refresh; before, all of them were read again for each
    # rep, metric and period (2.1 s of the shared event loop per refresh, quadratic in the reps).
    assert indexed == [REPS * len(METRICS) * len(GRAINS)]
