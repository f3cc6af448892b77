"""Table-driven tests of the attribution cascade against the fixed world in ``builders``."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import pytest

from libs.common.contracts.activities import (
    ActivityIngestedV1,
    ActivityKind,
    CrmReferences,
    Direction,
    ParticipantRole,
)
from libs.common.contracts.attribution import AttributionStatus
from services.attribution.domain.matching import (
    RULE_VERSION,
    SIGNAL_WEIGHTS,
    attribute_activity,
)
from services.attribution.domain.reference import (
    Account,
    AmbiguityPolicy,
    Contact,
    CurrentAttribution,
    Deal,
    ManualOverride,
    TenantAttributionPolicy,
)

from .builders import (
    AMY_DIRECT,
    ANA,
    ANA_PHONE,
    BO,
    CY,
    SWITCHBOARD,
    WHEN,
    activity,
    email_in,
    email_out,
    snapshot,
)

Role = ParticipantRole
DEFAULT = TenantAttributionPolicy()
UNIQUE_ONLY = TenantAttributionPolicy(ambiguity_policy=AmbiguityPolicy.UNIQUE_ONLY)


@dataclass(frozen=True)
class Case:
    name: str
    activity: ActivityIngestedV1
    status: AttributionStatus
    deal: str | None
    account: str | None
    rep: str | None
    team: str | None
    confidence: tuple[float, float]
    rule_path: str
    secondary: tuple[str, ...] = ()
    policy: TenantAttributionPolicy = DEFAULT


CASES = [
    Case(
        "outbound email to a contact with a role: that deal, the sender, the sender's team",
        email_out("ana@seller.example", "amy@acme.com"),
        AttributionStatus.ATTRIBUTED, "deal-acme-new", "acc-acme", ANA, "team-east", (0.9, 0.95), "contact_role",
    ),
    Case(
        "inbound email: the internal recipient is the rep, the sender's role picks the deal",
        email_in("al@acme.com", "bo@seller.example", "ana@seller.example"),
        AttributionStatus.ATTRIBUTED, "deal-acme-exp", "acc-acme", BO, "team-east", (0.9, 0.95), "contact_role",
    ),
    Case(
        "the team is the membership valid on the activity day (ana moved on 2026-06-01)",
        email_out("ana@seller.example", "amy@acme.com", at=datetime(2026, 7, 1, tzinfo=UTC)),
        AttributionStatus.ATTRIBUTED, "deal-acme-new", "acc-acme", ANA, "team-west", (0.9, 0.95), "contact_role",
    ),
    Case(
        "unknown person at the account domain: the deal owned by the participating rep leads",
        email_out("ana@seller.example", "zed@acme.com"),
        AttributionStatus.ATTRIBUTED, "deal-acme-new", "acc-acme", ANA, "team-east", (0.6, 0.7), "owner_participates",
    ),
    Case(
        "domain only, nothing separates two open deals: ambiguous, newest primary, other secondary",
        email_out("cy@seller.example", "zed@acme.com"),
        AttributionStatus.AMBIGUOUS, "deal-acme-new", "acc-acme", CY, "team-west", (0.2, 0.25), "recency",
        secondary=("deal-acme-exp",),
    ),
    Case(
        "unique_only: an ambiguous activity gets no deal",
        email_out("cy@seller.example", "zed@acme.com"),
        AttributionStatus.AMBIGUOUS, None, "acc-acme", CY, "team-west", (0.2, 0.25), "recency",
        policy=UNIQUE_ONLY,
    ),
    Case(
        "a subdomain finds the account through its parent domain",
        email_out("ana@seller.example", "zed@eu.acme.com"),
        AttributionStatus.ATTRIBUTED, "deal-acme-new", "acc-acme", ANA, "team-east", (0.6, 0.7), "owner_participates",
    ),
    Case(
        "a lone weak candidate (no role, owner absent) is the account's only open deal: attributed, moderately sure",
        email_out("ana@seller.example", "zed@globex.com"),
        AttributionStatus.ATTRIBUTED, "deal-globex", "acc-globex", ANA, "team-east", (0.4, 0.41), "account_match",
    ),
    Case(
        "below min_confidence a deal is not asserted",
        email_out("ana@seller.example", "zed@acme.com"),
        AttributionStatus.ACCOUNT_ONLY, None, "acc-acme", ANA, "team-east", (0.6, 0.7), "domain",
        policy=TenantAttributionPolicy(min_confidence=0.9),
    ),
    Case(
        "outbound call: the caller's dialer number is the rep, the callee's direct line the contact",
        activity(ActivityKind.CALL, Direction.OUTBOUND, ((ANA_PHONE, Role.CALLER), (AMY_DIRECT, Role.CALLEE))),
        AttributionStatus.ATTRIBUTED, "deal-acme-new", "acc-acme", ANA, "team-east", (0.85, 0.9), "contact_role",
    ),
    Case(
        "inbound call: the callee is the rep",
        activity(ActivityKind.CALL, Direction.INBOUND, ((AMY_DIRECT, Role.CALLER), (ANA_PHONE, Role.CALLEE))),
        AttributionStatus.ATTRIBUTED, "deal-acme-new", "acc-acme", ANA, "team-east", (0.85, 0.9), "contact_role",
    ),
    Case(
        "a switchboard reaches the account, not one of the contacts listing it: the caller's deal leads",
        activity(ActivityKind.CALL, Direction.OUTBOUND, ((ANA_PHONE, Role.CALLER), (SWITCHBOARD, Role.CALLEE))),
        AttributionStatus.ATTRIBUTED, "deal-acme-new", "acc-acme", ANA, "team-east", (0.5, 0.51),
        "owner_participates",
    ),
    Case(
        "a switchboard call by a rep owning neither deal: no contact guessed, a close call",
        activity(ActivityKind.CALL, Direction.OUTBOUND, (("+14155550003", Role.CALLER), (SWITCHBOARD, Role.CALLEE))),
        AttributionStatus.AMBIGUOUS, "deal-acme-new", "acc-acme", CY, "team-west", (0.18, 0.19), "recency",
        secondary=("deal-acme-exp",),
    ),
    Case(
        "a contact's personal address is an exact identity: their deal",
        email_out("cy@seller.example", "gus.private@gmail.com"),
        AttributionStatus.ATTRIBUTED, "deal-globex", "acc-globex", CY, "team-west", (0.9, 0.95), "contact_role",
    ),
    Case(
        "an unknown free-mail sender never matches the account that typed in gmail.com",
        email_in("stranger@gmail.com", "bo@seller.example"),
        AttributionStatus.UNMATCHED, None, None, BO, "team-east", (0.0, 0.0), "none",
    ),
    Case(
        "nobody external: internal",
        activity(
            ActivityKind.MEETING,
            Direction.INTERNAL,
            (("ana@seller.example", Role.ORGANIZER), ("bo@seller.example", Role.ATTENDEE)),
        ),
        AttributionStatus.INTERNAL, None, None, ANA, "team-east", (1.0, 1.0), "internal",
    ),
    Case(
        "a rep's phone-only participant is internal too",
        activity(
            ActivityKind.CALL, Direction.INTERNAL, (("bo@seller.example", Role.CALLER), (ANA_PHONE, Role.CALLEE))
        ),
        AttributionStatus.INTERNAL, None, None, BO, "team-east", (1.0, 1.0), "internal",
    ),
    Case(
        "a CRM meeting lists its owner; the contact it is filed with was there: not internal",
        activity(
            ActivityKind.MEETING, Direction.INTERNAL, (("ana@seller.example", Role.ORGANIZER),),
            crm=CrmReferences(contact_ids=("con-amy",)),
        ),
        AttributionStatus.ATTRIBUTED, "deal-acme-new", "acc-acme", ANA, "team-east", (1.0, 1.0), "contact_role",
    ),
    Case(
        "an email lists every address: among colleagues it is internal, wherever the CRM files it",
        email_out("ana@seller.example", "bo@seller.example", crm=CrmReferences(contact_ids=("con-amy",))),
        AttributionStatus.INTERNAL, None, None, ANA, "team-east", (1.0, 1.0), "internal",
    ),
    Case(
        "a call listing the rep alone (the caller withheld their number): unmatched, the rep's",
        activity(ActivityKind.CALL, Direction.INBOUND, ((ANA_PHONE, Role.CALLEE),)),
        AttributionStatus.UNMATCHED, None, None, ANA, "team-east", (0.0, 0.0), "none",
    ),
    Case(
        "a call the source says is internal listing the rep alone (a colleague's short extension): internal",
        activity(ActivityKind.CALL, Direction.INTERNAL, ((ANA_PHONE, Role.CALLER),)),
        AttributionStatus.INTERNAL, None, None, ANA, "team-east", (1.0, 1.0), "internal",
    ),
    Case(
        "automated senders are excluded, whatever they match",
        email_in("amy@acme.com", "ana@seller.example", automated=True),
        AttributionStatus.EXCLUDED, None, None, ANA, "team-east", (1.0, 1.0), "excluded",
    ),
    Case(
        "an explicit crm.deal_id wins over the contact's own deal",
        email_out("ana@seller.example", "amy@acme.com", crm=CrmReferences(deal_id="deal-acme-exp")),
        AttributionStatus.ATTRIBUTED, "deal-acme-exp", "acc-acme", ANA, "team-east", (1.0, 1.0), "explicit_deal",
    ),
    Case(
        "no deal open at the time (grace included): account only",
        email_out("ana@seller.example", "zed@acme.com", at=datetime(2025, 1, 10, tzinfo=UTC)),
        AttributionStatus.ACCOUNT_ONLY, None, "acc-acme", ANA, "team-east", (0.8, 0.8), "domain",
    ),
    Case(
        "nine days after a deal closed is inside the 14-day grace window",
        email_out("ana@seller.example", "amy@acme.com", at=datetime(2025, 12, 10, tzinfo=UTC)),
        AttributionStatus.ATTRIBUTED, "deal-acme-old", "acc-acme", ANA, "team-east", (0.9, 0.95), "contact_role",
    ),
    Case(
        "nineteen days after is not, and the next deal is not open yet",
        email_out("ana@seller.example", "amy@acme.com", at=datetime(2025, 12, 20, tzinfo=UTC)),
        AttributionStatus.ACCOUNT_ONLY, None, "acc-acme", ANA, "team-east", (0.95, 0.95), "contact",
    ),
    Case(
        "nine days before a deal is created is inside the grace window",
        email_out("ana@seller.example", "amy@acme.com", at=datetime(2026, 2, 20, tzinfo=UTC)),
        AttributionStatus.ATTRIBUTED, "deal-acme-new", "acc-acme", ANA, "team-east", (0.9, 0.95), "contact_role",
    ),
    Case(
        "external organizer, two rep attendees: the owner of the chosen deal is the rep",
        activity(
            ActivityKind.MEETING,
            Direction.INBOUND,
            (
                ("amy@acme.com", Role.ORGANIZER),
                ("cy@seller.example", Role.ATTENDEE),
                ("ana@seller.example", Role.ATTENDEE),
            ),
        ),
        AttributionStatus.ATTRIBUTED, "deal-acme-new", "acc-acme", ANA, "team-east", (0.9, 0.95), "contact_role",
    ),
    Case(
        "no rep and no crm owner: the chosen deal's owner is credited",
        email_in("amy@acme.com", "sales@seller.example"),
        AttributionStatus.ATTRIBUTED, "deal-acme-new", "acc-acme", ANA, "team-east", (0.9, 0.95), "contact_role",
    ),
    Case(
        "no rep, no crm owner and no deal: nobody is credited",
        email_in("zed@globex.com", "sales@seller.example", at=datetime(2025, 1, 10, tzinfo=UTC)),
        AttributionStatus.ACCOUNT_ONLY, None, "acc-globex", None, None, (0.8, 0.8), "domain",
    ),
    Case(
        "a shared inbox is no rep: crm.owner_rep_id is used",
        email_in("amy@acme.com", "sales@seller.example", crm=CrmReferences(owner_rep_id=BO)),
        AttributionStatus.ATTRIBUTED, "deal-acme-new", "acc-acme", BO, "team-east", (0.9, 0.95), "contact_role",
    ),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_cascade(case: Case) -> None:
    decision = attribute_activity(case.activity, snapshot(), case.policy)

    assert (decision.status, decision.deal_id, decision.account_id) == (case.status, case.deal, case.account)
    assert (decision.rep_id, decision.team_id, decision.rule_path) == (case.rep, case.team, case.rule_path)
    assert decision.secondary_deal_ids == case.secondary
    low, high = case.confidence
    assert low <= decision.confidence <= high
    assert decision.overridden is False


def test_the_switchboard_call_records_both_deals_and_their_scores() -> None:
    call = activity(
        ActivityKind.CALL, Direction.OUTBOUND, ((ANA_PHONE, Role.CALLER), (SWITCHBOARD, Role.CALLEE))
    )

    decision = attribute_activity(call, snapshot(), DEFAULT)

    # Neither contact listing the number holds a role for the call: the deals differ by owner only.
    assert [(r.deal_id, r.score) for r in decision.runners_up] == [("deal-acme-exp", 0.1884)]
    assert decision.explanation["deal_score"] == 0.3952
    assert [s["value"] for s in decision.explanation["signals"] if s["signal"] == "contact_role"] == [0.0]
    assert decision.external_contact_ids == ()  # neither contact is certain


def test_a_reply_without_a_contact_inherits_its_thread() -> None:
    thread = CurrentAttribution(
        version=2, status=AttributionStatus.ATTRIBUTED, rep_id=BO, account_id="acc-acme",
        deal_id="deal-acme-exp", confidence=0.9,
    )  # fmt: skip
    reply = email_in("zed@acme.com", "ana@seller.example", thread_id="t-1")

    decision = attribute_activity(reply, snapshot(thread=thread), DEFAULT)

    assert (decision.status, decision.deal_id, decision.rule_path) == (
        AttributionStatus.ATTRIBUTED,
        "deal-acme-exp",
        "thread",
    )
    assert decision.rep_id == ANA
    assert decision.confidence == 0.81


def test_a_reply_from_a_contact_follows_the_contact_not_the_thread() -> None:
    thread = CurrentAttribution(
        version=1,
        status=AttributionStatus.ATTRIBUTED,
        account_id="acc-acme",
        deal_id="deal-acme-exp",
        confidence=0.9,
    )
    reply = email_in("amy@acme.com", "ana@seller.example", thread_id="t-1")

    decision = attribute_activity(reply, snapshot(thread=thread), DEFAULT)

    assert (decision.deal_id, decision.rule_path) == ("deal-acme-new", "contact_role")


def test_a_thread_is_not_inherited_into_a_deal_closed_beyond_grace() -> None:
    thread = CurrentAttribution(
        version=1,
        status=AttributionStatus.ATTRIBUTED,
        account_id="acc-acme",
        deal_id="deal-acme-old",
        confidence=0.9,
    )
    reply = email_in("zed@acme.com", "cy@seller.example", thread_id="t-1")

    decision = attribute_activity(reply, snapshot(thread=thread), DEFAULT)

    assert (decision.status, decision.deal_id, decision.rule_path) == (
        AttributionStatus.AMBIGUOUS,
        "deal-acme-new",
        "recency",
    )


def test_without_a_thread_id_the_thread_attribution_is_ignored() -> None:
    thread = CurrentAttribution(
        version=1,
        status=AttributionStatus.ATTRIBUTED,
        account_id="acc-acme",
        deal_id="deal-acme-exp",
        confidence=0.9,
    )
    decision = attribute_activity(
        email_in("zed@acme.com", "cy@seller.example"), snapshot(thread=thread), DEFAULT
    )

    assert decision.rule_path == "recency"


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        (
            ManualOverride(deal_id="deal-globex", set_by="manager@seller.example", reason="wrong account"),
            (AttributionStatus.ATTRIBUTED, "deal-globex", "acc-globex", ANA, "team-east"),
        ),
        (
            ManualOverride(rep_id=CY, account_id="acc-acme"),
            (AttributionStatus.ACCOUNT_ONLY, None, "acc-acme", CY, "team-west"),
        ),
        (
            ManualOverride(status=AttributionStatus.EXCLUDED),
            (AttributionStatus.EXCLUDED, None, None, ANA, "team-east"),
        ),
    ],
)
def test_a_manual_override_is_the_decision(
    override: ManualOverride,
    expected: tuple[AttributionStatus, str | None, str | None, str | None, str | None],
) -> None:
    for act in (
        email_out("ana@seller.example", "amy@acme.com"),
        email_out("ana@seller.example", "amy@acme.com", automated=True),
        email_out("ana@seller.example", "amy@acme.com", crm=CrmReferences(deal_id="deal-acme-exp")),
    ):
        decision = attribute_activity(act, snapshot(override=override), DEFAULT)

        assert (
            decision.status,
            decision.deal_id,
            decision.account_id,
            decision.rep_id,
            decision.team_id,
        ) == expected
        assert (decision.overridden, decision.confidence, decision.rule_path) == (True, 1.0, "override")


@pytest.mark.parametrize(
    ("at", "rep_id", "team_id"),
    [
        (WHEN, CY, "team-west"),
        # Ana moved from East to West on 1 June 2026: in May her work was East's.
        (datetime(2026, 5, 20, 15, tzinfo=UTC), ANA, "team-east"),
        (datetime(2026, 7, 1, 15, tzinfo=UTC), ANA, "team-west"),
    ],
)
def test_a_rep_only_override_keeps_the_deal_and_account_and_takes_the_reps_team_then(
    at: datetime, rep_id: str, team_id: str
) -> None:
    act = email_out("bo@seller.example", "amy@acme.com", at=at)
    ruled = attribute_activity(act, snapshot(), DEFAULT)

    override = ManualOverride(rep_id=rep_id, reason="not Bo's email")
    decision = attribute_activity(act, snapshot(override=override), DEFAULT)

    assert (ruled.account_id, ruled.rep_id) == ("acc-acme", BO)
    assert (decision.status, decision.deal_id, decision.account_id, decision.secondary_deal_ids) == (
        ruled.status,
        ruled.deal_id,
        ruled.account_id,
        ruled.secondary_deal_ids,
    )
    assert (decision.rep_id, decision.team_id, decision.overridden) == (rep_id, team_id, True)
    assert decision.explanation["rep"]["via"] == "override"


@pytest.mark.parametrize(
    ("time_zone", "at", "team_id", "day"),
    [
        # Ana moved from team-east to team-west on 2026-06-01, in the tenant's calendar.
        ("UTC", datetime(2026, 6, 1, 3, tzinfo=UTC), "team-west", "2026-06-01"),
        # 20:00 on 31 May in Los Angeles: still the old team (the UTC date is already June).
        ("America/Los_Angeles", datetime(2026, 6, 1, 3, tzinfo=UTC), "team-east", "2026-05-31"),
        ("America/Los_Angeles", datetime(2026, 6, 1, 7, tzinfo=UTC), "team-west", "2026-06-01"),
        # 00:30 on 1 June in Berlin: already the new team (the UTC date is still May).
        ("Europe/Berlin", datetime(2026, 5, 31, 22, 30, tzinfo=UTC), "team-west", "2026-06-01"),
        ("Europe/Berlin", datetime(2026, 5, 31, 21, 30, tzinfo=UTC), "team-east", "2026-05-31"),
    ],
)
def test_the_team_is_read_on_the_activitys_day_in_the_tenants_time_zone(
    time_zone: str, at: datetime, team_id: str, day: str
) -> None:
    act = email_out("ana@seller.example", "amy@acme.com", at=at)
    decision = attribute_activity(act, snapshot(), TenantAttributionPolicy(time_zone=time_zone))
    assert (decision.rep_id, decision.team_id, decision.explanation["rep"]["team_on"]) == (ANA, team_id, day)
    # Only the team depends on the time zone.
    utc = attribute_activity(act, snapshot(), DEFAULT)
    assert (decision.status, decision.deal_id, decision.confidence) == (
        utc.status,
        utc.deal_id,
        utc.confidence,
    )


def test_the_explanation_is_json_and_names_rule_path_signals_and_runners_up() -> None:
    decision = attribute_activity(email_out("cy@seller.example", "zed@acme.com"), snapshot(), DEFAULT)

    explanation = json.loads(json.dumps(decision.explanation))

    assert explanation["rule_version"] == RULE_VERSION
    assert explanation["rule_path"] == "recency"
    assert [s["signal"] for s in explanation["signals"]] == [s.value for s in SIGNAL_WEIGHTS]
    # ``thread`` only stands in for a missing contact role and ``subject`` only separates deals
    # on top of the rest: the others weigh 1 together.
    extra = ("thread", "subject")
    assert sum(s["weight"] for s in explanation["signals"] if s["signal"] not in extra) == pytest.approx(1.0)
    assert sum(s["contribution"] for s in explanation["signals"]) == pytest.approx(
        explanation["deal_score"], abs=1e-3
    )
    assert explanation["runners_up"] == [{"deal_id": "deal-acme-exp", "score": decision.runners_up[0].score}]
    assert explanation["accounts"] == [{"account_id": "acc-acme", "evidence": ["domain"], "strength": 0.8}]
    assert explanation["rep"]["rep_id"] == CY


def test_facts_for_metrics_count_external_participants_and_certain_contacts() -> None:
    act = email_out("ana@seller.example", "amy@acme.com", "zed@acme.com", "bo@seller.example")

    decision = attribute_activity(act, snapshot(), DEFAULT)

    assert (decision.external_participants, decision.external_contact_ids) == (2, ("con-amy",))


def test_a_contact_filed_under_an_account_is_not_also_the_other_account_of_its_domain() -> None:
    """globex.com is also a subsidiary's domain: Gil, filed under the subsidiary, writes for it;
    an address the CRM does not know at globex.com could be either's."""
    world = snapshot()
    world = replace(
        world,
        accounts=(*world.accounts, Account("acc-globex-eu", ("globex.com",))),
        contacts=(*world.contacts, Contact("con-gil", ("gil@globex.com",), (), "acc-globex-eu")),
        deals=(
            *world.deals,
            Deal(
                "deal-globex-eu",
                "acc-globex-eu",
                CY,
                "discovery",
                False,
                False,
                datetime(2026, 1, 10, tzinfo=UTC),
            ),
        ),
    )

    gil = attribute_activity(email_out("cy@seller.example", "gil@globex.com"), world, DEFAULT)
    unknown = attribute_activity(email_out("cy@seller.example", "zed@globex.com"), world, DEFAULT)

    assert (gil.status, gil.deal_id, gil.account_id, gil.secondary_deal_ids) == (
        AttributionStatus.ATTRIBUTED,
        "deal-globex-eu",
        "acc-globex-eu",
        (),
    )
    assert (unknown.status, {unknown.deal_id, *unknown.secondary_deal_ids}) == (
        AttributionStatus.AMBIGUOUS,
        {"deal-globex", "deal-globex-eu"},
    )


def test_an_address_at_a_subsidiarys_own_subdomain_is_the_subsidiarys_not_also_its_parents() -> None:
    """acme.com's subsidiary holds eu.acme.com (rules 2026.12.5): mail from an address the CRM does
    not know there, or deeper, is the subsidiary's, even when the parent's deal is the rep's own;
    an address at another subdomain of acme.com, held by no account, still finds the parent."""
    world = snapshot()
    world = replace(
        world,
        accounts=(*world.accounts, Account("acc-acme-eu", ("eu.acme.com",))),
        deals=(
            *world.deals,
            Deal(
                "deal-acme-eu",
                "acc-acme-eu",
                CY,
                "discovery",
                False,
                False,
                datetime(2026, 1, 10, tzinfo=UTC),
            ),
        ),
    )

    decided = {
        address: attribute_activity(email_out("ana@seller.example", address), world, DEFAULT)
        for address in ("zed@eu.acme.com", "zed@mail.eu.acme.com", "zed@us.acme.com")
    }

    assert {a: (d.status, d.deal_id, d.account_id) for a, d in decided.items()} == {
        "zed@eu.acme.com": (AttributionStatus.ATTRIBUTED, "deal-acme-eu", "acc-acme-eu"),
        "zed@mail.eu.acme.com": (AttributionStatus.ATTRIBUTED, "deal-acme-eu", "acc-acme-eu"),
        "zed@us.acme.com": (AttributionStatus.ATTRIBUTED, "deal-acme-new", "acc-acme"),
    }
    assert decided["zed@eu.acme.com"].explanation["rule_version"] == "attribution-rules/2026.12.45"


def test_an_activity_filed_under_an_account_is_not_another_accounts_by_its_addresses_domain() -> None:
    """Logged against globex, copied to someone at acme.com the CRM does not know: globex's deal."""
    logged = email_out("cy@seller.example", "zed@acme.com", crm=CrmReferences(account_id="acc-globex"))
    unfiled = email_out("cy@seller.example", "zed@acme.com", "gia@globex.com")

    decision = attribute_activity(logged, snapshot(), DEFAULT)

    assert (decision.status, decision.deal_id, decision.account_id, decision.runners_up) == (
        AttributionStatus.ATTRIBUTED,
        "deal-globex",
        "acc-globex",
        (),
    )
    # Without the CRM's word, acme's deals are candidates through the domain.
    assert {r.deal_id for r in attribute_activity(unfiled, snapshot(), DEFAULT).runners_up} == {
        "deal-acme-new",
        "deal-acme-exp",
    }
