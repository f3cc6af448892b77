"""The read-model refresher: rep period stats and insights, recomputed from the rollups.

A background task of the metrics process. Each tick it applies scoring models saved since
the last rescore (so a model change lands even when no activity flows), then recomputes
the tenants whose rollups moved (``metric_refresh_state.dirty_since``) and every tenant at
least every ``full_refresh_seconds``, since stale deals grow staler with time alone. A
tenant's rows are replaced in one transaction. A failure is logged and retried on the next
tick; it never stops the consumer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from libs.common.contracts.tenant_settings import DEFAULT_TENANT_SETTINGS, InsightThresholds, TenantSettings
from libs.common.tenant_settings_store import TenantSettingsCache, load_tenant_settings
from services.metrics.adapters import read_models as sql
from services.metrics.adapters.scoring import ScoringModelCache, rescore_moved
from services.metrics.domain.baselines import TRAILING_BASELINE_PERIODS
from services.metrics.domain.definitions import ZERO, MetricCounts, MetricSettings
from services.metrics.domain.insights import (
    RepCountsRow,
    RepPeriodScore,
    at_risk_reps,
    bright_spots,
    stale_deals,
)
from services.metrics.domain.periods import Grain, Period
from services.metrics.domain.read_models import TeamDirectory, rep_period_stats
from services.metrics.handlers import GRAINS, metric_settings_from

log = logging.getLogger(__name__)

#: Insights compare reps over weeks, the cadence sales teams review activity at, and judge
#: the last complete week: a week in progress would make everybody look at risk on Monday.
INSIGHT_GRAIN = Grain.WEEK


@dataclass(frozen=True, slots=True)
class RefreshPolicy:
    #: Periods of each grain kept in rep_period_stats, the current one included.
    reported_periods: int = 12
    full_refresh_after: timedelta = timedelta(minutes=15)


async def refresh_tenant(
    conn: AsyncConnection,
    tenant_id: str,
    now: datetime,
    policy: RefreshPolicy = RefreshPolicy(),
    tenant_settings: TenantSettings | None = None,
) -> None:
    """Replace the tenant's rep_period_stats and insights as of ``now``, in the caller's transaction.

    ``tenant_settings`` defaults to the stored ones, read now.
    """
    seen = await sql.refresh_state_version(conn, tenant_id)
    if tenant_settings is None:
        tenant_settings = await load_tenant_settings(conn, tenant_id) or DEFAULT_TENANT_SETTINGS
    settings = metric_settings_from(tenant_settings)
    thresholds = tenant_settings.insight_thresholds
    teams = TeamDirectory(await sql.memberships(conn, tenant_id))
    calendar = settings.calendar
    insight_periods: list[Period] = []
    insight_scores: dict[str, dict[date, float]] = {}
    for grain in GRAINS:
        current = calendar.period_at(now, grain)
        # Enough history for the baseline of the oldest reported period, and for the insight
        # grain enough complete weeks for the longest consecutive-run threshold (12) too.
        reach = policy.reported_periods + TRAILING_BASELINE_PERIODS - 1
        if grain is INSIGHT_GRAIN:
            reach = max(reach, TRAILING_BASELINE_PERIODS + 13)
        periods = [*calendar.trailing(current, reach), current]
        scores = await sql.rep_scores(conn, tenant_id, grain.value, periods[0].start, current.start)
        stats = rep_period_stats(
            scores, periods, policy.reported_periods, teams, thresholds.min_baseline_periods
        )
        await sql.replace_rep_period_stats(conn, tenant_id, grain.value, stats)
        if grain is INSIGHT_GRAIN:
            insight_periods, insight_scores = periods[:-1], scores
    rows: list[sql.InsightRow] = []
    rows += await _at_risk_rows(insight_periods, insight_scores, teams, thresholds)
    rows += await _bright_spot_rows(conn, tenant_id, insight_periods[-1], settings, teams, thresholds)
    rows += await _stale_deal_rows(conn, tenant_id, now, settings, teams, thresholds)
    await sql.replace_insights(conn, tenant_id, rows)
    await sql.mark_refreshed(conn, tenant_id, seen)


async def _at_risk_rows(
    periods: list[Period],
    scores: dict[str, dict[date, float]],
    teams: TeamDirectory,
    thresholds: InsightThresholds,
) -> list[sql.InsightRow]:
    # The evaluated week, its baseline window, and as many weeks as the consecutive-run rule needs.
    evaluated = periods[-max(TRAILING_BASELINE_PERIODS + 1, thresholds.at_risk_consecutive_periods) :]
    rows = []
    for rep_id, by_period in scores.items():
        for period in evaluated:
            team = teams.team_at_end_of(rep_id, period)
            if period.start in by_period and team is not None:
                rows.append(RepPeriodScore(rep_id, team, period.start, by_period[period.start]))
    flagged = at_risk_reps(rows, [p.start for p in evaluated], thresholds)
    last = evaluated[-1]
    return [
        (
            "at_risk_rep",
            rep.rep_id,
            rep.team_id,
            last.start,
            [reason.value for reason in rep.reasons],
            {
                "granularity": last.grain.value,
                "period": last.label,
                "score": rep.score,
                "team_median": rep.team_median,
                "baseline_score": rep.baseline_mean,
                "change_vs_baseline": rep.change,
            },
        )
        for rep in flagged
    ]


async def _bright_spot_rows(
    conn: AsyncConnection,
    tenant_id: str,
    period: Period,
    settings: MetricSettings,
    teams: TeamDirectory,
    thresholds: Any,
) -> list[sql.InsightRow]:
    counts = await sql.rep_counts(conn, tenant_id, period.grain.value, period.start)
    won: dict[str, int] = defaultdict(int)
    for rep_id, closed in await sql.won_deals(conn, tenant_id):
        if period.contains(settings.calendar.local_day(closed)):
            won[rep_id] += 1
    reps = set(counts) | set(won)
    rows = []
    for rep_id in sorted(reps):
        team = teams.team_at_end_of(rep_id, period)
        if team is not None:
            rep_counts = counts.get(rep_id, ZERO) + MetricCounts(deals_won=won.get(rep_id, 0))
            rows.append(RepCountsRow(rep_id, team, rep_counts))
    by_rep: dict[str, list[dict[str, Any]]] = defaultdict(list)
    team_of: dict[str, str] = {}
    for spot in bright_spots(rows, thresholds):
        team_of[spot.rep_id] = spot.team_id
        by_rep[spot.rep_id].append(
            {
                "metric": spot.metric.value,
                "value": spot.value,
                "rank": spot.rank,
                "team_median": spot.team_median,
                "mix_difference": {counter.value: share for counter, share in spot.mix_difference.items()},
            }
        )
    return [
        (
            "bright_spot",
            rep_id,
            team_of[rep_id],
            period.start,
            [entry["metric"] for entry in entries],
            {"granularity": period.grain.value, "period": period.label, "metrics": entries},
        )
        for rep_id, entries in sorted(by_rep.items())
    ]


async def _stale_deal_rows(
    conn: AsyncConnection,
    tenant_id: str,
    now: datetime,
    settings: MetricSettings,
    teams: TeamDirectory,
    thresholds: Any,
) -> list[sql.InsightRow]:
    today = settings.calendar.local_day(now)
    rows: list[sql.InsightRow] = []
    for deal in stale_deals(await sql.open_deals(conn, tenant_id), now, thresholds):
        team = teams.team_on(deal.owner_rep_id, today) if deal.owner_rep_id is not None else None
        rows.append(
            (
                "stale_deal",
                deal.deal_id,
                team,
                None,
                [reason.value for reason in deal.reasons],
                {
                    "owner_rep_id": deal.owner_rep_id,
                    "days_since_activity": deal.days_since_activity,
                    "days_since_buyer_reply": deal.days_since_buyer_reply,
                    "engaged_contacts": deal.engaged_contacts,
                },
            )
        )
    return rows


class ReadModelRefresher:
    """Runs :func:`refresh_tenant` for due tenants every ``interval_seconds`` until stopped."""

    def __init__(
        self,
        engine: AsyncEngine,
        models: ScoringModelCache,
        interval_seconds: float,
        policy: RefreshPolicy = RefreshPolicy(),
        settings: TenantSettingsCache | None = None,
    ) -> None:
        self._engine = engine
        self._models = models
        #: The process's tenant settings (shared with the consumer); None reads them at each refresh.
        self._settings = settings
        self._interval = interval_seconds
        self._policy = policy
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()

    async def tick(self) -> int:
        """One pass: rescore moved models, then refresh the due tenants; returns tenants refreshed."""
        try:
            await rescore_moved(self._engine, self._models, None)
        except Exception:
            log.exception("rescoring failed; retried next tick")
        try:
            async with self._engine.connect() as conn:
                due = await sql.due_tenants(conn, self._policy.full_refresh_after)
        except Exception:
            log.exception("could not list tenants to refresh; retried next tick")
            return 0
        refreshed = 0
        for tenant_id in due:
            if self._stopping.is_set():
                break
            try:
                settings = None if self._settings is None else await self._settings.get_or_default(tenant_id)
                async with self._engine.begin() as conn:
                    await refresh_tenant(conn, tenant_id, datetime.now(UTC), self._policy, settings)
                refreshed += 1
            except Exception:
                log.exception("read-model refresh failed; retried next tick", extra={"tenant_id": tenant_id})
        return refreshed

    async def run(self) -> None:
        while not self._stopping.is_set():
            await self.tick()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=self._interval)
