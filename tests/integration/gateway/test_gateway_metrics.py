"""Leaderboard, funnel and insights over the seeded rollups."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from .gateway_support import Keys, bearer


def _ranking(body: dict[str, object]) -> list[tuple[int, str, float]]:
    entries = body["entries"]
    assert isinstance(entries, list)
    return [(e["rank"], e["rep_id"], e["value"]) for e in entries]


async def test_leaderboard_ranks_the_period_containing_the_date(
    gateway: httpx.AsyncClient, keys: Keys
) -> None:
    response = await gateway.get("/v1/leaderboard?period=week&date=2026-11-05", headers=bearer(keys.read))
    assert response.status_code == 200
    body = response.json()
    assert body["period_start"] == "2026-11-02"
    assert _ranking(body) == [(1, "rep-2", 40.0), (2, "rep-1", 32.0), (3, "rep-4", 25.0), (4, "rep-3", 10.0)]
    assert body["entries"][1] == {
        "rank": 2,
        "rep_id": "rep-1",
        "name": "Ana Adams",
        "value": 32.0,
        "score": 32.0,
        "activities": 16,
        "team_percentile": 50.0,
        "change_vs_baseline": 0.6,
        "insufficient_data": False,
        "goal": None,
        "recency_score": None,
    }
    earlier = await gateway.get("/v1/leaderboard?period=week&date=2026-11-01", headers=bearer(keys.read))
    assert earlier.json()["period_start"] == "2026-10-26"
    # Reps 3 and 4 were on their teams that week and did nothing: they rank last, at zero.
    assert _ranking(earlier.json()) == [
        (1, "rep-1", 5.0),
        (2, "rep-2", 3.0),
        (3, "rep-3", 0.0),
        (3, "rep-4", 0.0),
    ]
    assert earlier.json()["entries"][3] == {
        "rank": 3,
        "rep_id": "rep-4",
        "name": "Dee Diaz",
        "value": 0.0,
        "score": 0.0,
        "activities": 0,
        "team_percentile": None,
        "change_vs_baseline": None,
        "insufficient_data": None,
        "goal": None,
        "recency_score": None,
    }
    latest = await gateway.get("/v1/leaderboard", headers=bearer(keys.read))
    assert latest.json()["period_start"] == "2026-11-02"


async def test_leaderboard_by_team_metric_and_limit(gateway: httpx.AsyncClient, keys: Keys) -> None:
    # rep-4 moved from Beta to Alpha mid-week: it ranks in both teams for that week, on each
    # by what it earned there (13 on Alpha, 12 on Beta, 25 in all).
    alpha = await gateway.get("/v1/leaderboard?team_id=team-a&date=2026-11-02", headers=bearer(keys.read))
    assert _ranking(alpha.json()) == [(1, "rep-2", 40.0), (2, "rep-1", 32.0), (3, "rep-4", 13.0)]
    beta = await gateway.get("/v1/leaderboard?team_id=team-b&date=2026-11-02", headers=bearer(keys.read))
    assert _ranking(beta.json()) == [(1, "rep-4", 12.0), (2, "rep-3", 10.0)]
    assert beta.json()["entries"][0]["activities"] == 5
    dials = await gateway.get("/v1/leaderboard?metric=dials&limit=2", headers=bearer(keys.read))
    assert _ranking(dials.json()) == [(1, "rep-3", 30.0), (2, "rep-1", 16.0)]
    assert dials.json()["entries"][0]["score"] == 10.0
    before = await gateway.get("/v1/leaderboard?date=2026-01-01", headers=bearer(keys.read))
    assert before.json() == {
        "granularity": "week",
        "period_start": None,
        "metric": "score",
        "team_id": None,
        "entries": [],
    }


async def test_a_team_leaderboard_lists_every_active_member_silent_ones_at_zero(
    gateway: httpx.AsyncClient, keys: Keys, db_engine: AsyncEngine
) -> None:
    async with db_engine.begin() as conn:
        for rep_id, active in (("rep-5", True), ("rep-6", False)):
            await conn.execute(
                text(
                    "INSERT INTO ref_reps (tenant_id, rep_id, name, active, updated_at) "
                    "VALUES ('acme', :r, :r, :a, now())"
                ),
                {"r": rep_id, "a": active},
            )
            await conn.execute(
                text(
                    "INSERT INTO ref_team_memberships (tenant_id, membership_id, rep_id, team_id, valid_from, "
                    "updated_at) VALUES ('acme', :m, :r, 'team-b', '2026-10-01', now())"
                ),
                {"m": f"m-{rep_id}", "r": rep_id},
            )
    beta = await gateway.get("/v1/leaderboard?team_id=team-b&date=2026-11-02", headers=bearer(keys.read))
    # rep-6 is deactivated: off the board; rep-5 joined in October and did nothing.
    assert _ranking(beta.json()) == [(1, "rep-4", 12.0), (2, "rep-3", 10.0), (3, "rep-5", 0.0)]


async def test_leaderboard_refuses_bad_parameters_by_name(gateway: httpx.AsyncClient, keys: Keys) -> None:
    for query, field in (
        ("metric=charisma", "metric"),
        ("period=fortnight", "period"),
        ("date=yesterday", "date"),
        ("limit=1000", "limit"),
    ):
        response = await gateway.get(f"/v1/leaderboard?{query}", headers=bearer(keys.read))
        assert response.status_code == 422, query
        assert response.json()["errors"][0]["field"] == field
    foreign = await gateway.get("/v1/leaderboard?team_id=team-z", headers=bearer(keys.read))
    assert foreign.status_code == 404
    # The other tenant's board holds only its own rep.
    theirs = await gateway.get("/v1/leaderboard", headers=bearer(keys.other_read))
    assert _ranking(theirs.json()) == [(1, "rep-9", 99.0)]


async def _buyer_thread(engine: AsyncEngine) -> None:
    """A deal rep-1 opened on 10 November and a buyer email on 3 November answered 2.5 h later."""
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO ref_deals (tenant_id, deal_id, name, owner_rep_id, amount, created_at, updated_at) "
                "VALUES ('acme', 'deal-new', 'New', 'rep-1', 5000, :at, now())"
            ),
            {"at": datetime(2026, 11, 10, 9, 0, tzinfo=UTC)},
        )
        for n, direction, outcome, at in (
            (1, "inbound", "received", datetime(2026, 11, 3, 9, 0, tzinfo=UTC)),
            (2, "outbound", "sent", datetime(2026, 11, 3, 11, 30, tzinfo=UTC)),
            (3, "outbound", "sent", datetime(2026, 11, 4, 8, 0, tzinfo=UTC)),
        ):
            await conn.execute(
                text(
                    "INSERT INTO activities (tenant_id, activity_id, source, external_id, kind, direction, outcome, "
                    "occurred_at, thread_id, payload, ingested_at) VALUES ('acme', :id, 'mail', :x, 'email', :d, :o, "
                    ":at, 'thread-1', '{}', now())"
                ),
                {
                    "id": f"00000000-0000-0000-0000-00000000010{n}",
                    "x": f"t-{n}",
                    "d": direction,
                    "o": outcome,
                    "at": at,
                },
            )
            await conn.execute(
                text(
                    "INSERT INTO attributions (tenant_id, activity_id, version, status, rep_id, team_id, confidence, "
                    "decided_at, occurred_at, kind) VALUES ('acme', :id, 1, 'unmatched', 'rep-1', 'team-a', 0.5, "
                    "now(), :at, 'email')"
                ),
                {"id": f"00000000-0000-0000-0000-00000000010{n}", "at": at},
            )


async def test_rep_funnel_with_step_ratios_and_leading_indicators(
    gateway: httpx.AsyncClient, keys: Keys, db_engine: AsyncEngine
) -> None:
    await _buyer_thread(db_engine)
    response = await gateway.get(
        "/v1/funnel?rep_id=rep-1&from=2026-11-01&to=2026-11-30", headers=bearer(keys.read)
    )
    assert response.status_code == 200
    body = response.json()
    assert [(s["step"], s["count"], s["ratio_to_previous"]) for s in body["steps"]] == [
        ("dials", 16, None),
        ("connects", 6, 0.375),
        ("conversations", 3, 0.5),
        ("meetings_booked", 2, 0.6667),
        ("meetings_held", 1, 0.5),
        ("opportunities_created", 1, 1.0),
        ("deals_won", 1, 1.0),
    ]
    assert body["dials_per_deal_won"] == 16.0
    assert body["ratios"] == {
        "dials_per_connect": 2.6667,
        "dials_per_conversation": 5.3333,
        "dials_per_meeting_booked": 8.0,
        "dials_per_deal_won": 16.0,
        "emails_per_buyer_reply": None,
        "meetings_held_per_deal_won": 1.0,
        "meetings_held_per_opportunity": 1.0,
        "activities_per_deal_won": 28.0,
    }
    # deal-1 (12,000) is the one deal rep-1's work engaged; the buyer email waited 2.5 h.
    assert body["leading_indicators"] == {
        "activities": 28,
        "emails_sent": 0,
        "buyer_replies": 0,
        "opportunities_created": 1,
        "pipeline_amount_touched": 12000.0,
        "buyer_emails_answered": 1,
        "buyer_response_median_seconds": 9000.0,
    }
    assert body["from"] == "2026-11-01"
    # A range that stops before the second day, the new deal and the win.
    short = await gateway.get(
        "/v1/funnel?rep_id=rep-1&from=2026-11-02&to=2026-11-02", headers=bearer(keys.read)
    )
    assert [s["count"] for s in short.json()["steps"]] == [10, 4, 2, 1, 1, 0, 0]
    assert short.json()["dials_per_deal_won"] is None
    assert short.json()["steps"][5]["ratio_to_previous"] == 0.0
    assert short.json()["leading_indicators"]["buyer_emails_answered"] == 0
    assert short.json()["leading_indicators"]["buyer_response_median_seconds"] is None


async def test_team_funnel_counts_wins_of_members_at_close(gateway: httpx.AsyncClient, keys: Keys) -> None:
    alpha = await gateway.get(
        "/v1/funnel?team_id=team-a&from=2026-11-01&to=2026-11-30", headers=bearer(keys.read)
    )
    assert [s["count"] for s in alpha.json()["steps"]] == [12, 5, 2, 2, 1, 0, 1]
    beta = await gateway.get(
        "/v1/funnel?team_id=team-b&from=2026-11-01&to=2026-11-30", headers=bearer(keys.read)
    )
    # No rollups for Beta: every ratio has a zero denominator, yet rep-3's win counts.
    assert [(s["count"], s["ratio_to_previous"]) for s in beta.json()["steps"]] == [
        (0, None),
        (0, None),
        (0, None),
        (0, None),
        (0, None),
        (0, None),
        (1, None),
    ]
    assert beta.json()["dials_per_deal_won"] == 0.0


async def test_funnel_refuses_bad_parameters(gateway: httpx.AsyncClient, keys: Keys) -> None:
    both = await gateway.get(
        "/v1/funnel?rep_id=rep-1&team_id=team-a&from=2026-11-01&to=2026-11-30", headers=bearer(keys.read)
    )
    assert both.status_code == 422
    assert both.json()["errors"][0]["field"] == "rep_id"
    missing = await gateway.get("/v1/funnel?rep_id=rep-1&to=2026-11-30", headers=bearer(keys.read))
    assert missing.status_code == 422
    assert missing.json()["errors"][0]["field"] == "from"
    foreign = await gateway.get(
        "/v1/funnel?rep_id=rep-9&from=2026-11-01&to=2026-11-30", headers=bearer(keys.read)
    )
    assert foreign.status_code == 404
    foreign_team = await gateway.get(
        "/v1/funnel?team_id=team-z&from=2026-11-01&to=2026-11-30", headers=bearer(keys.read)
    )
    assert foreign_team.status_code == 404


async def test_insights_by_kind_and_team(gateway: httpx.AsyncClient, keys: Keys) -> None:
    at_risk = await gateway.get("/v1/insights/at-risk-reps", headers=bearer(keys.read))
    assert at_risk.status_code == 200
    [item] = at_risk.json()["items"]
    assert item["subject_id"] == "rep-3"
    assert item["subject_name"] == "Cy Chen"
    assert item["reasons"] == ["below_team_median"]
    assert item["details"] == {"score": 10.0}
    stale = await gateway.get("/v1/insights/stale-deals", headers=bearer(keys.read))
    assert [(i["subject_id"], i["subject_name"]) for i in stale.json()["items"]] == [
        ("deal-2", "Buyer expansion")
    ]
    bright = await gateway.get("/v1/insights/bright-spots?team_id=team-a", headers=bearer(keys.read))
    assert [i["subject_id"] for i in bright.json()["items"]] == ["rep-1", "rep-2"]
    none = await gateway.get("/v1/insights/bright-spots?team_id=team-b", headers=bearer(keys.read))
    assert none.json() == {"kind": "bright_spot", "items": []}
    theirs = await gateway.get("/v1/insights/at-risk-reps", headers=bearer(keys.other_read))
    assert [i["subject_id"] for i in theirs.json()["items"]] == ["rep-9"]
    # Another tenant's team answers as an unknown one: 404 (docs/api.md, Tenant isolation).
    foreign_team = await gateway.get("/v1/insights/at-risk-reps?team_id=team-z", headers=bearer(keys.read))
    assert foreign_team.status_code == 404
    assert foreign_team.json()["detail"] == "no team 'team-z'"
