"""A manual override travels gateway -> broker -> attribution and reads back as a sticky version."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.settings import DatabaseSettings, KafkaSettings
from libs.common.tenancy import create_tenant
from libs.common.testing.stack import TEST_SECRET_KEY, in_process_stack
from tests.integration.crm_support import ana_on_team_a, buyer_account, email_from_ana
from tests.integration.polling import poll_json, references_landed

from .gateway_support import bearer

T0 = "2026-11-02T15:00:00Z"

CRM: dict[str, Any] = {
    "source": "test",
    "entities": [
        *ana_on_team_a(with_phone=False),
        buyer_account(),
        {
            "entity_type": "contact",
            "id": "con-1",
            "emails": ["bo@buyer.example"],
            "account_id": "acc-1",
            "updated_at": T0,
        },
        *(
            {
                "entity_type": "deal",
                "id": deal_id,
                "name": deal_id,
                "account_id": "acc-1",
                "owner_rep_id": "rep-1",
                "stage": "proposal",
                "created_at": "2026-10-01T00:00:00Z",
                "updated_at": T0,
                "contacts": [{"contact_id": "con-1", "role": "champion"}] if deal_id == "deal-1" else [],
            }
            for deal_id in ("deal-1", "deal-2")
        ),
    ],
}

EMAIL = email_from_ana("m-1")


async def _poll(client: httpx.AsyncClient, url: str, key: str, done: Callable[[Any], bool]) -> Any:
    return await poll_json(client, url, bearer(key), done, 60)


async def test_override_is_applied_by_attribution_and_visible_in_the_activity(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    async with db_engine.begin() as conn:
        tenant = await create_tenant(conn, "acme", TEST_SECRET_KEY)
    keys: dict[str, str] = tenant["api_keys"]  # type: ignore[assignment]
    # The deal timeline reads the metrics service's engagement rows, so metrics runs too.
    services = ("ingest", "attribution", "metrics", "gateway")
    async with in_process_stack(kafka_settings, database_settings, services=services) as stack:
        crm = await stack.ingest.post("/v1/crm/sync", json=CRM, headers=bearer(keys["ingest"]))
        assert crm.status_code == 202, crm.text
        await references_landed(db_engine, "acme", CRM["entities"])
        posted = await stack.ingest.post(
            "/v1/events", json={"activities": [EMAIL]}, headers=bearer(keys["ingest"])
        )
        assert posted.status_code == 202, posted.text
        listed = await _poll(
            stack.gateway, "/v1/activities", keys["read"], lambda b: b["items"] and b["items"][0]["status"]
        )
        activity_id = listed["items"][0]["activity_id"]
        before = (
            await stack.gateway.get(f"/v1/activities/{activity_id}", headers=bearer(keys["read"]))
        ).json()
        assert before["attribution"]["deal_id"] == "deal-1"
        assert before["attribution"]["is_override"] is False

        override = await stack.gateway.put(
            f"/v1/activities/{activity_id}/attribution",
            json={"deal_id": "deal-2", "reason": "about the expansion"},
            headers=bearer(keys["admin"]),
        )
        assert override.status_code == 202, override.text
        pending = override.json()
        assert pending["state"] == "pending"
        assert pending["deal_id"] == "deal-2"
        assert pending["set_by"] == "_".join(keys["admin"].split("_")[:3])
        audited = await stack.gateway.get(
            "/v1/audit", params={"action": "attribution.overridden"}, headers=bearer(keys["admin"])
        )
        [entry] = audited.json()["items"]
        assert entry["actor"] == pending["set_by"]
        assert entry["credential"] == "api_key"
        assert entry["target"] == f"activity:{activity_id}"
        assert entry["before"] == {
            "version": before["attribution"]["version"],
            "status": before["attribution"]["status"],
            "deal_id": "deal-1",
            "rep_id": before["attribution"]["rep_id"],
            "account_id": before["attribution"]["account_id"],
        }
        assert entry["after"] == {
            "deal_id": "deal-2",
            "rep_id": None,
            "account_id": None,
            "reason": "about the expansion",
        }

        after = await _poll(
            stack.gateway,
            f"/v1/activities/{activity_id}",
            keys["read"],
            lambda b: b["attribution"]["is_override"],
        )
        assert after["attribution"]["deal_id"] == "deal-2"
        assert after["attribution"]["version"] == before["attribution"]["version"] + 1
        assert [h["deal_id"] for h in after["history"]][-2:] == ["deal-1", "deal-2"]
        assert after["override"]["reason"] == "about the expansion"
        timeline = await _poll(
            stack.gateway, "/v1/deals/deal-2/activities", keys["read"], lambda b: len(b["items"]) == 1
        )
        assert timeline["items"][0]["is_override"] is True
