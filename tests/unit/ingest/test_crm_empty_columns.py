"""A CRM export's empty columns and placeholders through ``POST /v1/crm/sync``'s reading
(``handlers.parse_crm_sync`` then ``crm_sync.read_entities``): an optional field sent ``null`` or
blank is absent, an email that is not one is dropped with a warning, the entity accepted; a
required field or a value of the wrong kind is still refused naming the field."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
import pytest

from libs.common.contracts.crm import AccountV1, ContactV1, DealV1, RepV1
from libs.common.web import Problem
from services.ingest import handlers
from services.ingest.domain.crm_sync import read_entities

AT = "2026-11-01T00:00:00Z"


def _read(*entities: dict[str, Any]) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    body = orjson.dumps({"entities": [{"updated_at": AT, **e} for e in entities]})
    read, warnings = read_entities(handlers.parse_crm_sync(body).entities, "US")
    return (
        [e.model_dump(mode="json", exclude={"updated_at"}, exclude_defaults=True) for e in read],
        [(w.field, w.reason) for w in warnings],
    )


def test_optional_fields_sent_null_or_blank_are_absent() -> None:
    read, warnings = _read(
        {
            "entity_type": "rep",
            "id": "r",
            "name": None,
            "manager_id": "",
            "role": " ",
            "emails": None,
            "email_change": "",
        },
        {"entity_type": "account", "id": "a", "name": None, "domains": None, "merged_into": ""},
        {
            "entity_type": "contact",
            "id": "c",
            "account_id": "",
            "phones": None,
            "emails": ["bo@buyer.example"],
        },
        {
            "entity_type": "deal",
            "id": "d",
            "account_id": " ",
            "owner_rep_id": "",
            "stage": None,
            "amount": "",
            "is_closed": None,
            "is_won": None,
            "created_at": "2026-10-01",
            "closed_at": "",
            "contacts": [{"contact_id": "c", "role": None}],
        },
        {"entity_type": "team", "id": "t", "parent_id": ""},
        {
            "entity_type": "team_membership",
            "id": "m",
            "rep_id": "r",
            "team_id": "t",
            "valid_from": "2026-01-01",
            "valid_to": "",
        },
    )
    assert read == [
        {"id": "r"},
        {"id": "a"},
        {"id": "c", "emails": ["bo@buyer.example"]},
        {
            "id": "d",
            "created_at": "2026-10-01T00:00:00Z",
            "contacts": [{"contact_id": "c"}],
        },
        {"id": "t"},
        {
            "id": "m",
            "rep_id": "r",
            "team_id": "t",
            "valid_from": "2026-01-01",
        },
    ]
    assert warnings == []


def test_numeric_ids_are_their_text_and_a_bare_value_of_a_list_is_a_list_of_one() -> None:
    read, warnings = _read(
        {
            "entity_type": "contact",
            "id": 123,
            "account_id": 77,
            "emails": "Bo <bo@buyer.example>",
            "phones": "(415) 555-0100",
        },
        {"entity_type": "account", "id": 77, "domains": "buyer.example, buyer.co.uk"},
        {
            "entity_type": "deal",
            "id": 5,
            "owner_rep_id": 3,
            "created_at": "2026-10-01",
            "contacts": [{"contact_id": 123}],
        },
    )
    assert read == [
        {
            "id": "123",
            "account_id": "77",
            "emails": ["bo@buyer.example"],
            "phones": ["+14155550100"],
            "raw_phones": ["(415) 555-0100"],
        },
        {"id": "77", "domains": ["buyer.example", "buyer.co.uk"]},
        {
            "id": "5",
            "owner_rep_id": "3",
            "created_at": "2026-10-01T00:00:00Z",
            "contacts": [{"contact_id": "123"}],
        },
    ]
    assert warnings == []


def test_an_entity_without_its_kind_is_refused_naming_the_kinds() -> None:
    with pytest.raises(Problem) as caught:
        _read({"id": "x"}, {"entity_type": "company", "id": "y"}, {"entity_type": "contact", "id": True})
    assert [(e["field"], e["reason"]) for e in caught.value.errors] == [
        ("entities.0", "entity_type is required: rep, team, team_membership, account, contact or deal"),
        (
            "entities.1",
            "Input tag 'company' found using 'entity_type' does not match any of the expected tags: "
            "'rep', 'team', 'team_membership', 'account', 'contact', 'deal'",
        ),
        ("entities.2.contact.id", "Input should be a valid string"),
    ]


def test_a_deal_whose_flags_are_null_is_read_from_its_stage() -> None:
    (deal,), _ = _read(
        {
            "entity_type": "deal",
            "id": "d",
            "stage": "Closed Won",
            "is_closed": None,
            "created_at": "2026-10-01",
        }
    )
    assert (deal["is_closed"], deal["is_won"], deal["closed_at"]) == (True, True, AT)


def test_a_deal_sent_won_without_is_closed_is_closed_and_one_sent_won_and_open_is_refused() -> None:
    (deal,), _ = _read({"entity_type": "deal", "id": "d", "is_won": True, "created_at": "2026-10-01"})
    assert (deal["is_closed"], deal["is_won"], deal["closed_at"]) == (True, True, AT)
    (deal,), _ = _read(
        {"entity_type": "deal", "id": "d", "is_won": True, "is_closed": None, "created_at": "2026-10-01"}
    )
    assert (deal["is_closed"], deal["is_won"]) == (True, True)
    with pytest.raises(Problem) as caught:
        _read(
            {"entity_type": "deal", "id": "d", "is_won": True, "is_closed": False, "created_at": "2026-10-01"}
        )
    assert [(e["field"], e["reason"]) for e in caught.value.errors] == [
        ("entities.0.deal", "Value error, a won deal must be closed")
    ]


def test_an_email_that_is_not_one_is_dropped_with_a_warning_and_its_entity_accepted() -> None:
    read, warnings = _read(
        {"entity_type": "contact", "id": "c", "emails": ["N/A", "", "Bo@Buyer.example", "none"]},
        {"entity_type": "rep", "id": "r", "emails": ["-", "ana@seller.example"]},
    )
    assert [e["emails"] for e in read] == [["bo@buyer.example"], ["ana@seller.example"]]
    assert warnings == [
        ("entities.0.emails.0", "not an email address; it was dropped, the contact accepted"),
        ("entities.0.emails.1", "not an email address; it was dropped, the contact accepted"),
        ("entities.0.emails.3", "not an email address; it was dropped, the contact accepted"),
        ("entities.1.emails.0", "not an email address; it was dropped, the rep accepted"),
    ]


def test_several_emails_in_one_value_are_each_the_records() -> None:
    read, warnings = _read(
        {
            "entity_type": "contact",
            "id": "c",
            "emails": [
                "bo@buyer.example; Bo Li <Bo.Li@Buyer.example>",
                "Diaz, Dana <dana@buyer.example>",
                "n/a; none",
            ],
        }
    )
    assert read[0]["emails"] == ["bo@buyer.example", "bo.li@buyer.example", "dana@buyer.example"]
    assert warnings == [("entities.0.emails.2", "not an email address; it was dropped, the contact accepted")]


@pytest.mark.parametrize(
    ("entity", "field", "reason"),
    [
        (
            {"entity_type": "contact", "id": ""},
            "entities.0.contact.id",
            "String should have at least 1 character",
        ),
        ({"entity_type": "contact", "id": None}, "entities.0.contact.id", "Input should be a valid string"),
        (
            {"entity_type": "deal", "id": "d", "created_at": ""},
            "entities.0.deal.created_at",
            "Input should be a valid datetime or date, input is too short",
        ),
        (
            {"entity_type": "deal", "id": "d", "created_at": "2026-10-01", "amount": "$12,000"},
            "entities.0.deal.amount",
            "must be a number such as 12000.50 (no currency, no thousands separator)",
        ),
        (
            {"entity_type": "deal", "id": "d", "created_at": "2026-10-01T09:00:00"},
            "entities.0.deal.created_at",
            "must carry a timezone offset (2026-11-02T10:00:00Z or 2026-11-02T10:00:00+01:00)",
        ),
        (
            {"entity_type": "deal", "id": "d", "created_at": "2026-10-01", "contacts": [{"contact_id": ""}]},
            "entities.0.deal.contacts.0.contact_id",
            "String should have at least 1 character",
        ),
        (
            {"entity_type": "rep", "id": "r", "emails": ["ana@seller.example"], "email_change": "typo"},
            "entities.0.rep.email_change",
            "Input should be 'rename' or 'correction'",
        ),
    ],
)
def test_a_required_field_blank_or_a_value_of_the_wrong_kind_is_refused_naming_it(
    entity: dict[str, Any], field: str, reason: str
) -> None:
    with pytest.raises(Problem) as caught:
        _read(entity)
    assert caught.value.status == 422
    assert [(e["field"], e["reason"]) for e in caught.value.errors] == [(field, reason)]


def test_the_published_entities_are_the_contracts_own() -> None:
    """What ingest publishes reads back the same (the consumer's side of the contract)."""
    read, _ = _read(
        {"entity_type": "contact", "id": "c", "account_id": "", "emails": ["N/A", "Bo <Bo@Buyer.example>"]},
        {
            "entity_type": "deal",
            "id": "d",
            "amount": "12000.50",
            "owner_rep_id": "",
            "created_at": "2026-10-01",
        },
    )
    contact = ContactV1.model_validate({**read[0], "updated_at": AT})
    deal = DealV1.model_validate({**read[1], "updated_at": AT})
    assert (contact.emails, contact.account_id) == (("bo@buyer.example",), None)
    assert (deal.amount, deal.owner_rep_id, deal.created_at) == (
        Decimal("12000.50"),
        None,
        datetime(2026, 10, 1, tzinfo=UTC),
    )
    assert RepV1.model_validate({"id": "r", "updated_at": AT, "emails": ["Ana@Seller.example"]}).emails == (
        "ana@seller.example",
    )
    assert AccountV1.model_validate({"id": "a", "updated_at": AT, "domains": None}).domains == ()


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        (0.1 + 0.2, Decimal("0.300000")),
        ("19999.990000000002", Decimal("19999.990000")),
        (" 7.0000015 ", Decimal("7.000002")),
        ("12000.50", Decimal("12000.50")),
        (12000, Decimal(12000)),
    ],
)
def test_an_amount_finer_than_the_millionth_is_rounded_to_it(sent: Any, stored: Decimal) -> None:
    """A script's or spreadsheet's float is the money it meant, not a 422 for the whole batch."""
    (deal,), _ = _read({"entity_type": "deal", "id": "d", "created_at": "2026-10-01", "amount": sent})
    assert DealV1.model_validate({**deal, "updated_at": AT}).amount == stored
    assert str(DealV1.model_validate({**deal, "updated_at": AT}).amount) == str(stored)


@pytest.mark.parametrize(
    ("sent", "reason"),
    [
        ("12 000 EUR", "must be a number such as 12000.50 (no currency, no thousands separator)"),
        ("NaN", "Input should be a finite number"),
        ("1e16", "Input should be less than or equal to 1000000000000000"),
        ("1e-400", "Decimal input should have no more than 6 decimal places"),
        ("0.0000004", "Decimal input should have no more than 6 decimal places"),
    ],
)
def test_an_amount_that_is_not_one_is_refused_naming_it(sent: str, reason: str) -> None:
    with pytest.raises(Problem) as caught:
        _read({"entity_type": "deal", "id": "d", "created_at": "2026-10-01", "amount": sent})
    assert [(e["field"], e["reason"]) for e in caught.value.errors] == [("entities.0.deal.amount", reason)]
