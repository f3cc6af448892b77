"""The whole path against the real broker and PostgreSQL: ingest -> attribution -> metrics -> gateway."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.settings import DatabaseSettings, KafkaSettings
from libs.common.tenancy import create_tenant
from libs.common.testing.stack import TEST_SECRET_KEY, in_process_stack
from tests.integration.crm_support import ana_on_team_a, buyer_account, buyer_deal, email_from_ana
from tests.integration.polling import poll_json, references_landed

T0 = "2026-11-02T15:00:00Z"

CRM: dict[str, Any] = {
    "source": "test",
    "entities": [
        *ana_on_team_a(),
        buyer_account(),
        {
            "entity_type": "contact",
            "id": "con-1",
            "emails": ["bo@buyer.example"],
            "phones": ["+12125550100"],
            "account_id": "acc-1",
            "updated_at": T0,
        },
        buyer_deal([{"contact_id": "con-1", "role": "champion"}]),
    ],
}


def _activities() -> list[dict[str, Any]]:
    return [
        email_from_ana("m-1"),
        {
            "source": "dialer",
            "external_id": "c-1",
            "kind": "call",
            "direction": "outbound",
            "outcome": "connected",
            "occurred_at": "2026-11-02T17:00:00Z",
            "duration_seconds": 120,
            "participants": [
                {"phone": "+14155550001", "role": "caller"},
                {"phone": "+12125550100", "role": "callee"},
            ],
        },
        {
            "source": "dialer",
            "external_id": "c-2",
            "kind": "call",
            "direction": "outbound",
            "outcome": "no_answer",
            "occurred_at": "2026-11-02T17:05:00Z",
            "participants": [
                {"phone": "+14155550001", "role": "caller"},
                {"phone": "+12125550100", "role": "callee"},
            ],
        },
    ]


async def _poll(
    client: httpx.AsyncClient, url: str, headers: dict[str, str], done: Any, deadline_s: float = 60
) -> Any:
    return await poll_json(client, url, headers, done, deadline_s)


async def test_activity_posted_to_ingest_is_scored_and_readable_from_the_gateway(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    async with db_engine.begin() as conn:
        tenant = await create_tenant(conn, "acme", TEST_SECRET_KEY)
    keys: dict[str, str] = tenant["api_keys"]  # type: ignore[assignment]
    async with in_process_stack(kafka_settings, database_settings) as stack:
        crm = await stack.ingest.post(
            "/v1/crm/sync", json=CRM, headers={"Authorization": f"Bearer {keys['ingest']}"}
        )
        assert crm.status_code == 202, crm.text
        assert crm.json() == {"accepted": 6, "warnings": []}
        # The reference data first, so that the first version is already attributed.
        await references_landed(db_engine, "acme", CRM["entities"])
        posted = await stack.ingest.post(
            "/v1/events",
            json={"activities": _activities()},
            headers={"Authorization": f"Bearer {keys['ingest']}"},
        )
        assert posted.status_code == 202, posted.text
        assert posted.json()["accepted"] == 3

        body = await _poll(
            stack.gateway,
            "/v1/reps/rep-1/scores?granularity=day",
            {"Authorization": f"Bearer {keys['read']}"},
            lambda b: b["periods"] and b["periods"][0]["counts"]["activities"] == 3,
        )
    [day] = body["periods"]
    assert day["period_start"] == "2026-11-02"
    counts = day["counts"]
    assert counts["dials"] == 2
    assert counts["connects"] == 1
    assert counts["conversations"] == 1
    assert counts["talk_seconds"] == 120
    assert counts["emails_sent"] == 1
    assert counts["meetings_held"] == 0
    # Default model: dial 1, connect 2, conversation 3, email sent 1.
    assert day["score"] == 2 * 1.0 + 2.0 + 3.0 + 1.0


async def test_gateway_refuses_missing_and_wrong_scope_credentials(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    async with db_engine.begin() as conn:
        tenant = await create_tenant(conn, "acme", TEST_SECRET_KEY)
    keys: dict[str, str] = tenant["api_keys"]  # type: ignore[assignment]
    async with in_process_stack(kafka_settings, database_settings, services=("ingest", "gateway")) as stack:
        missing = await stack.gateway.get("/v1/reps/rep-1/scores")
        assert missing.status_code == 401
        assert missing.headers["content-type"] == "application/problem+json"
        wrong_scope = await stack.gateway.get(
            "/v1/reps/rep-1/scores", headers={"Authorization": f"Bearer {keys['ingest']}"}
        )
        assert wrong_scope.status_code == 403
        unknown_rep = await stack.gateway.get(
            "/v1/reps/nobody/scores", headers={"Authorization": f"Bearer {keys['read']}"}
        )
        assert unknown_rep.status_code == 404
        read_key_on_ingest = await stack.ingest.post(
            "/v1/events",
            json={"activities": _activities()},
            headers={"Authorization": f"Bearer {keys['read']}"},
        )
        assert read_key_on_ingest.status_code == 403
