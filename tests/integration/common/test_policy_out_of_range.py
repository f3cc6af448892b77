"""A tenant's attribution policy set out of range by hand costs that tenant only, never the consumer.

``grace_days_after_closed: 1000000`` is a well-typed integer, so it used to pass the policy and
then overflow every date it was subtracted from: each of the tenant's activities failed on its
own, counted toward the DLQ limit, and past it attribution stopped for every tenant (found by
replaying issue 13 on ``spm up``). The policy now refuses the value, so the failure is the
tenant's settings: its messages are dead-lettered naming the setting, outside the DLQ budget.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.kafka.dlq import DeadLetter, inspect_dead_letters
from libs.common.settings import DatabaseSettings, KafkaSettings
from libs.common.tenancy import create_tenant
from libs.common.testing.stack import TEST_SECRET_KEY, in_process_stack
from libs.common.topics import ACTIVITY_INGESTED, CRM_ENTITY_CHANGED
from tests.integration.polling import eventually

from .poison_messages import Message, call_message, crm_for_one_rep, produce

DAY = datetime(2026, 11, 2, 9, tzinfo=UTC)
REP_PHONE = "+14155550001"
CONTACT_PHONE = "+12125550100"
ACME_CALLS = 30
#: More than the default DLQ limit (100 within 1,000 messages): one dead letter each would stop the consumer.
FAR_CALLS = 130


async def acme_rollup(engine: AsyncEngine) -> list[tuple[object, ...]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT entity_id, period_start, activities, talk_seconds FROM metric_rollups "
                "WHERE tenant_id = 'acme' AND level = 'rep' AND granularity = 'day'"
            )
        )
        return [tuple(r) for r in rows]


async def test_a_policy_window_no_date_survives_parks_only_its_tenant(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    async with db_engine.begin() as conn:
        for tenant in ("acme", "far"):
            await create_tenant(conn, tenant, TEST_SECRET_KEY)
        # Stored by hand (SQL), past any validation on write.
        await conn.execute(
            text("UPDATE tenants SET settings = CAST(:s AS jsonb) WHERE tenant_id = 'far'"),
            {"s": orjson.dumps({"attribution": {"grace_days_after_closed": 1_000_000}}).decode()},
        )
    crm = crm_for_one_rep("acme", "rep-1", REP_PHONE, CONTACT_PHONE, DAY.isoformat())
    activities: list[Message] = []
    for i in range(FAR_CALLS):
        activities.append(call_message("far", f"f-{i}", DAY, caller="+14155550002", callee=CONTACT_PHONE))
        if i < ACME_CALLS:
            minute = DAY + timedelta(minutes=i)
            activities.append(call_message("acme", f"a-{i}", minute, caller=REP_PHONE, callee=CONTACT_PHONE))
    await produce(kafka_settings, (CRM_ENTITY_CHANGED, crm), (ACTIVITY_INGESTED, activities))

    expected = [("rep-1", DAY.date(), ACME_CALLS, ACME_CALLS * 120)]

    async def letters_and_rollup() -> tuple[list[DeadLetter], list[tuple[object, ...]]]:
        letters = await inspect_dead_letters(kafka_settings, ACTIVITY_INGESTED, limit=1000)
        return letters, await acme_rollup(db_engine)

    async with in_process_stack(
        kafka_settings, database_settings, services=("attribution", "metrics")
    ) as stack:
        letters, _ = await eventually(
            letters_and_rollup,
            lambda got: len(got[0]) >= FAR_CALLS and got[1] == expected,
            90,
            f"{FAR_CALLS} dead letters and acme's rollup",
        )
        app = stack.apps["attribution"]
        # Before the fix the DLQ limit had stopped it here.
        assert not app.state.consumer_task.done()
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://c") as client:
            ready = await client.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.headers["x-content-type-options"] == "nosniff"

    assert await acme_rollup(db_engine) == expected
    assert len(letters) == FAR_CALLS
    assert {letter.header("ce_tenant") for letter in letters} == {"far"}
    for letter in letters:
        error = letter.provenance["dlq_error"] or ""
        assert error.startswith("TenantSettingsInvalid: tenant far: settings invalid at attribution"), error
        assert "grace_days_after_closed" in error, error
