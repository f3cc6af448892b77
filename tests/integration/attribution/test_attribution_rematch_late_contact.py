"""Mail decided with confidence on the wrong deal before the CRM knew the person it concerns is
re-decided when her record arrives, or gains the address, holding a role on the right deal (issue
#14; the evaluation's ``late_crm`` misses eval-0002487 and eval-0003967, seed 1): sent through
``POST /v1/crm/sync`` and ``POST /v1/events``, read back through the gateway and metrics.

Globex has two open deals: Ana's Payroll and Cy's Analytics, on which Bo and Dee are champions.
The CRM lists Bo's role before it sends Bo's record. Ana's mail to bo@globex names no contact the
CRM knows: the domain says Globex, Ana owns Payroll, so it is Payroll's, 0.67. So is her mail to
Dee's second address, which Dee's record does not list yet. Bo's record arrives, then Dee's with
the second address: each mail is now the mail of a champion of Analytics, and is moved there (a
new version; metrics moves its deal). Before, a new contact re-decided only parked (unmatched)
mail: the confident wrong deal stayed.

A mail to Bo an admin put on Payroll keeps its override; one the CRM logged on Payroll is re-decided
the same (no new version).
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
    email,
    new_tenant,
    override,
    post,
    rep,
    settle,
    sync,
)

ANA = "ana@seller.example"
BO, DEE, DEE_TOO = "bo@globex.example", "dee@globex.example", "dee.r@globex.example"


def _deal(deal_id: str, name: str, owner: str, *champions: str) -> dict[str, Any]:
    return deal(deal_id, name, "acc-globex", owner, "2026-09-20T00:00:00Z", *champions)


async def _decided(stack: Any, tenant: Tenant, external_id: str) -> tuple[Any, ...]:
    """(status, rep, deal, confidence, overridden, version)."""
    a = await attribution(stack, tenant, "mail", external_id)
    return (a["status"], a["rep_id"], a["deal_id"], round(a["confidence"], 2), a["is_override"], a["version"])


async def _state(stack: Any, engine: AsyncEngine, tenant: Tenant) -> dict[str, Any]:
    """Each mail's attribution, and what metrics holds of it: (version, status, deal)."""
    mails = ("m-moved", "m-kept", "m-logged", "m-dee")
    return {
        **{m: await _decided(stack, tenant, m) for m in mails},
        "counted": await contributions(engine, tenant.tenant_id, "c.version, c.status, c.deal_id"),
    }


async def test_mail_decided_before_the_crm_knew_its_contact_moves_to_the_deal_she_holds_a_role_on(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    tenant = await new_tenant(db_engine)
    async with in_process_stack(kafka_settings, database_settings) as stack:
        await sync(
            stack, db_engine, tenant, "2026-10-01T00:00:00Z",
            rep("rep-ana", ANA),
            rep("rep-cy", "cy@seller.example"),
            {"entity_type": "account", "id": "acc-globex", "name": "Globex", "domains": ["globex.example"]},
            contact("con-dee", "acc-globex", DEE),
            _deal("deal-payroll", "Payroll", "rep-ana"),
            _deal("deal-analytics", "Analytics", "rep-cy", "con-bo", "con-dee"),
        )  # fmt: skip
        await post(
            stack,
            tenant,
            email("m-moved", ANA, BO, "2026-10-05T15:00:00Z"),
            email("m-kept", ANA, BO, "2026-10-06T15:00:00Z"),
            email("m-logged", ANA, BO, "2026-10-07T15:00:00Z", crm={"deal_id": "deal-payroll"}),
            email("m-dee", ANA, DEE_TOO, "2026-10-08T15:00:00Z"),
        )
        await settle(kafka_settings)
        await override(stack, tenant, "mail", "m-kept", deal_id="deal-payroll", reason="the payroll rollout")
        await settle(kafka_settings)
        before = await _state(stack, db_engine, tenant)

        # Bo's record, the role on Analytics the CRM listed already.
        await sync(stack, db_engine, tenant, "2026-10-10T00:00:00Z", contact("con-bo", "acc-globex", BO))
        await settle(kafka_settings)
        bo_arrived = await _state(stack, db_engine, tenant)

        # Dee's record lists her second address.
        dee = {**contact("con-dee", "acc-globex", DEE), "emails": [DEE, DEE_TOO]}
        await sync(stack, db_engine, tenant, "2026-10-11T00:00:00Z", dee)
        await settle(kafka_settings)
        dee_changed = await _state(stack, db_engine, tenant)

    assert before == {
        "m-moved": ("attributed", "rep-ana", "deal-payroll", 0.67, False, 1),
        "m-kept": ("attributed", "rep-ana", "deal-payroll", 1.0, True, 2),
        "m-logged": ("attributed", "rep-ana", "deal-payroll", 1.0, False, 1),
        "m-dee": ("attributed", "rep-ana", "deal-payroll", 0.67, False, 1),
        "counted": [
            ("m-dee", 1, "attributed", "deal-payroll"),
            ("m-kept", 2, "attributed", "deal-payroll"),
            ("m-logged", 1, "attributed", "deal-payroll"),
            ("m-moved", 1, "attributed", "deal-payroll"),
        ],
    }
    assert bo_arrived == {
        **before,
        "m-moved": ("attributed", "rep-ana", "deal-analytics", 0.95, False, 2),
        "counted": [
            ("m-dee", 1, "attributed", "deal-payroll"),
            ("m-kept", 2, "attributed", "deal-payroll"),
            ("m-logged", 1, "attributed", "deal-payroll"),
            ("m-moved", 2, "attributed", "deal-analytics"),
        ],
    }
    assert dee_changed == {
        **bo_arrived,
        "m-dee": ("attributed", "rep-ana", "deal-analytics", 0.95, False, 2),
        "counted": [
            ("m-dee", 2, "attributed", "deal-analytics"),
            ("m-kept", 2, "attributed", "deal-payroll"),
            ("m-logged", 1, "attributed", "deal-payroll"),
            ("m-moved", 2, "attributed", "deal-analytics"),
        ],
    }
