"""Canonical activities in msgspec: the batch path of ``POST /v1/events`` and attribution's decoder.

``ActivityIn`` and ``ActivityIngestedV1`` (pydantic, ``activities.py``) stay the one definition
of the canonical activity, of its JSON Schema and of every refusal. Validating, copying and
serialising models were the largest codec costs of ingest (a batch of 1,000 per request) and of
attribution (one body per activity), so both first try msgspec on the structs below, which
mirror the contracts field for field (same names, order, defaults and limits, or stricter), and
hand every body that path does not take as-is to the contract's own decoder: the bodies
accepted and refused, every 4xx field and reason and every dead-letter reason are the
contract's. The domain (privacy, phones, meeting keys, matching) reads both forms through the
same attribute names (``ActivityFields``, :data:`IngestedEvent`): each rule is written once.
``tests/unit/ingest/test_ingest_batch_structs.py`` and ``tests/unit/common/test_activities_fast.py``
check both paths' values and bytes against the contract.

The fast path is stricter than the contract wherever matching it exactly would cost more:

* text must be ``str.isprintable`` (no C0/C1 control, no noncharacter, no surrogate, so the
  contract's ``LINE_PATTERN`` and ``TEXT_PATTERN`` hold); a tab in a subject or a no-break
  space in a name takes the contract's path;
* times are RFC 3339 with an offset, as msgspec reads them (pydantic also takes a comma or no
  seconds). msgspec rounds a fraction past microseconds where pydantic truncates, so a body with
  seven digits after a dot, or an escaped digit or dot (``\\u002e``), takes the contract's path
  (attribution's decoder leaves every body holding a backslash to the contract);
* emails are normalised by the contract's own ``lower_email``, the two model validators' rules
  are the contract's (``outcome_mismatch``, ``NO_ADDRESS``), and the time window is
  ``EARLIEST``..``LATEST`` as in ``UtcDatetime``.

msgspec writes fields in declaration order and times as pydantic-core does, so
:func:`encode_activity` and :func:`encode_ingested` give the bytes ``encode_body`` gives for the
equal model.
"""

from __future__ import annotations

import re
import uuid
from typing import Annotated, ClassVar

import msgspec
from asyncpg.pgproto.pgproto import UUID as PgUUID
from msgspec import UNSET, Meta, Struct, UnsetType
from msgspec.structs import force_setattr

from libs.common.contracts.activities import (
    CONTACT_IDS_LIMIT,
    NO_ADDRESS,
    ActivityIn,
    ActivityIngestedV1,
    ActivityKind,
    CrmReferences,
    Direction,
    Outcome,
    Participant,
    ParticipantRole,
    ResponseStatus,
    outcome_mismatch,
)
from libs.common.contracts.attribution_fast import LONG_FRACTION, TENANT_ID, AwareTime, IdText
from libs.common.contracts.envelope import decode_body, encode_body
from libs.common.contracts.fields import EARLIEST, INT8_MAX, LATEST, lower_email


class ParticipantStruct(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``Participant`` as msgspec decodes it (same fields, order, defaults and limits).

    ``response_status`` is ``UNSET`` where the contract holds ``None``: msgspec omits an unset
    field as the contract omits a none one, and takes only our own spellings (a vendor's, any
    other case or an explicit ``null`` are left to the contract, which reads them).
    """

    email: Annotated[str, Meta(max_length=320)] | None = None
    phone: Annotated[str, Meta(max_length=40)] | None = None
    name: Annotated[str, Meta(max_length=256)] | None = None
    role: ParticipantRole
    response_status: ResponseStatus | UnsetType = UNSET
    extension: Annotated[str, Meta(pattern=r"^[0-9]{1,20}$")] | UnsetType = UNSET

    def __post_init__(self) -> None:
        # Inline checks, no helper called: this runs for every participant.
        email, phone, name = self.email, self.phone, self.name
        if (
            not (email is None or email.strip())
            or not (phone is None or phone.strip())
            or not (name is None or name.strip())
        ):
            # A blank value is none (the contract's ``_blank_is_none``); rare, so decided there.
            raise ValueError("a blank value: the contract's path decides")
        if email is not None:
            if not email.isprintable():
                raise ValueError("email not printable: the contract's path decides")
            lowered = lower_email(email)  # the contract's AfterValidator
            if lowered != email:
                force_setattr(self, "email", lowered)
        elif phone is None:
            raise ValueError(NO_ADDRESS)
        if phone is None and self.extension is not UNSET:
            raise ValueError("an extension without a phone: the contract's path decides")
        if (phone is not None and not phone.isprintable()) or (name is not None and not name.isprintable()):
            raise ValueError("phone or name not printable: the contract's path decides")


class CrmReferencesStruct(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``CrmReferences`` as msgspec decodes it."""

    deal_id: IdText | None = None
    account_id: IdText | None = None
    #: More than ``CONTACT_IDS_LIMIT`` leaves the body to the contract's path: ingest refuses them,
    #: an activity accepted before the limit still decodes there.
    contact_ids: Annotated[tuple[IdText, ...], Meta(max_length=CONTACT_IDS_LIMIT)] = ()
    owner_rep_id: IdText | None = None

    def __post_init__(self) -> None:
        # One loop, no generator: a blank or unprintable reference alike leaves the body to the
        # contract's path (which of the two is found first makes no difference there).
        for i in (self.deal_id, self.account_id, self.owner_rep_id, *self.contact_ids):
            if i is not None and not (i.strip() and i.isprintable()):
                # A blank reference is none (the contract's ``_blank_is_none``); rare, so decided there.
                raise ValueError("a blank or unprintable reference: the contract's path decides")

    @property
    def owner_identities(self) -> tuple[str, ...]:
        """None here: an activity naming the source's ids of its rep (``CrmReferences``, a
        dialer's call) is left to the contract (an unknown field to this struct)."""
        return ()


#: Shared like ``NO_CRM_REFERENCES`` (the struct is frozen).
NO_CRM_REFERENCES_STRUCT = CrmReferencesStruct()


class ActivityStruct(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``ActivityIn`` as msgspec decodes it (same fields, order, defaults and limits)."""

    source: Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9._-]*\Z")]
    external_id: IdText
    kind: ActivityKind
    direction: Direction
    outcome: Outcome
    occurred_at: AwareTime
    duration_seconds: Annotated[int, Meta(ge=0, le=86_400)] = 0
    participants: Annotated[tuple[ParticipantStruct, ...], Meta(min_length=1, max_length=500)]
    thread_id: Annotated[str, Meta(max_length=512)] | None = None
    ical_uid: Annotated[str, Meta(max_length=1024)] | None = None
    subject: Annotated[str, Meta(max_length=2_000)] | None = None
    crm: CrmReferencesStruct = NO_CRM_REFERENCES_STRUCT
    revision: Annotated[int, Meta(ge=0, le=INT8_MAX)] = 0

    #: ``with_changes`` copies it without running ``__post_init__`` again: the checks below (and
    #: ``Ingested``'s) only refuse, and the copies the domain makes (a subject dropped, a time in
    #: UTC, participants read anew, a blank thread as none) keep what they checked.
    copied_unchecked: ClassVar[bool] = True

    def __post_init__(self) -> None:
        if outcome_mismatch(self.kind, self.outcome) is not None:
            raise ValueError("outcome: the contract's path names it")
        if not EARLIEST <= self.occurred_at < LATEST:
            raise ValueError("occurred_at: the contract's path names it")
        # Text must be printable (see the module's notes); inline: this runs for every activity.
        for text in (self.external_id, self.thread_id, self.ical_uid, self.subject):
            if text is not None and not text.isprintable():
                raise ValueError("not printable: the contract's path decides")


class Ingested(ActivityStruct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``ActivityIngestedV1`` as msgspec decodes it: ``ActivityIn``'s fields, then ingest's."""

    tenant_id: Annotated[str, Meta(pattern=TENANT_ID)]
    activity_id: uuid.UUID
    ingested_at: AwareTime
    automated: bool = False
    adapter_version: Annotated[str, Meta(max_length=64)] = "canonical/1"

    def __post_init__(self) -> None:
        ActivityStruct.__post_init__(self)  # not through ``super()``: no proxy object per activity
        if not EARLIEST <= self.ingested_at < LATEST:
            raise ValueError("ingested_at: the contract's path names it")
        if not self.adapter_version.isprintable():
            raise ValueError("adapter_version not printable: the contract's path decides")


class _ActivityBatch(Struct, frozen=True, forbid_unknown_fields=True):
    activities: list[ActivityStruct]


#: What the batch path handles: the fast path's struct, or the contract's model.
AnyActivity = ActivityIn | ActivityStruct

#: What attribution handles: the fast path's struct, or the contract's model (the contract's
#: fallback, the rows it reads back, the evaluation and the tests build models).
IngestedEvent = Ingested | ActivityIngestedV1

#: One participant of either form.
AnyParticipant = ParticipantStruct | Participant
#: An activity's CRM references in either form.
AnyCrmReferences = CrmReferencesStruct | CrmReferences

_BATCH_DECODER = msgspec.json.Decoder(_ActivityBatch)
_INGESTED_DECODER = msgspec.json.Decoder(Ingested)
_ENCODER = msgspec.json.Encoder()
#: An escaped digit or dot, which could hide one (searched only in a body holding a backslash:
#: one alternation over the whole body cost 2 us per activity, these two 0.1).
_ESCAPED_DIGIT_OR_DOT = re.compile(rb"\\u00(?:3[0-9]|2[eE])")
_UNDECODED = (msgspec.ValidationError, msgspec.DecodeError, RecursionError)


def decode_activity_batch(body: bytes) -> list[ActivityStruct] | None:
    """The body's activities as structs when the fast path takes it as-is, else None.

    None says nothing about validity: the contract's decoder decides (and names the faults).
    """
    if LONG_FRACTION.search(body) is not None or (
        b"\\" in body and _ESCAPED_DIGIT_OR_DOT.search(body) is not None
    ):
        return None
    try:
        return _BATCH_DECODER.decode(body).activities
    except _UNDECODED:
        return None


def encode_activity(activity: ActivityStruct) -> bytes:
    """The JSON pydantic writes for the equal ``ActivityIn`` (``__pydantic_serializer__.to_json``)."""
    return _ENCODER.encode(activity)


def decode_fast(body: bytes) -> Ingested | None:
    """An ``activity-ingested`` body as a struct when the fast path takes it as-is, else ``None``.

    Its ``activity_id`` is asyncpg's ``UUID`` (what the services read back from PostgreSQL)."""
    if b"\\" in body or LONG_FRACTION.search(body) is not None:
        return None
    try:
        event = _INGESTED_DECODER.decode(body)
    except _UNDECODED:
        return None
    # The id as asyncpg's own ``UUID`` (a ``uuid.UUID`` subclass, equal, same hash, order and
    # text): attribution keys its batch by it in dicts and sets and sorts by it, about 35 hashes
    # and comparisons an activity, each a Python-level call of ``uuid.UUID.__hash__`` / ``__eq__``
    # / ``__lt__``, where asyncpg's are C and memoise the hash. ``int`` and ``to_bytes`` are C too.
    # orjson serialises ``uuid.UUID`` but not this subclass: write ids into JSON as ``str(id)``
    # (as every explanation does) or pass ``default=str``, as with ids read back from PostgreSQL.
    force_setattr(event, "activity_id", PgUUID(event.activity_id.int.to_bytes(16, "big")))
    return event


def decode_ingested(body: bytes | None) -> IngestedEvent:
    """Decode an ``activity-ingested`` body; anything invalid raises the contract's ``InvalidMessage``."""
    if body is not None:
        event = decode_fast(body)
        if event is not None:
            return event
    return decode_body(ActivityIngestedV1, body)


def encode_ingested(event: IngestedEvent) -> bytes:
    """The activity as JSON: the bytes ``encode_body`` gives for the equal ``ActivityIngestedV1``."""
    if isinstance(event, Ingested):
        return _ENCODER.encode(event)
    return encode_body(event)


def with_crm(
    event: IngestedEvent,
    deal_id: str | None,
    account_id: str | None,
    contact_ids: tuple[str, ...],
    owner_rep_id: str | None,
) -> IngestedEvent:
    """``event`` with other CRM references, in its own form (the contract's when the struct
    would refuse them: an identifier the contract takes but the fast path leaves to it). The
    source's ids of its rep (``owner_identities``) stay as they are."""
    if isinstance(event, Ingested):
        try:
            crm = CrmReferencesStruct(
                deal_id=deal_id, account_id=account_id, contact_ids=contact_ids, owner_rep_id=owner_rep_id
            )
        except ValueError:
            event = as_contract(event)
        else:
            return msgspec.structs.replace(event, crm=crm)
    references = CrmReferences(
        deal_id=deal_id,
        account_id=account_id,
        contact_ids=contact_ids,
        owner_rep_id=owner_rep_id,
        owner_identities=event.crm.owner_identities,
    )
    return event.model_copy(update={"crm": references})


def as_contract(event: IngestedEvent) -> ActivityIngestedV1:
    """``event`` as the contract's model (validated again from its JSON when it is a struct)."""
    if isinstance(event, Ingested):
        return ActivityIngestedV1.model_validate_json(_ENCODER.encode(event))
    return event
