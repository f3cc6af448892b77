"""A meeting removed from one person's calendar: deleted, or only left by her.

The calendar connectors sync each mailbox's calendar, so a deletion names the mailbox it was
seen in (``ActivityDeletedV1.seen_in``). Only the organizer's calendar deletes a meeting (or
any calendar, when the organizer is unknown): an invited rep who removes the event from her own
calendar no longer attends it, and the colleague who held it keeps it. She is then read as
having declined, under the rule ingest applies to a calendar's answers
(``libs.common.calendar_attendance.meeting_attendance``, where it is explained): the meeting
goes on without her, or is called off. The stored meeting holds the people it needs: the
organizer's role, everyone's answer, and its direction, which tells whether the organizer is
internal (only an external organizer makes a meeting inbound).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from libs.common.calendar_attendance import meeting_attendance
from libs.common.contracts.activities import (
    ActivityIngestedV1,
    ActivityKind,
    Direction,
    Outcome,
    Participant,
    ParticipantRole,
    ResponseStatus,
    declined,
)

#: No rep known by several addresses.
_NOBODY: Mapping[str, str] = {}
#: Sources whose calendars each hold their own copy of a meeting, under their own id (Graph): a
#: deletion names the copy of the very mailbox it was seen in. Google's event has one id in every
#: calendar, so a calendar whose owner is not among its people (invited through a group) is not hers.
OWN_COPY_SOURCES = frozenset({"microsoft-graph"})


class CalendarRemoval(StrEnum):
    """What a deletion seen in one calendar does to the meeting."""

    #: The meeting itself is deleted (its organizer's calendar, or nobody's in particular).
    DELETED = "deleted"
    #: The calendar's owner no longer attends: the meeting goes on without her (or is called off).
    LEFT = "left"
    #: The calendar's owner was not attending: nothing changes.
    UNCHANGED = "unchanged"


@dataclass(frozen=True, slots=True)
class RemovalOutcome:
    removal: CalendarRemoval
    #: ``LEFT``: the meeting as it now stands, same revision.
    activity: ActivityIngestedV1 | None = None
    #: ``LEFT``: who left, as the meeting listed her before (her answer then).
    left: tuple[Participant, ...] = ()


@dataclass(frozen=True, slots=True)
class Removal:
    """A guest who removed a meeting from her own calendar: her address as the meeting lists her
    (lower-cased), her answer in the meeting then, and the meeting's revision then."""

    address: str
    answer: ResponseStatus | None
    revision: int


def removal_from_calendar(
    activity: ActivityIngestedV1, seen_in: str | None, people: Mapping[str, str] = _NOBODY
) -> RemovalOutcome:
    """What the deletion of ``activity`` seen in ``seen_in``'s calendar means (pure).

    ``people`` maps the addresses of reps the CRM knows to their person: a mailbox synced under
    one address of a rep (a Microsoft 365 sign-in name) is hers under another (the SMTP address
    a meeting names her by)."""
    if seen_in is None or activity.kind is not ActivityKind.MEETING:
        return RemovalOutcome(CalendarRemoval.DELETED)
    mailbox = seen_in.lower()
    owner = people.get(mailbox)

    def is_hers(participant: Participant) -> bool:
        email = participant.email
        return email is not None and (email == mailbox or (owner is not None and people.get(email) == owner))

    organizer = next(
        (p for p in activity.participants if p.role is ParticipantRole.ORGANIZER and p.email), None
    )
    if organizer is None or is_hers(organizer):
        return RemovalOutcome(CalendarRemoval.DELETED)
    if not any(is_hers(p) for p in activity.participants) and activity.source in OWN_COPY_SOURCES:
        # That mailbox's own copy, and its owner named by no address we know (an organizer's
        # sign-in name the CRM does not hold): read as before, the copy deleted.
        return RemovalOutcome(CalendarRemoval.DELETED)
    hers = [p for p in activity.participants if is_hers(p) and not declined(p)]
    if not hers:
        return RemovalOutcome(CalendarRemoval.UNCHANGED)
    return RemovalOutcome(CalendarRemoval.LEFT, _without(activity, is_hers, organizer), tuple(hers))


def _without(
    activity: ActivityIngestedV1, is_hers: Callable[[Participant], bool], organizer: Participant | None
) -> ActivityIngestedV1:
    """``activity`` with the attendees ``is_hers`` names read as having declined: the meeting's
    others as listed, and who declined (hers last); called off when fewer than two attend."""
    others = tuple(p for p in activity.participants if not is_hers(p))
    refused = [p for p in others if declined(p) and p is not organizer]
    left = [
        p.model_copy(update={"response_status": ResponseStatus.DECLINED})
        for p in activity.participants
        if is_hers(p)
    ]
    attendance = meeting_attendance(
        others,
        (*refused, *left),
        organizer,
        organizer_internal=activity.direction is not Direction.INBOUND,
    )
    assert attendance is not None  # someone declined: never time blocked
    participants, called_off = attendance
    update: dict[str, object] = {"participants": participants}
    if called_off:
        update["outcome"] = Outcome.CANCELLED
    return activity.model_copy(update=update)


def removals_in_force(
    activity: ActivityIngestedV1, removals: Sequence[Removal]
) -> tuple[ActivityIngestedV1, tuple[str, ...], tuple[str, ...]]:
    """A newer revision of a meeting guests removed from their calendars (pure): each still left
    out while it lists her with the answer she had when she removed it (the organizer's copy
    telling nothing newer of her: Google does not say whether it records a removal), and the
    addresses whose removal it ends: listed with another answer (re-invited, ``needs_action``;
    answering again; declined, which needs no memory), or no longer listed; and those it keeps.
    A revision no newer than the removal (or than the last revision that kept it) changes nothing:
    it is refused as stale."""
    newer = [r for r in removals if activity.revision > r.revision]
    if not newer or activity.kind is not ActivityKind.MEETING:
        return activity, (), ()
    listed = {
        p.email.lower(): p
        for p in activity.participants
        if p.email is not None and p.role is not ParticipantRole.ORGANIZER
    }
    still = {
        r.address for r in newer if (p := listed.get(r.address)) is not None and p.response_status == r.answer
    }
    ended = tuple(sorted(r.address for r in newer if r.address not in still))
    if not still:
        return activity, ended, ()
    organizer = next(
        (p for p in activity.participants if p.role is ParticipantRole.ORGANIZER and p.email), None
    )

    def is_hers(participant: Participant) -> bool:
        return (
            participant.email is not None
            and participant.role is not ParticipantRole.ORGANIZER
            and participant.email.lower() in still
        )

    return _without(activity, is_hers, organizer), ended, tuple(sorted(still))


def removals_from_calendars(
    activity: ActivityIngestedV1, calendars: Sequence[str | None], people: Mapping[str, str] = _NOBODY
) -> tuple[int | None, ActivityIngestedV1 | None, tuple[Participant, ...]]:
    """Several deletions of one meeting, read in order (one batch can hold Ana's calendar's and
    Bob's): the position of the first that deletes the meeting (None when none does), the
    meeting as the others left it (None when nobody attending left), and who left, as listed
    before (``Removal``)."""
    meeting: ActivityIngestedV1 | None = None
    left: tuple[Participant, ...] = ()
    for position, seen_in in enumerate(calendars):
        outcome = removal_from_calendar(meeting or activity, seen_in, people)
        if outcome.removal is CalendarRemoval.DELETED:
            return position, None, ()
        meeting = outcome.activity or meeting
        left += outcome.left
    return None, meeting, left
