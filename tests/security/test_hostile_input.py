"""Garbage never crashes a process: always a 4xx that names the problem, never a 5xx.

The time policy is documented in ``services/ingest/settings.py``: ``occurred_at`` more than
``INGEST_MAX_FUTURE_SKEW_SECONDS`` ahead, or older than ``INGEST_MAX_AGE_DAYS``, is refused.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.settings import DatabaseSettings, KafkaSettings
from libs.common.tenancy import create_tenant
from libs.common.testing.stack import TEST_SECRET_KEY, in_process_stack
from services.ingest.settings import IngestOptions

OPTIONS = IngestOptions()


def call(occurred_at: datetime | str, external_id: str = "c-1") -> dict[str, Any]:
    return {
        "source": "dialer",
        "external_id": external_id,
        "kind": "call",
        "direction": "outbound",
        "outcome": "connected",
        "occurred_at": occurred_at if isinstance(occurred_at, str) else occurred_at.isoformat(),
        "duration_seconds": 60,
        "participants": [{"phone": "+14155550001", "role": "caller"}],
    }


@pytest.fixture
async def ingest(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str]]]:
    async with db_engine.begin() as conn:
        tenant = await create_tenant(conn, "acme", TEST_SECRET_KEY)
    key = dict(tenant["api_keys"])["ingest"]  # type: ignore[call-overload]
    async with in_process_stack(kafka_settings, database_settings, services=("ingest",)) as stack:
        yield stack.ingest, {"Authorization": f"Bearer {key}"}


def nested(depth: int) -> bytes:
    return b'{"activities": ' + b"[" * depth + b"]" * depth + b"}"


async def test_garbage_bodies_get_a_4xx_and_the_service_keeps_serving(
    ingest: tuple[httpx.AsyncClient, dict[str, str]],
) -> None:
    client, auth = ingest
    json_type = {**auth, "content-type": "application/json"}
    cases: list[tuple[str, bytes, dict[str, str], int]] = [
        ("empty body", b"", json_type, 400),
        ("not JSON", b"{activities: nope", json_type, 400),
        ("invalid UTF-8", b'{"activities": ["\xff\xfe\xfd"]}', json_type, 400),
        ("lone surrogate", b'{"activities": ["\\ud800"]}', json_type, 400),
        ("deeply nested", nested(100_000), json_type, 400),
        ("nested within the parser's depth", nested(500), json_type, 422),
        ("huge", b'{"activities": ["' + b"x" * (OPTIONS.max_body_bytes + 10) + b'"]}', json_type, 413),
        ("a JSON array", b"[1, 2, 3]", json_type, 422),
        ("a JSON string", b'"activities"', json_type, 422),
        ("null", b"null", json_type, 422),
        ("a number as activities", b'{"activities": 12}', json_type, 422),
        ("NaN", b'{"activities": [NaN]}', json_type, 400),
        ("form body", b"activities=1", {**auth, "content-type": "application/x-www-form-urlencoded"}, 400),
        ("text body", b"hello", {**auth, "content-type": "text/plain"}, 400),
        ("xml body", b"<activities/>", {**auth, "content-type": "application/xml"}, 400),
    ]
    for name, body, headers, status in cases:
        response = await client.post("/v1/events", content=body, headers=headers)
        assert response.status_code == status, (name, response.status_code, response.text[:300])
        assert response.headers["content-type"].startswith("application/problem+json"), name
        assert response.json()["status"] == status, name
    assert (await client.get("/healthz")).status_code == 200


async def test_too_many_activities_in_one_batch_is_refused_with_413(
    ingest: tuple[httpx.AsyncClient, dict[str, str]],
) -> None:
    client, auth = ingest
    now = datetime.now(UTC)
    batch = [call(now, f"c-{i}") for i in range(OPTIONS.max_batch_activities + 1)]
    response = await client.post("/v1/events", json={"activities": batch}, headers=auth)
    assert response.status_code == 413, response.text


async def test_timestamps_outside_the_documented_window_are_refused_and_named(
    ingest: tuple[httpx.AsyncClient, dict[str, str]],
) -> None:
    client, auth = ingest
    now = datetime.now(UTC)
    skew = timedelta(seconds=OPTIONS.max_future_skew_seconds)
    age = timedelta(days=OPTIONS.max_age_days)
    refused = {
        "too far ahead": now + skew + timedelta(minutes=5),
        "too old": now - age - timedelta(days=1),
        "year 9999": datetime(9999, 12, 31, tzinfo=UTC),
        "year 1": datetime(1, 1, 1, tzinfo=UTC),
    }
    for name, at in refused.items():
        response = await client.post("/v1/events", json={"activities": [call(at)]}, headers=auth)
        assert response.status_code == 422, (name, response.text)
        assert response.json()["errors"][0]["field"] == "activities.0.occurred_at", name
    for name, raw in {
        "no zone": "2026-11-02T10:00:00",
        "nonsense": "yesterday",
        "huge year": "99999-01-01",
    }.items():
        response = await client.post("/v1/events", json={"activities": [call(raw)]}, headers=auth)
        assert response.status_code == 422, (name, response.text)
        assert response.json()["errors"][0]["field"].startswith("activities.0"), name
    inside = {
        "just ahead": now + skew - timedelta(minutes=5),
        "just inside the age": now - age + timedelta(days=1),
    }
    for name, at in inside.items():
        response = await client.post(
            "/v1/events", json={"activities": [call(at, f"ok-{name}")]}, headers=auth
        )
        assert response.status_code == 202, (name, response.text)


async def test_repeated_and_malformed_headers_are_refused_not_crashed(
    ingest: tuple[httpx.AsyncClient, dict[str, str]],
) -> None:
    client, auth = ingest
    body = b'{"activities": []}'
    key = auth["Authorization"]
    cases: list[tuple[str, list[tuple[str, str]], set[int]]] = [
        # The first credential is the one checked (here: valid, so the empty batch is refused).
        ("two Authorization headers", [("authorization", key), ("authorization", "Bearer other")], {422}),
        ("a wrong one first", [("authorization", "Bearer other"), ("authorization", key)], {401}),
        ("Basic scheme", [("authorization", "Basic dXNlcjpwYXNz")], {401}),
        ("Bearer without a token", [("authorization", "Bearer ")], {401}),
        ("token with spaces", [("authorization", "Bearer a b c")], {401}),
        ("very long token", [("authorization", "Bearer " + "a" * 20_000)], {401, 431}),
        (
            "two content types",
            [("authorization", key), ("content-type", "application/json"), ("content-type", "text/plain")],
            {400, 415, 422},
        ),
    ]
    for name, headers, statuses in cases:
        response = await client.post("/v1/events", content=body, headers=httpx.Headers(headers))
        assert response.status_code in statuses, (name, response.status_code, response.text[:300])
    assert (await client.get("/healthz")).status_code == 200
