"""Poison produced straight onto the topics costs only the poisoned messages, never a tenant's stream.

A NUL byte in an activity's external id and a CRM entity dated before year 1 in UTC fail the
contracts as the consumers decode them; a tenant whose stored settings cannot apply fails inside
the handlers' transactions, and the runner splits the batches until those messages stand alone.
Each is dead-lettered with its error, and everything else is committed. Another tenant's figures come out exact and no consumer stops.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.contracts.envelope import encode_body
from libs.common.kafka.dlq import DeadLetter, inspect_dead_letters
from libs.common.settings import DatabaseSettings, KafkaSettings
from libs.common.tenancy import create_tenant
from libs.common.testing.stack import TEST_SECRET_KEY, in_process_stack
from libs.common.topics import ACTIVITY_ATTRIBUTED, ACTIVITY_INGESTED, CRM_ENTITY_CHANGED, Topic
from tests.integration.metrics.metrics_support import attributed, envelope_of
from tests.integration.polling import eventually

from .poison_messages import (
    NUL_EXTERNAL_ID,
    OUT_OF_RANGE_UPDATED_AT,
    Message,
    call_message,
    crm_for_one_rep,
    crm_message,
    produce,
)

DAY = datetime(2026, 11, 2, 9, tzinfo=UTC)
CALLS = 40
REP_PHONE = "+14155550001"
CONTACT_PHONE = "+12125550100"


async def dead_letters(settings: KafkaSettings, topic: Topic) -> list[DeadLetter]:
    return await inspect_dead_letters(settings, topic, limit=1000)


async def counts_by_tenant(engine: AsyncEngine, table: str) -> dict[str, int]:
    async with engine.connect() as conn:
        rows = await conn.execute(text(f"SELECT tenant_id, count(*) FROM {table} GROUP BY tenant_id"))
        return {r[0]: int(r[1]) for r in rows}


async def acme_day(engine: AsyncEngine) -> dict[str, Any]:
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT entity_id, period_start, activities, dials, connects, talk_seconds FROM metric_rollups "
                    "WHERE tenant_id = 'acme' AND level = 'rep' AND granularity = 'day'"
                )
            )
        ).all()
    return {"rows": [tuple(r) for r in row]}


async def settled(
    kafka_settings: KafkaSettings, engine: AsyncEngine, counts: list[int], rollup: dict[str, Any]
) -> dict[str, list[DeadLetter]]:
    """The dead letters per input topic once their counts and acme's day are as expected (within 90 s)."""

    async def letters_and_day() -> tuple[dict[str, list[DeadLetter]], dict[str, Any]]:
        letters = {
            t.name: await dead_letters(kafka_settings, t)
            for t in (ACTIVITY_INGESTED, CRM_ENTITY_CHANGED, ACTIVITY_ATTRIBUTED)
        }
        return letters, await acme_day(engine)

    found: tuple[dict[str, list[DeadLetter]], dict[str, Any]] = await eventually(
        letters_and_day,
        lambda got: [len(v) for v in got[0].values()] == counts and got[1] == rollup,
        90,
        f"dead letters {counts} per input topic and acme's day",
    )
    return found[0]


async def test_poison_from_one_tenant_goes_to_the_dlq_while_another_tenants_batch_commits_exactly(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    async with db_engine.begin() as conn:
        for tenant in ("acme", "evil", "badattr", "badmetrics"):
            await create_tenant(conn, tenant, TEST_SECRET_KEY)
        # Stored by hand, past any validation on write.
        await conn.execute(
            text("UPDATE tenants SET settings = CAST(:s AS jsonb) WHERE tenant_id = :t"),
            [
                {
                    "t": "badattr",
                    "s": orjson.dumps({"attribution": {"ambiguity_policy": "coin_flip"}}).decode(),
                },
                {
                    "t": "badmetrics",
                    "s": orjson.dumps({"metrics": {"conversation_min_seconds": "long"}}).decode(),
                },
            ],
        )
    at = DAY.isoformat()
    activities: list[Message] = []
    crm: list[Message] = crm_for_one_rep("acme", "rep-1", REP_PHONE, CONTACT_PHONE, at)
    crm.insert(
        1, crm_message("evil", {"entity_type": "rep", "id": "r-x", "updated_at": OUT_OF_RANGE_UPDATED_AT})
    )
    for i in range(CALLS):
        call = call_message(
            "acme", f"a-{i}", DAY + timedelta(minutes=i), caller=REP_PHONE, callee=CONTACT_PHONE
        )
        activities.append(call)
        if i == 10:
            activities.append(call_message("evil", NUL_EXTERNAL_ID, DAY, caller="+1", callee="+2"))
        if i == 20:
            activities.append(call_message("evil", "fine", DAY, caller="+1", callee="+2"))
            activities.append(call_message("badattr", "b-1", DAY, caller="+1", callee="+2"))
        if i == 30:
            activities.append(call_message("badattr", "b-2", DAY, caller="+1", callee="+2"))
            activities.append(call_message("badmetrics", "m-1", DAY, caller="+1", callee="+2"))
    # Everything is on the topics before the consumers start, so the poison shares batches
    # with acme's messages.
    await produce(kafka_settings, (CRM_ENTITY_CHANGED, crm), (ACTIVITY_INGESTED, activities))

    expected_rollup = {"rows": [("rep-1", DAY.date(), CALLS, CALLS, CALLS, CALLS * 120)]}
    async with in_process_stack(
        kafka_settings, database_settings, services=("attribution", "metrics")
    ) as stack:
        letters = await settled(kafka_settings, db_engine, [4, 1, 0], expected_rollup)
        # Neither consumer raised: both tasks still run, and both are ready.
        for name in ("attribution", "metrics"):
            app = stack.apps[name]
            assert not app.state.consumer_task.done(), name
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://c") as c:
                ready = await c.get("/readyz")
            assert ready.status_code == 200, (name, ready.text)
            assert ready.json()["checks"]["consumer"] is True

    assert await acme_day(db_engine) == expected_rollup
    # A stored document that does not validate stops its tenant in every service: attribution
    # already refuses badmetrics' activity (the whole document is one contract).
    assert await counts_by_tenant(db_engine, "activities") == {"acme": CALLS, "evil": 1}
    assert await counts_by_tenant(db_engine, "metric_contributions") == {"acme": CALLS, "evil": 1}

    ingested = {letter.header("ce_tenant"): letter for letter in letters["activity-ingested"]}
    assert sorted(letter.header("ce_tenant") or "" for letter in letters["activity-ingested"]) == [
        "badattr",
        "badattr",
        "badmetrics",
        "evil",
    ]
    nul = ingested["evil"]
    assert nul.provenance["dlq_service"] == "attribution"
    assert orjson.loads(nul.value or b"{}")["external_id"] == NUL_EXTERNAL_ID
    # The contract refuses it as the consumer decodes it, before any statement.
    assert nul.provenance["dlq_error"] == (
        "body is not a valid ActivityIngestedV1: "
        "external_id: must not contain a control character (U+0000 at position 3)"
    )
    for letter in letters["activity-ingested"]:
        if letter.header("ce_tenant") == "badattr":
            assert letter.provenance["dlq_error"] == (
                "TenantSettingsInvalid: tenant badattr: settings invalid at attribution.ambiguity_policy: "
                "Input should be 'primary_with_secondaries' or 'unique_only'"
            )
        if letter.header("ce_tenant") == "badmetrics":
            assert letter.provenance["dlq_error"] == (
                "TenantSettingsInvalid: tenant badmetrics: settings invalid at metrics.conversation_min_seconds: "
                "Input should be a valid integer"
            )
    [dated] = letters["crm-entity-changed"]
    assert dated.header("ce_tenant") == "evil"
    assert orjson.loads(dated.value or b"{}")["entity"]["updated_at"] == OUT_OF_RANGE_UPDATED_AT
    assert dated.provenance["dlq_error"] == (
        "body is not a valid CrmEntityChangedV1: "
        "entity.rep.updated_at: Input should be greater than or equal to 1970-01-01T00:00:00Z"
    )
    assert letters["activity-attributed"] == []


def _with_ce_tenant(message: Message, tenant: str) -> Message:
    value, headers, key = message
    return value, [(k, tenant.encode() if k == "ce_tenant" else v) for k, v in headers], key


async def test_messages_for_a_tenant_that_does_not_exist_or_under_another_tenants_header_are_dead_lettered(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    async with db_engine.begin() as conn:
        await create_tenant(conn, "acme", TEST_SECRET_KEY)
    at = DAY.isoformat()
    crm = crm_for_one_rep("acme", "rep-1", REP_PHONE, CONTACT_PHONE, at)
    crm.insert(1, crm_message("ghost", {"entity_type": "rep", "id": "r-g", "updated_at": at}))
    activities: list[Message] = []
    for i in range(CALLS):
        activities.append(
            call_message("acme", f"a-{i}", DAY + timedelta(minutes=i), caller=REP_PHONE, callee=CONTACT_PHONE)
        )
        if i in (5, 25):
            activities.append(call_message("ghost", f"g-{i}", DAY, caller=REP_PHONE, callee=CONTACT_PHONE))
        if i == 15:  # ghost's rows hidden under acme's header
            hidden = call_message("ghost", "hidden", DAY, caller=REP_PHONE, callee=CONTACT_PHONE)
            activities.append(_with_ce_tenant(hidden, "acme"))
    # Straight onto metrics' topic, as a buggy producer would.
    ghost_attributed = attributed(tenant_id="ghost", activity=7)
    attributed_messages = [
        (encode_body(ghost_attributed), envelope_of(ghost_attributed).to_headers(), b"ghost"),
    ]
    await produce(
        kafka_settings,
        (CRM_ENTITY_CHANGED, crm),
        (ACTIVITY_INGESTED, activities),
        (ACTIVITY_ATTRIBUTED, attributed_messages),
    )

    expected_rollup = {"rows": [("rep-1", DAY.date(), CALLS, CALLS, CALLS, CALLS * 120)]}
    async with in_process_stack(
        kafka_settings, database_settings, services=("attribution", "metrics")
    ) as stack:
        letters = await settled(kafka_settings, db_engine, [3, 1, 1], expected_rollup)
        for name in ("attribution", "metrics"):
            assert not stack.apps[name].state.consumer_task.done(), name

    assert await acme_day(db_engine) == expected_rollup
    assert await counts_by_tenant(db_engine, "activities") == {"acme": CALLS}
    assert await counts_by_tenant(db_engine, "metric_contributions") == {"acme": CALLS}
    async with db_engine.connect() as conn:
        reps = (await conn.execute(text("SELECT tenant_id, count(*) FROM ref_reps GROUP BY tenant_id"))).all()
    assert [tuple(r) for r in reps] == [("acme", 1)]
    unknown = "TenantUnknown: tenant 'ghost' does not exist"
    assert sorted(
        (letter.header("ce_tenant"), letter.provenance["dlq_service"], letter.provenance["dlq_error"])
        for letter in letters["activity-ingested"]
    ) == [
        ("acme", "attribution", "ce_tenant 'acme' does not match the payload's tenant_id 'ghost'"),
        ("ghost", "attribution", unknown),
        ("ghost", "attribution", unknown),
    ]
    [(crm_letter)] = letters["crm-entity-changed"]
    assert (crm_letter.header("ce_tenant"), crm_letter.provenance["dlq_error"]) == ("ghost", unknown)
    [metrics_letter] = letters["activity-attributed"]
    assert (metrics_letter.provenance["dlq_service"], metrics_letter.provenance["dlq_error"]) == (
        "metrics",
        unknown,
    )
