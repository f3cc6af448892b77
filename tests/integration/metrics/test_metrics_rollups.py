"""Rollups in PostgreSQL: tenant calendars, redelivery, corrections, late data, order independence."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, date, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.contracts.activities import OUTCOMES_BY_KIND, ActivityKind, Direction
from libs.common.contracts.attribution import ActivityAttributedV1, AttributionStatus
from services.metrics.domain.definitions import MetricSettings, team_rep_id
from services.metrics.domain.reference import reference_aggregates
from services.metrics.domain.scoring import DEFAULT_SCORING_MODEL

from .metrics_support import (
    Cell,
    apply,
    attributed,
    contribution_rows,
    create_tenant,
    expected_rows,
    new_deps,
    rollup_rows,
    without_activities,
)

LA = "America/Los_Angeles"


def _levels(rows: dict[Cell, dict[str, float]], level: str) -> dict[tuple[str, str, date], dict[str, float]]:
    return {(entity, grain, start): row for (lvl, entity, grain, start), row in rows.items() if lvl == level}


async def test_rollups_follow_the_tenant_time_zone_and_fiscal_year(db_engine: AsyncEngine) -> None:
    await create_tenant(db_engine, timezone=LA, fiscal_year_start_month=2)
    events = [
        # Sunday 1 Nov 2026, 22:30 in Los Angeles (already 2 Nov in UTC): fiscal Q4 (Nov-Jan).
        attributed(activity=1, occurred_at=datetime(2026, 11, 2, 6, 30, tzinfo=UTC), duration_seconds=90),
        # Saturday 31 Oct 2026 in Los Angeles: same ISO week, previous month and fiscal quarter.
        attributed(
            activity=2, kind=ActivityKind.EMAIL, occurred_at=datetime(2026, 10, 31, 12, 0, tzinfo=UTC)
        ),
        # Sunday 31 Jan 2027, 23:00 in Los Angeles (1 Feb in UTC): still fiscal Q4 of FY2027.
        attributed(activity=3, kind=ActivityKind.MEETING, occurred_at=datetime(2027, 2, 1, 7, 0, tzinfo=UTC)),
    ]

    await apply(db_engine, events)

    call = {"activities": 1, "dials": 1, "connects": 1, "conversations": 1, "talk_seconds": 90, "score": 6.0}
    email = {"activities": 1, "emails_sent": 1, "score": 1.0}
    meeting = {"activities": 1, "meetings_booked": 1, "meetings_held": 1, "score": 13.0}
    rows = await rollup_rows(db_engine)
    expected = {
        ("rep-1", "day", date(2026, 10, 31)): email,
        ("rep-1", "day", date(2026, 11, 1)): call,
        ("rep-1", "day", date(2027, 1, 31)): meeting,
        ("rep-1", "week", date(2026, 10, 26)): {
            "activities": 2,
            "dials": 1,
            "connects": 1,
            "conversations": 1,
            "talk_seconds": 90,
            "emails_sent": 1,
            "score": 7.0,
        },
        ("rep-1", "week", date(2027, 1, 25)): meeting,
        ("rep-1", "month", date(2026, 10, 1)): email,
        ("rep-1", "month", date(2026, 11, 1)): call,
        ("rep-1", "month", date(2027, 1, 1)): meeting,
        ("rep-1", "quarter", date(2026, 8, 1)): email,
        ("rep-1", "quarter", date(2026, 11, 1)): {
            "activities": 2,
            "dials": 1,
            "connects": 1,
            "conversations": 1,
            "talk_seconds": 90,
            "meetings_booked": 1,
            "meetings_held": 1,
            "score": 19.0,
        },
    }
    assert _levels(rows, "rep") == expected
    assert _levels(rows, "team") == {
        ("team-1", grain, start): row for (_, grain, start), row in expected.items()
    }
    # Account and deal figures are credited on the contribution rows, not kept as rollups.
    assert {level for level, *_ in rows} == {"rep", "team", "team_rep"}
    async with db_engine.connect() as conn:
        dirty = (await conn.execute(text("SELECT dirty_since FROM metric_refresh_state"))).scalar_one()
    assert dirty is not None


async def test_a_redelivered_batch_and_duplicates_within_a_batch_count_once(db_engine: AsyncEngine) -> None:
    await create_tenant(db_engine)
    events = [attributed(activity=1), attributed(activity=2, kind=ActivityKind.EMAIL)]
    deps = new_deps(db_engine)

    await apply(db_engine, [*events, events[0]], deps)
    await apply(db_engine, events, deps)
    await apply(db_engine, list(reversed(events)), new_deps(db_engine))

    rows = await rollup_rows(db_engine)
    assert rows[("rep", "rep-1", "day", date(2026, 11, 24))] == {
        "activities": 2,
        "dials": 1,
        "connects": 1,
        "emails_sent": 1,
        "score": 4.0,
    }
    assert len(rows) == 12  # 3 stored levels (rep, team, team_rep) x 4 grains, nothing else


async def test_a_newer_version_moves_the_activity_and_an_older_one_arriving_late_changes_nothing(
    db_engine: AsyncEngine,
) -> None:
    await create_tenant(db_engine)
    first = attributed(activity=1, rep_id="rep-1", team_id="team-1")
    moved = attributed(activity=1, version=2, rep_id="rep-2", team_id="team-2", deal_id=None)

    await apply(db_engine, [first])
    await apply(db_engine, [moved])
    await apply(db_engine, [first])

    dial = {"activities": 1, "dials": 1, "connects": 1, "score": 3.0}
    rows = await rollup_rows(db_engine)
    assert {cell: row for cell, row in rows.items() if cell[2] == "day"} == {
        ("rep", "rep-2", "day", date(2026, 11, 24)): dial,
        ("team", "team-2", "day", date(2026, 11, 24)): dial,
        # The rep's work on the team moved with it; team-1's rep-1 row is emptied.
        ("team_rep", team_rep_id("team-2", "rep-2"), "day", date(2026, 11, 24)): dial,
    }
    async with db_engine.connect() as conn:
        emptied = (
            await conn.execute(
                text(
                    "SELECT activities, dials, score FROM metric_rollups "
                    "WHERE level = 'rep' AND entity_id = 'rep-1' AND granularity = 'day'"
                )
            )
        ).one()
    assert tuple(emptied) == (0, 0, 0.0)
    stored = (await contribution_rows(db_engine))[1]
    assert (stored["version"], stored["rep_id"], stored["score"]) == (2, "rep-2", 3.0)


async def test_late_events_weeks_old_land_in_their_own_periods(db_engine: AsyncEngine) -> None:
    await create_tenant(db_engine, timezone="Europe/Berlin")
    today = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
    await apply(db_engine, [attributed(activity=1, occurred_at=today)])
    # Five weeks late, and its correction delivered before the original version.
    late_v2 = attributed(activity=2, version=2, occurred_at=today - timedelta(weeks=5), rep_id="rep-2")
    late_v1 = attributed(activity=2, version=1, occurred_at=today - timedelta(weeks=5))
    await apply(db_engine, [late_v2])
    await apply(db_engine, [late_v1])

    rows = await rollup_rows(db_engine)
    dial = {"activities": 1, "dials": 1, "connects": 1, "score": 3.0}
    assert _levels(rows, "rep") == {
        ("rep-1", "day", date(2026, 11, 24)): dial,
        ("rep-1", "week", date(2026, 11, 23)): dial,
        ("rep-1", "month", date(2026, 11, 1)): dial,
        ("rep-1", "quarter", date(2026, 10, 1)): dial,
        ("rep-2", "day", date(2026, 10, 20)): dial,
        ("rep-2", "week", date(2026, 10, 19)): dial,
        ("rep-2", "month", date(2026, 10, 1)): dial,
        ("rep-2", "quarter", date(2026, 10, 1)): dial,
    }
    # Both activities share the team: its October quarter holds two dials, its weeks one each.
    assert rows[("team", "team-1", "quarter", date(2026, 10, 1))]["dials"] == 2
    assert rows[("team", "team-1", "week", date(2026, 10, 19))]["dials"] == 1


# --- any order, any duplicates: exactly the reference -------------------------------------------

KIND_OUTCOMES = sorted((kind, outcome) for kind, outcomes in OUTCOMES_BY_KIND.items() for outcome in outcomes)
FIRST_INSTANT = datetime(2026, 9, 28, 12, 0, tzinfo=UTC)
BERLIN = MetricSettings(time_zone="Europe/Berlin", fiscal_year_start_month=2)


@st.composite
def activity_version(draw: st.DrawFn, tenant_id: str, activity: int, version: int) -> ActivityAttributedV1:
    kind, outcome = draw(st.sampled_from(KIND_OUTCOMES))
    return attributed(
        tenant_id=tenant_id,
        activity=activity,
        version=version,
        kind=kind,
        outcome=outcome,
        direction=draw(st.sampled_from(Direction)),
        # Ten weeks around Berlin's fall-back and a month and fiscal quarter boundary.
        occurred_at=FIRST_INSTANT + timedelta(minutes=draw(st.integers(0, 70 * 24 * 60))),
        duration_seconds=draw(st.sampled_from([0, 59, 60, 600])),
        external_participants=draw(st.integers(0, 2)),
        automated=draw(st.sampled_from([False, False, False, True])),
        status=draw(st.sampled_from(AttributionStatus)),
        rep_id=draw(st.sampled_from(["rep-1", "rep-2", None])),
        team_id=draw(st.sampled_from(["team-1", None])),
        account_id=draw(st.sampled_from(["acc-1", "acc-2", None])),
        deal_id=draw(st.sampled_from(["deal-1", "deal-2", None])),
        decided_at=datetime(2026, 12, 1, tzinfo=UTC) + timedelta(hours=version),
    )


@st.composite
def redelivered_batches(
    draw: st.DrawFn, tenant_id: str
) -> tuple[list[list[ActivityAttributedV1]], list[ActivityAttributedV1]]:
    """Batches of a stream with duplicates and lost or superseded versions in any order, and the latest versions."""
    stream: list[ActivityAttributedV1] = []
    latest: list[ActivityAttributedV1] = []
    for activity in range(1, draw(st.integers(1, 8)) + 1):
        versions = [
            draw(activity_version(tenant_id, activity, v)) for v in range(1, draw(st.integers(1, 4)) + 1)
        ]
        latest.append(versions[-1])
        delivered = [v for v in versions[:-1] if draw(st.booleans())] + [versions[-1]]
        stream.extend(delivered + draw(st.lists(st.sampled_from(delivered), max_size=3)))
    shuffled = draw(st.permutations(stream))
    cuts = sorted(draw(st.lists(st.integers(0, len(shuffled)), max_size=4)))
    bounds = [0, *cuts, len(shuffled)]
    return [shuffled[a:b] for a, b in itertools.pairwise(bounds) if b > a], latest


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
async def test_any_order_of_redeliveries_and_corrections_gives_exactly_the_reference_rollups(
    db_engine: AsyncEngine, data: st.DataObject
) -> None:
    tenant_id = f"t{uuid.uuid4().hex[:10]}"  # a fresh tenant per example, one database per test
    await create_tenant(db_engine, tenant_id, timezone=BERLIN.time_zone, fiscal_year_start_month=2)
    batches, latest = data.draw(redelivered_batches(tenant_id))
    deps = new_deps(db_engine)

    for batch in batches:
        await apply(db_engine, batch, deps)

    expected = expected_rows(reference_aggregates(latest, BERLIN), BERLIN, DEFAULT_SCORING_MODEL)
    assert without_activities(await rollup_rows(db_engine, tenant_id)) == expected
    stored = await contribution_rows(db_engine, tenant_id)
    assert {number: row["version"] for number, row in stored.items()} == {
        event.activity_id.int: event.version for event in latest
    }


async def test_contact_and_deal_ids_are_stored_exactly_whatever_their_characters(
    db_engine: AsyncEngine,
) -> None:
    """Ids are free text: quotes, backslashes, braces, commas, spaces and the word NULL survive
    the batch write unchanged, next to rows with no ids at all."""
    await create_tenant(db_engine)
    odd = ('say "hi"', "back\\slash", "{brace}", "a,b", " spaced ", "NULL")
    events = [
        attributed(
            activity=1,
            deal_id='deal "1", {x}',
            secondary_deal_ids=("NULL", "d\\2"),
            external_contact_ids=odd,
            occurred_at=DAY_AT,
        ),
        attributed(activity=2, deal_id=None, external_contact_ids=(), occurred_at=DAY_AT),
    ]

    await apply(db_engine, events)

    async with db_engine.connect() as conn:
        rows = (
            await conn.execute(
                text("SELECT activity_id, contact_ids, engaged_deal_ids FROM metric_contributions ORDER BY 1")
            )
        ).all()
    assert [(r.activity_id.int, r.contact_ids, r.engaged_deal_ids) for r in rows] == [
        (1, list(odd), ['deal "1", {x}', "NULL", "d\\2"]),
        (2, [], []),
    ]


DAY_AT = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
