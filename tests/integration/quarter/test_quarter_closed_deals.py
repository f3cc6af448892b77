"""A deal closed won, mail after its close, then the deal reopened; its win in the funnel of the
tenant's own quarter. CRM versions sent over time through ``POST /v1/crm/sync``."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.settings import DatabaseSettings, KafkaSettings
from libs.common.testing.stack import in_process_stack
from tests.integration.quarter.quarter_support import (
    Tenant,
    activity,
    email,
    get,
    new_tenant,
    post,
    settle,
    sync,
)

ANA = "ana@seller.example"
BO = "bo@buyer.example"


def _deal(deal_id: str, *roles: str, **fields: Any) -> dict[str, Any]:
    return {
        "entity_type": "deal",
        "id": deal_id,
        "name": f"Buyer {deal_id}",
        "account_id": "acc-1",
        "owner_rep_id": "rep-ana",
        "stage": "proposal",
        "amount": "10000",
        "created_at": "2026-09-01T00:00:00Z",
        "contacts": [{"contact_id": c, "role": "champion"} for c in roles],
        **fields,
    }


WON = {"stage": "Closed Won", "is_closed": True, "is_won": True}


async def _won(stack: Any, tenant: Tenant, start: str, end: str) -> int:
    body = await get(stack, tenant, f"/v1/funnel?rep_id=rep-ana&from={start}&to={end}")
    return int(next(s["count"] for s in body["steps"] if s["step"] == "deals_won"))


async def test_mail_after_a_win_goes_to_the_won_deal_within_grace_then_to_the_open_one_until_it_reopens(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """New York tenant. deal-1 (Bo is its champion) is won at 23:30 local on 30 September, the last
    half hour of Q3 (03:30 UTC on 1 October); deal-2, an expansion of the same account, is opened on
    20 October. Ana's mail to Bo 5 days after the win is still the won deal's (inside the 14-day
    grace: the close's follow-up), 30 days after it the open deal-2's. On 1 December deal-1 is
    reopened: the mail of 30 days after returns to it (Bo's deal, open again), the win leaves Q3's
    funnel, as does a duplicate win merged into it."""
    tenant = await new_tenant(db_engine, "acme", "America/New_York")
    async with in_process_stack(kafka_settings, database_settings) as stack:
        await sync(
            stack,
            db_engine,
            tenant,
            "2026-09-01T00:00:00Z",
            {"entity_type": "team", "id": "team-east", "name": "East"},
            {"entity_type": "rep", "id": "rep-ana", "name": "Ana", "emails": [ANA]},
            {
                "entity_type": "team_membership",
                "id": "m1",
                "rep_id": "rep-ana",
                "team_id": "team-east",
                "valid_from": "2026-01-01",
            },
            {"entity_type": "account", "id": "acc-1", "name": "Buyer", "domains": ["buyer.example"]},
            {"entity_type": "contact", "id": "con-bo", "account_id": "acc-1", "emails": [BO]},
            _deal("deal-1", "con-bo"),
            # A duplicate of an older win, merged into deal-1 on 1 December.
            _deal("deal-9", closed_at="2026-09-15T12:00:00Z", **WON),
        )
        await sync(
            stack,
            db_engine,
            tenant,
            "2026-10-01T03:30:00Z",
            _deal("deal-1", "con-bo", closed_at="2026-10-01T03:30:00Z", **WON),
        )
        await sync(
            stack,
            db_engine,
            tenant,
            "2026-10-20T12:00:00Z",
            _deal("deal-2", created_at="2026-10-20T12:00:00Z"),
        )
        await post(
            stack,
            tenant,
            email("after-5d", ANA, BO, "2026-10-06T15:00:00Z"),
            email("after-30d", ANA, BO, "2026-10-31T15:00:00Z"),
        )
        await settle(kafka_settings)
        seen = {n: await activity(stack, tenant, "mail", n) for n in ("after-5d", "after-30d")}
        assert {n: (a["status"], a["deal"], a["rule_path"]) for n, a in seen.items()} == {
            "after-5d": ("attributed", "deal-1", "contact_role"),
            "after-30d": ("attributed", "deal-2", "owner_participates"),
        }
        # The win is on the tenant's 30 September: Q3's, not Q4's.
        assert await _won(stack, tenant, "2026-07-01", "2026-09-30") == 2
        assert await _won(stack, tenant, "2026-10-01", "2026-12-31") == 0

        await sync(
            stack,
            db_engine,
            tenant,
            "2026-12-01T12:00:00Z",
            _deal("deal-1", "con-bo", stage="negotiation", is_closed=False, is_won=False),
            _deal("deal-9", closed_at="2026-09-15T12:00:00Z", merged_into="deal-1", **WON),
        )
        await post(stack, tenant, email("reopened", ANA, BO, "2026-12-02T15:00:00Z"))
        await settle(kafka_settings)
        seen = {n: await activity(stack, tenant, "mail", n) for n in ("after-5d", "after-30d", "reopened")}
        assert {n: (a["status"], a["deal"], a["version"]) for n, a in seen.items()} == {
            "after-5d": ("attributed", "deal-1", 1),
            "after-30d": ("attributed", "deal-1", 2),
            "reopened": ("attributed", "deal-1", 1),
        }
        assert await _won(stack, tenant, "2026-07-01", "2026-09-30") == 0
        timeline = await get(stack, tenant, "/v1/deals/deal-1/activities")
        assert (timeline["deal"]["is_closed"], timeline["deal"]["closed_at"]) == (False, None)
        assert len(timeline["items"]) == 3
        assert (await get(stack, tenant, "/v1/deals/deal-2/activities"))["items"] == []


async def test_mail_to_the_champion_of_a_won_deal_goes_to_the_renewal_opened_after_it(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """deal-1 is won on 1 October; the renewal, with the same champion and owner, opens the next
    day. Ana's mail to Bo 1, 6 and 12 days after the win (inside the 14-day grace) is the open
    renewal's, credited, with the won deal as the runner-up: rules 2026.12.7 (it was a close call
    between them for the whole grace window, credited to no deal)."""
    tenant = await new_tenant(db_engine)
    async with in_process_stack(kafka_settings, database_settings) as stack:
        await sync(
            stack,
            db_engine,
            tenant,
            "2026-09-01T00:00:00Z",
            {"entity_type": "rep", "id": "rep-ana", "name": "Ana", "emails": [ANA]},
            {"entity_type": "account", "id": "acc-1", "name": "Buyer", "domains": ["buyer.example"]},
            {"entity_type": "contact", "id": "con-bo", "account_id": "acc-1", "emails": [BO]},
            _deal("deal-1", "con-bo", closed_at="2026-10-01T12:00:00Z", **WON),
            _deal("deal-renewal", "con-bo", created_at="2026-10-02T12:00:00Z"),
        )
        days = (2, 7, 13)
        await post(stack, tenant, *(email(f"m{d}", ANA, BO, f"2026-10-{d:02d}T15:00:00Z") for d in days))
        await settle(kafka_settings)
        seen = {d: await activity(stack, tenant, "mail", f"m{d}") for d in days}
        assert {d: (a["status"], a["deal"], a["rule_path"]) for d, a in seen.items()} == {
            d: ("attributed", "deal-renewal", "proximity") for d in days
        }
        listed = await get(stack, tenant, "/v1/activities?deal_id=deal-renewal")
        assert [[r["deal_id"] for r in i["runners_up"]] for i in listed["items"]] == [["deal-1"]] * 3
        assert (await get(stack, tenant, "/v1/deals/deal-1/activities"))["items"] == []
