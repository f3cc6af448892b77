"""A deal's 500-role limit is ingest's (``POST /v1/crm/sync``), not the event's: a deal version
listing more, accepted before the limit and still on ``crm-entity-changed``, decodes."""

from __future__ import annotations

import orjson
import pytest

from libs.common.contracts.crm import CrmEntityChangedV1, DealV1
from libs.common.web import Problem
from services.ingest.handlers import parse_crm_sync

DEAL = {
    "entity_type": "deal",
    "id": "deal-1",
    "created_at": "2026-09-01",
    "updated_at": "2026-09-01T00:00:00Z",
}


def _roles(count: int) -> list[dict[str, str]]:
    return [{"contact_id": f"c-{i}"} for i in range(count)]


def test_a_stored_deal_version_of_501_roles_decodes() -> None:
    event = CrmEntityChangedV1.model_validate(
        {"tenant_id": "acme", "source": "api", "entity": {**DEAL, "contacts": _roles(501)}}
    )
    assert isinstance(event.entity, DealV1)
    assert len(event.entity.contacts) == 501


def test_the_sync_refuses_501_roles_naming_the_deal_and_takes_500() -> None:
    body = {
        "entities": [{**DEAL, "contacts": _roles(500)}, {**DEAL, "id": "deal-2", "contacts": _roles(501)}]
    }
    with pytest.raises(Problem) as refused:
        parse_crm_sync(orjson.dumps(body))
    assert refused.value.status == 422
    assert refused.value.errors == [
        {
            "in": "body",
            "field": "entities.1.deal.contacts",
            "reason": "lists 501 contact roles; at most 500 are accepted",
        }
    ]
    assert len(parse_crm_sync(orjson.dumps({"entities": body["entities"][:1]})).entities) == 1
