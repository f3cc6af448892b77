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
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from libs.common.contracts.tenant_settings import DEFAULT_TENANT_SETTINGS, InsightThresholds, TenantSettings
from libs.common.tenant_settings_store import TenantSettingsCache, load_tenant_settings
from services.metrics.adapters import digests
from services.metrics.adapters import read_models as sql
from services.metrics.adapters.scoring import ScoringModelCache, rescore_moved
from services.metrics.domain.baselines import TRAILING_BASELINE_PERIODS
from services.metrics.domain.definitions import ZERO, MetricCounts, MetricSettings
from services.metrics.domain.goals import (
    Attainment,
    GoalIndex,
    TeamGoals,
    attainment,
    behind_goal,
    describe,
    goal_for,
    missed_goal,
)
from services.metrics.domain.insights import (
    RepCountsRow,
    RepPeriodScore,
    RosterRep,
    at_risk_reps,
    bright_spots,
    stale_deals,
)
from services.metrics.domain.management import reports_of
from services.metrics.domain.periods import Grain, Period
from services.metrics.domain.read_models import RepPeriodStat, TeamDirectory, rep_period_stats
from services.metrics.domain.scoring import decay_factors
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
    teams = TeamDirectory(await sql.memberships(conn, tenant_id), await sql.inactive_reps(conn, tenant_id))
    calendar = settings.calendar
    insight_periods: list[Period] = []
    insight_scores: dict[str, dict[date, float]] = {}
    insight_activities: dict[str, dict[date, int]] = {}
    recency = await _recency_scores(conn, tenant_id, calendar.local_day(now))
    for grain in GRAINS:
        current = calendar.period_at(now, grain)
        # Enough history for the baseline of the oldest reported period, and for the insight
        # grain enough complete weeks for the longest consecutive-run threshold (12) too.
        reach = policy.reported_periods + TRAILING_BASELINE_PERIODS - 1
        if grain is INSIGHT_GRAIN:
            reach = max(reach, TRAILING_BASELINE_PERIODS + 13)
        periods = [*calendar.trailing(current, reach), current]
        scores, activities = await sql.rep_figures(
            conn, tenant_id, grain.value, periods[0].start, current.start
        )
        stats = rep_period_stats(
            scores, periods, policy.reported_periods, teams, thresholds.min_baseline_periods, activities
        )
        stats = _with_recency(stats, current.start, recency)
        await sql.replace_rep_period_stats(conn, tenant_id, grain.value, stats)
        if grain is INSIGHT_GRAIN:
            insight_periods, insight_scores, insight_activities = periods[:-1], scores, activities
    rows: list[sql.InsightRow] = []
    rows += _at_risk_rows(insight_periods, insight_scores, insight_activities, teams, thresholds)
    rows += await _bright_spot_rows(conn, tenant_id, insight_periods[-1], settings, teams, thresholds)
    rows += await _stale_deal_rows(conn, tenant_id, now, settings, teams, thresholds)
    attained, risks = await _goal_attainment(conn, tenant_id, now, settings, teams, thresholds)
    await sql.replace_goal_attainment(conn, tenant_id, attained)
    rows = _with_goal_risks(rows, risks)
    await sql.record_insight_changes(
        conn, tenant_id, insight_transitions(await sql.current_insights(conn, tenant_id), rows)
    )
    await sql.replace_insights(conn, tenant_id, rows)
    await _digest_the_week(conn, tenant_id, insight_periods[-1].start)
    await sql.mark_refreshed(conn, tenant_id, seen)


def _at_risk_rows(
    periods: list[Period],
    scores: dict[str, dict[date, float]],
    activities: dict[str, dict[date, int]],
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
                count = activities.get(rep_id, {}).get(period.start, 0)
                rows.append(RepPeriodScore(rep_id, team, period.start, by_period[period.start], count))
    last = evaluated[-1]
    # Only a rep on a team for the whole complete week can be silent in it.
    roster = [
        RosterRep(rep_id, team)
        for rep_id, team in teams.roster_at_end_of(last).items()
        if teams.member_throughout(rep_id, last)
    ]
    flagged = at_risk_reps(rows, [p.start for p in evaluated], thresholds, roster)
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
                "activities": rep.activities,
                "baseline_activities": rep.baseline_activities,
                "insufficient_data": rep.insufficient_data,
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
    thresholds: InsightThresholds,
) -> list[sql.InsightRow]:
    counts = await sql.rep_counts(conn, tenant_id, period.grain.value, period.start)
    won: dict[str, int] = defaultdict(int)
    for rep_id, closed in await sql.won_deals(conn, tenant_id):
        if period.contains(settings.calendar.local_day(closed)):
            won[rep_id] += 1
    # Silent members count, as zeros: the median is the team's, not the busy reps'.
    roster = teams.roster_at_end_of(period)
    reps = set(counts) | set(won) | set(roster)
    rows = []
    for rep_id in sorted(reps):
        team = roster.get(rep_id) or teams.team_at_end_of(rep_id, period)
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
                "ratio_to_median": spot.ratio_to_median,
                "why": spot.why,
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
    thresholds: InsightThresholds,
) -> list[sql.InsightRow]:
    today = settings.calendar.local_day(now)
    rows: list[sql.InsightRow] = []
    await sql.catch_up_engagement(conn, tenant_id)
    for deal in stale_deals(await sql.open_deals(conn, tenant_id), now, thresholds):
        team = teams.owners_team_on(deal.owner_rep_id, today) if deal.owner_rep_id is not None else None
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
                    "age_days": deal.age_days,
                    "last_activity_at": (
                        None if deal.last_activity_at is None else deal.last_activity_at.isoformat()
                    ),
                },
            )
        )
    return rows


async def _digest_the_week(conn: AsyncConnection, tenant_id: str, week: date) -> None:
    """Each manager's digest of the last complete week, once: stored and queued for the webhooks."""
    pending = await digests.undigested(conn, tenant_id, await digests.managers(conn, tenant_id), week)
    if not pending:
        return
    reports = reports_of(pending, await digests.management(conn, tenant_id))
    for manager_id in pending:
        digest = await digests.weekly_digest(conn, tenant_id, manager_id, reports[manager_id], week)
        await digests.store_digest(conn, tenant_id, manager_id, week, digest)


async def _recency_scores(conn: AsyncConnection, tenant_id: str, today: date) -> dict[str, float] | None:
    """Each rep's decayed score as of ``today`` under the applied model; None when it has no decay."""
    model = await sql.applied_model(conn, tenant_id)
    if model.decay is None:
        return None
    factors = decay_factors(today, model.decay)
    days = await sql.rep_day_scores(conn, tenant_id, min(factors), today)
    return {
        rep: sum(score * factors.get(day, 0.0) for day, score in by_day.items())
        for rep, by_day in days.items()
    }


def _with_recency(
    stats: list[RepPeriodStat], current_start: date, recency: dict[str, float] | None
) -> list[RepPeriodStat]:
    """The current period's rows carry the recency score (0 for a rep without recent work)."""
    if recency is None:
        return stats
    return [
        replace(stat, recency_score=recency.get(stat.rep_id, 0.0))
        if stat.period_start == current_start
        else stat
        for stat in stats
    ]


def insight_transitions(
    before: list[sql.InsightRow], after: list[sql.InsightRow]
) -> list[tuple[str, sql.InsightRow]]:
    """``appeared`` for each (kind, subject) new in ``after``, ``cleared`` (with its last reasons and
    details) for each gone from ``before``; an insight whose reasons changed is neither."""
    old = {(row[0], row[1]): row for row in before}
    new = {(row[0], row[1]): row for row in after}
    changes = [("appeared", row) for key, row in sorted(new.items()) if key not in old]
    changes += [("cleared", row) for key, row in sorted(old.items()) if key not in new]
    return changes


#: rep -> (team, the week judged, the goals the rep missed or is behind on)
GoalRisks = dict[str, tuple[str | None, Period, list[dict[str, Any]]]]
#: The at-risk reasons goals give, in the order they join a rep's reasons, with their details' key:
#: ``missed_goal`` judges the last complete week (as every other reason), ``behind_goal`` the week
#: in progress.
GOAL_REASONS = (("missed_goal", "missed_goals"), ("behind_goal", "goals"))


def _goal_risk(
    progress: Attainment, period: Period, current: Period, thresholds: InsightThresholds
) -> str | None:
    """The at-risk reason a weekly goal's progress gives: below ``goal_at_risk_pace`` in the last
    complete week's attainment (``missed_goal``) or in the week in progress's pace (``behind_goal``)."""
    if period == current:
        return "behind_goal" if behind_goal(progress, thresholds.goal_at_risk_pace) else None
    return "missed_goal" if missed_goal(progress, thresholds.goal_at_risk_pace) else None


async def _goal_attainment(
    conn: AsyncConnection,
    tenant_id: str,
    now: datetime,
    settings: MetricSettings,
    teams: TeamDirectory,
    thresholds: InsightThresholds,
) -> tuple[list[sql.GoalAttainmentRow], dict[str, GoalRisks]]:
    """Each rostered rep against their goals, for the current and the last complete period of
    every granularity with goals; and, per goal reason, who missed a weekly goal in the last
    complete week or is behind pace in the week in progress."""
    risks: dict[str, GoalRisks] = {reason: {} for reason, _ in GOAL_REASONS}
    goals = await sql.goals(conn, tenant_id)
    if not goals:
        return [], risks
    index = GoalIndex.of(goals)
    team_goals = TeamGoals(await sql.team_parents(conn, tenant_id), index)
    # A role goal follows the rep's current role, in past periods too (roles carry no history).
    roles = await sql.rep_roles(conn, tenant_id)
    today = settings.calendar.local_day(now)
    rows: list[sql.GoalAttainmentRow] = []
    for grain in GRAINS:
        metrics = sorted({goal.metric for goal in goals if goal.period == grain.value})
        if not metrics:
            continue
        current = settings.calendar.period_at(now, grain)
        for period in (*settings.calendar.trailing(current, 1), current):
            values = await sql.rep_metric_values(conn, tenant_id, grain.value, period.start, metrics)
            roster = teams.roster_at_end_of(period)
            for rep_id in sorted(set(roster) | set(values)):
                team = roster.get(rep_id) or teams.team_at_end_of(rep_id, period)
                for metric in metrics:
                    nearest = team_goals.nearest(team, grain.value, metric)
                    goal = goal_for(rep_id, nearest, grain.value, metric, index, role=roles.get(rep_id))
                    if goal is None:
                        continue
                    progress = attainment(values.get(rep_id, {}).get(metric, 0.0), goal.target, period, today)
                    rows.append((grain.value, period.start, rep_id, metric, goal.goal_id, progress))
                    risk = (
                        _goal_risk(progress, period, current, thresholds) if grain is INSIGHT_GRAIN else None
                    )
                    if risk is not None:
                        entry = risks[risk].setdefault(rep_id, (team, period, []))
                        entry[2].append(_goal_detail(metric, goal.goal_id, progress))
    return rows, risks


def _goal_detail(metric: str, goal_id: str, progress: Attainment) -> dict[str, Any]:
    return {
        "metric": metric,
        "goal_id": goal_id,
        "target": progress.target,
        "actual": progress.actual,
        "attainment": progress.attainment,
        "pace": progress.pace,
        "days_left": progress.days_left,
        "why": describe(metric, progress),
    }


def _with_goal_risks(rows: list[sql.InsightRow], risks: dict[str, GoalRisks]) -> list[sql.InsightRow]:
    """At-risk rows gain ``missed_goal`` and ``behind_goal`` (and the goals' details); a rep at risk
    for those alone gets a row, dated on the week missed, else on the week in progress."""
    left = {reason: dict(by_rep) for reason, by_rep in risks.items()}
    out: list[sql.InsightRow] = []
    for row in rows:
        kind, subject, team, period_start, reasons, details = row
        if kind == "at_risk_rep":
            for reason, key in GOAL_REASONS:
                if subject in left[reason]:
                    details = {**details, key: left[reason].pop(subject)[2]}
                    reasons = [*reasons, reason]
        out.append((kind, subject, team, period_start, reasons, details))
    for rep_id in sorted({rep for by_rep in left.values() for rep in by_rep}):
        first = next(left[reason][rep_id] for reason, _ in GOAL_REASONS if rep_id in left[reason])
        team, period, _ = first
        details = {"granularity": period.grain.value, "period": period.label}
        reasons = []
        for reason, key in GOAL_REASONS:
            if rep_id in left[reason]:
                details[key] = left[reason][rep_id][2]
                reasons.append(reason)
        out.append(("at_risk_rep", rep_id, team, period.start, reasons, details))
    return out


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
                    if not await sql.claim_refresh(conn, tenant_id):
                        continue  # another instance is refreshing it now
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
