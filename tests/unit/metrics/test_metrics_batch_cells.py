"""``plan_batch``'s rollup deltas are what adding each version's counts to every cell it credits,
one version after another, gives: the same cells, the same integers and the same float scores to
the last bit (``repr``: ``-0.0``, ``1`` and ``1.0`` told apart)."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, date, datetime, timedelta
from operator import add
from typing import Any

import pytest

from libs.common.contracts.activities import OUTCOMES_BY_KIND, ActivityKind, Direction
from libs.common.contracts.attribution import AttributionStatus
from services.metrics import handlers
from services.metrics.adapters.rollups import COLUMNS, CONTRIBUTION_FIELDS, StoredContribution
from services.metrics.domain.definitions import (
    STORED_LEVELS,
    MetricSettings,
    counted_entities,
    credited_entities,
    is_counted,
    team_rep_id,
)
from services.metrics.domain.periods import Grain
from services.metrics.domain.scoring import ScoredActivity, ScoringModel
from services.metrics.handlers import plan_batch

from .events import attributed

_FIELD = {name: i for i, name in enumerate(CONTRIBUTION_FIELDS)}
_GRAINS = (Grain.DAY, Grain.WEEK, Grain.MONTH, Grain.QUARTER)


def _stored_keys(stored: StoredContribution) -> list[tuple[str, str, date]]:
    if stored.day is None:
        return []
    team_rep = (
        team_rep_id(stored.team_id, stored.rep_id)
        if stored.team_id is not None and stored.rep_id is not None
        else None
    )
    pairs = (("rep", stored.rep_id), ("team", stored.team_id), ("team_rep", team_rep))
    return [(level, entity, stored.day) for level, entity in pairs if entity is not None]


def _add_cells(daily: dict[Any, list[Any]], tenant_id: str, keys: Any, counts: list[Any], sign: int) -> None:
    if not any(counts):
        return
    if sign < 0:
        counts = [-value for value in counts]
    for level, entity_id, day in keys:
        key = (tenant_id, level, entity_id, day)
        bucket = daily.get(key)
        daily[key] = list(counts) if bucket is None else list(map(add, bucket, counts))


def _one_by_one(
    events: list[Any], stored: dict[uuid.UUID, StoredContribution], rows: list[Any], settings: MetricSettings
) -> dict[Any, list[Any]]:
    """The deltas as the consumer added them before it grouped them (the fourteenth round's
    ``_add_cells`` and ``_spread_over_grains``): each version's retraction, then its counts, to
    each cell in turn; each day's sums to its periods in the order the days were first met."""
    by_id = {event.activity_id: event for event in events}
    daily: dict[Any, list[Any]] = {}
    for row in rows:
        event = by_id[row[_FIELD["activity_id"]]]
        previous = stored.get(event.activity_id)
        if previous is not None:
            retracted = [previous.counts.get(column, 0) for column in COLUMNS]
            _add_cells(daily, event.tenant_id, _stored_keys(previous), retracted, -1)
        day = row[_FIELD["day"]]
        if day is not None:
            credited = dict(counted_entities(event))
            keys = [
                (level.value, entity, day) for level, entity in credited.items() if level in STORED_LEVELS
            ]
            counts = [row[_FIELD[column]] for column in COLUMNS]
            _add_cells(daily, event.tenant_id, keys, counts, 1)
    deltas: dict[Any, list[Any]] = {}
    for (tenant_id, level, entity_id, day), sums in daily.items():
        for grain in _GRAINS:
            key = (tenant_id, level, entity_id, grain.value, settings.calendar.period_of(day, grain).start)
            bucket = deltas.get(key)
            deltas[key] = list(sums) if bucket is None else list(map(add, bucket, sums))
    return deltas


def _batch(draw: random.Random) -> tuple[list[Any], dict[uuid.UUID, StoredContribution]]:
    """Versions of reps who change teams within a day, without a team or rep, of every status,
    some replacing a stored contribution (on another day, team or rep, or none)."""
    reps, teams = ["rep-1", "rep-2", "rep-3", None], ["team-1", "team-2", None]
    start = datetime(2026, 3, 28, 20, 0, tzinfo=UTC)  # a week, a month and a quarter end near
    events, stored = [], {}
    for n in range(400):
        kind = draw.choice(list(ActivityKind))
        activity_id = uuid.UUID(int=n + 1)
        event = attributed(
            activity_id=activity_id,
            version=draw.randint(1, 3),
            kind=kind,
            direction=draw.choice(list(Direction)),
            outcome=draw.choice(sorted(OUTCOMES_BY_KIND[kind])),
            occurred_at=start + timedelta(hours=draw.randrange(0, 24 * 9)),
            duration_seconds=draw.choice((0, 59, 60, 601, 3_601)),
            external_participants=draw.choice((0, 1, 2)),
            automated=draw.random() < 0.05,
            status=draw.choice(list(AttributionStatus)),
            rep_id=draw.choice(reps),
            team_id=draw.choice(teams),
            account_id=draw.choice(("acc-1", "acc-2", None)),
            deal_id=draw.choice(("deal-1", "deal-2", None)),
            tenant_id=draw.choice(("acme", "acme", "beta")),
        )
        events.append(event)
        if n % 3 == 0:
            counts: dict[str, float] = {column: draw.choice((0, 0, 1, 2, 30)) for column in COLUMNS}
            counts["score"] = draw.choice((0.0, 0.1, 1 / 3, 0.7, 2.5))
            stored[activity_id] = StoredContribution(
                version=draw.choice((0, 1)),
                rep_id=draw.choice(reps),
                team_id=draw.choice(teams),
                deal_id=None,
                account_id=None,
                status="attributed",
                day=draw.choice((None, date(2026, 3, 30), date(2026, 4, 1))),
                counts=counts,
            )
    return events, stored


def test_a_batch_adds_to_its_cells_what_adding_each_version_in_turn_added() -> None:
    """Also: each row is the row of its version alone, and credits what ``credited_entities``
    credits."""
    draw = random.Random(18)
    awkward = [0.1, 0.2, 0.3, 1 / 3, 0.7, 999.999, 1e-9]
    compared = 0
    for round_ in range(12):
        model = ScoringModel(
            version=2,
            activity_weights={activity: draw.choice(awkward) for activity in ScoredActivity},
            buyer_response_bonus=draw.choice(awkward),
            external_meeting_bonus=draw.choice(awkward),
        )
        settings = MetricSettings(
            time_zone=draw.choice(("UTC", "America/Los_Angeles", "Asia/Kolkata")),
            fiscal_year_start_month=draw.randint(1, 12),
        )
        events, stored = _batch(draw)
        if round_ % 4 == 0:
            stored = {}
        rows, deltas = plan_batch(events, stored, settings, model, now=datetime(2026, 4, 20, tzinfo=UTC))
        expected = _one_by_one(events, stored, rows, settings)
        assert {k: list(map(repr, v)) for k, v in deltas.items()} == {
            k: list(map(repr, v)) for k, v in expected.items()
        }
        compared += len(expected)
        # The rows credit what ``counted_entities`` credits.
        by_id = {event.activity_id: event for event in events}
        for row in rows:
            event = by_id[row[_FIELD["activity_id"]]]
            credited = {level.value: entity for level, entity in credited_entities(event)}
            for level in ("rep", "team", "deal", "account"):
                assert row[_FIELD[f"{level}_id"]] == credited.get(level), (level, event)
            assert (row[_FIELD["day"]] is not None) == (is_counted(event) and bool(credited))
            # Each version counts in a batch what it counts alone (a batch reuses the counts of
            # each shape of version).
            (alone,) = plan_batch([event], {}, settings, model, now=datetime(2026, 4, 20, tzinfo=UTC))[0]
            assert list(map(repr, row)) == list(map(repr, alone)), event
    assert compared > 1_000


def test_the_period_starts_kept_across_batches_are_each_fiscal_calendar_s_own() -> None:
    """``_PeriodsOfDay`` keeps each day's period starts from one batch to the next, by fiscal
    calendar: one batch planned under each fiscal start in turn, then again in the other order,
    adds to its cells what adding each version in turn gives under that calendar."""
    events, stored = _batch(random.Random(19))
    for month in [*range(1, 13), *range(12, 0, -1)]:
        settings = MetricSettings(time_zone="Asia/Kolkata", fiscal_year_start_month=month)
        rows, deltas = plan_batch(events, stored, settings, now=datetime(2026, 4, 20, tzinfo=UTC))
        expected = _one_by_one(events, stored, rows, settings)
        assert {k: list(map(repr, v)) for k, v in deltas.items()} == {
            k: list(map(repr, v)) for k, v in expected.items()
        }, month


def test_the_days_kept_per_fiscal_calendar_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(handlers, "_DAYS_KEPT", 3)
    monkeypatch.setattr(handlers, "_STARTS_BY_CALENDAR", {})
    settings = MetricSettings(fiscal_year_start_month=2)
    periods_of = handlers._PeriodsOfDay(settings)
    for day in range(1, 5):
        assert periods_of(date(2026, 3, day))[3] == ("quarter", date(2026, 2, 1))
    assert len(handlers._STARTS_BY_CALENDAR[(2, "end")]) == 4
    # Past the bound, the next batch starts that calendar's days afresh.
    assert handlers._PeriodsOfDay(settings)(date(2026, 5, 1))[3] == ("quarter", date(2026, 5, 1))
    assert list(handlers._STARTS_BY_CALENDAR[(2, "end")]) == [date(2026, 5, 1)]
