"""Who attends a meeting once someone declined it, one rule for every service: ingest applies it
to a calendar's answers (``services.ingest.domain.normalize.calendar_people``), attribution to
a meeting removed from an attendee's calendar (``services.attribution.domain.attendance``)."""

from __future__ import annotations

from collections.abc import Sequence

from libs.common.contracts.activities import Participant, declined


def meeting_attendance(
    present: Sequence[Participant],
    declining: Sequence[Participant],
    organizer: Participant | None,
    *,
    organizer_internal: bool,
) -> tuple[tuple[Participant, ...], bool] | None:
    """A meeting's participants, and whether the answers called it off; None for time blocked
    (pure).

    ``present`` are the people the meeting lists, in order, the organizer among them: only those
    who did not decline count as attending. ``organizer`` carries ``response_status`` declined
    when she declined her own event: she keeps her role, which decides the direction, and
    attribution neither credits her nor reads her as evidence. ``declining`` are the other people
    who declined, each marked declined. ``organizer_internal`` tells whether the organizer is at
    the tenant's domains (ingest reads her address, attribution a stored meeting's direction).
    Callers list each person once: nobody is merged or reordered here.

    While two people still attend, the event is a meeting of ``present`` (a calendar's answers
    leave the guests who declined out of it; a stored meeting keeps whom it listed).

    When fewer attend because someone declined (every guest; the organizer leaving one guest;
    the reps a buyer invited; an attendee removing the event from her calendar, which leaves one
    colleague), the meeting is **called off**: it did not take place, and is published as
    cancelled listing who declined, and the organizer when she declined or is internal (her
    role decides the direction), the one person left attending alone otherwise left out. Nobody
    it lists is evidence for an account or a deal, nor a rep credited unless she organised it
    and did not decline, so it counts nothing, and as the event's newer revision (through the
    one versioned path) it replaces a version published while a guest had accepted, which stops
    counting as booked and held.

    Nobody declined and fewer than two attend, or nobody but the organizer was invited (and she
    declined her own time): time blocked, nothing to publish.
    """
    if sum(1 for p in present if not declined(p)) >= 2:
        return tuple(present), False
    organizer_declined = organizer is not None and declined(organizer)
    if not declining and (not organizer_declined or len(present) < 2):
        return None
    host = organizer if organizer is not None and (organizer_declined or organizer_internal) else None
    listed = (host, *declining) if host is not None else tuple(declining)
    return listed, True
