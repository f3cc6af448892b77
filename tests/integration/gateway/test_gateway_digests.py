"""A manager's weekly digest, served as the metrics service stored it."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import orjson
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from .gateway_support import Keys, bearer, pin_now

DIGEST = {
    "manager_id": "rep-3",
    "week_start": "2026-11-02",
    "reps": [
        {
            "rep_id": "rep-4",
            "name": "Dee Diaz",
            "team_id": "team-a",
            "score": 25.0,
            "activities": 8,
            "team_percentile": None,
            "change_vs_baseline": None,
            "insufficient_data": True,
            "goals": [],
        }
    ],
    "at_risk_reps": [],
    "bright_spots": [],
    "stale_deals": [],
}


async def test_a_managers_stored_digest_is_served_for_any_day_of_its_week(
    gateway: httpx.AsyncClient, keys: Keys, db_engine: AsyncEngine
) -> None:
    async with db_engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO manager_digests (tenant_id, manager_id, week_start, digest) "
                "VALUES ('acme', 'rep-3', '2026-11-02', CAST(:d AS jsonb))"
            ),
            {"d": orjson.dumps(DIGEST).decode()},
        )

    response = await gateway.get(
        "/v1/digests/weekly?manager_id=rep-3&week=2026-11-04", headers=bearer(keys.read)
    )

    assert response.status_code == 200, response.text
    assert response.json() == DIGEST
    missing = await gateway.get(
        "/v1/digests/weekly?manager_id=rep-3&week=2026-10-28", headers=bearer(keys.read)
    )
    assert missing.status_code == 404
    unknown = await gateway.get("/v1/digests/weekly?manager_id=rep-9", headers=bearer(keys.read))
    assert unknown.status_code == 404  # another tenant's rep
    theirs = await gateway.get(
        "/v1/digests/weekly?manager_id=rep-3&week=2026-11-04", headers=bearer(keys.other_read)
    )
    assert theirs.status_code == 404


async def test_the_default_week_is_the_tenants_last_complete_one(
    gateway: httpx.AsyncClient, keys: Keys, db_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Monday 9 November, 08:00 in Auckland, is Sunday 19:00 UTC: the tenant's last complete week
    is the one of 2 November (the UTC date's, before 2026-12, that of 26 October: a 404, or the
    digest of the week before last)."""
    async with db_engine.begin() as conn:
        await conn.execute(text("UPDATE tenants SET timezone = 'Pacific/Auckland' WHERE tenant_id = 'acme'"))
        await conn.execute(
            text(
                "INSERT INTO manager_digests (tenant_id, manager_id, week_start, digest) "
                "VALUES ('acme', 'rep-3', '2026-11-02', CAST(:d AS jsonb))"
            ),
            {"d": orjson.dumps(DIGEST).decode()},
        )

    pin_now(monkeypatch, datetime(2026, 11, 8, 19, tzinfo=UTC))
    response = await gateway.get("/v1/digests/weekly?manager_id=rep-3", headers=bearer(keys.read))

    assert response.status_code == 200, response.text
    assert response.json()["week_start"] == "2026-11-02"
