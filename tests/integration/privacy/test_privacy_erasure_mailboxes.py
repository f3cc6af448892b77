"""Erasure and a contact's ``+tagged`` address: Pia's CRM record lists ``pia+crm@buyer.example``,
her mail comes from her mailbox ``pia@buyer.example``, which attribution reads as hers. Erasing
her by her record erases that mail too, and erasing her mailbox finds her record."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.settings import DatabaseSettings, KafkaSettings
from libs.common.tenancy import create_tenant
from libs.common.testing.stack import TEST_SECRET_KEY, in_process_stack
from tests.integration.crm_support import ana_on_team_a, buyer_account, buyer_deal
from tests.integration.polling import eventually, references_landed

from .privacy_support import mails_from_ana, tables_mentioning

PIA_LISTED = "pia+crm@buyer.example"
PIA_MAILBOX = "pia@buyer.example"
PIA_PHONE = "+12125550177"
CY = "cy@buyer.example"


def _crm() -> dict[str, Any]:
    contacts = [
        {
            "entity_type": "contact",
            "id": "con-pia",
            "name": "Pia",
            "emails": [PIA_LISTED],
            "phones": [PIA_PHONE],
        },
        {"entity_type": "contact", "id": "con-cy", "name": "Cy", "emails": [CY]},
    ]
    roles = [
        {"contact_id": "con-pia", "role": "champion"},
        {"contact_id": "con-cy", "role": "economic_buyer"},
    ]
    return {
        "source": "test",
        "entities": [
            *ana_on_team_a(),
            buyer_account(),
            *({**c, "account_id": "acc-1", "updated_at": "2026-11-02T15:00:00Z"} for c in contacts),
            buyer_deal(roles),
        ],
    }


def _activities() -> list[dict[str, Any]]:
    """Pia's mailbox alone (deleted once she is erased), with Cy (Cy stays), Cy alone (untouched)."""
    return mails_from_ana(
        ("m-pia", "2026-11-02T16:00:00Z", [PIA_MAILBOX]),
        ("m-pia-cy", "2026-11-03T16:00:00Z", [PIA_MAILBOX, CY]),
        ("m-cy", "2026-11-04T16:00:00Z", [CY]),
    )


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def _attributed(engine: AsyncEngine, tenant_id: str) -> int:
    async with engine.connect() as conn:
        found = await conn.execute(
            text("SELECT count(*) FROM attributions WHERE tenant_id = :t"), {"t": tenant_id}
        )
        return int(found.scalar_one())


pytestmark = pytest.mark.usefixtures("fast_erasure_caches")


async def test_erasing_a_contact_listing_a_tagged_address_erases_her_mailbox_and_back(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    # acme erases Pia by her record (her phone); globex by her mailbox, which her record does not list.
    requests = {"acme": {"phone": PIA_PHONE}, "globex": {"email": PIA_MAILBOX}}
    keys: dict[str, dict[str, str]] = {}
    async with db_engine.begin() as conn:
        for tenant_id in requests:
            keys[tenant_id] = (await create_tenant(conn, tenant_id, TEST_SECRET_KEY))["api_keys"]  # type: ignore[assignment]
    async with in_process_stack(kafka_settings, database_settings) as stack:
        for tenant_id, key in keys.items():
            synced = await stack.ingest.post("/v1/crm/sync", json=_crm(), headers=bearer(key["ingest"]))
            assert synced.status_code == 202, synced.text
            await references_landed(db_engine, tenant_id, _crm()["entities"])
            posted = await stack.ingest.post(
                "/v1/events", json={"activities": _activities()}, headers=bearer(key["ingest"])
            )
            assert posted.status_code == 202, posted.text

        async def all_attributed() -> list[int]:
            return [await _attributed(db_engine, t) for t in keys]

        await eventually(all_attributed, lambda counts: counts == [3, 3], 60, "both tenants attributed")
        # Pia's mailbox is held before the erasure: the checks below are not vacuous.
        assert await tables_mentioning(db_engine, (PIA_MAILBOX, PIA_LISTED)) != []

        for tenant_id, identity in requests.items():
            admin = bearer(keys[tenant_id]["admin"])
            requested = await stack.gateway.post("/v1/privacy/erasures", json=identity, headers=admin)
            assert requested.status_code == 202, requested.text
            erasure_id = requested.json()["erasure_id"]

            async def finished(url: str = f"/v1/privacy/erasures/{erasure_id}", h: Any = admin) -> Any:
                body = (await stack.gateway.get(url, headers=h)).json()
                return body if body["state"] in ("done", "failed") else None

            job = await eventually(finished, bool, 60, f"{tenant_id}'s erasure")
            assert (job["state"], job["done"], job["total"]) == ("done", 3, 3), (tenant_id, job)
            assert job["counts"] == {
                "activities_deleted": 1,
                "activities_redacted": 1,
                "contacts_deleted": 1,
                "webhook_states_deleted": 0,
                "versions_published": 2,
            }, tenant_id
        assert await tables_mentioning(db_engine, (PIA_MAILBOX, PIA_LISTED, PIA_PHONE)) == []
        for tenant_id in keys:
            assert await _attributed(db_engine, tenant_id) == 2
