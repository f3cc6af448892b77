"""Held-out situations of people and records changing over time, as a CRM admin and a dialer
send them: the CRM through ``POST /v1/crm/sync`` (its current state only, no history), the
dialer's calls through ``POST /v1/events``, read back as a manager does through the gateway. The
real broker, attribution, metrics and PostgreSQL; each call's truth is written next to it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.settings import DatabaseSettings, KafkaSettings
from libs.common.testing.stack import in_process_stack
from tests.integration.attribution.attribution_support import rows
from tests.integration.attribution.test_attribution_held_out_situations_calls import (
    ANA_LINE,
    BO_LINE,
    _account,
    _contact,
    _deal,
    _decided,
    _from_ana,
    _rep,
    _setup,
    _sync,
)
from tests.integration.polling import erasure_done
from tests.integration.quarter.quarter_support import get, post


async def _former_accounts(engine: AsyncEngine, tenant_id: str) -> list[tuple[Any, ...]]:
    return await rows(
        engine,
        "SELECT contact_id, account_id, until FROM ref_contact_former_accounts WHERE tenant_id = :t "
        "ORDER BY contact_id, until",
        {"t": tenant_id},
    )


#: Dee's and Eve's mobiles: they keep them when they change jobs.
DEE_MOBILE, EVE_MOBILE = "+14155550160", "+14155550161"
MOVED = "2026-11-10T09:00:00Z"


async def test_a_contact_who_moved_keeps_what_she_did_at_her_old_company_there(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """Truths, as a sales manager reads them:

    * Dee, champion on Old Co's deal (Ana's), moves to New Co on 10 November with her mobile.
      The CRM's only word of it is its current state: Dee at New Co, champion on New Co's deal
      (Bo's), no longer on Old Co's. Ana's calls to Dee in October were Old Co's deal and stay
      there: when the move arrives, when Old Co's deal is corrected later (which re-decides Old
      Co's activities), and for an October call the dialer posts after the move. Her call of the
      12th is New Co's deal.
    * Eve was never in the CRM before the same snapshot names her at New Co (on New Co's deal):
      Ana's October call to her, unmatched until then, is New Co's deal: all we know of her.

    Her former account is kept with the time of the version that moved her; erasing her erases it.
    """
    tenant = await _setup(db_engine)
    before: list[dict[str, Any]] = [
        _rep("rep-ana", ANA_LINE),
        _rep("rep-bo", BO_LINE),
        _account("oldco"),
        _contact("dee", "oldco", DEE_MOBILE),
        _deal("oldco", "oldco", "dee"),
        _account("newco"),
        _deal("newco", "newco", owner="rep-bo"),
    ]
    snapshot: list[dict[str, Any]] = [
        _contact("dee", "newco", DEE_MOBILE),
        _contact("eve", "newco", EVE_MOBILE),
        _deal("oldco", "oldco"),
        _deal("newco", "newco", "dee", "eve", owner="rep-bo"),
    ]
    october = [
        _from_ana("dee-oct-5", DEE_MOBILE, at="2026-10-05T17:00:00Z"),
        _from_ana("eve-oct-6", EVE_MOBILE, at="2026-10-06T17:00:00Z"),
    ]
    later = [
        _from_ana("dee-oct-20-late", DEE_MOBILE, at="2026-10-20T17:00:00Z"),
        _from_ana("dee-nov-12", DEE_MOBILE, at="2026-11-12T17:00:00Z"),
    ]
    async with in_process_stack(kafka_settings, database_settings) as stack:
        await _sync(stack, db_engine, tenant, *before)
        early = await _decided(stack, kafka_settings, tenant, *october)
        await _sync(stack, db_engine, tenant, *snapshot, updated_at=MOVED)
        await post(stack, tenant, *later)
        moved = await _decided(stack, kafka_settings, tenant, *october, *later, post_them=False)
        # Old Co's deal corrected: it was created in September (re-decides Old Co's activities).
        corrected = {**_deal("oldco", "oldco"), "created_at": "2026-09-15T00:00:00Z"}
        await _sync(stack, db_engine, tenant, corrected, updated_at="2026-11-20T09:00:00Z")
        found = await _decided(stack, kafka_settings, tenant, *october, *later, post_them=False)
        timelines = {
            deal: len((await get(stack, tenant, f"/v1/deals/{deal}/activities"))["items"])
            for deal in ("deal-oldco", "deal-newco")
        }
        former = await _former_accounts(db_engine, tenant.tenant_id)
        # Dee asks to be forgotten.
        job = await erasure_done(stack.gateway, tenant.admin, {"phone": DEE_MOBILE}, "Dee's erasure")
        forgotten = await _former_accounts(db_engine, tenant.tenant_id)
    old = ("attributed", "deal-oldco", (), "acc-oldco", "rep-ana", None)
    new = ("attributed", "deal-newco", (), "acc-newco", "rep-ana", None)
    assert early == {"dee-oct-5": old, "eve-oct-6": ("unmatched", None, (), None, "rep-ana", None)}
    assert moved == {"dee-oct-5": old, "eve-oct-6": new, "dee-oct-20-late": old, "dee-nov-12": new}
    assert found == moved
    # What each deal's timeline shows a manager: Old Co's keeps Dee's two October calls.
    assert timelines == {"deal-oldco": 2, "deal-newco": 2}
    assert former == [("con-dee", "acc-oldco", datetime(2026, 11, 10, 9, tzinfo=UTC))]
    assert job["counts"]["contacts_deleted"] == 1
    assert forgotten == []
