"""The erasure check: keyed hashes of normalised identities, masking in ingest, screening in attribution."""

from __future__ import annotations

import unicodedata
from typing import Literal

import pytest

from libs.common.contracts.activities import Participant, ParticipantRole
from libs.common.erasures import (
    ERASED_ADDRESS,
    NO_ERASURES,
    ErasedIdentities,
    IdentityKind,
    erasure_key,
    identity_hash,
    identity_hashes,
    mask_participants,
    names_erased_person,
    normalise_identity,
    screen_participants,
)

KEY = erasure_key("test-secret-key")
BO = ErasedIdentities(
    KEY,
    frozenset(
        {
            identity_hash(KEY, IdentityKind.EMAIL, "bo@buyer.example"),
            identity_hash(KEY, IdentityKind.PHONE, "+12125550100"),
        }
    ),
)
ANA = Participant(email="ana@seller.example", role=ParticipantRole.FROM)
BO_TO = Participant(email="Bo@Buyer.example", name="Bo", role=ParticipantRole.TO)
BO_CALLEE = Participant(phone="+12125550100", role=ParticipantRole.CALLEE)
CY = Participant(email="cy@buyer.example", role=ParticipantRole.CC)


def test_identities_are_normalised_before_hashing_and_bad_ones_named() -> None:
    assert normalise_identity(IdentityKind.EMAIL, "  Bo@Buyer.Example ") == "bo@buyer.example"
    assert normalise_identity(IdentityKind.PHONE, "+1 (212) 555-0100") == "+12125550100"
    with pytest.raises(ValueError, match="email address"):
        normalise_identity(IdentityKind.EMAIL, "bo-at-buyer")
    with pytest.raises(ValueError, match=r"E\.164"):
        normalise_identity(IdentityKind.PHONE, "212 555 0100")


def test_the_hash_is_keyed_and_never_the_identity() -> None:
    hashed = identity_hash(KEY, IdentityKind.EMAIL, "bo@buyer.example")
    assert "bo" not in hashed
    assert len(hashed) == 64
    assert hashed != identity_hash(erasure_key("another-secret"), IdentityKind.EMAIL, "bo@buyer.example")
    assert hashed != identity_hash(KEY, IdentityKind.PHONE, "bo@buyer.example")


def test_screening_removes_erased_participants_and_placeholders_and_counts_them() -> None:
    kept, removed = screen_participants((ANA, BO_TO, CY, BO_CALLEE), BO)
    assert kept == (ANA, CY)
    assert removed == 2
    placeholder = Participant(email=ERASED_ADDRESS, role=ParticipantRole.TO)
    assert screen_participants((ANA, placeholder), NO_ERASURES) == ((ANA,), 1)
    assert screen_participants((ANA, BO_TO), NO_ERASURES) == ((ANA, BO_TO), 0)


def test_ingest_masks_an_erased_participant_keeping_the_role() -> None:
    masked = mask_participants((ANA, BO_TO, CY), BO)
    assert masked == (ANA, Participant(email=ERASED_ADDRESS, role=ParticipantRole.TO), CY)
    assert "bo" not in repr(masked).lower().replace("erased", "")
    assert mask_participants((ANA, BO_TO), NO_ERASURES) == (ANA, BO_TO)


def test_a_crm_contact_of_an_erased_person_is_recognised_by_any_identity() -> None:
    assert names_erased_person(["other@x.example", "BO@buyer.example"], [], BO)
    assert names_erased_person([], ["+12125550100"], BO)
    assert not names_erased_person(["cy@buyer.example"], ["+12125550199"], BO)
    assert not names_erased_person(["bo@buyer.example"], [], NO_ERASURES)


def test_an_erased_participant_loses_the_extension_dialled_on_their_line() -> None:
    bo_line = Participant(phone="+12125550100", extension="12", role=ParticipantRole.CALLEE)
    [masked] = mask_participants((bo_line,), BO)
    assert masked == Participant(email=ERASED_ADDRESS, role=ParticipantRole.CALLEE)
    assert masked.extension is None


def test_an_address_is_erased_by_the_mailbox_it_delivers_to() -> None:
    """Attribution reads ``pia+news@plume.example`` as the mailbox ``pia@plume.example``, and a
    contact listing ``pia+crm@plume.example`` as holding it too: erasing the mailbox erases them."""
    pia = ErasedIdentities(KEY, frozenset({identity_hash(KEY, IdentityKind.EMAIL, "pia@plume.example")}))

    assert pia.names("Pia+News@plume.example", None)
    assert names_erased_person(["pia+crm@plume.example"], [], pia)
    assert not pia.names("pia.other@plume.example", None)
    assert not names_erased_person(["pian+crm@plume.example"], [], pia)
    # The tagged address alone names no other tag of it: only the mailbox they share does.
    tagged = ErasedIdentities(
        KEY, frozenset({identity_hash(KEY, IdentityKind.EMAIL, "pia+crm@plume.example")})
    )
    assert tagged.names("pia+crm@plume.example", None)
    assert not tagged.names("pia@plume.example", None)


def test_the_hashes_listed_for_a_person_hold_each_address_and_its_mailbox() -> None:
    listed = identity_hashes(KEY, [" Pia+CRM@plume.example", "Jo.Doe@gmail.com"], ["+12125550100"])

    assert listed == {
        identity_hash(KEY, IdentityKind.EMAIL, "pia+crm@plume.example"),
        identity_hash(KEY, IdentityKind.EMAIL, "pia@plume.example"),
        identity_hash(KEY, IdentityKind.EMAIL, "jo.doe@gmail.com"),
        identity_hash(KEY, IdentityKind.EMAIL, "jodoe@gmail.com"),
        identity_hash(KEY, IdentityKind.PHONE, "+12125550100"),
    }
    erased = ErasedIdentities(KEY, frozenset(listed))
    assert erased.names("pia@plume.example", None)
    assert erased.names("j.o.doe+x@googlemail.com", None)


@pytest.mark.parametrize("form", ["NFC", "NFD"])
def test_an_address_erased_in_one_unicode_form_is_erased_in_the_other(form: Literal["NFC", "NFD"]) -> None:
    """Attribution holds addresses composed (``held_address``, rules 2026.12.40): José erased as
    typed either way is masked written either way, and so is an erasure listed before, whose
    hash is of the address as typed: recognised in both forms, composed mail included."""
    typed = unicodedata.normalize(form, "José@acme.example")
    other = unicodedata.normalize("NFD" if form == "NFC" else "NFC", "josé@acme.example")
    listed = ErasedIdentities(KEY, frozenset(identity_hashes(KEY, [typed])))
    assert listed.names(other, None)
    assert names_erased_person([other], [], listed)
    before = ErasedIdentities(KEY, frozenset({identity_hash(KEY, IdentityKind.EMAIL, typed.lower())}))
    assert before.names(other, None)
    assert before.names(typed, None)
