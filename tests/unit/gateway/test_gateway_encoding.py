"""The hot reads' direct JSON encoding gives byte for byte what their response models give."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from pydantic import BaseModel

from services.gateway import encoding
from services.gateway.schemas import (
    COUNTERS,
    ActivityPage,
    Granularity,
    LeaderboardMetric,
    LeaderboardRead,
    RepScoresRead,
    TeamScoresRead,
)


class _DriverUUID(uuid.UUID):
    """Stands in for asyncpg's own UUID subclass."""


def _model_bytes(model: type[BaseModel], payload: dict[str, Any]) -> bytes:
    return model.model_validate(payload).model_dump_json().encode()


# As goals.attainment_of returns it: keys in the model's order, no default left out.
_GOAL = {
    "target": 60.0,
    "actual": 21.0,
    "attainment": 0.35,
    "expected_by_now": 36.0,
    "pace": 0.5833333333333334,
    "days_left": 2,
    "complete": False,
    "metric": "dials",
    "goal_id": "dials-weekly",
}


def _period(day: date, score: float, percentile: float | None) -> dict[str, Any]:
    return {
        "period_start": day,
        "score": score,
        "counts": {c: i * 3 for i, c in enumerate(COUNTERS)},
        "team_percentile": percentile,
        "baseline_score": None if percentile is None else 6.5,
        "change_vs_baseline": None if percentile is None else -0.2308,
        "goals": [] if percentile is None else [_GOAL],
        "recency_score": None if percentile is None else 7.25,
    }


def test_score_series_match_the_models() -> None:
    periods = [_period(date(2026, 11, 2), 0.1 + 0.2, 0.75), _period(date(2026, 11, 3), 6.0, None)]
    rep = encoding.score_series("rep_id", "rep-1", Granularity.DAY, periods)
    team = encoding.score_series("team_id", "team-east", Granularity.WEEK, periods)
    assert encoding.encode(rep) == _model_bytes(RepScoresRead, rep)
    assert encoding.encode(team) == _model_bytes(TeamScoresRead, team)
    assert encoding.encode(rep).startswith(
        b'{"rep_id":"rep-1","granularity":"day","periods":[{"period_start":"2026-11-02","score":0.30000000000000004,'
    )


@pytest.mark.parametrize("period_start", [date(2026, 11, 2), None])
def test_leaderboard_matches_the_model(period_start: date | None) -> None:
    entries = [
        {
            "rank": rank,
            "rep_id": f"rep-{rank}",
            "name": "Ana Adams",
            "value": 42.5 / rank,
            "score": 1e-7 * rank,
            "activities": 3 - rank,
            "team_percentile": None if rank == 2 else 100.0,
            "change_vs_baseline": 0.12,
            "insufficient_data": None if rank == 1 else rank == 3,
            "goal": _GOAL if rank == 2 else None,
            "recency_score": None if rank == 3 else 3.5 / rank,
        }
        for rank in (1, 2, 3)
    ]
    payload = encoding.leaderboard(Granularity.WEEK, period_start, LeaderboardMetric.SCORE, None, entries)
    assert encoding.encode(payload) == _model_bytes(LeaderboardRead, payload)


def test_activity_page_matches_the_model_with_driver_uuids_and_microseconds() -> None:
    item = {
        "activity_id": _DriverUUID("0e0c2a9d-8f0b-4b5e-9a51-3f1f6f0a1b2c"),
        "source": "twilio",
        "kind": "call",
        "direction": "outbound",
        "outcome": "connected",
        "occurred_at": datetime(2026, 11, 2, 9, 30, 5, 120, tzinfo=UTC),
        "duration_seconds": 300,
        "status": "attributed",
        "rep_id": "rep-1",
        "team_id": None,
        "account_id": "acc-1",
        "deal_id": "deal-1",
        "secondary_deal_ids": ["deal-2"],
        "confidence": 0.9,
        "rule_path": "deal.contact_match",
        "runners_up": [{"deal_id": "deal-2", "confidence": 0.4}],
        "is_override": False,
        "deal_score": 0.82,
        "duplicate_of": None,
    }
    second = {
        **item,
        "occurred_at": datetime(2026, 11, 1, tzinfo=UTC),
        "duplicate_of": _DriverUUID("5b0f8a52-7d0e-4c7a-9b1a-2f6f4f3e9a10"),
    }
    payload = encoding.activity_page([item, second], "abc")
    encoded = encoding.encode(payload)
    assert encoded == _model_bytes(ActivityPage, payload)
    assert b'"activity_id":"0e0c2a9d-8f0b-4b5e-9a51-3f1f6f0a1b2c"' in encoded
    assert b'"occurred_at":"2026-11-02T09:30:05.000120Z"' in encoded
    assert b'"duplicate_of":"5b0f8a52-7d0e-4c7a-9b1a-2f6f4f3e9a10"' in encoded


def test_numerics_encode_as_floats_and_unknown_types_are_refused() -> None:
    assert encoding.encode({"score": Decimal("2.5")}) == b'{"score":2.5}'
    with pytest.raises(TypeError, match="not JSON serializable: object"):
        encoding.encode({"x": object()})
