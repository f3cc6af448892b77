from __future__ import annotations

import uuid
from dataclasses import fields
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from pydantic import ValidationError

from libs.common.contracts.activities import ActivityKind, Direction, Outcome
from libs.common.contracts.attribution import AttributionStatus
from libs.common.contracts.attribution_fast import Attributed, decode_attributed
from libs.common.contracts.crm import DealV1, TeamMembershipV1
from libs.common.contracts.envelope import encode_body
from services.metrics.domain.definitions import (
    METRIC_CATALOGUE,
    ZERO,
    Counter,
    Level,
    MetricCounts,
    MetricSettings,
    RollupKey,
    Source,
    WonDeal,
    contribution_of,
    engaged_deal_ids,
    rollup_keys,
    team_on,
    team_rep_id,
    won_deal_keys,
    won_deal_of,
)

from .events import attributed

CALL, EMAIL, MEETING = ActivityKind.CALL, ActivityKind.EMAIL, ActivityKind.MEETING
OUT, IN, INTERNAL = Direction.OUTBOUND, Direction.INBOUND, Direction.INTERNAL
DEFAULTS = MetricSettings()

# kind, direction, outcome, duration, external participants, automated, status -> counters added
CONTRIBUTIONS = [
    ("dial no answer", CALL, OUT, Outcome.NO_ANSWER, 0, 1, False, "attributed", {"dials": 1}),
    ("dial voicemail", CALL, OUT, Outcome.VOICEMAIL, 25, 1, False, "attributed", {"dials": 1}),
    ("dial busy", CALL, OUT, Outcome.BUSY, 0, 1, False, "attributed", {"dials": 1}),
    ("dial failed", CALL, OUT, Outcome.FAILED, 0, 0, False, "attributed", {"dials": 1}),
    (
        "short connect",
        CALL,
        OUT,
        Outcome.CONNECTED,
        59,
        1,
        False,
        "attributed",
        {"dials": 1, "connects": 1, "talk_seconds": 59},
    ),
    (
        "conversation at exactly 60 s",
        CALL,
        OUT,
        Outcome.CONNECTED,
        60,
        1,
        False,
        "attributed",
        {"dials": 1, "connects": 1, "conversations": 1, "talk_seconds": 60},
    ),
    (
        "inbound connected call",
        CALL,
        IN,
        Outcome.CONNECTED,
        300,
        1,
        False,
        "attributed",
        {"talk_seconds": 300},
    ),
    ("inbound missed call", CALL, IN, Outcome.NO_ANSWER, 0, 1, False, "attributed", {}),
    ("call between colleagues", CALL, INTERNAL, Outcome.CONNECTED, 300, 0, False, "internal", {}),
    ("email sent", EMAIL, OUT, Outcome.SENT, 0, 1, False, "attributed", {"emails_sent": 1}),
    ("email from colleague", EMAIL, IN, Outcome.RECEIVED, 0, 0, False, "internal", {"emails_received": 1}),
    (
        "buyer reply",
        EMAIL,
        IN,
        Outcome.RECEIVED,
        0,
        2,
        False,
        "attributed",
        {"emails_received": 1, "buyer_replies": 1},
    ),
    ("internal email", EMAIL, INTERNAL, Outcome.SENT, 0, 0, False, "internal", {}),
    ("meeting booked", MEETING, OUT, Outcome.SCHEDULED, 1800, 1, False, "attributed", {"meetings_booked": 1}),
    ("internal meeting scheduled", MEETING, INTERNAL, Outcome.SCHEDULED, 1800, 0, False, "internal", {}),
    (
        "buyer meeting held",
        MEETING,
        IN,
        Outcome.HELD,
        1800,
        3,
        False,
        "attributed",
        {"meetings_booked": 1, "meetings_held": 1},
    ),
    (
        "internal meeting held",
        MEETING,
        INTERNAL,
        Outcome.HELD,
        1800,
        0,
        False,
        "internal",
        {"internal_meetings_held": 1},
    ),
    (
        "buyer cancelled",
        MEETING,
        OUT,
        Outcome.CANCELLED,
        0,
        1,
        False,
        "attributed",
        {"meetings_booked": 1, "meetings_cancelled": 1},
    ),
    (
        "buyer no-show",
        MEETING,
        OUT,
        Outcome.NO_SHOW,
        0,
        1,
        False,
        "attributed",
        {"meetings_booked": 1, "meetings_no_show": 1},
    ),
    ("sequence email", EMAIL, OUT, Outcome.SENT, 0, 1, True, "attributed", {}),
    ("automated dialler", CALL, OUT, Outcome.CONNECTED, 120, 1, True, "attributed", {}),
    ("excluded call", CALL, OUT, Outcome.CONNECTED, 120, 1, False, "excluded", {}),
    ("unmatched dial", CALL, OUT, Outcome.NO_ANSWER, 0, 1, False, "unmatched", {"dials": 1}),
    ("ambiguous email", EMAIL, OUT, Outcome.SENT, 0, 1, False, "ambiguous", {"emails_sent": 1}),
]


@pytest.mark.parametrize(
    ("kind", "direction", "outcome", "duration", "external", "automated", "status", "expected"),
    [pytest.param(*case[1:], id=case[0]) for case in CONTRIBUTIONS],
)
def test_contribution_of_each_activity(
    kind: ActivityKind,
    direction: Direction,
    outcome: Outcome,
    duration: int,
    external: int,
    automated: bool,
    status: str,
    expected: dict[str, int],
) -> None:
    event = attributed(
        kind=kind,
        direction=direction,
        outcome=outcome,
        duration_seconds=duration,
        external_participants=external,
        automated=automated,
        status=AttributionStatus(status),
    )

    counts = contribution_of(event, DEFAULTS)

    assert {name: amount for name, amount in counts.as_dict().items() if amount} == expected


def test_known_external_contact_counts_as_an_external_participant() -> None:
    reply = attributed(
        kind=EMAIL,
        direction=IN,
        outcome=Outcome.RECEIVED,
        external_participants=0,
        external_contact_ids=("c-9",),
    )

    assert contribution_of(reply, DEFAULTS) == MetricCounts(emails_received=1, buyer_replies=1)


def test_conversation_threshold_is_a_tenant_setting() -> None:
    call = attributed(duration_seconds=90)

    assert contribution_of(call, MetricSettings(conversation_min_seconds=120)).conversations == 0
    assert contribution_of(call, MetricSettings(conversation_min_seconds=90)).conversations == 1


ALL_LEVELS = {Level.REP, Level.TEAM, Level.TEAM_REP, Level.ACCOUNT, Level.DEAL}


@pytest.mark.parametrize(
    ("status", "levels"),
    [
        (AttributionStatus.ATTRIBUTED, ALL_LEVELS),
        (AttributionStatus.AMBIGUOUS, {Level.REP, Level.TEAM, Level.TEAM_REP, Level.ACCOUNT}),
        (AttributionStatus.ACCOUNT_ONLY, {Level.REP, Level.TEAM, Level.TEAM_REP, Level.ACCOUNT}),
        (AttributionStatus.UNMATCHED, {Level.REP, Level.TEAM, Level.TEAM_REP}),
        (AttributionStatus.INTERNAL, {Level.REP, Level.TEAM, Level.TEAM_REP}),
        (AttributionStatus.EXCLUDED, set()),
    ],
)
def test_levels_fed_by_each_status(status: AttributionStatus, levels: set[Level]) -> None:
    keys = rollup_keys(attributed(status=status), DEFAULTS)

    assert {key.level for key in keys} == levels


def test_rollup_keys_carry_the_ids_and_the_tenant_local_day() -> None:
    late_evening_utc = datetime(2026, 11, 24, 23, 30, tzinfo=UTC)
    event = attributed(occurred_at=late_evening_utc, deal_id=None)

    keys = rollup_keys(event, MetricSettings(time_zone="Europe/Berlin"))

    assert keys == (
        RollupKey(Level.REP, "rep-1", date(2026, 11, 25)),
        RollupKey(Level.TEAM, "team-1", date(2026, 11, 25)),
        RollupKey(Level.ACCOUNT, "acc-1", date(2026, 11, 25)),
        # The rep's work on the team: what the team's leaderboard ranks.
        RollupKey(Level.TEAM_REP, team_rep_id("team-1", "rep-1"), date(2026, 11, 25)),
    )


def test_a_rep_without_a_team_has_no_team_rep_cell() -> None:
    keys = rollup_keys(attributed(team_id=None), DEFAULTS)

    assert {key.level for key in keys} == {Level.REP, Level.ACCOUNT, Level.DEAL}
    assert team_rep_id("team-1", "rep-1") == "team-1\x1frep-1"


def test_automated_activity_has_no_rollup_keys() -> None:
    assert rollup_keys(attributed(automated=True), DEFAULTS) == ()


def test_the_second_report_of_a_call_counts_nothing_anywhere() -> None:
    call = attributed(outcome=Outcome.CONNECTED, duration_seconds=300)
    second = call.model_copy(update={"duplicate_of": uuid.UUID(int=7)})
    assert contribution_of(call, DEFAULTS) == MetricCounts(
        dials=1, connects=1, conversations=1, talk_seconds=300
    )
    assert contribution_of(second, DEFAULTS) == ZERO
    assert (rollup_keys(second, DEFAULTS), engaged_deal_ids(second)) == ((), ())
    # The fast path's struct reads the same.
    fast = decode_attributed(encode_body(second))
    assert isinstance(fast, Attributed)
    assert fast.duplicate_of == uuid.UUID(int=7)
    assert contribution_of(fast, DEFAULTS) == ZERO
    plain = decode_attributed(encode_body(call))
    assert contribution_of(plain, DEFAULTS) == contribution_of(call, DEFAULTS)


def test_catalogue_defines_every_counter_once_in_column_order() -> None:
    assert [definition.counter for definition in METRIC_CATALOGUE] == list(Counter)
    assert [field.name for field in fields(MetricCounts)] == [counter.value for counter in Counter]
    assert {d.counter for d in METRIC_CATALOGUE if d.source is Source.CRM} == {Counter.DEALS_WON}


def test_counts_add_and_subtract_field_by_field() -> None:
    left = MetricCounts(dials=3, talk_seconds=120)
    right = MetricCounts(dials=1, deals_won=1)

    assert left + right == MetricCounts(dials=4, talk_seconds=120, deals_won=1)
    assert left - right == MetricCounts(dials=2, talk_seconds=120, deals_won=-1)
    assert (left - left).is_zero()
    assert not left.is_zero()
    assert ZERO.is_zero()


def test_unknown_time_zone_is_refused() -> None:
    with pytest.raises(ValidationError, match="unknown IANA time zone"):
        MetricSettings(time_zone="Europe/Atlantis")


def _deal(**changes: object) -> DealV1:
    base: dict[str, object] = {
        "id": "deal-7",
        "updated_at": datetime(2026, 11, 25, 9, 0, tzinfo=UTC),
        "owner_rep_id": "rep-1",
        "account_id": "acc-1",
        "amount": Decimal("1200.00"),
        "is_closed": True,
        "is_won": True,
        "created_at": datetime(2026, 9, 1, tzinfo=UTC),
        "closed_at": datetime(2026, 11, 24, 23, 30, tzinfo=UTC),
    }
    base.update(changes)
    return DealV1.model_validate(base)


BERLIN = MetricSettings(time_zone="Europe/Berlin")


@pytest.mark.parametrize(
    ("deal", "expected"),
    [
        pytest.param(
            _deal(), WonDeal("deal-7", "rep-1", "acc-1", date(2026, 11, 25)), id="won, closed late evening"
        ),
        pytest.param(
            _deal(closed_at=None), WonDeal("deal-7", "rep-1", "acc-1", date(2026, 11, 25)), id="no close date"
        ),
        pytest.param(_deal(is_won=False), None, id="lost"),
        pytest.param(_deal(is_won=False, is_closed=False, closed_at=None), None, id="open"),
        pytest.param(_deal(deleted=True), None, id="deleted"),
        pytest.param(_deal(merged_into="deal-1"), None, id="merged away"),
    ],
)
def test_won_deal_of(deal: DealV1, expected: WonDeal | None) -> None:
    assert won_deal_of(deal, BERLIN) == expected


def test_won_deal_keys_skip_missing_ids() -> None:
    won = WonDeal("deal-7", "rep-1", None, date(2026, 11, 25))

    assert won_deal_keys(won, "team-1") == (
        RollupKey(Level.REP, "rep-1", date(2026, 11, 25)),
        RollupKey(Level.TEAM, "team-1", date(2026, 11, 25)),
        RollupKey(Level.DEAL, "deal-7", date(2026, 11, 25)),
    )


def _membership(team_id: str, valid_from: date, valid_to: date | None) -> TeamMembershipV1:
    return TeamMembershipV1(
        id=f"m-{team_id}",
        updated_at=datetime(2026, 1, 1, tzinfo=UTC),
        rep_id="rep-1",
        team_id=team_id,
        valid_from=valid_from,
        valid_to=valid_to,
    )


@pytest.mark.parametrize(
    ("day", "team"),
    [
        (date(2026, 5, 31), None),
        (date(2026, 6, 1), "team-east"),
        (date(2026, 8, 31), "team-east"),
        (date(2026, 9, 1), "team-west"),
        (date(2027, 3, 1), "team-west"),
    ],
)
def test_team_on_honours_validity(day: date, team: str | None) -> None:
    memberships = [
        _membership("team-east", date(2026, 6, 1), date(2026, 9, 1)),
        _membership("team-west", date(2026, 9, 1), None),
    ]

    assert team_on(memberships, "rep-1", day) == team


@pytest.mark.parametrize(
    ("status", "deal_id", "secondary", "automated", "engaged"),
    [
        (AttributionStatus.ATTRIBUTED, "deal-1", (), False, ("deal-1",)),
        # A close call between deals is work on each of them.
        (AttributionStatus.AMBIGUOUS, "deal-1", ("deal-2", "deal-1"), False, ("deal-1", "deal-2")),
        (AttributionStatus.AMBIGUOUS, None, (), False, ()),
        (AttributionStatus.ACCOUNT_ONLY, None, (), False, ()),
        (AttributionStatus.EXCLUDED, "deal-1", (), False, ()),
        # A sequence email touches no deal.
        (AttributionStatus.ATTRIBUTED, "deal-1", (), True, ()),
    ],
)
def test_the_deals_an_activity_engages(
    status: AttributionStatus,
    deal_id: str | None,
    secondary: tuple[str, ...],
    automated: bool,
    engaged: tuple[str, ...],
) -> None:
    event = attributed(status=status, deal_id=deal_id, secondary_deal_ids=secondary, automated=automated)

    assert engaged_deal_ids(event) == engaged


def test_the_counters_are_each_rule_tried_in_full_for_every_shape_of_activity() -> None:
    """The rules keyed by kind, direction and outcome give what trying every rule's every
    condition gives, for every kind, direction and outcome (those of another kind too, which the
    contract refuses but a rule must not count), with and without an external party, around the
    conversation threshold."""
    from itertools import product

    from libs.common.contracts.attribution import ActivityAttributedV1
    from services.metrics.domain.definitions import COUNTING_RULES, counter_amounts

    def by_every_rule(event: ActivityAttributedV1, settings: MetricSettings) -> dict[Counter, int]:
        facts = event.facts
        external = facts.external_participants > 0 or len(facts.external_contact_ids) > 0
        added: dict[Counter, int] = {}
        for rule in COUNTING_RULES:
            if (
                facts.kind is rule.kind
                and facts.direction in rule.directions
                and facts.outcome in rule.outcomes
                and not (rule.external == "required" and not external)
                and not (rule.external == "forbidden" and external)
                and not (
                    rule.needs_conversation_length
                    and facts.duration_seconds < settings.conversation_min_seconds
                )
            ):
                amount = facts.duration_seconds if rule.adds == "duration" else 1
                added[rule.counter] = added.get(rule.counter, 0) + amount
        return added

    base = attributed()
    counted = 0
    for kind, direction, outcome, duration, parties, contacts, threshold in product(
        ActivityKind, Direction, Outcome, (0, 59, 60, 3_600), (0, 2), ((), ("con-1",)), (0, 60)
    ):
        settings = MetricSettings(conversation_min_seconds=threshold)
        # Built without validation: an outcome of another kind is one a rule must not count.
        facts = base.facts.model_copy(
            update={
                "kind": kind,
                "direction": direction,
                "outcome": outcome,
                "duration_seconds": duration,
                "external_participants": parties,
                "external_contact_ids": contacts,
            }
        )
        event = base.model_copy(update={"facts": facts})
        expected = by_every_rule(event, settings)
        assert counter_amounts(event, settings) == expected, (kind, direction, outcome, duration, parties)
        counted += bool(expected)
    assert counted > 100
