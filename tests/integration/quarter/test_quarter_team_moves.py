"""A rep moving team mid-quarter, the move reaching the CRM sync late (back-dated), as a sales
manager reads it on the team scores, leaderboards and activities."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.settings import DatabaseSettings, KafkaSettings
from libs.common.testing.stack import in_process_stack
from tests.integration.quarter.quarter_support import (
    activity,
    counted,
    dial,
    get,
    membership,
    new_tenant,
    post,
    settle,
    sync,
)

ANA_PHONE = "+14155550001"
BEN_PHONE = "+14155550002"
Q_START = "2026-10-01T00:00:00Z"


def _team(team_id: str) -> dict[str, object]:
    return {"entity_type": "team", "id": team_id, "name": team_id}


def _rep(rep_id: str, phone: str) -> dict[str, object]:
    return {
        "entity_type": "rep",
        "id": rep_id,
        "name": rep_id,
        "phones": [phone],
        "emails": [f"{rep_id}@seller.example"],
    }


async def test_a_move_back_dated_after_the_fact_moves_only_the_work_after_its_effective_day(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """Ana is on East from January. She dials 2 in October and 3 on 20 November. On 1 December
    the admin records that she moved to West on 16 November (her East membership ended that day,
    a West one starting it): her November dials move to West, her October ones stay East's, and
    her December dials are West's. Team quarter, month and leaderboards follow; Ana's own totals
    do not move."""
    tenant = await new_tenant(db_engine)
    async with in_process_stack(kafka_settings, database_settings) as stack:
        await sync(
            stack,
            db_engine,
            tenant,
            Q_START,
            _team("team-east"),
            _team("team-west"),
            _rep("rep-ana", ANA_PHONE),
            _rep("rep-ben", BEN_PHONE),
            membership("m-ana-east", "rep-ana", "team-east", "2026-01-01"),
            membership("m-ben-west", "rep-ben", "team-west", "2026-01-01"),
        )
        await post(
            stack,
            tenant,
            dial("oct-1", ANA_PHONE, "2026-10-05T15:00:00Z"),
            dial("oct-2", ANA_PHONE, "2026-10-06T15:00:00Z"),
            dial("nov-15", ANA_PHONE, "2026-11-15T23:59:00Z"),  # the day before the move: East
            *(dial(f"nov-{n}", ANA_PHONE, f"2026-11-20T1{n}:00:00Z") for n in range(3)),
            dial("ben-1", BEN_PHONE, "2026-11-20T15:00:00Z"),
        )
        await settle(kafka_settings)
        assert (await activity(stack, tenant, "dialer", "nov-0"))["team"] == "team-east"
        # 1 December: the move, effective 16 November.
        await sync(
            stack,
            db_engine,
            tenant,
            "2026-12-01T09:00:00Z",
            membership("m-ana-east", "rep-ana", "team-east", "2026-01-01", "2026-11-16"),
            membership("m-ana-west", "rep-ana", "team-west", "2026-11-16"),
        )
        await post(stack, tenant, dial("dec-1", ANA_PHONE, "2026-12-02T15:00:00Z"))
        await settle(kafka_settings)

        seen = {n: await activity(stack, tenant, "dialer", n) for n in ("oct-1", "nov-15", "nov-0", "dec-1")}
        assert {n: (a["rep"], a["team"], a["version"]) for n, a in seen.items()} == {
            "oct-1": ("rep-ana", "team-east", 1),
            "nov-15": ("rep-ana", "team-east", 1),
            "nov-0": ("rep-ana", "team-west", 2),
            "dec-1": ("rep-ana", "team-west", 1),
        }
        q = ("quarter", "2026-10-01", "2026-10-01")
        assert await counted(stack, tenant, "teams", "team-east", *q) == {"2026-10-01": 3}
        assert await counted(stack, tenant, "teams", "team-west", *q) == {"2026-10-01": 5}
        assert await counted(stack, tenant, "reps", "rep-ana", *q) == {"2026-10-01": 7}
        months = ("month", "2026-10-01", "2026-12-01")
        assert await counted(stack, tenant, "teams", "team-east", *months) == {
            "2026-10-01": 2,
            "2026-11-01": 1,
        }
        assert await counted(stack, tenant, "teams", "team-west", *months) == {
            "2026-11-01": 4,
            "2026-12-01": 1,
        }
        board = "/v1/leaderboard?period=quarter&date=2026-11-20&metric=activities"
        east = await get(stack, tenant, f"{board}&team_id=team-east")
        west = await get(stack, tenant, f"{board}&team_id=team-west")
        assert [(e["rep_id"], e["value"]) for e in east["entries"]] == [("rep-ana", 3.0)]
        assert [(e["rep_id"], e["value"]) for e in west["entries"]] == [("rep-ana", 4.0), ("rep-ben", 1.0)]
        listed = await get(stack, tenant, "/v1/activities?team_id=team-west&rep_id=rep-ana")
        assert sorted(i["occurred_at"][:10] for i in listed["items"]) == [
            "2026-11-20",
            "2026-11-20",
            "2026-11-20",
            "2026-12-02",
        ]
        assert (await get(stack, tenant, "/v1/reps/rep-ana"))["team_ids"] == ["team-west"]
