"""The one phone rule of every ingest path, and CRM entities read with it."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from libs.common import phones
from libs.common.contracts.crm import AccountV1, ContactV1, RepV1
from libs.common.phones import (
    ParsedPhone,
    PhoneProblem,
    RefusedPhone,
    parse_phone,
    parse_phones_in,
)
from services.ingest.domain.crm_sync import EntityWarning, read_entities
from services.ingest.domain.normalize import read_phones

T0 = datetime(2026, 11, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("raw", "region", "e164"),
    [
        ("(415) 555-0100", "US", "+14155550100"),
        ("1-330-233-7966", "US", "+13302337966"),
        ("415.555.0100", "us", "+14155550100"),
        ("+44 20 7946 0958", "US", "+442079460958"),
        ("020 7946 0958", "GB", "+442079460958"),
        ("+1 212 000 0001", "US", "+12120000001"),  # written in full: taken as written
        # A full national length is taken as written too, even where no exchange is assigned: the
        # same digits as a dialer's E.164 must be the same identity.
        ("(212) 000-0001", "US", "+12120000001"),
        ("(212) 123-4567", "US", "+12121234567"),
        ("(555) 123-4567", "US", "+15551234567"),
        ("07700 900123", "GB", "+447700900123"),  # Ofcom's range for fiction
        # 00 is the international prefix of most of the world, in any tenant's region.
        ("0044 20 7946 0958", "US", "+442079460958"),
        ("001-330-233-7966", "US", "+13302337966"),
        ("0033 1 42 68 53 00", "DE", "+33142685300"),
        # A label around the only number in the field.
        ("(415) 555-0100 (mobile)", "US", "+14155550100"),
        ("Tel: 020 7946 0958", "GB", "+442079460958"),
    ],
)
def test_numbers_as_people_type_them_become_e164(raw: str, region: str, e164: str) -> None:
    assert parse_phone(raw, region) == ParsedPhone(e164=e164, raw=raw)


@pytest.mark.parametrize(
    ("raw", "region"),
    [("(415) 555-0100", "GB"), ("415-555-0100", "GB"), ("(415) 555-0100", "AU")],
)
def test_a_number_outside_the_regions_numbering_plan_is_refused_not_stored_as_a_number_there(
    raw: str, region: str
) -> None:
    """A UK tenant's US buyer typed nationally with no country: no UK number starts with 4, so the
    digits are refused with a reason (the CRM sync warns: give the contact its country) instead of
    being stored as ``+444155550100``, which no dialer ever reports."""
    refused = parse_phone(raw, region)
    assert isinstance(refused, RefusedPhone)
    assert refused.problem is PhoneProblem.INVALID


def test_an_extension_is_kept_apart_and_the_line_is_matched() -> None:
    assert parse_phone("415-555-0100 x123", "US") == ParsedPhone("+14155550100", "415-555-0100 x123", "123")
    assert parse_phone("+1 415 555 0100 ext. 7", "US") == ParsedPhone(
        "+14155550100", "+1 415 555 0100 ext. 7", "7"
    )


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("", PhoneProblem.EMPTY),
        ("1" * 65, PhoneProblem.TOO_LONG),
        ("not a phone at all", PhoneProblem.NOT_A_NUMBER),
        ("911", PhoneProblem.SHORT_CODE),
        ("12345", PhoneProblem.SHORT_CODE),
        ("555-0100", PhoneProblem.INVALID),  # no area code: not guessed
        ("212 555 01", PhoneProblem.INVALID),  # too short for a line
        ("0099 1234 5678", PhoneProblem.INVALID),  # 00 and no country's number
        ("call 415 555 0100 or 415 555 0101", PhoneProblem.NOT_A_NUMBER),  # two: not chosen
        ("+1 212 000", PhoneProblem.INVALID),
        # Placeholders typed into a required field: no North American area code starts with 0 or
        # 1, so these are no number at all, not an unknown range.
        ("000-000-0000", PhoneProblem.PLACEHOLDER),
        ("(000) 000-0000", PhoneProblem.PLACEHOLDER),
        ("123-456-7890", PhoneProblem.PLACEHOLDER),
        ("+1 100 555 0100", PhoneProblem.PLACEHOLDER),
        ("+1 212 555 01", PhoneProblem.INVALID),
    ],
)
def test_what_is_not_a_line_is_refused_with_its_reason(raw: str, problem: PhoneProblem) -> None:
    refused = parse_phone(raw, "US")
    assert isinstance(refused, RefusedPhone)
    assert refused.problem is problem


@pytest.mark.parametrize(
    "raw",
    [
        "123-456-7890",
        "(123) 456-7890",
        "111-111-1111",
        "000-000-0000",
        "(000) 000-0000",
        "1234567890",
        "0123456789",
        "9999999",
        "123-456-7890 x12",
        "Tel: 123-456-7890",
        "+1 000 555 0100",
    ],
)
@pytest.mark.parametrize("region", ["US", "GB", "DE", "IN", "BR", "AU", "FR"])
def test_a_placeholder_is_refused_in_every_region_not_read_as_another_countrys_number(
    raw: str, region: str
) -> None:
    """Read in the UK, ``123-456-7890`` would be ``+441234567890``, in Brazil ``+551234567890``:
    one "number" shared by every contact with the placeholder. It is none anywhere."""
    refused = parse_phone(raw, region)
    assert isinstance(refused, RefusedPhone)
    assert (refused.problem, refused.reason) == (
        PhoneProblem.PLACEHOLDER,
        "a placeholder, not a phone number",
    )


@pytest.mark.parametrize(
    ("raw", "region", "e164"),
    [
        ("030 123 4567", "DE", "+49301234567"),  # Berlin: an area code starting with 0, nationally
        ("(11) 2345-6789", "BR", "+551123456789"),  # Sao Paulo: area code 11
        ("02 9876 5432", "AU", "+61298765432"),
        ("01 42 68 53 00", "FR", "+33142685300"),
        ("(212) 555-0100", "US", "+12125550100"),
    ],
)
def test_a_real_number_that_looks_alike_is_no_placeholder(raw: str, region: str, e164: str) -> None:
    read = parse_phone(raw, region)
    assert isinstance(read, ParsedPhone)
    assert read.e164 == e164


@pytest.mark.parametrize(
    ("raw", "numbers"),
    [
        ("415-555-0107 / 415-555-0108", ("+14155550107", "+14155550108")),
        ("415-555-0109, 415-555-0110", ("+14155550109", "+14155550110")),
        ("4155550107;4155550108", ("+14155550107", "+14155550108")),  # not a ten-digit extension
        ("+1 415 555 0107 or +44 20 7946 0958", ("+14155550107", "+442079460958")),
        ("Mobile: 415 555 0106 | Office: 415 555 0107", ("+14155550106", "+14155550107")),
        ("(415) 555-0100\n(415) 555-0101", ("+14155550100", "+14155550101")),
        # One number: a part that is no number on its own leaves the field to the single reading.
        ("+14155550200,12", ("+14155550200",)),
        ("+1 415 555 0100, ext. 12", ("+14155550100",)),
        ("415/555-0100", ("+14155550100",)),
        ("Orlando office 415 555 0100", ("+14155550100",)),
    ],
)
def test_a_crm_field_listing_several_numbers_gives_each_of_them(raw: str, numbers: tuple[str, ...]) -> None:
    read = parse_phones_in(raw, "US")
    assert isinstance(read, tuple)
    assert tuple(number.e164 for number in read) == numbers
    assert {number.raw for number in read} == {raw}


def test_a_field_listing_more_than_ten_numbers_is_refused_before_any_is_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Ten listed numbers are read, each; eleven (a paste, a vendor field of thousands) are refused
    as too long with no part read: the work of a field is bounded whatever its length."""
    ten = parse_phones_in(" / ".join(f"415-555-{n:04d}" for n in range(100, 110)), "US")
    assert isinstance(ten, tuple)
    assert len(ten) == 10
    reads: list[str] = []
    parse = phones.parse_phone

    def counted(raw: str, region: str) -> ParsedPhone | RefusedPhone:
        reads.append(raw)
        return parse(raw, region)

    monkeypatch.setattr(phones, "parse_phone", counted)
    for count in (11, 9_000):
        listed = " / ".join(f"415-555-{n:04d}" for n in range(100, 100 + count))
        read = parse_phones_in(listed, ("US", "GB"))
        assert isinstance(read, RefusedPhone)
        assert (read.problem, read.reason) == (PhoneProblem.TOO_LONG, "longer than 64 characters")
    assert reads == []


@pytest.mark.parametrize(
    ("raw", "region", "e164"),
    [
        ("0221/1234567", "DE", "+492211234567"),  # Cologne
        ("0711/1234567", "DE", "+497111234567"),  # Stuttgart
        ("0171/1234567", "DE", "+491711234567"),  # a mobile
        ("0221 / 1234567", "DE", "+492211234567"),
        ("0662/123456", "AT", "+43662123456"),  # Salzburg
    ],
)
def test_a_din_5008_area_code_and_number_is_one_number(raw: str, region: str, e164: str) -> None:
    """Each part has a possible length alone (``+490221``, ``+491234567``): only valid parts split."""
    assert parse_phones_in(raw, region) == (ParsedPhone(e164, raw),)
    assert parse_phones_in(raw, (region, "US")) == (ParsedPhone(e164, raw),)


def test_a_field_of_two_numbers_one_of_an_unknown_range_gives_both() -> None:
    """``020 7946 0954 / 07700 900124``: no number as a whole; each part a full-length UK number,
    the second in Ofcom's range for fiction (no range the library knows). Both are kept rather
    than the field dropped; a part that is no number leaves the field refused whole."""
    raw = "020 7946 0954 / 07700 900124"
    assert parse_phones_in(raw, "GB") == (
        ParsedPhone("+442079460954", raw),
        ParsedPhone("+447700900124", raw),
    )
    assert isinstance(parse_phones_in("020 7946 0954 / 0955", "GB"), RefusedPhone)


def test_a_field_of_two_numbers_the_region_cannot_read_is_refused_for_the_region() -> None:
    """The same field in a US tenant: each part refused only because the US reads it (kept
    unread, to read again in GB), so the field is refused for the region, naming it, not as
    "not a phone number"."""
    raw = "020 7946 0954 / 07700 900124"
    assert parse_phones_in(raw, "US") == RefusedPhone(
        raw,
        PhoneProblem.INVALID,
        "not a valid number (missing area code, or no such number in region US; "
        "an international number needs its +)",
    )
    assert read_phones([raw], "US").unread == (raw,)
    # A part that is no number in any region leaves the field's own refusal.
    assert parse_phones_in("020 7946 0954 / ask reception", "US") == RefusedPhone(
        "020 7946 0954 / ask reception", PhoneProblem.NOT_A_NUMBER, "not a phone number"
    )


@pytest.mark.parametrize(
    ("raw", "region"),
    [("07700 900123 / +49 170 1234567", "GB"), ("+44 7700 900123 / +49 170 1234567", "US")],
)
def test_a_valid_number_beside_one_of_an_unknown_range_of_another_country_gives_both(
    raw: str, region: str
) -> None:
    """A German mobile (valid) beside a UK number of Ofcom's range for fiction (full-length, no
    known range): the shape rule is for the parts of no known range, so both are kept (refused
    whole as "not a phone number" when the German number's shape was required of the UK one)."""
    assert parse_phones_in(raw, region) == (
        ParsedPhone("+447700900123", raw),
        ParsedPhone("+491701234567", raw),
    )


def test_a_field_refused_for_parts_the_region_reads_as_no_known_number_is_kept_unread() -> None:
    """``07700 900123 / 0161 496 000`` in GB: two UK numbers of no known range of different shapes
    (not split on a guess), each refused only as the region reads it: refused for the region, so
    the contact keeps it to read again, not as "not a phone number"."""
    raw = "07700 900123 / 0161 496 000"
    assert parse_phones_in(raw, "GB") == RefusedPhone(
        raw,
        PhoneProblem.INVALID,
        "not a valid number (missing area code, or no such number in region GB; "
        "an international number needs its +)",
    )
    assert read_phones([raw], "GB").unread == (raw,)


@pytest.mark.parametrize(
    ("raw", "region"),
    [
        # A range of direct-dial numbers (the second part, 7 digits, is no number of its own).
        ("+49 89 1234560 / 1234599", "DE"),
        ("+49 89 1234560 / 1234599", ("DE", "US")),
        # A UK line and a part of another shape.
        ("020 7946 0954 / 7946 0955", "GB"),
    ],
)
def test_parts_of_different_shapes_are_not_split_on_a_guess(raw: str, region: str | tuple[str, ...]) -> None:
    """The fallback keeping full-length parts of unknown ranges keeps only parts of one shape
    (one country, as many digits): a number range is not cut into a junk number."""
    assert isinstance(parse_phones_in(raw, region), RefusedPhone)


@pytest.mark.parametrize(
    "raw",
    [
        "+49 89 123456 Durchwahl -12",
        "089 123456 DW 12",
        "089/123456, Durchwahl: 12",
        "+49 (0)89 123456 durchw. 12",
        # DIN 5008's switchboard "-0": the direct-dial digits replace it.
        "+49 89 123456-0 Durchwahl -12",
        "089 123456-0 Durchwahl 12",
        "089 123456 \u2013 0 DW 12",
    ],
)
def test_a_german_direct_dial_suffix_is_part_of_the_number(raw: str) -> None:
    """A Durchwahl is dialled as the number's last digits (``+498912345612``), not after the call
    connects as an extension is."""
    assert parse_phones_in(raw, "DE") == (ParsedPhone("+498912345612", raw),)


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("Zentrale +49 89 123456-0, Durchwahl: 15", "+498912345615"),
        ("089 123456-0 DW 15", "+498912345615"),
        ("+49 30 12345-0 Durchwahl 230", "+493012345230"),
        # The switchboard's number alone is the switchboard's.
        ("+49 89 123456-0", "+49891234560"),
        # A 0 that is the last digit of the number, not a switchboard suffix, stays.
        ("089 1234560 DW 12", "+4989123456012"),
    ],
)
def test_a_direct_dial_after_the_switchboard_0_replaces_it(raw: str, e164: str) -> None:
    """``123456-0`` is the company's switchboard; its person's line is the direct dial in place
    of the 0 (``+49 89 123456-0 Durchwahl 15`` is ``+498912345615``, not ``...6015``)."""
    assert parse_phones_in(raw, "DE") == (ParsedPhone(e164, raw),)


def test_a_long_phone_field_is_read_in_linear_time() -> None:
    """A phone field of a HubSpot or Salesforce record is as long as its sender makes it: 40,000
    spaces between two characters took the separator 20 s to look for (a HubSpot delivery of
    2 MiB, hours of ingest's event loop). It is refused as too long at once."""
    started = time.perf_counter()
    read = parse_phones_in("1" + " " * 40_000 + "y", "US")
    assert time.perf_counter() - started < 1.0
    assert isinstance(read, RefusedPhone)
    assert read.problem is PhoneProblem.TOO_LONG


def test_a_field_with_a_part_that_is_no_number_is_refused_whole() -> None:
    refused = parse_phones_in("415 555 0107 / 0108", "US")
    assert isinstance(refused, RefusedPhone)
    assert refused.problem is PhoneProblem.INVALID
    # A vendor's record (HubSpot phone and mobilephone) reads the same way.
    assert read_phones(["415-555-0107 / 415-555-0108", None, "(415) 555-0108", " "], "US") == (
        ("+14155550107", "+14155550108"),
        ("415-555-0107 / 415-555-0108", "415-555-0107 / 415-555-0108"),
        (),
        (),
        (),
    )
    # A value another region may read is kept as sent (a contact's ``unread_phones``); text, no
    # region reads; a blank value is none.
    read = read_phones(["020 7946 0958", "415 555 0107 / 0108", "ask reception", "911", ""], "US")
    assert read.unread == ("020 7946 0958", "415 555 0107 / 0108", "911")
    assert [(r.raw, r.problem) for r in read.refused] == [
        ("020 7946 0958", PhoneProblem.INVALID),
        ("415 555 0107 / 0108", PhoneProblem.INVALID),
        ("ask reception", PhoneProblem.NOT_A_NUMBER),
        ("911", PhoneProblem.SHORT_CODE),
    ]


def test_a_vendor_record_keeps_each_lines_extension_keyed_with_its_line() -> None:
    """Two extensions of one main line on a record: one line, each extension keyed to it."""
    assert read_phones(["(415) 555-0200 ext. 12", "+1 415 555 0200 x34", "415 555 0300"], "US") == (
        ("+14155550200", "+14155550300"),
        ("(415) 555-0200 ext. 12", "415 555 0300"),
        ("+14155550200;ext=12", "+14155550200;ext=34"),
        (),
        (),
    )


def test_a_crm_batch_keeps_every_entity_and_warns_about_each_dropped_phone() -> None:
    entities = (
        AccountV1(id="acc-1", updated_at=T0),
        ContactV1(id="con-1", updated_at=T0, phones=("(415) 555-0100", "junk", "+1 415 555 0100", "911")),
        RepV1(id="rep-1", updated_at=T0, phones=("212 555 0199",)),
    )

    read, warnings = read_entities(entities, "US")

    assert read[0] == entities[0]
    assert isinstance(read[1], ContactV1)
    assert (read[1].phones, read[1].raw_phones) == (("+14155550100",), ("(415) 555-0100",))
    assert isinstance(read[2], RepV1)
    assert (read[2].phones, read[2].raw_phones) == (("+12125550199",), ("212 555 0199",))
    assert warnings == (
        EntityWarning(
            1,
            "entities.1.phones.1",
            "not a phone number; the phone was dropped, the contact accepted",
            PhoneProblem.NOT_A_NUMBER,
        ),
        EntityWarning(
            1,
            "entities.1.phones.3",
            "a short code, not a person's line; the phone was dropped, the contact accepted",
            PhoneProblem.SHORT_CODE,
        ),
    )


def test_a_crm_batch_reads_emails_and_domains_as_typed_and_warns_about_each_dropped_one() -> None:
    entities = (
        AccountV1(
            id="acc-1", updated_at=T0, domains=("https://www.buyer.example/", "Buyer Inc", "buyer.example")
        ),
        ContactV1(id="con-1", updated_at=T0, emails=("Dana Diaz <Dana@Buyer.example>", "dana@buyer.example")),
        RepV1(id="rep-1", updated_at=T0, emails=("mailto:ana@seller.example", "ana seller@seller.example")),
        AccountV1(id="acc-2", updated_at=T0, domains=("globex.example",)),
    )

    read, warnings = read_entities(entities, "US")

    assert [getattr(e, "domains", None) or getattr(e, "emails", None) for e in read] == [
        ("buyer.example",),
        ("dana@buyer.example",),
        ("ana@seller.example",),
        ("globex.example",),
    ]
    assert read[3] is entities[3]
    assert warnings == (
        EntityWarning(0, "entities.0.domains.1", "not a domain; it was dropped, the account accepted"),
        EntityWarning(2, "entities.2.emails.1", "not an email address; it was dropped, the rep accepted"),
    )


def test_a_crm_record_keeps_its_extensions_keyed_with_their_lines() -> None:
    """Contacts behind one main line (x12, x34) and a rep on it (x101): each line stored bare in
    ``phones`` (matched, deduped and erased as before) and with its extension in
    ``phone_extensions``; a record re-sent without the extension loses it."""
    entities = (
        ContactV1(id="con-12", updated_at=T0, phones=("(415) 555-0200 ext. 12", "415 555 0300")),
        ContactV1(id="con-34", updated_at=T0, phones=("+1 415 555 0200 x34",)),
        RepV1(id="rep-cy", updated_at=T0, phones=("(415) 555-0900 x101",)),
        ContactV1(
            id="con-was-12",
            updated_at=T0,
            phones=("415 555 0200",),
            phone_extensions=("+14155550999;ext=12",),
        ),
    )
    read, warnings = read_entities(entities, "US")
    assert warnings == ()
    assert [(e.phones, e.phone_extensions) for e in read if isinstance(e, ContactV1 | RepV1)] == [
        (("+14155550200", "+14155550300"), ("+14155550200;ext=12",)),
        (("+14155550200",), ("+14155550200;ext=34",)),
        (("+14155550900",), ("+14155550900;ext=101",)),
        (("+14155550200",), ()),
    ]
