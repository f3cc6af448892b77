"""A deal that arrives (or a role on it) re-decides the mail of its contacts that was decided on
another account: the messy outsider world's (``bench.outsider_world_messy``) two misses of seed 21,
sent through ``POST /v1/crm/sync`` and read back through the gateway.

* One person recorded twice, in two accounts (a consultant advising Globex and Initech, one address
  on both records): Ben's mail to her, sent before his Initech deal reached the sync, was decided
  for Ana's Globex deal, the only one known then; Ben's deal arriving must move it (Ben owns it).
* A champion who changed company: Bo left Globex for Initech (her record moved, her new address);
  Ben's mail to her new address, sent before the sync gave her a role on Ben's Initech deal, was
  decided by her old role on Ana's Globex deal; her new role arriving must move it.

Both activities hold a contact of the deal's own account, but were on another account when the
deal changed: before the fix, the window selected only activities on the deal's account and those
of its contacts of other accounts, so neither was re-decided.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.settings import DatabaseSettings, KafkaSettings
from libs.common.testing.stack import in_process_stack
from tests.integration.quarter.quarter_support import (
    Tenant,
    activity,
    contact,
    email,
    new_tenant,
    post,
    rep,
    settle,
    sync,
)

ANA = "ana@seller.example"
BEN = "ben@seller.example"


def _accounts() -> list[dict[str, Any]]:
    return [
        rep("rep-ana", ANA),
        rep("rep-ben", BEN),
        {"entity_type": "account", "id": "acc-globex", "name": "Globex", "domains": ["globex.example"]},
        {"entity_type": "account", "id": "acc-initech", "name": "Initech", "domains": ["initech.example"]},
    ]


def _deal(deal_id: str, account: str, owner: str, *roles: str) -> dict[str, Any]:
    return {
        "entity_type": "deal",
        "id": deal_id,
        "name": f"{account} {deal_id}",
        "account_id": account,
        "owner_rep_id": owner,
        "stage": "proposal",
        "created_at": "2026-10-01T00:00:00Z",
        "contacts": [{"contact_id": c, "role": "champion"} for c in roles],
    }


async def _decided(kafka_settings: KafkaSettings, stack: Any, tenant: Tenant, name: str) -> tuple[Any, ...]:
    """Mail ``name`` once the pipeline settles: (status, deal, version)."""
    await settle(kafka_settings)
    decided = await activity(stack, tenant, "mail", name)
    return (decided["status"], decided["deal"], decided["version"])


async def _synced(
    kafka_settings: KafkaSettings,
    stack: Any,
    engine: AsyncEngine,
    tenant: Tenant,
    at: str,
    *entities: dict[str, Any],
) -> None:
    """``entities`` synced at ``at``, and the pipeline settled after."""
    await sync(stack, engine, tenant, at, *entities)
    await settle(kafka_settings)


async def test_a_deal_arriving_moves_mail_to_its_contact_decided_on_her_other_accounts_deal(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    tenant = await new_tenant(db_engine)
    advisor = "kim@advisory.example"
    async with in_process_stack(kafka_settings, database_settings) as stack:
        await sync(
            stack, db_engine, tenant, "2026-10-01T00:00:00Z",
            *_accounts(),
            contact("con-kim-globex", "acc-globex", advisor),
            contact("con-kim-initech", "acc-initech", advisor),
            _deal("deal-globex", "acc-globex", "rep-ana", "con-kim-globex"),
        )  # fmt: skip
        await post(stack, tenant, email("m-1", BEN, advisor, "2026-10-05T15:00:00Z"))
        assert await _decided(kafka_settings, stack, tenant, "m-1") == ("attributed", "deal-globex", 1)

        await _synced(
            kafka_settings, stack, db_engine, tenant, "2026-10-06T00:00:00Z",
            _deal("deal-initech", "acc-initech", "rep-ben", "con-kim-initech"),
        )  # fmt: skip
        after = await activity(stack, tenant, "mail", "m-1")
    assert (after["status"], after["rep"], after["account"], after["deal"], after["version"]) == (
        "attributed",
        "rep-ben",
        "acc-initech",
        "deal-initech",
        2,
    )


async def test_a_role_given_after_a_job_change_moves_her_new_mail_decided_by_her_old_role(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    tenant = await new_tenant(db_engine)
    old, new = "bo@globex.example", "bo@initech.example"
    async with in_process_stack(kafka_settings, database_settings) as stack:
        await sync(
            stack, db_engine, tenant, "2026-10-01T00:00:00Z",
            *_accounts(),
            contact("con-bo", "acc-globex", old),
            contact("con-cy", "acc-initech", "cy@initech.example"),
            _deal("deal-globex", "acc-globex", "rep-ana", "con-bo"),
            _deal("deal-initech", "acc-initech", "rep-ben", "con-cy"),
        )  # fmt: skip
        await post(stack, tenant, email("m-old", ANA, old, "2026-10-05T15:00:00Z"))
        # Bo moves to Initech on the 10th (her record moved, her new address); Ben writes to her on
        # the 12th, before the sync gives her a role on his deal (on the 13th).
        await sync(stack, db_engine, tenant, "2026-10-10T00:00:00Z", contact("con-bo", "acc-initech", new))
        await post(stack, tenant, email("m-new", BEN, new, "2026-10-12T15:00:00Z"))
        assert await _decided(kafka_settings, stack, tenant, "m-new") == ("attributed", "deal-globex", 1)

        await _synced(
            kafka_settings, stack, db_engine, tenant, "2026-10-13T00:00:00Z",
            _deal("deal-initech", "acc-initech", "rep-ben", "con-cy", "con-bo"),
        )  # fmt: skip
        after = {n: await activity(stack, tenant, "mail", n) for n in ("m-old", "m-new")}
    assert {n: (a["status"], a["rep"], a["deal"], a["version"]) for n, a in after.items()} == {
        "m-old": ("attributed", "rep-ana", "deal-globex", 1),
        "m-new": ("attributed", "rep-ben", "deal-initech", 2),
    }
