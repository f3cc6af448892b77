"""Recognising one meeting seen from several sources (Google Calendar, Zoom, Calendly, ...).

A meeting gets up to two keys: ``ical:<UID>:<UTC day of the start>`` when the source carries the
RFC 5545 UID, and ``slot:<start rounded to 15 min>:<sha256 of the sorted external emails>`` (all
emails when nobody is external). Any key already mapped to an activity makes this meeting a
duplicate of it.

Every instance of a recurring event carries the series' UID (RFC 5545 tells instances apart by a
RECURRENCE-ID, which no source here sends; Google's ``iCalUID`` is the series'): the UID alone made
each week's meeting of a second source a sighting of the first week's. The day of the instance
tells them apart and still joins two sources' views of one instance moved to another time.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta

import msgspec

from libs.common.contracts.activities import ActivityFields, ActivityKind
from libs.common.contracts.fields import isoformat
from services.ingest.domain.normalize import domain_suffixes, in_domains

ICAL_KEY_PREFIX = "ical:"
#: The longest UID (in UTF-8 bytes) a key holds as sent. A longer one is keyed by its SHA-256
#: (``ical:sha256=<hex>:<day>``): the key is in ``ingest_meeting_keys``' primary key, and PostgreSQL
#: refuses a B-tree entry past 2,704 bytes, so 1,024 characters of a 4-byte script (a UID the
#: contracts accept) failed the whole request with a 500. Every UID of up to 2,048 bytes (every
#: ASCII one: the contracts take 1,024 characters) keeps the key it always had.
ICAL_UID_KEPT_BYTES = 2048
#: The key recording each sighting under the canonical meeting it was published as.
OBJECT_KEY_PREFIX = "object:"
#: Zoom's actual start drifts from the booked start; a quarter hour absorbs a few minutes either way.
SLOT_ROUNDING = timedelta(minutes=15)


def rounded_start(occurred_at: datetime) -> datetime:
    """The start rounded to the nearest quarter hour (ties round up)."""
    # An aware time's ``timestamp`` is the same in every zone: no ``astimezone`` first.
    seconds = int(
        (occurred_at if occurred_at.tzinfo is not None else occurred_at.astimezone(UTC)).timestamp()
    )
    return datetime.fromtimestamp(((seconds + _STEP // 2) // _STEP) * _STEP, UTC)


_STEP = int(SLOT_ROUNDING.total_seconds())


#: Read once: an enum member read from its class per activity goes through ``EnumType``'s
#: ``__getattr__`` slot (Python 3.11).
_MEETING = ActivityKind.MEETING


def meeting_keys(activity: ActivityFields, internal_domains: Iterable[str]) -> tuple[str, ...]:
    """The keys under which ``activity`` is recognised as the same meeting; empty for non-meetings."""
    if activity.kind is not _MEETING:
        return ()
    keys: list[str] = []
    start = rounded_start(activity.occurred_at)
    if activity.ical_uid:
        keys.append(f"{ICAL_KEY_PREFIX}{_uid_in_key(activity.ical_uid.strip())}:{start.date().isoformat()}")
    # ``is_internal``'s suffixes, cached by their domains: a frozenset (the tenant's settings)
    # keeps its hash, a tuple of them would be built and hashed per meeting.
    internal = domain_suffixes(
        internal_domains if type(internal_domains) is frozenset else tuple(internal_domains)
    )
    emails = sorted({p.email for p in activity.participants if p.email})
    external = [e for e in emails if not in_domains(e, internal)]
    people = external or emails
    if people:
        # Hashed: a meeting may have hundreds of attendees, and the key is a primary key.
        digest = hashlib.sha256(",".join(people).encode("utf-8")).hexdigest()
        keys.append(f"slot:{isoformat(start)}:{digest}")
    return tuple(keys)


def _uid_in_key(uid: str) -> str:
    """The UID as its key holds it: as sent, or ``sha256=<hex>`` past ``ICAL_UID_KEPT_BYTES``."""
    if len(uid) * 4 <= ICAL_UID_KEPT_BYTES:  # no encoding for almost every UID
        return uid
    encoded = uid.encode("utf-8")
    if len(encoded) <= ICAL_UID_KEPT_BYTES:
        return uid
    return f"sha256={hashlib.sha256(encoded).hexdigest()}"


class MeetingSighting(msgspec.Struct, frozen=True):
    """One source's view of a meeting: its own activity id and its keys. A frozen msgspec struct
    (one per meeting of a request), where a frozen dataclass set each field through
    ``object.__setattr__``."""

    activity_id: uuid.UUID
    source: str
    keys: tuple[str, ...]


class RecordedKey(msgspec.Struct, frozen=True):
    """A meeting key already recorded: the canonical activity, and the sighting that recorded it
    (a frozen msgspec struct: one per key read and per key recorded, two or three a meeting)."""

    activity_id: uuid.UUID
    source: str
    sighting_id: uuid.UUID


def _same_meeting(key: str, recorded: RecordedKey, sighting: MeetingSighting) -> bool:
    """The same RFC 5545 UID, another source's sighting, or a later state of the very object
    that recorded the key.

    A UID names one meeting in every calendar that holds it: Microsoft Graph keeps a copy of a
    meeting in each attendee's mailbox under that mailbox's own id, so two synced mailboxes of
    one source are one meeting by their ``iCalUId``. One source's two different events at the
    same slot stay two activities (a double booking is that source's business); the UID key is
    tried first, so it wins over a slot match.
    """
    return (
        key.startswith(ICAL_KEY_PREFIX)
        or recorded.source != sighting.source
        or recorded.sighting_id == sighting.activity_id
    )


def choose_canonical_meetings(
    sightings: Sequence[MeetingSighting], recorded: Iterable[tuple[str, RecordedKey]]
) -> tuple[dict[uuid.UUID, uuid.UUID], dict[str, RecordedKey]]:
    """Each sighting's canonical activity id, and the keys to record now.

    ``recorded`` are the (key, record) pairs already stored, oldest first. An object keeps the
    id it was first published under, even when its time or people changed since; otherwise any
    key matching another source's meeting decides; otherwise it is its own canonical activity.
    The ``object:<id>`` key records every sighting, even one whose other keys were all known.
    """
    known: dict[str, RecordedKey] = {}
    published_as: dict[uuid.UUID, uuid.UUID] = {}
    for key, record in recorded:
        known.setdefault(key, record)
        published_as.setdefault(record.sighting_id, record.activity_id)
    canonical: dict[uuid.UUID, uuid.UUID] = {}
    new_keys: dict[str, RecordedKey] = {}
    for sighting in sightings:
        match = published_as.get(sighting.activity_id) or next(
            (
                known[k].activity_id
                for k in sighting.keys
                if k in known and _same_meeting(k, known[k], sighting)
            ),
            sighting.activity_id,
        )
        published_as.setdefault(sighting.activity_id, match)
        canonical[sighting.activity_id] = match
        for key in (*sighting.keys, f"{OBJECT_KEY_PREFIX}{sighting.activity_id}"):
            if key not in known:
                known[key] = new_keys[key] = RecordedKey(match, sighting.source, sighting.activity_id)
    return canonical, new_keys
