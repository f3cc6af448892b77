"""Deals changing owner and account, accounts merged, a contact moving to another account: CRM
versions sent over time through ``POST /v1/crm/sync``, activities through ``POST /v1/events``."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.settings import DatabaseSettings, KafkaSettings
from libs.common.testing.stack import in_process_stack
from tests.integration.quarter.quarter_support import (
    activity,
    contact,
    email,
    get,
    new_tenant,
    post,
    settle,
    sync,
)

Q_START = "2026-10-01T00:00:00Z"
ANA = "ana@seller.example"
BEN = "ben@seller.example"
INBOX = "support@seller.example"


def _deal(deal_id: str, account: str, owner: str, *roles: str, **fields: Any) -> dict[str, Any]:
    return {
        "entity_type": "deal",
        "id": deal_id,
        "name": f"{deal_id} renewal",
        "account_id": account,
        "owner_rep_id": owner,
        "stage": "proposal",
        "created_at": "2026-09-01T00:00:00Z",
        "contacts": [{"contact_id": c, "role": "champion"} for c in roles],
        **fields,
    }


def _account(account_id: str, domain: str, **fields: Any) -> dict[str, Any]:
    return {"entity_type": "account", "id": account_id, "name": account_id, "domains": [domain], **fields}


def _inbound(external_id: str, sender: str, at: str) -> dict[str, Any]:
    return email(external_id, sender, INBOX, at, direction="inbound", outcome="received")


async def test_owner_changes_account_moves_and_merges_move_only_what_they_should(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """October: Ana owns deal-1 (Buyer) and deal-3 (Third); Ben owns deal-2 (Other).
    * 20 November deal-1 goes to Ben: the shared inbox's mail from Buyer before stays Ana's (she
      owned the deal then), after it is Ben's; Ana's own emails stay hers.
    * 15 November Third is merged into Other (the CRM re-parents deal-3 and Carol): Third's
      history follows to the survivor, as the CRM's merge re-parents it.
    * 1 November Dee moves from Buyer to Other (a new job, her role moved to deal-2): her
      October mail stays Buyer's deal-1, her mail after the move is Other's deal-2."""
    tenant = await new_tenant(db_engine)
    rep_a = {"entity_type": "rep", "id": "rep-ana", "name": "Ana", "emails": [ANA]}
    rep_b = {"entity_type": "rep", "id": "rep-ben", "name": "Ben", "emails": [BEN]}
    async with in_process_stack(kafka_settings, database_settings) as stack:
        await sync(
            stack,
            db_engine,
            tenant,
            Q_START,
            rep_a,
            rep_b,
            _account("acc-1", "buyer.example"),
            _account("acc-2", "other.example"),
            _account("acc-3", "third.example"),
            contact("con-bo", "acc-1", "bo@buyer.example"),
            contact("con-dee", "acc-1", "dee@dee.example"),
            contact("con-carol", "acc-3", "carol@third.example"),
            _deal("deal-1", "acc-1", "rep-ana", "con-bo", "con-dee"),
            _deal("deal-2", "acc-2", "rep-ben"),
            _deal("deal-3", "acc-3", "rep-ana", "con-carol"),
        )
        await post(
            stack,
            tenant,
            _inbound("bo-oct", "bo@buyer.example", "2026-10-10T15:00:00Z"),
            email("ana-oct", ANA, "bo@buyer.example", "2026-10-11T15:00:00Z"),
            email("dee-oct", ANA, "dee@dee.example", "2026-10-12T15:00:00Z"),
            email("carol-oct", ANA, "carol@third.example", "2026-10-13T15:00:00Z"),
        )
        await settle(kafka_settings)
        # 1 November: Dee now works at Other; her role moves to deal-2.
        await sync(
            stack,
            db_engine,
            tenant,
            "2026-11-01T09:00:00Z",
            contact("con-dee", "acc-2", "dee@dee.example"),
            _deal("deal-1", "acc-1", "rep-ana", "con-bo"),
            _deal("deal-2", "acc-2", "rep-ben", "con-dee"),
        )
        await post(stack, tenant, email("dee-nov", BEN, "dee@dee.example", "2026-11-05T15:00:00Z"))
        await settle(kafka_settings)
        # 15 November: Third merged into Other; the CRM re-parents its deal and contact.
        await sync(
            stack,
            db_engine,
            tenant,
            "2026-11-15T09:00:00Z",
            _account("acc-3", "third.example", merged_into="acc-2"),
            _account("acc-2", "other.example"),
            contact("con-carol", "acc-2", "carol@third.example"),
            _deal("deal-3", "acc-2", "rep-ana", "con-carol"),
        )
        await post(stack, tenant, email("carol-nov", ANA, "carol@third.example", "2026-11-16T15:00:00Z"))
        await settle(kafka_settings)
        # 20 November: deal-1 goes to Ben.
        await sync(
            stack,
            db_engine,
            tenant,
            "2026-11-20T09:00:00Z",
            _deal("deal-1", "acc-1", "rep-ben", "con-bo"),
        )
        await post(
            stack,
            tenant,
            _inbound("bo-nov", "bo@buyer.example", "2026-11-21T15:00:00Z"),
            email("ana-nov", ANA, "bo@buyer.example", "2026-11-22T15:00:00Z"),
        )
        await settle(kafka_settings)

        names = ("bo-oct", "ana-oct", "dee-oct", "carol-oct", "dee-nov", "carol-nov", "bo-nov", "ana-nov")
        seen = {n: await activity(stack, tenant, "mail", n) for n in names}
        assert {n: (a["status"], a["rep"], a["account"], a["deal"]) for n, a in seen.items()} == {
            "bo-oct": ("attributed", "rep-ana", "acc-1", "deal-1"),
            "ana-oct": ("attributed", "rep-ana", "acc-1", "deal-1"),
            "dee-oct": ("attributed", "rep-ana", "acc-1", "deal-1"),
            "carol-oct": ("attributed", "rep-ana", "acc-2", "deal-3"),
            "dee-nov": ("attributed", "rep-ben", "acc-2", "deal-2"),
            "carol-nov": ("attributed", "rep-ana", "acc-2", "deal-3"),
            "bo-nov": ("attributed", "rep-ben", "acc-1", "deal-1"),
            "ana-nov": ("attributed", "rep-ana", "acc-1", "deal-1"),
        }
        timeline = await get(stack, tenant, "/v1/deals/deal-1/activities")
        assert timeline["deal"]["owner_rep_id"] == "rep-ben"
        assert len(timeline["items"]) == 5
