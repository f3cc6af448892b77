"""A CRM record's lists are capped (``LIST_LIMITS``), as sent and once read: a contact listing
120,000 addresses held the shared attribution consumer for seconds. The 422 names the field and
the limit; a record at the limit is accepted whole."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from libs.common.contracts.crm import LIST_LIMITS
from libs.common.web import Problem
from services.ingest import handlers

AT = "2026-11-01T00:00:00Z"


def _sync(entity: dict[str, Any]) -> handlers.ReadCrmSync:
    body = orjson.dumps({"entities": [{"updated_at": AT, **entity}]})
    return handlers.crm_messages(handlers.parse_crm_sync(body), "acme", "US", "")


def _refusal(entity: dict[str, Any]) -> list[dict[str, Any]]:
    with pytest.raises(Problem) as refused:
        _sync(entity)
    assert refused.value.status == 422
    return list(refused.value.errors)


def test_the_limits() -> None:
    assert LIST_LIMITS == {
        "emails": 100,
        "phones": 50,
        "raw_phones": 50,
        "phone_extensions": 50,
        "unread_phones": 50,
        "domains": 200,
        "contacts": 500,
    }


def test_a_record_at_the_limit_is_accepted_whole() -> None:
    read = _sync({"entity_type": "contact", "id": "c", "emails": [f"bo{n}@b.example" for n in range(100)]})
    assert len(read.entities[0].emails) == 100  # type: ignore[union-attr]
    read = _sync({"entity_type": "account", "id": "a", "domains": [f"b{n}.example" for n in range(200)]})
    assert len(read.entities[0].domains) == 200  # type: ignore[union-attr]


def test_a_list_past_its_limit_is_refused_naming_the_field_and_the_limit() -> None:
    assert _refusal(
        {"entity_type": "contact", "id": "c", "emails": [f"bo{n}@b.example" for n in range(120_000)]}
    ) == [
        {
            "in": "body",
            "field": "entities.0.contact.emails",
            "reason": "Tuple should have at most 100 items after validation, not 120000",
        }
    ]
    assert [
        e["field"] for e in _refusal({"entity_type": "rep", "id": "r", "phones": ["+14155550100"] * 51})
    ] == ["entities.0.rep.phones"]


def test_values_listing_several_count_each_once_read() -> None:
    # 60 values (under the limit as sent), 120 addresses once read.
    assert _refusal(
        {
            "entity_type": "contact",
            "id": "c",
            "emails": [f"bo{n}@b.example; li{n}@b.example" for n in range(60)],
        }
    ) == [
        {
            "in": "body",
            "field": "entities.0.contact.emails",
            "reason": "lists 120 values once read (a value may list several); at most 100 are accepted",
        }
    ]
