"""A tenant whose stored settings fail on a setting unrelated to its calendar (a privacy value
written by hand) still sees its own periods: the time zone and the fiscal year start are
validated columns, read as they are. Before, the dashboard's calendar fell back to UTC and a
January year for such a tenant: periods and quarters silently shifted."""

from __future__ import annotations

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from .gateway_support import Keys, bearer


async def test_an_unrelated_broken_setting_keeps_the_tenants_calendar(
    gateway: httpx.AsyncClient, keys: Keys, db_engine: AsyncEngine
) -> None:
    async with db_engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE tenants SET timezone = 'Pacific/Auckland', fiscal_year_start_month = 2, "
                "settings = CAST(:s AS jsonb) WHERE tenant_id = 'acme'"
            ),
            {"s": '{"privacy": {"keep_subjects": "sometimes"}}'},
        )
    answer = await gateway.get("/v1/periods?granularity=quarter&date=2026-11-05", headers=bearer(keys.read))
    assert answer.status_code == 200, answer.text
    read = answer.json()
    assert (read["time_zone"], read["period"]["start"], read["period"]["end"]) == (
        "Pacific/Auckland",
        "2026-11-01",
        "2027-02-01",
    )
