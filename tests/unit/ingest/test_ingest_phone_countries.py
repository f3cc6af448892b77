"""A CRM contact's phones read in its country, then its account's, then the tenant's region."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from libs.common.contracts.crm import AccountV1, ContactV1, CrmEntity, RepV1
from libs.common.phones import ParsedPhone, PhoneProblem, RefusedPhone, parse_phone_in
from services.ingest.domain.countries import contact_phone_regions, country_code, phone_regions_of
from services.ingest.domain.crm_sync import (
    EntityWarning,
    accounts_to_look_up,
    accounts_with_new_country,
    contacts_read_again,
    contacts_read_in_new_region,
    read_entities,
)
from services.ingest.domain.normalize import read_phones
from services.ingest.domain.webhooks import ADAPTERS

from .ingest_webhook_helpers import CONFIG, dumps, fixture, fixture_json, make_request

T0 = datetime(2026, 11, 1, tzinfo=UTC)
UK_LINE = "020 7946 0958"


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("GB", "GB"),
        ("gb", "GB"),
        ("GBR", "GB"),
        ("United Kingdom", "GB"),
        ("  united kingdom ", "GB"),
        ("UK", "GB"),
        ("U.K.", "GB"),
        ("England", "GB"),
        ("Great Britain", "GB"),
        ("United States", "US"),
        ("United States of America", "US"),
        ("USA", "US"),
        ("U.S.A.", "US"),
        ("US", "US"),
        ("Germany", "DE"),
        ("DEU", "DE"),
        ("Korea, Republic of", "KR"),  # Salesforce's picklist spells ISO's name
        ("South Korea", "KR"),
        ("Russia", "RU"),
        ("Kosovo", "XK"),
        # A dot after a word is no abbreviation's: the name's words stay apart.
        ("St. Kitts and Nevis", "KN"),
        ("St Lucia", "LC"),
        ("St. Vincent and the Grenadines", "VC"),
        ("U.S. Virgin Islands", "VI"),
        ("Virgin Islands, U.S.", "VI"),
        ("U. S. A.", "US"),
        ("u.k.", "GB"),
    ],
)
def test_countries_are_read_as_crms_hold_them(raw: str, code: str) -> None:
    assert country_code(raw) == code


@pytest.mark.parametrize("raw", ["", "N/A", "Europe", "Atlantis", "826", "ZZ", "Antarctica", "x" * 65])
def test_a_value_naming_no_country_with_phones_is_unknown(raw: str) -> None:
    assert country_code(raw) is None


def test_regions_are_the_contacts_country_then_its_accounts_then_the_tenants_each_once() -> None:
    assert phone_regions_of("GB", "DE", "US") == ("GB", "DE", "US")
    assert phone_regions_of(None, "DE", "US") == ("DE", "US")
    assert phone_regions_of("US", None, "US") == ("US",)
    assert phone_regions_of(None, None, "US") == ("US",)


def test_a_contacts_regions_take_its_account_as_sent_in_the_batch_else_as_held() -> None:
    """The one rule of CRM sync and the HubSpot and Salesforce adapters."""
    sent: dict[str, str | None] = {"acc-sent": "DE", "acc-none": None}
    held = {"acc-sent": "FR", "acc-none": "FR", "acc-held": "GB"}
    assert contact_phone_regions("IE", "acc-sent", sent, held, "US") == ("IE", "DE", "US")
    assert contact_phone_regions(None, "acc-sent", sent, held, "US") == ("DE", "US")
    # The batch's version states no country: that is the account's country now, not the held one.
    assert contact_phone_regions(None, "acc-none", sent, held, "US") == ("US",)
    assert contact_phone_regions(None, "acc-held", sent, held, "US") == ("GB", "US")
    assert contact_phone_regions(None, "acc-other", sent, held, "US") == ("US",)
    assert contact_phone_regions(None, None, sent, held, "US") == ("US",)


@pytest.mark.parametrize(
    ("raw", "regions", "e164"),
    [
        (UK_LINE, ("GB", "US"), "+442079460958"),
        (UK_LINE, ("DE", "GB", "US"), "+442079460958"),  # no German number: the account's country
        ("030 1234567", ("DE", "US"), "+49301234567"),
        # Written internationally: as written, wherever the contact is.
        ("+1 415 555 0100", ("GB", "US"), "+14155550100"),
        ("0049 30 1234567", ("GB", "US"), "+49301234567"),
        # No number of the contact's country, a valid one of the tenant's: the UK buyer's US
        # mobile, a number dialled from the US with its 011.
        ("(415) 555-0100", ("GB", "US"), "+14155550100"),
        ("011 44 20 7946 0958", ("GB", "US"), "+442079460958"),
    ],
)
def test_a_phone_is_read_in_the_first_region_where_it_is_a_number(
    raw: str, regions: tuple[str, ...], e164: str
) -> None:
    assert parse_phone_in(raw, regions) == ParsedPhone(e164, raw)


def test_a_phone_of_no_region_is_refused_as_the_first_region_reads_it() -> None:
    refused = parse_phone_in("212 555 01", ("GB", "US"))
    assert isinstance(refused, RefusedPhone)
    assert refused.problem is PhoneProblem.INVALID
    assert "no such number in region GB" in refused.reason


def _contact(country: str | None, account_id: str | None = None, *phones: str) -> ContactV1:
    return ContactV1(
        id="con-1", updated_at=T0, phones=phones or (UK_LINE,), account_id=account_id, country=country
    )


def _read(entities: tuple[CrmEntity, ...], stored: dict[str, str] | None = None) -> ContactV1:
    read, _ = read_entities(entities, "US", stored)
    contact = next(e for e in read if isinstance(e, ContactV1))
    return contact


def test_a_contacts_national_phone_is_read_in_its_country_and_the_country_kept_as_its_code() -> None:
    read, warnings = read_entities((_contact("United Kingdom"),), "US")

    assert isinstance(read[0], ContactV1)
    assert (read[0].phones, read[0].raw_phones, read[0].country) == (("+442079460958",), (UK_LINE,), "GB")
    assert warnings == ()


def test_without_a_country_of_its_own_a_contact_is_read_in_its_accounts_as_sent_else_as_held() -> None:
    in_batch = (AccountV1(id="acc-1", updated_at=T0, country="GBR"), _contact(None, "acc-1"))
    assert _read(in_batch).phones == ("+442079460958",)
    assert _read((_contact(None, "acc-1"),), {"acc-1": "GB"}).phones == ("+442079460958",)
    # The batch's version of the account is its country now: no country there, none held used.
    no_country = (AccountV1(id="acc-1", updated_at=T0), _contact(None, "acc-1"))
    assert _read(no_country, {"acc-1": "GB"}).phones == ()
    # Its own country first.
    assert _read((_contact("DE", "acc-1", "030 1234567"),), {"acc-1": "GB"}).phones == ("+49301234567",)


def test_the_tenants_region_reads_a_contact_without_a_country_and_every_rep() -> None:
    read, warnings = read_entities(
        (_contact(None, None, "(415) 555-0100"), RepV1(id="rep-1", updated_at=T0, phones=(UK_LINE,))),
        "US",
    )

    assert isinstance(read[0], ContactV1)
    assert isinstance(read[1], RepV1)
    assert (read[0].phones, read[0].country) == (("+14155550100",), None)
    assert read[1].phones == ()
    assert [w.field for w in warnings] == ["entities.1.phones.0"]


def test_an_unknown_country_is_dropped_with_a_warning_and_the_next_region_reads_the_phones() -> None:
    entities = (
        AccountV1(id="acc-1", updated_at=T0, country="Atlantis"),
        _contact("Narnia", "acc-1", "(415) 555-0100", UK_LINE),
    )

    read, warnings = read_entities(entities, "US", {"acc-1": "GB"})

    account, contact = read
    assert isinstance(account, AccountV1)
    assert isinstance(contact, ContactV1)
    assert (account.country, contact.country) == (None, None)
    assert (contact.phones, contact.raw_phones) == (("+14155550100",), ("(415) 555-0100",))
    assert warnings == (
        EntityWarning(
            0,
            "entities.0.country",
            "not a country (an ISO 3166 code or an English name); it was dropped, the account "
            "accepted, its contacts' phones read in their own country, else region US",
        ),
        EntityWarning(
            1,
            "entities.1.country",
            "not a country (an ISO 3166 code or an English name); it was dropped, the contact "
            "accepted, its phones read in region US",
        ),
        EntityWarning(
            1,
            "entities.1.phones.1",
            "not a valid number (missing area code, or no such number in region US; an international "
            "number needs its +); the phone was dropped, the contact accepted",
            PhoneProblem.INVALID,
        ),
    )


def test_only_the_accounts_of_contacts_that_need_one_are_looked_up() -> None:
    entities = (
        AccountV1(id="acc-sent", updated_at=T0),
        ContactV1(id="c1", updated_at=T0, phones=(UK_LINE,), account_id="acc-sent"),
        ContactV1(id="c2", updated_at=T0, phones=(UK_LINE,), account_id="acc-held"),
        ContactV1(id="c3", updated_at=T0, phones=(UK_LINE,), account_id="acc-own", country="GB"),
        ContactV1(id="c4", updated_at=T0, phones=(UK_LINE,), account_id="acc-junk", country="Narnia"),
        ContactV1(id="c5", updated_at=T0, account_id="acc-no-phones"),
    )

    assert accounts_to_look_up(entities) == {"acc-held", "acc-junk"}


def _hubspot_contact_and_company(
    contact_country: str | None, company_country: str | None
) -> list[dict[str, Any]]:
    company, _, contact, _ = fixture_json("hubspot", "crm-objects.json")
    contact["properties"]["phone"] = UK_LINE
    if contact_country is not None:
        contact["properties"]["country"] = contact_country
    if company_country is not None:
        company["properties"]["country"] = company_country
    return [company, contact]


@pytest.mark.parametrize(
    ("contact_country", "company_country", "phones", "country"),
    [
        ("United Kingdom", None, ("+442079460958", "+33612345678"), "GB"),
        (None, "GB", ("+442079460958", "+33612345678"), None),
        ("Narnia", None, ("+33612345678",), None),  # unknown: the tenant's US, where it is none
        (None, None, ("+33612345678",), None),
    ],
)
def test_a_hubspot_contact_is_read_in_its_country_then_its_companys_in_the_batch(
    contact_country: str | None, company_country: str | None, phones: tuple[str, ...], country: str | None
) -> None:
    batch = _hubspot_contact_and_company(contact_country, company_country)

    account, contact = ADAPTERS["hubspot"].parse(make_request(dumps(batch)), CONFIG).entities

    assert isinstance(account, AccountV1)
    assert isinstance(contact, ContactV1)
    assert (contact.phones, contact.country) == (phones, country)
    assert account.country == (company_country and "GB")


def _salesforce_message(contact_country: str | None, account_country: str | None) -> bytes:
    body = fixture("salesforce", "Contact.xml").decode().replace("(415) 555-2671", UK_LINE)
    if contact_country is not None:
        body = body.replace(
            "<sf:Phone>", f"<sf:MailingCountry>{contact_country}</sf:MailingCountry><sf:Phone>"
        )
    if account_country is not None:
        account = fixture("salesforce", "Account.xml").decode()
        start, end = (
            account.index("<Notification>"),
            account.index("</Notification>") + len("</Notification>"),
        )
        notification = account[start:end].replace(
            "<sf:Name>", f"<sf:BillingCountry>{account_country}</sf:BillingCountry><sf:Name>"
        )
        body = body.replace("</notifications>", notification + "</notifications>")
    return body.encode()


@pytest.mark.parametrize(
    ("contact_country", "account_country", "phones", "country"),
    [
        ("United Kingdom", None, ("+442079460958",), "GB"),
        ("GBR", "United States", ("+442079460958",), "GB"),
        (None, "UK", ("+442079460958",), None),
        ("Narnia", None, (), None),
        (None, None, (), None),
    ],
)
def test_a_salesforce_contact_is_read_in_its_mailing_country_then_its_accounts_billing_country(
    contact_country: str | None, account_country: str | None, phones: tuple[str, ...], country: str | None
) -> None:
    entities = (
        ADAPTERS["salesforce"]
        .parse(make_request(_salesforce_message(contact_country, account_country)), CONFIG)
        .entities
    )

    contact = entities[0]
    assert isinstance(contact, ContactV1)
    assert (contact.phones, contact.country) == (phones, country)
    accounts = [e.country for e in entities if isinstance(e, AccountV1)]
    assert accounts == ([] if account_country is None else [country_code(account_country)])


def test_a_hubspot_calls_contact_in_the_batch_is_its_participant_by_the_phone_read_in_its_country() -> None:
    call = fixture_json("hubspot", "calls.json")[0]
    del call["properties"]["hs_call_to_number"]
    _, contact = _hubspot_contact_and_company("GB", None)
    del contact["properties"]["mobilephone"]

    (activity,) = ADAPTERS["hubspot"].parse(make_request(dumps([call, contact])), CONFIG).activities

    assert [(p.email, p.phone) for p in activity.participants] == [
        (None, "+16505551234"),
        ("bo.buyer@globex.example", "+442079460958"),
    ]


def test_a_hubspot_calls_contact_whose_phone_lists_two_numbers_is_its_participant_by_the_first() -> None:
    call = fixture_json("hubspot", "calls.json")[0]
    del call["properties"]["hs_call_to_number"]
    _, contact = _hubspot_contact_and_company(None, None)
    contact["properties"]["phone"] = "415-555-0107 / 415-555-0108"
    del contact["properties"]["mobilephone"]

    (activity,) = ADAPTERS["hubspot"].parse(make_request(dumps([call, contact])), CONFIG).activities

    assert [(p.email, p.phone) for p in activity.participants] == [
        (None, "+16505551234"),
        ("bo.buyer@globex.example", "+14155550107"),
    ]


def test_warnings_are_listed_in_the_order_of_the_batch() -> None:
    entities = (
        ContactV1(id="c1", updated_at=T0, emails=("N/A",)),
        AccountV1(id="acc-1", updated_at=T0, country="Atlantis"),
    )

    _, warnings = read_entities(entities, "US")

    assert [w.field for w in warnings] == ["entities.0.emails.0", "entities.1.country"]


def test_a_vendors_contact_without_a_country_is_read_in_its_accounts_country_as_held() -> None:
    """Ingest parses a delivery again with the countries held for its contacts' accounts
    (``TenantWebhookConfig.account_countries``) when the delivery does not carry them."""
    held = replace(CONFIG, account_countries={"5501": "GB", "0015j00000ZkM3hAAF": "GB"})
    _, hubspot_contact = _hubspot_contact_and_company(None, None)
    salesforce_contact = _salesforce_message(None, None)

    read = [
        ADAPTERS["hubspot"].parse(make_request(dumps([hubspot_contact])), config).entities[0]
        for config in (CONFIG, held)
    ]
    read += [
        ADAPTERS["salesforce"].parse(make_request(salesforce_contact), c).entities[0] for c in (CONFIG, held)
    ]

    assert [e.phones for e in read if isinstance(e, ContactV1)] == [
        ("+33612345678",),
        ("+442079460958", "+33612345678"),
        (),
        ("+442079460958",),
    ]
    assert [e.country for e in read if isinstance(e, ContactV1)] == [None, None, None, None]
    # The delivery's own account wins over the one held: read in Germany, where the number has
    # a full length (valid in no region, it is read as the first region reads it).
    sent_with_it = _salesforce_message(None, "Germany")
    (contact, _) = ADAPTERS["salesforce"].parse(make_request(sent_with_it), held).entities
    assert isinstance(contact, ContactV1)
    assert contact.phones == ("+492079460958",)


def test_an_account_whose_country_is_not_the_one_held_reads_its_contacts_again() -> None:
    """acc-de gains Germany, acc-uk keeps the UK, acc-old's version is older than the one held,
    acc-gone is deleted, acc-new was never held (none before); the last version of each counts."""
    later = datetime(2026, 11, 2, tzinfo=UTC)
    held = {"acc-de": (None, T0), "acc-uk": ("GB", T0), "acc-old": (None, later), "acc-gone": (None, T0)}
    batch: tuple[CrmEntity, ...] = (
        AccountV1(id="acc-de", updated_at=later, country="US"),
        AccountV1(id="acc-de", updated_at=later, country="DE"),
        AccountV1(id="acc-uk", updated_at=later, country="GB"),
        AccountV1(id="acc-old", updated_at=T0, country="FR"),
        AccountV1(id="acc-gone", updated_at=later, country="FR", deleted=True),
        AccountV1(id="acc-new", updated_at=later, country="AT"),
        AccountV1(id="acc-none", updated_at=later),
    )
    assert accounts_with_new_country(batch, held) == {"acc-de": "DE", "acc-new": "AT"}
    # A country removed: read in the tenant's region again.
    assert accounts_with_new_country(batch[2:3], {"acc-uk": ("FR", T0)}) == {"acc-uk": "GB"}
    assert accounts_with_new_country((AccountV1(id="acc-uk", updated_at=later),), held) == {"acc-uk": None}


def test_held_contacts_are_read_again_in_their_accounts_new_country_from_what_they_were_sent_as() -> None:
    """Dana's ``030 1234567`` was read in the US (before the numbering plan refused it there);
    Emil's German line was none there (kept unread);
    Finn's ``+1`` number reads the same anywhere; Gus is of another account."""
    dana = ContactV1(
        id="con-dana",
        updated_at=T0,
        account_id="acc-de",
        phones=("+10301234567",),
        raw_phones=("030 1234567",),
    )
    emil = ContactV1(id="con-emil", updated_at=T0, account_id="acc-de", unread_phones=("089 123456",))
    finn = ContactV1(
        id="con-finn",
        updated_at=T0,
        account_id="acc-de",
        phones=("+14155550100",),
        raw_phones=("+1 415 555 0100",),
    )
    gus = _of_account(dana, "con-gus", "acc-us")
    again = contacts_read_again([dana, emil, finn, gus], {"acc-de": "DE"}, "US")
    assert [(c.id, c.phones, c.raw_phones, c.unread_phones, c.updated_at) for c in again] == [
        ("con-dana", ("+49301234567",), ("030 1234567",), (), T0),
        ("con-emil", ("+4989123456",), ("089 123456",), (), T0),
    ]
    # Back to the tenant's region (the account's country removed): neither is a US number.
    back = contacts_read_again(again, {"acc-de": None}, "US")
    assert [(c.id, c.phones, c.unread_phones) for c in back] == [
        ("con-dana", (), ("030 1234567",)),
        ("con-emil", (), ("089 123456",)),
    ]


def test_a_new_tenant_region_reads_the_unread_numbers_and_keeps_those_read_before() -> None:
    """A UK company's tenant was read as US: Ivy's ``020 7946 0961`` was kept unread beside her US
    mobile, read then. The region becomes GB: the UK number joins her phones, the US mobile stays
    (in GB it is no number: nothing accepted is lost). Jan states France: his London number,
    no number in France nor the US, reads in GB now; Kim's account is in Germany; Lea keeps
    nothing unread."""
    ivy = ContactV1(
        id="con-ivy",
        updated_at=T0,
        phones=("+14155550142",),
        raw_phones=("(415) 555-0142",),
        unread_phones=("020 7946 0961", "ask reception"),
    )
    jan = ContactV1(id="con-jan", updated_at=T0, country="FR", unread_phones=("020 7946 0963",))
    kim = ContactV1(id="con-kim", updated_at=T0, account_id="acc-de", unread_phones=("030 1234567 DW 12",))
    lea = ContactV1(id="con-lea", updated_at=T0, phones=("+442079460962",))
    again, over_limits = contacts_read_in_new_region([ivy, jan, kim, lea], {"acc-de": "DE"}, "GB")
    assert over_limits == ()
    assert [(c.id, c.phones, c.raw_phones, c.unread_phones, c.updated_at) for c in again] == [
        (
            "con-ivy",
            ("+14155550142", "+442079460961"),
            ("(415) 555-0142", "020 7946 0961"),
            (),
            T0,
        ),
        ("con-jan", ("+442079460963",), ("020 7946 0963",), (), T0),
        ("con-kim", ("+4930123456712",), ("030 1234567 DW 12",), (), T0),
    ]
    # Read again in the same region: nothing more to publish.
    assert contacts_read_in_new_region(again, {"acc-de": "DE"}, "GB") == ((), ())
    # Mo lists 50 phones already: one more is past the limit, so he is named and kept as held.
    mo = ContactV1(
        id="con-mo",
        updated_at=T0,
        phones=tuple(f"+1415555{n:04d}" for n in range(50)),
        unread_phones=("020 7946 0964",),
    )
    assert contacts_read_in_new_region([mo, jan], {}, "GB") == (again[1:2], ("con-mo",))


def test_a_field_of_two_uk_numbers_in_a_us_tenant_is_kept_unread_and_read_when_the_region_is_gb() -> None:
    """``020 7946 0954 / 07700 900124`` in a US tenant: refused for the region (the warning names
    it), kept unread; the tenant's region becomes GB: both numbers are read."""
    raw = "020 7946 0954 / 07700 900124"
    read, warnings = read_entities((ContactV1(id="con-1", updated_at=T0, phones=(raw,)),), "US")
    (contact,) = read
    assert isinstance(contact, ContactV1)
    assert (contact.phones, contact.unread_phones) == ((), (raw,))
    assert [(w.field, w.problem, w.reason) for w in warnings] == [
        (
            "entities.0.phones.0",
            PhoneProblem.INVALID,
            "not a valid number (missing area code, or no such number in region US; an international "
            "number needs its +); the phone was dropped, the contact accepted",
        )
    ]
    (again,) = contacts_read_in_new_region([contact], {}, "GB").again
    assert (again.phones, again.raw_phones, again.unread_phones) == (
        ("+442079460954", "+447700900124"),
        (raw, raw),
        (),
    )


def test_a_placeholder_is_dropped_with_a_warning_never_kept_unread_nor_read_in_a_later_country() -> None:
    """A US tenant's contacts with ``123-456-7890``, ``111-111-1111`` or ``000-000-0000``: each
    warned and dropped, none kept unread; when the account later gets GB, DE, IN, BR or AU they
    stay numberless (not ``+441234567890``..., one "number" shared by every such contact). One
    kept unread before (stored earlier) is dropped on its re-read."""
    placeholders = ("123-456-7890", "111-111-1111", "000-000-0000")
    read, warnings = read_entities(tuple(_contact(None, "acc-1", raw) for raw in placeholders), "US")
    assert [(c.phones, c.unread_phones) for c in read if isinstance(c, ContactV1)] == [((), ())] * 3
    assert [(w.field, w.reason) for w in warnings] == [
        (
            f"entities.{i}.phones.0",
            "a placeholder, not a phone number; the phone was dropped, the contact accepted",
        )
        for i in range(3)
    ]
    parked = ContactV1(id="con-old", updated_at=T0, account_id="acc-1", unread_phones=placeholders)
    for country in ("GB", "DE", "IN", "BR", "AU"):
        (again,) = contacts_read_again([parked], {"acc-1": country}, "US")
        assert (again.phones, again.unread_phones) == ((), ())


def test_a_sync_reads_a_contacts_phones_as_a_re_read_does_and_warns_each_value_dropped() -> None:
    """One reading for both (``normalize.read_phones``): what a sync stores is what reading the
    stored values again gives; the sync adds a warning for each value dropped, by position (a
    blank one and a repeated one included)."""
    sent = (
        "415-555-0107 / 415-555-0108",
        "",
        "020 7946 0958",
        "(415) 555-0109 x12",
        "123-456-7890",
        "020 7946 0958",
    )
    contact = ContactV1(id="con-1", updated_at=T0, account_id="acc-1", phones=sent)
    (read,), warnings = read_entities((contact,), "US")
    assert isinstance(read, ContactV1)
    assert (read.phones, read.raw_phones, read.phone_extensions, read.unread_phones) == (
        ("+14155550107", "+14155550108", "+14155550109"),
        ("415-555-0107 / 415-555-0108", "415-555-0107 / 415-555-0108", "(415) 555-0109 x12"),
        ("+14155550109;ext=12",),
        ("020 7946 0958",),
    )
    assert [(w.field, w.problem) for w in warnings] == [
        ("entities.0.phones.1", PhoneProblem.EMPTY),
        ("entities.0.phones.2", PhoneProblem.INVALID),
        ("entities.0.phones.4", PhoneProblem.PLACEHOLDER),
        ("entities.0.phones.5", PhoneProblem.INVALID),
    ]
    # The reading a re-read does (``contacts_read_again``) of the values as sent: the same.
    again = read_phones(sent, "US")
    assert (again.phones, again.raw_phones, again.phone_extensions, again.unread) == (
        read.phones,
        read.raw_phones,
        read.phone_extensions,
        read.unread_phones,
    )


def _of_account(contact: ContactV1, contact_id: str, account_id: str) -> ContactV1:
    return contact.model_copy(update={"id": contact_id, "account_id": account_id})


def test_a_reps_phone_the_region_cannot_read_is_kept_unread_and_read_when_the_region_changes() -> None:
    """A US tenant syncs Ruth, a London seller, with her desk line ``020 7946 0970`` beside her
    US mobile: the line is refused for the region (the warning names it) and kept unread, as a
    contact's (rules 2026.12.40: before, dropped for good). The region becomes GB: the line joins
    her phones, read in the tenant's region (a rep states no country), the mobile stays."""
    sent = RepV1(id="rep-ruth", updated_at=T0, name="Ruth", phones=("(415) 555-0170", "020 7946 0970"))
    read, warnings = read_entities((sent,), "US")
    (ruth,) = read
    assert isinstance(ruth, RepV1)
    assert (ruth.phones, ruth.raw_phones, ruth.unread_phones) == (
        ("+14155550170",),
        ("(415) 555-0170",),
        ("020 7946 0970",),
    )
    assert [(w.field, w.problem) for w in warnings] == [("entities.0.phones.1", PhoneProblem.INVALID)]
    again, over_limits = contacts_read_in_new_region([ruth], {}, "GB")
    assert over_limits == ()
    assert [(r.id, r.phones, r.raw_phones, r.unread_phones, r.updated_at) for r in again] == [
        (
            "rep-ruth",
            ("+14155550170", "+442079460970"),
            ("(415) 555-0170", "020 7946 0970"),
            (),
            T0,
        )
    ]
    assert isinstance(again[0], RepV1)
    # Nothing left unread: read again, nothing to publish.
    assert contacts_read_in_new_region(again, {}, "GB") == ((), ())
