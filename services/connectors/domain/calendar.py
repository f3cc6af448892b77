"""Google Calendar: the fields requested and what is forwarded to ingest.

Descriptions, locations, conference links and attachments are never requested.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from services.connectors.domain.policy import FetchPolicy, forwarded_title

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


def event_fields() -> str:
    """The ``fields`` mask of ``events.list``. ``summary`` is requested whatever the policy: a
    hold ("HOLD: Acme demo") sent to a colleague is told from a meeting by its title alone
    (``for_ingest`` forwards the title whole only when the policy needs subjects)."""
    return f"items({','.join((*_EVENT_FIELDS, 'summary'))}),nextPageToken,nextSyncToken"


def for_ingest(event: Mapping[str, Any], policy: FetchPolicy) -> dict[str, Any]:
    """The event as forwarded: the masked fields only, whatever the vendor returned; its
    ``summary`` whole when the policy needs subjects, else only the word that labels it a hold
    (``forwarded_title``)."""
    kept = {k: event[k] for k in _FORWARDED if k in event}
    title = forwarded_title(event.get("summary"), policy)
    return {**kept, "summary": title} if title is not None else kept
