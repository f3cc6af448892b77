"""A manager's weekly digest over the seeded read models."""

from __future__ import annotations

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from .gateway_support import Keys, bearer


async def test_a_managers_weekly_digest_covers_their_reps_and_only_them(
    gateway: httpx.AsyncClient, keys: Keys, db_engine: AsyncEngine
) -> None:
    async with db_engine.begin() as conn:
        # rep-3 manages rep-4, who manages rep-1; rep-2 reports to nobody.
        await conn.execute(
            text("UPDATE ref_reps SET manager_id = 'rep-3' WHERE tenant_id = 'acme' AND rep_id = 'rep-4'")
        )
        await conn.execute(
            text("UPDATE ref_reps SET manager_id = 'rep-4' WHERE tenant_id = 'acme' AND rep_id = 'rep-1'")
        )

    response = await gateway.get(
        "/v1/digests/weekly?manager_id=rep-3&week=2026-11-04", headers=bearer(keys.read)
    )

    assert response.status_code == 200, response.text
    digest = response.json()
    assert digest["week_start"] == "2026-11-02"
    assert [
        (r["rep_id"], r["name"], r["team_id"], r["score"], r["team_percentile"]) for r in digest["reps"]
    ] == [
        ("rep-1", "Ana Adams", "team-a", 32.0, 50.0),
        ("rep-4", "Dee Diaz", "team-a", 25.0, None),
    ]
    assert [i["subject_id"] for i in digest["bright_spots"]] == ["rep-1"]
    assert digest["at_risk_reps"] == []
    reps = await gateway.get("/v1/reps?manager_id=rep-3", headers=bearer(keys.read))
    assert [r["rep_id"] for r in reps.json()["items"]] == ["rep-1", "rep-4"]
    unknown = await gateway.get("/v1/digests/weekly?manager_id=rep-9", headers=bearer(keys.read))
    assert unknown.status_code == 404  # another tenant's rep
