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

from collections.abc import Mapping, Sequence
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
    # She is read as having declined: the meeting's others as stored, and who declined (her last).
    others = tuple(p for p in activity.participants if not is_hers(p))
    refused = [p for p in others if declined(p) and p is not organizer]
    left = hers[0].model_copy(update={"response_status": ResponseStatus.DECLINED})
    attendance = meeting_attendance(
        others,
        (*refused, left),
        organizer,
        organizer_internal=activity.direction is not Direction.INBOUND,
    )
    assert attendance is not None  # she declined: never time blocked
    participants, called_off = attendance
    update: dict[str, object] = {"participants": participants}
    if called_off:
        update["outcome"] = Outcome.CANCELLED
    return RemovalOutcome(CalendarRemoval.LEFT, activity.model_copy(update=update))


def removals_from_calendars(
    activity: ActivityIngestedV1, calendars: Sequence[str | None], people: Mapping[str, str] = _NOBODY
) -> tuple[int | None, ActivityIngestedV1 | None]:
    """Several deletions of one meeting, read in order (one batch can hold Ana's calendar's and
    Bob's): the position of the first that deletes the meeting (None when none does), and the
    meeting as the others left it (None when nobody attending left)."""
    meeting: ActivityIngestedV1 | None = None
    for position, seen_in in enumerate(calendars):
        outcome = removal_from_calendar(meeting or activity, seen_in, people)
        if outcome.removal is CalendarRemoval.DELETED:
            return position, None
        meeting = outcome.activity or meeting
    return None, meeting
