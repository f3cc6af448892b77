"""The canonical batch path's activities: msgspec from ``POST /v1/events``' body to the published bytes.

``ActivityIn`` (pydantic, ``activities.py``) stays the one definition of the canonical activity,
of its JSON Schema and of every refusal. Validating a batch of 1,000 into models, copying them
through privacy and serialising them again were most of ingest's CPU per batched event, so
:func:`decode_activity_batch` first tries msgspec on structs that mirror the contract field
for field (same names, order, defaults and limits, or stricter), and returns None for every
body that path does not take as-is; the caller then validates with the contract as before, so
the same bodies are accepted and every refusal names the same index, field and reason. The
domain (privacy, phones, meeting keys) reads both through ``ActivityFields`` and copies through
``copying.with_changes``: each rule is written once. :func:`encode_activity` writes a struct as
pydantic writes the equal model (``tests/unit/ingest/test_ingest_batch_structs.py`` checks the
bytes on generated samples, every privacy mode among them).

The fast path is stricter than the contract wherever matching it exactly would cost more:

* text must be ``str.isprintable`` (no C0/C1 control, no noncharacter, no surrogate, so the
  contract's ``LINE_PATTERN`` and ``TEXT_PATTERN`` hold); a tab in a subject or a no-break
  space in a name takes the contract's path;
* times are RFC 3339 with an offset, as msgspec reads them (pydantic also takes a comma or no
  seconds). msgspec rounds a fraction past microseconds where pydantic truncates, so a body with
  seven digits after a dot, or an escaped digit or dot (``\\u002e``), takes the contract's path;
* emails are normalised by the contract's own ``lower_email``, the two model validators' rules
  are the contract's (``outcome_mismatch``, ``NO_ADDRESS``), and the time window is
  ``EARLIEST``..``LATEST`` as in ``UtcDatetime``.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated

import msgspec
from msgspec import Meta, Struct
from msgspec.structs import force_setattr

from libs.common.contracts.activities import (
    NO_ADDRESS,
    ActivityIn,
    ActivityKind,
    Direction,
    Outcome,
    ParticipantRole,
    outcome_mismatch,
)
from libs.common.contracts.fields import EARLIEST, INT8_MAX, LATEST, lower_email

#: ``ExternalId``'s lengths; its characters are checked after decoding (``_refuse_unprintable``).
_Id = Annotated[str, Meta(min_length=1, max_length=256)]


def _refuse_unprintable(*texts: str | None) -> None:
    for text in texts:
        if text is not None and not text.isprintable():
            raise ValueError("not printable: the contract's path decides")


class ParticipantStruct(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``Participant`` as msgspec decodes it (same fields, order, defaults and limits)."""

    email: Annotated[str, Meta(max_length=320)] | None = None
    phone: Annotated[str, Meta(max_length=40)] | None = None
    name: Annotated[str, Meta(max_length=256)] | None = None
    role: ParticipantRole

    def __post_init__(self) -> None:
        # Inline rather than through ``_refuse_unprintable``: it runs for every participant.
        email, phone, name = self.email, self.phone, self.name
        if email is not None:
            if not email.isprintable():
                raise ValueError("email not printable: the contract's path decides")
            lowered = lower_email(email)  # the contract's AfterValidator
            if lowered != email:
                force_setattr(self, "email", lowered)
        elif phone is None:
            raise ValueError(NO_ADDRESS)
        if (phone is not None and not phone.isprintable()) or (name is not None and not name.isprintable()):
            raise ValueError("phone or name not printable: the contract's path decides")


class CrmReferencesStruct(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``CrmReferences`` as msgspec decodes it."""

    deal_id: _Id | None = None
    account_id: _Id | None = None
    contact_ids: tuple[_Id, ...] = ()
    owner_rep_id: _Id | None = None

    def __post_init__(self) -> None:
        _refuse_unprintable(self.deal_id, self.account_id, self.owner_rep_id, *self.contact_ids)


#: Shared like ``NO_CRM_REFERENCES`` (the struct is frozen).
NO_CRM_REFERENCES_STRUCT = CrmReferencesStruct()


class ActivityStruct(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``ActivityIn`` as msgspec decodes it (same fields, order, defaults and limits)."""

    source: Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9._-]*\Z")]
    external_id: _Id
    kind: ActivityKind
    direction: Direction
    outcome: Outcome
    occurred_at: Annotated[datetime, Meta(tz=True)]
    duration_seconds: Annotated[int, Meta(ge=0, le=86_400)] = 0
    participants: Annotated[tuple[ParticipantStruct, ...], Meta(min_length=1, max_length=500)]
    thread_id: Annotated[str, Meta(max_length=512)] | None = None
    ical_uid: Annotated[str, Meta(max_length=1024)] | None = None
    subject: Annotated[str, Meta(max_length=2_000)] | None = None
    crm: CrmReferencesStruct = NO_CRM_REFERENCES_STRUCT
    revision: Annotated[int, Meta(ge=0, le=INT8_MAX)] = 0

    def __post_init__(self) -> None:
        if outcome_mismatch(self.kind, self.outcome) is not None:
            raise ValueError("outcome: the contract's path names it")
        if not EARLIEST <= self.occurred_at < LATEST:
            raise ValueError("occurred_at: the contract's path names it")
        _refuse_unprintable(self.external_id, self.thread_id, self.ical_uid, self.subject)


class _ActivityBatch(Struct, frozen=True, forbid_unknown_fields=True):
    activities: list[ActivityStruct]


#: What the batch path handles: the fast path's struct, or the contract's model.
AnyActivity = ActivityIn | ActivityStruct

_DECODER = msgspec.json.Decoder(_ActivityBatch)
_ENCODER = msgspec.json.Encoder()
#: Seven digits after a dot: msgspec rounds such a fraction, pydantic truncates it.
_LONG_FRACTION = re.compile(rb"\.[0-9]{7}")
#: An escaped digit or dot, which could hide one (searched only in a body holding a backslash:
#: one alternation over the whole body cost 2 us per activity, these two 0.1).
_ESCAPED_DIGIT_OR_DOT = re.compile(rb"\\u00(?:3[0-9]|2[eE])")


def decode_activity_batch(body: bytes) -> list[ActivityStruct] | None:
    """The body's activities as structs when the fast path takes it as-is, else None.

    None says nothing about validity: the contract's decoder decides (and names the faults).
    """
    if _LONG_FRACTION.search(body) is not None or (
        b"\\" in body and _ESCAPED_DIGIT_OR_DOT.search(body) is not None
    ):
        return None
    try:
        return _DECODER.decode(body).activities
    except (msgspec.ValidationError, msgspec.DecodeError, RecursionError):
        return None


def encode_activity(activity: ActivityStruct) -> bytes:
    """The JSON pydantic writes for the equal ``ActivityIn`` (``__pydantic_serializer__.to_json``)."""
    return _ENCODER.encode(activity)
