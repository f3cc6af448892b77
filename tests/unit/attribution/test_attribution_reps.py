"""One rep per person: ids from several sources resolve to one canonical rep, whatever the order."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest

from libs.common.contracts.activities import ActivityKind, Direction, ParticipantRole
from libs.common.contracts.attribution import AttributionStatus
from libs.common.personal_domains import linking_keys
from services.attribution.domain.matching import attribute_activity
from services.attribution.domain.reference import Contact, Deal, Rep, TeamMembership, TenantAttributionPolicy
from services.attribution.domain.reference_index import ReferenceIndex, attribute_from_index, snapshot_for
from services.attribution.domain.reps import (
    RepRecord,
    mapped_addresses,
    name_aliases,
    rep_alias_mapping,
    resolve_rep_aliases,
)

from .builders import WHEN, activity, email_out

ALICE = (
    RepRecord("7701", "hubspot", ("alice@seller.example",)),
    RepRecord("0055j000004Vb8nAAC", "salesforce", ("Alice@Seller.example",)),
    RepRecord("rep-a", "api", ("alice@seller.example", "a@seller.example")),
    RepRecord("u-88", "aircall", ("a@seller.example",)),
)


def test_reps_sharing_a_verified_email_are_one_person_with_the_canonical_feed_first() -> None:
    expected = {"7701": "rep-a", "0055j000004Vb8nAAC": "rep-a", "u-88": "rep-a"}
    for order in itertools.permutations(ALICE):
        assert resolve_rep_aliases(order) == expected


def test_without_the_canonical_feed_a_crm_id_is_the_person_and_the_dialer_follows() -> None:
    assert resolve_rep_aliases([ALICE[0], ALICE[1]]) == {"7701": "0055j000004Vb8nAAC"}
    assert resolve_rep_aliases([ALICE[0], RepRecord("u-1", "aircall", ("alice@seller.example",))]) == {
        "u-1": "7701"
    }


def test_the_tenant_maps_ids_whose_emails_differ_and_strangers_stay_apart() -> None:
    bob = RepRecord("rep-b", "api", ("bob@seller.example",))
    bobby = RepRecord("7702", "hubspot", ("bobby.personal@gmail.com",))
    assert resolve_rep_aliases([bob, bobby]) == {}
    assert resolve_rep_aliases([bob, bobby], {"7702": "rep-b"}) == {"7702": "rep-b"}
    assert resolve_rep_aliases([*ALICE, bob]) == {
        "7701": "rep-a",
        "0055j000004Vb8nAAC": "rep-a",
        "u-88": "rep-a",
    }


def test_an_address_the_tenant_maps_to_a_rep_makes_a_rep_listing_it_that_rep() -> None:
    """``{"ana@seller.io": "rep-a"}``: the dialer's user signed in as ``Ana@Seller.io`` is Ana
    (before, only mail from the address was hers, the user stayed a rep of its own)."""
    ana = RepRecord("rep-a", "api", ("ana@seller.example",))
    dialer_user = RepRecord("u-9", "aircall", ("Ana@Seller.io",))
    stranger = RepRecord("u-10", "aircall", ("bo@seller.io",))
    assert resolve_rep_aliases([ana, dialer_user, stranger]) == {}
    assert resolve_rep_aliases([ana, dialer_user, stranger], {"ANA@seller.io": "rep-a"}) == {"u-9": "rep-a"}
    # A mapped address no rep lists links nobody.
    assert resolve_rep_aliases([ana, stranger], {"ana@seller.io": "rep-a"}) == {}


def test_a_plus_addressed_login_is_its_mailboxs_person() -> None:
    """Dan's HubSpot login ``Dan+HubSpot@`` delivers to ``dan@``: one person (rules 2026.12.35;
    before, two reps and his HubSpot calls on no team)."""
    dan = RepRecord("rep-dan", "crm", ("dan@acme.example",))
    owner = RepRecord("7704", "hubspot", ("Dan+HubSpot@acme.example",))
    assert resolve_rep_aliases([owner, dan]) == {"7704": "rep-dan"}


def test_a_mailbox_two_reps_of_one_source_list_links_nobody() -> None:
    """A team inbox each SDR lists beside her own, or a leaver's mailbox on his successor's
    record, is no person's: the SDRs stay two reps, and so does a shared HubSpot login listing the inbox
    (rules 2026.12.35; before, the second SDR became the first's alias, his work hers)."""
    sdr1 = RepRecord("rep-sdr1", "crm", ("sdr1@acme.example", "sdr@acme.example"))
    sdr2 = RepRecord("rep-sdr2", "crm", ("sdr2@acme.example", "SDR@acme.example"))
    team_login = RepRecord("7720", "hubspot", ("sdr@acme.example",))
    sdr1_owner = RepRecord("7721", "hubspot", ("sdr1@acme.example",))
    assert resolve_rep_aliases([sdr1, sdr2, team_login, sdr1_owner]) == {"7721": "rep-sdr1"}
    hal = RepRecord("rep-hal", "crm", ("hal@acme.example",))
    ian = RepRecord("rep-ian", "crm", ("ian@acme.example", "hal@acme.example"))
    assert resolve_rep_aliases([hal, ian]) == {}
    # Mapped, such an address still links nobody of that source.
    assert resolve_rep_aliases([sdr1, sdr2], {"sdr@acme.example": "rep-sdr1"}) == {}
    # Two seats of one dialer with the same login (and nothing else) are one person.
    seats = [
        RepRecord("u-9", "aircall", ("Ana@Seller.io",)),
        RepRecord("u-11", "aircall", ("ana@seller.io",)),
    ]
    assert resolve_rep_aliases(seats) == {"u-9": "u-11"}


def test_the_rep_the_tenant_maps_to_is_the_persons_id_whatever_its_source() -> None:
    """``{"7701": "rep-zed"}`` with both from the canonical sync: rep-zed credits (before, the
    smaller id 7701 did, and the mapping moved nothing)."""
    ana = RepRecord("7701", "crm", ("ana@acme.example",))
    zed = RepRecord("rep-zed", "crm", ("zed@acme.example",))
    assert resolve_rep_aliases([ana, zed], {"7701": "rep-zed"}) == {"7701": "rep-zed"}
    # Among one source's reps only: a mapping to a dialer id leaves the canonical rep the person.
    assert resolve_rep_aliases([*ALICE], {"rep-a": "u-88"})["u-88"] == "rep-a"


def test_a_mapping_to_a_crm_id_leaves_the_canonical_rep_the_persons_id() -> None:
    """Ana is rep-a and HubSpot owner 7701 (one address); the admin maps her dialer user u-9 to
    7701: rep-a stays her id, whatever else the mapping holds (rules 2026.12.38; before,
    ``{'rep-a': '7701', 'u-9': '7701'}``, and an unrelated ``ana-emea@`` entry flipped it back)."""
    ana = RepRecord("rep-a", "api", ("ana@acme.example",))
    owner = RepRecord("7701", "hubspot", ("ana@acme.example",))
    dialer = RepRecord("u-9", "aircall", ("ana.calls@acme.example",))
    expected = {"7701": "rep-a", "u-9": "rep-a"}
    assert resolve_rep_aliases([ana, owner, dialer], {"u-9": "7701"}) == expected
    assert (
        resolve_rep_aliases([ana, owner, dialer], {"u-9": "7701", "ana-emea@acme.example": "rep-a"})
        == expected
    )


def test_differently_tagged_addresses_and_a_shared_mailbox_are_not_one_person() -> None:
    """Two people sharing ``sales@`` through ``+tags`` stay two reps; a "Sales Team" login
    ``sales+hs@`` is not a manager listing ``sales@`` beside her own address, nor is a mapped
    ``team+ana@`` the rep listing ``team@`` (rules 2026.12.38; before, each pair was one rep)."""
    anna = RepRecord("rep-anna", "crm", ("sales+anna@acme.example",))
    bob = RepRecord("rep-bob", "crm", ("sales+bob@acme.example",))
    assert resolve_rep_aliases([anna, bob]) == {}
    # Nor through a login listing the mailbox itself (a "Sales Team" owner).
    shared_login = RepRecord("7720", "hubspot", ("sales@acme.example",))
    assert resolve_rep_aliases([anna, bob, shared_login]) == {}
    assert resolve_rep_aliases([anna, RepRecord("7731", "hubspot", ("sales+bob@acme.example",))]) == {}
    manager = RepRecord("rep-mia", "crm", ("mia@acme.example", "sales@acme.example"))
    team_login = RepRecord("7740", "hubspot", ("sales+hs@acme.example",))
    assert resolve_rep_aliases([manager, team_login]) == {}
    team = RepRecord("rep-team", "crm", ("team@acme.example",))
    dialer = RepRecord("u-5", "aircall", ("team+ana@acme.example",))
    ana = RepRecord("rep-ana", "crm", ("ana@acme.example",))
    assert resolve_rep_aliases([team, ana], {"team+ana@acme.example": "rep-ana"}) == {}
    # The login tagged from her own address is still hers; the exact address of another source too.
    assert resolve_rep_aliases([team, dialer]) == {"u-5": "rep-team"}
    assert resolve_rep_aliases([anna, RepRecord("7732", "hubspot", ("Sales+Anna@acme.example",))]) == {
        "7732": "rep-anna"
    }


def test_a_deleted_leavers_address_on_his_successors_record_links_nobody() -> None:
    """Hal (deleted by the canonical sync) held ``hal@``; Ian lists it beside his own; Hal's
    HubSpot owner 7708 lists it: not Ian (rules 2026.12.38; before, ``{'7708': 'rep-ian'}``)."""
    hal = RepRecord("rep-hal", "crm", ("hal@acme.example",), left=True)
    ian = RepRecord("rep-ian", "crm", ("ian@acme.example", "hal@acme.example"))
    owner = RepRecord("7708", "hubspot", ("hal@acme.example",))
    assert resolve_rep_aliases([hal, ian, owner]) == {}
    # A deleted rep is nobody's alias and no rep's person.
    assert resolve_rep_aliases([hal, owner]) == {}


def test_addresses_compare_in_one_unicode_form_and_gmail_mailbox() -> None:
    nfc = RepRecord("rep-jose", "crm", ("jos\u00e9@acme.example",))
    nfd = RepRecord("7750", "hubspot", ("jose\u0301@acme.example",))
    assert resolve_rep_aliases([nfc, nfd]) == {"7750": "rep-jose"}
    jo = RepRecord("rep-jo", "crm", ("jo.doe@gmail.com",))
    assert resolve_rep_aliases([jo, RepRecord("7751", "hubspot", ("JoDoe@googlemail.com",))]) == {
        "7751": "rep-jo"
    }
    assert linking_keys(["Jo.Doe+crm@gmail.com", "jose\u0301@acme.example", " "]) == [
        "jodoe+crm@gmail.com",
        "jodoe@gmail.com",
        "jos\u00e9@acme.example",
    ]


def test_an_alias_credits_its_person_with_every_identity_deal_and_team() -> None:
    index = ReferenceIndex(internal_domains=frozenset({"seller.example"}), rep_aliases={"7701": "rep-a"})
    index.put_rep(Rep("rep-a", "Alice", ("alice@seller.example",)))
    index.put_rep(Rep("7701", "Alice", ("alice.hs@seller.example",), ("+14155550123",)))
    index.add_membership(TeamMembership("7701", "team-a", WHEN.date()))
    index.put_deal(Deal("deal-1", None, "7701", "open", False, False, WHEN, None, ()))

    snapshot = snapshot_for(email_out("alice.hs@seller.example", "amy@acme.com"), index)

    assert [(r.id, r.emails, r.phones) for r in snapshot.reps] == [
        ("rep-a", ("alice@seller.example", "alice.hs@seller.example"), ("+14155550123",))
    ]
    assert [(m.rep_id, m.team_id) for m in snapshot.memberships] == [("rep-a", "team-a")]
    assert index.deals["deal-1"].owner_rep_id == "rep-a"


def test_the_tenant_mapping_is_read_from_its_settings() -> None:
    assert rep_alias_mapping({"rep_aliases": {"7702": "rep-b"}, "internal_domains": []}) == {"7702": "rep-b"}
    assert rep_alias_mapping({}) == {}
    with pytest.raises(ValueError, match="source rep id -> rep id"):
        rep_alias_mapping({"rep_aliases": ["not", "a", "mapping"]})


def test_a_name_gives_the_mailbox_names_of_the_usual_conventions() -> None:
    assert name_aliases("Ana María López") == {
        "ana.lopez",
        "analopez",
        "a.lopez",
        "alopez",
        "ana_lopez",
        "ana-lopez",
        "lopez.ana",
    }
    assert name_aliases("Ana") == frozenset()
    assert name_aliases("") == frozenset()


def test_a_name_with_umlauts_or_letters_without_an_accent_gives_each_spelling_mail_uses() -> None:
    """Rules 2026.12.34: ``Weiß`` is ``weiss`` (it was ``wei``), ``Søren`` ``soren``; umlauts
    dropped or spelled out (``muller``, ``mueller``), composed or not."""
    assert {"klaus.weiss", "k.weiss", "weiss.klaus"} <= name_aliases("Klaus Weiß")
    assert {"soren.kierkegaard"} <= name_aliases("Søren Kierkegaard")
    expected = {"jurgen.muller", "juergen.mueller", "j.mueller", "jmuller", "mueller.juergen"}
    assert expected <= name_aliases("Jürgen Müller")
    assert name_aliases("Ju\u0308rgen Mu\u0308ller") == name_aliases("Jürgen Müller")
    assert not any("wei." in alias or alias.endswith("wei") for alias in name_aliases("Klaus Weiß"))


def _named_index() -> ReferenceIndex:
    index = ReferenceIndex(internal_domains=frozenset({"seller.example"}))
    index.put_rep(Rep("rep-a", "Ana Lopez", ("ana@seller.example",)))
    index.put_rep(Rep("rep-b", "Bo Berg", ("bo@seller.example",)))
    index.put_rep(Rep("rep-c", "Bea Berg", ("bea@seller.example",)))
    return index


@pytest.mark.parametrize(
    ("sender", "rep_id"),
    [
        ("Ana.Lopez@seller.example", "rep-a"),
        ("alopez@eu.seller.example", "rep-a"),
        # b.berg is Bo's and Bea's: nobody is guessed.
        ("b.berg@seller.example", None),
        ("ana-emea@seller.example", None),
        # Not an internal domain: a customer called Ana Lopez is no rep.
        ("ana.lopez@acme.com", None),
    ],
)
def test_an_unlisted_internal_address_following_one_reps_name_is_that_rep(
    sender: str, rep_id: str | None
) -> None:
    index = _named_index()
    activity = email_out(sender, "amy@acme.com")

    snapshot = snapshot_for(activity, index)
    decision = attribute_activity(activity, snapshot, TenantAttributionPolicy())

    assert index.rep_by_name_address(sender) == rep_id
    assert dict(snapshot.rep_by_name_address) == ({sender.lower(): rep_id} if rep_id else {})
    assert decision.rep_id == rep_id


@pytest.mark.parametrize(
    ("sender", "rep_id", "via"),
    [
        # Mapped by the tenant: Ana's, though it follows no convention of her name.
        ("Ana-EMEA@seller.example", "rep-a", "from"),
        # Mapped to an alias id: its person.
        ("deals@seller.example", "rep-b", "from"),
        # At no internal domain, still mapped.
        ("ana.lopez.sales@gmail.com", "rep-a", "from"),
        # A listed address stays its rep's: the mapping names addresses no source lists.
        ("bo@seller.example", "rep-b", "from"),
        # Unmapped and following no name: the deal's owner, as before.
        ("emea@seller.example", "rep-c", "deal_owner"),
    ],
)
def test_an_address_the_tenant_maps_to_a_rep_is_that_reps(sender: str, rep_id: str, via: str) -> None:
    index = _named_index()
    index.rep_aliases["7702"] = "rep-b"
    index.mapped_addresses = mapped_addresses(
        {
            "ana-emea@Seller.example": "rep-a",
            "deals@seller.example": "7702",
            "ana.lopez.sales@gmail.com": "rep-a",
            "bo@seller.example": "rep-a",
            "7701": "rep-a",
        }
    )
    index.put_deal(
        Deal("deal-1", "acc-1", "rep-c", "open", False, False, WHEN, None, (("con-1", "champion"),))
    )
    index.put_contact(Contact("con-1", ("amy@acme.com",), (), "acc-1"))
    activity = email_out(sender, "amy@acme.com")

    decision = attribute_from_index(activity, index, TenantAttributionPolicy())

    assert (decision.rep_id, decision.explanation["rep"]["via"], decision.deal_id) == (rep_id, via, "deal-1")
    assert decision.status is not AttributionStatus.INTERNAL


@pytest.mark.parametrize(
    ("sender", "rep_id", "via"),
    [
        # Ana's address before a rename: still hers, at a domain the company left too.
        ("ana@old-seller.example", "rep-a", "from"),
        # Held by an alias id before: its person.
        ("deals@seller.example", "rep-b", "from"),
        # Bo holds it now: the current holder wins over the former one.
        ("bo@seller.example", "rep-b", "from"),
        # The tenant's mapping wins over a former holder.
        ("ana-emea@seller.example", "rep-b", "from"),
    ],
)
def test_an_address_a_rep_held_before_is_that_reps_while_no_rep_holds_it(
    sender: str, rep_id: str, via: str
) -> None:
    index = _named_index()
    index.rep_aliases["7702"] = "rep-b"
    index.mapped_addresses = mapped_addresses({"ana-emea@seller.example": "rep-b"})
    index.former_addresses = {
        "ana@old-seller.example": "rep-a",
        "deals@seller.example": "7702",
        "bo@seller.example": "rep-a",
        "ana-emea@seller.example": "rep-a",
    }
    index.put_deal(
        Deal("deal-1", "acc-1", "rep-c", "open", False, False, WHEN, None, (("con-1", "champion"),))
    )
    index.put_contact(Contact("con-1", ("amy@acme.com",), (), "acc-1"))

    decision = attribute_from_index(email_out(sender, "amy@acme.com"), index, TenantAttributionPolicy())

    assert (decision.rep_id, decision.explanation["rep"]["via"], decision.deal_id) == (rep_id, via, "deal-1")


def test_only_address_keys_of_the_mapping_are_addresses() -> None:
    assert mapped_addresses({"7701": "rep-a", " Ana-EMEA@Seller.example": "rep-a", "u@x": "7702"}) == {
        "ana-emea@seller.example": "rep-a",
        "u@x": "7702",
    }


@pytest.mark.parametrize(
    ("kind", "address", "days", "rep_id", "via"),
    [
        # Ana (rep-a) left on WHEN: her mail and calls before then stay hers.
        (ActivityKind.EMAIL, "ana@seller.example", -1, "rep-a", "from"),
        (ActivityKind.CALL, "+14155550001", -1, "rep-a", "caller"),
        # ... even though her address was re-issued to Bo since.
        (ActivityKind.EMAIL, "ana.old@seller.example", -1, "rep-a", "from"),
        # After she left: nobody's, so the deal's owner; the re-issued address is Bo's.
        (ActivityKind.EMAIL, "ana@seller.example", 0, "rep-c", "deal_owner"),
        (ActivityKind.CALL, "+14155550001", 1, "rep-c", "deal_owner"),
        (ActivityKind.EMAIL, "ana.old@seller.example", 1, "rep-b", "from"),
    ],
)
def test_a_deleted_rep_is_the_rep_of_what_her_identities_did_before_she_left(
    kind: ActivityKind, address: str, days: int, rep_id: str, via: str
) -> None:
    index = _named_index()
    index.put_rep(Rep("rep-b", "Bo Berg", ("bo@seller.example", "ana.old@seller.example")))
    index.departed_addresses = {
        "ana@seller.example": [("rep-a", WHEN)],
        "+14155550001": [("rep-a", WHEN)],
        "ana.old@seller.example": [("rep-a", WHEN)],
    }
    del index.reps["rep-a"]  # deleted: not loaded
    index.add_membership(TeamMembership("rep-a", "team-a", WHEN.date() - timedelta(days=400)))
    index.put_deal(
        Deal("deal-1", "acc-1", "rep-c", "open", False, False, WHEN, None, (("con-1", "champion"),))
    )
    index.put_contact(Contact("con-1", ("amy@acme.com",), ("+12125550101",), "acc-1"))
    buyer = "amy@acme.com" if kind is ActivityKind.EMAIL else "+12125550101"
    roles = (
        (ParticipantRole.FROM, ParticipantRole.TO)
        if kind is ActivityKind.EMAIL
        else (ParticipantRole.CALLER, ParticipantRole.CALLEE)
    )
    at = WHEN + timedelta(days=days)
    sent = activity(kind, Direction.OUTBOUND, ((address, roles[0]), (buyer, roles[1])), at=at)

    decision = attribute_from_index(sent, index, TenantAttributionPolicy())
    from_snapshot = attribute_activity(sent, snapshot_for(sent, index), TenantAttributionPolicy())

    assert (decision.rep_id, decision.explanation["rep"]["via"], decision.deal_id) == (rep_id, via, "deal-1")
    assert decision.team_id == ("team-a" if rep_id == "rep-a" else None)
    assert decision.status is AttributionStatus.ATTRIBUTED
    assert from_snapshot == decision
