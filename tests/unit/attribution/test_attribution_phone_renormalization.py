"""``spm renormalize-phones``: a stored row's phones read again as E.164 (pure part)."""

from __future__ import annotations

import pytest

from spm.commands.phones import renormalized


@pytest.mark.parametrize(
    ("phones", "raw_phones", "expected"),
    [
        # Stored as sent before ingest read phones: national formats, nothing kept aside.
        (
            ["(415) 555-0100", "415.555.0100", "not a phone at all"],
            [],
            (("+14155550100",), ("(415) 555-0100",), ("not a phone at all",)),
        ),
        # Already read: unchanged.
        (["+14155550100"], ["(415) 555-0100"], (("+14155550100",), ("(415) 555-0100",), ())),
        (["+33612345678"], [], (("+33612345678",), ("+33612345678",), ())),
        ([], [], ((), (), ())),
        # A value listing two numbers, stored before ingest split it: each of them.
        (
            ["415-555-0107 / 415-555-0108"],
            [],
            (("+14155550107", "+14155550108"), ("415-555-0107 / 415-555-0108",) * 2, ()),
        ),
        # Split at ingest (the whole value kept for each): read again, unchanged.
        (
            ["+14155550107", "+14155550108"],
            ["415-555-0107 / 415-555-0108"] * 2,
            (("+14155550107", "+14155550108"), ("415-555-0107 / 415-555-0108",) * 2, ()),
        ),
    ],
)
def test_stored_phones_are_read_in_the_tenants_region(
    phones: list[str], raw_phones: list[str], expected: tuple[tuple[str, ...], ...]
) -> None:
    assert renormalized(phones, raw_phones, "US") == (*expected, (), ())


def test_an_extension_kept_aside_is_keyed_with_its_line() -> None:
    """Two contacts' extensions of one main line, stored before extensions were kept: each keyed."""
    assert renormalized(["+14155550200", "+14155550300"], ["(415) 555-0200 x12", "415 555 0300"], "US") == (
        ("+14155550200", "+14155550300"),
        ("(415) 555-0200 x12", "415 555 0300"),
        (),
        ("+14155550200;ext=12",),
        (),
    )


def test_the_region_reads_numbers_without_a_plus() -> None:
    assert renormalized(["06 12 34 56 78"], [], "FR")[0] == ("+33612345678",)


@pytest.mark.parametrize(
    ("phones", "raw_phones"),
    [
        # Stored correctly: left as it is, not rewritten into area code and number.
        (["+492211234567"], ["0221/1234567"]),
        # Stored before ingest read phones.
        (["0221/1234567"], []),
        # Split wrongly by an earlier ingest (the whole value kept for each): repaired.
        (["+490221", "+491234567"], ["0221/1234567"] * 2),
    ],
)
def test_a_german_area_code_and_number_stays_one_number(phones: list[str], raw_phones: list[str]) -> None:
    assert renormalized(phones, raw_phones, "DE") == (("+492211234567",), ("0221/1234567",), (), (), ())


def test_a_contacts_unread_phone_is_read_in_its_regions_or_kept() -> None:
    """``020 7946 0958`` no US reading: kept (``unread``); read once the UK is among the regions."""
    assert renormalized([], [], "US", ["020 7946 0958"]) == (
        (),
        (),
        ("020 7946 0958",),
        (),
        ("020 7946 0958",),
    )
    assert renormalized(["+14155550100"], ["(415) 555-0100"], ("GB", "US"), ["020 7946 0958"]) == (
        ("+14155550100", "+442079460958"),
        ("(415) 555-0100", "020 7946 0958"),
        (),
        (),
        (),
    )
