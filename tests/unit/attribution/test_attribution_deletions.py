"""Deletions at the source, the pure parts: whose calendar a meeting was removed from
(``domain.attendance``), and which of a batch's deletions a restore read after them undoes
(``handlers.deletions_in_force``)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from libs.common.contracts.activities import (
    ActivityDeletedV1,
    ActivityIngestedV1,
    ActivityKind,
    Direction,
    Outcome,
    Participant,
    ParticipantRole,
    ResponseStatus,
    activity_id_for,
)
from libs.common.contracts.envelope import Envelope
from libs.common.kafka.runner import ConsumedMessage
from libs.common.topics import ACTIVITY_INGESTED
from services.attribution.domain.attendance import (
    CalendarRemoval,
    Removal,
    RemovalOutcome,
    removal_from_calendar,
    removals_from_calendars,
    removals_in_force,
)
from services.attribution.handlers import deletions_in_force

WHEN = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
ANA, BOB, BUYER, BEA = "ana@acme.example", "bob@acme.example", "bo@globex.example", "bea@globex.example"
ATTENDEE, ORGANIZER = ParticipantRole.ATTENDEE, ParticipantRole.ORGANIZER
DECLINED = ResponseStatus.DECLINED


def _meeting(
    *people: Participant, direction: Direction = Direction.OUTBOUND, **extra: Any
) -> ActivityIngestedV1:
    return ActivityIngestedV1(
        tenant_id="acme",
        activity_id=activity_id_for("acme", "google-calendar", "evt"),
        source="google-calendar",
        external_id="evt",
        kind=ActivityKind.MEETING,
        direction=direction,
        outcome=Outcome.HELD,
        occurred_at=WHEN,
        duration_seconds=1800,
        participants=people,
        revision=1_795_000_000_000,
        ingested_at=WHEN,
        **extra,
    )


def _p(email: str, role: ParticipantRole = ATTENDEE, answer: ResponseStatus | None = None) -> Participant:
    return Participant(email=email, role=role, response_status=answer)


BOB_WITH_ANA_AND_BUYER = _meeting(_p(BOB, ORGANIZER), _p(ANA), _p(BUYER))


@pytest.mark.parametrize(
    ("meeting", "seen_in"),
    [
        (BOB_WITH_ANA_AND_BUYER, None),  # not from a calendar connector (HubSpot, the API)
        (BOB_WITH_ANA_AND_BUYER, BOB),  # the organizer's own calendar
        (BOB_WITH_ANA_AND_BUYER, "Bob@ACME.example"),  # read as the address it is
        (_meeting(_p(ANA), _p(BUYER)), ANA),  # no organizer known: that calendar's word stands
    ],
)
def test_a_deletion_deletes_the_meeting_from_its_organizer_s_calendar_or_when_nobody_organised_it(
    meeting: ActivityIngestedV1, seen_in: str | None
) -> None:
    assert removal_from_calendar(meeting, seen_in) == RemovalOutcome(CalendarRemoval.DELETED)


def test_an_attendee_who_removed_it_from_her_calendar_leaves_a_meeting_two_still_attend() -> None:
    outcome = removal_from_calendar(BOB_WITH_ANA_AND_BUYER, ANA)
    assert outcome.removal is CalendarRemoval.LEFT
    assert outcome.activity == _meeting(_p(BOB, ORGANIZER), _p(BUYER))


def test_a_meeting_fewer_than_two_attend_once_she_left_is_called_off_listing_who_declined() -> None:
    """A buyer's invitation Ana removed: the buyer alone is left, so it did not take place; the
    external organizer is not listed (as ingest lists a called-off event), Ana is, declined."""
    invited = _meeting(_p(BUYER, ORGANIZER), _p(ANA), direction=Direction.INBOUND)
    outcome = removal_from_calendar(invited, ANA)
    assert outcome == RemovalOutcome(
        CalendarRemoval.LEFT,
        _meeting(_p(ANA, answer=DECLINED), direction=Direction.INBOUND).model_copy(
            update={"outcome": Outcome.CANCELLED}
        ),
        (_p(ANA),),
    )


def test_a_called_off_meeting_keeps_an_internal_organizer_and_those_who_declined_before() -> None:
    meeting = _meeting(_p(BOB, ORGANIZER), _p(ANA), _p(BUYER, answer=DECLINED))
    outcome = removal_from_calendar(meeting, ANA)
    assert outcome.activity is not None
    assert outcome.activity.outcome is Outcome.CANCELLED
    assert outcome.activity.participants == (
        _p(BOB, ORGANIZER),
        _p(BUYER, answer=DECLINED),
        _p(ANA, answer=DECLINED),
    )


def test_someone_not_attending_removing_it_changes_nothing() -> None:
    declined_before = _meeting(_p(BOB, ORGANIZER), _p(ANA, answer=DECLINED), _p(BUYER), _p(BEA))
    assert removal_from_calendar(declined_before, ANA) == RemovalOutcome(CalendarRemoval.UNCHANGED)
    assert removal_from_calendar(BOB_WITH_ANA_AND_BUYER, "assistant@acme.example") == RemovalOutcome(
        CalendarRemoval.UNCHANGED
    )


def test_a_mailbox_synced_under_another_of_a_rep_s_addresses_is_hers() -> None:
    """Bob's Microsoft 365 mailbox is synced under his sign-in name; his meetings name him by his
    SMTP address. The CRM holds both for him (and both of Ana's): his calendar's deletion is the
    organizer's, Ana's is hers."""
    people = {
        "bob@acme.onmicrosoft.com": "rep-bob",
        BOB: "rep-bob",
        "ana@acme.onmicrosoft.com": "rep-ana",
        ANA: "rep-ana",
    }
    assert removal_from_calendar(
        BOB_WITH_ANA_AND_BUYER, "bob@acme.onmicrosoft.com", people
    ) == RemovalOutcome(CalendarRemoval.DELETED)
    assert removal_from_calendar(
        BOB_WITH_ANA_AND_BUYER, "ana@acme.onmicrosoft.com", people
    ) == RemovalOutcome(CalendarRemoval.LEFT, _meeting(_p(BOB, ORGANIZER), _p(BUYER)), (_p(ANA),))
    # Unknown to the CRM: in Google (one event id in every calendar) that address is nobody
    # attending (a guest invited through a group address); in Graph the id is that mailbox's own
    # copy, deleted as before.
    assert removal_from_calendar(BOB_WITH_ANA_AND_BUYER, "bob@acme.onmicrosoft.com") == RemovalOutcome(
        CalendarRemoval.UNCHANGED
    )
    own_copy = BOB_WITH_ANA_AND_BUYER.model_copy(update={"source": "microsoft-graph"})
    assert removal_from_calendar(own_copy, "bob@acme.onmicrosoft.com") == RemovalOutcome(
        CalendarRemoval.DELETED
    )
    assert removal_from_calendar(own_copy, ANA).removal is CalendarRemoval.LEFT


def test_several_removals_of_one_meeting_are_read_in_order() -> None:
    """One batch can hold the meeting seen deleted in Ana's calendar and in Bob's."""
    meeting = _meeting(_p(BOB, ORGANIZER), _p(ANA), _p(BUYER), _p(BEA))
    assert removals_from_calendars(meeting, [ANA, BOB]) == (1, None, ())
    assert removals_from_calendars(meeting, [BOB, ANA]) == (0, None, ())
    assert removals_from_calendars(meeting, [ANA, BEA, ANA]) == (
        None,
        _meeting(_p(BOB, ORGANIZER), _p(BUYER)),
        (_p(ANA), _p(BEA)),
    )
    assert removals_from_calendars(meeting, ["assistant@acme.example"]) == (None, None, ())


ACCEPTED, NEEDS_ACTION = ResponseStatus.ACCEPTED, ResponseStatus.NEEDS_ACTION


def test_a_guest_who_removed_it_stays_out_while_the_organizer_lists_her_answer_of_then() -> None:
    """Ana (accepted) and Bea (tentative) removed Bob's meeting from their calendars at revision
    R. Bob's edit (R + 1) lists Ana accepted, as she was: nothing newer of her, she stays out
    (left out while two attend) and her removal is kept from R + 1; it lists Bea re-invited
    (``needs_action``): she is back, her removal ended. Bob's copy of R, or older, changes
    nothing. Ana alone left with Bob once Bea, the buyer too, is gone: called off."""
    tentative = ResponseStatus.TENTATIVE
    revision = 1_795_000_000_000
    removals = [Removal(ANA, ACCEPTED, revision), Removal(BEA, tentative, revision)]
    edit = _meeting(
        _p(BOB, ORGANIZER), _p(ANA, answer=ACCEPTED), _p(BUYER, answer=ACCEPTED), _p(BEA, answer=NEEDS_ACTION)
    ).model_copy(update={"revision": revision + 1})
    meeting, ended, kept = removals_in_force(edit, removals)
    assert (ended, kept) == ((BEA,), (ANA,))
    assert meeting.participants == (
        _p(BOB, ORGANIZER),
        _p(BUYER, answer=ACCEPTED),
        _p(BEA, answer=NEEDS_ACTION),
    )
    assert meeting.outcome is Outcome.HELD
    stale = edit.model_copy(update={"revision": revision})
    assert removals_in_force(stale, removals) == (stale, (), ())
    alone = _meeting(_p(BOB, ORGANIZER), _p(ANA, answer=ACCEPTED)).model_copy(
        update={"revision": revision + 1}
    )
    off, _, _ = removals_in_force(alone, removals)
    assert (off.outcome, off.participants) == (
        Outcome.CANCELLED,
        (_p(BOB, ORGANIZER), _p(ANA, answer=DECLINED)),
    )


ID = activity_id_for("acme", "google-calendar", "evt")


def _message(offset: int, payload: Any) -> ConsumedMessage[Any]:
    envelope = Envelope(id=str(offset), source="/ingest", type="t", subject=str(ID), tenant="acme")
    return ConsumedMessage(ACTIVITY_INGESTED, 0, offset, None, envelope, payload)


def _deletion(revision: int | None = None) -> ActivityDeletedV1:
    return ActivityDeletedV1(
        tenant_id="acme",
        activity_id=ID,
        source="google-calendar",
        external_id="evt",
        deleted_at=WHEN,
        revision=revision,
    )


def _revision(revision: int) -> ActivityIngestedV1:
    return _meeting(_p(BOB, ORGANIZER), _p(BUYER)).model_copy(update={"revision": revision})


@pytest.mark.parametrize(
    ("batch", "fresh", "in_force"),
    [
        # Deleted, then restored in the same batch: the restore stands.
        ([_deletion(), _revision(7)], {ID}, []),
        # A revision before the deletion: the deletion follows it.
        ([_revision(7), _deletion()], {ID}, [0]),
        # A copy of a revision read before the deletion, after it: no restore.
        ([_revision(7), _deletion(), _revision(7)], {ID}, [0]),
        # Older than the deletion's own revision: no restore.
        ([_deletion(9), _revision(8)], {ID}, [0]),
        ([_deletion(9), _revision(10)], {ID}, []),
        # Not newer than the revision stored before the batch (``fresh``): no restore.
        ([_deletion(), _revision(7)], set(), [0]),
    ],
)
def test_a_deletion_is_in_force_unless_a_newer_revision_follows_it_in_the_batch(
    batch: list[Any], fresh: set[uuid.UUID], in_force: list[int]
) -> None:
    messages = [_message(offset, payload) for offset, payload in enumerate(batch)]
    deletions = [p for p in batch if isinstance(p, ActivityDeletedV1)]
    assert deletions_in_force(messages, fresh) == [deletions[i] for i in in_force]
