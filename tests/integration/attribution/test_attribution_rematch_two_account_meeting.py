"""A meeting with buyers of two accounts, decided while only the first account's deal had reached
the sync, is re-decided when the second account's deal arrives with its buyer's role (issue #14;
the messy outsider world's ``two_account_meeting`` misses, ``bench.outsider_world_messy``): sent
through ``POST /v1/crm/sync`` and ``POST /v1/events``, read back through the gateway.

Ana organises a meeting with Bo (Globex's champion on Ana's Globex deal) and Cy (an Initech
contact). Only the Globex deal is known: the meeting is Globex's, 0.95. Ana's Initech deal
arrives with Cy its champion: both deals are Ana's, both buyers attend, nothing tells them apart,
so the meeting is a tie (``ambiguous`` naming both, docs/attribution.md: "meeting with a customer
and its partner, both deals one owner's: generic title"; the outsider world's truth labels the
same). Before, the re-match read only the Initech account's activities and its contacts of other
accounts: the meeting, on Globex, with a contact of Initech itself, stayed Globex's.

A second such meeting that an admin put on the Globex deal keeps its override; a third, which Cy
declined, is re-decided the same (Bo's deal alone) and gets no new version.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.settings import DatabaseSettings, KafkaSettings
from libs.common.testing.stack import in_process_stack
from tests.integration.attribution.attribution_support import contributions
from tests.integration.quarter.quarter_support import (
    Tenant,
    attribution,
    contact,
    deal,
    get,
    new_tenant,
    override,
    post,
    rep,
    settle,
    sync,
)

ANA = "ana@seller.example"
BO, CY = "bo@globex.example", "cy@initech.example"


def _deal(deal_id: str, account: str, name: str, champion: str) -> dict[str, Any]:
    return deal(deal_id, name, account, "rep-ana", "2026-10-01T00:00:00Z", champion)


def _meeting(external_id: str, at: str, cy_answer: str = "accepted") -> dict[str, Any]:
    return {
        "source": "calendar",
        "external_id": external_id,
        "kind": "meeting",
        "direction": "outbound",
        "outcome": "held",
        "occurred_at": at,
        "duration_seconds": 1800,
        "participants": [
            {"email": ANA, "role": "organizer"},
            {"email": BO, "role": "attendee"},
            {"email": CY, "role": "attendee", "response_status": cy_answer},
        ],
    }


async def _decided(stack: Any, tenant: Tenant, external_id: str) -> tuple[Any, ...]:
    """(status, rep, account, deal, secondary deals, confidence, overridden, version)."""
    a = await attribution(stack, tenant, "calendar", external_id)
    return (
        a["status"],
        a["rep_id"],
        a["account_id"],
        a["deal_id"],
        a["secondary_deal_ids"],
        round(a["confidence"], 2),
        a["is_override"],
        a["version"],
    )


async def _engaging(stack: Any, tenant: Tenant, deal_id: str) -> int:
    """Activities on the deal's timeline (attributed or ambiguous to it, or naming it second)."""
    return int((await get(stack, tenant, f"/v1/deals/{deal_id}/activities"))["summary"]["activities"])


async def _counted(engine: AsyncEngine, tenant: Tenant) -> list[tuple[Any, ...]]:
    """What metrics holds of each meeting: (version, status, deal, deals engaged, meetings held);
    ``attributed`` alone counts for its deal (docs/metrics.md)."""
    return await contributions(
        engine, tenant.tenant_id, "c.version, c.status, c.deal_id, c.engaged_deal_ids, c.meetings_held"
    )


async def _state(stack: Any, engine: AsyncEngine, tenant: Tenant) -> dict[str, Any]:
    """Each meeting's attribution, and what metrics holds of them."""
    meetings = ("m-tie", "m-kept", "m-declined")
    return {
        **{m: await _decided(stack, tenant, m) for m in meetings},
        "counted": await _counted(engine, tenant),
    }


async def test_a_meeting_with_buyers_of_two_accounts_becomes_a_tie_when_the_second_accounts_deal_arrives(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    tenant = await new_tenant(db_engine)
    async with in_process_stack(kafka_settings, database_settings) as stack:
        await sync(
            stack, db_engine, tenant, "2026-10-01T00:00:00Z",
            rep("rep-ana", ANA),
            {"entity_type": "account", "id": "acc-globex", "name": "Globex", "domains": ["globex.example"]},
            {"entity_type": "account", "id": "acc-initech", "name": "Initech", "domains": ["initech.example"]},
            contact("con-bo", "acc-globex", BO),
            contact("con-cy", "acc-initech", CY),
            _deal("deal-globex", "acc-globex", "Payroll", "con-bo"),
        )  # fmt: skip
        await post(
            stack,
            tenant,
            _meeting("m-tie", "2026-10-05T15:00:00Z"),
            _meeting("m-kept", "2026-10-06T15:00:00Z"),
            _meeting("m-declined", "2026-10-07T15:00:00Z", cy_answer="declined"),
        )
        await settle(kafka_settings)
        await override(
            stack, tenant, "calendar", "m-kept", deal_id="deal-globex", reason="the Globex rollout"
        )
        await settle(kafka_settings)
        before = await _state(stack, db_engine, tenant)

        await sync(
            stack, db_engine, tenant, "2026-10-08T00:00:00Z",
            _deal("deal-initech", "acc-initech", "Analytics", "con-cy"),
        )  # fmt: skip
        await settle(kafka_settings)
        after = {
            **await _state(stack, db_engine, tenant),
            "timelines": (
                await _engaging(stack, tenant, "deal-globex"),
                await _engaging(stack, tenant, "deal-initech"),
            ),
        }

    assert before == {
        "m-tie": ("attributed", "rep-ana", "acc-globex", "deal-globex", [], 0.95, False, 1),
        "m-kept": ("attributed", "rep-ana", "acc-globex", "deal-globex", [], 1.0, True, 2),
        "m-declined": ("attributed", "rep-ana", "acc-globex", "deal-globex", [], 0.95, False, 1),
        "counted": [
            ("m-declined", 1, "attributed", "deal-globex", ["deal-globex"], 1),
            ("m-kept", 2, "attributed", "deal-globex", ["deal-globex"], 1),
            ("m-tie", 1, "attributed", "deal-globex", ["deal-globex"], 1),
        ],
    }
    assert after == {
        "m-tie": ("ambiguous", "rep-ana", "acc-globex", "deal-globex", ["deal-initech"], 0.47, False, 2),
        "m-kept": ("attributed", "rep-ana", "acc-globex", "deal-globex", [], 1.0, True, 2),
        # Re-decided too, the same: Cy declined, Bo's deal alone (no new version).
        "m-declined": ("attributed", "rep-ana", "acc-globex", "deal-globex", [], 0.95, False, 1),
        # The tie is no longer the Globex deal's credit; it engages both deals (their timelines).
        "counted": [
            ("m-declined", 1, "attributed", "deal-globex", ["deal-globex"], 1),
            ("m-kept", 2, "attributed", "deal-globex", ["deal-globex"], 1),
            ("m-tie", 2, "ambiguous", None, ["deal-globex", "deal-initech"], 1),
        ],
        "timelines": (3, 1),
    }
