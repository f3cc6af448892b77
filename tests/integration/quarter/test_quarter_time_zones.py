"""Period boundaries in the tenant's time zone, across a daylight-saving change, for two tenants on
one stack: New York and UTC receive the same CRM and the same dials at the same instants."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.settings import DatabaseSettings, KafkaSettings
from libs.common.testing.stack import in_process_stack
from tests.integration.polling import eventually
from tests.integration.quarter.quarter_support import (
    Tenant,
    activity,
    counted,
    dial,
    get,
    new_tenant,
    post,
    settle,
    sync,
)

PHONE = "+14155550001"

CRM: list[dict[str, Any]] = [
    {"entity_type": "team", "id": "team-east", "name": "East"},
    {"entity_type": "team", "id": "team-west", "name": "West"},
    {"entity_type": "rep", "id": "rep-ana", "name": "Ana", "phones": [PHONE]},
    # Ana moves to West on 1 November, a day of the tenant's calendar.
    {
        "entity_type": "team_membership",
        "id": "m1",
        "rep_id": "rep-ana",
        "team_id": "team-east",
        "valid_from": "2026-01-01",
        "valid_to": "2026-11-01",
    },
    {
        "entity_type": "team_membership",
        "id": "m2",
        "rep_id": "rep-ana",
        "team_id": "team-west",
        "valid_from": "2026-11-01",
    },
]

#: UTC instants; New York local time in the comment (EDT until 2026-11-01 02:00, EST after).
DIALS = {
    "q3-last": "2026-10-01T03:30:00Z",  # 30 Sep 23:30 EDT: the last half hour of Q3 in New York
    "oct-last": "2026-11-01T03:30:00Z",  # 31 Oct 23:30 EDT: still October (and East) in New York
    "dst-first": "2026-11-01T05:30:00Z",  # 1 Nov 01:30 EDT, the first 01:30
    "dst-second": "2026-11-01T06:30:00Z",  # 1 Nov 01:30 EST, the repeated hour
    "nov1-late": "2026-11-02T04:30:00Z",  # 1 Nov 23:30 EST: the 25-hour day's last hour
}


async def _job_done(stack: Any, tenant: Tenant, job_id: str) -> dict[str, Any]:
    async def probe() -> dict[str, Any]:
        response = await stack.gateway.get(f"/v1/settings/jobs/{job_id}", headers=tenant.admin)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    done: dict[str, Any] = await eventually(
        probe, lambda j: j["state"] in ("done", "failed"), 60, f"job {job_id}"
    )
    assert done["state"] == "done", done
    return done


async def test_the_last_half_hour_of_a_quarter_and_a_dst_day_land_in_the_tenants_periods(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    ny = await new_tenant(db_engine, "acme-ny", "America/New_York")
    utc = await new_tenant(db_engine, "acme-utc")
    async with in_process_stack(kafka_settings, database_settings) as stack:
        for tenant in (ny, utc):
            await sync(stack, db_engine, tenant, "2026-09-01T00:00:00Z", *CRM)
            await post(stack, tenant, *(dial(name, PHONE, at) for name, at in DIALS.items()))
        await settle(kafka_settings)

        teams = {
            t.tenant_id: {n: (await activity(stack, t, "dialer", n))["team"] for n in DIALS}
            for t in (ny, utc)
        }
        assert teams == {
            "acme-ny": {
                "q3-last": "team-east",
                "oct-last": "team-east",
                "dst-first": "team-west",
                "dst-second": "team-west",
                "nov1-late": "team-west",
            },
            "acme-utc": {
                "q3-last": "team-east",
                "oct-last": "team-west",
                "dst-first": "team-west",
                "dst-second": "team-west",
                "nov1-late": "team-west",
            },
        }
        rep = ("reps", "rep-ana")
        assert await counted(stack, ny, *rep, "quarter", "2026-07-01", "2026-10-01") == {
            "2026-07-01": 1,
            "2026-10-01": 4,
        }
        assert await counted(stack, utc, *rep, "quarter", "2026-07-01", "2026-10-01") == {"2026-10-01": 5}
        assert await counted(stack, ny, *rep, "month", "2026-09-01", "2026-11-01") == {
            "2026-09-01": 1,
            "2026-10-01": 1,
            "2026-11-01": 3,
        }
        assert await counted(stack, utc, *rep, "month", "2026-09-01", "2026-11-01") == {
            "2026-10-01": 1,
            "2026-11-01": 4,
        }
        assert await counted(stack, ny, *rep, "day", "2026-10-31", "2026-11-02") == {
            "2026-10-31": 1,
            "2026-11-01": 3,
        }
        assert await counted(stack, utc, *rep, "day", "2026-10-31", "2026-11-02") == {
            "2026-11-01": 3,
            "2026-11-02": 1,
        }
        assert await counted(stack, ny, "teams", "team-east", "month", "2026-09-01", "2026-11-01") == {
            "2026-09-01": 1,
            "2026-10-01": 1,
        }
        assert await counted(stack, utc, "teams", "team-east", "month", "2026-09-01", "2026-11-01") == {
            "2026-10-01": 1,
        }
        assert await counted(stack, ny, "teams", "team-west", "quarter", "2026-10-01", "2026-10-01") == {
            "2026-10-01": 3
        }
        board = "/v1/leaderboard?period=quarter&date=2026-09-30&metric=activities&team_id=team-east"
        assert [(e["rep_id"], e["value"]) for e in (await get(stack, ny, board))["entries"]] == [
            ("rep-ana", 1.0)
        ]
        # A day's activities are the tenant's local day's.
        day = "/v1/activities?from=2026-11-01&to=2026-11-01"
        assert [i["occurred_at"] for i in (await get(stack, ny, day))["items"]] == [
            "2026-11-02T04:30:00Z",
            "2026-11-01T06:30:00Z",
            "2026-11-01T05:30:00Z",
        ]
        assert [i["occurred_at"] for i in (await get(stack, utc, day))["items"]] == [
            "2026-11-01T06:30:00Z",
            "2026-11-01T05:30:00Z",
            "2026-11-01T03:30:00Z",
        ]
        periods = await get(stack, ny, "/v1/periods?granularity=quarter&date=2026-09-30")
        assert (periods["time_zone"], periods["period"]["start"], periods["period"]["end"]) == (
            "America/New_York",
            "2026-07-01",
            "2026-10-01",
        )

        # The UTC tenant moves to New York's time zone: its rollups are rebuilt on the new calendar
        # and a re-attribution reads its teams on it; the New York tenant's figures do not move.
        patched = await stack.gateway.patch(
            "/v1/settings/calendar", json={"time_zone": "America/New_York"}, headers=utc.admin
        )
        assert patched.status_code == 200, patched.text
        for job_id in patched.json()["jobs"]:
            await _job_done(stack, utc, job_id)
        run = await stack.gateway.post(
            "/v1/settings/reattribution", json={"since": "2026-09-01", "dry_run": False}, headers=utc.admin
        )
        assert run.status_code == 202, run.text
        await _job_done(stack, utc, run.json()["job_id"])
        await settle(kafka_settings)
        for tenant in (ny, utc):
            assert await counted(stack, tenant, *rep, "day", "2026-10-31", "2026-11-02") == {
                "2026-10-31": 1,
                "2026-11-01": 3,
            }
            assert await counted(
                stack, tenant, "teams", "team-east", "month", "2026-09-01", "2026-11-01"
            ) == {
                "2026-09-01": 1,
                "2026-10-01": 1,
            }
        assert (await activity(stack, utc, "dialer", "oct-last"))["team"] == "team-east"
