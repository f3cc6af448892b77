"""Metrics use case: apply attribution versions to the rollups exactly once.

Per activity we keep the contribution of the highest (revision, version) applied: the facts of
the activity's highest revision, under attribution's latest decision about it. A redelivered
version, an older one arriving late, or one carrying a lower revision changes nothing; a newer
one retracts the old contribution and adds its own, in the same transaction. The consumer commits offsets only after this commits.

A tenant whose rollups a rebuild or a rescore holds is not waited for: its versions are set
aside in the batch's transaction (``adapters/deferred.py``) and applied by the drainer
(``deferrals.py``) once they are free, in the order they were consumed.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import reduce
from itertools import chain
from operator import add, itemgetter, mul
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from libs.common.contracts.activities import ActivityKind
from libs.common.contracts.attribution import AttributionStatus
from libs.common.contracts.attribution_fast import AttributedEvent
from libs.common.contracts.tenant_settings import SettingsChangedV1, TenantSettings
from libs.common.db.engine import transaction
from libs.common.db.refresh_state import mark_dirty
from libs.common.jobs import Job, report_progress
from libs.common.kafka.runner import ConsumedMessage, Rejected
from libs.common.telemetry import observe_all
from libs.common.tenant_settings_store import (
    TenantSettingsCache,
    load_tenant_settings,
    settings_of_batch,
    settings_of_tenant,
)
from services.metrics.adapters import deferred, rollups, scoring
from services.metrics.adapters.rollups import (
    COLUMNS,
    CONTRIBUTION_FIELDS,
    ContributionRow,
    RollupCell,
    StoredContribution,
)
from services.metrics.adapters.scoring import ScoringModelCache
from services.metrics.domain.definitions import (
    LEVEL_ACCOUNT,
    LEVEL_DEAL,
    LEVEL_REP,
    LEVEL_TEAM,
    LEVEL_TEAM_REP,
    LEVELS_BY_STATUS,
    STORED_LEVELS,
    MetricSettings,
    buyer_answered,
    counted_amounts,
    counted_engaged_deal_ids,
    counting_shape,
    is_counted,
    team_rep_id,
)
from services.metrics.domain.definitions import Counter as DomainCounter
from services.metrics.domain.engagement import DealEngagementChange, engagement_changes
from services.metrics.domain.periods import Grain
from services.metrics.domain.scoring import DEFAULT_SCORING_MODEL, ScoringModel, weights_by_counter
from services.metrics.telemetry import CONTRIBUTIONS, DEFERRED, FRESHNESS

log = logging.getLogger(__name__)

GRAINS = (Grain.DAY, Grain.WEEK, Grain.MONTH, Grain.QUARTER)
#: Each member's text, by one dictionary lookup: in Python 3.11 ``member.value`` is two
#: Python-level calls (``enum.property.__get__`` and the ``value`` getter).
_GRAIN_TEXTS = tuple((grain, grain.value) for grain in GRAINS)
_STATUS_TEXT = {status: status.value for status in AttributionStatus}
_KIND_TEXT = {kind: kind.value for kind in ActivityKind}


@dataclass(frozen=True, slots=True)
class MetricsDeps:
    engine: AsyncEngine
    tenants: TenantSettingsCache
    models: ScoringModelCache = field(default_factory=ScoringModelCache)


def metric_settings_from(settings: TenantSettings, calendar: tuple[str, int] | None = None) -> MetricSettings:
    """The metric rules of a tenant's settings: its calendar (or ``calendar``, the one its rollups
    are built in, when given) and the conversation threshold."""
    time_zone, fiscal_year_start_month = calendar or (settings.time_zone, settings.fiscal_year_start_month)
    return MetricSettings(
        time_zone=time_zone,
        fiscal_year_start_month=fiscal_year_start_month,
        conversation_min_seconds=settings.metrics.conversation_min_seconds,
        activity_retention_days=settings.retention.activities_days,
    )


#: Each rollup cell's deltas, one per ``COLUMNS`` entry in that order (negative for retractions).
Deltas = dict[RollupCell, list[float]]


PeriodStarts = tuple[tuple[str, date], ...]


#: The period starts of the days met so far, by what they depend on: the fiscal year's start and
#: naming (a day, week or month starts where it does in every zone; the zone only says which day
#: an instant falls on). Kept across batches, which meet the same days again; each calendar's days
#: forgotten past ``_DAYS_KEPT`` (at most 24 calendars).
_STARTS_BY_CALENDAR: dict[tuple[int, str], dict[date, PeriodStarts]] = {}
_DAYS_KEPT = 2_000


class _PeriodsOfDay:
    """(grain, period start) of each grain for a local day, computed once per day and fiscal
    calendar in the process."""

    def __init__(self, settings: MetricSettings) -> None:
        self._calendar = calendar = settings.calendar
        key = (calendar.fiscal_year_start_month, calendar.fiscal_year_named_by)
        known = _STARTS_BY_CALENDAR.get(key)
        if known is None or len(known) > _DAYS_KEPT:
            known = _STARTS_BY_CALENDAR[key] = {}
        self._known = known

    def __call__(self, day: date) -> PeriodStarts:
        starts = self._known.get(day)
        if starts is None:
            starts = tuple((text, self._calendar.period_of(day, grain).start) for grain, text in _GRAIN_TEXTS)
            self._known[day] = starts
        return starts


#: ``(tenant, level, entity, local day)``: contributions are summed per day, then spread over grains.
DayCell = tuple[str, str, str, date]
#: Which stored levels (rep, team, the team's rep) a source of counts credits.
Credits = tuple[bool, bool, bool]
#: ``(tenant, rep id, team id, credits, local day)``: the versions (and retractions) of a batch
#: whose counts go to the same stored cells.
Group = tuple[str, str | None, str | None, Credits, date]
#: Counts with their place in the batch (a version's retraction comes before its new counts).
Source = tuple[int, Sequence[float]]

#: The stored levels' texts; a source meets its cells in this order (``Level`` order).
_REP_TEXT, _TEAM_TEXT, _TEAM_REP_TEXT = LEVEL_REP.value, LEVEL_TEAM.value, LEVEL_TEAM_REP.value
_LEVEL_RANK = {_REP_TEXT: 0, _TEAM_TEXT: 1, _TEAM_REP_TEXT: 2}
#: What a stored contribution's retraction takes back: every stored level it names.
_ALL_STORED: Credits = (True, True, True)


def _group(groups: dict[Group, list[Source]], key: Group, place: int, counts: Sequence[float]) -> None:
    if not any(counts):
        return
    sources = groups.get(key)
    if sources is None:
        groups[key] = [(place, counts)]
    else:
        sources.append((place, counts))


_PLACE, _COUNTS = itemgetter(0), itemgetter(1)
_SCORE_OF = itemgetter(COLUMNS.index("score"))


def _day_sums(groups: dict[Group, list[Source]]) -> dict[DayCell, list[float]]:
    """Each stored cell's sums for a day, as adding each source's counts to every cell it credits,
    one source after another, gave them: the counters summed (integers, in any order), the score
    added in the sources' order (the same float to the last bit), the cells in the order their
    first source met them."""
    cells: dict[DayCell, list[list[Source]]] = {}
    for (tenant_id, rep_id, team_id, (rep, team, team_rep), day), sources in groups.items():
        if rep and rep_id is not None:
            cells.setdefault((tenant_id, _REP_TEXT, rep_id, day), []).append(sources)
        if team and team_id is not None:
            cells.setdefault((tenant_id, _TEAM_TEXT, team_id, day), []).append(sources)
        if team_rep and rep_id is not None and team_id is not None:
            key = (tenant_id, _TEAM_REP_TEXT, team_rep_id(team_id, rep_id), day)
            cells.setdefault(key, []).append(sources)
    ordered = []
    for key, runs in cells.items():
        sources = runs[0] if len(runs) == 1 else sorted(chain.from_iterable(runs), key=_PLACE)
        vectors = list(map(_COUNTS, sources))
        sums: list[float] = list(map(sum, zip(*vectors, strict=True)))
        sums[_SCORE] = reduce(add, map(_SCORE_OF, vectors))
        ordered.append((sources[0][0], _LEVEL_RANK[key[1]], key, sums))
    ordered.sort(key=_FIRST_MET)
    return {key: sums for _, _, key, sums in ordered}


_FIRST_MET = itemgetter(0, 1)


def _spread_over_grains(daily: dict[DayCell, list[float]], periods_of: _PeriodsOfDay) -> Deltas:
    """Each day's sums added to the day, week, month and quarter that hold it: the counters
    summed, the score added day by day in the order of ``daily`` (the same float as adding each
    day's whole sums in turn)."""
    days_of: dict[RollupCell, list[list[float]]] = {}
    for (tenant_id, level, entity_id, day), sums in daily.items():
        for grain, start in periods_of(day):
            key = (tenant_id, level, entity_id, grain, start)
            days = days_of.get(key)
            if days is None:
                days_of[key] = [sums]
            else:
                days.append(sums)
    deltas: Deltas = {}
    for key, days in days_of.items():
        if len(days) == 1:
            deltas[key] = list(days[0])
            continue
        totals: list[float] = list(map(sum, zip(*days, strict=True)))
        totals[_SCORE] = reduce(add, map(_SCORE_OF, days))
        deltas[key] = totals
    return deltas


#: Every rollup column at zero: what an uncounted version contributes.
_NO_COUNTS: dict[str, float] = dict.fromkeys(COLUMNS, 0)
_ZEROS: tuple[float, ...] = (0,) * len(COLUMNS)
_ACTIVITIES, _SCORE = COLUMNS.index("activities"), COLUMNS.index("score")
#: Where each counter's amount goes in a ``COLUMNS``-ordered vector (deals won is not a column).
_COUNTER_INDEX: dict[DomainCounter, int] = {
    c: COLUMNS.index(c.value) for c in DomainCounter if c.value in COLUMNS
}
#: For each status, the ids of a version it credits (``LEVELS_BY_STATUS``, as ``counted_entities``
#: reads them): the rep, the team, the team's rep (the two joined), the account and the deal.
_CREDITED: dict[AttributionStatus, tuple[bool, bool, bool, bool, bool]] = {
    status: (
        LEVEL_REP in levels,
        LEVEL_TEAM in levels,
        LEVEL_TEAM_REP in levels,
        LEVEL_ACCOUNT in levels,
        LEVEL_DEAL in levels,
    )
    for status, levels in LEVELS_BY_STATUS.items()
}
#: Which stored levels (``STORED_LEVELS``) each status credits: account and deal figures have no
#: rollup rows.
_STORED_CREDITS: dict[AttributionStatus, Credits] = {
    status: (
        rep and LEVEL_REP in STORED_LEVELS,
        team and LEVEL_TEAM in STORED_LEVELS,
        team_rep and LEVEL_TEAM_REP in STORED_LEVELS,
    )
    for status, (rep, team, team_rep, _, _) in _CREDITED.items()
}


def _counts_of(
    event: AttributedEvent, settings: MetricSettings, weights: Mapping[DomainCounter, float]
) -> list[float]:
    """Every rollup column's amount for a version that counts (``is_counted``, not checked
    again), in ``COLUMNS`` order: its counters, one activity, and its score under ``weights``
    (``weights_by_counter``).

    The score is ``sum(weight * counter)`` as ``score_of`` adds it, to the last bit: the version's
    counters come in ``Counter`` order (``counted_amounts`` follows ``COUNTING_RULES``, one rule
    per counter, in that order), and the terms of the others would add +0.0 (weights are finite
    and not negative), which changes no sum that starts at 0.
    """
    counts = list(_ZEROS)
    amounts = counted_amounts(event, settings)
    for counter, amount in amounts.items():
        index = _COUNTER_INDEX.get(counter)
        if index is not None:
            counts[index] = amount
    counts[_ACTIVITIES] = 1
    counts[_SCORE] = sum(map(mul, map(weights.__getitem__, amounts), amounts.values()), 0.0)
    return counts


def contribution_order(event: AttributedEvent) -> tuple[int, int]:
    """Which of two versions of an activity counts: the higher revision, then the higher version."""
    return (event.facts.revision, event.version)


def plan_batch(
    events: Sequence[AttributedEvent],
    stored: dict[uuid.UUID, StoredContribution],
    settings: MetricSettings,
    model: ScoringModel = DEFAULT_SCORING_MODEL,
    now: datetime | None = None,
) -> tuple[list[ContributionRow], Deltas]:
    """Contribution rows to write (``CONTRIBUTION_FIELDS``) and rollup deltas to add, for one
    tenant's newest versions."""
    now = now or datetime.now(UTC)
    cutoff = settings.retention_cutoff(now)
    rows: list[ContributionRow] = []
    groups: dict[Group, list[Source]] = {}
    periods_of = _PeriodsOfDay(settings)
    local_day = settings.calendar.local_day
    weights = weights_by_counter(model)
    outcomes: Counter[str] = Counter()
    counts_of_shape: dict[tuple[int, int, int, bool, int], tuple[float, ...]] = {}
    for place, event in enumerate(events):
        # No lookup (the id's Python-level hash) when nothing is stored, a new activity's case.
        previous = stored.get(event.activity_id) if stored else None
        facts = event.facts
        if previous is not None and previous.order >= (facts.revision, event.version):
            outcomes["stale"] += 1
            continue
        if previous is None and cutoff is not None and facts.occurred_at < cutoff:  # past_retention
            # Purged (or never kept): its share of the kept aggregates is already in them.
            outcomes["past_retention"] += 1
            continue
        if previous is not None and previous.day is not None:
            # Taken back from the cells the stored row credited, before the new counts are added.
            retracted = [-previous.counts.get(column, 0) for column in COLUMNS]
            key = (event.tenant_id, previous.rep_id, previous.team_id, _ALL_STORED, previous.day)
            _group(groups, key, 2 * place, retracted)
        # What a version that does not count gives: zeros, no entity, no deal engaged.
        if is_counted(event):
            # The counts of each shape of version once per batch (``counting_shape``).
            shape = counting_shape(event)
            counts: Sequence[float] | None = counts_of_shape.get(shape)
            if counts is None:
                counts = counts_of_shape[shape] = tuple(_counts_of(event, settings, weights))
            # The stored row keeps exactly the entities it credited, so a retraction undoes them.
            rep, team, account, deal, credited = _credited_ids(event)
            day = local_day(facts.occurred_at) if credited else None
            deals = counted_engaged_deal_ids(event)
        else:
            counts, rep, team, account, deal, day, deals = _ZEROS, None, None, None, None, None, ()
        # ``CONTRIBUTION_FIELDS``, in that order.
        rows.append(
            (
                event.tenant_id,
                event.activity_id,
                event.version,
                facts.revision,
                rep,
                team,
                deal,
                account,
                _STATUS_TEXT[event.status],
                facts.occurred_at,
                day,
                _KIND_TEXT[facts.kind],
                facts.external_contact_ids,
                deals,
                *counts,
            )
        )
        if day is not None:
            key = (event.tenant_id, event.rep_id, event.team_id, _STORED_CREDITS[event.status], day)
            _group(groups, key, 2 * place + 1, counts)
        outcomes["replaced" if previous is not None else "added"] += 1
    for outcome, count in outcomes.items():
        CONTRIBUTIONS.labels(outcome).inc(count)
    return rows, _spread_over_grains(_day_sums(groups), periods_of)


def _credited_ids(event: AttributedEvent) -> tuple[str | None, str | None, str | None, str | None, bool]:
    """The rep, team, account and deal a counted version credits (``counted_entities``), None
    where it credits none, and whether it credits any entity at all."""
    rep, team, team_rep, account, deal = _CREDITED[event.status]
    rep_id = event.rep_id if rep else None
    team_id = event.team_id if team else None
    account_id = event.account_id if account else None
    deal_id = event.deal_id if deal else None
    credited = (
        rep_id is not None
        or team_id is not None
        or account_id is not None
        or deal_id is not None
        or (team_rep and event.rep_id is not None and event.team_id is not None)
    )
    return rep_id, team_id, account_id, deal_id, credited


#: Where ``deal_engagement_changes`` reads a contribution row's fields.
_ROW_ACTIVITY, _ROW_OCCURRED_AT, _ROW_CONTACTS, _ROW_DEALS = map(
    CONTRIBUTION_FIELDS.index, ("activity_id", "occurred_at", "contact_ids", "engaged_deal_ids")
)
#: The counters ``buyer_answered`` reads, in its parameters' order.
_ROW_ANSWER_COUNTERS = itemgetter(
    *map(
        CONTRIBUTION_FIELDS.index,
        ("buyer_replies", "conversations", "meetings_held", "talk_seconds", "dials"),
    )
)


def deal_engagement_changes(
    rows: Sequence[ContributionRow], stored: dict[uuid.UUID, StoredContribution]
) -> list[DealEngagementChange]:
    """What the contribution rows ``plan_batch`` writes change in their deals' engagement."""
    versions = []
    for row in rows:
        previous = stored.get(row[_ROW_ACTIVITY]) if stored else None
        old = None if previous is None else previous.engagement
        deals = row[_ROW_DEALS]
        # ``engagement_of`` gives None for a row that engages no deal: no change unless ``old``.
        if not deals and old is None:
            continue
        written = rollups.engagement_of(
            deals,
            row[_ROW_OCCURRED_AT],
            buyer_answered(*_ROW_ANSWER_COUNTERS(row)),
            row[_ROW_CONTACTS],
        )
        if old is not None or written is not None:
            versions.append((old, written))
    return engagement_changes(versions)


def newest_by_tenant(events: Iterable[AttributedEvent]) -> dict[str, list[AttributedEvent]]:
    """Each tenant's versions, the newest (``contribution_order``) of each activity only, in the
    order each activity was first seen."""
    # Keyed by the id's integer: ``uuid.UUID.__hash__`` is a Python-level call, an int's is not.
    newest: dict[tuple[str, int], AttributedEvent] = {}
    for event in events:
        key = (event.tenant_id, event.activity_id.int)
        current = newest.setdefault(key, event)
        if current is not event and contribution_order(current) < contribution_order(event):
            newest[key] = event
    by_tenant: dict[str, list[AttributedEvent]] = defaultdict(list)
    for (tenant_id, _), event in newest.items():
        by_tenant[tenant_id].append(event)
    return by_tenant


async def _free_tenants(conn: AsyncConnection, tenant_ids: Sequence[str]) -> dict[str, int]:
    """The tenants whose versions this batch applies now, each with its applied scoring model
    version, both held until commit: neither a rebuild (rollup lock) nor a rescore (scoring row)
    holds it, and none of its versions are set aside (a later one must not overtake them).
    Nothing here waits: another tenant's rebuild or rescore never delays this batch."""
    shared = await rollups.try_share_rollups(conn, tenant_ids)
    applied = await scoring.share_applied_versions(conn, sorted(shared), skip_busy=True)
    waiting = await deferred.backlogged(conn, sorted(applied))
    return {t: v for t, v in applied.items() if t not in waiting}


async def _apply(
    conn: AsyncConnection,
    deps: MetricsDeps,
    by_tenant: Mapping[str, Sequence[AttributedEvent]],
    tenant_settings: Mapping[str, TenantSettings],
    applied: Mapping[str, int],
) -> None:
    """Apply each tenant's newest versions to its contributions and rollups, in the caller's
    transaction, which holds every tenant's rollup lock and scoring row (``applied``)."""
    tenant_ids = sorted(by_tenant)
    if not tenant_ids:
        return
    # The calendar the rollups are built in, which a rebuild after a change moves (under lock).
    calendars = await rollups.rollup_calendars(
        conn,
        {t: (tenant_settings[t].time_zone, tenant_settings[t].fiscal_year_start_month) for t in tenant_ids},
    )
    all_rows: list[ContributionRow] = []
    # Rows of activities with no stored contribution: written by a plain insert.
    new_rows: list[ContributionRow] = []
    all_deltas: Deltas = {}
    engagement: list[tuple[str, DealEngagementChange]] = []
    for tenant_id in tenant_ids:
        events = by_tenant[tenant_id]
        settings = metric_settings_from(tenant_settings[tenant_id], calendars[tenant_id])
        model = await deps.models.get(conn, tenant_id, applied[tenant_id])
        stored = await rollups.load_contributions(conn, tenant_id, [e.activity_id for e in events])
        rows, deltas = plan_batch(events, stored, settings, model)
        if stored:
            for row in rows:
                (all_rows if row[_ROW_ACTIVITY] in stored else new_rows).append(row)
        else:
            new_rows += rows
        engagement += [(tenant_id, change) for change in deal_engagement_changes(rows, stored)]
        # Cells carry their tenant: no two tenants' deltas meet.
        all_deltas.update(deltas)
    await rollups.upsert_contributions(conn, all_rows, new_rows)
    await rollups.apply_rollup_deltas(conn, all_deltas)
    await rollups.record_engagement_changes(conn, engagement)
    await mark_dirty(conn, tenant_ids)


def _observe_freshness(events: Iterable[AttributedEvent]) -> None:
    now = datetime.now(UTC)
    ages = []
    # Each distinct time once: the versions of one ingest request share it.
    age_of: dict[str, float] = {}
    for event in events:
        ingested = event.explanation.get("ingested_at")
        if isinstance(ingested, str):
            age = age_of.get(ingested)
            if age is None:
                # ``max(0.0, seconds)`` without the builtin's call.
                seconds = (now - datetime.fromisoformat(ingested)).total_seconds()
                age = age_of[ingested] = seconds if seconds > 0.0 else 0.0
            ages.append(age)
    observe_all(FRESHNESS, ages)


async def handle_batch(messages: Sequence[ConsumedMessage[Any]], deps: MetricsDeps) -> Sequence[Rejected]:
    """One transaction per batch; offsets are committed by the runner after it returns.

    The versions of a tenant whose rollups are busy (a rebuild or rescore running) or that has
    versions set aside are set aside too (``metric_deferred_events``), in the same transaction,
    and the other tenants' versions are applied: one tenant's rebuild never holds up the batch.
    A tenant whose stored settings are invalid fails the call with ``TenantSettingsInvalid``
    naming the setting: the runner parks that tenant's messages and hands back the rest.
    """
    tenant_settings = await settings_of_batch(messages, deps.tenants)
    by_tenant = newest_by_tenant(message.payload for message in messages)
    tenant_ids = sorted(by_tenant)
    async with transaction(deps.engine) as conn:
        applied = await _free_tenants(conn, tenant_ids)
        # Every version of a tenant set aside, in the order consumed (not only each activity's
        # newest): what is set aside does not depend on how the messages were batched.
        held = [m.payload for m in messages if m.payload.tenant_id not in applied]
        await deferred.defer(conn, held)
        await _apply(conn, deps, {t: by_tenant[t] for t in applied}, tenant_settings, applied)
    if held:
        DEFERRED.inc(len(held))
    _observe_freshness(event for t in applied for event in by_tenant[t])
    return []


#: Versions the drainer applies in one transaction, and transactions of one tenant in a row.
DRAIN_BATCH = 2_000
DRAIN_ROUNDS = 50


async def drain_deferred(
    deps: MetricsDeps, tenant_id: str, *, limit: int = DRAIN_BATCH, lock_wait_ms: int = 1_000
) -> int | None:
    """Apply the tenant's oldest ``limit`` versions set aside, in one transaction holding its
    rollup lock exclusively (no batch applies or sets aside its versions meanwhile); returns how
    many were taken, or None when its rollups are still busy (a rebuild or rescore running).

    After a rebuild or rescore they meet the contributions it left and its calendar or model, as
    any later batch does: a version is counted once, whatever a rebuild recomputed before it.
    Raises ``TenantSettingsInvalid`` or ``TenantUnknown`` as a batch would (the versions stay)."""
    settings = await settings_of_tenant(tenant_id, deps.tenants)
    async with deps.engine.begin() as conn:
        if not await rollups.lock_rollups(conn, tenant_id, lock_wait_ms):
            return None
        applied = await scoring.share_applied_versions(conn, [tenant_id], skip_busy=True)
        if tenant_id not in applied:
            return None
        events = await deferred.take(conn, tenant_id, limit)
        by_tenant = newest_by_tenant(events)
        await _apply(conn, deps, by_tenant, {tenant_id: settings}, applied)
    _observe_freshness(event for versions in by_tenant.values() for event in versions)
    return len(events)


async def drain_tenant(deps: MetricsDeps, tenant_id: str, *, lock_wait_ms: int = 1_000) -> int:
    """Apply all the tenant's versions set aside, a transaction per ``DRAIN_BATCH``, while its
    rollups are free; returns how many were applied.

    Until a transaction finds none left (at most ``DRAIN_ROUNDS``): the batches that met a drain
    set the tenant's versions aside too, and the tenant's batches are applied at once again only
    once nothing of it is left set aside."""
    drained = 0
    for _ in range(DRAIN_ROUNDS):
        taken = await drain_deferred(deps, tenant_id, lock_wait_ms=lock_wait_ms)
        if not taken:
            break
        drained += taken
    return drained


async def apply_settings_change(deps: MetricsDeps, event: SettingsChangedV1) -> None:
    """Forget the tenant's settings and recompute its insights and period stats with the new ones."""
    deps.tenants.invalidate(event.tenant_id)
    async with deps.engine.begin() as conn:
        await mark_dirty(conn, [event.tenant_id])


async def rebuild_tenant_rollups(deps: MetricsDeps, job: Job) -> dict[str, Any]:
    """A settings job: rebuild the tenant's period rollups under its current calendar, exactly."""
    async with deps.engine.connect() as conn:
        settings = await load_tenant_settings(conn, job.tenant_id)
    if settings is None:
        return {"rollup_rows": 0}

    async def step(done: int, total: int) -> None:
        await report_progress(deps.engine, job, done, total)

    async with deps.engine.begin() as conn:
        # Rollup scores are sums of contribution scores: hold the scoring model's row FOR SHARE,
        # as every score writer does, so a rescore never interleaves with the rebuild.
        await scoring.share_applied_versions(conn, [job.tenant_id])
        written = await rollups.rebuild_rollups(
            conn, job.tenant_id, settings.time_zone, settings.fiscal_year_start_month, step
        )
        await mark_dirty(conn, [job.tenant_id])
    deps.tenants.invalidate(job.tenant_id)
    # The versions batches set aside meanwhile, now, under the new calendar (the drainer would
    # within a tick); a failure leaves them to it.
    try:
        await drain_tenant(deps, job.tenant_id)
    except Exception:
        log.exception(
            "versions set aside during a rebuild left to the drainer", extra={"tenant_id": job.tenant_id}
        )
    return {
        "rollup_rows": written,
        "time_zone": settings.time_zone,
        "fiscal_year_start_month": settings.fiscal_year_start_month,
    }
