"""The metric catalogue and what one attributed activity (or one won deal) adds to it.

Every counter is defined here once, as data: the SQL rollups, the reference
aggregation and the documentation (docs/metrics.md) all follow these tables.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, fields
from datetime import date, datetime, timedelta
from enum import StrEnum
from functools import cached_property
from operator import attrgetter
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

from libs.common.contracts.activities import OUTCOMES_BY_KIND, ActivityKind, Direction, Outcome
from libs.common.contracts.attribution import AttributionStatus
from libs.common.contracts.attribution_fast import AttributedEvent, is_duplicate
from libs.common.contracts.crm import DealV1, TeamMembershipV1
from services.metrics.domain.periods import FiscalCalendar


class Counter(StrEnum):
    """A rollup column. The value is the column name and the ``MetricCounts`` field name."""

    DIALS = "dials"
    CONNECTS = "connects"
    CONVERSATIONS = "conversations"
    TALK_SECONDS = "talk_seconds"
    EMAILS_SENT = "emails_sent"
    EMAILS_RECEIVED = "emails_received"
    BUYER_REPLIES = "buyer_replies"
    MEETINGS_BOOKED = "meetings_booked"
    MEETINGS_HELD = "meetings_held"
    MEETINGS_CANCELLED = "meetings_cancelled"
    MEETINGS_NO_SHOW = "meetings_no_show"
    INTERNAL_MEETINGS_HELD = "internal_meetings_held"
    DEALS_WON = "deals_won"


class Unit(StrEnum):
    COUNT = "count"
    SECONDS = "seconds"


class Source(StrEnum):
    """Where a counter's figures come from."""

    ACTIVITY = "activity-attributed"
    CRM = "crm-entity-changed"


@dataclass(frozen=True, slots=True)
class MetricDefinition:
    counter: Counter
    unit: Unit
    source: Source
    description: str


METRIC_CATALOGUE: tuple[MetricDefinition, ...] = (
    MetricDefinition(
        Counter.DIALS, Unit.COUNT, Source.ACTIVITY, "Outbound call attempts, whatever the outcome."
    ),
    MetricDefinition(Counter.CONNECTS, Unit.COUNT, Source.ACTIVITY, "Outbound calls that connected."),
    MetricDefinition(
        Counter.CONVERSATIONS,
        Unit.COUNT,
        Source.ACTIVITY,
        "Outbound connected calls lasting at least conversation_min_seconds (default 60).",
    ),
    MetricDefinition(
        Counter.TALK_SECONDS,
        Unit.SECONDS,
        Source.ACTIVITY,
        "Duration of connected inbound and outbound calls; meetings are not talk time.",
    ),
    MetricDefinition(Counter.EMAILS_SENT, Unit.COUNT, Source.ACTIVITY, "Outbound emails sent."),
    MetricDefinition(Counter.EMAILS_RECEIVED, Unit.COUNT, Source.ACTIVITY, "Inbound emails received."),
    MetricDefinition(
        Counter.BUYER_REPLIES,
        Unit.COUNT,
        Source.ACTIVITY,
        "Inbound emails with at least one external participant (a subset of emails_received).",
    ),
    MetricDefinition(
        Counter.MEETINGS_BOOKED,
        Unit.COUNT,
        Source.ACTIVITY,
        "Meetings with at least one external attendee, whatever their later outcome, on the meeting's day.",
    ),
    MetricDefinition(
        Counter.MEETINGS_HELD,
        Unit.COUNT,
        Source.ACTIVITY,
        "Held meetings with at least one external attendee.",
    ),
    MetricDefinition(
        Counter.MEETINGS_CANCELLED,
        Unit.COUNT,
        Source.ACTIVITY,
        "Cancelled meetings with at least one external attendee.",
    ),
    MetricDefinition(
        Counter.MEETINGS_NO_SHOW,
        Unit.COUNT,
        Source.ACTIVITY,
        "Meetings with at least one external attendee that the buyer did not attend.",
    ),
    MetricDefinition(
        Counter.INTERNAL_MEETINGS_HELD,
        Unit.COUNT,
        Source.ACTIVITY,
        "Held meetings without any external attendee.",
    ),
    MetricDefinition(
        Counter.DEALS_WON,
        Unit.COUNT,
        Source.CRM,
        "Deals whose latest CRM state is won, on the local day they closed, credited to the deal owner.",
    ),
)


@dataclass(frozen=True, slots=True)
class MetricCounts:
    """Integer counters of one rollup cell; immutable, added and subtracted field by field."""

    dials: int = 0
    connects: int = 0
    conversations: int = 0
    talk_seconds: int = 0
    emails_sent: int = 0
    emails_received: int = 0
    buyer_replies: int = 0
    meetings_booked: int = 0
    meetings_held: int = 0
    meetings_cancelled: int = 0
    meetings_no_show: int = 0
    internal_meetings_held: int = 0
    deals_won: int = 0

    @classmethod
    def of(cls, values: Mapping[Counter, int]) -> MetricCounts:
        return cls(**{counter.value: amount for counter, amount in values.items()})

    def __getitem__(self, counter: Counter) -> int:
        value: int = getattr(self, counter.value)
        return value

    def items(self) -> Iterator[tuple[Counter, int]]:
        for field in fields(self):
            yield Counter(field.name), getattr(self, field.name)

    def as_dict(self) -> dict[str, int]:
        return {counter.value: amount for counter, amount in self.items()}

    def is_zero(self) -> bool:
        return all(amount == 0 for _, amount in self.items())

    def __add__(self, other: MetricCounts) -> MetricCounts:
        return MetricCounts.of({counter: amount + other[counter] for counter, amount in self.items()})

    def __sub__(self, other: MetricCounts) -> MetricCounts:
        return MetricCounts.of({counter: amount - other[counter] for counter, amount in self.items()})


ZERO = MetricCounts()


def buyer_answered(
    buyer_replies: int, conversations: int, meetings_held: int, talk_seconds: int, dials: int
) -> bool:
    """Whether one activity's counters are a buyer answer (``no_buyer_reply`` reads these): an email
    from the buyer, a conversation, an external meeting held, or an inbound connected call (talk
    time without a dial). ``libs.common.db.deal_engagement.buyer_answered_sql`` is the same rule."""
    return buyer_replies > 0 or conversations > 0 or meetings_held > 0 or (talk_seconds > 0 and dials == 0)


def total(counts: Iterable[MetricCounts]) -> MetricCounts:
    result = ZERO
    for item in counts:
        result = result + item
    return result


class MetricSettings(BaseModel):
    """A tenant's metric rules: its calendar and the conversation threshold."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: IANA zone in which activities are bucketed into days (and so weeks, months, quarters).
    time_zone: str = "UTC"
    conversation_min_seconds: int = Field(default=60, ge=0, le=86_400)
    fiscal_year_start_month: int = Field(default=1, ge=1, le=12)
    #: "end": FY2027 ends in calendar 2027 (the usual convention); "start": it starts in 2027.
    fiscal_year_named_by: Literal["end", "start"] = "end"
    #: Activities older than this many days are past retention: a version of one that holds no
    #: contribution (purged, or replayed) is not counted, so the kept aggregates stay exact.
    activity_retention_days: int | None = Field(default=None, ge=1)

    def past_retention(self, occurred_at: datetime, now: datetime) -> bool:
        cutoff = self.retention_cutoff(now)
        return cutoff is not None and occurred_at < cutoff

    def retention_cutoff(self, now: datetime) -> datetime | None:
        """The instant before which an activity is past retention (``past_retention``), if any."""
        days = self.activity_retention_days
        return None if days is None else now - timedelta(days=days)

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown IANA time zone {value!r}") from exc
        return value

    @cached_property
    def calendar(self) -> FiscalCalendar:
        return FiscalCalendar(
            zone=ZoneInfo(self.time_zone),
            fiscal_year_start_month=self.fiscal_year_start_month,
            fiscal_year_named_by=self.fiscal_year_named_by,
        )


# --- what one activity adds ------------------------------------------------------------------

_ANY_DIRECTION = frozenset(Direction)
_ANY_MEETING = OUTCOMES_BY_KIND[ActivityKind.MEETING]


@dataclass(frozen=True, slots=True)
class CountingRule:
    """An activity matching kind, direction and outcome (and the extra conditions) adds to ``counter``."""

    counter: Counter
    kind: ActivityKind
    directions: frozenset[Direction]
    outcomes: frozenset[Outcome]
    external: Literal["required", "forbidden", "either"] = "either"
    needs_conversation_length: bool = False
    adds: Literal["one", "duration"] = "one"


COUNTING_RULES: tuple[CountingRule, ...] = (
    CountingRule(
        Counter.DIALS, ActivityKind.CALL, frozenset({Direction.OUTBOUND}), OUTCOMES_BY_KIND[ActivityKind.CALL]
    ),
    CountingRule(
        Counter.CONNECTS, ActivityKind.CALL, frozenset({Direction.OUTBOUND}), frozenset({Outcome.CONNECTED})
    ),
    CountingRule(
        Counter.CONVERSATIONS,
        ActivityKind.CALL,
        frozenset({Direction.OUTBOUND}),
        frozenset({Outcome.CONNECTED}),
        needs_conversation_length=True,
    ),
    # Calls between colleagues (direction internal) are not selling time.
    CountingRule(
        Counter.TALK_SECONDS,
        ActivityKind.CALL,
        frozenset({Direction.OUTBOUND, Direction.INBOUND}),
        frozenset({Outcome.CONNECTED}),
        adds="duration",
    ),
    CountingRule(
        Counter.EMAILS_SENT, ActivityKind.EMAIL, frozenset({Direction.OUTBOUND}), frozenset({Outcome.SENT})
    ),
    CountingRule(
        Counter.EMAILS_RECEIVED,
        ActivityKind.EMAIL,
        frozenset({Direction.INBOUND}),
        frozenset({Outcome.RECEIVED}),
    ),
    CountingRule(
        Counter.BUYER_REPLIES,
        ActivityKind.EMAIL,
        frozenset({Direction.INBOUND}),
        frozenset({Outcome.RECEIVED}),
        external="required",
    ),
    # A meeting moves scheduled -> held/cancelled/no_show as later versions of one activity;
    # counting "booked" for every outcome keeps the booking when the outcome changes.
    CountingRule(
        Counter.MEETINGS_BOOKED, ActivityKind.MEETING, _ANY_DIRECTION, _ANY_MEETING, external="required"
    ),
    CountingRule(
        Counter.MEETINGS_HELD,
        ActivityKind.MEETING,
        _ANY_DIRECTION,
        frozenset({Outcome.HELD}),
        external="required",
    ),
    CountingRule(
        Counter.MEETINGS_CANCELLED,
        ActivityKind.MEETING,
        _ANY_DIRECTION,
        frozenset({Outcome.CANCELLED}),
        external="required",
    ),
    CountingRule(
        Counter.MEETINGS_NO_SHOW,
        ActivityKind.MEETING,
        _ANY_DIRECTION,
        frozenset({Outcome.NO_SHOW}),
        external="required",
    ),
    CountingRule(
        Counter.INTERNAL_MEETINGS_HELD,
        ActivityKind.MEETING,
        _ANY_DIRECTION,
        frozenset({Outcome.HELD}),
        external="forbidden",
    ),
)


#: Enum members the per-event path reads, as module constants: in Python 3.11 ``EnumType`` defines
#: ``__getattr__``, so reading a member from its class (``AttributionStatus.EXCLUDED``) goes through
#: a Python-level ``type.__getattribute__`` call, about 800 instructions, where a module global is
#: one dictionary lookup. The same objects.
_EXCLUDED = AttributionStatus.EXCLUDED


def _has_external(event: AttributedEvent) -> bool:
    facts = event.facts
    return facts.external_participants > 0 or len(facts.external_contact_ids) > 0


def is_counted(event: AttributedEvent) -> bool:
    """Automated activities (no-reply senders, sequences), excluded ones and the second report of
    a call another source reported first (``duplicate_of``: the call counts once, under the
    first report) never count."""
    return not event.facts.automated and event.status is not _EXCLUDED and not is_duplicate(event)


#: Statuses whose deal ids say which deals an activity worked on (see ``engaged_deal_ids``).
_ENGAGING_STATUSES = frozenset({AttributionStatus.ATTRIBUTED, AttributionStatus.AMBIGUOUS})


def engaged_deal_ids(event: AttributedEvent) -> tuple[str, ...]:
    """The deals this version of an activity engages: the one definition of "activity on a deal".

    A counted activity whose attribution is ``attributed`` or ``ambiguous`` engages its
    ``deal_id`` and every ``secondary_deal_ids``: a close call between deals is work on each
    of them. It feeds a deal's last activity, engaged contacts and buyer replies (the stale
    insight and the deal timeline alike); only the ``attributed`` deal is *credited* with the
    counters and score, so deal totals never double-count.
    """
    return counted_engaged_deal_ids(event) if is_counted(event) else ()


def counted_engaged_deal_ids(event: AttributedEvent) -> tuple[str, ...]:
    """``engaged_deal_ids`` of a version ``is_counted`` holds for (not checked again)."""
    if event.status not in _ENGAGING_STATUSES:
        return ()
    deals = [event.deal_id] if event.deal_id is not None else []
    deals += [deal for deal in event.secondary_deal_ids if deal not in deals]
    return tuple(deals)


#: The counting rules whose kind, direction and outcome an activity's are, in ``COUNTING_RULES``
#: order: only their other conditions are left to try.
_RULES_BY_FACTS: dict[tuple[ActivityKind, Direction, Outcome], tuple[CountingRule, ...]] = {
    (kind, direction, outcome): tuple(
        rule
        for rule in COUNTING_RULES
        if rule.kind is kind and direction in rule.directions and outcome in rule.outcomes
    )
    for kind in ActivityKind
    for direction in Direction
    for outcome in Outcome
}


def counter_amounts(event: AttributedEvent, settings: MetricSettings) -> dict[Counter, int]:
    """The non-zero counters of ``contribution_of``, as a plain mapping (the consumer's hot path)."""
    return counted_amounts(event, settings) if is_counted(event) else {}


def counted_amounts(event: AttributedEvent, settings: MetricSettings) -> dict[Counter, int]:
    """``counter_amounts`` of a version ``is_counted`` holds for (not checked again)."""
    added: dict[Counter, int] = {}
    facts = event.facts
    for rule in _RULES_BY_FACTS[facts.kind, facts.direction, facts.outcome]:
        # The rule's external and length conditions: its kind, direction and outcome are the key's.
        if rule.external != "either" and _has_external(event) is (rule.external == "forbidden"):
            continue
        if rule.needs_conversation_length and facts.duration_seconds < settings.conversation_min_seconds:
            continue
        amount = facts.duration_seconds if rule.adds == "duration" else 1
        added[rule.counter] = added.get(rule.counter, 0) + amount
    return added


def counting_shape(event: AttributedEvent) -> tuple[int, int, int, bool, int]:
    """Everything ``counted_amounts`` reads of a version: two versions of one shape count the
    same under the same settings. The kind, direction and outcome by identity (members are
    singletons, and an enum member's hash is a Python-level call)."""
    facts = event.facts
    return (
        id(facts.kind),
        id(facts.direction),
        id(facts.outcome),
        _has_external(event),
        facts.duration_seconds,
    )


def contribution_of(event: AttributedEvent, settings: MetricSettings) -> MetricCounts:
    """What this version of an activity adds to every rollup cell it belongs to."""
    added = counter_amounts(event, settings)
    return MetricCounts.of(added) if added else ZERO


# --- where it is added -----------------------------------------------------------------------


class Level(StrEnum):
    REP = "rep"
    TEAM = "team"
    ACCOUNT = "account"
    DEAL = "deal"
    #: A rep's work on one team (``team_rep_id``): what a team's leaderboard ranks its members by,
    #: so a rep who moved mid-period counts on each team only what was earned there.
    TEAM_REP = "team_rep"


#: Joins a team id and a rep id into a ``team_rep`` entity id; a control character no id carries.
TEAM_REP_SEPARATOR = "\x1f"


def team_rep_id(team_id: str, rep_id: str) -> str:
    """The entity id of a rep's work on a team: ``team_id``, the separator, ``rep_id``."""
    return f"{team_id}{TEAM_REP_SEPARATOR}{rep_id}"


#: The levels kept as ``metric_rollups`` rows: the ones something reads (rep and team scores,
#: funnels, leaderboards, insights, digests). No API or insight reads account or deal rollups,
#: which were 88 % of the cells written in the pipeline bench; each contribution row keeps the
#: account and deal it credits, with its day, so their figures stay derivable from it.
STORED_LEVELS: frozenset[Level] = frozenset({Level.REP, Level.TEAM, Level.TEAM_REP})

#: Which rollup levels an attribution status feeds (each only when the event carries that id).
#: Unmatched and internal activities are still the rep's work; only an attributed activity
#: is sure enough of its deal, and secondary deals are never credited (no double counting).
LEVELS_BY_STATUS: dict[AttributionStatus, frozenset[Level]] = {
    AttributionStatus.ATTRIBUTED: frozenset(
        {Level.REP, Level.TEAM, Level.TEAM_REP, Level.ACCOUNT, Level.DEAL}
    ),
    AttributionStatus.AMBIGUOUS: frozenset({Level.REP, Level.TEAM, Level.TEAM_REP, Level.ACCOUNT}),
    AttributionStatus.ACCOUNT_ONLY: frozenset({Level.REP, Level.TEAM, Level.TEAM_REP, Level.ACCOUNT}),
    AttributionStatus.UNMATCHED: frozenset({Level.REP, Level.TEAM, Level.TEAM_REP}),
    AttributionStatus.INTERNAL: frozenset({Level.REP, Level.TEAM, Level.TEAM_REP}),
    AttributionStatus.EXCLUDED: frozenset(),
}


@dataclass(frozen=True, slots=True, order=True)
class RollupKey:
    """One rollup cell: a level, the entity's id at that level and the tenant-local day."""

    level: Level
    entity_id: str
    day: date


#: The levels as module constants (see ``_EXCLUDED``).
LEVEL_REP, LEVEL_TEAM, LEVEL_ACCOUNT, LEVEL_DEAL, LEVEL_TEAM_REP = (
    Level.REP,
    Level.TEAM,
    Level.ACCOUNT,
    Level.DEAL,
    Level.TEAM_REP,
)


def _team_rep_of(event: AttributedEvent) -> str | None:
    if event.team_id is None or event.rep_id is None:
        return None
    return team_rep_id(event.team_id, event.rep_id)


#: Each level's entity id in a version: its id field, or the team and rep joined (``team_rep``).
_ENTITY_OF: dict[Level, Callable[[AttributedEvent], str | None]] = {
    LEVEL_REP: attrgetter("rep_id"),
    LEVEL_TEAM: attrgetter("team_id"),
    LEVEL_ACCOUNT: attrgetter("account_id"),
    LEVEL_DEAL: attrgetter("deal_id"),
    LEVEL_TEAM_REP: _team_rep_of,
}
#: The levels each status credits, in ``Level`` order, with how each reads its entity id.
_CREDITED_BY_STATUS: dict[
    AttributionStatus, tuple[tuple[Level, Callable[[AttributedEvent], str | None]], ...]
] = {
    status: tuple((level, _ENTITY_OF[level]) for level in Level if level in levels)
    for status, levels in LEVELS_BY_STATUS.items()
}


def credited_entities(event: AttributedEvent) -> tuple[tuple[Level, str], ...]:
    """The (level, entity id) pairs this version credits, in ``Level`` order (none when it does
    not count): ``rollup_keys`` without the day."""
    return counted_entities(event) if is_counted(event) else ()


def counted_entities(event: AttributedEvent) -> tuple[tuple[Level, str], ...]:
    """``credited_entities`` of a version ``is_counted`` holds for (not checked again)."""
    out = []
    for level, entity_of in _CREDITED_BY_STATUS[event.status]:
        entity_id = entity_of(event)
        if entity_id is not None:
            out.append((level, entity_id))
    return tuple(out)


def rollup_keys(event: AttributedEvent, settings: MetricSettings) -> tuple[RollupKey, ...]:
    """The cells this version of an activity contributes to (none when it does not count)."""
    entities = credited_entities(event)
    if not entities:
        return ()
    day = settings.calendar.local_day(event.facts.occurred_at)
    return tuple(RollupKey(level, entity_id, day) for level, entity_id in entities)


# --- won deals (from CRM data) ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WonDeal:
    deal_id: str
    owner_rep_id: str | None
    account_id: str | None
    day: date


def won_deal_of(deal: DealV1, settings: MetricSettings) -> WonDeal | None:
    """The win a deal's latest CRM state stands for, or None if it is not (or no longer) won.

    Deleted and merged deals count nothing (a merge's survivor carries the win). A won deal
    without ``closed_at`` is dated by ``updated_at``, when the CRM last reported it.
    """
    if deal.deleted or deal.merged_into is not None or not deal.is_won:
        return None
    closed = deal.closed_at if deal.closed_at is not None else deal.updated_at
    return WonDeal(deal.id, deal.owner_rep_id, deal.account_id, settings.calendar.local_day(closed))


def team_on(memberships: Iterable[TeamMembershipV1], rep_id: str, day: date) -> str | None:
    """The rep's team on ``day``: valid_from inclusive, valid_to exclusive; the latest start wins overlaps."""
    current = [
        membership
        for membership in memberships
        if membership.rep_id == rep_id
        and not membership.deleted
        and membership.valid_from <= day
        and (membership.valid_to is None or day < membership.valid_to)
    ]
    if not current:
        return None
    return max(current, key=lambda membership: (membership.valid_from, membership.team_id)).team_id


def won_deal_keys(won: WonDeal, team_id: str | None) -> tuple[RollupKey, ...]:
    """The cells a win adds ``deals_won = 1`` to: owner rep, the rep's team, deal and account."""
    ids = {
        Level.REP: won.owner_rep_id,
        Level.TEAM: team_id,
        Level.ACCOUNT: won.account_id,
        Level.DEAL: won.deal_id,
    }
    return tuple(
        RollupKey(level, entity_id, won.day) for level, entity_id in ids.items() if entity_id is not None
    )


DEAL_WON = MetricCounts(deals_won=1)
