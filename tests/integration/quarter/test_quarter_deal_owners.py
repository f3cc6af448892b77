"""A deal passed from one rep to another: what happened before is read with the owner of then."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.settings import DatabaseSettings, KafkaSettings
from libs.common.testing.stack import in_process_stack
from tests.integration.quarter.quarter_support import activity, email, new_tenant, post, settle, sync

Q_START = "2026-10-01T00:00:00Z"
ANA = "ana@seller.example"
BEN = "ben@seller.example"
BO = "bo@buyer.example"


def _deal(deal_id: str, owner: str, created_at: str) -> dict[str, Any]:
    return {
        "entity_type": "deal",
        "id": deal_id,
        "name": f"Buyer {deal_id}",
        "account_id": "acc-1",
        "owner_rep_id": owner,
        "stage": "proposal",
        "created_at": created_at,
        "contacts": [{"contact_id": "con-1", "role": "champion"}],
    }


CRM = [
    {"entity_type": "rep", "id": "rep-ana", "name": "Ana", "emails": [ANA]},
    {"entity_type": "rep", "id": "rep-ben", "name": "Ben", "emails": [BEN]},
    {"entity_type": "account", "id": "acc-1", "name": "Buyer", "domains": ["buyer.example"]},
    {"entity_type": "contact", "id": "con-1", "emails": [BO], "account_id": "acc-1"},
    _deal("deal-1", "rep-ana", "2026-09-01T00:00:00Z"),
    # As first entered: created in November, so not yet a candidate for October's mail.
    _deal("deal-2", "rep-ben", "2026-11-01T00:00:00Z"),
]


async def test_anas_october_mail_stays_on_the_deal_she_owned_then_when_re_matched_after_it_passed_to_ben(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """Ana mails Bo on 10 October: deal-1, hers then, is the only candidate. On 5 November deal-1
    passes to Ben. On 20 November the CRM corrects Ben's deal-2: created 1 September, not 1
    November. That re-decides the account's October mail: deal-2 is now a candidate too, on the
    same contact; deal-1 still wins because its owner of 10 October, Ana, took part (read with
    today's owners both deals are Ben's, and the mail would be a close call: ``ambiguous``)."""
    tenant = await new_tenant(db_engine)
    async with in_process_stack(kafka_settings, database_settings) as stack:
        await sync(stack, db_engine, tenant, Q_START, *CRM)
        await post(stack, tenant, email("oct-ana", ANA, BO, "2026-10-10T15:00:00Z"))
        await settle(kafka_settings)
        first = await activity(stack, tenant, "mail", "oct-ana")
        assert (first["status"], first["rep"], first["deal"], first["version"]) == (
            "attributed",
            "rep-ana",
            "deal-1",
            1,
        )
        await sync(
            stack,
            db_engine,
            tenant,
            "2026-11-05T09:00:00Z",
            _deal("deal-1", "rep-ben", "2026-09-01T00:00:00Z"),
        )
        await settle(kafka_settings)
        await sync(
            stack,
            db_engine,
            tenant,
            "2026-11-20T09:00:00Z",
            _deal("deal-2", "rep-ben", "2026-09-01T00:00:00Z"),
        )
        await settle(kafka_settings)
        again = await activity(stack, tenant, "mail", "oct-ana")
        # Version 2: re-decided with deal-2 as the runner-up, still deal-1's and Ana's.
        assert again == {
            "status": "attributed",
            "rep": "rep-ana",
            "team": None,
            "account": "acc-1",
            "deal": "deal-1",
            "rule_path": "owner_participates",
            "version": 2,
        }
        # A version older than the one held (20 October, naming Cy) is refused and records nothing.
        await sync(
            stack,
            db_engine,
            tenant,
            "2026-10-20T09:00:00Z",
            _deal("deal-1", "rep-cy", "2026-09-01T00:00:00Z"),
        )
        await settle(kafka_settings)
        assert (await activity(stack, tenant, "mail", "oct-ana"))["version"] == 2
        async with db_engine.connect() as conn:
            owners = (
                await conn.execute(
                    text(
                        "SELECT deal_id, owner_rep_id, since FROM ref_deal_owners WHERE tenant_id = :t "
                        "ORDER BY deal_id, since"
                    ),
                    {"t": tenant.tenant_id},
                )
            ).all()
        assert [tuple(row) for row in owners] == [
            ("deal-1", "rep-ana", datetime(2026, 10, 1, tzinfo=UTC)),
            ("deal-1", "rep-ben", datetime(2026, 11, 5, 9, tzinfo=UTC)),
            ("deal-2", "rep-ben", datetime(2026, 10, 1, tzinfo=UTC)),
        ]
