"""Extensions of a shared line (#14): a call to a line and an extension matches the one contact
or rep listing both; the bare line, or an extension nobody lists, follows the line's rule."""

from __future__ import annotations

from dataclasses import replace

import pytest

from libs.common.contracts.activities import (
    ActivityIngestedV1,
    ActivityKind,
    Direction,
    Participant,
    ParticipantRole,
    phone_key,
)
from libs.common.contracts.attribution import AttributionStatus
from services.attribution.domain.matching import attribute_activity
from services.attribution.domain.reference import AttributionSnapshot, Rep, TenantAttributionPolicy
from services.attribution.domain.reference_index import (
    ReferenceIndex,
    attribute_from_index,
    resolve_references,
    snapshot_for,
)

from .builders import AMY_DIRECT, ANA, BO, CONTACTS, CY, REPS, SWITCHBOARD, activity, snapshot

Role = ParticipantRole
MAIN_LINE = "+14155550900"


def _world() -> AttributionSnapshot:
    """Al lists the switchboard with x12, Ann with x34; Bo and Cy list the seller's main line
    with x102 and x101 (Ana keeps her own line)."""
    extensions = {"con-al": (phone_key(SWITCHBOARD, "12"),), "con-ann": (phone_key(SWITCHBOARD, "34"),)}
    contacts = tuple(replace(c, phone_extensions=extensions.get(c.id, ())) for c in CONTACTS)
    desks = {BO: "102", CY: "101"}
    reps = tuple(
        replace(r, phones=(MAIN_LINE,), phone_extensions=(phone_key(MAIN_LINE, desks[r.id]),))
        if r.id in desks
        else r
        for r in REPS
    )
    return replace(snapshot(), contacts=contacts, reps=reps)


def _call(caller: Participant, callee: Participant) -> ActivityIngestedV1:
    call = activity(ActivityKind.CALL, Direction.OUTBOUND, (("+10000000000", Role.CALLER),))
    return call.model_copy(update={"participants": (caller, callee)})


def _on(phone: str, role: Role, extension: str | None = None) -> Participant:
    return Participant(phone=phone, extension=extension, role=role)


@pytest.mark.parametrize(
    ("extension", "expected"),
    [
        ("12", (AttributionStatus.ATTRIBUTED, "deal-acme-exp", (), ("con-al",))),
        # The bare line, an extension nobody lists: the switchboard's close call, as before.
        (None, (AttributionStatus.AMBIGUOUS, "deal-acme-new", ("deal-acme-exp",), ())),
        ("99", (AttributionStatus.AMBIGUOUS, "deal-acme-new", ("deal-acme-exp",), ())),
    ],
)
def test_a_call_to_a_contacts_extension_of_a_shared_line_is_that_contacts(
    extension: str | None, expected: tuple[object, ...]
) -> None:
    # Cy, on his own line (not the main line), owns neither of acme's deals.
    world = replace(_world(), reps=REPS)
    call = _call(_on("+14155550003", Role.CALLER), _on(SWITCHBOARD, Role.CALLEE, extension))
    decision = attribute_activity(call, world, TenantAttributionPolicy())
    assert (
        decision.status,
        decision.deal_id,
        decision.secondary_deal_ids,
        decision.external_contact_ids,
    ) == expected


@pytest.mark.parametrize(
    ("extension", "rep"),
    [("101", CY), ("102", BO), (None, ANA), ("109", ANA)],
)
def test_a_call_from_a_reps_extension_of_the_main_line_is_that_reps(extension: str | None, rep: str) -> None:
    """Amy's deal is Ana's: the main line alone names no rep, and the deal's owner is credited."""
    call = _call(_on(MAIN_LINE, Role.CALLER, extension), _on(AMY_DIRECT, Role.CALLEE))
    decision = attribute_activity(call, _world(), TenantAttributionPolicy())
    assert (decision.status, decision.deal_id, decision.rep_id) == (
        AttributionStatus.ATTRIBUTED,
        "deal-acme-new",
        rep,
    )


def test_an_inactive_rep_listing_the_extension_does_not_take_the_call_from_an_active_one() -> None:
    """Two reps listing one line and extension (a desk handed over, the CRM not updated): the
    active one."""
    world = _world()
    reps = tuple(
        r
        if r.id != ANA
        else Rep(ANA, "Ana", r.emails, (MAIN_LINE,), False, None, (phone_key(MAIN_LINE, "101"),))
        for r in world.reps
    )
    call = _call(_on(MAIN_LINE, Role.CALLER, "101"), _on(AMY_DIRECT, Role.CALLEE))
    decision = attribute_activity(call, replace(world, reps=reps), TenantAttributionPolicy())
    assert decision.rep_id == CY


def _index(world: AttributionSnapshot) -> ReferenceIndex:
    index = ReferenceIndex(internal_domains=world.internal_domains)
    for rep in world.reps:
        index.put_rep(rep)
    for membership in world.memberships:
        index.add_membership(membership)
    for account in world.accounts:
        index.put_account(account)
    for contact in world.contacts:
        index.put_contact(contact)
    for deal in world.deals:
        index.put_deal(deal)
    return index


def test_the_consumers_index_decides_extensions_as_the_snapshot() -> None:
    """``attribute_from_index`` (the consumer's path) and the snapshot agree, explanation included,
    on every call to and from a shared line, with and without an extension."""
    world = _world()
    index = _index(world)
    policy = TenantAttributionPolicy()
    calls = {
        "to-al-x12": _call(_on("+14155550003", Role.CALLER), _on(SWITCHBOARD, Role.CALLEE, "12")),
        "to-switchboard": _call(_on("+14155550003", Role.CALLER), _on(SWITCHBOARD, Role.CALLEE)),
        "to-x99": _call(_on("+14155550003", Role.CALLER), _on(SWITCHBOARD, Role.CALLEE, "99")),
        "cy-x101": _call(_on(MAIN_LINE, Role.CALLER, "101"), _on(AMY_DIRECT, Role.CALLEE)),
        "main-line": _call(_on(MAIN_LINE, Role.CALLER), _on(AMY_DIRECT, Role.CALLEE)),
    }
    found = {}
    for name, call in calls.items():
        resolved = resolve_references(call, index)
        from_snapshot = attribute_activity(resolved, snapshot_for(resolved, index), policy)
        decided = attribute_from_index(call, index, policy)
        assert decided == from_snapshot
        assert decided.explanation == from_snapshot.explanation
        found[name] = (decided.status, decided.deal_id, decided.rep_id, decided.external_contact_ids)
    # +14155550003 is nobody's here (Cy lists the main line): the deal's owner is credited.
    assert found == {
        "to-al-x12": (AttributionStatus.ATTRIBUTED, "deal-acme-exp", BO, ("con-al",)),
        "to-switchboard": (AttributionStatus.AMBIGUOUS, "deal-acme-new", ANA, ()),
        "to-x99": (AttributionStatus.AMBIGUOUS, "deal-acme-new", ANA, ()),
        "cy-x101": (AttributionStatus.ATTRIBUTED, "deal-acme-new", CY, ("con-amy",)),
        "main-line": (AttributionStatus.ATTRIBUTED, "deal-acme-new", ANA, ("con-amy",)),
    }
