"""Goals per role through the whole pipeline: CRM reps with roles -> attribution -> metrics -> gateway.

acme has two SDRs and an AE on one team, a role goal of 50 dials a week for SDRs and a team
goal of 30. globex has an SDR too, and no goal. Every activity is a dial; the refresher runs
as of Wednesday 25 November 2026 at noon UTC, so Monday and Tuesday are behind everybody
(2 of the week's 5 working days: 40 % of a weekly target is due).
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.settings import DatabaseSettings, KafkaSettings
from libs.common.tenancy import create_tenant
from libs.common.testing.stack import TEST_SECRET_KEY, InProcessStack, in_process_stack
from services.metrics.refresher import refresh_tenant

from .pipeline_support import drained

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
WEEK = date(2026, 11, 23)
LAST_WEEK = date(2026, 11, 16)
T0 = "2026-10-01T00:00:00Z"
PHONES = {"rep-s1": "+14155550201", "rep-s2": "+14155550202", "rep-ae": "+14155550203"}


def _rep(rep_id: str, role: str, updated_at: str = T0) -> dict[str, Any]:
    return {
        "entity_type": "rep",
        "id": rep_id,
        "name": rep_id,
        "phones": [PHONES[rep_id]],
        "role": role,
        "updated_at": updated_at,
    }


def _crm(team: str, reps: dict[str, str]) -> dict[str, Any]:
    return {
        "source": "crm",
        "entities": [
            {"entity_type": "team", "id": team, "name": team, "updated_at": T0},
            *(_rep(rep, role) for rep, role in reps.items()),
            *(
                {
                    "entity_type": "team_membership",
                    "id": f"m-{rep}",
                    "rep_id": rep,
                    "team_id": team,
                    "valid_from": "2026-01-01",
                    "updated_at": T0,
                }
                for rep in reps
            ),
        ],
    }


_numbers = itertools.count()


def _dials(rep: str, day: str, count: int) -> list[dict[str, Any]]:
    return [
        {
            "source": "dialer",
            "external_id": f"dial-{rep}-{day}-{n}",
            "kind": "call",
            "direction": "outbound",
            "outcome": "no_answer",
            "occurred_at": f"{day}T15:{n % 60:02d}:00Z",
            "participants": [
                {"phone": PHONES[rep], "role": "caller"},
                {"phone": f"+1212555{next(_numbers):04d}", "role": "callee"},
            ],
        }
        for n in range(count)
    ]


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def _post(client: httpx.AsyncClient, url: str, body: dict[str, Any], key: str) -> None:
    response = await client.post(url, json=body, headers=_auth(key))
    assert response.status_code == 202, response.text


@asynccontextmanager
async def _pipeline(
    kafka: KafkaSettings, database: DatabaseSettings, services: tuple[str, ...]
) -> AsyncIterator[InProcessStack]:
    async with in_process_stack(kafka, database, services) as stack:
        yield stack
        if "attribution" in services:
            await drained(kafka)


async def _refresh(engine: AsyncEngine) -> None:
    """The refresher's pass as of NOW (the in-process one ran on the wall clock, and is stopped)."""
    for tenant in ("acme", "globex"):
        async with engine.begin() as conn:
            await refresh_tenant(conn, tenant, NOW)


async def _attainment(engine: AsyncEngine, tenant: str) -> list[tuple[Any, ...]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT period_start, rep_id, goal_id, target, actual, attainment, expected_by_now, pace, "
                "days_left, complete FROM goal_attainment WHERE tenant_id = :t AND granularity = 'week' "
                "ORDER BY period_start, rep_id"
            ),
            {"t": tenant},
        )
        return [tuple(row) for row in rows]


def _goal(goal_id: str, target: float, actual: float, expected: float, days_left: int) -> dict[str, Any]:
    """A ``GoalAttainmentRead`` as the gateway serves it."""
    return {
        "target": target,
        "actual": actual,
        "attainment": actual / target,
        "expected_by_now": expected,
        "pace": actual / expected,
        "days_left": days_left,
        "complete": days_left == 0,
        "metric": "dials",
        "goal_id": goal_id,
    }


async def test_a_role_goal_measures_the_reps_holding_the_role_and_no_one_else(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    async with db_engine.begin() as conn:
        acme: dict[str, str] = (await create_tenant(conn, "acme", TEST_SECRET_KEY))["api_keys"]  # type: ignore[assignment]
        globex: dict[str, str] = (await create_tenant(conn, "globex", TEST_SECRET_KEY))["api_keys"]  # type: ignore[assignment]
    everything = ("ingest", "attribution", "metrics", "gateway")
    async with _pipeline(kafka_settings, database_settings, everything) as stack:
        await _post(
            stack.ingest,
            "/v1/crm/sync",
            _crm("team-a", {"rep-s1": "SDR", "rep-s2": "SDR", "rep-ae": "AE"}),
            acme["ingest"],
        )
        # globex's rep is an SDR with rep-s1's phone: nothing of acme's may reach it.
        await _post(stack.ingest, "/v1/crm/sync", _crm("team-g", {"rep-s1": "SDR"}), globex["ingest"])
        await drained(kafka_settings)  # a role goal names a role the tenant's reps hold: sync first
        for goal_id, goal in (
            (
                "sdr-dials",
                {"scope": "role", "role": "SDR", "period": "week", "metric": "dials", "target": 50},
            ),
            (
                "team-dials",
                {"scope": "team", "subject_id": "team-a", "period": "week", "metric": "dials", "target": 30},
            ),
        ):
            saved = await stack.gateway.put(f"/v1/goals/{goal_id}", json=goal, headers=_auth(acme["admin"]))
            assert saved.status_code == 200, saved.text
        activities = [
            *_dials("rep-s1", "2026-11-18", 55),  # last week
            *_dials("rep-s1", "2026-11-24", 8),  # this Tuesday
            *_dials("rep-s2", "2026-11-24", 20),
            *_dials("rep-ae", "2026-11-24", 4),
        ]
        await _post(stack.ingest, "/v1/events", {"activities": activities}, acme["ingest"])
        await _post(
            stack.ingest, "/v1/events", {"activities": _dials("rep-s1", "2026-11-24", 5)}, globex["ingest"]
        )

    await _refresh(db_engine)

    # SDRs against the role goal (50: 20 due by Wednesday), the AE against the team's (30: 12 due).
    assert await _attainment(db_engine, "acme") == [
        (LAST_WEEK, "rep-ae", "team-dials", 30.0, 0.0, 0.0, 30.0, 0.0, 0, True),
        (LAST_WEEK, "rep-s1", "sdr-dials", 50.0, 55.0, 1.1, 50.0, 1.1, 0, True),
        (LAST_WEEK, "rep-s2", "sdr-dials", 50.0, 0.0, 0.0, 50.0, 0.0, 0, True),
        (WEEK, "rep-ae", "team-dials", 30.0, 4.0, 4 / 30, 12.0, 4 / 12, 3, False),
        (WEEK, "rep-s1", "sdr-dials", 50.0, 8.0, 0.16, 20.0, 0.4, 3, False),
        (WEEK, "rep-s2", "sdr-dials", 50.0, 20.0, 0.4, 20.0, 1.0, 3, False),
    ]
    # acme's SDR goal never reaches globex's SDR.
    assert await _attainment(db_engine, "globex") == []

    async with in_process_stack(kafka_settings, database_settings, ("gateway",)) as stack:
        scores = await stack.gateway.get(
            f"/v1/reps/rep-s1/scores?granularity=week&from={LAST_WEEK}&to={WEEK}", headers=_auth(acme["read"])
        )
        assert scores.status_code == 200, scores.text
        assert [(p["period_start"], p["goals"]) for p in scores.json()["periods"]] == [
            (str(LAST_WEEK), [_goal("sdr-dials", 50.0, 55.0, 50.0, 0)]),
            (str(WEEK), [_goal("sdr-dials", 50.0, 8.0, 20.0, 3)]),
        ]
        board = await stack.gateway.get(
            f"/v1/leaderboard?metric=dials&period=week&date={WEEK}", headers=_auth(acme["read"])
        )
        assert {e["rep_id"]: (e["value"], e["goal"]) for e in board.json()["entries"]} == {
            "rep-s2": (20.0, _goal("sdr-dials", 50.0, 20.0, 20.0, 3)),
            "rep-s1": (8.0, _goal("sdr-dials", 50.0, 8.0, 20.0, 3)),
            "rep-ae": (4.0, _goal("team-dials", 30.0, 4.0, 12.0, 3)),
        }
        at_risk = {
            item["subject_id"]: item
            for item in (
                await stack.gateway.get("/v1/insights/at-risk-reps", headers=_auth(acme["read"]))
            ).json()["items"]
        }
        other_at_risk = await stack.gateway.get("/v1/insights/at-risk-reps", headers=_auth(globex["read"]))
    # Behind pace (below 0.6): rep-s1 on the SDR goal, rep-ae on the team's; rep-s2 is on pace.
    behind = {
        rep: item["details"]["goals"] for rep, item in at_risk.items() if "behind_goal" in item["reasons"]
    }
    assert behind == {
        "rep-s1": [
            {
                "metric": "dials",
                "goal_id": "sdr-dials",
                "target": 50.0,
                "actual": 8.0,
                "attainment": 0.16,
                "pace": 0.4,
                "days_left": 3,
                "why": "at 16 % of the dials goal with 3 days left",
            }
        ],
        "rep-ae": [
            {
                "metric": "dials",
                "goal_id": "team-dials",
                "target": 30.0,
                "actual": 4.0,
                "attainment": 4 / 30,
                "pace": 4 / 12,
                "days_left": 3,
                "why": "at 13 % of the dials goal with 3 days left",
            }
        ],
    }
    assert all("behind_goal" not in item["reasons"] for item in other_at_risk.json()["items"])

    # rep-s2 becomes an AE: the SDR goal follows the current role, in the past week too.
    async with _pipeline(kafka_settings, database_settings, ("ingest", "attribution", "metrics")) as stack:
        moved = {"source": "crm", "entities": [_rep("rep-s2", "AE", updated_at="2026-11-25T09:00:00Z")]}
        await _post(stack.ingest, "/v1/crm/sync", moved, acme["ingest"])
    await _refresh(db_engine)

    assert [row for row in await _attainment(db_engine, "acme") if row[1] == "rep-s2"] == [
        (LAST_WEEK, "rep-s2", "team-dials", 30.0, 0.0, 0.0, 30.0, 0.0, 0, True),
        (WEEK, "rep-s2", "team-dials", 30.0, 20.0, 20 / 30, 12.0, 20 / 12, 3, False),
    ]


async def test_a_team_goal_reaches_the_reps_of_a_team_deleted_below_it(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """A region's goal in a week a team below it was later dissolved. East and West are under
    region-na, which has a goal of 10 dials a week; rep-s1 is on East until Monday 23 November and
    on West from then. East is deleted that Monday (a bare tombstone, as a CRM sends a deleted
    record): it stays under region-na (docs/metrics.md), so last week rep-s1 ended on East is
    still measured against region-na's goal. Before, ``team_parents`` left deleted teams out: her
    chain stopped at East and last week had no goal for her."""
    async with db_engine.begin() as conn:
        acme: dict[str, str] = (await create_tenant(conn, "acme", TEST_SECRET_KEY))["api_keys"]  # type: ignore[assignment]
    teams = [("region-na", None), ("team-east", "region-na"), ("team-west", "region-na")]
    crm = {
        "source": "crm",
        "entities": [
            *(
                {"entity_type": "team", "id": t, "name": t, "parent_id": parent, "updated_at": T0}
                for t, parent in teams
            ),
            _rep("rep-s1", "AE"),
            *(
                {
                    "entity_type": "team_membership",
                    "id": membership,
                    "rep_id": "rep-s1",
                    "team_id": team,
                    "valid_from": valid_from,
                    "valid_to": valid_to,
                    "updated_at": T0,
                }
                for membership, team, valid_from, valid_to in (
                    ("m-east", "team-east", "2026-01-01", "2026-11-23"),
                    ("m-west", "team-west", "2026-11-23", None),
                )
            ),
        ],
    }
    dissolved = {
        "source": "crm",
        "entities": [
            {"entity_type": "team", "id": "team-east", "deleted": True, "updated_at": "2026-11-23T08:00:00Z"}
        ],
    }
    everything = ("ingest", "attribution", "metrics", "gateway")
    async with _pipeline(kafka_settings, database_settings, everything) as stack:
        await _post(stack.ingest, "/v1/crm/sync", crm, acme["ingest"])
        await drained(kafka_settings)
        goal = {"scope": "team", "subject_id": "region-na", "period": "week", "metric": "dials", "target": 10}
        saved = await stack.gateway.put("/v1/goals/region-dials", json=goal, headers=_auth(acme["admin"]))
        assert saved.status_code == 200, saved.text
        activities = [*_dials("rep-s1", "2026-11-18", 6), *_dials("rep-s1", "2026-11-24", 2)]
        await _post(stack.ingest, "/v1/events", {"activities": activities}, acme["ingest"])
        await _post(stack.ingest, "/v1/crm/sync", dissolved, acme["ingest"])

    async with db_engine.begin() as conn:
        await refresh_tenant(conn, "acme", NOW)

    # 10 a week: 4 due by Wednesday noon of this one (2 of 5 working days).
    assert await _attainment(db_engine, "acme") == [
        (LAST_WEEK, "rep-s1", "region-dials", 10.0, 6.0, 0.6, 10.0, 0.6, 0, True),
        (WEEK, "rep-s1", "region-dials", 10.0, 2.0, 0.2, 4.0, 0.5, 3, False),
    ]
    async with in_process_stack(kafka_settings, database_settings, ("gateway",)) as stack:
        scores = await stack.gateway.get(
            f"/v1/reps/rep-s1/scores?granularity=week&from={LAST_WEEK}&to={WEEK}", headers=_auth(acme["read"])
        )
        assert scores.status_code == 200, scores.text
        assert [(p["period_start"], p["goals"]) for p in scores.json()["periods"]] == [
            (str(LAST_WEEK), [_goal("region-dials", 10.0, 6.0, 10.0, 0)]),
            (str(WEEK), [_goal("region-dials", 10.0, 2.0, 4.0, 3)]),
        ]
