"""A person twice in the CRM: her record lists ``pia@buyer.example`` (deal-1), a web form's copy
of her lists ``pia+crm@buyer.example`` (deal-2), held as that mailbox too (rules 2026.12.24).
Through the pipeline, her mail is her record's deal, the copy's tagged address the copy's: not
a tie of the two deals, each contact at half (rules 2026.12.27)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.settings import DatabaseSettings, KafkaSettings
from libs.common.tenancy import create_tenant
from libs.common.testing.stack import TEST_SECRET_KEY, in_process_stack
from tests.integration.attribution.attribution_support import rows
from tests.integration.crm_support import T0, ana_on_team_a, buyer_account, buyer_deal, email_from_ana
from tests.integration.polling import eventually, references_landed


def _crm() -> dict[str, Any]:
    contacts = [
        {"entity_type": "contact", "id": "con-pia", "name": "Pia", "emails": ["pia@buyer.example"]},
        {"entity_type": "contact", "id": "con-pia-web", "name": "pia", "emails": ["pia+crm@buyer.example"]},
    ]
    return {
        "source": "test",
        "entities": [
            *ana_on_team_a(),
            buyer_account(),
            *({**c, "account_id": "acc-1", "updated_at": T0} for c in contacts),
            buyer_deal([{"contact_id": "con-pia", "role": "champion"}]),
            {
                **buyer_deal([{"contact_id": "con-pia-web", "role": "champion"}]),
                "id": "deal-2",
                "name": "Web",
            },
        ],
    }


async def _decided(engine: AsyncEngine) -> list[tuple[Any, ...]]:
    return await rows(
        engine,
        "SELECT external_id, a.status, a.deal_id, a.secondary_deal_ids, a.confidence "
        "FROM attributions a JOIN activities USING (tenant_id, activity_id) "
        "WHERE tenant_id = 'acme' ORDER BY external_id",
    )


async def test_mail_to_an_address_one_record_lists_is_that_records_deal_not_a_tie_with_a_copys(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    async with db_engine.begin() as conn:
        keys: dict[str, str] = (await create_tenant(conn, "acme", TEST_SECRET_KEY))["api_keys"]  # type: ignore[assignment]
    ingest = {"Authorization": f"Bearer {keys['ingest']}"}
    mail = [
        email_from_ana(
            name, participants=[{"email": "ana@seller.example", "role": "from"}, {"email": to, "role": "to"}]
        )
        for name, to in (
            ("m-mailbox", "pia@buyer.example"),
            ("m-other-tag", "pia+news@buyer.example"),
            ("m-web-tag", "pia+crm@buyer.example"),
        )
    ]
    async with in_process_stack(kafka_settings, database_settings) as stack:
        synced = await stack.ingest.post("/v1/crm/sync", json=_crm(), headers=ingest)
        assert synced.status_code == 202, synced.text
        await references_landed(db_engine, "acme", _crm()["entities"])
        posted = await stack.ingest.post("/v1/events", json={"activities": mail}, headers=ingest)
        assert posted.status_code == 202, posted.text
        decided = await eventually(lambda: _decided(db_engine), lambda rows: len(rows) == 3, 60, "decided")
    assert decided == [
        ("m-mailbox", "attributed", "deal-1", [], 0.95),
        ("m-other-tag", "attributed", "deal-1", [], 0.95),
        ("m-web-tag", "attributed", "deal-2", [], 0.95),
    ]
