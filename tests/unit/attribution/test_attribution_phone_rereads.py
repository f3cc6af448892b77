"""``domain.phone_rereads.reread_of``: a ``reread_phones`` job's copy of a contact is written only
over the version it read (its phones first, numbers read from its unread values added)."""

from __future__ import annotations

from datetime import UTC, datetime

from libs.common.contracts.crm import ContactV1, RepV1
from services.attribution.domain.phone_rereads import reread_of, supersedes

T0 = datetime(2026, 11, 2, tzinfo=UTC)
TWO = "020 7946 0961 / 07700 900123"
HELD = ContactV1(
    id="con-ivy",
    updated_at=T0,
    phones=("+14155550142",),
    raw_phones=("(415) 555-0142",),
    unread_phones=(TWO, "ask reception"),
)
READ = HELD.model_copy(
    update={
        "phones": ("+14155550142", "+442079460961", "+447700900123"),
        "raw_phones": ("(415) 555-0142", TWO, TWO),
        "unread_phones": ("ask reception",),
    }
)


def test_the_version_read_with_its_two_numbers_added_is_written() -> None:
    assert reread_of(HELD, READ)


def test_a_correction_held_since_keeps_the_held_version() -> None:
    corrected = [
        HELD.model_copy(update={"name": "Ivy"}),
        HELD.model_copy(update={"unread_phones": ("020 7946 0999",)}),
        HELD.model_copy(update={"unread_phones": (TWO, "ask reception", "020 7946 0998")}),
        HELD.model_copy(update={"phones": ("+14155550143",), "raw_phones": ("(415) 555-0143",)}),
        HELD.model_copy(update={"updated_at": datetime(2026, 11, 3, tzinfo=UTC)}),
        HELD.model_copy(update={"deleted": True}),
    ]
    assert [reread_of(held, READ) for held in corrected] == [False] * 6
    assert not reread_of(None, READ)
    # Written already (the job's copy received twice): nothing gained over it.
    assert not reread_of(READ, READ)


DE_HELD = ContactV1(
    id="con-jan",
    updated_at=T0,
    phones=("+49301234567",),
    raw_phones=("+49 30 1234567",),
    unread_phones=("030 1234567", "0170 9876543"),
)


def test_a_value_read_into_a_number_held_already_does_not_lose_the_number_gained() -> None:
    read = DE_HELD.model_copy(
        update={
            "phones": ("+49301234567", "+491709876543"),
            "raw_phones": ("+49 30 1234567", "0170 9876543"),
            "unread_phones": (),
        }
    )
    assert reread_of(DE_HELD, read)


def test_two_values_read_into_one_number_are_written() -> None:
    held = ContactV1(id="con-ada", updated_at=T0, unread_phones=("030 1234567", "(030) 1234567"))
    read = held.model_copy(
        update={"phones": ("+49301234567",), "raw_phones": ("030 1234567",), "unread_phones": ()}
    )
    assert reread_of(held, read)
    # A value of a correction held since (another number, which the job never read) keeps it.
    corrected = held.model_copy(update={"unread_phones": ("030 1234567", "(030) 1234599")})
    assert not reread_of(corrected, read)


def test_a_reps_reread_is_written_only_over_the_version_read_and_never_as_a_contact() -> None:
    """A rep's copy (rules 2026.12.40: reps keep unread phones too) follows the same rule, over
    her own fields: a role or activity changed since keeps the held version; a contact's version
    of the same id is not hers."""
    held = RepV1(
        id="rep-ruth", updated_at=T0, name="Ruth", phones=("+14155550170",), unread_phones=("020 7946 0970",)
    )
    read = held.model_copy(
        update={
            "phones": ("+14155550170", "+442079460970"),
            "raw_phones": ("+14155550170", "020 7946 0970"),
            "unread_phones": (),
        }
    )
    assert reread_of(held, read)
    for corrected in (
        held.model_copy(update={"role": "AE"}),
        held.model_copy(update={"active": False}),
        held.model_copy(update={"manager_id": "rep-boss"}),
    ):
        assert not reread_of(corrected, read)
        assert supersedes(corrected, held)
    assert not supersedes(held, held)
    as_contact = ContactV1(
        id="rep-ruth", updated_at=T0, phones=("+14155550170",), unread_phones=("020 7946 0970",)
    )
    assert not reread_of(as_contact, read)
