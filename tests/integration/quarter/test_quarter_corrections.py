"""Activities re-sent corrected (a higher ``revision``): a corrected time or sender moves the credit
and every rollup exactly, whatever the order the revisions arrive in."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.settings import DatabaseSettings, KafkaSettings
from libs.common.testing.stack import in_process_stack
from tests.integration.quarter.quarter_support import (
    activity,
    counted,
    dial,
    email,
    get,
    new_tenant,
    post,
    settle,
    sync,
)

ANA_PHONE = "+14155550001"
ANA = "ana@seller.example"
BEN = "ben@seller.example"
BO = "bo@buyer.example"


async def test_a_corrected_time_or_sender_moves_the_credit_and_the_rollups(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """Ana moves from East to West on 1 November. A dial logged on 31 October (East, October) is
    corrected to 2 November: it becomes West's and November's. An email logged as Ana's is
    corrected to Ben's (the mailbox connector had the wrong sender): Ben and his team get it, Ana
    and hers lose it. A stale revision arriving after the correction changes nothing."""
    tenant = await new_tenant(db_engine)
    async with in_process_stack(kafka_settings, database_settings) as stack:
        await sync(
            stack,
            db_engine,
            tenant,
            "2026-09-01T00:00:00Z",
            {"entity_type": "team", "id": "team-east", "name": "East"},
            {"entity_type": "team", "id": "team-west", "name": "West"},
            {"entity_type": "team", "id": "team-north", "name": "North"},
            {"entity_type": "rep", "id": "rep-ana", "name": "Ana", "emails": [ANA], "phones": [ANA_PHONE]},
            {"entity_type": "rep", "id": "rep-ben", "name": "Ben", "emails": [BEN]},
            {
                "entity_type": "team_membership",
                "id": "m1",
                "rep_id": "rep-ana",
                "team_id": "team-east",
                "valid_from": "2026-01-01",
                "valid_to": "2026-11-01",
            },
            {
                "entity_type": "team_membership",
                "id": "m2",
                "rep_id": "rep-ana",
                "team_id": "team-west",
                "valid_from": "2026-11-01",
            },
            {
                "entity_type": "team_membership",
                "id": "m3",
                "rep_id": "rep-ben",
                "team_id": "team-north",
                "valid_from": "2026-01-01",
            },
            {"entity_type": "account", "id": "acc-1", "name": "Buyer", "domains": ["buyer.example"]},
            {"entity_type": "contact", "id": "con-bo", "account_id": "acc-1", "emails": [BO]},
            {
                "entity_type": "deal",
                "id": "deal-1",
                "name": "Buyer deal",
                "account_id": "acc-1",
                "owner_rep_id": "rep-ana",
                "created_at": "2026-09-01T00:00:00Z",
                "contacts": [{"contact_id": "con-bo", "role": "champion"}],
            },
        )
        await post(
            stack,
            tenant,
            dial("d-1", ANA_PHONE, "2026-10-31T15:00:00Z"),
            email("e-1", ANA, BO, "2026-11-10T15:00:00Z"),
        )
        await settle(kafka_settings)
        assert (await activity(stack, tenant, "dialer", "d-1"))["team"] == "team-east"
        await post(
            stack,
            tenant,
            dial("d-1", ANA_PHONE, "2026-11-02T15:00:00Z", revision=1),
            email("e-1", BEN, BO, "2026-11-10T15:00:00Z", revision=1),
        )
        await settle(kafka_settings)
        # The first revisions again, late (a replay): they change nothing.
        await post(
            stack,
            tenant,
            dial("d-1", ANA_PHONE, "2026-10-31T15:00:00Z"),
            email("e-1", ANA, BO, "2026-11-10T15:00:00Z"),
        )
        await settle(kafka_settings)

        dialled = await activity(stack, tenant, "dialer", "d-1")
        mailed = await activity(stack, tenant, "mail", "e-1")
        assert (dialled["rep"], dialled["team"], dialled["version"]) == ("rep-ana", "team-west", 2)
        assert (mailed["status"], mailed["rep"], mailed["team"], mailed["deal"], mailed["version"]) == (
            "attributed",
            "rep-ben",
            "team-north",
            "deal-1",
            2,
        )
        months = ("month", "2026-10-01", "2026-11-01")
        assert await counted(stack, tenant, "reps", "rep-ana", *months) == {"2026-11-01": 1}
        assert await counted(stack, tenant, "reps", "rep-ben", *months) == {"2026-11-01": 1}
        assert await counted(stack, tenant, "teams", "team-east", *months) == {}
        assert await counted(stack, tenant, "teams", "team-west", *months) == {"2026-11-01": 1}
        assert await counted(stack, tenant, "teams", "team-north", *months) == {"2026-11-01": 1}
        days = await counted(stack, tenant, "reps", "rep-ana", "day", "2026-10-31", "2026-11-02")
        assert days == {"2026-11-02": 1}
        timeline = await get(stack, tenant, "/v1/deals/deal-1/activities")
        assert [(i["rep_id"], i["team_id"]) for i in timeline["items"]] == [("rep-ben", "team-north")]
        body = await get(stack, tenant, "/v1/activities?rep_id=rep-ana")
        assert [i["occurred_at"] for i in body["items"]] == ["2026-11-02T15:00:00Z"]
