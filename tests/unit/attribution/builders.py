"""A small, fixed CRM world and an activity builder shared by the attribution unit tests.

acme (acme.com, acme.io) has two open deals with different owners and contacts, plus a deal
lost before; its switchboard is shared by two contacts. globex has one open deal and a contact
who writes from gmail. A sole trader has "gmail.com" typed in as its domain.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from libs.common.contracts.activities import (
    ActivityIngestedV1,
    ActivityKind,
    CrmReferences,
    Direction,
    Outcome,
    Participant,
    ParticipantRole,
    activity_id_for,
)
from services.attribution.domain.decision import AttributionDecision
from services.attribution.domain.matching import attribute_activity
from services.attribution.domain.reference import (
    Account,
    AttributionSnapshot,
    Contact,
    CurrentAttribution,
    Deal,
    ManualOverride,
    Rep,
    TeamMembership,
    TenantAttributionPolicy,
)
from services.attribution.domain.reference_index import (
    ReferenceIndex,
    attribute_from_index,
    resolve_references,
    snapshot_for,
)

ANA, BO, CY = "rep-ana", "rep-bo", "rep-cy"
SWITCHBOARD = "+12125550100"
AMY_DIRECT = "+12125550101"
ANA_PHONE = "+14155550001"
WHEN = datetime(2026, 4, 15, 10, 0, tzinfo=UTC)

REPS = (
    Rep(ANA, "Ana", ("ana@seller.example",), (ANA_PHONE,)),
    Rep(BO, "Bo", ("bo@seller.example",), ("+14155550002",)),
    Rep(CY, "Cy", ("cy@seller.example",), ("+14155550003",)),
)
MEMBERSHIPS = (
    TeamMembership(ANA, "team-east", date(2025, 1, 1), date(2026, 6, 1)),
    TeamMembership(ANA, "team-west", date(2026, 6, 1), None),
    TeamMembership(BO, "team-east", date(2025, 1, 1), None),
    TeamMembership(CY, "team-west", date(2025, 1, 1), None),
)
ACCOUNTS = (
    Account("acc-acme", ("acme.com", "acme.io")),
    Account("acc-globex", ("globex.com",)),
    Account("acc-sole", ("gmail.com",)),
)
CONTACTS = (
    Contact("con-amy", ("amy@acme.com",), (AMY_DIRECT,), "acc-acme"),
    Contact("con-al", ("al@acme.com",), (SWITCHBOARD, "+12125550102"), "acc-acme"),
    Contact("con-ann", ("ann@acme.com",), (SWITCHBOARD,), "acc-acme"),
    Contact("con-gus", ("gus.private@gmail.com",), (), "acc-globex"),
    Contact("con-gia", ("gia@globex.com",), (), "acc-globex"),
)
DEALS = (
    Deal(
        "deal-acme-new", "acc-acme", ANA, "discovery", False, False,
        datetime(2026, 3, 1, tzinfo=UTC), None, (("con-amy", "champion"),),
    ),
    Deal(
        "deal-acme-exp", "acc-acme", BO, "proposal", False, False,
        datetime(2026, 2, 1, tzinfo=UTC), None, (("con-al", "decision_maker"),),
    ),
    Deal(
        "deal-acme-old", "acc-acme", ANA, "closed_lost", True, False,
        datetime(2025, 6, 1, tzinfo=UTC), datetime(2025, 12, 1, tzinfo=UTC), (("con-amy", "champion"),),
    ),
    Deal(
        "deal-globex", "acc-globex", CY, "negotiation", False, False,
        datetime(2026, 1, 10, tzinfo=UTC), None, (("con-gus", "economic_buyer"), ("con-gia", "champion")),
    ),
    Deal(
        "deal-sole", "acc-sole", BO, "discovery", False, False,
        datetime(2026, 1, 1, tzinfo=UTC), None, (),
    ),
)  # fmt: skip


def snapshot(
    thread: CurrentAttribution | None = None, override: ManualOverride | None = None
) -> AttributionSnapshot:
    return AttributionSnapshot(
        internal_domains=frozenset({"seller.example"}),
        reps=REPS,
        memberships=MEMBERSHIPS,
        accounts=ACCOUNTS,
        contacts=CONTACTS,
        deals=DEALS,
        thread_attribution=thread,
        override=override,
    )


def person(address: str, role: ParticipantRole) -> Participant:
    """A participant by email, or by phone when ``address`` starts with ``+``."""
    if address.startswith("+"):
        return Participant(phone=address, role=role)
    return Participant(email=address, role=role)


_OUTCOMES = {
    ActivityKind.EMAIL: Outcome.SENT,
    ActivityKind.CALL: Outcome.CONNECTED,
    ActivityKind.MEETING: Outcome.HELD,
}


def activity(
    kind: ActivityKind,
    direction: Direction,
    participants: tuple[tuple[str, ParticipantRole], ...],
    *,
    at: datetime = WHEN,
    thread_id: str | None = None,
    automated: bool = False,
    crm: CrmReferences | None = None,
    external_id: str = "act-1",
) -> ActivityIngestedV1:
    outcome = (
        Outcome.RECEIVED if (kind, direction) == (ActivityKind.EMAIL, Direction.INBOUND) else _OUTCOMES[kind]
    )
    return ActivityIngestedV1(
        tenant_id="acme-sales",
        activity_id=activity_id_for("acme-sales", "test", external_id),
        ingested_at=at,
        source="test",
        external_id=external_id,
        kind=kind,
        direction=direction,
        outcome=outcome,
        occurred_at=at,
        participants=tuple(person(address, role) for address, role in participants),
        thread_id=thread_id,
        automated=automated,
        crm=crm or CrmReferences(),
    )


def email_out(sender: str, *recipients: str, **options: object) -> ActivityIngestedV1:
    parts = ((sender, ParticipantRole.FROM), *((r, ParticipantRole.TO) for r in recipients))
    return _with(ActivityKind.EMAIL, Direction.OUTBOUND, parts, options)


def email_in(sender: str, *recipients: str, **options: object) -> ActivityIngestedV1:
    parts = ((sender, ParticipantRole.FROM), *((r, ParticipantRole.TO) for r in recipients))
    return _with(ActivityKind.EMAIL, Direction.INBOUND, parts, options)


def _with(
    kind: ActivityKind,
    direction: Direction,
    parts: tuple[tuple[str, ParticipantRole], ...],
    options: dict[str, object],
) -> ActivityIngestedV1:
    at = options.get("at", WHEN)
    thread_id = options.get("thread_id")
    crm = options.get("crm")
    assert isinstance(at, datetime)
    assert thread_id is None or isinstance(thread_id, str)
    assert crm is None or isinstance(crm, CrmReferences)
    return activity(
        kind,
        direction,
        parts,
        at=at,
        thread_id=thread_id,
        automated=options.get("automated") is True,
        crm=crm,
    )


def decided_both_ways(
    activity: ActivityIngestedV1, index: ReferenceIndex, policy: TenantAttributionPolicy
) -> AttributionDecision:
    """``activity`` decided from ``index``; the snapshot resolved from the index decides the same."""
    decided = attribute_from_index(activity, index, policy)
    resolved = resolve_references(activity, index)
    assert attribute_activity(resolved, snapshot_for(resolved, index), policy) == decided
    return decided
