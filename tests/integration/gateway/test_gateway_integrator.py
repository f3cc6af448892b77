"""The integrator's view: what the system knows of the CRM, page by page, and when synced data is visible."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.settings import DatabaseSettings, KafkaSettings
from libs.common.tenancy import create_tenant
from libs.common.testing.stack import TEST_SECRET_KEY, in_process_stack
from tests.integration.crm_support import ana_on_team_a
from tests.integration.polling import poll_json

from .gateway_support import bearer

T0 = "2026-11-02T15:00:00Z"
CRM = {
    "source": "test",
    "entities": [
        *ana_on_team_a(with_phone=False),
        *(
            {
                "entity_type": "account",
                "id": f"acc-{n}",
                "name": f"Buyer {n}",
                "domains": [f"b{n}.example"],
                "updated_at": T0,
                **typed,
            }
            for n, typed in (
                (1, {}),
                # A reseller: partner, read from the CRM's type.
                (2, {"account_type": "Channel Partner / Reseller"}),
                # A relationship sent is kept whatever the type says.
                (3, {"account_type": "Reseller", "relationship": "Customer"}),
            )
        ),
        *(
            {
                "entity_type": "contact",
                "id": f"con-{n}",
                "name": f"Bo {n}",
                "emails": [f"bo@b{n}.example"],
                "account_id": f"acc-{n}",
                "updated_at": T0,
            }
            for n in (1, 2)
        ),
        *(
            {
                "entity_type": "deal",
                "id": f"deal-{n}",
                "name": f"Deal {n}",
                "account_id": f"acc-{n}",
                "owner_rep_id": "rep-1",
                "stage": "proposal",
                "created_at": "2026-10-01T00:00:00Z",
                "updated_at": T0,
            }
            for n in (1, 2, 3)
        ),
    ],
}


def _email(n: int) -> dict[str, Any]:
    return {
        "source": "mail",
        "external_id": f"m-{n}",
        "kind": "email",
        "direction": "outbound",
        "outcome": "sent",
        "occurred_at": f"2026-11-0{n}T16:00:00Z",
        "participants": [
            {"email": "ana@seller.example", "role": "from"},
            {"email": f"bo@b{1 + n % 2}.example", "role": "to"},
        ],
    }


async def _pages(client: httpx.AsyncClient, url: str, key: str, id_field: str) -> list[str]:
    ids: list[str] = []
    cursor = None
    while True:
        answer = await client.get(
            url, params={"limit": 2, **({"cursor": cursor} if cursor else {})}, headers=bearer(key)
        )
        assert answer.status_code == 200, answer.text
        ids += [item[id_field] for item in answer.json()["items"]]
        cursor = answer.json()["next_cursor"]
        if cursor is None:
            return ids


async def test_a_sync_job_sees_when_its_data_is_visible_and_reads_the_crm_back(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    async with db_engine.begin() as conn:
        keys: dict[str, str] = (await create_tenant(conn, "acme", TEST_SECRET_KEY))["api_keys"]  # type: ignore[assignment]
        other: dict[str, str] = (await create_tenant(conn, "globex", TEST_SECRET_KEY))["api_keys"]  # type: ignore[assignment]
    async with in_process_stack(kafka_settings, database_settings) as stack:
        synced = await stack.ingest.post("/v1/crm/sync", json=CRM, headers=bearer(keys["ingest"]))
        assert synced.status_code == 202, synced.text
        posted = await stack.ingest.post(
            "/v1/events",
            json={"activities": [_email(n) for n in range(1, 6)]},
            headers=bearer(keys["ingest"]),
        )
        assert posted.status_code == 202, posted.text

        status = await poll_json(
            stack.gateway,
            "/v1/pipeline/status",
            bearer(keys["read"]),
            lambda s: s["up_to_date"] and s["crm"]["deals"] == 3 and s["stages"][2]["processed"] == 5,
        )
        assert [
            (s["stage"], s["processed"], s["pending"], s["oldest_pending_seconds"]) for s in status["stages"]
        ] == [
            ("ingest", 5, 0, 0.0),
            ("attribution", 5, 0, 0.0),
            ("metrics", 5, 0, 0.0),
        ], status
        assert status["read_models_dirty_since"] is None
        crm = status["crm"]
        assert (crm["reps"], crm["teams"], crm["accounts"], crm["contacts"], crm["deals"]) == (1, 1, 3, 2, 3)
        # Up to date means visible: the rep's scores count every activity.
        scores = await stack.gateway.get(
            "/v1/reps/rep-1/scores?granularity=quarter", headers=bearer(keys["read"])
        )
        assert sum(p["counts"]["activities"] for p in scores.json()["periods"]) == 5

        gateway = stack.gateway
        assert await _pages(gateway, "/v1/accounts", keys["read"], "account_id") == [
            "acc-1",
            "acc-2",
            "acc-3",
        ]
        accounts = (await gateway.get("/v1/accounts", headers=bearer(keys["read"]))).json()["items"]
        assert [(a["account_id"], a["relationship"], a["account_type"]) for a in accounts] == [
            ("acc-1", None, None),
            ("acc-2", "partner", "Channel Partner / Reseller"),
            ("acc-3", "customer", "Reseller"),
        ]
        partners = await gateway.get("/v1/accounts?relationship=partner", headers=bearer(keys["read"]))
        assert partners.json() == {
            "items": [
                {
                    "account_id": "acc-2",
                    "name": "Buyer 2",
                    "domains": ["b2.example"],
                    "updated_at": T0,
                    "relationship": "partner",
                    "account_type": "Channel Partner / Reseller",
                }
            ],
            "next_cursor": None,
        }
        customers = await gateway.get("/v1/accounts?relationship=customer", headers=bearer(keys["read"]))
        assert [a["account_id"] for a in customers.json()["items"]] == ["acc-3"]
        reseller = await gateway.get("/v1/accounts?relationship=reseller", headers=bearer(keys["read"]))
        assert reseller.status_code == 422
        assert reseller.json()["errors"] == [
            {
                "in": "query",
                "field": "relationship",
                "reason": "Input should be 'customer', 'prospect', 'partner', 'vendor' or 'other'",
            }
        ]
        assert await _pages(gateway, "/v1/contacts", keys["read"], "contact_id") == ["con-1", "con-2"]
        assert await _pages(gateway, "/v1/deals", keys["read"], "deal_id") == ["deal-1", "deal-2", "deal-3"]
        only = (await gateway.get("/v1/deals?account_id=acc-2", headers=bearer(keys["read"]))).json()["items"]
        assert [(d["deal_id"], d["owner_rep_id"], d["is_closed"]) for d in only] == [
            ("deal-2", "rep-1", False)
        ]
        contacts = (await gateway.get("/v1/contacts?account_id=acc-1", headers=bearer(keys["read"]))).json()[
            "items"
        ]
        assert contacts == [
            {
                "contact_id": "con-1",
                "name": "Bo 1",
                "emails": ["bo@b1.example"],
                "phones": [],
                "phone_extensions": [],
                "account_id": "acc-1",
                "updated_at": "2026-11-02T15:00:00Z",
            }
        ]
        # Another tenant sees nothing of it.
        theirs = (await gateway.get("/v1/pipeline/status", headers=bearer(other["read"]))).json()
        assert [s["processed"] for s in theirs["stages"]] == [0, 0, 0]
        assert (await gateway.get("/v1/accounts", headers=bearer(other["read"]))).json()["items"] == []
        their_partners = await gateway.get("/v1/accounts?relationship=partner", headers=bearer(other["read"]))
        assert their_partners.json()["items"] == []
