"""Team tree and management chain through the whole pipeline: ingest -> attribution -> metrics -> gateway.

A region with two teams, East (with a sub-team East-1) and West, and a rep who moved from
West to East on Wednesday 11 November. Every activity is a dial (score 1), so figures are
counts one can check by hand.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.settings import DatabaseSettings, KafkaSettings
from libs.common.tenancy import create_tenant
from libs.common.testing.stack import TEST_SECRET_KEY, in_process_stack
from services.metrics.adapters import digests
from services.metrics.domain.management import reports_of
from tests.integration.polling import poll_json, references_landed

T0 = "2026-10-01T00:00:00Z"
WEEK = "2026-11-09"


def _entities() -> list[dict[str, Any]]:
    teams = [
        ("team-region", None),
        ("team-east", "team-region"),
        ("team-west", "team-region"),
        ("team-east-1", "team-east"),
    ]
    reps = [
        ("rep-vp", None, "+14155550100"),
        ("rep-mgr", "rep-vp", "+14155550101"),
        ("rep-a", "rep-mgr", "+14155550102"),
        ("rep-c", "rep-mgr", "+14155550103"),
        ("rep-b", "rep-vp", "+14155550104"),
        ("rep-m", "rep-vp", "+14155550105"),
    ]
    memberships = [
        ("m-a", "rep-a", "team-east", "2026-01-01", None),
        ("m-c", "rep-c", "team-east-1", "2026-01-01", None),
        ("m-b", "rep-b", "team-west", "2026-01-01", None),
        ("m-m1", "rep-m", "team-west", "2026-01-01", "2026-11-11"),
        ("m-m2", "rep-m", "team-east", "2026-11-11", None),
    ]
    return [
        *(
            {"entity_type": "team", "id": t, "name": t, "parent_id": parent, "updated_at": T0}
            for t, parent in teams
        ),
        *(
            {
                "entity_type": "rep",
                "id": rep,
                "name": rep,
                "emails": [f"{rep}@seller.example"],
                "phones": [phone],
                "manager_id": manager,
                "updated_at": T0,
            }
            for rep, manager, phone in reps
        ),
        *(
            {
                "entity_type": "team_membership",
                "id": mid,
                "rep_id": rep,
                "team_id": team,
                "valid_from": start,
                "valid_to": end,
                "updated_at": T0,
            }
            for mid, rep, team, start, end in memberships
        ),
    ]


#: (rep phone, day, dials): rep-m dials 4 on Tuesday (West) and 3 on Thursday (East).
DIALS = [
    ("+14155550102", "2026-11-10", 5),
    ("+14155550103", "2026-11-12", 2),
    ("+14155550104", "2026-11-10", 6),
    ("+14155550105", "2026-11-10", 4),
    ("+14155550105", "2026-11-12", 3),
]


def _activities() -> list[dict[str, Any]]:
    return [
        {
            "source": "dialer",
            "external_id": f"dial-{phone}-{day}-{n}",
            "kind": "call",
            "direction": "outbound",
            "outcome": "no_answer",
            "occurred_at": f"{day}T15:{n:02d}:00Z",
            "participants": [
                {"phone": phone, "role": "caller"},
                {"phone": f"+1212555{n:04d}", "role": "callee"},
            ],
        }
        for phone, day, count in DIALS
        for n in range(count)
    ]


async def _get(client: httpx.AsyncClient, url: str, key: str) -> Any:
    response = await client.get(url, headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 200, response.text
    return response.json()


async def _week_score(client: httpx.AsyncClient, team: str, key: str) -> float:
    body = await _get(client, f"/v1/teams/{team}/scores?granularity=week&from={WEEK}&to={WEEK}", key)
    return float(body["periods"][0]["score"]) if body["periods"] else 0.0


async def _until_scored(client: httpx.AsyncClient, key: str, expected: float, deadline_s: float = 60) -> None:
    """The region's week reaches ``expected`` (the CRM and every dial have flowed through)."""
    await poll_json(
        client,
        f"/v1/teams/team-region/scores?granularity=week&from={WEEK}&to={WEEK}",
        {"Authorization": f"Bearer {key}"},
        lambda body: bool(body["periods"]) and body["periods"][0]["score"] == expected,
        deadline_s,
    )


def _board(body: dict[str, Any]) -> list[tuple[int, str, float]]:
    return [(e["rank"], e["rep_id"], e["value"]) for e in body["entries"]]


async def test_a_parent_team_sums_its_children_and_a_team_board_ranks_what_was_earned_there(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    async with db_engine.begin() as conn:
        tenant = await create_tenant(conn, "acme", TEST_SECRET_KEY)
    keys: dict[str, str] = tenant["api_keys"]  # type: ignore[assignment]
    ingest = {"Authorization": f"Bearer {keys['ingest']}"}
    read = keys["read"]
    async with in_process_stack(kafka_settings, database_settings) as stack:
        entities = _entities()
        crm = await stack.ingest.post(
            "/v1/crm/sync", json={"source": "crm", "entities": entities}, headers=ingest
        )
        assert crm.status_code == 202, crm.text
        await references_landed(db_engine, "acme", entities)
        posted = await stack.ingest.post("/v1/events", json={"activities": _activities()}, headers=ingest)
        assert posted.status_code == 202, posted.text
        await _until_scored(stack.gateway, read, expected=20.0)

        east = await _week_score(stack.gateway, "team-east", read)
        west = await _week_score(stack.gateway, "team-west", read)
        region = await _week_score(stack.gateway, "team-region", read)
        # East: a 5, m 3 (after the move), and East-1's c 2; West: b 6, m 4 (before the move).
        assert (east, west, region) == (10.0, 10.0, 20.0)
        assert region == east + west
        assert await _week_score(stack.gateway, "team-east-1", read) == 2.0

        board = f"/v1/leaderboard?period=week&date={WEEK}"
        assert _board(await _get(stack.gateway, f"{board}&team_id=team-east", read)) == [
            (1, "rep-a", 5.0),
            (2, "rep-m", 3.0),
            (3, "rep-c", 2.0),
        ]
        assert _board(await _get(stack.gateway, f"{board}&team_id=team-west", read)) == [
            (1, "rep-b", 6.0),
            (2, "rep-m", 4.0),
        ]
        month = await _get(
            stack.gateway, "/v1/leaderboard?period=month&date=2026-11-20&team_id=team-east", read
        )
        assert _board(month) == [(1, "rep-a", 5.0), (2, "rep-m", 3.0), (3, "rep-c", 2.0)]
        # Without a team a rep's whole work counts: rep-m's 7.
        assert _board(await _get(stack.gateway, f"{board}&manager_id=rep-vp", read)) == [
            (1, "rep-m", 7.0),
            (2, "rep-b", 6.0),
            (3, "rep-a", 5.0),
            (4, "rep-c", 2.0),
        ]
        assert _board(await _get(stack.gateway, f"{board}&manager_id=rep-mgr", read)) == [
            (1, "rep-a", 5.0),
            (2, "rep-c", 2.0),
        ]
        reps = await _get(stack.gateway, "/v1/reps?manager_id=rep-vp", read)
        assert [r["rep_id"] for r in reps["items"]] == ["rep-a", "rep-b", "rep-c", "rep-m", "rep-mgr"]
        funnel = await _get(
            stack.gateway, "/v1/funnel?team_id=team-region&from=2026-11-09&to=2026-11-15", read
        )
        assert funnel["steps"][0] == {"step": "dials", "count": 20, "ratio_to_previous": None}
        unknown = await stack.gateway.get(
            f"{board}&manager_id=rep-nobody", headers={"Authorization": f"Bearer {read}"}
        )
        assert unknown.status_code == 404

        # The digest rep-mgr gets for that week (computed as the refresher does once it is over).
        async with db_engine.connect() as conn:
            reports = reports_of(["rep-mgr"], await digests.management(conn, "acme"))["rep-mgr"]
            digest = await digests.weekly_digest(conn, "acme", "rep-mgr", reports, date(2026, 11, 9))
        assert digest["week_start"] == WEEK
        assert [(r["rep_id"], r["team_id"], r["score"], r["activities"]) for r in digest["reps"]] == [
            ("rep-a", "team-east", 5.0, 5),
            ("rep-c", "team-east-1", 2.0, 2),
        ]
