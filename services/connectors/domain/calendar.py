"""Google Calendar: the fields requested and what is forwarded to ingest.

Descriptions, locations, conference links and attachments are never requested.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from services.connectors.domain.policy import FetchPolicy

CALENDAR_SCOPE = "https://www.googleapis.com/auth/calendar.events.readonly"
_EVENT_FIELDS = (
    "id",
    "status",
    "start",
    "end",
    "organizer(email,displayName)",
    "attendees(email,displayName,responseStatus,resource,organizer)",
    "recurringEventId",
    "iCalUID",
    "updated",
    "eventType",
    # Whether the event blocks time ("Show as: free" is ``transparent``): an all-day entry (its
    # ``start`` a ``date``) or a free one that only colleagues are invited to is no meeting.
    "transparency",
)
_FORWARDED = (
    "id",
    "status",
    "start",
    "end",
    "organizer",
    "attendees",
    "recurringEventId",
    "iCalUID",
    "updated",
    "eventType",
    "transparency",
)


def event_fields(policy: FetchPolicy) -> str:
    """The ``fields`` mask of ``events.list`` (``summary`` only when the policy needs subjects)."""
    fields = (*_EVENT_FIELDS, "summary") if policy.subject_needed else _EVENT_FIELDS
    return f"items({','.join(fields)}),nextPageToken,nextSyncToken"


def for_ingest(event: Mapping[str, Any], policy: FetchPolicy) -> dict[str, Any]:
    """The event as forwarded: the masked fields only, whatever the vendor returned."""
    keys = (*_FORWARDED, "summary") if policy.subject_needed else _FORWARDED
    return {k: event[k] for k in keys if k in event}
