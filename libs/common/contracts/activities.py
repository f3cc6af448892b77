"""The canonical activity: one email, call or meeting, whatever system it came from."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Protocol

import orjson
from asyncpg.pgproto.pgproto import UUID as _PgUUID
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

# Field types live in fields.py; the four ``X as X`` names are re-exported for existing importers.
from libs.common.contracts.fields import TENANT_ID_PATTERN as TENANT_ID_PATTERN
from libs.common.contracts.fields import DurationSeconds, Revision, SafeStr, SafeText, StrictBool, UtcDatetime
from libs.common.contracts.fields import Email as Email
from libs.common.contracts.fields import ExternalId as ExternalId
from libs.common.contracts.fields import TenantId as TenantId

#: Fixed namespace so that the same (tenant, source, external id) always maps to the same id.
ACTIVITY_ID_NAMESPACE = uuid.UUID("5b0f8a52-7d0e-4c7a-9b1a-2f6f4f3e9a10")

E164_PATTERN = r"^\+[1-9][0-9]{6,14}$"


def activity_id_for(tenant_id: str, source: str, external_id: str) -> uuid.UUID:
    """Deterministic activity id: redeliveries of one vendor object collapse to one id.

    ``uuid.uuid5(ACTIVITY_ID_NAMESPACE, f"{tenant_id}\\x1f{source}\\x1f{external_id}")``, with the
    version and variant bits set on the integer (``uuid5`` sets them through ``UUID(bytes=...,
    version=5)``, twice the CPU; ingest derives one per activity).

    Returned as asyncpg's own ``UUID`` (``asyncpg.pgproto.pgproto.UUID``, a ``uuid.UUID``
    subclass: equal to the ``uuid.UUID`` of the same value, the same hash, order and text),
    what the services read back from PostgreSQL: its ``__hash__``, ``__str__`` and ``bytes`` are
    C where ``uuid.UUID``'s are Python-level calls, and ingest hashes an id about six times per
    activity (the request's sets and dicts), writes it as text once or twice and sends its bytes
    to PostgreSQL two to four times. ``orjson`` does not serialise this subclass: write an id
    into JSON as ``str(id)``, as ingest does everywhere.
    """
    # The namespace hashed once (``_NAMESPACED``), its state copied per id: a quarter less CPU
    # than a new hash of the namespace and the name (the same SHA-1, the same id).
    sha1 = _NAMESPACED.copy()
    sha1.update(f"{tenant_id}\x1f{source}\x1f{external_id}".encode())
    digest = sha1.digest()
    activity_id: uuid.UUID = _PgUUID(((int.from_bytes(digest[:16]) & _UUID5_CLEAR) | _UUID5_SET).to_bytes(16))
    return activity_id


_NAMESPACE_BYTES = ACTIVITY_ID_NAMESPACE.bytes
_NAMESPACED = hashlib.sha1(_NAMESPACE_BYTES, usedforsecurity=False)
#: RFC 4122 version 5 and variant bits: cleared, then set, as ``uuid.UUID(..., version=5)`` does.
_UUID5_CLEAR = ~((0xF000 << 64) | (0xC000 << 48)) & ((1 << 128) - 1)
_UUID5_SET = (5 << 76) | (0x8000 << 48)


E164Phone = Annotated[str, Field(pattern=E164_PATTERN)]


class ActivityKind(StrEnum):
    EMAIL = "email"
    CALL = "call"
    MEETING = "meeting"


class Direction(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"
    INTERNAL = "internal"


class Outcome(StrEnum):
    # calls
    CONNECTED = "connected"
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    VOICEMAIL = "voicemail"
    FAILED = "failed"
    # meetings
    SCHEDULED = "scheduled"
    HELD = "held"
    CANCELLED = "cancelled"
    NO_SHOW = "no_show"
    # emails
    SENT = "sent"
    RECEIVED = "received"


OUTCOMES_BY_KIND: dict[ActivityKind, frozenset[Outcome]] = {
    ActivityKind.CALL: frozenset(
        {Outcome.CONNECTED, Outcome.NO_ANSWER, Outcome.BUSY, Outcome.VOICEMAIL, Outcome.FAILED}
    ),
    ActivityKind.MEETING: frozenset({Outcome.SCHEDULED, Outcome.HELD, Outcome.CANCELLED, Outcome.NO_SHOW}),
    ActivityKind.EMAIL: frozenset({Outcome.SENT, Outcome.RECEIVED}),
}


class ParticipantRole(StrEnum):
    FROM = "from"
    TO = "to"
    CC = "cc"
    #: A blind copy: a sent message's own copy lists it (Gmail's ``Bcc`` header, Graph's
    #: ``bccRecipients``); a rep blind-copied on a buyer's mail took part in it.
    BCC = "bcc"
    ORGANIZER = "organizer"
    ATTENDEE = "attendee"
    CALLER = "caller"
    CALLEE = "callee"


def outcome_mismatch(kind: ActivityKind, outcome: Outcome) -> str | None:
    """Why ``outcome`` cannot end an activity of ``kind``, or None when it can."""
    if outcome in OUTCOMES_BY_KIND[kind]:
        return None
    allowed = ", ".join(sorted(OUTCOMES_BY_KIND[kind]))
    return f"outcome {outcome.value!r} is not valid for a {kind.value}: use {allowed}"


NO_ADDRESS = "a participant needs an email or a phone"
NO_LINE = "an extension needs the phone it is dialled on"


class ResponseStatus(StrEnum):
    """How an invitee answered a meeting invitation (calendar exports carry it)."""

    ACCEPTED = "accepted"
    DECLINED = "declined"
    TENTATIVE = "tentative"
    NEEDS_ACTION = "needs_action"


#: Read as a module constant: an enum member read from its class costs about 1,300 instructions
#: in Python 3.11 (``EnumType.__getattr__``'s slot); see attribution's ``domain.matching``.
_DECLINED = ResponseStatus.DECLINED

#: Every spelling ``response_status`` takes, lower-cased, and what it means: ours, Google
#: Calendar's ``attendees[].responseStatus`` and Microsoft Graph's ``attendees[].status.response``
#: (``organizer`` answered by sending the invitation; ``none`` and ``notResponded`` have not).
RESPONSE_STATUS_SPELLINGS: dict[str, ResponseStatus] = {
    **{status.value: status for status in ResponseStatus},
    "needsaction": ResponseStatus.NEEDS_ACTION,
    "tentativelyaccepted": ResponseStatus.TENTATIVE,
    "organizer": ResponseStatus.ACCEPTED,
    "none": ResponseStatus.NEEDS_ACTION,
    "notresponded": ResponseStatus.NEEDS_ACTION,
}
_RESPONSE_STATUS_REASON = (
    "unknown response status {value}: use accepted, declined, tentative or needs_action "
    "(Google's needsAction and Graph's tentativelyAccepted, organizer, none and notResponded are read too)"
)


def read_response_status(value: object) -> object:
    """A vendor's or our spelling of a response status, any case, as :class:`ResponseStatus`;
    none stays none; anything else is refused with the reason (a 422 naming the field)."""
    if value is None or isinstance(value, ResponseStatus):
        return value
    if isinstance(value, str):
        status = RESPONSE_STATUS_SPELLINGS.get(value.strip().lower())
        if status is not None:
            return status
        shown = repr(value if len(value) <= 40 else value[:40] + "...")
    else:
        shown = f"of type {type(value).__name__}"
    raise PydanticCustomError("response_status", _RESPONSE_STATUS_REASON, {"value": shown})


def _is_none(value: object) -> bool:
    return value is None


def _is_empty(value: object) -> bool:
    return not value


#: An extension as ingest keeps it: digits only.
PhoneExtension = Annotated[str, Field(pattern=r"^[0-9]{1,20}$")]


def phone_key(phone: str, extension: str | None) -> str:
    """The key a line with an extension is matched by: ``+14155550100;ext=12`` (RFC 3966's
    spelling), the bare line when there is none. Contacts and reps store it
    (``phone_extensions``), participants carry the line and the extension apart."""
    return f"{phone};ext={extension}" if extension else phone


def line_of(key: str) -> str:
    """The line a :func:`phone_key` hangs off."""
    return key.partition(";ext=")[0]


def extension_of(participant: ParticipantFields) -> str | None:
    """A participant's extension, on the contract model or the batch path's struct (``UNSET``)."""
    extension = getattr(participant, "extension", None)
    return extension if isinstance(extension, str) else None


class Participant(BaseModel):
    """One person on an activity, known by email and/or phone."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    email: Email | None = None
    phone: SafeStr | None = Field(default=None, max_length=40, description="E.164 after normalisation")
    name: SafeStr | None = Field(default=None, max_length=256)
    role: ParticipantRole
    #: How the invitee answered (meetings): a rep who declined is not credited, and a declined
    #: external attendee is no evidence for an account or deal. Written only when known, so an
    #: activity without it is the same JSON as before the field existed.
    response_status: ResponseStatus | None = Field(
        default=None,
        exclude_if=_is_none,
        description=(
            "accepted, declined, tentative or needs_action; Google's responseStatus and Graph's "
            "status.response spellings are read too, in any case"
        ),
    )
    #: The extension dialled on ``phone`` (a dialer's ``+14155550100;ext=12``): matched against
    #: the contacts' and reps' phones listing that line with that extension. Written only when
    #: known, so an activity without it is the same JSON as before the field existed.
    extension: PhoneExtension | None = Field(
        default=None,
        exclude_if=_is_none,
        description=(
            "digits of the extension dialled on phone; ingest reads it off the phone "
            "(;ext=12, x12, ext. 12, ,12)"
        ),
    )

    @field_validator("response_status", mode="before")
    @classmethod
    def _read_response_status(cls, value: object) -> object:
        return read_response_status(value)

    @field_validator("email", "phone", "name", "extension", mode="before")
    @classmethod
    def _blank_is_none(cls, value: object) -> object:
        """An empty or blank value (an export's empty column: a call's ``"email": ""``) is none."""
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _needs_an_address(self) -> Participant:
        if self.email is None and self.phone is None:
            raise ValueError(NO_ADDRESS)
        if self.extension is not None and self.phone is None:
            raise ValueError(NO_LINE)
        return self


#: The most ``crm.contact_ids`` an activity posted to ingest may name (as many as its
#: participants): one naming 150,000 held the attribution consumer, and every tenant behind it,
#: for 6 s. Checked at ingest's door (``POST /v1/events``; a vendor's associations are cut to it),
#: not by :class:`CrmReferences`, which also decodes the activities accepted and stored before.
CONTACT_IDS_LIMIT = 500


class CrmReferences(BaseModel):
    """Explicit CRM links carried by the source (a CRM engagement's associations, say)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    deal_id: ExternalId | None = None
    account_id: ExternalId | None = None
    contact_ids: tuple[ExternalId, ...] = ()
    owner_rep_id: ExternalId | None = None
    #: The ids the source knows the rep's side of the activity by (a RingCentral extension id, a
    #: Twilio Client identity or SIP user), best first, as the tenant's ``rep_aliases`` keys them:
    #: attribution credits the rep the first one it maps names, in place of ``owner_rep_id``
    #: (what ingest found when the activity arrived), so a mapping made or changed later
    #: re-credits the activity. Written only when known, so an activity without them is the
    #: same JSON as before the field existed.
    owner_identities: tuple[ExternalId, ...] = Field(
        default=(),
        max_length=64,
        exclude_if=_is_empty,
        description=(
            "the source's ids of the rep's side (a dialer's extension or softphone identity), "
            "best first: the first the tenant's rep_aliases maps is the rep credited"
        ),
    )

    @field_validator("deal_id", "account_id", "owner_rep_id", mode="before")
    @classmethod
    def _blank_is_none(cls, value: object) -> object:
        """A blank reference (an export's empty column: ``"owner_rep_id": ""``) is none: read as an
        id, a blank owner was credited with the activity. A numeric id (HubSpot's) is its text."""
        if value.__class__ is int:
            return str(value)
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("contact_ids", mode="before")
    @classmethod
    def _no_blank_ids(cls, value: object) -> object:
        """``null`` is no contact, a blank id among them names none, a numeric id is its text."""
        if value is None:
            return ()
        if isinstance(value, list | tuple) and any(
            (isinstance(v, str) and not v.strip()) or v.__class__ is int for v in value
        ):
            return tuple(
                str(v) if v.__class__ is int else v
                for v in value
                if not (isinstance(v, str) and not v.strip())
            )
        return value


#: The references of an activity that carries none, shared (the model is frozen): building one
#: per activity was about a quarter of validating a batch of activities.
NO_CRM_REFERENCES = CrmReferences()


def _no_crm_references() -> CrmReferences:
    return NO_CRM_REFERENCES


class ActivityIn(BaseModel):
    """A canonical activity as a client posts it to ``POST /v1/events``."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={
            "examples": [
                {
                    "source": "api",
                    "external_id": "call-7f3a",
                    "kind": "call",
                    "direction": "outbound",
                    "outcome": "connected",
                    "occurred_at": "2026-11-02T15:04:05Z",
                    "duration_seconds": 312,
                    "participants": [
                        {"email": "ana@acme.example", "role": "caller"},
                        {"phone": "+14155550100", "name": "Bo Buyer", "role": "callee"},
                    ],
                }
            ]
        },
    )

    source: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9._-]*$")
    external_id: ExternalId
    kind: ActivityKind
    direction: Direction
    outcome: Outcome
    occurred_at: UtcDatetime
    duration_seconds: DurationSeconds = 0
    participants: tuple[Participant, ...] = Field(min_length=1, max_length=500)
    thread_id: SafeStr | None = Field(default=None, max_length=512)
    #: RFC 5545 UID of a calendar event; the same meeting seen from several sources shares it.
    ical_uid: SafeStr | None = Field(default=None, max_length=1024)
    subject: SafeText | None = Field(default=None, max_length=2_000)
    crm: CrmReferences = Field(default_factory=_no_crm_references)
    #: Monotonic per vendor object (Twilio's SequenceNumber, a modification timestamp in ms...):
    #: when one object is delivered several times in different states the highest revision wins,
    #: so reordered status callbacks settle on the final state.
    revision: Revision = 0

    @field_validator("external_id", mode="before")
    @classmethod
    def _numeric_id_is_text(cls, value: object) -> object:
        """A vendor's numeric id (a HubSpot engagement's ``12345``) is that id's text."""
        return str(value) if value.__class__ is int else value

    @field_validator("crm", "duration_seconds", mode="before")
    @classmethod
    def _null_is_default(cls, value: object, info: ValidationInfo) -> object:
        """``"crm": null`` is no reference, ``"duration_seconds": null`` an unknown length (0)."""
        if value is not None:
            return value
        return NO_CRM_REFERENCES if info.field_name == "crm" else 0

    @model_validator(mode="after")
    def _consistent(self) -> ActivityIn:
        mismatch = outcome_mismatch(self.kind, self.outcome)
        if mismatch is not None:
            raise ValueError(mismatch)
        return self


def participant_json_fields(participant: Participant) -> dict[str, Any]:
    """``participant.model_dump(mode="json")`` for orjson to write (enums and times as they are):
    its optional extras left out when unset, as the model's serializer leaves them out."""
    fields: dict[str, Any] = {
        "email": participant.email,
        "phone": participant.phone,
        "name": participant.name,
        "role": participant.role,
    }
    if participant.response_status is not None:
        fields["response_status"] = participant.response_status
    if participant.extension is not None:
        fields["extension"] = participant.extension
    return fields


def activity_json(activity: ActivityIn) -> bytes:
    """``activity.__pydantic_serializer__.to_json(activity)``, byte for byte, written by orjson:
    the serializer called back into Python for each participant's and the references' optional
    fields (``exclude_if``), about 3 % of a vendor callback. Only for an ``ActivityIn`` itself
    (a subclass may add fields)."""
    crm = activity.crm
    references: dict[str, Any] = {
        "deal_id": crm.deal_id,
        "account_id": crm.account_id,
        "contact_ids": crm.contact_ids,
        "owner_rep_id": crm.owner_rep_id,
    }
    if crm.owner_identities:
        references["owner_identities"] = crm.owner_identities
    return orjson.dumps(
        {
            "source": activity.source,
            "external_id": activity.external_id,
            "kind": activity.kind,
            "direction": activity.direction,
            "outcome": activity.outcome,
            "occurred_at": activity.occurred_at,
            "duration_seconds": activity.duration_seconds,
            "participants": [participant_json_fields(p) for p in activity.participants],
            "thread_id": activity.thread_id,
            "ical_uid": activity.ical_uid,
            "subject": activity.subject,
            "crm": references,
            "revision": activity.revision,
        },
        option=orjson.OPT_UTC_Z,
    )


class ParticipantFields(Protocol):
    """What the domain reads of a participant: :class:`Participant`, or the batch path's struct
    (``activities_fast.ParticipantStruct``), so each rule is written once for both."""

    @property
    def email(self) -> str | None: ...
    @property
    def phone(self) -> str | None: ...
    @property
    def name(self) -> str | None: ...
    @property
    def role(self) -> ParticipantRole: ...
    @property
    def response_status(self) -> object:
        """A :class:`ResponseStatus`, or none (``None``, or the batch path's ``msgspec.UNSET``)."""
        ...


def declined(participant: ParticipantFields) -> bool:
    """Whether the participant declined the meeting (and so did not take part in it)."""
    return participant.response_status == _DECLINED


class CrmFields(Protocol):
    """What the domain reads of an activity's CRM references: :class:`CrmReferences`, or the
    batch path's ``activities_fast.CrmReferencesStruct``."""

    @property
    def contact_ids(self) -> Sequence[str]: ...


class ActivityFields(Protocol):
    """What the domain reads of an activity: :class:`ActivityIn`, or the batch path's struct
    (``activities_fast.ActivityStruct``); privacy, phones and meeting keys are written over this."""

    @property
    def source(self) -> str: ...
    @property
    def external_id(self) -> str: ...
    @property
    def kind(self) -> ActivityKind: ...
    @property
    def direction(self) -> Direction: ...
    @property
    def outcome(self) -> Outcome: ...
    @property
    def occurred_at(self) -> datetime: ...
    @property
    def participants(self) -> Sequence[ParticipantFields]: ...
    @property
    def thread_id(self) -> str | None: ...
    @property
    def ical_uid(self) -> str | None: ...
    @property
    def subject(self) -> str | None: ...
    @property
    def revision(self) -> int: ...
    @property
    def crm(self) -> CrmFields: ...


class ActivityIngestedV1(ActivityIn):
    """Event ``activity-ingested``: an accepted, normalised, privacy-filtered activity."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tenant_id: TenantId
    activity_id: uuid.UUID
    ingested_at: UtcDatetime
    #: Sent by a no-reply or automated address; kept, counted, never scored.
    automated: StrictBool = False
    adapter_version: SafeStr = Field(default="canonical/1", max_length=64)


class ActivityDeletedV1(BaseModel):
    """Event ``activity-deleted``: the source deleted an activity (a meeting removed from the
    calendar, a Graph delta's ``@removed`` event). Published on the ``activity-ingested`` topic
    under the activity's own key, so it is read after every revision published before it.

    A deletion names the activity, and what little else the source tells (Google's incremental
    sync strips a deleted event to its id and ``status``; Graph's ``@removed`` entry is an id).
    Attribution retracts the activity it holds under ``activity_id`` until a newer revision
    (a restore at the source) brings it back; a deletion seen in the calendar of someone other
    than the meeting's organizer only takes that person out of it.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    tenant_id: TenantId
    #: ``activity_id_for(tenant_id, source, external_id)``: the id the activity was published under.
    activity_id: uuid.UUID
    source: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9._-]*$")
    external_id: ExternalId
    #: When ingest received the deletion (the sources give no time for it).
    deleted_at: UtcDatetime
    adapter_version: SafeStr = Field(default="canonical/1", max_length=64)
    #: Added within V1, omitted when unknown: the deletion's place among the activity's
    #: revisions (the source's modification time in ms when it gives one: HubSpot, Salesforce,
    #: Google's ``updated``; ``DELETE /v1/events?revision=``; for a calendar deletion the source
    #: does not date, Graph's ``@removed`` or Google's without ``updated``, the time ingest
    #: received it in ms, the scale of that source's edits, and no older than a revision ingest
    #: published before it). A revision up to it is older than the deletion; only a higher one
    #: restores the activity. Unknown: right after the revision held.
    revision: Revision | None = Field(default=None, exclude_if=_is_none)
    #: Added within V1, omitted when unknown: the mailbox whose calendar the deletion was seen in
    #: (the calendar connectors). Only the organizer's calendar deletes a meeting; anyone else's
    #: means that person no longer attends it.
    seen_in: Email | None = Field(default=None, exclude_if=_is_none)
    #: Added within V1, omitted for a deletion: the object was **not** deleted, its newer
    #: revision is no meeting (ingest's reason: a hold only colleagues attend, time away, time
    #: its organizer alone keeps). Attribution retracts the meeting as for a deletion, under
    #: ``rule_path`` ``not_a_meeting`` with this reason, until a newer revision restores it.
    not_a_meeting: SafeStr | None = Field(default=None, max_length=200, exclude_if=_is_none)
