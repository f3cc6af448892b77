"""The outcome of attributing one activity, and how it becomes a new version (or not)."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec

from libs.common.contracts.attribution import AttributionStatus
from services.attribution.domain.reference import CurrentAttribution, TenantAttributionPolicy

#: Statuses worth another look when CRM data changes: a contact or deal may still arrive.
#: Read as a module constant: an enum member read from its class costs about 1,300 instructions
#: in Python 3.11 (``EnumType.__getattr__``'s slot); see ``domain.matching``.
_ATTRIBUTED = AttributionStatus.ATTRIBUTED
_INTERNAL = AttributionStatus.INTERNAL
PARKED_STATUSES: frozenset[AttributionStatus] = frozenset(
    {AttributionStatus.UNMATCHED, AttributionStatus.ACCOUNT_ONLY, AttributionStatus.AMBIGUOUS}
)
_STATUS_OF: dict[str, AttributionStatus] = {status._value_: status for status in AttributionStatus}


def status_of(value: str) -> AttributionStatus:
    """``AttributionStatus(value)`` (a stored status, or a member as it is) by one dictionary
    lookup: calling the enum is ``EnumType.__call__`` then ``Enum.__new__``, two Python-level
    calls. A value that is no status is refused by the enum, as before."""
    try:
        return _STATUS_OF[value]
    except KeyError:
        return AttributionStatus(value)


# The two records below are frozen msgspec structs, not frozen dataclasses: one decision is built
# per activity, and a frozen dataclass's ``__init__`` sets each of its 14 fields through
# ``object.__setattr__`` (about 5 us a decision with keywords, where the struct's C constructor
# takes 0.2). A change is ``msgspec.structs.replace``; equality, order of fields, defaults and
# immutability are the dataclasses'.
class RunnerUp(msgspec.Struct, frozen=True):
    deal_id: str
    score: float


class AttributionDecision(msgspec.Struct, frozen=True):
    """What the rules decided for one activity; ``explanation`` is JSON-able."""

    status: AttributionStatus
    rep_id: str | None
    team_id: str | None
    account_id: str | None
    deal_id: str | None
    confidence: float
    #: The step of the cascade that decided: ``override``, ``excluded``, ``internal``,
    #: ``explicit_deal``, ``contact``, ``domain``, ``thread`` or ``none``.
    rule_path: str
    secondary_deal_ids: tuple[str, ...] = ()
    runners_up: tuple[RunnerUp, ...] = ()
    external_participants: int = 0
    external_contact_ids: tuple[str, ...] = ()
    overridden: bool = False
    explanation: dict[str, Any] = msgspec.field(default_factory=dict)
    #: A second report of a call another source reported first (``domain.duplicates``): that
    #: report's activity id. Part of the content: marking or releasing it is a new version.
    duplicate_of: uuid.UUID | None = None


#: What makes two attributions "the same" for versioning; the explanation is not part of it,
#: so a new rule version that reaches the same result does not republish.
AttributionContent = tuple[
    AttributionStatus,
    str | None,
    str | None,
    str | None,
    str | None,
    tuple[str, ...],
    float,
    bool,
    uuid.UUID | None,
]


def _content(item: AttributionDecision | CurrentAttribution) -> AttributionContent:
    return (
        item.status,
        item.rep_id,
        item.team_id,
        item.account_id,
        item.deal_id,
        tuple(item.secondary_deal_ids),
        round(item.confidence, 4),
        item.overridden,
        item.duplicate_of,
    )


def next_version(current: CurrentAttribution | None, decision: AttributionDecision) -> int | None:
    """The version number to publish ``decision`` under, or ``None`` when nothing changes.

    Reprocessing the same input reaches the same content and publishes nothing, which makes
    redeliveries and re-matches idempotent. A manual override in force is only ever replaced by
    another override: automatic re-matches never undo a person's correction.
    """
    if current is None:
        return 1
    if current.overridden and not decision.overridden:
        return None
    if _content(current) == _content(decision):
        return None
    return current.version + 1


def should_park(decision: AttributionDecision, policy: TenantAttributionPolicy) -> bool:
    """Whether to re-match this activity when CRM data changes, for ``policy.park_days``.

    Undecided activities (no deal, or no single deal) wait for the contact or deal that
    would settle them, as does a deal asserted with less than ``policy.min_confidence``.
    Overrides, internal and excluded activities are final, but for an internal meeting someone
    dialled into from a number no contact lists (``unidentified_callers``): the contact the CRM
    later gives that number makes it hers.
    """
    if decision.overridden or policy.park_days == 0:
        return False
    if decision.status in PARKED_STATUSES:
        return True
    if decision.status is _INTERNAL and decision.explanation.get("unidentified_callers"):
        return True
    return decision.status is _ATTRIBUTED and decision.confidence < policy.min_confidence
