"""Recognising one meeting seen from several sources (Google Calendar, Zoom, Calendly, ...).

A meeting gets up to two keys: ``ical:<UID>`` when the source carries the RFC 5545 UID, and
``slot:<start rounded to 15 min>:<sha256 of the sorted external emails>`` (all emails when nobody is
external). Any key already mapped to an activity makes this meeting a duplicate of it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from libs.common.contracts.activities import ActivityIn, ActivityKind
from services.ingest.domain.normalize import is_internal

#: Zoom's actual start drifts from the booked start; a quarter hour absorbs a few minutes either way.
SLOT_ROUNDING = timedelta(minutes=15)


def rounded_start(occurred_at: datetime) -> datetime:
    """The start rounded to the nearest quarter hour (ties round up)."""
    seconds = int(occurred_at.astimezone(UTC).timestamp())
    step = int(SLOT_ROUNDING.total_seconds())
    return datetime.fromtimestamp(((seconds + step // 2) // step) * step, UTC)


def meeting_keys(activity: ActivityIn, internal_domains: Iterable[str]) -> tuple[str, ...]:
    """The keys under which ``activity`` is recognised as the same meeting; empty for non-meetings."""
    if activity.kind is not ActivityKind.MEETING:
        return ()
    keys: list[str] = []
    if activity.ical_uid:
        keys.append(f"ical:{activity.ical_uid.strip()}")
    domains = tuple(internal_domains)
    emails = sorted({p.email for p in activity.participants if p.email})
    external = [e for e in emails if not is_internal(e, domains)]
    people = external or emails
    if people:
        # Hashed: a meeting may have hundreds of attendees, and the key is a primary key.
        digest = hashlib.sha256(",".join(people).encode("utf-8")).hexdigest()
        keys.append(f"slot:{rounded_start(activity.occurred_at).isoformat()}:{digest}")
    return tuple(keys)
