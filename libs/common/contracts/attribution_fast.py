"""``activity-attributed`` in msgspec: the metrics consumer's decoder (msgspec first, the contract
always) and attribution's encoder.

``ActivityAttributedV1`` (pydantic, ``attribution.py``) stays the one definition of the event and
of its JSON Schema. Decoding it was about a fifth of the metrics consumer's CPU (7 us a body, one
body per counted activity), so :func:`decode_attributed` first tries msgspec on structs that
mirror the contract field for field, at its limits or stricter (3-4 us a body), and hands every
body that path does not take as-is to the contract's own decoder (:func:`decode_body`). That one
either accepts it, returning the pydantic model, or raises the :class:`InvalidMessage` (and
dead-letter reason) the consumer always raised. So the bodies accepted and refused, and every
reason, are the contract's; ``tests/unit/common/test_attribution_fast.py`` checks that the
values of both paths are equal on every sample either accepts.

Attribution builds the versions it publishes as :class:`Attributed` and encodes them with
:func:`encode_attributed`: the same bytes as ``encode_body`` of the equal ``ActivityAttributedV1``
(msgspec writes fields in declaration order, times and floats as pydantic-core does;
``tests/unit/attribution/test_attributed_encoding.py`` compares them on thousands of versions),
for a fifth of the CPU. The struct is not validated when built: attribution fills it from a
validated activity and validated reference data.

The fast path is stricter than the contract wherever matching it exactly would cost more:

* identifiers pass when ``str.isprintable`` holds (no C0/C1 control, no noncharacter, no
  surrogate, so ``LINE_PATTERN`` holds too); anything else (a no-break space) goes to pydantic;
* times are RFC 3339 with an offset, as msgspec reads them; pydantic also takes a comma or no
  seconds. msgspec rounds a fraction past microseconds where pydantic truncates, so a body with
  seven fraction digits in a row, or any escape (``\\u002e`` is a dot), takes the contract's path;
* a number msgspec cannot hold (``1e400``, ``NaN`` in the explanation), a UUID in braces or as a
  URN, a string for a float: the contract's path.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Annotated, Any

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

from libs.common.contracts.activities import ActivityKind, Direction, Outcome
from libs.common.contracts.attribution import ActivityAttributedV1, AttributionStatus
from libs.common.contracts.envelope import decode_body, encode_body
from libs.common.contracts.fields import EARLIEST, INT4_MAX, INT8_MAX, LATEST, TENANT_ID_PATTERN

# ``$`` in Python's re also matches before a final newline, which the contract's (Rust) regex refuses.
TENANT_ID = TENANT_ID_PATTERN.removesuffix("$") + r"\Z"
#: ``ExternalId``'s lengths; its characters are checked after decoding (``_plain``).
IdText = Annotated[str, Meta(min_length=1, max_length=256)]
AwareTime = Annotated[datetime, Meta(tz=True)]


class AttributedFacts(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``ActivityFacts`` as msgspec decodes it (same fields, defaults and limits)."""

    kind: ActivityKind
    direction: Direction
    outcome: Outcome
    occurred_at: AwareTime
    duration_seconds: Annotated[int, Meta(ge=0, le=86_400)] = 0
    external_participants: Annotated[int, Meta(ge=0, le=INT4_MAX)] = 0
    external_contact_ids: tuple[IdText, ...] = ()
    automated: bool = False
    revision: Annotated[int, Meta(ge=0, le=INT8_MAX)] = 0


class Attributed(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``ActivityAttributedV1`` as msgspec decodes it (same fields, defaults and limits)."""

    tenant_id: Annotated[str, Meta(pattern=TENANT_ID)]
    activity_id: uuid.UUID
    version: Annotated[int, Meta(ge=1, le=INT4_MAX)]
    status: AttributionStatus
    rep_id: IdText | None = None
    team_id: IdText | None = None
    account_id: IdText | None = None
    deal_id: IdText | None = None
    secondary_deal_ids: tuple[IdText, ...] = ()
    confidence: Annotated[float, Meta(ge=0.0, le=1.0)]
    facts: AttributedFacts
    decided_at: AwareTime
    explanation: dict[str, Any] = {}
    #: ``UNSET`` where the contract holds ``None``: omitted from the JSON alike.
    duplicate_of: uuid.UUID | UnsetType = UNSET


#: What the metrics consumer handles: the fast path's struct, or the contract's model.
AttributedEvent = Attributed | ActivityAttributedV1


def is_duplicate(event: AttributedEvent) -> bool:
    """Whether the version reports a call another source reported first (never counted)."""
    return isinstance(event.duplicate_of, uuid.UUID)


_DECODER = msgspec.json.Decoder(Attributed)
_ENCODER = msgspec.json.Encoder()
#: A fraction of a second longer than microseconds (msgspec rounds it, pydantic truncates).
LONG_FRACTION = re.compile(rb"\.[0-9]{7}")


def _plain(event: Attributed) -> bool:
    """Whether the decoded struct is within what the contract accepts: printable identifiers,
    times between ``EARLIEST`` and ``LATEST``."""
    facts = event.facts
    if not (EARLIEST <= facts.occurred_at < LATEST and EARLIEST <= event.decided_at < LATEST):
        return False
    # Every id in one ``join`` (a missing one as ""): one string built, not one per id.
    return "".join(
        (
            *event.secondary_deal_ids,
            *facts.external_contact_ids,
            event.rep_id or "",
            event.team_id or "",
            event.account_id or "",
            event.deal_id or "",
        )
    ).isprintable()


def decode_fast(body: bytes) -> Attributed | None:
    """The body as a struct when the fast path takes it as-is, else ``None``."""
    if b"\\" in body or LONG_FRACTION.search(body) is not None:
        return None
    try:
        event = _DECODER.decode(body)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None
    return event if _plain(event) else None


def encode_attributed(event: Attributed) -> bytes:
    """The body of a version: the bytes ``encode_body`` gives for the equal ``ActivityAttributedV1``."""
    return _ENCODER.encode(event)


def encode_event(event: AttributedEvent) -> bytes:
    """The body of either decoder's value (:func:`decode_attributed`), as the topic carried it:
    the struct's through :func:`encode_attributed`, the contract's model's through ``encode_body``
    (both give the same JSON for equal values)."""
    return encode_attributed(event) if isinstance(event, Attributed) else encode_body(event)


def decode_encoded(body: bytes) -> Attributed:
    """A version this service encoded (``encode_attributed``) and kept to publish later, as it was."""
    return _DECODER.decode(body)


def decode_attributed(body: bytes | None) -> AttributedEvent:
    """Decode an ``activity-attributed`` body; anything invalid raises the contract's ``InvalidMessage``."""
    if body is not None:
        event = decode_fast(body)
        if event is not None:
            return event
    return decode_body(ActivityAttributedV1, body)
