"""CSV on `Accept: text/csv` for every exportable read, the period calendar, deal names and range bounds."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from .gateway_support import Keys, activity_id, bearer

CSV = {"Accept": "text/csv"}


def _rows(response: httpx.Response) -> list[dict[str, str]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    return list(csv.DictReader(io.StringIO(response.text)))


async def _both(gateway: httpx.AsyncClient, key: str, path: str) -> tuple[Any, list[dict[str, str]]]:
    as_json = await gateway.get(path, headers=bearer(key))
    assert as_json.status_code == 200, as_json.text
    as_csv = await gateway.get(path, headers={**bearer(key), **CSV})
    return as_json.json(), _rows(as_csv)


async def test_leaderboard_csv_has_the_json_rows_and_the_period_on_each(
    gateway: httpx.AsyncClient, keys: Keys, db_engine: AsyncEngine
) -> None:
    # A name a spreadsheet would run as a formula is neutralised; a negative number is not.
    async with db_engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE ref_reps SET name = '=HYPERLINK(\"x\")' WHERE tenant_id = 'acme' AND rep_id = 'rep-3'"
            )
        )
    body, rows = await _both(gateway, keys.read, "/v1/leaderboard?period=week&date=2026-11-05")
    response = await gateway.get(
        "/v1/leaderboard?period=week&date=2026-11-05", headers={**bearer(keys.read), **CSV}
    )
    assert response.headers["content-disposition"] == 'attachment; filename="leaderboard.csv"'
    assert "etag" not in response.headers
    assert response.text.splitlines()[0] == (
        "granularity,period_start,metric,team_id,rank,rep_id,name,value,score,activities,"
        "team_percentile,change_vs_baseline,insufficient_data,goal,recency_score"
    )
    assert [(r["rank"], r["rep_id"], r["name"], r["value"]) for r in rows] == [
        ("1", "rep-2", "Ben Baker", "40.0"),
        ("2", "rep-1", "Ana Adams", "32.0"),
        ("3", "rep-4", "Dee Diaz", "25.0"),
        ("4", "rep-3", '\'=HYPERLINK("x")', "10.0"),
    ]
    entries = body["entries"]
    assert isinstance(entries, list)
    assert len(rows) == len(entries)
    assert {(r["period_start"], r["granularity"], r["metric"], r["team_id"]) for r in rows} == {
        ("2026-11-02", "week", "score", "")
    }
    assert rows[1]["change_vs_baseline"] == "0.6"
    assert rows[1]["team_percentile"] == "50.0"


async def test_csv_keeps_filters_errors_and_other_tenants_apart(
    gateway: httpx.AsyncClient, keys: Keys
) -> None:
    _, alpha = await _both(gateway, keys.read, "/v1/leaderboard?team_id=team-a&date=2026-11-02&limit=2")
    assert [r["rep_id"] for r in alpha] == ["rep-2", "rep-1"]
    bad = await gateway.get("/v1/leaderboard?metric=charisma", headers={**bearer(keys.read), **CSV})
    assert bad.status_code == 422
    assert bad.headers["content-type"] == "application/problem+json"
    assert bad.json()["errors"][0]["field"] == "metric"
    unauthenticated = await gateway.get("/v1/leaderboard", headers=CSV)
    assert unauthenticated.status_code == 401
    theirs = await gateway.get("/v1/leaderboard", headers={**bearer(keys.other_read), **CSV})
    assert [r["rep_id"] for r in _rows(theirs)] == ["rep-9"]
    # One object is not a table: CSV is refused by name; JSON stays the default.
    single = await gateway.get("/v1/reps/rep-1", headers={**bearer(keys.read), **CSV})
    assert single.status_code == 406
    assert single.headers["content-type"] == "application/problem+json"
    preferred = await gateway.get(
        "/v1/leaderboard", headers={**bearer(keys.read), "Accept": "text/csv;q=0.5, application/json"}
    )
    assert preferred.headers["content-type"] == "application/json"
    json_default = await gateway.get("/v1/leaderboard", headers={**bearer(keys.read), "Accept": "*/*"})
    assert json_default.headers["content-type"] == "application/json"
    assert json_default.headers["vary"] == "Accept, Authorization, Cookie"


async def test_score_series_and_funnel_as_csv(gateway: httpx.AsyncClient, keys: Keys) -> None:
    body, rows = await _both(
        gateway, keys.read, "/v1/reps/rep-1/scores?granularity=day&from=2026-11-01&to=2026-11-30"
    )
    assert [
        (r["rep_id"], r["period_start"], r["score"], r["counts.dials"], r["counts.connects"]) for r in rows
    ] == [
        ("rep-1", "2026-11-02", "20.0", "10", "4"),
        ("rep-1", "2026-11-03", "12.0", "6", "2"),
    ]
    periods = body["periods"]
    assert isinstance(periods, list)
    assert len(periods) == len(rows)
    _, team = await _both(
        gateway, keys.read, "/v1/teams/team-a/scores?granularity=week&from=2026-10-01&to=2026-11-30"
    )
    assert [(r["team_id"], r["period_start"], r["score"], r["counts.dials"]) for r in team] == [
        ("team-a", "2026-11-02", "72.0", "21")
    ]
    funnel, steps = await _both(gateway, keys.read, "/v1/funnel?rep_id=rep-1&from=2026-11-01&to=2026-11-30")
    assert [(r["step"], r["count"], r["ratio_to_previous"]) for r in steps] == [
        (s["step"], str(s["count"]), "" if s["ratio_to_previous"] is None else repr(s["ratio_to_previous"]))
        for s in funnel["steps"]
    ]
    assert {(r["rep_id"], r["from"], r["to"]) for r in steps} == {("rep-1", "2026-11-01", "2026-11-30")}


async def test_insights_as_csv(gateway: httpx.AsyncClient, keys: Keys) -> None:
    for route, expected in (
        ("bright-spots", [("rep-1", "Ana Adams", "top_of_team"), ("rep-2", "Ben Baker", "top_of_team")]),
        ("stale-deals", [("deal-2", "Buyer expansion", "no_recent_activity")]),
        ("at-risk-reps", [("rep-3", "Cy Chen", "below_team_median")]),
    ):
        body, rows = await _both(gateway, keys.read, f"/v1/insights/{route}")
        assert sorted((r["subject_id"], r["subject_name"], r["reasons"]) for r in rows) == expected, route
        items = body["items"]
        assert isinstance(items, list)
        assert len(items) == len(rows)
    _, stale = await _both(gateway, keys.read, "/v1/insights/stale-deals")
    assert stale[0]["details.days_quiet"] == "19"


async def test_activity_lists_as_csv_in_the_tenant_time_zone_with_a_next_link(
    gateway: httpx.AsyncClient, keys: Keys, db_engine: AsyncEngine
) -> None:
    async with db_engine.begin() as conn:
        await conn.execute(text("UPDATE tenants SET timezone = 'America/New_York' WHERE tenant_id = 'acme'"))
    body, rows = await _both(gateway, keys.read, "/v1/activities?rep_id=rep-1&limit=3")
    items = body["items"]
    assert isinstance(items, list)
    assert [r["activity_id"] for r in rows] == [i["activity_id"] for i in items]
    # Activity 6 happened at 15:00 UTC: 10:00 in New York (EST, UTC-5).
    assert rows[0]["activity_id"] == str(activity_id("acme", 6))
    assert rows[0]["occurred_at"] == "2026-11-02T10:00:00-05:00"
    assert json.loads(rows[0]["runners_up"]) == [{"deal_id": "deal-2", "score": 0.4}]
    response = await gateway.get("/v1/activities?rep_id=rep-1&limit=3", headers={**bearer(keys.read), **CSV})
    assert (
        response.headers["link"]
        == f'</v1/activities?rep_id=rep-1&limit=3&cursor={body["next_cursor"]}>; rel="next"'
    )
    timeline, deal_rows = await _both(gateway, keys.read, "/v1/deals/deal-1/activities?limit=50")
    assert len(deal_rows) == 7
    assert {(r["deal.deal_id"], r["deal.name"]) for r in deal_rows} == {("deal-1", "Buyer renewal")}
    assert [r["activity_id"] for r in deal_rows] == [i["activity_id"] for i in timeline["items"]]


async def test_deals_by_owner_and_by_id_carry_names(
    gateway: httpx.AsyncClient, keys: Keys, db_engine: AsyncEngine
) -> None:
    owned = await gateway.get("/v1/deals?owner_rep_id=rep-1", headers=bearer(keys.read))
    assert [(d["deal_id"], d["name"]) for d in owned.json()["items"]] == [
        ("deal-1", "Buyer renewal"),
        ("deal-2", "Buyer expansion"),
    ]
    named = await gateway.get("/v1/deals?ids=deal-3,deal-2,deal-x&limit=1", headers=bearer(keys.read))
    assert [d["name"] for d in named.json()["items"]] == ["Buyer expansion"]
    assert named.json()["next_cursor"] is not None
    theirs = await gateway.get("/v1/deals?ids=deal-1", headers=bearer(keys.other_read))
    assert theirs.json()["items"] == []
    _, reps = await _both(gateway, keys.read, "/v1/reps?team_id=team-a")
    assert [(r["rep_id"], r["name"], r["team_ids"]) for r in reps] == [
        ("rep-1", "Ana Adams", "team-a"),
        ("rep-2", "Ben Baker", "team-a"),
        ("rep-4", "Dee Diaz", "team-a"),
    ]
    _, teams = await _both(gateway, keys.read, "/v1/teams")
    assert [(r["team_id"], r["member_ids"]) for r in teams] == [
        ("team-a", "rep-1; rep-2; rep-4"),
        ("team-b", "rep-3"),
    ]
    _, accounts = await _both(gateway, keys.read, "/v1/accounts")
    assert [(r["account_id"], r["name"]) for r in accounts] == [("acc-1", "Buyer Inc")]
    # The relationship and the CRM's type came later: trailing columns, empty while unknown.
    async with db_engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO ref_accounts (tenant_id, account_id, name, relationship, account_type, updated_at) "
                "VALUES ('acme', 'acc-2', 'Reseller Co', 'partner', 'Channel Partner / Reseller', :t)"
            ),
            {"t": datetime(2026, 11, 1, tzinfo=UTC)},
        )
    csv_accounts = await gateway.get("/v1/accounts", headers={**bearer(keys.read), **CSV})
    assert csv_accounts.text.splitlines() == [
        "account_id,name,domains,updated_at,relationship,account_type",
        "acc-1,Buyer Inc,,2026-11-01T00:00:00+00:00,,",
        "acc-2,Reseller Co,,2026-11-01T00:00:00+00:00,partner,Channel Partner / Reseller",
    ]
    _, partners = await _both(gateway, keys.read, "/v1/accounts?relationship=partner")
    assert [(r["account_id"], r["relationship"]) for r in partners] == [("acc-2", "partner")]
    too_many = await gateway.get(
        "/v1/deals?ids=" + ",".join(f"d{i}" for i in range(101)), headers=bearer(keys.read)
    )
    assert too_many.status_code == 422
    assert too_many.json()["errors"][0]["field"] == "ids"


async def test_quarter_series_spans_eight_quarters_within_a_period_bound(
    gateway: httpx.AsyncClient, keys: Keys
) -> None:
    # The test gateway bounds day ranges at 120 days; quarters are bounded in periods instead.
    eight = await gateway.get(
        "/v1/reps/rep-1/scores?granularity=quarter&from=2025-01-01&to=2026-12-31", headers=bearer(keys.read)
    )
    assert eight.status_code == 200, eight.text
    days = await gateway.get(
        "/v1/reps/rep-1/scores?granularity=day&from=2025-01-01&to=2026-12-31", headers=bearer(keys.read)
    )
    assert days.status_code == 422
    assert days.json()["errors"] == [
        {"in": "query", "field": "from", "reason": "the range may span at most 120 days"}
    ]
    too_long = await gateway.get(
        "/v1/reps/rep-1/scores?granularity=week&from=2020-01-06&to=2026-12-31", headers=bearer(keys.read)
    )
    assert too_long.status_code == 422
    assert too_long.json()["errors"][0]["reason"] == "a week range may span at most 104 periods"
    backwards = await gateway.get(
        "/v1/teams/team-a/scores?granularity=month&from=2026-11-01&to=2026-10-01", headers=bearer(keys.read)
    )
    assert backwards.json()["errors"][0]["field"] == "to"


async def test_periods_follow_the_tenant_calendar(
    gateway: httpx.AsyncClient, keys: Keys, db_engine: AsyncEngine
) -> None:
    async with db_engine.begin() as conn:
        await conn.execute(text("UPDATE tenants SET fiscal_year_start_month = 2 WHERE tenant_id = 'acme'"))
    week = await gateway.get("/v1/periods?granularity=week&date=2026-11-05", headers=bearer(keys.read))
    body = week.json()
    assert (body["period"], body["previous"], body["next"]) == (
        {"start": "2026-11-02", "end": "2026-11-09", "label": "2026-W45", "in_progress": False},
        {"start": "2026-10-26", "end": "2026-11-02", "label": "2026-W44", "in_progress": False},
        {"start": "2026-11-09", "end": "2026-11-16", "label": "2026-W46", "in_progress": False},
    )
    assert body["time_zone"] == "UTC"
    quarter = await gateway.get("/v1/periods?granularity=quarter&date=2026-01-15", headers=bearer(keys.read))
    assert quarter.json()["period"]["label"] == "FY2026-Q4"
    assert (quarter.json()["period"]["start"], quarter.json()["period"]["end"]) == (
        "2025-11-01",
        "2026-02-01",
    )
    default = (await gateway.get("/v1/periods?granularity=day", headers=bearer(keys.read))).json()
    today = datetime.now(UTC).date()
    assert default["today"] == today.isoformat()
    assert default["period"] == default["last_complete"]
    assert default["period"]["start"] == (today - timedelta(days=1)).isoformat()
    assert (
        default["next"]
        == default["current"]
        == {
            "start": today.isoformat(),
            "end": (today + timedelta(days=1)).isoformat(),
            "label": today.isoformat(),
            "in_progress": True,
        }
    )
    current = await gateway.get(f"/v1/periods?granularity=month&date={today}", headers=bearer(keys.read))
    assert current.json()["next"] is None
    assert current.json()["period"]["in_progress"] is True
    assert date.fromisoformat(current.json()["period"]["start"]) == today.replace(day=1)
