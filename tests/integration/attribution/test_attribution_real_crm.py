"""CRM data as integrators send it, through ingest, the real broker, attribution and PostgreSQL.

Phones typed the way people type them, a junk phone in a batch, and (below) late deals and one
person known to several sources.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.contracts.activities import activity_id_for
from libs.common.settings import DatabaseSettings, KafkaSettings
from libs.common.tenancy import create_tenant
from libs.common.testing.stack import TEST_SECRET_KEY, in_process_stack

T0 = "2026-11-01T00:00:00Z"
TENANT = "acme"


def _crm(*entities: dict[str, Any]) -> dict[str, Any]:
    return {"source": "test", "entities": [{"updated_at": T0, **e} for e in entities]}


REP = {"entity_type": "rep", "id": "rep-1", "emails": ["ana@seller.example"], "phones": ["+14155550001"]}
ACCOUNT = {"entity_type": "account", "id": "acc-1", "domains": ["buyer.example"]}
DEAL = {
    "entity_type": "deal",
    "id": "deal-1",
    "account_id": "acc-1",
    "owner_rep_id": "rep-1",
    "created_at": "2026-10-01T00:00:00Z",
    "contacts": [{"contact_id": "con-1", "role": "champion"}],
}


def _call(external_id: str, callee: str, at: str = "2026-11-02T17:00:00Z") -> dict[str, Any]:
    return {
        "source": "dialer",
        "external_id": external_id,
        "kind": "call",
        "direction": "outbound",
        "outcome": "connected",
        "occurred_at": at,
        "duration_seconds": 60,
        "participants": [{"phone": "+14155550001", "role": "caller"}, {"phone": callee, "role": "callee"}],
    }


async def _attribution(engine: AsyncEngine, activity_id: uuid.UUID, deadline_s: float = 30) -> Any:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        async with engine.connect() as conn:
            row = (
                await conn.execute(
                    text("SELECT * FROM attributions WHERE tenant_id = :t AND activity_id = :a"),
                    {"t": TENANT, "a": activity_id},
                )
            ).first()
        if row is not None:
            return row
        await asyncio.sleep(0.2)
    raise AssertionError(f"activity {activity_id} was not attributed within {deadline_s}s")


async def test_a_call_matches_a_contact_stored_in_a_national_format_and_a_junk_phone_only_warns(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    async with db_engine.begin() as conn:
        tenant = await create_tenant(conn, TENANT, TEST_SECRET_KEY)
    keys: dict[str, str] = tenant["api_keys"]  # type: ignore[assignment]
    auth = {"Authorization": f"Bearer {keys['ingest']}"}
    contact = {
        "entity_type": "contact",
        "id": "con-1",
        "account_id": "acc-1",
        "phones": ["(415) 555-0100", "not a phone at all", "415.555.0100"],
    }
    async with in_process_stack(kafka_settings, database_settings, ("ingest", "attribution")) as stack:
        crm = await stack.ingest.post("/v1/crm/sync", json=_crm(REP, ACCOUNT, contact, DEAL), headers=auth)
        assert crm.status_code == 202, crm.text
        assert crm.json() == {
            "accepted": 4,
            "warnings": [
                {
                    "index": 2,
                    "field": "entities.2.phones.1",
                    "reason": "not a phone number; the phone was dropped, the contact accepted",
                }
            ],
        }
        await asyncio.sleep(1.0)
        posted = await stack.ingest.post(
            "/v1/events",
            json={"activities": [_call("c-e164", "+14155550100"), _call("c-national", "415 555 0100")]},
            headers=auth,
        )
        assert posted.status_code == 202, posted.text
        for external_id in ("c-e164", "c-national"):
            row = await _attribution(db_engine, activity_id_for(TENANT, "dialer", external_id))
            assert (row.status, row.deal_id, row.account_id, row.rep_id) == (
                "attributed",
                "deal-1",
                "acc-1",
                "rep-1",
            )
        refused = await stack.ingest.post(
            "/v1/events", json={"activities": [_call("c-short", "12345")]}, headers=auth
        )
    async with db_engine.connect() as conn:
        stored = (
            await conn.execute(
                text("SELECT phones FROM ref_contacts WHERE tenant_id = :t AND contact_id = 'con-1'"),
                {"t": TENANT},
            )
        ).one()
    assert list(stored.phones) == ["+14155550100"]
    assert refused.status_code == 422
    assert [(e["field"], e["reason"]) for e in refused.json()["errors"]] == [
        (
            "activities.0.participants.1.phone",
            "a short code, not a person's line (E.164 such as +14155550100, or a national number)",
        )
    ]
