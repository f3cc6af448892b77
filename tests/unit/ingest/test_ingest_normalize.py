from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from libs.common.contracts.activities import Direction, Participant, ParticipantRole
from libs.common.contracts.fields import lower_email, unicode_domain
from services.ingest.domain.normalize import (
    CALENDAR_RESOURCE_SUFFIXES,
    CRM_LOGGING_DOMAINS,
    MEETING_NOTETAKER_DOMAINS,
    MEETING_NOTETAKERS,
    _participant,
    direction_for,
    domain_matches,
    email_domain,
    is_crm_logging_mailbox,
    is_decorated_email,
    is_not_a_person,
    make_participant,
    normalize_domain,
    normalize_domains,
    normalize_email,
    normalize_phone,
    parse_iso_datetime,
    parse_rfc2822,
)
from services.ingest.domain.webhooks import ADAPTERS, WebhookRejected
from tests.unit.ingest.address_shapes import shapes_around

from .ingest_webhook_helpers import CONFIG, make_request

INTERNAL = frozenset({"acme.example"})


def test_registry_holds_every_source_with_a_version() -> None:
    assert sorted(ADAPTERS) == [
        "aircall",
        "calendly",
        "gmail",
        "google-calendar",
        "hubspot",
        "microsoft-graph",
        "ringcentral",
        "salesforce",
        "twilio",
        "zoom",
    ]
    assert {source: adapter.version for source, adapter in ADAPTERS.items()}[
        "google-calendar"
    ] == "google-calendar/1"
    assert all(adapter.version == f"{source}/1" for source, adapter in ADAPTERS.items())


@pytest.mark.parametrize(
    ("sender", "recipients", "direction"),
    [
        ("ana@acme.example", ["bo@globex.example"], Direction.OUTBOUND),
        ("ana@acme.example", ["sam@acme.example", "bo@globex.example"], Direction.OUTBOUND),
        ("bo@globex.example", ["ana@acme.example"], Direction.INBOUND),
        ("ana@acme.example", ["sam@eu.acme.example"], Direction.INTERNAL),
        ("ana@notacme.example", ["sam@acme.example"], Direction.INBOUND),
    ],
)
def test_direction_from_internal_domains(sender: str, recipients: list[str], direction: Direction) -> None:
    assert direction_for(sender, recipients, INTERNAL) is direction


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (" Ana.Seller@ACME.example ", "ana.seller@acme.example"),
        ("<bo@globex.example>", "bo@globex.example"),
        ("not an email", None),
        ("a@b", None),
        # As people paste them: a display name, a comment, mailto:, a fully qualified domain.
        ("Dana Diaz <Dana@Buyer.example>", "dana@buyer.example"),
        ('"Diaz, Dana" <dana@buyer.example>', "dana@buyer.example"),
        ("dana@buyer.example (Dana)", "dana@buyer.example"),
        ("mailto:Dana@Buyer.example", "dana@buyer.example"),
        ("dana@buyer.example.", "dana@buyer.example"),
        ("lee+deals@buyer.example", "lee+deals@buyer.example"),
        # Two addresses in one value are not chosen between; a space is not an address.
        ("Dana <dana@buyer.example>, Lee <lee@buyer.example>", None),
        ("dana diaz@buyer.example", None),
    ],
)
def test_emails_are_lower_cased(raw: str, expected: str | None) -> None:
    assert normalize_email(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("buyer.example", "buyer.example"),
        (" Buyer.Example ", "buyer.example"),
        ("https://www.buyer.example/about?x=1", "buyer.example"),
        ("http://buyer.example:8080", "buyer.example"),
        ("www.buyer.example", "buyer.example"),
        ("@buyer.example", "buyer.example"),
        ("sales@buyer.example", "buyer.example"),
        ("*.buyer.example", "buyer.example"),
        ("buyer.example.", "buyer.example"),
        ("eu.buyer.example", "eu.buyer.example"),
        ("www2.buyer.example", "www2.buyer.example"),
        ("buyer.co.uk", "buyer.co.uk"),
        ("Buyer Inc", None),
        ("buyer", None),
        ("https://", None),
        ("", None),
    ],
)
def test_account_domains_are_read_as_the_host_names_of_addresses(raw: str, expected: str | None) -> None:
    assert normalize_domain(raw) == expected


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("(415) 555-2671", "US", "+14155552671"),
        ("020 7183 8750", "GB", "+442071838750"),
        ("+33 6 12 34 56 78", "US", "+33612345678"),
        ("12", "US", None),
        ("client:ana", "US", None),
    ],
)
def test_phones_to_e164(raw: str, region: str, expected: str | None) -> None:
    assert normalize_phone(raw, region) == expected


def test_invalid_phone_is_dropped_when_there_is_an_email() -> None:
    participant = make_participant(
        role=ParticipantRole.CALLEE, field="to", region="US", email="bo@globex.example", phone="12"
    )
    assert participant == Participant(email="bo@globex.example", role=ParticipantRole.CALLEE)


def test_invalid_phone_alone_is_422_naming_the_field() -> None:
    with pytest.raises(WebhookRejected) as caught:
        make_participant(role=ParticipantRole.CALLEE, field="data.raw_digits", region="US", phone="12")
    assert (caught.value.status_code, caught.value.field) == (422, "data.raw_digits")


@pytest.mark.parametrize(
    ("phone", "region"),
    [
        ("+14155550100", "US"),
        ("(415) 555-0100", "US"),
        ("+14155550100;ext=12", "US"),
        ("+14155550100 x 7", "US"),
        ("030 1234567", "DE"),
        ("anonymous", "US"),
        ("", "US"),
    ],
)
def test_a_phone_alone_is_read_as_every_participant_is_and_the_same_each_time(
    phone: str, region: str
) -> None:
    # A phone alone is remembered (a call's sides come back); with an email it is read afresh.
    expected = _participant(ParticipantRole.CALLER, "From", region, None, phone, None, None, None)
    for _ in range(2):
        assert (
            make_participant(role=ParticipantRole.CALLER, field="From", region=region, phone=phone)
            == expected
        )
    other_side = make_participant(role=ParticipantRole.CALLEE, field="To", region=region, phone=phone)
    assert other_side is None or other_side.role is ParticipantRole.CALLEE


def test_a_phone_alone_that_is_refused_is_refused_each_time_naming_its_field() -> None:
    for field in ("From", "From", "To"):
        with pytest.raises(WebhookRejected) as caught:
            make_participant(role=ParticipantRole.CALLER, field=field, region="US", phone="12")
        assert (caught.value.status_code, caught.value.field) == (422, field)


def test_times_become_aware_utc() -> None:
    expected = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
    assert parse_iso_datetime("2026-11-24T10:00:00+01:00", "f") == expected
    assert parse_iso_datetime("2026-11-24T09:00:00.0000000Z", "f") == expected
    assert parse_iso_datetime("2026-11-24T09:00:00.0000000", "f", assume_utc=True) == expected
    assert parse_rfc2822("Tue, 24 Nov 2026 04:00:00 -0500", "f") == expected
    with pytest.raises(WebhookRejected):
        parse_iso_datetime("2026-11-24T09:00:00", "f")
    with pytest.raises(WebhookRejected):
        parse_iso_datetime("1900-01-01T00:00:00Z", "f")


@pytest.mark.parametrize(
    ("parse", "raw"),
    [
        (parse_iso_datetime, "0001-01-01T00:00:00+14:00"),
        (parse_iso_datetime, "9999-12-31T23:59:59.999999-14:00"),
        (parse_rfc2822, "Fri, 31 Dec 9999 23:59:59 -1400"),
    ],
)
def test_a_time_without_a_utc_value_is_422_naming_the_field(
    parse: Callable[[str, str], datetime], raw: str
) -> None:
    # Valid ISO 8601 / RFC 2822, but outside what a datetime holds once in UTC: was an OverflowError (500).
    with pytest.raises(WebhookRejected) as caught:
        parse(raw, "LastModifiedDate")
    assert (caught.value.status_code, caught.value.field, caught.value.reason) == (
        422,
        "LastModifiedDate",
        "date-time out of range",
    )


@pytest.mark.parametrize("raw", ["Mon, 01 Jan 0001 00:00:00 +0000", "Tue, 24 Nov 0026 04:00:00 -0500"])
def test_an_rfc_2822_year_written_with_leading_zeros_is_out_of_range(raw: str) -> None:
    # The standard library reads years under 100 as 19xx/20xx: "0001" was taken for 2001.
    with pytest.raises(WebhookRejected) as caught:
        parse_rfc2822(raw, "Timestamp")
    assert (caught.value.status_code, caught.value.field, caught.value.reason) == (
        422,
        "Timestamp",
        "date-time out of range",
    )
    # The obsolete two-digit year still means 20xx, as RFC 5322 says.
    assert parse_rfc2822("Tue, 24 Nov 26 09:00:00 +0000", "f") == datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize("source", ["aircall", "zoom", "hubspot", "gmail", "salesforce", "twilio"])
def test_oversized_body_is_413(source: str) -> None:
    body = b" " * (2 * 1024 * 1024 + 1)
    with pytest.raises(WebhookRejected) as caught:
        ADAPTERS[source].parse(make_request(body), CONFIG)
    assert (caught.value.status_code, caught.value.field) == (413, "body")


def test_an_internationalised_domain_has_one_form_in_emails_and_account_domains() -> None:
    for written in ("jo@xn--bcher-kva.example", "Jo@XN--BCHER-KVA.example", "jo@bu\u0308cher.example"):
        assert lower_email(written) == "jo@bücher.example"
        assert normalize_email(f"Jo <{written}>") == "jo@bücher.example"
    assert normalize_domain("https://www.xn--bcher-kva.example/") == "bücher.example"
    # Nothing to read: the very object back (no copy per address); a bad IDNA label is kept as sent.
    plain = "acme.example"
    assert unicode_domain(plain) is plain
    assert unicode_domain("xn--zz.example") == "xn--zz.example"


def test_a_display_name_written_last_first_is_a_name_not_a_second_address() -> None:
    assert normalize_email("Diaz, Dana <Dana@Buyer.example>") == "dana@buyer.example"
    assert normalize_email("dana@buyer.example, bo@buyer.example") is None


def test_an_accounts_domains_listed_in_one_value_are_each_read() -> None:
    assert normalize_domains("buyer.example, https://www.buyer.co.uk/;buyer.de") == (
        "buyer.example",
        "buyer.co.uk",
        "buyer.de",
    )
    assert normalize_domains("www.buyer.example") == ("buyer.example",)
    assert normalize_domains("Buyer Inc") == ()
    assert normalize_domains("buyer.example, not a domain") == ()


@pytest.mark.parametrize(
    ("address", "bot"),
    [
        ("fred@fireflies.ai", True),
        ("FRED@Fireflies.ai", True),
        # Gong's assistant: one address per customer, all at assistant.gong.io.
        ("acme@assistant.gong.io", True),
        ("globex-corp@assistant.gong.io", True),
        # People at those vendors, and look-alikes, are people.
        ("kim@fireflies.ai", False),
        ("ana@gong.io", False),
        ("bo@assistant.gong.io.example", False),
        ("otter@globex.example", False),
    ],
)
def test_meeting_notetakers_invited_by_address_are_no_people(address: str, bot: bool) -> None:
    assert is_not_a_person(address) is bot


#: What ``is_decorated_email`` finds, as one regular expression (its first form).
DECORATED_EMAIL = re.compile(r"[\s<>\"(),;]|^mailto:|\.$")


def test_a_decorated_address_is_what_one_regular_expression_finds() -> None:
    """Every character to U+3000 (Unicode spaces, the line and paragraph separators, the
    separators' look-alikes) at the start, inside and at the end, and the edge cases of ``^`` and
    ``$`` (a trailing newline, ``mailto`` without its colon or in capitals)."""
    values = [
        "",
        ".",
        "bo@buyer.example",
        "bo@buyer.example.",
        "bo@buyer.example.\n",
        "bo@buyer.example\n",
        "mailto:bo@buyer.example",
        "MAILTO:bo@buyer.example",
        "mailto",
        "xmailto:bo@buyer.example",
        "Bo <bo@buyer.example>",
        "bo@buyer.example (Bo)",
        '"Diaz, Dana" <dana@buyer.example>',
        "a;b@buyer.example",
        "ana.lopez@buyer.example",
    ]
    for code in range(0x3001):
        c = chr(code)
        values += [f"{c}bo@buyer.example", f"bo{c}@buyer.example", f"bo@buyer.example{c}", c]
    decorated = [v for v in values if DECORATED_EMAIL.search(v) is not None]
    assert [v for v in values if is_decorated_email(v)] == decorated
    assert len(decorated) > 100  # spaces, brackets, separators, mailto: and trailing dots


def test_not_a_person_is_what_the_domain_rules_say_of_every_shape_of_address() -> None:
    """One ``endswith`` and one lookup give what the rules give one by one: a calendar
    resource's suffix, a notetaker's address, an address at (a subdomain of) a notetaker's or a
    CRM's logging domain, for look-alikes, values without ``@`` or with several, capitals."""

    def by_the_rules(address: str) -> bool:
        lowered = address.lower()
        return (
            lowered.endswith(CALENDAR_RESOURCE_SUFFIXES)
            or lowered in MEETING_NOTETAKERS
            or domain_matches(email_domain(lowered), MEETING_NOTETAKER_DOMAINS)
            or is_crm_logging_mailbox(address)
        )

    domains = [
        *MEETING_NOTETAKER_DOMAINS,
        *CRM_LOGGING_DOMAINS,
        *(suffix.removeprefix("@") for suffix in CALENDAR_RESOURCE_SUFFIXES),
        "fireflies.ai",
        "gong.io",
        "hubspot.com",
        "salesforce.com",
        "buyer.example",
    ]
    shapes = shapes_around(domains)
    shapes += ["fred@fireflies.ai", "FRED@FIREFLIES.AI", "fred@fireflies.ai.example", "", "@", "bo@"]
    found = [a for a in shapes if is_not_a_person(a)]
    assert found == [a for a in shapes if by_the_rules(a)]
    assert 50 < len(found) < len(shapes) - 50
