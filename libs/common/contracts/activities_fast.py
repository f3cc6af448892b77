"""``activity-ingested`` in msgspec: attribution's decoder (msgspec first, the contract always) and
the encoder of what it decoded.

``ActivityIngestedV1`` (pydantic, ``activities.py``) stays the one definition of the event and of
its JSON Schema. Attribution decodes one body per activity, and validating it was its largest
codec cost, so :func:`decode_ingested` first tries msgspec on structs that mirror the contract
field for field, at its limits or stricter, and hands every body that path does not take as-is
to the contract's own decoder (:func:`decode_body`): the bodies accepted and refused, and every
dead-letter reason, are the contract's. ``tests/unit/common/test_activities_fast.py`` checks that
the values of both paths are equal on every sample either accepts. The fast path takes what
``attribution_fast`` takes (the same identifier, time and escape rules) and also leaves to the
contract:

* an email that is not already what ``Email`` makes of it (trimmed, lower case, one ``@`` and a
  dot after it), and a participant with neither an email nor a phone;
* an outcome that is not one of its kind's (the contract's reason names the allowed ones);
* any text that is not ``str.isprintable`` (a subject with a tab, a no-break space in a name).

Attribution reads both forms through the same attribute names (:data:`IngestedEvent`), and
:func:`encode_ingested` writes either as the bytes ``encode_body`` gives for the equal model
(msgspec writes fields in declaration order, times as pydantic-core does).
"""

from __future__ import annotations

import uuid
from typing import Annotated

import msgspec
from msgspec import Meta, Struct

from libs.common.contracts.activities import (
    OUTCOMES_BY_KIND,
    ActivityIngestedV1,
    ActivityKind,
    CrmReferences,
    Direction,
    Outcome,
    Participant,
    ParticipantRole,
)
from libs.common.contracts.attribution_fast import LONG_FRACTION, TENANT_ID, AwareTime, IdText
from libs.common.contracts.envelope import decode_body, encode_body
from libs.common.contracts.fields import EARLIEST, INT8_MAX, LATEST


class IngestedParticipant(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``Participant`` as msgspec decodes it (same fields, defaults and limits)."""

    email: Annotated[str, Meta(max_length=320)] | None = None
    phone: Annotated[str, Meta(max_length=40)] | None = None
    name: Annotated[str, Meta(max_length=256)] | None = None
    role: ParticipantRole


class IngestedCrm(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``CrmReferences`` as msgspec decodes it (same fields, defaults and limits)."""

    deal_id: IdText | None = None
    account_id: IdText | None = None
    contact_ids: tuple[IdText, ...] = ()
    owner_rep_id: IdText | None = None


#: The references of an activity that carries none, shared (the struct is frozen).
NO_CRM = IngestedCrm()


def _no_crm() -> IngestedCrm:
    return NO_CRM


class Ingested(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``ActivityIngestedV1`` as msgspec decodes it (same fields in the same order, defaults, limits)."""

    source: Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9._-]*\Z")]
    external_id: IdText
    kind: ActivityKind
    direction: Direction
    outcome: Outcome
    occurred_at: AwareTime
    duration_seconds: Annotated[int, Meta(ge=0, le=86_400)] = 0
    participants: Annotated[tuple[IngestedParticipant, ...], Meta(min_length=1, max_length=500)]
    thread_id: Annotated[str, Meta(max_length=512)] | None = None
    ical_uid: Annotated[str, Meta(max_length=1024)] | None = None
    subject: Annotated[str, Meta(max_length=2_000)] | None = None
    crm: IngestedCrm = msgspec.field(default_factory=_no_crm)
    revision: Annotated[int, Meta(ge=0, le=INT8_MAX)] = 0
    tenant_id: Annotated[str, Meta(pattern=TENANT_ID)]
    activity_id: uuid.UUID
    ingested_at: AwareTime
    automated: bool = False
    adapter_version: Annotated[str, Meta(max_length=64)] = "canonical/1"


#: What attribution handles: the fast path's struct, or the contract's model (the contract's
#: fallback, the rows it reads back, the evaluation and the tests build models).
IngestedEvent = Ingested | ActivityIngestedV1

#: One participant of either form.
AnyParticipant = IngestedParticipant | Participant

_DECODER = msgspec.json.Decoder(Ingested)
_ENCODER = msgspec.json.Encoder()


def _normal_email(email: str) -> bool:
    """Whether ``Email`` keeps ``email`` as it is (``fields._lower_email`` neither changes nor refuses it)."""
    local, at, domain = email.partition("@")
    return bool(at and local) and "@" not in domain and "." in domain and email == email.strip().lower()


def _plain_participants(participants: tuple[IngestedParticipant, ...]) -> str | None:
    """The participants' text run together, or None when one is not as the contract leaves it."""
    text = ""
    for p in participants:
        email = p.email
        if email is not None:
            if not _normal_email(email):
                return None
            text += email
        elif p.phone is None:
            return None
        if p.phone is not None:
            text += p.phone
        if p.name is not None:
            text += p.name
    return text


def _plain(event: Ingested) -> bool:
    """Whether the decoded struct is within what the contract accepts, unchanged by its validators."""
    if not (EARLIEST <= event.occurred_at < LATEST and EARLIEST <= event.ingested_at < LATEST):
        return False
    if event.outcome not in OUTCOMES_BY_KIND[event.kind]:
        return False
    text = _plain_participants(event.participants)
    if text is None:
        return False
    crm = event.crm
    text += event.external_id + event.adapter_version + "".join(crm.contact_ids)
    for one in (
        event.thread_id,
        event.ical_uid,
        event.subject,
        crm.deal_id,
        crm.account_id,
        crm.owner_rep_id,
    ):
        if one is not None:
            text += one
    return text.isprintable()


def decode_fast(body: bytes) -> Ingested | None:
    """The body as a struct when the fast path takes it as-is, else ``None``."""
    if b"\\" in body or LONG_FRACTION.search(body) is not None:
        return None
    try:
        event = _DECODER.decode(body)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None
    return event if _plain(event) else None


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
    """``event`` with other CRM references, in its own form."""
    if isinstance(event, Ingested):
        crm = IngestedCrm(
            deal_id=deal_id, account_id=account_id, contact_ids=contact_ids, owner_rep_id=owner_rep_id
        )
        return msgspec.structs.replace(event, crm=crm)
    references = CrmReferences(
        deal_id=deal_id, account_id=account_id, contact_ids=contact_ids, owner_rep_id=owner_rep_id
    )
    return event.model_copy(update={"crm": references})


def as_contract(event: IngestedEvent) -> ActivityIngestedV1:
    """``event`` as the contract's model (validated again from its JSON when it is a struct)."""
    if isinstance(event, Ingested):
        return ActivityIngestedV1.model_validate_json(_ENCODER.encode(event))
    return event
