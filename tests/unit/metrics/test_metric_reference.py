from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from libs.common.contracts.activities import OUTCOMES_BY_KIND, ActivityKind, Direction, Outcome
from libs.common.contracts.attribution import ActivityAttributedV1, AttributionStatus
from libs.common.contracts.crm import DealV1, TeamMembershipV1
from services.metrics.domain.definitions import Level, MetricCounts, MetricSettings, RollupKey, team_rep_id
from services.metrics.domain.reference import (
    DealEngagement,
    IncrementalRollup,
    reference_aggregates,
    reference_deal_engagement,
    reference_deals_won,
)

from .events import attributed

BERLIN = MetricSettings(time_zone="Europe/Berlin")
DAY = date(2026, 11, 24)
DECIDED = datetime(2026, 11, 24, 16, 0, tzinfo=UTC)


def _key(level: Level, entity_id: str, day: date = DAY) -> RollupKey:
    return RollupKey(level, entity_id, day)


def test_a_correction_moves_the_activity_and_a_late_duplicate_changes_nothing() -> None:
    first = attributed(status=AttributionStatus.UNMATCHED, rep_id="rep-1", account_id=None, deal_id=None)
    corrected = attributed(
        version=2, rep_id="rep-2", team_id="team-2", decided_at=DECIDED + timedelta(hours=1)
    )
    dial = MetricCounts(dials=1, connects=1)
    expected = {
        _key(Level.REP, "rep-2"): dial,
        _key(Level.TEAM, "team-2"): dial,
        _key(Level.TEAM_REP, team_rep_id("team-2", "rep-2")): dial,
        _key(Level.ACCOUNT, "acc-1"): dial,
        _key(Level.DEAL, "deal-1"): dial,
    }

    assert reference_aggregates([first, corrected, first], BERLIN) == expected
    assert reference_aggregates([corrected, first], BERLIN) == expected


def test_aggregates_sum_activities_per_cell() -> None:
    events = [
        attributed(activity_id=uuid.UUID(int=1), duration_seconds=61),
        attributed(activity_id=uuid.UUID(int=2), outcome=Outcome.VOICEMAIL, deal_id="deal-2"),
        attributed(
            activity_id=uuid.UUID(int=3),
            kind=ActivityKind.EMAIL,
            direction=Direction.INBOUND,
            outcome=Outcome.RECEIVED,
            status=AttributionStatus.AMBIGUOUS,
        ),
        # Evening in Berlin already belongs to the next local day.
        attributed(activity_id=uuid.UUID(int=4), occurred_at=datetime(2026, 11, 24, 23, 15, tzinfo=UTC)),
        attributed(activity_id=uuid.UUID(int=5), automated=True),
    ]

    cells = reference_aggregates(events, BERLIN)

    rep_day = MetricCounts(
        dials=2, connects=1, conversations=1, talk_seconds=61, emails_received=1, buyer_replies=1
    )
    assert cells == {
        _key(Level.REP, "rep-1"): rep_day,
        _key(Level.TEAM, "team-1"): rep_day,
        _key(Level.TEAM_REP, team_rep_id("team-1", "rep-1")): rep_day,
        _key(Level.ACCOUNT, "acc-1"): rep_day,
        _key(Level.DEAL, "deal-1"): MetricCounts(dials=1, connects=1, conversations=1, talk_seconds=61),
        _key(Level.DEAL, "deal-2"): MetricCounts(dials=1),
        _key(Level.REP, "rep-1", date(2026, 11, 25)): MetricCounts(dials=1, connects=1),
        _key(Level.TEAM, "team-1", date(2026, 11, 25)): MetricCounts(dials=1, connects=1),
        _key(Level.TEAM_REP, team_rep_id("team-1", "rep-1"), date(2026, 11, 25)): MetricCounts(
            dials=1, connects=1
        ),
        _key(Level.ACCOUNT, "acc-1", date(2026, 11, 25)): MetricCounts(dials=1, connects=1),
        _key(Level.DEAL, "deal-1", date(2026, 11, 25)): MetricCounts(dials=1, connects=1),
    }


def test_a_correction_to_excluded_empties_the_cells() -> None:
    first = attributed()
    excluded = attributed(version=2, status=AttributionStatus.EXCLUDED)
    rollup = IncrementalRollup(BERLIN)

    assert rollup.apply(first) is True
    assert rollup.apply(excluded) is True
    assert rollup.apply(first) is False
    assert rollup.apply(excluded) is False
    assert rollup.cells() == {} == reference_aggregates([first, excluded], BERLIN)


def test_meeting_outcome_change_keeps_the_booking() -> None:
    scheduled = attributed(kind=ActivityKind.MEETING, outcome=Outcome.SCHEDULED, deal_id=None)
    held = attributed(
        kind=ActivityKind.MEETING,
        outcome=Outcome.HELD,
        deal_id=None,
        version=2,
        decided_at=DECIDED + timedelta(1),
    )

    cells = reference_aggregates([held, scheduled], BERLIN)

    assert cells[_key(Level.REP, "rep-1")] == MetricCounts(meetings_booked=1, meetings_held=1)


def _deal(updated_hour: int, **changes: object) -> DealV1:
    base: dict[str, object] = {
        "id": "deal-7",
        "updated_at": datetime(2026, 11, 25, updated_hour, tzinfo=UTC),
        "owner_rep_id": "rep-1",
        "account_id": "acc-1",
        "is_closed": True,
        "is_won": True,
        "created_at": datetime(2026, 9, 1, tzinfo=UTC),
        "closed_at": datetime(2026, 11, 24, 23, 30, tzinfo=UTC),
    }
    base.update(changes)
    return DealV1.model_validate(base)


def test_deals_won_follow_the_latest_crm_state() -> None:
    won = _deal(9)
    reopened = _deal(10, is_won=False, is_closed=False, closed_at=None)
    membership = TeamMembershipV1(
        id="m-1",
        updated_at=datetime(2026, 1, 1, tzinfo=UTC),
        rep_id="rep-1",
        team_id="team-1",
        valid_from=date(2026, 1, 1),
    )
    next_day = date(2026, 11, 25)

    assert reference_deals_won([won, won], BERLIN, [membership]) == {
        _key(Level.REP, "rep-1", next_day): MetricCounts(deals_won=1),
        _key(Level.TEAM, "team-1", next_day): MetricCounts(deals_won=1),
        _key(Level.ACCOUNT, "acc-1", next_day): MetricCounts(deals_won=1),
        _key(Level.DEAL, "deal-7", next_day): MetricCounts(deals_won=1),
    }
    assert reference_deals_won([reopened, won], BERLIN) == {}
    assert reference_deals_won([won, reopened], BERLIN) == {}


def test_deal_engagement() -> None:
    at = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    events = [
        attributed(activity_id=uuid.UUID(int=1), occurred_at=at, external_contact_ids=("c-1",)),
        attributed(
            activity_id=uuid.UUID(int=2),
            kind=ActivityKind.EMAIL,
            direction=Direction.INBOUND,
            outcome=Outcome.RECEIVED,
            occurred_at=at + timedelta(days=1),
            external_contact_ids=("c-2",),
        ),
        attributed(
            activity_id=uuid.UUID(int=3), occurred_at=at + timedelta(days=2), external_contact_ids=("c-1",)
        ),
        # Ambiguous between deal-1 (primary) and deal-2: work on both, though credited to neither.
        attributed(
            activity_id=uuid.UUID(int=4),
            occurred_at=at + timedelta(days=3),
            status=AttributionStatus.AMBIGUOUS,
            secondary_deal_ids=("deal-2",),
            external_contact_ids=("c-3",),
        ),
        # A sequence email engages nothing.
        attributed(activity_id=uuid.UUID(int=5), occurred_at=at + timedelta(days=4), automated=True),
    ]

    assert reference_deal_engagement(events, BERLIN) == {
        "deal-1": DealEngagement(
            at + timedelta(days=3), at + timedelta(days=1), frozenset({"c-1", "c-2", "c-3"})
        ),
        "deal-2": DealEngagement(at + timedelta(days=3), None, frozenset({"c-3"})),
    }


# --- order independence ----------------------------------------------------------------------

KIND_OUTCOMES = sorted((kind, outcome) for kind, outcomes in OUTCOMES_BY_KIND.items() for outcome in outcomes)
# Three days around Berlin's 2026 fall-back, so events land on both sides of local midnights.
FIRST_INSTANT = datetime(2026, 10, 24, 12, 0, tzinfo=UTC)


@st.composite
def activity_version(draw: st.DrawFn, activity_id: uuid.UUID, version: int) -> ActivityAttributedV1:
    kind, outcome = draw(st.sampled_from(KIND_OUTCOMES))
    status = draw(st.sampled_from(AttributionStatus))
    return attributed(
        activity_id=activity_id,
        version=version,
        kind=kind,
        outcome=outcome,
        direction=draw(st.sampled_from(Direction)),
        occurred_at=FIRST_INSTANT + timedelta(minutes=draw(st.integers(0, 3 * 24 * 60))),
        duration_seconds=draw(st.sampled_from([0, 59, 60, 600])),
        external_participants=draw(st.integers(0, 2)),
        automated=draw(st.sampled_from([False, False, False, True])),
        status=status,
        rep_id=draw(st.sampled_from(["rep-1", "rep-2", None])),
        team_id=draw(st.sampled_from(["team-1", None])),
        account_id=draw(st.sampled_from(["acc-1", "acc-2", None])),
        deal_id=draw(st.sampled_from(["deal-1", "deal-2", None])),
        decided_at=DECIDED + timedelta(hours=version),
    )


@st.composite
def redelivered_streams(draw: st.DrawFn) -> tuple[list[ActivityAttributedV1], list[ActivityAttributedV1]]:
    """A stream with duplicates and lost or superseded versions in any order, and the latest versions."""
    stream: list[ActivityAttributedV1] = []
    latest: list[ActivityAttributedV1] = []
    for number in range(draw(st.integers(1, 6))):
        activity_id = uuid.UUID(int=number + 1)
        versions = [
            draw(activity_version(activity_id, version)) for version in range(1, draw(st.integers(1, 4)) + 1)
        ]
        latest.append(versions[-1])
        delivered = [version for version in versions[:-1] if draw(st.booleans())] + [versions[-1]]
        duplicates = draw(st.lists(st.sampled_from(delivered), max_size=3))
        stream.extend(delivered + duplicates)
    return draw(st.permutations(stream)), latest


@settings(max_examples=150, deadline=None)
@given(redelivered_streams())
def test_aggregates_do_not_depend_on_order_duplicates_or_superseded_versions(
    streams: tuple[list[ActivityAttributedV1], list[ActivityAttributedV1]],
) -> None:
    shuffled, latest = streams

    expected = reference_aggregates(latest, BERLIN)

    assert reference_aggregates(shuffled, BERLIN) == expected
    rollup = IncrementalRollup(BERLIN)
    for event in shuffled:
        rollup.apply(event)
    assert rollup.cells() == expected
