"""JSON answers of the hot reads, encoded straight from plain values.

The leaderboard, score series and activity pages return hundreds of rows whose values come
typed from PostgreSQL. Building a pydantic model per row and serializing it again cost more
than the query (a year of daily scores: about 2.5 ms of the 8 ms a request took). These routes
keep their ``*Read`` response model for the OpenAPI document and return the same bytes the
model would produce, encoded by orjson from dicts laid out in the model's field order;
tests/unit/gateway checks the bytes against the models.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import orjson
from fastapi import Response

from services.gateway.schemas import Granularity, LeaderboardMetric


def _fallback(value: object) -> object:
    # asyncpg returns its own UUID subclass, which orjson does not take for a UUID.
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"cannot encode {type(value).__name__}")


def encode(payload: dict[str, Any]) -> bytes:
    """``payload`` as its response model would encode it (UTC datetimes end in ``Z``, like pydantic's)."""
    return orjson.dumps(payload, default=_fallback, option=orjson.OPT_UTC_Z)


def json_response(payload: dict[str, Any]) -> Response:
    return Response(encode(payload), media_type="application/json")


def score_series(
    key: str, entity_id: str, granularity: Granularity, periods: list[dict[str, Any]]
) -> dict[str, Any]:
    """A ``RepScoresRead`` (``key`` = ``rep_id``) or ``TeamScoresRead`` (``team_id``)."""
    return {key: entity_id, "granularity": granularity.value, "periods": periods}


def leaderboard(
    granularity: Granularity,
    period_start: Any,
    metric: LeaderboardMetric,
    team_id: str | None,
    entries: list[dict[str, Any]],
) -> dict[str, Any]:
    """A ``LeaderboardRead``."""
    return {
        "granularity": granularity.value,
        "period_start": period_start,
        "metric": metric.value,
        "team_id": team_id,
        "entries": entries,
    }


def activity_page(items: list[dict[str, Any]], next_cursor: str | None) -> dict[str, Any]:
    """An ``ActivityPage``."""
    return {"items": items, "next_cursor": next_cursor}
