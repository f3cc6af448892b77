"""A rep's and a contact's addresses as attribution holds them: whoever held a re-issued address
then, and one address in either Unicode form (rules 2026.12.40)."""

from __future__ import annotations

import unicodedata
from datetime import timedelta

import pytest

from libs.common.personal_domains import address_key, held_address, mailbox_forms
from services.attribution.domain.matching import attribute_activity
from services.attribution.domain.reference import Contact, Deal, Rep, TenantAttributionPolicy
from services.attribution.domain.reference_index import (
    ReferenceIndex,
    attribute_from_index,
    resolve_references,
    snapshot_for,
)
from services.attribution.domain.reps import is_rename

from .builders import WHEN, email_out

POLICY = TenantAttributionPolicy()
INBOX = "sales-emea@seller.example"
JOSE_NFC = unicodedata.normalize("NFC", "josé@seller.example")
JOSE_NFD = unicodedata.normalize("NFD", "josé@seller.example")
CHLOE_NFC = unicodedata.normalize("NFC", "chloé@yahoo.com")
CHLOE_NFD = unicodedata.normalize("NFD", "chloé@yahoo.com")


def _world(*reps: Rep, contact_email: str = "amy@acme.com") -> ReferenceIndex:
    index = ReferenceIndex(internal_domains=frozenset({"seller.example"}))
    for rep in (*reps, Rep("rep-c", "Cy Diaz", ("cy@seller.example",))):
        index.put_rep(rep)
    index.put_contact(Contact("con-1", (contact_email,), (), "acc-1"))
    index.put_deal(
        Deal("deal-1", "acc-1", "rep-c", "open", False, False, WHEN, None, (("con-1", "champion"),))
    )
    return index


def _decided(index: ReferenceIndex, sender: str, recipient: str, hours: int = 0) -> tuple[str | None, ...]:
    sent = email_out(sender, recipient, at=WHEN + timedelta(hours=hours))
    decision = attribute_from_index(sent, index, POLICY)
    # The snapshot's path decides the same (``test_attribution_slice.py``).
    resolved = resolve_references(sent, index)
    assert attribute_activity(resolved, snapshot_for(resolved, index), POLICY) == decision
    return (decision.rep_id, decision.explanation["rep"]["via"], decision.deal_id)


@pytest.mark.parametrize(
    ("address", "held"),
    [
        ("Ana@Seller.example", "ana@seller.example"),
        (JOSE_NFD, JOSE_NFC),
        (JOSE_NFC.upper(), JOSE_NFC),
        ("Jo.Doe@gmail.com", "jo.doe@gmail.com"),
    ],
)
def test_an_address_is_held_composed_and_lower_cased_the_way_its_linking_key_reads_it(
    address: str, held: str
) -> None:
    assert held_address(address) == held
    assert mailbox_forms([address])[0] == held
    # The linking key is the held address, Gmail's dots aside.
    assert address_key(address) == held.replace("jo.doe@", "jodoe@")


def test_a_reps_and_a_contacts_address_match_in_either_unicode_form() -> None:
    """José's record lists ``josé@`` decomposed, Chloé's composed; mail typed the other way round
    is still José's, to Chloé's deal (before: the deal's owner, and no deal)."""
    index = _world(Rep("rep-j", "José Ruiz", (JOSE_NFD,)), contact_email=CHLOE_NFC)
    assert _decided(index, JOSE_NFC, CHLOE_NFD) == ("rep-j", "from", "deal-1")
    index = _world(Rep("rep-j", "José Ruiz", (JOSE_NFC,)), contact_email=CHLOE_NFD)
    assert _decided(index, JOSE_NFD, CHLOE_NFC) == ("rep-j", "from", "deal-1")
    assert _decided(index, JOSE_NFC, CHLOE_NFD) == ("rep-j", "from", "deal-1")


@pytest.mark.parametrize(("hours", "rep"), [(-1, "rep-k"), (0, "rep-b"), (5, "rep-b")])
def test_a_reissued_address_is_its_former_holders_before_her_record_dropped_it(hours: int, rep: str) -> None:
    """Kim's record dropped the team inbox at hour 0 and Bo's lists it now: the loader files it
    as hers until then (``departed_addresses``), ahead of Bo, though Kim is still active."""
    index = _world(
        Rep("rep-k", "Kim Lee", ("kim@seller.example",)),
        Rep("rep-b", "Bo Chan", ("bo@seller.example", INBOX)),
    )
    index.departed_addresses[INBOX] = [("rep-k", WHEN)]
    assert _decided(index, INBOX, "amy@acme.com", hours) == (rep, "from", "deal-1")


@pytest.mark.parametrize(
    ("hours", "rep"), [(-1, "rep-k"), (0, "rep-b"), (47, "rep-b"), (48, "rep-d"), (99, "rep-d")]
)
def test_an_address_held_in_turn_is_each_holders_for_her_own_spell(hours: int, rep: str) -> None:
    """Kim held the inbox until hour 0, Bo until hour 48, Di lists it now: each holding is kept
    (loaded in any order), and an activity goes to the holder whose spell covers it."""
    index = _world(
        Rep("rep-k", "Kim Lee", ("kim@seller.example",)),
        Rep("rep-b", "Bo Chan", ("bo@seller.example",)),
        Rep("rep-d", "Di Park", ("di@seller.example", INBOX)),
    )
    index.departed_addresses[INBOX] = [("rep-b", WHEN + timedelta(hours=48)), ("rep-k", WHEN)]
    assert _decided(index, INBOX, "amy@acme.com", hours) == (rep, "from", "deal-1")


@pytest.mark.parametrize(
    ("said", "held_name", "name", "renames"),
    [
        # Unsaid: a rename only when her name changes too.
        (None, "Gia Lopez", "Gia Moreno", True),
        (None, "Ana Lopez", "Ana Lopez", False),
        (None, "Ana Lopez", " ana  LOPEZ ", False),
        (None, unicodedata.normalize("NFD", "José Ruiz"), "José Ruiz", False),
        (None, "", "Ana Lopez", False),
        (None, "Ana Lopez", "", False),
        (None, None, "Ana Lopez", False),
        # Said: as said.
        ("rename", "Ana Lopez", "Ana Lopez", True),
        ("rename", None, "Ana Lopez", True),
        ("correction", "Gia Lopez", "Gia Moreno", False),
    ],
)
def test_a_replaced_address_is_a_rename_as_said_else_when_her_name_changes_too(
    said: str | None, held_name: str | None, name: str, renames: bool
) -> None:
    assert is_rename(said, held_name, name) is renames
