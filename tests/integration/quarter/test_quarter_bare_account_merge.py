"""A bare account merge, as a CRM sends one: only the merged account's record, with
``merged_into``; neither the survivor with the domains it now holds nor the merged account's deals
and contacts re-parented. Through ``POST /v1/crm/sync`` and ``POST /v1/events``, the real broker
and database; read back as a manager reads each activity."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.settings import DatabaseSettings, KafkaSettings
from libs.common.testing.stack import in_process_stack
from tests.integration.quarter.quarter_support import Tenant, activity, email, new_tenant, post, settle, sync

Q_START = "2026-10-01T00:00:00Z"
ANA = "ana@seller.example"
BEN = "ben@seller.example"
INBOX = "support@seller.example"


def _account(account_id: str, domain: str, **fields: Any) -> dict[str, Any]:
    return {"entity_type": "account", "id": account_id, "name": account_id, "domains": [domain], **fields}


def _world() -> list[dict[str, Any]]:
    """Buyer (acc-1, no deal), Other (acc-2: Ben's open deal-2 with Carol), Third (acc-3)."""
    return [
        {"entity_type": "rep", "id": "rep-ana", "name": "Ana", "emails": [ANA]},
        {"entity_type": "rep", "id": "rep-ben", "name": "Ben", "emails": [BEN]},
        _account("acc-1", "buyer.example"),
        _account("acc-2", "other.example"),
        _account("acc-3", "third.example"),
        {
            "entity_type": "contact",
            "id": "con-carol",
            "account_id": "acc-2",
            "emails": ["carol@other.example"],
        },
        {
            "entity_type": "deal",
            "id": "deal-2",
            "name": "Other renewal",
            "account_id": "acc-2",
            "owner_rep_id": "rep-ben",
            "stage": "proposal",
            "created_at": "2026-09-01T00:00:00Z",
            "contacts": [{"contact_id": "con-carol", "role": "champion"}],
        },
    ]


def _inbound(external_id: str, sender: str, at: str) -> dict[str, Any]:
    return email(external_id, sender, INBOX, at, direction="inbound", outcome="received")


async def _october(stack: Any, engine: AsyncEngine, tenant: Tenant) -> None:
    await sync(stack, engine, tenant, Q_START, *_world())
    await post(
        stack,
        tenant,
        email("carol-oct", BEN, "carol@other.example", "2026-10-10T15:00:00Z"),
        _inbound("dan-oct", "dan@other.example", "2026-10-11T15:00:00Z"),
        _inbound("fay-oct", "fay@third.example", "2026-10-12T15:00:00Z"),
    )


async def test_a_bare_merge_makes_the_merged_accounts_domains_deals_and_history_the_survivors(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """October: mail with Carol (Other's contact on deal-2), from Dan (an address at other.example
    nobody lists) and from Fay at third.example. 10 November the CRM merges Third into Other,
    15 November Other into Buyer, each time sending the merged account alone. Every activity at
    Other's or Third's domain, before the merges (re-matched) and after, is then Buyer's, on Ben's
    deal-2 (Buyer's only open deal now), and so is mail filed on deal-2 alone; the same world at another tenant, unmerged, is unmoved."""
    acme = await new_tenant(db_engine)
    globex = await new_tenant(db_engine, "globex")
    async with in_process_stack(kafka_settings, database_settings) as stack:
        await _october(stack, db_engine, acme)
        await _october(stack, db_engine, globex)
        await settle(kafka_settings)
        before = {n: await activity(stack, acme, "mail", n) for n in ("carol-oct", "dan-oct", "fay-oct")}
        assert {
            n: (a["status"], a["rep"], a["account"], a["deal"], a["version"]) for n, a in before.items()
        } == {
            "carol-oct": ("attributed", "rep-ben", "acc-2", "deal-2", 1),
            "dan-oct": ("attributed", "rep-ben", "acc-2", "deal-2", 1),
            "fay-oct": ("account_only", None, "acc-3", None, 1),
        }

        await sync(
            stack,
            db_engine,
            acme,
            "2026-11-10T09:00:00Z",
            _account("acc-3", "third.example", merged_into="acc-2"),
        )
        await post(stack, acme, _inbound("fay-nov", "fay@third.example", "2026-11-12T15:00:00Z"))
        await settle(kafka_settings)
        fay_nov = await activity(stack, acme, "mail", "fay-nov")
        assert (fay_nov["status"], fay_nov["rep"], fay_nov["account"], fay_nov["deal"]) == (
            "attributed",
            "rep-ben",
            "acc-2",
            "deal-2",
        )

        await sync(
            stack,
            db_engine,
            acme,
            "2026-11-15T09:00:00Z",
            _account("acc-2", "other.example", merged_into="acc-1"),
        )
        await post(
            stack,
            acme,
            _inbound("eve-nov", "eve@other.example", "2026-11-16T15:00:00Z"),
            email("carol-nov", BEN, "carol@other.example", "2026-11-17T15:00:00Z"),
            _inbound("gus-nov", "gus@third.example", "2026-11-18T15:00:00Z"),
        )
        await settle(kafka_settings)

        # Alone in its batch: Ben's call notes filed on deal-2 with a buyer at no account's domain.
        logged = email(
            "zoe-nov", BEN, "zoe@elsewhere.example", "2026-11-19T15:00:00Z", crm={"deal_id": "deal-2"}
        )
        await post(stack, acme, logged)
        await settle(kafka_settings)

        names = ("carol-oct", "dan-oct", "fay-oct", "fay-nov", "eve-nov", "carol-nov", "gus-nov", "zoe-nov")
        seen = {n: await activity(stack, acme, "mail", n) for n in names}
        assert {n: (a["status"], a["rep"], a["account"], a["deal"]) for n, a in seen.items()} == {
            "carol-oct": ("attributed", "rep-ben", "acc-1", "deal-2"),
            "dan-oct": ("attributed", "rep-ben", "acc-1", "deal-2"),
            "fay-oct": ("attributed", "rep-ben", "acc-1", "deal-2"),
            "fay-nov": ("attributed", "rep-ben", "acc-1", "deal-2"),
            "eve-nov": ("attributed", "rep-ben", "acc-1", "deal-2"),
            "carol-nov": ("attributed", "rep-ben", "acc-1", "deal-2"),
            "gus-nov": ("attributed", "rep-ben", "acc-1", "deal-2"),
            "zoe-nov": ("attributed", "rep-ben", "acc-1", "deal-2"),
        }
        # The October mail was re-decided (a new version); the second tenant's was not touched.
        assert {n: seen[n]["version"] for n in ("carol-oct", "dan-oct", "fay-oct")} == {
            "carol-oct": 2,
            "dan-oct": 2,
            "fay-oct": 3,
        }
        untouched = {n: await activity(stack, globex, "mail", n) for n in ("carol-oct", "dan-oct", "fay-oct")}
        assert {
            n: (a["status"], a["rep"], a["account"], a["deal"], a["version"]) for n, a in untouched.items()
        } == {
            "carol-oct": ("attributed", "rep-ben", "acc-2", "deal-2", 1),
            "dan-oct": ("attributed", "rep-ben", "acc-2", "deal-2", 1),
            "fay-oct": ("account_only", None, "acc-3", None, 1),
        }
