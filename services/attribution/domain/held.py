"""When a meeting booked ahead counts as held: once it has ended (or started, without a length)
``grace`` ago and its source still says ``scheduled``.

A calendar does not edit an event when its time passes, so the revision stored when it was synced
ahead (``scheduled``) would stay the last word; attribution's sweep (``services.attribution.
held_sweep``) applies this rule to the stored meetings instead. Only ``scheduled`` moves: a
cancelled or no-show meeting never becomes held, and a meeting moved ahead again waits for its
new end. Ingest's rule for a revision received after the end is ``normalize.meeting_outcome``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import msgspec

from libs.common.contracts.activities import ActivityKind, Outcome
from libs.common.contracts.activities_fast import Ingested, IngestedEvent


def meeting_end(activity: IngestedEvent) -> datetime:
    """The meeting's end: its start plus its length (its start, without a length)."""
    return activity.occurred_at + timedelta(seconds=activity.duration_seconds)


def held_cutoff(now: datetime, grace: timedelta) -> datetime:
    """Meetings ending at or before this are held at ``now``."""
    return now - grace


def held_by(activity: IngestedEvent, now: datetime, grace: timedelta) -> bool:
    """Whether a stored meeting still ``scheduled`` has ended ``grace`` before ``now``."""
    return (
        activity.kind is ActivityKind.MEETING
        and activity.outcome is Outcome.SCHEDULED
        and meeting_end(activity) <= held_cutoff(now, grace)
    )


def as_held(activity: IngestedEvent) -> IngestedEvent:
    """The activity with outcome ``held``, in its own form (same revision: no source said more)."""
    if isinstance(activity, Ingested):
        return msgspec.structs.replace(activity, outcome=Outcome.HELD)
    return activity.model_copy(update={"outcome": Outcome.HELD})
