"""Activity goals through the admin API, and the attainment the metrics service measured, read back."""

from __future__ import annotations

import asyncio
from datetime import date

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.gateway.adapters.goals import lock_goals
from tests.integration.polling import eventually, sessions_waiting

from .gateway_support import Keys, bearer

DIALS_GOAL = {"scope": "team", "subject_id": "team-a", "period": "week", "metric": "dials", "target": 60}


async def test_goals_are_set_listed_replaced_and_removed_by_admins_only(
    gateway: httpx.AsyncClient, keys: Keys
) -> None:
    refused = await gateway.put("/v1/goals/alpha-dials", json=DIALS_GOAL, headers=bearer(keys.read))
    assert refused.status_code == 403

    saved = await gateway.put("/v1/goals/alpha-dials", json=DIALS_GOAL, headers=bearer(keys.admin))
    assert saved.status_code == 200, saved.text
    assert {k: saved.json()[k] for k in ("goal_id", "scope", "subject_id", "period", "metric", "target")} == {
        "goal_id": "alpha-dials",
        **DIALS_GOAL,
    }
    assert saved.json()["role"] is None
    replaced = await gateway.put(
        "/v1/goals/alpha-dials", json={**DIALS_GOAL, "target": 55}, headers=bearer(keys.admin)
    )
    assert replaced.json()["target"] == 55.0
    listed = (await gateway.get("/v1/goals", headers=bearer(keys.read))).json()
    assert [(g["goal_id"], g["target"]) for g in listed["items"]] == [("alpha-dials", 55.0)]
    # One tenant never sees another's goals.
    assert (await gateway.get("/v1/goals", headers=bearer(keys.other_read))).json() == {"items": []}

    assert (await gateway.delete("/v1/goals/alpha-dials", headers=bearer(keys.admin))).status_code == 204
    assert (await gateway.delete("/v1/goals/alpha-dials", headers=bearer(keys.admin))).status_code == 404
    assert (await gateway.get("/v1/goals", headers=bearer(keys.read))).json() == {"items": []}


async def test_bad_goals_are_refused_naming_the_field(gateway: httpx.AsyncClient, keys: Keys) -> None:
    for body, field in (
        ({**DIALS_GOAL, "subject_id": "team-z"}, "subject_id"),
        ({**DIALS_GOAL, "scope": "rep", "subject_id": "rep-9"}, "subject_id"),  # another tenant's rep
        ({**DIALS_GOAL, "metric": "charisma"}, "metric"),
        ({**DIALS_GOAL, "target": -1}, "target"),
        ({**DIALS_GOAL, "period": "fortnight"}, "period"),
        ({**DIALS_GOAL, "scope": "rep", "subject_id": None}, "subject_id"),
        ({**DIALS_GOAL, "scope": "role", "subject_id": None}, "role"),
        ({**DIALS_GOAL, "scope": "role"}, "subject_id"),  # a role goal names a role, not a team
        ({**DIALS_GOAL, "role": "SDR"}, "role"),
    ):
        response = await gateway.put("/v1/goals/g1", json=body, headers=bearer(keys.admin))
        assert response.status_code == 422, body
        assert response.json()["errors"][0]["field"] == field, response.json()
    bad_id = await gateway.put("/v1/goals/bad%20id", json=DIALS_GOAL, headers=bearer(keys.admin))
    assert bad_id.status_code == 422


async def test_a_goal_names_no_dated_period_so_none_can_be_set_for_a_closed_one(
    gateway: httpx.AsyncClient, keys: Keys
) -> None:
    """A goal is a recurring target per day, week, month or quarter, not a target of one dated
    period: a body naming a period's date (an ISO week, a start date) is refused naming the field,
    and nothing is saved. A goal set or changed applies to the last complete period too from the
    next refresh (docs/api.md, "Activity goals": back-filling it is allowed; the metrics test
    ``test_goal_attainment_and_pace_are_exact_and_a_rep_behind_pace_is_at_risk`` measures it)."""
    for body, field, reason in (
        (
            {**DIALS_GOAL, "period": "2026-W44"},
            "period",
            "Input should be 'day', 'week', 'month' or 'quarter'",
        ),
        ({**DIALS_GOAL, "period_start": "2026-10-26"}, "period_start", "Extra inputs are not permitted"),
        ({**DIALS_GOAL, "target": 0.0001}, "target", "Input should be greater than or equal to 0.001"),
    ):
        response = await gateway.put("/v1/goals/old-week", json=body, headers=bearer(keys.admin))
        assert response.status_code == 422, body
        assert [(e["field"], e["reason"]) for e in response.json()["errors"]] == [(field, reason)]
    assert (await gateway.get("/v1/goals", headers=bearer(keys.read))).json() == {"items": []}


async def test_attainment_shows_in_the_rep_scores_and_the_leaderboard(
    gateway: httpx.AsyncClient, keys: Keys, db_engine: AsyncEngine
) -> None:
    async with db_engine.begin() as conn:  # what the metrics service's refresher writes
        await conn.execute(
            text(
                "INSERT INTO goal_attainment (tenant_id, granularity, period_start, rep_id, metric, goal_id, target, "
                "actual, attainment, expected_by_now, pace, days_left, complete) VALUES "
                "('acme', 'week', '2026-11-02', 'rep-1', 'dials', 'alpha-dials', 60, 16, 0.2667, 36, 0.4444, 2, false)"
            )
        )
    goal = {
        "metric": "dials",
        "goal_id": "alpha-dials",
        "target": 60.0,
        "actual": 16.0,
        "attainment": 0.2667,
        "expected_by_now": 36.0,
        "pace": 0.4444,
        "days_left": 2,
        "complete": False,
    }
    scores = (
        await gateway.get("/v1/reps/rep-1/scores?granularity=week&from=2026-10-26", headers=bearer(keys.read))
    ).json()
    assert [(p["period_start"], p["goals"]) for p in scores["periods"]] == [
        ("2026-10-26", []),
        ("2026-11-02", [goal]),
    ]
    board = (
        await gateway.get("/v1/leaderboard?metric=dials&date=2026-11-02", headers=bearer(keys.read))
    ).json()
    assert {e["rep_id"]: e["goal"] for e in board["entries"]} == {
        "rep-3": None,
        "rep-1": goal,
        "rep-4": None,
        "rep-2": None,
    }
    assert date.fromisoformat(board["period_start"]) == date(2026, 11, 2)


async def test_a_role_goal_names_a_role_the_tenants_reps_hold(gateway: httpx.AsyncClient, keys: Keys) -> None:
    body = {"scope": "role", "role": "SDR", "period": "week", "metric": "dials", "target": 50}
    saved = await gateway.put("/v1/goals/sdr-dials", json=body, headers=bearer(keys.admin))
    assert saved.status_code == 200, saved.text
    assert {k: saved.json()[k] for k in ("goal_id", "scope", "subject_id", "role", "target")} == {
        "goal_id": "sdr-dials",
        "scope": "role",
        "subject_id": None,
        "role": "SDR",
        "target": 50.0,
    }
    listed = (await gateway.get("/v1/goals", headers=bearer(keys.read))).json()["items"]
    assert [(g["goal_id"], g["scope"], g["role"]) for g in listed] == [("sdr-dials", "role", "SDR")]

    # A role none of acme's reps holds (globex's rep-9 is a BDR: another tenant's roles count for nothing).
    for role in ("sdr", "BDR"):
        refused = await gateway.put("/v1/goals/typo", json={**body, "role": role}, headers=bearer(keys.admin))
        assert refused.status_code == 422, refused.text
        assert refused.json()["errors"] == [
            {
                "in": "body",
                "field": "role",
                "reason": f"no rep holds the role {role!r} (roles held: 'Account Executive', 'SDR')",
            }
        ]
    assert (await gateway.get("/v1/goals", headers=bearer(keys.other_read))).json() == {"items": []}


async def test_setting_or_removing_a_goal_flags_only_that_tenant_for_the_next_refresh(
    gateway: httpx.AsyncClient, keys: Keys, db_engine: AsyncEngine
) -> None:
    # A goal landed at the next full refresh (15 minutes): the refresher now takes it on its
    # next tick, as it does after a batch of activities.
    async def dirty() -> dict[str, bool]:
        async with db_engine.begin() as conn:
            rows = await conn.execute(text("SELECT tenant_id, dirty_since FROM metric_refresh_state"))
            return {row.tenant_id: row.dirty_since is not None for row in rows}

    async with db_engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO metric_refresh_state (tenant_id, refreshed_at, dirty_since) "
                "VALUES ('acme', now(), NULL), ('globex', now(), NULL) "
                "ON CONFLICT (tenant_id) DO UPDATE SET dirty_since = NULL, refreshed_at = now()"
            )
        )
    saved = await gateway.put("/v1/goals/beta-dials", json=DIALS_GOAL, headers=bearer(keys.admin))
    assert saved.status_code == 200, saved.text
    assert await dirty() == {"acme": True, "globex": False}

    async with db_engine.begin() as conn:
        await conn.execute(text("UPDATE metric_refresh_state SET dirty_since = NULL"))
    assert (await gateway.delete("/v1/goals/beta-dials", headers=bearer(keys.admin))).status_code == 204
    assert await dirty() == {"acme": True, "globex": False}


async def test_a_tenant_holds_at_most_ten_thousand_goals(
    gateway: httpx.AsyncClient, keys: Keys, db_engine: AsyncEngine
) -> None:
    """Goals were unbounded: a script could store millions, each read by the metrics refresher at
    every refresh and listed whole by ``GET /v1/goals``, on the process and pool every tenant
    shares. A new goal past 10,000 is refused naming ``goal_id``; replacing one is not."""
    async with db_engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO activity_goals (tenant_id, goal_id, scope, subject_id, period, metric, target) "
                "SELECT 'acme', 'g-' || n, 'team', 'team-a', 'week', 'dials', n FROM generate_series(1, 10000) AS n"
            )
        )
    refused = await gateway.put("/v1/goals/one-more", json=DIALS_GOAL, headers=bearer(keys.admin))
    assert refused.status_code == 422, refused.text
    assert refused.json()["errors"] == [
        {
            "in": "body",
            "field": "goal_id",
            "reason": "the tenant holds 10000 goals, the most it may: remove one or replace one (the same goal_id)",
        }
    ]
    replaced = await gateway.put("/v1/goals/g-7", json=DIALS_GOAL, headers=bearer(keys.admin))
    assert replaced.status_code == 200, replaced.text
    # Globex's own goals are its own count.
    theirs = await gateway.put(
        "/v1/goals/one-more", json={**DIALS_GOAL, "subject_id": "team-z"}, headers=bearer(keys.other_admin)
    )
    assert theirs.status_code == 200, theirs.text


async def test_two_new_goals_put_at_once_never_pass_the_cap_together(
    gateway: httpx.AsyncClient, keys: Keys, db_engine: AsyncEngine
) -> None:
    """The cap counted, then inserted: two PUTs at once with 9,999 held each counted 9,999 and the
    tenant held 10,001. Each now counts under the tenant's goals lock, held until it commits."""
    async with db_engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO activity_goals (tenant_id, goal_id, scope, subject_id, period, metric, target) "
                "SELECT 'acme', 'g-' || n, 'team', 'team-a', 'week', 'dials', n FROM generate_series(1, 9999) AS n"
            )
        )

    async with db_engine.connect() as other, other.begin():
        await lock_goals(other, "acme")  # both PUTs line up behind it, then run one at a time
        puts = [
            asyncio.create_task(
                gateway.put(f"/v1/goals/{goal_id}", json=DIALS_GOAL, headers=bearer(keys.admin))
            )
            for goal_id in ("one-more", "two-more")
        ]
        await eventually(
            lambda: sessions_waiting(db_engine, "advisory"),
            lambda waiting: waiting == 2 or all(put.done() for put in puts),
            30,
            "both PUTs waiting",
        )
    statuses = sorted(response.status_code for response in await asyncio.gather(*puts))
    assert statuses == [200, 422]
    async with db_engine.connect() as conn:
        assert (
            await conn.scalar(text("SELECT count(*) FROM activity_goals WHERE tenant_id = 'acme'")) == 10_000
        )
