"""The read-model refresher: rep period stats and insights computed from the real rollups."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.contracts.activities import ActivityKind, Direction, Outcome
from libs.common.contracts.attribution import ActivityAttributedV1
from libs.common.contracts.tenant_settings import DEFAULT_SCORING_MODEL, RecencyDecay
from services.metrics.adapters import read_models
from services.metrics.adapters.scoring import ScoringModelCache, rescore_moved
from services.metrics.refresher import ReadModelRefresher, refresh_tenant

from .metrics_support import apply, attributed, create_tenant, save_scoring_model

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)  # a Wednesday: the last complete week began 16 Nov
LAST_WEEK = date(2026, 11, 16)
UPDATED = datetime(2026, 9, 1, tzinfo=UTC)


def _week(start: date) -> datetime:
    """Tuesday 10:00 UTC of the week starting ``start``."""
    return datetime.combine(start + timedelta(days=1), datetime.min.time(), tzinfo=UTC) + timedelta(hours=10)


def _emails(rep: str, week: date, count: int, ids: Iterator[int]) -> list[ActivityAttributedV1]:
    return [
        attributed(
            activity=next(ids), kind=ActivityKind.EMAIL, rep_id=rep, deal_id=None, occurred_at=_week(week)
        )
        for _ in range(count)
    ]


def _weeks(last: date, count: int) -> list[date]:
    return [last - timedelta(weeks=n) for n in range(count)]


async def _memberships(engine: AsyncEngine, rows: list[tuple[str, str, date, date | None]]) -> None:
    async with engine.begin() as conn:
        for number, (rep, team, start, end) in enumerate(rows):
            await conn.execute(
                text(
                    "INSERT INTO ref_team_memberships (tenant_id, membership_id, rep_id, team_id, valid_from, "
                    "valid_to, updated_at) VALUES ('acme', :m, :r, :t, :f, :u, :at)"
                ),
                {"m": f"m{number}", "r": rep, "t": team, "f": start, "u": end, "at": UPDATED},
            )


async def _deal(engine: AsyncEngine, deal_id: str, owner: str, created: datetime, **state: Any) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO ref_deals (tenant_id, deal_id, owner_rep_id, is_closed, is_won, created_at, "
                "closed_at, updated_at) VALUES ('acme', :d, :o, :c, :w, :at, :closed, :at)"
            ),
            {
                "d": deal_id,
                "o": owner,
                "c": state.get("closed", False),
                "w": state.get("won", False),
                "at": created,
                "closed": state.get("closed_at"),
            },
        )


async def _team_setup(engine: AsyncEngine) -> None:
    """Team 1: reps a, b, c, d (and e until November, when e moves to team 2)."""
    await create_tenant(engine)
    start = date(2026, 1, 1)
    await _memberships(
        engine,
        [
            ("rep-a", "team-1", start, None),
            ("rep-b", "team-1", start, None),
            ("rep-c", "team-1", start, None),
            ("rep-d", "team-1", start, None),
            ("rep-e", "team-1", start, date(2026, 11, 1)),
            ("rep-e", "team-2", date(2026, 11, 1), None),
        ],
    )
    ids = itertools.count(10_000)
    events: list[ActivityAttributedV1] = []
    for week in _weeks(LAST_WEEK, 6):  # 12 Oct .. 16 Nov: 8 emails a week
        events += _emails("rep-a", week, 8, ids)
        events += _emails("rep-b", week, 8, ids)
    for week in _weeks(LAST_WEEK - timedelta(weeks=1), 5):  # 12 Oct .. 9 Nov, then a drop to 5
        events += _emails("rep-d", week, 8, ids)
    events += _emails("rep-d", LAST_WEEK, 5, ids)
    for week in _weeks(LAST_WEEK, 2):  # far below the team median two weeks running
        events += _emails("rep-c", week, 2, ids)
    events += _emails("rep-e", date(2026, 10, 19), 3, ids)
    events += _emails("rep-e", date(2026, 10, 26), 3, ids)
    events += [
        attributed(
            activity=next(ids), kind=ActivityKind.MEETING, rep_id="rep-b", occurred_at=_week(LAST_WEEK)
        )
        for _ in range(2)
    ]
    await apply(engine, events)
    await _deal(
        engine,
        "deal-won",
        "rep-a",
        UPDATED,
        closed=True,
        won=True,
        closed_at=datetime(2026, 11, 17, tzinfo=UTC),
    )


async def _stats(engine: AsyncEngine, granularity: str) -> dict[tuple[str, date], tuple[Any, ...]]:
    async with engine.connect() as conn:
        result = await conn.execute(
            text(
                "SELECT rep_id, period_start, team_id, score, team_percentile, baseline_score, baseline_periods, "
                "change_vs_baseline FROM rep_period_stats WHERE tenant_id = 'acme' AND granularity = :g"
            ),
            {"g": granularity},
        )
        return {(row[0], row[1]): tuple(row[2:]) for row in result}


async def _insights(engine: AsyncEngine) -> dict[tuple[str, str], tuple[Any, ...]]:
    async with engine.connect() as conn:
        result = await conn.execute(
            text(
                "SELECT kind, subject_id, team_id, period_start, reasons, details FROM insights WHERE tenant_id = 'acme'"
            )
        )
        return {(row[0], row[1]): tuple(row[2:]) for row in result}


async def _refresh(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await refresh_tenant(conn, "acme", NOW)


async def test_rep_period_stats_rank_reps_in_their_team_and_against_their_own_baseline(
    db_engine: AsyncEngine,
) -> None:
    await _team_setup(db_engine)

    await _refresh(db_engine)

    weekly = await _stats(db_engine, "week")
    assert weekly[("rep-a", LAST_WEEK)] == ("team-1", 8.0, 100.0 * 2 / 3, 8.0, 5, 0.0)
    assert weekly[("rep-b", LAST_WEEK)] == ("team-1", 34.0, 100.0, 8.0, 5, 3.25)
    assert weekly[("rep-c", LAST_WEEK)] == ("team-1", 2.0, 0.0, None, 1, None)
    assert weekly[("rep-d", LAST_WEEK)] == ("team-1", 5.0, 100.0 * 1 / 3, 8.0, 5, -0.375)
    # The team is the one the rep ended the period on: e moved to team 2 on 1 November (a Sunday).
    # On 19 October c was silent on team 1: a zero below e's 3.
    assert weekly[("rep-e", date(2026, 10, 19))] == ("team-1", 3.0, 25.0, None, 0, None)
    assert weekly[("rep-c", date(2026, 10, 19))] == ("team-1", 0.0, 0.0, None, 0, None)
    assert weekly[("rep-e", date(2026, 10, 26))] == ("team-2", 3.0, None, None, 1, None)
    # Twelve weeks are reported, the current one included (7 Sep .. 23 Nov): every member
    # of a team at the end of a week has a row, silent or not (5 reps x 12 weeks).
    assert min(start for _, start in weekly) == date(2026, 9, 7)
    assert len(weekly) == 5 * 12
    assert weekly[("rep-e", LAST_WEEK)] == ("team-2", 0.0, None, None, 2, None)
    monthly = await _stats(db_engine, "month")
    assert monthly[("rep-a", date(2026, 11, 1))][:2] == ("team-1", 24.0)
    assert monthly[("rep-a", date(2026, 10, 1))][:2] == ("team-1", 24.0)


async def test_insights_flag_at_risk_reps_bright_spots_and_stale_deals_and_nobody_else(
    db_engine: AsyncEngine,
) -> None:
    await _team_setup(db_engine)
    # Open deals: one gone quiet and single-threaded, one young, one multi-threaded and answered.
    await _deal(db_engine, "deal-quiet", "rep-a", datetime(2026, 9, 1, tzinfo=UTC))
    await _deal(db_engine, "deal-young", "rep-a", datetime(2026, 11, 20, tzinfo=UTC))
    await _deal(db_engine, "deal-busy", "rep-b", datetime(2026, 10, 1, tzinfo=UTC))
    # A second win for rep a in the evaluated week: two wins against a team median of 0.
    await _deal(
        db_engine,
        "deal-won-2",
        "rep-a",
        UPDATED,
        closed=True,
        won=True,
        closed_at=datetime(2026, 11, 19, tzinfo=UTC),
    )
    await apply(
        db_engine,
        [
            attributed(
                activity=1,
                rep_id="rep-x",
                deal_id="deal-quiet",
                occurred_at=datetime(2026, 11, 1, 9, 0, tzinfo=UTC),
                external_contact_ids=("con-1",),
            ),
            attributed(
                activity=2,
                rep_id="rep-x",
                deal_id="deal-young",
                occurred_at=datetime(2026, 11, 24, 9, 0, tzinfo=UTC),
                external_contact_ids=("con-2",),
            ),
            attributed(
                activity=3,
                kind=ActivityKind.EMAIL,
                rep_id="rep-x",
                deal_id="deal-busy",
                occurred_at=datetime(2026, 11, 24, 9, 0, tzinfo=UTC),
                external_contact_ids=("Doe, Jane",),  # ids are free text
            ),
            attributed(
                activity=4,
                kind=ActivityKind.EMAIL,
                direction=Direction.INBOUND,
                outcome=Outcome.RECEIVED,
                rep_id="rep-x",
                deal_id="deal-busy",
                occurred_at=datetime(2026, 11, 23, 9, 0, tzinfo=UTC),
                external_contact_ids=("con-4",),
            ),
        ],
    )

    await _refresh(db_engine)

    insights = await _insights(db_engine)
    assert set(insights) == {
        ("at_risk_rep", "rep-c"),
        ("at_risk_rep", "rep-d"),
        ("at_risk_rep", "rep-e"),
        ("bright_spot", "rep-a"),
        ("bright_spot", "rep-b"),
        ("stale_deal", "deal-quiet"),
    }
    assert insights[("at_risk_rep", "rep-c")][:3] == ("team-1", LAST_WEEK, ["below_team_median"])
    assert insights[("at_risk_rep", "rep-c")][3] == {
        "granularity": "week",
        "period": "2026-W47",
        "score": 2.0,
        "team_median": 6.5,
        "baseline_score": None,
        "change_vs_baseline": None,
        "activities": 2,
        "baseline_activities": None,
        "insufficient_data": True,
    }
    # Rep e has been on team 2 all week and did nothing: silence is the first warning.
    assert insights[("at_risk_rep", "rep-e")][:3] == ("team-2", LAST_WEEK, ["no_activity"])
    assert insights[("at_risk_rep", "rep-e")][3]["insufficient_data"] is True
    assert insights[("at_risk_rep", "rep-d")][2] == ["drop_against_baseline"]
    assert insights[("at_risk_rep", "rep-d")][3]["change_vs_baseline"] == -0.375
    assert insights[("stale_deal", "deal-quiet")] == (
        "team-1",
        None,
        ["no_recent_activity", "single_threaded", "no_buyer_reply"],
        {
            "owner_rep_id": "rep-a",
            "days_since_activity": 24,
            "days_since_buyer_reply": 85,
            "engaged_contacts": 1,
            "age_days": 85,
            "last_activity_at": "2026-11-01T09:00:00+00:00",
        },
    )
    team, period, reasons, details = insights[("bright_spot", "rep-b")]
    assert (team, period, reasons) == ("team-1", LAST_WEEK, ["meetings_booked", "meetings_held"])
    assert [(m["value"], m["rank"], m["team_median"], m["why"]) for m in details["metrics"]] == [
        (2, 1, 0.0, "meetings booked 2 vs team median 0"),
        (2, 1, 0.0, "meetings held 2 vs team median 0"),
    ]
    # Rep b: 8 emails and 2 meetings; the team: 23 emails and 2 meetings.
    assert details["metrics"][0]["mix_difference"] == pytest.approx(
        {"dials": 0.0, "emails_sent": 0.8 - 23 / 25, "meetings_held": 0.2 - 2 / 25}
    )
    _, _, reasons, details = insights[("bright_spot", "rep-a")]
    assert reasons == ["deals_won"]
    assert details["metrics"][0]["value"] == 2

    # A stricter tenant threshold (saved by the gateway) spares rep d's 37.5 % drop.
    async with db_engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO insight_thresholds (tenant_id, version, thresholds) VALUES ('acme', 1, CAST(:j AS jsonb))"
            ),
            {"j": orjson.dumps({"at_risk_drop_against_baseline": 0.4}).decode()},
        )
    await _refresh(db_engine)
    assert {subject for kind, subject in await _insights(db_engine) if kind == "at_risk_rep"} == {
        "rep-c",
        "rep-e",
    }


async def test_a_refresh_clears_the_dirty_flag_unless_a_batch_marked_it_meanwhile(
    db_engine: AsyncEngine,
) -> None:
    await create_tenant(db_engine)
    await apply(db_engine, [attributed(activity=1)])

    async with db_engine.begin() as conn:
        seen = await read_models.refresh_state_version(conn, "acme")
    await apply(db_engine, [attributed(activity=2)])  # lands while the refresher computes
    async with db_engine.begin() as conn:
        await read_models.mark_refreshed(conn, "acme", seen)
        due = await read_models.due_tenants(conn, timedelta(minutes=15))
    assert due == ["acme"]

    refresher = ReadModelRefresher(db_engine, ScoringModelCache(), interval_seconds=60)
    assert await refresher.tick() == 1
    async with db_engine.begin() as conn:
        state = (await conn.execute(text("SELECT dirty_since, refreshed_at FROM metric_refresh_state"))).one()
        assert state.dirty_since is None
        assert state.refreshed_at is not None
        assert await read_models.due_tenants(conn, timedelta(minutes=15)) == []
        # Deals go stale with time alone: every tenant is refreshed at least every 15 minutes.
        await conn.execute(
            text("UPDATE metric_refresh_state SET refreshed_at = now() - interval '16 minutes'")
        )
        assert await read_models.due_tenants(conn, timedelta(minutes=15)) == ["acme"]
    assert await refresher.tick() == 1
    assert await refresher.tick() == 0


async def test_a_tenant_another_instance_is_refreshing_is_left_to_it(db_engine: AsyncEngine) -> None:
    """Every metrics instance runs a refresher; one tenant is recomputed by one of them at a time."""
    await create_tenant(db_engine)
    await apply(db_engine, [attributed(activity=1)])
    refresher = ReadModelRefresher(db_engine, ScoringModelCache(), interval_seconds=60)

    async with db_engine.begin() as other:
        assert await read_models.claim_refresh(other, "acme")
        assert await refresher.tick() == 0
        async with db_engine.connect() as conn:
            assert await read_models.due_tenants(conn, timedelta(minutes=15)) == ["acme"]

    assert await refresher.tick() == 1
    async with db_engine.connect() as conn:
        assert await read_models.due_tenants(conn, timedelta(minutes=15)) == []


async def test_a_tenant_that_fails_to_refresh_stays_dirty_and_does_not_stop_the_others(
    db_engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    await create_tenant(db_engine, "broken")
    await create_tenant(db_engine, "healthy")
    await apply(
        db_engine,
        [
            attributed(tenant_id="broken", activity=1, occurred_at=datetime.now(UTC)),
            attributed(tenant_id="healthy", activity=2, occurred_at=datetime.now(UTC)),
        ],
    )
    async with db_engine.begin() as conn:
        # Written behind the gateway's back: fails validation (a team needs at least 2 reps).
        await conn.execute(
            text(
                "INSERT INTO insight_thresholds (tenant_id, version, thresholds) VALUES ('broken', 1, '{\"min_team_size\": 1}')"
            )
        )
    refresher = ReadModelRefresher(db_engine, ScoringModelCache(), interval_seconds=60)

    assert await refresher.tick() == 1

    assert "read-model refresh failed" in caplog.text
    async with db_engine.connect() as conn:
        dirty: dict[str, bool] = dict(
            (
                await conn.execute(
                    text("SELECT tenant_id, dirty_since IS NOT NULL FROM metric_refresh_state")
                )
            ).all()
        )
        refreshed = (
            (await conn.execute(text("SELECT DISTINCT tenant_id FROM rep_period_stats"))).scalars().all()
        )
    assert dirty == {"broken": True, "healthy": False}
    assert refreshed == ["healthy"]


async def _goal(engine: AsyncEngine, goal_id: str, scope: str, subject: str | None, target: float) -> None:
    """What the gateway does on PUT /v1/goals/{goal_id}."""
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO activity_goals (tenant_id, goal_id, scope, subject_id, period, metric, target) "
                "VALUES ('acme', :g, :s, :subject, 'week', 'dials', :target)"
            ),
            {"g": goal_id, "s": scope, "subject": subject, "target": target},
        )


def _dials(rep: str, at: datetime, count: int, ids: Iterator[int]) -> list[ActivityAttributedV1]:
    return [
        attributed(activity=next(ids), rep_id=rep, deal_id=None, outcome=Outcome.NO_ANSWER, occurred_at=at)
        for _ in range(count)
    ]


async def test_goal_attainment_and_pace_are_exact_and_a_rep_behind_pace_is_at_risk(
    db_engine: AsyncEngine,
) -> None:
    await create_tenant(db_engine)
    start = date(2026, 1, 1)
    await _memberships(
        db_engine,
        [
            ("rep-a", "team-1", start, None),
            ("rep-b", "team-1", start, None),
            ("rep-c", "team-2", start, None),
        ],
    )
    ids = itertools.count(50_000)
    tuesday = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
    last_week = datetime(2026, 11, 18, 10, 0, tzinfo=UTC)
    await apply(
        db_engine,
        _dials("rep-a", tuesday, 8, ids)
        + _dials("rep-b", tuesday, 20, ids)
        + _dials("rep-c", tuesday, 4, ids)
        + _dials("rep-a", last_week, 66, ids),
    )
    await _goal(db_engine, "everyone", "tenant", None, 60.0)
    await _goal(db_engine, "bo", "rep", "rep-b", 30.0)
    await _goal(db_engine, "team-2", "team", "team-2", 10.0)

    await _refresh(db_engine)  # Wednesday noon: Monday and Tuesday are behind everybody

    async with db_engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT rep_id, period_start, goal_id, target, actual, attainment, expected_by_now, pace, "
                    "days_left, complete FROM goal_attainment WHERE tenant_id = 'acme' ORDER BY period_start, rep_id"
                )
            )
        ).all()
    assert [tuple(row) for row in rows] == [
        ("rep-a", LAST_WEEK, "everyone", 60.0, 66.0, 1.1, 60.0, 1.1, 0, True),
        ("rep-b", LAST_WEEK, "bo", 30.0, 0.0, 0.0, 30.0, 0.0, 0, True),
        ("rep-c", LAST_WEEK, "team-2", 10.0, 0.0, 0.0, 10.0, 0.0, 0, True),
        ("rep-a", date(2026, 11, 23), "everyone", 60.0, 8.0, 8 / 60, 24.0, 8 / 24, 3, False),
        ("rep-b", date(2026, 11, 23), "bo", 30.0, 20.0, 20 / 30, 12.0, 20 / 12, 3, False),
        ("rep-c", date(2026, 11, 23), "team-2", 10.0, 4.0, 0.4, 4.0, 1.0, 3, False),
    ]
    insights = await _insights(db_engine)
    behind = {subject: row for (kind, subject), row in insights.items() if "behind_goal" in row[2]}
    assert set(behind) == {"rep-a"}
    # Last week is judged too: rep-b and rep-c, silent, made none of their dials (rep-a 66 of 60).
    missed = {subject: row[:3] for (kind, subject), row in insights.items() if "missed_goal" in row[2]}
    assert missed == {
        "rep-b": ("team-1", LAST_WEEK, ["no_activity", "missed_goal"]),
        "rep-c": ("team-2", LAST_WEEK, ["no_activity", "missed_goal"]),
    }
    assert [g["why"] for g in insights[("at_risk_rep", "rep-c")][3]["missed_goals"]] == [
        "reached 0 % of the dials goal (0 of 10)"
    ]
    team, period, reasons, details = behind["rep-a"]
    assert (team, period, reasons) == ("team-1", date(2026, 11, 23), ["behind_goal"])
    assert details["goals"] == [
        {
            "metric": "dials",
            "goal_id": "everyone",
            "target": 60.0,
            "actual": 8.0,
            "attainment": 8 / 60,
            "pace": 8 / 24,
            "days_left": 3,
            "why": "at 13 % of the dials goal with 3 days left",
        }
    ]


async def test_the_current_period_carries_the_recency_decayed_score_when_the_model_decays(
    db_engine: AsyncEngine,
) -> None:
    await create_tenant(db_engine)
    await _memberships(db_engine, [("rep-a", "team-1", date(2026, 1, 1), None)])
    ids = itertools.count(70_000)
    await apply(
        db_engine,
        _dials("rep-a", datetime(2026, 11, 25, 9, 0, tzinfo=UTC), 4, ids)  # today: factor 1
        + _dials("rep-a", datetime(2026, 11, 18, 9, 0, tzinfo=UTC), 6, ids)  # a half-life ago: 0.5
        + _dials("rep-a", datetime(2026, 10, 20, 9, 0, tzinfo=UTC), 10, ids),  # outside the 30-day window
    )
    decaying = DEFAULT_SCORING_MODEL.model_copy(
        update={"version": 2, "decay": RecencyDecay(window_days=30, half_life_days=7)}
    )
    await save_scoring_model(db_engine, "acme", decaying)
    await rescore_moved(db_engine, ScoringModelCache(), ["acme"])

    await _refresh(db_engine)

    async with db_engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT granularity, period_start, score, recency_score FROM rep_period_stats "
                    "WHERE rep_id = 'rep-a' AND granularity IN ('week', 'month') "
                    "AND period_start IN ('2026-11-23', '2026-11-16', '2026-11-01') "
                    "ORDER BY granularity, period_start"
                )
            )
        ).all()
    # Undecayed scores stay sums; the current period of every grain carries 4 + 0.5 x 6 = 7.
    assert [tuple(row) for row in rows] == [
        ("month", date(2026, 11, 1), 10.0, 7.0),
        ("week", date(2026, 11, 16), 6.0, None),
        ("week", date(2026, 11, 23), 4.0, 7.0),
    ]
