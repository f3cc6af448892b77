"""Metrics use case: apply attribution versions to the rollups exactly once.

Per activity we keep the contribution of the highest (revision, version) applied: the facts of
the activity's highest revision, under attribution's latest decision about it. A redelivered
version, an older one arriving late, or one carrying a lower revision changes nothing; a newer
one retracts the old contribution and adds its own, in the same transaction. The consumer commits offsets only after this commits.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.contracts.attribution import ActivityAttributedV1
from libs.common.kafka.failures import TenantSettingsInvalid
from libs.common.kafka.runner import ConsumedMessage, Rejected
from services.metrics.adapters import rollups, scoring
from services.metrics.adapters.rollups import COLUMNS, COUNTER_COLUMNS, RollupCell, StoredContribution
from services.metrics.adapters.scoring import ScoringModelCache
from services.metrics.domain.definitions import MetricSettings, contribution_of, is_counted, rollup_keys
from services.metrics.domain.periods import Grain
from services.metrics.domain.scoring import DEFAULT_SCORING_MODEL, ScoringModel, weights_by_counter
from services.metrics.telemetry import CONTRIBUTIONS, FRESHNESS

GRAINS = (Grain.DAY, Grain.WEEK, Grain.MONTH, Grain.QUARTER)


@dataclass
class TenantSettingsCache:
    ttl_seconds: float = 60.0
    _entries: dict[str, tuple[float, MetricSettings]] = field(default_factory=dict)

    def get(self, tenant_id: str) -> MetricSettings | None:
        hit = self._entries.get(tenant_id)
        return hit[1] if hit and hit[0] > time.monotonic() else None

    def put(self, tenant_id: str, settings: MetricSettings) -> None:
        self._entries[tenant_id] = (time.monotonic() + self.ttl_seconds, settings)


@dataclass(frozen=True, slots=True)
class MetricsDeps:
    engine: AsyncEngine
    tenants: TenantSettingsCache
    models: ScoringModelCache = field(default_factory=ScoringModelCache)


def metric_settings_from(row: dict[str, Any], tenant_id: str = "") -> MetricSettings:
    """The tenant's calendar and thresholds; a stored value that cannot apply names itself (permanent)."""
    stored = row.get("settings") or {}
    if not isinstance(stored, dict):
        raise TenantSettingsInvalid(tenant_id, "settings", f"expected an object, got {type(stored).__name__}")
    extra = stored.get("metrics") or {}
    if not isinstance(extra, dict):
        raise TenantSettingsInvalid(tenant_id, "metrics", f"expected an object, got {type(extra).__name__}")
    values = {
        "time_zone": row.get("timezone", "UTC"),
        "fiscal_year_start_month": row.get("fiscal_year_start_month", 1),
        "conversation_min_seconds": extra.get("conversation_min_seconds", 60),
    }
    try:
        return MetricSettings.model_validate(values)
    except ValidationError as exc:
        error = exc.errors()[0]
        name = str(error["loc"][0]) if error["loc"] else "metrics"
        path = {"time_zone": "timezone", "conversation_min_seconds": "metrics.conversation_min_seconds"}
        reason = f"{values.get(name)!r}: {error['msg']}"
        raise TenantSettingsInvalid(tenant_id, path.get(name, name), reason) from exc


Deltas = dict[RollupCell, dict[str, float]]


PeriodStarts = tuple[tuple[str, date], ...]


class _PeriodsOfDay:
    """(grain, period start) of each grain for a local day, computed once per day in a batch."""

    def __init__(self, settings: MetricSettings) -> None:
        self._calendar = settings.calendar
        self._known: dict[date, PeriodStarts] = {}

    def __call__(self, day: date) -> PeriodStarts:
        starts = self._known.get(day)
        if starts is None:
            starts = tuple((grain.value, self._calendar.period_of(day, grain).start) for grain in GRAINS)
            self._known[day] = starts
        return starts


#: ``(tenant, level, entity, local day)``: contributions are summed per day, then spread over grains.
DayCell = tuple[str, str, str, date]


def _add_cells(
    daily: dict[DayCell, dict[str, float]],
    tenant_id: str,
    keys: Sequence[tuple[str, str, date]],
    counts: dict[str, float],
    sign: int,
) -> None:
    changed = [(column, sign * value) for column, value in counts.items() if value]
    if not changed:
        return
    for level, entity_id, day in keys:
        bucket = daily.setdefault((tenant_id, level, entity_id, day), defaultdict(float))
        for column, value in changed:
            bucket[column] += value


def _spread_over_grains(daily: dict[DayCell, dict[str, float]], periods_of: _PeriodsOfDay) -> Deltas:
    """Each day's sums added to the day, week, month and quarter that hold it."""
    deltas: Deltas = {}
    for (tenant_id, level, entity_id, day), sums in daily.items():
        for grain, start in periods_of(day):
            bucket = deltas.setdefault((tenant_id, level, entity_id, grain, start), defaultdict(float))
            for column, value in sums.items():
                bucket[column] += value
    return deltas


def _stored_keys(stored: StoredContribution) -> list[tuple[str, str, date]]:
    if stored.day is None:
        return []
    keys = []
    for level, entity in (
        ("rep", stored.rep_id),
        ("team", stored.team_id),
        ("account", stored.account_id),
        ("deal", stored.deal_id),
    ):
        if entity is not None:
            keys.append((level, entity, stored.day))
    return keys


def contribution_order(event: ActivityAttributedV1) -> tuple[int, int]:
    """Which of two versions of an activity counts: the higher revision, then the higher version."""
    return (event.facts.revision, event.version)


def plan_batch(
    events: Sequence[ActivityAttributedV1],
    stored: dict[uuid.UUID, StoredContribution],
    settings: MetricSettings,
    model: ScoringModel = DEFAULT_SCORING_MODEL,
) -> tuple[list[dict[str, Any]], Deltas]:
    """Contribution rows to write and rollup deltas to add, for one tenant's newest versions."""
    rows: list[dict[str, Any]] = []
    daily: dict[DayCell, dict[str, float]] = {}
    periods_of = _PeriodsOfDay(settings)
    weights = [(counter.value, weight) for counter, weight in weights_by_counter(model).items() if weight]
    outcomes: Counter[str] = Counter()
    for event in events:
        previous = stored.get(event.activity_id)
        if previous is not None and previous.order >= contribution_order(event):
            outcomes["stale"] += 1
            continue
        if previous is not None:
            _add_cells(daily, event.tenant_id, _stored_keys(previous), previous.counts, -1)
        counted = is_counted(event)
        counts: dict[str, float] = dict.fromkeys(COLUMNS, 0)
        keys = rollup_keys(event, settings)
        day = settings.calendar.local_day(event.facts.occurred_at)
        if counted:
            contribution = contribution_of(event, settings)
            for column in COUNTER_COLUMNS[1:]:
                counts[column] = getattr(contribution, column)
            counts["activities"] = 1
            # sum(weight * counter): score_of with the weights looked up once per batch.
            counts["score"] = sum(weight * getattr(contribution, column) for column, weight in weights)
        # The stored row keeps exactly the entities the keys credited, so a retraction undoes them.
        credited = {k.level.value: k.entity_id for k in keys}
        rows.append(
            {
                "tenant_id": event.tenant_id,
                "activity_id": event.activity_id,
                "version": event.version,
                "revision": event.facts.revision,
                "rep_id": credited.get("rep"),
                "team_id": credited.get("team"),
                "deal_id": credited.get("deal"),
                "account_id": credited.get("account"),
                "status": event.status.value,
                "occurred_at": event.facts.occurred_at,
                "day": day if keys else None,
                "kind": event.facts.kind.value,
                "contact_ids": list(event.facts.external_contact_ids),
                **counts,
            }
        )
        _add_cells(daily, event.tenant_id, [(k.level.value, k.entity_id, k.day) for k in keys], counts, 1)
        outcomes["replaced" if previous is not None else "added"] += 1
    for outcome, count in outcomes.items():
        CONTRIBUTIONS.labels(outcome).inc(count)
    return rows, _spread_over_grains(daily, periods_of)


async def handle_batch(messages: Sequence[ConsumedMessage[Any]], deps: MetricsDeps) -> Sequence[Rejected]:
    """One transaction per batch; offsets are committed by the runner after it returns."""
    newest: dict[tuple[str, uuid.UUID], ActivityAttributedV1] = {}
    for message in messages:
        event: ActivityAttributedV1 = message.payload
        key = (event.tenant_id, event.activity_id)
        if key not in newest or contribution_order(newest[key]) < contribution_order(event):
            newest[key] = event
    by_tenant: dict[str, list[ActivityAttributedV1]] = defaultdict(list)
    for (tenant_id, _), event in newest.items():
        by_tenant[tenant_id].append(event)
    tenant_ids = sorted(by_tenant)
    # A model saved since the last rescore is applied to history first, in its own
    # transaction, so this batch's deltas and the stored scores use one model.
    await scoring.rescore_moved(deps.engine, deps.models, tenant_ids)
    async with deps.engine.begin() as conn:
        applied = await scoring.share_applied_versions(conn, tenant_ids)
        calendars = {t: deps.tenants.get(t) for t in tenant_ids}
        missing = [t for t, cached in calendars.items() if cached is None]
        if missing:
            for tenant_id, row in (await rollups.tenant_calendar_settings(conn, missing)).items():
                loaded = metric_settings_from(row, tenant_id)
                calendars[tenant_id] = loaded
                deps.tenants.put(tenant_id, loaded)
        all_rows: list[dict[str, Any]] = []
        all_deltas: Deltas = {}
        for tenant_id in tenant_ids:
            events = by_tenant[tenant_id]
            settings = calendars[tenant_id] or MetricSettings()
            model = await deps.models.get(conn, tenant_id, applied[tenant_id])
            stored = await rollups.load_contributions(conn, tenant_id, [e.activity_id for e in events])
            rows, deltas = plan_batch(events, stored, settings, model)
            all_rows += rows
            for cell, delta in deltas.items():
                bucket = all_deltas.setdefault(cell, defaultdict(float))
                for column, value in delta.items():
                    bucket[column] += value
        await rollups.upsert_contributions(conn, all_rows)
        await rollups.apply_rollup_deltas(conn, all_deltas)
        await rollups.mark_dirty(conn, tenant_ids)
    now = datetime.now(UTC)
    for event in newest.values():
        ingested = event.explanation.get("ingested_at")
        if isinstance(ingested, str):
            FRESHNESS.observe(max(0.0, (now - datetime.fromisoformat(ingested)).total_seconds()))
    return []
