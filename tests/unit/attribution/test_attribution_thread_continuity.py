"""A reply whose contact is on several deals continues the deal its thread was attributed to.

In the fixed world of ``builders``, Pat (procurement at acme) holds a role on both of acme's open
deals; Cy owns neither, so a reply from Pat to Cy is a close call between them on every signal.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from libs.common.contracts.attribution import AttributionStatus
from services.attribution.domain.matching import attribute_activity
from services.attribution.domain.reference import (
    AttributionSnapshot,
    Contact,
    CurrentAttribution,
    ManualOverride,
    TenantAttributionPolicy,
)

from .builders import CY, email_in, snapshot

DEFAULT = TenantAttributionPolicy()
PAT = Contact("con-pat", ("pat@acme.com",), (), "acc-acme")


def _buying_group(thread: CurrentAttribution | None = None, **changes: object) -> AttributionSnapshot:
    """The fixed world with Pat on both open acme deals."""
    base = snapshot(thread=thread)
    deals = tuple(
        replace(d, contacts=(*d.contacts, ("con-pat", "procurement")))
        if d.id in ("deal-acme-new", "deal-acme-exp")
        else d
        for d in base.deals
    )
    return replace(base, contacts=(*base.contacts, PAT), deals=deals, **changes)  # type: ignore[arg-type]


def _thread(
    status: AttributionStatus = AttributionStatus.ATTRIBUTED, deal: str = "deal-acme-exp"
) -> CurrentAttribution:
    return CurrentAttribution(
        version=1, status=status, account_id="acc-acme", deal_id=deal, confidence=0.9,
        secondary_deal_ids=("deal-acme-new",) if status is AttributionStatus.AMBIGUOUS else (),
    )  # fmt: skip


REPLY = email_in("pat@acme.com", "cy@seller.example", thread_id="t-1")


def test_without_a_thread_the_buying_group_reply_is_a_close_call() -> None:
    decision = attribute_activity(REPLY, _buying_group(), DEFAULT)

    assert (decision.status, decision.deal_id, decision.secondary_deal_ids) == (
        AttributionStatus.AMBIGUOUS,
        "deal-acme-new",
        ("deal-acme-exp",),
    )


def test_a_tied_reply_continues_its_threads_deal() -> None:
    decision = attribute_activity(REPLY, _buying_group(_thread()), DEFAULT)

    assert (decision.status, decision.deal_id, decision.rule_path) == (
        AttributionStatus.ATTRIBUTED,
        "deal-acme-exp",
        "thread",
    )
    assert decision.secondary_deal_ids == ()
    assert decision.confidence == 0.81  # never surer than the thread it continues (0.9 x 0.9)
    assert decision.explanation["thread"] == {"deal_id": "deal-acme-exp", "account_id": "acc-acme"}


def test_an_ambiguous_thread_decides_nothing() -> None:
    decision = attribute_activity(REPLY, _buying_group(_thread(AttributionStatus.AMBIGUOUS)), DEFAULT)

    assert (decision.status, decision.deal_id) == (AttributionStatus.AMBIGUOUS, "deal-acme-new")


def test_the_threads_deal_closed_beyond_grace_is_not_continued() -> None:
    base = _buying_group(_thread())
    closed = tuple(
        replace(d, is_closed=True, stage="closed_lost", closed_at=datetime(2026, 3, 1, tzinfo=UTC))
        if d.id == "deal-acme-exp"
        else d
        for d in base.deals
    )

    decision = attribute_activity(REPLY, replace(base, deals=closed), DEFAULT)

    # The thread's deal closed six weeks before the reply: the contact's open deal is the one.
    assert (decision.status, decision.deal_id, decision.rule_path) == (
        AttributionStatus.ATTRIBUTED,
        "deal-acme-new",
        "contact_role",
    )


def test_a_contacts_clear_lead_is_never_overridden_by_the_thread() -> None:
    # Amy holds a role on deal-acme-new only: it leads by the margin whatever the thread says.
    reply = email_in("amy@acme.com", "cy@seller.example", thread_id="t-1")

    decision = attribute_activity(reply, _buying_group(_thread()), DEFAULT)

    assert (decision.status, decision.deal_id, decision.rule_path) == (
        AttributionStatus.ATTRIBUTED,
        "deal-acme-new",
        "contact_role",
    )


def test_a_message_without_a_thread_id_ignores_the_thread() -> None:
    decision = attribute_activity(
        email_in("pat@acme.com", "cy@seller.example"), _buying_group(_thread()), DEFAULT
    )

    assert decision.status is AttributionStatus.AMBIGUOUS


def test_an_override_of_the_reply_survives_its_thread() -> None:
    override = ManualOverride(deal_id="deal-acme-new", set_by="manager@seller.example")

    decision = attribute_activity(REPLY, _buying_group(_thread(), override=override), DEFAULT)

    assert (decision.deal_id, decision.overridden, decision.rule_path, decision.rep_id) == (
        "deal-acme-new",
        True,
        "override",
        CY,
    )
