"""A rep leaving mid-quarter, her open deals reassigned, through the canonical API over time."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.settings import DatabaseSettings, KafkaSettings
from libs.common.testing.stack import in_process_stack
from tests.integration.quarter.quarter_support import (
    activity,
    counted,
    east_and_west,
    email,
    get,
    new_tenant,
    post,
    received,
    renewal,
    rep,
    settle,
    sync,
)

Q_START = "2026-10-01T00:00:00Z"
ANA = "ana@seller.example"
BEA = "bea@seller.example"
BO = "bo@buyer.example"


CRM = east_and_west(rep("rep-ana", ANA), rep("rep-bea", BEA), BO)


@pytest.mark.parametrize(
    "departure",
    [{"deleted": True}, {"active": False}],
    ids=["deleted", "deactivated"],
)
async def test_a_departed_reps_work_stays_hers_and_her_reassigned_deal_credits_its_new_owner(
    kafka_settings: KafkaSettings,
    database_settings: DatabaseSettings,
    db_engine: AsyncEngine,
    departure: dict[str, Any],
) -> None:
    """Bea (East) owns deal-1 and emails Bo in October. On 15 November she leaves (a tombstone, or
    the CRM's deactivation: ``active: false``) and deal-1 goes to Ana (West). Bea's October email
    stays hers and East's even when the reassignment re-decides the account's mail; Ana's email of
    20 November is Ana's; Bo's reply of 21 November to Bea's old address, after she left, is the
    deal's and its new owner's (West), not Bea's: a departed rep earns nothing after she left."""
    tenant = await new_tenant(db_engine)
    async with in_process_stack(kafka_settings, database_settings) as stack:
        await sync(stack, db_engine, tenant, Q_START, *CRM)
        await post(stack, tenant, email("oct-bea", BEA, BO, "2026-10-10T15:00:00Z"))
        await settle(kafka_settings)
        await sync(
            stack,
            db_engine,
            tenant,
            "2026-11-15T09:00:00Z",
            rep("rep-bea", BEA, **departure),
            renewal("rep-ana"),
        )
        await post(
            stack,
            tenant,
            email("nov-ana", ANA, BO, "2026-11-20T15:00:00Z"),
            received("nov-bo", BO, BEA, "2026-11-21T15:00:00Z"),
        )
        await settle(kafka_settings)
        seen = {n: await activity(stack, tenant, "mail", n) for n in ("oct-bea", "nov-ana", "nov-bo")}
        assert {n: (a["status"], a["rep"], a["team"], a["deal"]) for n, a in seen.items()} == {
            "oct-bea": ("attributed", "rep-bea", "team-east", "deal-1"),
            "nov-ana": ("attributed", "rep-ana", "team-west", "deal-1"),
            "nov-bo": ("attributed", "rep-ana", "team-west", "deal-1"),
        }
        q = ("quarter", "2026-10-01", "2026-10-01")
        assert await counted(stack, tenant, "reps", "rep-bea", *q) == {"2026-10-01": 1}
        assert await counted(stack, tenant, "reps", "rep-ana", *q) == {"2026-10-01": 2}
        assert await counted(stack, tenant, "teams", "team-east", *q) == {"2026-10-01": 1}
        assert await counted(stack, tenant, "teams", "team-west", *q) == {"2026-10-01": 2}
        # Her manager reads her quarter after she left: funnel and activity list as the scores.
        funnel = await get(stack, tenant, "/v1/funnel?rep_id=rep-bea&from=2026-10-01&to=2026-12-31")
        assert funnel["leading_indicators"]["emails_sent"] == 1
        listed = await get(stack, tenant, "/v1/activities?rep_id=rep-bea")
        assert [i["occurred_at"][:10] for i in listed["items"]] == ["2026-10-10"]
        # She is on no roster any more: not among East's members, nor its reps.
        assert (await get(stack, tenant, "/v1/teams/team-east"))["member_ids"] == []
        assert (await get(stack, tenant, "/v1/reps?team_id=team-east"))["items"] == []
        timeline = await get(stack, tenant, "/v1/deals/deal-1/activities")
        assert timeline["deal"]["owner_rep_id"] == "rep-ana"
        assert [(i["occurred_at"][:10], i["rep_id"]) for i in timeline["items"]] == [
            ("2026-11-21", "rep-ana"),
            ("2026-11-20", "rep-ana"),
            ("2026-10-10", "rep-bea"),
        ]


async def test_a_departure_synced_late_takes_back_what_was_credited_to_her_since(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """Bea is deactivated on 15 November and deal-1 reassigned to Ana, but the CRM sync sends it
    only later: Bo's mail of 21 November to her address was credited to her meanwhile. The
    departure re-decides it: the deal's and Ana's; Bea's October mail stays hers."""
    tenant = await new_tenant(db_engine)
    async with in_process_stack(kafka_settings, database_settings) as stack:
        await sync(stack, db_engine, tenant, Q_START, *CRM)
        await post(
            stack,
            tenant,
            email("oct-bea", BEA, BO, "2026-10-10T15:00:00Z"),
            received("nov-bo", BO, BEA, "2026-11-21T15:00:00Z"),
        )
        await settle(kafka_settings)
        assert (await activity(stack, tenant, "mail", "nov-bo"))["rep"] == "rep-bea"
        await sync(
            stack,
            db_engine,
            tenant,
            "2026-11-15T09:00:00Z",
            rep("rep-bea", BEA, active=False),
            renewal("rep-ana"),
        )
        await settle(kafka_settings)
        seen = {n: await activity(stack, tenant, "mail", n) for n in ("oct-bea", "nov-bo")}
        assert {n: (a["rep"], a["team"], a["deal"], a["version"]) for n, a in seen.items()} == {
            "oct-bea": ("rep-bea", "team-east", "deal-1", 1),
            "nov-bo": ("rep-ana", "team-west", "deal-1", 2),
        }
        q = ("quarter", "2026-10-01", "2026-10-01")
        assert await counted(stack, tenant, "reps", "rep-bea", *q) == {"2026-10-01": 1}
        assert await counted(stack, tenant, "reps", "rep-ana", *q) == {"2026-10-01": 1}
