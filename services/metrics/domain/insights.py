"""Rules that turn rollups into coaching insights: at-risk reps, stale deals, bright spots.

The rules read plain rows (the lead's SQL fills them) and never flag on too little data:
a team too small to have a meaningful median, or a rep without enough history for a
baseline, raises nothing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from libs.common.contracts.tenant_settings import InsightThresholds
from services.metrics.domain.baselines import (
    TRAILING_BASELINE_PERIODS,
    change_against,
    median,
    trailing_baseline,
)
from services.metrics.domain.definitions import Counter, MetricCounts, total

__all__ = [
    "BRIGHT_SPOT_METRICS",
    "MIX_COUNTERS",
    "AtRiskReason",
    "AtRiskRep",
    "BrightSpot",
    "InsightThresholds",
    "OpenDealRow",
    "RepCountsRow",
    "RepPeriodScore",
    "RosterRep",
    "StaleDeal",
    "StaleReason",
    "activity_mix",
    "at_risk_reps",
    "bright_spots",
    "stale_deals",
]

# --- at-risk reps ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RepPeriodScore:
    """A rep's score in one period on one team. No row means the rep has no data for that period."""

    rep_id: str
    team_id: str
    period_start: date
    score: float
    #: Counted activities in the period: the rep's volume, whatever their weights.
    activities: int = 0


@dataclass(frozen=True, slots=True)
class RosterRep:
    """A rep who was an active member of a team for the whole evaluated period."""

    rep_id: str
    team_id: str


class AtRiskReason(StrEnum):
    NO_ACTIVITY = "no_activity"
    BELOW_TEAM_MEDIAN = "below_team_median"
    DROP_AGAINST_BASELINE = "drop_against_baseline"
    LOW_VOLUME = "low_volume"


@dataclass(frozen=True, slots=True)
class AtRiskRep:
    rep_id: str
    team_id: str
    reasons: tuple[AtRiskReason, ...]
    score: float
    team_median: float | None
    baseline_mean: float | None
    change: float | None
    #: Fewer than ``min_baseline_periods`` trailing periods with data (a new rep, typically):
    #: the baseline rules could not judge this rep.
    insufficient_data: bool = False
    activities: int = 0
    baseline_activities: float | None = None


class _TeamPeriods:
    """Scores per (team, period), for team medians that need ``min_team_size`` reps."""

    def __init__(self, rows: Iterable[RepPeriodScore], min_team_size: int) -> None:
        self._scores: dict[tuple[str, date], dict[str, float]] = defaultdict(dict)
        self._min = min_team_size
        for row in rows:
            self._scores[(row.team_id, row.period_start)][row.rep_id] = row.score

    def median(self, team_id: str, period: date) -> float | None:
        scores = self._scores.get((team_id, period), {})
        return median(list(scores.values())) if len(scores) >= self._min else None


def _with_silent_roster(
    rows: Iterable[RepPeriodScore], roster: Iterable[RosterRep], current: date
) -> tuple[list[RepPeriodScore], set[str]]:
    """The rows plus a zero row for every rostered rep without activity in ``current``; the silent reps."""
    out = list(rows)
    active = {row.rep_id for row in out if row.period_start == current and row.activities > 0}
    present = {row.rep_id for row in out if row.period_start == current}
    silent: set[str] = set()
    for member in roster:
        if member.rep_id in active:
            continue
        silent.add(member.rep_id)
        if member.rep_id not in present:
            out.append(RepPeriodScore(member.rep_id, member.team_id, current, 0.0, 0))
    return out, silent


def at_risk_reps(
    rows: Iterable[RepPeriodScore],
    periods: Sequence[date],
    thresholds: InsightThresholds,
    roster: Iterable[RosterRep] = (),
) -> list[AtRiskRep]:
    """Reps at risk in the last of ``periods`` (period starts, oldest first).

    Pass the evaluated period, the ``TRAILING_BASELINE_PERIODS`` before it and at least
    ``at_risk_consecutive_periods`` in all. ``roster`` lists the reps who were active members
    of a team for the whole evaluated period: one of them without activity in it is at risk
    for ``no_activity`` (and counts as a zero in the team median). The team median of a
    period is taken over the reps of that team with a row in that period, the rep included;
    a period where the team has fewer than ``min_team_size`` such reps, or where the rep has
    no row, breaks the run. A rep neither rostered nor with a row is not evaluated.
    """
    if not periods:
        return []
    current = periods[-1]
    all_rows, silent = _with_silent_roster(rows, roster, current)
    teams = _TeamPeriods(all_rows, thresholds.min_team_size)
    by_rep: dict[str, dict[date, RepPeriodScore]] = defaultdict(dict)
    for row in all_rows:
        by_rep[row.rep_id][row.period_start] = row
    flagged: list[AtRiskRep] = []
    for rep_id in sorted(by_rep):
        history = by_rep[rep_id]
        if current not in history:
            continue
        judged = _judge_rep(history, periods, teams, thresholds, silent=rep_id in silent)
        if judged is not None:
            flagged.append(judged)
    return flagged


def _judge_rep(
    history: dict[date, RepPeriodScore],
    periods: Sequence[date],
    teams: _TeamPeriods,
    thresholds: InsightThresholds,
    *,
    silent: bool,
) -> AtRiskRep | None:
    current = periods[-1]
    now = history[current]
    reasons: list[AtRiskReason] = [AtRiskReason.NO_ACTIVITY] if silent else []

    def below_median(period: date) -> bool:
        row = history.get(period)
        if row is None:
            return False
        middle = teams.median(row.team_id, period)
        return middle is not None and row.score < thresholds.at_risk_share_of_team_median * middle

    run = periods[-thresholds.at_risk_consecutive_periods :]
    if len(run) == thresholds.at_risk_consecutive_periods and all(below_median(period) for period in run):
        reasons.append(AtRiskReason.BELOW_TEAM_MEDIAN)

    trailing = periods[:-1][-TRAILING_BASELINE_PERIODS:]
    past = [history.get(period) for period in trailing]
    baseline = trailing_baseline(
        [None if p is None else p.score for p in past], thresholds.min_baseline_periods
    )
    change = change_against(now.score, baseline)
    if change is not None and change < -thresholds.at_risk_drop_against_baseline:
        reasons.append(AtRiskReason.DROP_AGAINST_BASELINE)
    volume = trailing_baseline(
        [None if p is None else float(p.activities) for p in past], thresholds.min_baseline_periods
    )
    if (
        not silent
        and volume.mean is not None
        and now.activities < thresholds.at_risk_low_volume_share * volume.mean
    ):
        reasons.append(AtRiskReason.LOW_VOLUME)
    if not reasons:
        return None
    return AtRiskRep(
        rep_id=now.rep_id,
        team_id=now.team_id,
        reasons=tuple(reasons),
        score=now.score,
        team_median=teams.median(now.team_id, current),
        baseline_mean=baseline.mean,
        change=change,
        insufficient_data=baseline.mean is None,
        activities=now.activities,
        baseline_activities=volume.mean,
    )


# --- stale deals -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OpenDealRow:
    """An open deal and its engagement, from the deal rollups and the CRM deal table."""

    deal_id: str
    owner_rep_id: str | None
    created_at: datetime
    #: Latest counted activity on the deal (any kind), None if there never was one.
    last_activity_at: datetime | None
    #: Latest inbound email with an external participant on the deal.
    last_buyer_reply_at: datetime | None
    #: Distinct external contacts on the deal's counted activities.
    engaged_contacts: int


class StaleReason(StrEnum):
    NO_RECENT_ACTIVITY = "no_recent_activity"
    SINGLE_THREADED = "single_threaded"
    NO_BUYER_REPLY = "no_buyer_reply"


@dataclass(frozen=True, slots=True)
class StaleDeal:
    deal_id: str
    owner_rep_id: str | None
    reasons: tuple[StaleReason, ...]
    days_since_activity: int
    days_since_buyer_reply: int
    engaged_contacts: int
    #: Whole days since the deal was created.
    age_days: int = 0
    #: The deal's last engaging activity (None: never touched, ages count from creation).
    last_activity_at: datetime | None = None


def _whole_days(since: datetime, as_of: datetime) -> int:
    return max((as_of - since).days, 0)


def stale_deals(
    rows: Iterable[OpenDealRow], as_of: datetime, thresholds: InsightThresholds
) -> list[StaleDeal]:
    """Open deals needing attention as of ``as_of``; a deal never touched is measured from its creation."""
    flagged: list[StaleDeal] = []
    for deal in sorted(rows, key=lambda row: row.deal_id):
        age = _whole_days(deal.created_at, as_of)
        quiet = _whole_days(deal.last_activity_at or deal.created_at, as_of)
        unanswered = _whole_days(deal.last_buyer_reply_at or deal.created_at, as_of)
        reasons: list[StaleReason] = []
        if quiet >= thresholds.stale_after_days:
            reasons.append(StaleReason.NO_RECENT_ACTIVITY)
        if (
            1 <= deal.engaged_contacts <= thresholds.single_threaded_max_contacts
            and age >= thresholds.single_threaded_min_deal_age_days
        ):
            reasons.append(StaleReason.SINGLE_THREADED)
        if unanswered >= thresholds.no_buyer_reply_days:
            reasons.append(StaleReason.NO_BUYER_REPLY)
        if reasons:
            flagged.append(
                StaleDeal(
                    deal.deal_id,
                    deal.owner_rep_id,
                    tuple(reasons),
                    quiet,
                    unanswered,
                    deal.engaged_contacts,
                    age,
                    deal.last_activity_at,
                )
            )
    return flagged


# --- bright spots ----------------------------------------------------------------------------

#: Metrics worth celebrating: results rather than raw effort.
BRIGHT_SPOT_METRICS: tuple[Counter, ...] = (
    Counter.CONVERSATIONS,
    Counter.BUYER_REPLIES,
    Counter.MEETINGS_BOOKED,
    Counter.MEETINGS_HELD,
    Counter.DEALS_WON,
)

#: The activity mix: how a rep splits effort between calling, emailing and meeting buyers.
MIX_COUNTERS: tuple[Counter, ...] = (Counter.DIALS, Counter.EMAILS_SENT, Counter.MEETINGS_HELD)


@dataclass(frozen=True, slots=True)
class RepCountsRow:
    """A rep's counters for one period on one team."""

    rep_id: str
    team_id: str
    counts: MetricCounts


@dataclass(frozen=True, slots=True)
class BrightSpot:
    team_id: str
    metric: Counter
    rep_id: str
    value: int
    #: 1 + reps of the team with a strictly higher value: tied reps share a rank.
    rank: int
    team_median: float
    #: Rep's share minus the team's share per mix counter; empty when either did nothing.
    mix_difference: dict[Counter, float]
    #: value / team median; None when the median is 0 (any value at the minimum is then bright).
    ratio_to_median: float | None = None

    @property
    def why(self) -> str:
        """What makes the rep bright, for a leader to read: "conversations 2.1 x team median (21 vs 10)"."""
        label = self.metric.value.replace("_", " ")
        median_text = f"{self.team_median:g}"
        if self.ratio_to_median is None:
            return f"{label} {self.value} vs team median {median_text}"
        return f"{label} {self.ratio_to_median:.1f} x team median ({self.value} vs {median_text})"


def activity_mix(counts: MetricCounts) -> dict[Counter, float] | None:
    """Share of each mix counter in their sum; None when the sum is zero."""
    volume = sum(counts[counter] for counter in MIX_COUNTERS)
    if volume == 0:
        return None
    return {counter: counts[counter] / volume for counter in MIX_COUNTERS}


def _highest_first(metric: Counter) -> Callable[[RepCountsRow], tuple[int, str]]:
    def order(row: RepCountsRow) -> tuple[int, str]:
        return (-row.counts[metric], row.rep_id)

    return order


def _shines(value: int, middle: float, thresholds: InsightThresholds) -> bool:
    """Strictly above the median, by the margin, with the minimum data: at the median never shines."""
    return (
        value >= thresholds.bright_spot_min_value
        and value > middle
        and value >= thresholds.bright_spot_min_ratio_to_median * middle
    )


def bright_spots(
    rows: Iterable[RepCountsRow],
    thresholds: InsightThresholds,
    metrics: Sequence[Counter] = BRIGHT_SPOT_METRICS,
) -> list[BrightSpot]:
    """Per team and metric, the top ``bright_spot_top_n`` reps clearly above the team median.

    A rep shines on a metric when the value is strictly above the team median, at least
    ``bright_spot_min_ratio_to_median`` times it and at least ``bright_spot_min_value``; the
    team needs ``min_team_size`` reps (silent members count, as zeros). Order within a
    metric is value descending, then rep id, so the output is stable.
    """
    by_team: dict[str, list[RepCountsRow]] = defaultdict(list)
    for row in rows:
        by_team[row.team_id].append(row)
    spots: list[BrightSpot] = []
    for team_id in sorted(by_team):
        team = by_team[team_id]
        if len(team) < thresholds.min_team_size:
            continue
        team_mix = activity_mix(total(row.counts for row in team))
        for metric in metrics:
            middle = median([float(row.counts[metric]) for row in team])
            assert middle is not None  # the team is not empty
            ranked = [
                row
                for row in sorted(team, key=_highest_first(metric))
                if _shines(row.counts[metric], middle, thresholds)
            ]
            for row in ranked[: thresholds.bright_spot_top_n]:
                value = row.counts[metric]
                rep_mix = activity_mix(row.counts)
                difference = (
                    {counter: rep_mix[counter] - team_mix[counter] for counter in MIX_COUNTERS}
                    if rep_mix is not None and team_mix is not None
                    else {}
                )
                rank = 1 + sum(1 for other in team if other.counts[metric] > value)
                ratio = value / middle if middle > 0 else None
                spots.append(BrightSpot(team_id, metric, row.rep_id, value, rank, middle, difference, ratio))
    return spots
