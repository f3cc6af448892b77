"""How one activity's snapshot is sliced from a reference index (no database): thread choice,
merge resolution, the deals and reps a snapshot must carry, the dry-run table."""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

from libs.common.contracts.activities import CrmReferences
from services.attribution.domain.reference import Account, Contact, Deal, Rep, TeamMembership
from services.attribution.domain.reference_index import (
    ReferenceIndex,
    ThreadMember,
    resolve_references,
    snapshot_for,
    thread_attribution_for,
)
from services.attribution.reattribution import ReattributionReport
from spm.commands.reattribute import render_report

from .builders import WHEN, email_in, email_out


def _member(n: int, at: datetime, deal_id: str | None, status: str = "attributed") -> ThreadMember:
    return ThreadMember(uuid.UUID(int=n), at, 1, status, "rep-ana", "acc-acme", deal_id, (), 0.9)


def _deal(deal_id: str, owner: str, closed_at: datetime | None = None) -> Deal:
    return Deal(
        id=deal_id,
        account_id="acc-acme",
        owner_rep_id=owner,
        stage="won" if closed_at else "proposal",
        is_closed=closed_at is not None,
        is_won=closed_at is not None,
        created_at=datetime(2024, 1, 1, tzinfo=UTC),
        closed_at=closed_at,
    )


def test_the_thread_attribution_is_the_newest_strictly_earlier_message() -> None:
    refs = ReferenceIndex()
    reply = email_in("stranger@gmail.com", "ana@seller.example", thread_id="th")
    refs.thread_members["th"] = [
        _member(1, WHEN - timedelta(days=3), "deal-a"),
        _member(2, WHEN - timedelta(days=1), "deal-b"),
        _member(3, WHEN + timedelta(hours=1), "deal-c"),
        ThreadMember(reply.activity_id, WHEN, 4, "attributed", None, None, "deal-self", (), 1.0),
    ]
    chosen = thread_attribution_for(reply, refs)
    assert chosen is not None
    assert chosen.deal_id == "deal-b"
    refs.thread_members["th"] = [_member(3, WHEN + timedelta(hours=1), "deal-c")]
    assert thread_attribution_for(reply, refs) is None
    assert thread_attribution_for(email_in("stranger@gmail.com", "ana@seller.example"), refs) is None


def test_explicit_references_follow_merges_and_drop_deleted_entities() -> None:
    refs = ReferenceIndex()
    refs.survivors = {
        ("deal", "deal-old"): "deal-new",
        ("contact", "con-gone"): None,
        ("rep", "rep-x"): "rep-y",
    }
    crm = CrmReferences(
        deal_id="deal-old", account_id="acc-acme", contact_ids=("con-gone", "con-amy"), owner_rep_id="rep-x"
    )
    resolved = resolve_references(email_out("ana@seller.example", "amy@acme.com", crm=crm), refs)
    assert resolved.crm == CrmReferences(
        deal_id="deal-new", account_id="acc-acme", contact_ids=("con-amy",), owner_rep_id="rep-y"
    )
    untouched = email_out("ana@seller.example", "amy@acme.com", crm=CrmReferences(deal_id="deal-unknown"))
    assert resolve_references(untouched, refs) is untouched


def test_the_owner_is_the_rep_the_tenant_maps_the_sources_ids_of_it_to_now() -> None:
    # A dialer's call keeps its extensions, best first; ingest found rep-ana when it arrived.
    refs = ReferenceIndex(identity_reps={"7702": "rep-bo", "7703": "rep-x"})
    refs.rep_aliases = {"rep-bo": "rep-b"}
    refs.survivors = {("rep", "rep-x"): "rep-y"}
    call = CrmReferences(owner_rep_id="rep-ana", owner_identities=("7701", "7702", "7703"))
    resolved = resolve_references(email_out("ana@seller.example", "amy@acme.com", crm=call), refs)
    # The first the tenant maps now (7701 no longer is), as its person.
    assert resolved.crm == CrmReferences(owner_rep_id="rep-b", owner_identities=("7701", "7702", "7703"))
    merged = CrmReferences(owner_identities=("7703",))
    resolved = resolve_references(email_out("ana@seller.example", "amy@acme.com", crm=merged), refs)
    assert resolved.crm == CrmReferences(owner_rep_id="rep-y", owner_identities=("7703",))
    # None of them mapped any more: nobody, whoever ingest found.
    unmapped = CrmReferences(owner_rep_id="rep-ana", owner_identities=("7701",))
    resolved = resolve_references(email_out("ana@seller.example", "amy@acme.com", crm=unmapped), refs)
    assert resolved.crm == CrmReferences(owner_identities=("7701",))
    # A source naming its rep by id alone keeps it.
    assert refs.owner_named(CrmReferences(owner_rep_id="rep-ana")) == "rep-ana"


def test_a_softphone_address_kept_with_an_edge_host_is_mapped_by_its_sip_domains_key() -> None:
    """Rules 2026.12.36: a Twilio call stored while ingest kept the edge location's host
    (``ana@acme.sip.us1.twilio.com``) is credited by the key the docs name
    (``ana@acme.sip.twilio.com``); a key as written still wins, and another host is not read."""
    refs = ReferenceIndex(
        identity_reps={"ana@acme.sip.twilio.com": "rep-ana", "cy@acme.sip.ie1.twilio.com": "rep-cy"}
    )
    assert refs.owner_named(CrmReferences(owner_identities=("ana@acme.sip.us1.twilio.com",))) == "rep-ana"
    assert refs.owner_named(CrmReferences(owner_identities=("cy@acme.sip.ie1.twilio.com",))) == "rep-cy"
    assert refs.owner_named(CrmReferences(owner_identities=("ana@acme.sip.us1.example.com",))) is None
    assert refs.owner_named(CrmReferences(owner_identities=("ana@globex.sip.us1.twilio.com",))) is None


def test_the_snapshot_carries_the_thread_deal_and_the_owners_of_its_deals_with_their_teams() -> None:
    refs = ReferenceIndex(internal_domains=frozenset({"seller.example"}))
    refs.put_deal(_deal("deal-closed", "rep-cy", closed_at=datetime(2024, 3, 1, tzinfo=UTC)))
    refs.put_rep(Rep("rep-cy", "Cy", ("cy@seller.example",)))
    refs.add_membership(TeamMembership("rep-cy", "team-west", date(2025, 1, 1)))
    reply = email_in("stranger@gmail.com", "someone@seller.example", thread_id="th")
    refs.thread_members["th"] = [_member(1, WHEN - timedelta(days=1), "deal-closed")]
    snap = snapshot_for(reply, refs)
    assert [d.id for d in snap.deals] == ["deal-closed"]
    assert [r.id for r in snap.reps] == ["rep-cy"]
    assert [(m.rep_id, m.team_id) for m in snap.memberships] == [("rep-cy", "team-west")]
    assert snap.thread_attribution is not None
    assert (snap.thread_attribution.deal_id, snap.thread_attribution.version) == ("deal-closed", 1)


def test_the_dry_run_report_is_a_table_of_status_and_deal_changes() -> None:
    report = ReattributionReport(
        "acme",
        dry_run=True,
        examined=10,
        changed=3,
        deal_changed=2,
        transitions=Counter({("attributed", "account_only"): 2, (None, "unmatched"): 1}),
        deal_moves=Counter({("deal-1", None): 2}),
    )
    assert render_report(report).splitlines() == [
        "tenant acme: 10 activities examined, 3 attributions would change, 2 of them in their deal",
        "old status     new status       count",
        "attributed     account_only         2",
        "(none)         unmatched            1",
        "old deal                 new deal                   count",
        "deal-1                   (none)                         2",
    ]


def test_putting_an_entity_again_replaces_its_index_entries() -> None:
    refs = ReferenceIndex(internal_domains=frozenset({"seller.example"}))
    refs.put_account(Account("acc-a", ("acme.com",)))
    refs.put_contact(Contact("con-1", ("Amy@acme.com",), ("+12125550100",), "acc-a"))
    refs.put_deal(_deal("deal-1", "rep-cy"))
    refs.put_contact(Contact("con-1", ("amy@globex.com",), (), "acc-a"))
    refs.put_account(Account("acc-a", ("acme.io",)))
    refs.put_deal(replace(_deal("deal-1", "rep-cy"), account_id="acc-b", contacts=(("con-1", "champion"),)))

    assert refs.contact_ids_by_identity["amy@acme.com"] == set()
    assert refs.contact_ids_by_identity["+12125550100"] == set()
    assert refs.contact_ids_by_identity["amy@globex.com"] == {"con-1"}
    assert (refs.account_ids_by_domain["acme.com"], refs.account_ids_by_domain["acme.io"]) == (
        set(),
        {"acc-a"},
    )
    assert (refs.deal_ids_by_account["acc-acme"], refs.deal_ids_by_account["acc-b"]) == (set(), {"deal-1"})
    assert refs.deal_ids_by_contact["con-1"] == {"deal-1"}
