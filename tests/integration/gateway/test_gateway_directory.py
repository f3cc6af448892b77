"""Reps and teams: lists paginated to the end, single objects, scores, and tenant isolation."""

from __future__ import annotations

from datetime import UTC, date, datetime

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from .gateway_support import Keys, bearer, pin_now, rollup


async def test_reps_paginate_to_the_end_with_exact_pages(gateway: httpx.AsyncClient, keys: Keys) -> None:
    seen: list[str] = []
    pages: list[int] = []
    url = "/v1/reps?limit=3"
    while True:
        response = await gateway.get(url, headers=bearer(keys.read))
        assert response.status_code == 200, response.text
        body = response.json()
        pages.append(len(body["items"]))
        seen += [rep["rep_id"] for rep in body["items"]]
        if body["next_cursor"] is None:
            break
        url = f"/v1/reps?limit=3&cursor={body['next_cursor']}"
    assert pages == [3, 1]
    assert seen == ["rep-1", "rep-2", "rep-3", "rep-4"]


async def test_rep_read_lists_current_teams(gateway: httpx.AsyncClient, keys: Keys) -> None:
    response = await gateway.get("/v1/reps/rep-4", headers=bearer(keys.read))
    assert response.status_code == 200
    # rep-4 left Beta for Alpha on 2026-11-05, before today.
    assert response.json() == {
        "rep_id": "rep-4",
        "name": "Dee Diaz",
        "active": True,
        "manager_id": None,
        "role": "Account Executive",
        "team_ids": ["team-a"],
        "phones": [],
        "phone_extensions": [],
    }
    members = await gateway.get("/v1/reps?team_id=team-a", headers=bearer(keys.read))
    assert [r["rep_id"] for r in members.json()["items"]] == ["rep-1", "rep-2", "rep-4"]


async def test_teams_list_and_read(gateway: httpx.AsyncClient, keys: Keys) -> None:
    page = await gateway.get("/v1/teams?limit=1", headers=bearer(keys.read))
    assert [t["team_id"] for t in page.json()["items"]] == ["team-a"]
    last = await gateway.get(
        f"/v1/teams?limit=1&cursor={page.json()['next_cursor']}", headers=bearer(keys.read)
    )
    assert [t["team_id"] for t in last.json()["items"]] == ["team-b"]
    assert last.json()["next_cursor"] is None
    team = await gateway.get("/v1/teams/team-a", headers=bearer(keys.read))
    assert team.json() == {
        "team_id": "team-a",
        "name": "Alpha",
        "parent_id": None,
        "member_ids": ["rep-1", "rep-2", "rep-4"],
    }


async def test_rep_scores_carry_period_stats(gateway: httpx.AsyncClient, keys: Keys) -> None:
    response = await gateway.get(
        "/v1/reps/rep-1/scores?granularity=week&from=2026-10-01&to=2026-11-30", headers=bearer(keys.read)
    )
    assert response.status_code == 200
    periods = response.json()["periods"]
    assert [(p["period_start"], p["score"], p["counts"]["dials"]) for p in periods] == [
        ("2026-10-26", 5.0, 3),
        ("2026-11-02", 32.0, 16),
    ]
    assert periods[0]["team_percentile"] is None
    assert periods[1]["team_percentile"] == 50.0
    assert periods[1]["baseline_score"] == 20.0
    assert periods[1]["change_vs_baseline"] == 0.6
    # Without a range the scores end at the latest period with data.
    days = await gateway.get("/v1/reps/rep-1/scores", headers=bearer(keys.read))
    assert [p["period_start"] for p in days.json()["periods"]] == ["2026-11-02", "2026-11-03"]


async def test_team_scores(gateway: httpx.AsyncClient, keys: Keys) -> None:
    response = await gateway.get("/v1/teams/team-a/scores?granularity=week", headers=bearer(keys.read))
    assert response.status_code == 200
    [week] = response.json()["periods"]
    assert week["period_start"] == "2026-11-02"
    assert week["score"] == 72.0
    assert week["counts"]["dials"] == 21
    assert week["team_percentile"] is None


async def test_score_parameters_are_validated_by_name(gateway: httpx.AsyncClient, keys: Keys) -> None:
    backwards = await gateway.get(
        "/v1/reps/rep-1/scores?from=2026-11-05&to=2026-11-01", headers=bearer(keys.read)
    )
    assert backwards.status_code == 422
    assert backwards.headers["content-type"] == "application/problem+json"
    assert backwards.json()["errors"] == [{"in": "query", "field": "to", "reason": "must not be before from"}]
    too_long = await gateway.get(
        "/v1/teams/team-a/scores?from=2026-01-01&to=2026-11-01", headers=bearer(keys.read)
    )
    assert too_long.status_code == 422
    assert too_long.json()["errors"][0]["field"] == "from"
    granularity = await gateway.get("/v1/reps/rep-1/scores?granularity=year", headers=bearer(keys.read))
    assert granularity.status_code == 422
    assert granularity.json()["errors"][0]["field"] == "granularity"
    limit = await gateway.get("/v1/reps?limit=101", headers=bearer(keys.read))
    assert limit.status_code == 422
    assert limit.json()["errors"] == [{"in": "query", "field": "limit", "reason": "must be at most 100"}]
    zero = await gateway.get("/v1/reps?limit=0", headers=bearer(keys.read))
    assert zero.json()["errors"][0]["field"] == "limit"
    cursor = await gateway.get("/v1/teams?cursor=not-a-cursor", headers=bearer(keys.read))
    assert cursor.status_code == 422
    assert cursor.json()["errors"][0]["field"] == "cursor"


async def test_another_tenants_objects_are_not_found(gateway: httpx.AsyncClient, keys: Keys) -> None:
    for path in (
        "/v1/reps/rep-9",
        "/v1/reps/rep-9/scores",
        "/v1/teams/team-z",
        "/v1/teams/team-z/scores",
    ):
        theirs = await gateway.get(path, headers=bearer(keys.read))
        missing = await gateway.get(
            path.replace("-9", "-404").replace("-z", "-404"), headers=bearer(keys.read)
        )
        assert theirs.status_code == missing.status_code == 404, path
        assert theirs.json()["title"] == missing.json()["title"] == "Not found"
    # And the other tenant sees only its own.
    reps = await gateway.get("/v1/reps", headers=bearer(keys.other_read))
    assert [r["rep_id"] for r in reps.json()["items"]] == ["rep-9"]


async def test_a_query_parameter_the_route_does_not_take_is_422_naming_it(
    gateway: httpx.AsyncClient, keys: Keys
) -> None:
    # The leaderboard takes `period`; `granularity` (what the score routes take) was ignored
    # and the weekly board came back as if it were the monthly one.
    board = await gateway.get("/v1/leaderboard?granularity=month", headers=bearer(keys.read))
    assert board.status_code == 422
    [error] = board.json()["errors"]
    assert (error["in"], error["field"]) == ("query", "granularity")
    assert error["reason"].startswith("unknown parameter; this route accepts: ")
    assert "period" in error["reason"]
    typo = await gateway.get("/v1/reps?limt=5&curser=x", headers=bearer(keys.read))
    assert typo.status_code == 422
    assert [e["field"] for e in typo.json()["errors"]] == ["curser", "limt"]
    # What a route declares (its dependencies' parameters included) is still accepted.
    assert (await gateway.get("/v1/leaderboard?period=month", headers=bearer(keys.read))).status_code == 200
    assert (await gateway.get("/v1/reps?limit=5", headers=bearer(keys.read))).status_code == 200


async def test_a_silent_reps_scores_end_on_the_tenants_today_not_the_servers(
    gateway: httpx.AsyncClient, keys: Keys, db_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rep with no figures has no latest period: without ``to`` the series ends on the tenant's
    today. Monday 9 November, 08:00 in Auckland, is Sunday 19:00 UTC: Monday's period is the last
    one shown and the 10th is not (before, the server's date ended it, any day but the tenant's)."""
    async with db_engine.begin() as conn:
        await conn.execute(text("UPDATE tenants SET timezone = 'Pacific/Auckland' WHERE tenant_id = 'acme'"))
        await conn.execute(
            text(
                "INSERT INTO ref_reps (tenant_id, rep_id, name, updated_at) VALUES ('acme', 'rep-new', 'Nia', now())"
            )
        )
        await conn.execute(
            text(
                "INSERT INTO ref_team_memberships (tenant_id, membership_id, rep_id, team_id, valid_from, "
                "updated_at) VALUES ('acme', 'm-new', 'rep-new', 'team-a', '2026-10-01', now())"
            )
        )
        for day in (date(2026, 11, 9), date(2026, 11, 10)):
            await rollup(conn, "acme", "rep", "rep-1", "day", day, 2.0, dials=2)
            # The metrics service's zero row of her silent day.
            await conn.execute(
                text(
                    "INSERT INTO rep_period_stats (tenant_id, granularity, period_start, rep_id, team_id, "
                    "score) VALUES ('acme', 'day', :d, 'rep-new', 'team-a', 0)"
                ),
                {"d": day},
            )

    pin_now(monkeypatch, datetime(2026, 11, 8, 19, tzinfo=UTC))
    response = await gateway.get("/v1/reps/rep-new/scores", headers=bearer(keys.read))
    assert response.status_code == 200, response.text
    periods = response.json()["periods"]
    assert periods[-1]["period_start"] == "2026-11-09"
    assert periods[-1]["score"] == 0.0


async def test_crm_ids_holding_a_slash_are_addressed_percent_encoded(
    gateway: httpx.AsyncClient, keys: Keys, db_engine: AsyncEngine
) -> None:
    """A CRM id may hold ``/`` (``006/ABC``). Sent as ``%2F`` it reached the router decoded, matched
    no route and answered 404 whatever the id; each route taking a rep, team or deal id in its
    path reads it whole now, scores and the CSV export included."""
    async with db_engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO ref_teams (tenant_id, team_id, name, updated_at) VALUES ('acme', '00G/EAST', 'East', now())"
            )
        )
        await conn.execute(
            text(
                "INSERT INTO ref_reps (tenant_id, rep_id, name, updated_at) VALUES ('acme', '005/ANA', 'Ana', now())"
            )
        )
        await conn.execute(
            text(
                "INSERT INTO ref_team_memberships (tenant_id, membership_id, rep_id, team_id, valid_from, "
                "updated_at) VALUES ('acme', 'm-slash', '005/ANA', '00G/EAST', '2026-01-01', now())"
            )
        )
        await conn.execute(
            text(
                "INSERT INTO ref_deals (tenant_id, deal_id, name, owner_rep_id, stage, is_closed, is_won, "
                "created_at, updated_at) VALUES ('acme', '006/ABC', 'Slash renewal', '005/ANA', 'proposal', "
                "false, false, '2026-10-01', now())"
            )
        )
        await rollup(conn, "acme", "rep", "005/ANA", "week", date(2026, 11, 2), 7.0, dials=4)
        await rollup(conn, "acme", "team", "00G/EAST", "week", date(2026, 11, 2), 7.0, dials=4)

    rep = await gateway.get("/v1/reps/005%2FANA", headers=bearer(keys.read))
    assert rep.status_code == 200, rep.text
    assert (rep.json()["rep_id"], rep.json()["team_ids"]) == ("005/ANA", ["00G/EAST"])
    team = await gateway.get("/v1/teams/00G%2FEAST", headers=bearer(keys.read))
    assert team.status_code == 200, team.text
    assert (team.json()["team_id"], team.json()["member_ids"]) == ("00G/EAST", ["005/ANA"])
    for path, key, entity in (
        ("/v1/reps/005%2FANA/scores", "rep_id", "005/ANA"),
        ("/v1/teams/00G%2FEAST/scores", "team_id", "00G/EAST"),
    ):
        scores = await gateway.get(
            f"{path}?granularity=week&from=2026-11-02&to=2026-11-02", headers=bearer(keys.read)
        )
        assert scores.status_code == 200, (path, scores.text)
        body = scores.json()
        assert body[key] == entity
        assert [(p["period_start"], p["score"], p["counts"]["dials"]) for p in body["periods"]] == [
            ("2026-11-02", 7.0, 4)
        ]
    timeline = await gateway.get("/v1/deals/006%2FABC/activities", headers=bearer(keys.read))
    assert timeline.status_code == 200, timeline.text
    assert (timeline.json()["deal"]["deal_id"], timeline.json()["deal"]["name"]) == (
        "006/ABC",
        "Slash renewal",
    )
    assert timeline.json()["items"] == []
    csv = await gateway.get(
        "/v1/reps/005%2FANA/scores?granularity=week&from=2026-11-02&to=2026-11-02",
        headers={**bearer(keys.read), "Accept": "text/csv"},
    )
    assert csv.status_code == 200, csv.text
    assert csv.headers["content-type"] == "text/csv; charset=utf-8"
    assert "005/ANA" in csv.text
    # The ids without a slash are read as before; a slash id of no rep is a 404 naming it whole.
    assert (await gateway.get("/v1/reps/rep-1/scores", headers=bearer(keys.read))).status_code == 200
    missing = await gateway.get("/v1/reps/005%2FNOBODY", headers=bearer(keys.read))
    assert missing.status_code == 404
    assert "005/NOBODY" in missing.json()["detail"]
    # A trailing slash is redirected to the path without it, as before CRM ids could hold a
    # slash; an empty id is no id (it read "/scores" as the rep's id).
    for path, target in (
        ("/v1/reps/rep-1/", "/v1/reps/rep-1"),
        ("/v1/reps/rep-1/scores/", "/v1/reps/rep-1/scores"),
    ):
        redirected = await gateway.get(path, headers=bearer(keys.read))
        assert redirected.status_code == 307, (path, redirected.text)
        assert httpx.URL(redirected.headers["location"]).path == target
    empty = await gateway.get("/v1/reps//scores", headers=bearer(keys.read))
    assert empty.status_code == 404
    # No route matched: no "rep '/scores' not found" detail.
    assert empty.json() == {
        "type": "about:blank",
        "title": "Not Found",
        "status": 404,
        "instance": "/v1/reps//scores",
    }
