"""Ingest use cases: validate, normalise, filter, and publish with acknowledgement."""

from __future__ import annotations

import functools
import hashlib
import json
import re
import uuid
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar, cast

import msgspec
import orjson
from prometheus_client import Counter as PromCounter
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError
from sqlalchemy.ext.asyncio import AsyncConnection

from libs.common.contracts.activities import (
    CONTACT_IDS_LIMIT,
    ActivityDeletedV1,
    ActivityFields,
    ActivityIn,
    ActivityKind,
    ParticipantFields,
    activity_id_for,
    activity_json,
    extension_of,
)
from libs.common.contracts.activities_fast import (
    ActivityStruct,
    AnyActivity,
    decode_activity_batch,
    encode_activity,
)
from libs.common.contracts.commands import WebhookReceivedV1
from libs.common.contracts.copying import with_changes
from libs.common.contracts.crm import LIST_LIMITS, ContactV1, CrmEntity, CrmEntityChangedV1, CrmSyncIn, DealV1
from libs.common.contracts.envelope import Envelope, encode_body
from libs.common.contracts.fields import EARLIEST, LATEST, LINE_PATTERN, TENANT_ID_PATTERN, TEXT_PATTERN
from libs.common.erasures import NO_ERASURES, ErasedIdentities, mask_participants, names_erased_person
from libs.common.kafka.publisher import OutgoingMessage
from libs.common.phones import PhoneProblem, RefusedPhone, parse_phone
from libs.common.topics import ACTIVITY_DELETED, ACTIVITY_INGESTED, CRM_ENTITY_CHANGED, WEBHOOK_RECEIVED
from libs.common.web import Problem, field_errors
from services.ingest.adapters.repository import (
    CallParent,
    SeenLedger,
    TenantContext,
    canonical_meetings,
    record_seen,
)
from services.ingest.domain.capture import capture_body
from services.ingest.domain.crm_sync import EntityWarning, ListTooLong, read_entities
from services.ingest.domain.ignored import (
    OLDER_STATE,
    OLDER_THAN_A_TIME_BLOCK,
    TIME_BLOCK,
    Ignored,
    ignored_counts,
)
from services.ingest.domain.meetings import MeetingSighting, meeting_keys
from services.ingest.domain.normalize import (
    ahead_of,
    colleagues_only_hold,
    is_decorated_email,
    is_not_a_person,
    is_withheld_number,
    normalize_email,
)
from services.ingest.domain.privacy import apply_privacy
from services.ingest.domain.webhook_types import SourceDeletion, TimeBlock
from services.ingest.settings import IngestOptions
from services.ingest.telemetry import INGEST_EVENTS, INGEST_EXCLUSIONS, INGEST_IGNORED


def _json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if "number" not in str(exc):
            raise Problem(400, "Malformed JSON", f"the body is not valid JSON: {exc}") from None
        error = exc
    # Valid JSON that orjson cannot hold (1e400 is infinite as a double): read it with the
    # standard library, so that validation refuses the value with a 422 naming its field.
    try:
        return json.loads(body, parse_constant=_not_json)
    except (ValueError, RecursionError):
        raise Problem(400, "Malformed JSON", f"the body is not valid JSON: {error}") from None


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")


class _ActivityBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    activities: list[ActivityIn]


def read_activity_batch(
    body: bytes, options: IngestOptions, now: datetime, region: str = "US"
) -> Sequence[AnyActivity]:
    """:func:`parse_activity_batch`'s activities, as msgspec structs when the fast path takes the
    body as-is (``activities_fast``); any other body, valid or not, is the contract's to judge."""
    structs = decode_activity_batch(body)
    if structs is not None:
        read = _checked(structs, options, now, region)
        if read is not None:
            return read
    return parse_activity_batch(body, options, now, region)


def parse_activity_batch(
    body: bytes, options: IngestOptions, now: datetime, region: str = "US"
) -> list[ActivityIn]:
    """All-or-nothing validation: every bad item is reported with its index, field and reason.

    A valid batch is validated in one pass straight from the bytes; only a batch with a fault
    is parsed again item by item, so that the answer names every bad index and field. Phones
    are read in the tenant's ``region`` (national formats accepted) and published in E.164.
    """
    try:
        activities = _ActivityBatch.model_validate_json(body).activities
    except ValueError:  # ValidationError, or bytes that are not JSON
        return _parse_activity_batch_items(body, options, now, region)
    read = _checked(activities, options, now, region)
    if read is None:
        return _parse_activity_batch_items(body, options, now, region)
    return read


_ActivityT = TypeVar("_ActivityT", bound=ActivityFields)

_MEETING = ActivityKind.MEETING


def holds_apart(
    activities: Sequence[_ActivityT], internal_domains: Collection[str]
) -> tuple[Sequence[_ActivityT], list[TimeBlock], list[Ignored]]:
    """A canonical batch without its meetings whose subject labels a calendar hold only colleagues
    attend (``normalize.colleagues_only_hold``: "HOLD: Acme demo" with the SE): time blocked, not a
    meeting. Each is a ``TimeBlock`` at its revision (retracting the meeting an earlier revision
    was) and listed as ignored by its index; ``activities`` itself when there is none.

    A hold filed with a CRM contact (``crm.contact_ids``) or with someone known by a phone alone
    is a customer's meeting. The outcome the client reports decides nothing: a colleagues-only
    hold reported ``held`` is still time blocked (a client exporting a calendar reports a past
    entry held by its time, as the calendars and HubSpot do, which apply the rule whatever the
    outcome); what it drops is at most an internal meeting, never one with a customer."""
    blocks: list[TimeBlock] = []
    ignored: list[Ignored] = []
    held: set[int] = set()
    for position, activity in enumerate(activities):
        if activity.kind is not _MEETING or activity.subject is None:
            continue
        reason = colleagues_only_hold(
            activity.subject,
            activity.participants,
            internal_domains,
            filed_with_a_customer=bool(activity.crm.contact_ids),
        )
        if reason is not None:
            held.add(position)
            blocks.append(TimeBlock(activity.source, activity.external_id, activity.revision, reason))
            ignored.append(Ignored(f"activities[{position}]: {reason}", TIME_BLOCK))
    if not held:
        return activities, blocks, ignored
    newest = _newest_blocks(blocks)
    kept: list[_ActivityT] = []
    for position, activity in enumerate(activities):
        if position in held:
            continue
        if activity.revision < newest.get((activity.source, activity.external_id), -1):
            ignored.append(Ignored(f"activities[{position}]: {OLDER_THAN_A_TIME_BLOCK}", OLDER_STATE))
        else:
            kept.append(activity)
    return kept, blocks, sorted(ignored, key=ignored_position)


def count_ignored(source: str, ignored: Sequence[Ignored]) -> None:
    """``spm_ingest_ignored_total``: each line of an accepted delivery's ``ignored`` under the
    code it was written with (``domain.ignored.Ignored``)."""
    if ignored:
        for reason, count in ignored_counts(ignored).items():
            INGEST_IGNORED.labels(source, reason).inc(count)


def ignored_position(ignored: str) -> int:
    """The index an ``activities[i]: …`` line of ``POST /v1/events``' ``ignored`` names."""
    return int(ignored[len("activities[") : ignored.index("]")])


def superseded_by_blocks(
    activities: Sequence[_ActivityT], blocks: Sequence[TimeBlock]
) -> tuple[Sequence[_ActivityT], list[_ActivityT]]:
    """``activities`` without the revisions a time block of the same object (``source``,
    ``external_id``) at a higher revision in the same delivery supersedes, and those: a meeting at
    revision 1 delivered with its revision 2, a hold only colleagues attend, is no meeting (the
    block leaves no trace for attribution to order them by). ``activities`` itself when none is."""
    if not blocks:
        return activities, []
    newest = _newest_blocks(blocks)
    kept = [a for a in activities if a.revision >= newest.get((a.source, a.external_id), -1)]
    if len(kept) == len(activities):
        return activities, []
    return kept, [a for a in activities if a.revision < newest.get((a.source, a.external_id), -1)]


def _newest_blocks(blocks: Sequence[TimeBlock]) -> dict[tuple[str, str], int]:
    """The highest revision of each object (``source``, ``external_id``) read as no meeting."""
    newest: dict[tuple[str, str], int] = {}
    for block in blocks:
        key = (block.source, block.external_id)
        newest[key] = max(newest.get(key, block.revision), block.revision)
    return newest


def _checked(
    activities: list[_ActivityT], options: IngestOptions, now: datetime, region: str
) -> list[_ActivityT] | None:
    """The batch with its phones in E.164 when its size, every time, the number of contact ids and
    every phone pass, else None."""
    if not 0 < len(activities) <= options.max_batch_activities:
        return None
    latest = now + timedelta(seconds=options.max_future_skew_seconds)
    earliest = now - timedelta(days=options.max_age_days)
    read: list[_ActivityT] = []
    # One loop, no generator: it runs for each activity of every batch.
    for activity in activities:
        if (
            not earliest <= activity.occurred_at <= latest
            or len(activity.crm.contact_ids) > CONTACT_IDS_LIMIT
        ):
            return None
        phones_read = _read_phones(activity, region)
        if phones_read.__class__ is list:
            return None
        read.append(cast("_ActivityT", phones_read))
    return read


def _read_phones(activity: _ActivityT, region: str) -> _ActivityT | list[tuple[int, RefusedPhone]]:
    """The activity with its participants' phones in E.164 and emails as bare addresses (a
    pasted ``Bo <bo@buyer.example>`` is ``bo@buyer.example``), calendar resources (a booked
    room, a shared calendar) and a CRM's logging mailboxes (a BCC to HubSpot) left out unless
    nobody else takes part, a withheld number
    (``normalize.is_withheld_number``: ``anonymous``, ``restricted``, ...) as no phone, its
    participant kept by its email or else left out, a blank ``thread_id`` or ``ical_uid`` (an
    export's empty column) as none, or the refused phones by position."""
    refused: list[tuple[int, RefusedPhone]] = []
    participants: list[ParticipantFields] | None = None  # copied only when an address changes
    resources: list[int] | None = None
    unknown: list[int] | None = None  # withheld numbers without another address
    for position, participant in enumerate(activity.participants):
        update: dict[str, str | None] = {}
        email = participant.email
        if email is not None and is_decorated_email(email) and (bare := normalize_email(email)) is not None:
            update["email"] = email = bare
        if email is not None and is_not_a_person(email):
            resources = [*(resources or ()), position]
        phone = participant.phone
        if phone is not None:
            if is_withheld_number(phone):
                if email is None:
                    unknown = [*(unknown or ()), position]
                else:
                    update["phone"] = None
            elif isinstance(parsed := parse_phone(phone, region), RefusedPhone):
                refused.append((position, parsed))
            else:
                if parsed.e164 != phone:
                    update["phone"] = parsed.e164
                # The extension dialled, kept apart from the line (``+14155550100;ext=12``).
                if parsed.extension is not None and parsed.extension != extension_of(participant):
                    update["extension"] = parsed.extension
        if update:
            if participants is None:
                participants = list(activity.participants)
            participants[position] = with_changes(participant, update)
    if refused:
        return refused
    drop = set(unknown or ())
    if len(drop) == len(activity.participants):
        return [(min(drop), _NOBODY_LEFT)]
    if resources is not None and len(drop | set(resources)) < len(activity.participants):
        drop.update(resources)
    return _tidied(activity, participants, drop)


def _tidied(activity: _ActivityT, participants: list[ParticipantFields] | None, drop: set[int]) -> _ActivityT:
    """``activity`` with ``participants`` (when read anew) but those at the positions ``drop``, and
    a blank ``thread_id`` or ``ical_uid`` as none."""
    changes: dict[str, object] = {}
    if drop:
        kept = participants if participants is not None else activity.participants
        participants = [p for position, p in enumerate(kept) if position not in drop]
    if participants is not None:
        changes["participants"] = tuple(participants)
    # Blank, every mail of an export would be one thread, every meeting one calendar event.
    thread_id, ical_uid = activity.thread_id, activity.ical_uid
    if thread_id is not None and (not thread_id or thread_id.isspace()):
        changes["thread_id"] = None
    if ical_uid is not None and (not ical_uid or ical_uid.isspace()):
        changes["ical_uid"] = None
    return with_changes(activity, changes) if changes else activity


#: Every participant of the activity had only a withheld number: nobody is left to keep.
_NOBODY_LEFT = RefusedPhone("", PhoneProblem.NOT_A_NUMBER, "a withheld number, and nobody else takes part")


def _parse_activity_batch_items(
    body: bytes, options: IngestOptions, now: datetime, region: str
) -> list[ActivityIn]:
    document = _json(body)
    if not isinstance(document, dict) or not isinstance(document.get("activities"), list):
        raise Problem(
            422,
            "Invalid request",
            "the body must be an object with an `activities` array",
            errors=[{"in": "body", "field": "activities", "reason": "required array"}],
        )
    items: list[Any] = document["activities"]
    if not items:
        raise Problem(
            422,
            "Invalid request",
            "activities must not be empty",
            errors=[{"in": "body", "field": "activities", "reason": "empty array"}],
        )
    if len(items) > options.max_batch_activities:
        raise Problem(
            413,
            "Batch too large",
            f"at most {options.max_batch_activities} activities per request, got {len(items)}",
        )
    extra_keys = set(document) - {"activities"}
    errors: list[dict[str, Any]] = [
        {"in": "body", "field": key, "reason": "unknown field"} for key in sorted(extra_keys)
    ]
    parsed: list[ActivityIn] = []
    earliest = now - timedelta(days=options.max_age_days)
    for index, item in enumerate(items):
        try:
            activity = ActivityIn.model_validate(item)
        except ValidationError as exc:
            errors.extend(field_errors(exc, prefix=("activities", index)))
            continue
        if (ahead := ahead_of(activity.occurred_at, now, options.max_future_skew_seconds)) is not None:
            errors.append({"in": "body", "field": f"activities.{index}.occurred_at", "reason": ahead})
        elif activity.occurred_at < earliest:
            errors.append(
                {
                    "in": "body",
                    "field": f"activities.{index}.occurred_at",
                    "reason": f"older than {options.max_age_days} days",
                }
            )
        if len(activity.crm.contact_ids) > CONTACT_IDS_LIMIT:
            errors.append(
                {
                    "in": "body",
                    "field": f"activities.{index}.crm.contact_ids",
                    "reason": f"lists {len(activity.crm.contact_ids)} contact ids; at most {CONTACT_IDS_LIMIT} are accepted",
                }
            )
            continue
        read = _read_phones(activity, region)
        if isinstance(read, list):
            errors.extend(
                {
                    "in": "body",
                    "field": f"activities.{index}.participants.{p_index}.phone",
                    "reason": f"{refused.reason} (E.164 such as +14155550100, or a national number)",
                }
                for p_index, refused in read
            )
            continue
        parsed.append(read)
    if errors:
        detail = "; ".join(f"{e['field']}: {e['reason']}" for e in errors[:20])
        raise Problem(422, "Invalid activities", detail, errors=errors)
    return parsed


#: Serialises the time ingest adds exactly as pydantic writes ``ActivityIngestedV1.ingested_at``.
_TIMESTAMP: TypeAdapter[datetime] = TypeAdapter(datetime)


class IngestedActivity(msgspec.Struct, frozen=True):
    """An accepted activity as it is published: the validated input and what ingest adds.

    Its :meth:`body` is byte for byte ``ActivityIngestedV1.model_dump_json()`` of the same
    fields, built without a second model per activity (the input was validated already, and
    constructing and serialising that second model was the dearest step of a batch after parsing).
    A frozen msgspec struct: one per activity, where a frozen dataclass set its seven fields
    through ``object.__setattr__``.
    """

    activity: AnyActivity
    tenant_id: str
    activity_id: uuid.UUID
    #: ``str(activity_id)``, made once: the message key, the envelope, the body and the answer use it.
    activity_id_text: str
    ingested_at: str
    automated: bool
    adapter_version: str

    @property
    def revision(self) -> int:
        return self.activity.revision

    @property
    def source(self) -> str:
        return self.activity.source

    def body(self) -> bytes:
        """The ``activity-ingested`` payload: the input's JSON with ingest's fields appended."""
        activity = self.activity
        if isinstance(activity, ActivityStruct):
            head = encode_activity(activity)
        elif type(activity) is ActivityIn:
            head = activity_json(activity)
        else:
            head = activity.__pydantic_serializer__.to_json(activity)
        before_id, after_id = _ingested_fields(self.tenant_id, self.ingested_at, self.adapter_version)
        # Both are JSON objects: the parent model's fields come first in ActivityIngestedV1 too.
        # The id is a UUID's canonical text, which JSON holds without escaping.
        return b"".join(
            (
                head[:-1],
                before_id,
                self.activity_id_text.encode(),
                after_id[self.automated],
            )
        )


@functools.lru_cache(maxsize=64)
def _ingested_fields(
    tenant_id: str, ingested_at: str, adapter_version: str
) -> tuple[bytes, tuple[bytes, bytes]]:
    """The JSON around the activity id of ingest's fields, as ``orjson`` writes them: the part
    before the id, and the part after it for ``automated`` false and true (the same for a
    whole request, so encoded once)."""
    before = b',"tenant_id":' + orjson.dumps(tenant_id) + b',"activity_id":"'
    after = b'","ingested_at":' + orjson.dumps(ingested_at) + b',"automated":'
    version = b',"adapter_version":' + orjson.dumps(adapter_version) + b"}"
    return before, (after + b"false" + version, after + b"true" + version)


def ingested_timestamp(now: datetime) -> str:
    """``now`` as the payload carries it (computed once per request)."""
    return str(_TIMESTAMP.dump_python(now, mode="json"))


def to_ingested(
    activity: AnyActivity,
    tenant_id: str,
    ingested_at: str,
    adapter_version: str,
    *,
    automated: bool = False,
    activity_id: uuid.UUID | None = None,
) -> IngestedActivity:
    occurred_at = activity.occurred_at
    # An instant in ``UTC`` (the fast path's decoder gives it) needs no ``utcoffset`` call.
    if occurred_at.tzinfo is not UTC and occurred_at.utcoffset() != _ZERO:
        # Published times are UTC; a delivery in another offset is the exception.
        activity = with_changes(activity, {"occurred_at": occurred_at.astimezone(UTC)})
    activity_id = activity_id or activity_id_for(tenant_id, activity.source, activity.external_id)
    return IngestedActivity(
        activity=activity,
        tenant_id=tenant_id,
        activity_id=activity_id,
        activity_id_text=str(activity_id),
        ingested_at=ingested_at,
        automated=automated,
        adapter_version=adapter_version,
    )


_ZERO = timedelta(0)


def activity_messages(
    events: Sequence[IngestedActivity], prefix: str, sent_at: datetime
) -> list[OutgoingMessage]:
    """The ``activity-ingested`` message of each event; ``sent_at`` (the envelopes' time) is taken
    once per publish. The topic, the event type and each source's envelope ``source`` are looked
    up once per call (a request's events share them), each field read from the activity itself:
    the event's ``revision`` and ``source`` properties were two Python-level calls per message."""
    topic = ACTIVITY_INGESTED.physical(prefix)
    event_type = ACTIVITY_INGESTED.event_type
    sources: dict[str, str] = {}
    messages = []
    for event in events:
        activity = event.activity
        activity_id = event.activity_id_text
        source = sources.get(activity.source)
        if source is None:
            source = sources[activity.source] = f"/ingest/{activity.source}"
        envelope = Envelope(
            f"{activity_id}:{activity.revision}", source, event_type, activity_id, event.tenant_id, sent_at
        )
        messages.append(OutgoingMessage(topic, activity_id.encode(), event.body(), envelope))
    return messages


def deleted_activity_id(
    tenant_id: str, deletion: SourceDeletion, published_as: Mapping[uuid.UUID, uuid.UUID] | None = None
) -> uuid.UUID:
    """The id the deleted object's activity was published under: its own, or the meeting it
    joined (``published_as``, see ``meetings_published_as``)."""
    own_id = activity_id_for(tenant_id, deletion.source, deletion.external_id)
    return (published_as or {}).get(own_id, own_id)


def deletion_revision(
    deletion: SourceDeletion, published: Mapping[uuid.UUID, int], activity_id: uuid.UUID
) -> int | None:
    """The deletion's revision as published. One its source does not date (``on_receipt``) is
    placed in the source's own order of the object's revisions: right after the highest revision
    ingest published of it (``published``), the one it deletes, never on our clock. Compared with
    the source's clock, ours dated it after a restore made within the skew of a source whose
    clock is behind ours (the restore was then dropped as a stale copy), or before an edit it
    follows when the source's clock is ahead. Only when ingest published nothing of it that it
    still remembers (the seen ledger pruned it) is it dated when its page was read."""
    if not deletion.on_receipt or deletion.revision is None:
        return deletion.revision
    held = published.get(activity_id)
    return deletion.revision if held is None else held + 1


def deletion_messages(
    deletions: Sequence[SourceDeletion],
    tenant_id: str,
    adapter_version: str,
    prefix: str,
    now: datetime,
    published_as: Mapping[uuid.UUID, uuid.UUID] | None = None,
    published: Mapping[uuid.UUID, int] | None = None,
) -> list[OutgoingMessage]:
    """One ``activity-deleted`` message per object the source deleted, on the ``activity-ingested``
    topic under the key its activity was published with (read after every revision before it):
    its own id, or the meeting it joined (``published_as``, see ``meetings_published_as``).
    ``published``: the highest revision ingest published of each, for deletions dated on receipt
    (``deletion_revision``)."""
    messages = []
    for deletion in dict.fromkeys(deletions):
        published_id = deleted_activity_id(tenant_id, deletion, published_as)
        activity_id = str(published_id)
        revision = deletion_revision(deletion, published or {}, published_id)
        event = ActivityDeletedV1(
            tenant_id=tenant_id,
            activity_id=published_id,
            source=deletion.source,
            external_id=deletion.external_id,
            deleted_at=now,
            adapter_version=adapter_version,
            revision=revision,
            seen_in=deletion.seen_in,
            not_a_meeting=deletion.not_a_meeting,
        )
        messages.append(
            OutgoingMessage(
                topic=ACTIVITY_INGESTED.physical(prefix),
                key=activity_id.encode(),
                value=encode_body(event),
                envelope=Envelope(
                    # A deletion after a restore is another fact: its revision tells them apart.
                    id=f"{activity_id}:deleted" + ("" if revision is None else f":{revision}"),
                    source=f"/ingest/{deletion.source}",
                    type=ACTIVITY_DELETED.event_type,
                    subject=activity_id,
                    tenant=tenant_id,
                ),
            )
        )
    return messages


@dataclass(slots=True)
class PreparedActivities:
    """What one request turns into once privacy, meeting and duplicate rules ran."""

    #: Events to publish (new activities, new revisions, and other sources' sightings of a meeting).
    events: list[IngestedActivity] = field(default_factory=list)
    #: Activities not seen before (the ``accepted`` outcome in Prometheus).
    new: int = 0
    #: Redeliveries of an (activity, revision) already published, and meetings already seen elsewhere.
    duplicates: int = 0
    automated: int = 0
    exclusions: Counter[str] = field(default_factory=Counter)

    @property
    def accepted(self) -> int:
        """Everything ingest answers for: new activities and duplicates (all but the excluded)."""
        return self.new + self.duplicates

    @property
    def excluded(self) -> int:
        return sum(self.exclusions.values())

    def count(self, source: str) -> None:
        """Record the outcome in Prometheus once the broker acknowledged."""
        accepted, duplicate, excluded = _outcome_series(source)
        # A zero adds nothing (each series exists from ``_outcome_series`` on): a single
        # callback has one outcome, and each ``inc`` takes a lock.
        if self.new:
            accepted.inc(self.new)
        if self.duplicates:
            duplicate.inc(self.duplicates)
        if self.exclusions:
            excluded.inc(self.excluded)
        for reason, count in self.exclusions.items():
            INGEST_EXCLUSIONS.labels(source, reason).inc(count)


@functools.lru_cache(maxsize=256)
def _outcome_series(source: str) -> tuple[PromCounter, PromCounter, PromCounter]:
    """A source's accepted, duplicate and excluded counters (``labels()`` locks and hashes per call)."""
    return (
        INGEST_EVENTS.labels(source, "accepted"),
        INGEST_EVENTS.labels(source, "duplicate"),
        INGEST_EVENTS.labels(source, "excluded"),
    )


@dataclass(slots=True)
class ScreenedActivities(Generic[_ActivityT]):
    """Activities past the privacy rules, with their own ids and the keys of the meetings among them."""

    #: (activity as it may be published, sent by a machine, its own deterministic id)
    kept: list[tuple[_ActivityT, bool, uuid.UUID]]
    exclusions: Counter[str]
    sightings: list[MeetingSighting]

    @property
    def shares_state(self) -> bool:
        """Meetings need the meeting keys other deliveries wrote, in the publishing transaction."""
        return bool(self.sightings)


def screen_activities(
    context: TenantContext, activities: Sequence[_ActivityT], ids: Mapping[int, uuid.UUID] | None = None
) -> ScreenedActivities[_ActivityT]:
    """Privacy first: nothing excluded goes further (no id, no meeting key, no bookkeeping).

    ``ids``: the ids derived already (``pipeline.older_than_time_blocks``), by ``id()`` of the
    activity as given (screening changes neither its source nor its external id)."""
    kept: list[tuple[_ActivityT, bool, uuid.UUID]] = []
    exclusions: Counter[str] = Counter()
    sightings: list[MeetingSighting] = []
    for activity in activities:
        own_id = ids.get(id(activity)) if ids else None
        if context.erased:
            # An erased person never leaves ingest: attribution judges what remains of the activity.
            activity = with_changes(
                activity, {"participants": mask_participants(activity.participants, context.erased)}
            )
        verdict = apply_privacy(activity, context.privacy)
        if verdict.reason is not None:
            exclusions[verdict.reason.value] += 1
            continue
        published = verdict.activity
        if own_id is None:
            own_id = activity_id_for(context.tenant_id, published.source, published.external_id)
        kept.append((published, verdict.automated, own_id))
        if keys := meeting_keys(published, context.webhook.internal_domains):
            sightings.append(MeetingSighting(own_id, published.source, keys))
    return ScreenedActivities(kept, exclusions, sightings)


async def prepare_activities(
    conn: AsyncConnection,
    context: TenantContext,
    screened: ScreenedActivities[AnyActivity],
    now: datetime,
    adapter_version: str,
) -> PreparedActivities:
    """Cross-source meetings, then redeliveries, on ``conn``'s transaction.

    The bookkeeping rows are written on ``conn`` and only committed after the publish was
    acknowledged, so a refused publish leaves nothing marked as seen.
    """
    sightings = screened.sightings
    canonical = await canonical_meetings(conn, context.tenant_id, sightings) if sightings else {}
    events = _ingested(context, screened, now, adapter_version, canonical)
    pairs = seen_pairs(events)
    seen = await record_seen(conn, context.tenant_id, pairs)
    return _sort_out(screened, events, pairs, seen)


async def prepare_unshared_activities(
    ledger: SeenLedger,
    context: TenantContext,
    screened: ScreenedActivities[AnyActivity],
    now: datetime,
    adapter_version: str,
    parent: CallParent | None = None,
) -> PreparedActivities | None:
    """Redeliveries only, for activities without meetings; the caller records the events once
    published. With a Twilio call's ``parent`` kept in the same statement: None when its legs
    are known (or being folded), and the call is to be folded with them instead."""
    events = _ingested(context, screened, now, adapter_version, {})
    pairs = seen_pairs(events)
    if parent is None:
        seen = await ledger.already_seen(context.tenant_id, pairs)
    else:
        seen, legs = await ledger.look_up_keeping(context.tenant_id, pairs, parent)
        if legs:
            return None
    return _sort_out(screened, events, pairs, seen)


def _ingested(
    context: TenantContext,
    screened: ScreenedActivities[AnyActivity],
    now: datetime,
    adapter_version: str,
    canonical: Mapping[uuid.UUID, uuid.UUID],
) -> list[IngestedActivity]:
    ingested_at = ingested_timestamp(now)
    return [
        to_ingested(
            activity,
            context.tenant_id,
            ingested_at,
            adapter_version,
            automated=automated,
            activity_id=canonical.get(own_id, own_id),
        )
        for activity, automated, own_id in screened.kept
    ]


def seen_pairs(events: Sequence[IngestedActivity]) -> list[tuple[uuid.UUID, int]]:
    """Each event's (activity id, revision), as the duplicate ledger records it (the revision read
    from the activity: the event's ``revision`` property is a Python-level call per event)."""
    return [(e.activity_id, e.activity.revision) for e in events]


def _sort_out(
    screened: ScreenedActivities[_ActivityT],
    events: Sequence[IngestedActivity],
    pairs: Sequence[tuple[uuid.UUID, int]],
    seen: Collection[tuple[uuid.UUID, int]],
) -> PreparedActivities:
    """Split events into those to publish and duplicates (``seen``: the pairs acknowledged before;
    a pair is published once per request). ``pairs`` are the events' (``seen_pairs``)."""
    prepared = PreparedActivities(exclusions=screened.exclusions)
    taken: set[tuple[uuid.UUID, int]] = set()
    for event, pair, (_, _, own_id) in zip(events, pairs, screened.kept, strict=True):
        if pair in taken or pair in seen:
            # The same (activity, revision) was acknowledged before: a redelivery, not republished.
            prepared.duplicates += 1
            continue
        taken.add(pair)
        prepared.events.append(event)
        prepared.automated += event.automated
        if event.activity_id != own_id:
            prepared.duplicates += 1
        else:
            prepared.new += 1
    return prepared


def raw_webhook_message(
    tenant_id: str,
    source: str,
    adapter_version: str,
    received_at: datetime,
    headers: Mapping[str, str],
    body: bytes,
    prefix: str,
) -> OutgoingMessage:
    """The delivery for re-normalisation by a later adapter version; ``body`` is what
    :func:`services.ingest.domain.capture.keep_of_delivery` allowed to be kept."""
    kept_headers = {
        k: v
        for k, v in headers.items()
        if k not in SECRET_HEADERS and not k.startswith("x-hubspot-signature")
    }
    fields = {
        "tenant_id": tenant_id,
        "source": source,
        "adapter_version": adapter_version,
        "received_at": received_at,
        "content_type": headers.get("content-type", ""),
        "body": body.decode("utf-8", errors="replace"),
        "headers": kept_headers,
    }
    key = f"{tenant_id}:{source}"
    return OutgoingMessage(
        topic=WEBHOOK_RECEIVED.physical(prefix),
        key=key.encode(),
        value=raw_capture_body(fields),
        envelope=Envelope(
            id=f"{key}:{hashlib.sha256(body).hexdigest()[:32]}",
            source=f"/ingest/webhooks/{source}",
            type=WEBHOOK_RECEIVED.event_type,
            subject=key,
            tenant=tenant_id,
        ),
    )


_TENANT_ID = re.compile(TENANT_ID_PATTERN)
_LINE = re.compile(LINE_PATTERN)
_TEXT = re.compile(TEXT_PATTERN)


def raw_capture_body(fields: dict[str, Any]) -> bytes:
    """``encode_body(WebhookReceivedV1(**fields))``, byte for byte, written by orjson once the
    values pass the model's checks (its patterns, matched whole, and an aware time in its range);
    anything else is built as the model, which refuses it as before. Validating and serialising
    the model was about 3 % of a Twilio callback."""
    received_at = fields["received_at"]
    if (
        _TENANT_ID.fullmatch(fields["tenant_id"])
        and _LINE.fullmatch(fields["source"])
        and _LINE.fullmatch(fields["adapter_version"])
        and _TEXT.fullmatch(fields["content_type"])
        and isinstance(received_at, datetime)
        and received_at.utcoffset() is not None
        and EARLIEST <= received_at < LATEST
    ):
        return orjson.dumps(fields, option=orjson.OPT_UTC_Z)
    return encode_body(WebhookReceivedV1(**fields))


def redact_body_secrets(source: str, body: bytes) -> bytes:
    """The body with the source's secret field masked wherever it appears (JSON bodies only)."""
    return capture_body(source, body, keep_content=True)


#: Headers that authenticate a delivery or a client: never copied to the raw topic.
SECRET_HEADERS = frozenset(
    {
        "authorization",
        "cookie",
        "proxy-authorization",
        "x-api-key",
        "x-twilio-signature",
        "x-zm-signature",
        "calendly-webhook-signature",
        "webhook-signature",
        "x-goog-channel-token",
        "verification-token",
    }
)


def parse_crm_sync(body: bytes) -> CrmSyncIn:
    document = _json(body)
    try:
        sync = CrmSyncIn.model_validate(document)
    except ValidationError as exc:
        errors = field_errors(exc)
        raise Problem(
            422,
            "Invalid CRM entities",
            "; ".join(f"{e['field']}: {e['reason']}" for e in errors[:20]),
            errors=errors,
        ) from None
    errors = _too_many_roles(sync)
    if errors:
        raise Problem(
            422,
            "Invalid CRM entities",
            "; ".join(f"{e['field']}: {e['reason']}" for e in errors),
            errors=errors,
        )
    return sync


def _too_many_roles(sync: CrmSyncIn) -> list[dict[str, str]]:
    """Deals listing more contact roles than ``LIST_LIMITS["contacts"]``, refused at the door (the
    event's contract does not limit them: it also decodes the versions accepted before)."""
    limit = LIST_LIMITS["contacts"]
    return [
        {
            "in": "body",
            "field": f"entities.{index}.deal.contacts",
            "reason": f"lists {len(entity.contacts)} contact roles; at most {limit} are accepted",
        }
        for index, entity in enumerate(sync.entities)
        if isinstance(entity, DealV1) and len(entity.contacts) > limit
    ]


@dataclass(frozen=True, slots=True)
class ReadCrmSync:
    """A CRM batch ready to publish, and what was dropped from its accepted entities."""

    messages: list[OutgoingMessage]
    warnings: tuple[EntityWarning, ...]
    #: The entities as read (published, an erased person's contact excepted).
    entities: tuple[CrmEntity, ...] = ()

    @property
    def left_out(self) -> int:
        """How many entities sent were left out (dated ahead of receipt), not accepted."""
        return sum(w.left_out for w in self.warnings)


def crm_messages(
    sync: CrmSyncIn,
    tenant_id: str,
    region: str,
    prefix: str,
    erased: ErasedIdentities = NO_ERASURES,
    stored_countries: Mapping[str, str] | None = None,
    *,
    received_at: datetime | None = None,
) -> ReadCrmSync:
    """Phones read in the contact's country, else its account's (in the batch, else
    ``stored_countries``), else the tenant's region (unreadable ones dropped with a warning), an
    entity whose ``updated_at`` is more than ``INGEST_MAX_FUTURE_SKEW_SECONDS`` ahead of
    ``received_at`` left out (with a warning: ``crm_sync.dated_ahead``), then one
    ``crm-entity-changed`` message per entity (an erased person's contact never)."""
    try:
        entities, warnings = read_entities(sync.entities, region, stored_countries, received_at=received_at)
    except ListTooLong as exc:
        raise Problem(
            422,
            "Invalid CRM entities",
            str(exc),
            errors=[{"in": "body", "field": exc.field, "reason": exc.reason}],
        ) from None
    return ReadCrmSync(entity_messages(entities, sync.source, tenant_id, prefix, erased), warnings, entities)


def entity_messages(
    entities: Sequence[CrmEntity],
    source: str,
    tenant_id: str,
    prefix: str,
    erased: ErasedIdentities = NO_ERASURES,
) -> list[OutgoingMessage]:
    messages = []
    for entity in entities:
        if isinstance(entity, ContactV1) and names_erased_person(entity.emails, entity.phones, erased):
            # An erased person's CRM record is accepted and never published.
            continue
        event = CrmEntityChangedV1(tenant_id=tenant_id, source=source, entity=entity)
        key = f"{tenant_id}:{entity.entity_type}:{entity.id}"
        messages.append(
            OutgoingMessage(
                topic=CRM_ENTITY_CHANGED.physical(prefix),
                key=key.encode(),
                value=encode_body(event),
                envelope=Envelope(
                    id=f"{key}:{entity.updated_at.isoformat()}",
                    source=f"/ingest/crm/{source}",
                    type=CRM_ENTITY_CHANGED.event_type,
                    subject=key,
                    tenant=tenant_id,
                ),
            )
        )
    return messages
