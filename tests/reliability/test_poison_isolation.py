"""Poison from one tenant, produced straight onto the topics mid-stream, never stops another tenant.

Tenant ``evil`` writes activities with a NUL byte in their external id and CRM entities dated
before year 1 in UTC onto ``activity-ingested`` and ``crm-entity-changed``, as a buggy producer
would; tenant ``misconfigured`` has a settings document stored by hand that attribution cannot
apply. Meanwhile ``acme`` streams 20,000 activities through ingest. The consumers, real
processes, isolate each poison message into its DLQ with the error and go on: acme's totals are
exact, no consumer exits, and both are ready at the end.
"""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import orjson
from aiokafka import AIOKafkaProducer
from sqlalchemy import text

from libs.common.db.engine import make_engine
from libs.common.kafka.dlq import inspect_dead_letters
from libs.common.tenancy import create_tenant
from libs.common.topics import ACTIVITY_ATTRIBUTED, ACTIVITY_INGESTED, CRM_ENTITY_CHANGED
from tests.integration.common.poison_messages import OUT_OF_RANGE_UPDATED_AT, call_message, crm_message

from .harness import SECRET_KEY, Fault, FaultEngines, Pipeline

STREAM = 20_000
ROUNDS = (0.15, 0.45, 0.75)
NUL_PER_ROUND = 3
MISCONFIGURED_PER_ROUND = 2


async def test_poison_from_one_tenant_is_dead_lettered_while_another_streams_exactly(
    engines_under_fault: FaultEngines,
) -> None:
    pipeline = Pipeline(engines_under_fault, "poison")
    await pipeline.prepare()
    engine = make_engine(pipeline.db, "reliability")
    try:
        async with engine.begin() as conn:
            await create_tenant(conn, "evil", SECRET_KEY)
            await create_tenant(conn, "misconfigured", SECRET_KEY)
            await conn.execute(
                text("UPDATE tenants SET settings = CAST(:s AS jsonb) WHERE tenant_id = 'misconfigured'"),
                {"s": orjson.dumps({"attribution": {"min_confidence": "high"}}).decode()},
            )
    finally:
        await engine.dispose()
    producer = AIOKafkaProducer(bootstrap_servers=pipeline.kafka.bootstrap_servers)
    await producer.start()
    try:
        stream = await pipeline.begin_stream(STREAM)

        def poison(round_no: int) -> Fault:
            async def fault() -> None:
                now = datetime.now(UTC)
                activities = ACTIVITY_INGESTED.physical(pipeline.prefix)
                for i in range(NUL_PER_ROUND):
                    value, headers, key = call_message(
                        "evil", f"nul\x00{round_no}-{i}", now, caller="+1", callee="+2"
                    )
                    await producer.send(activities, value, key=key, headers=headers)
                for i in range(MISCONFIGURED_PER_ROUND):
                    value, headers, key = call_message(
                        "misconfigured", f"m-{round_no}-{i}", now, caller="+1", callee="+2"
                    )
                    await producer.send(activities, value, key=key, headers=headers)
                entity = {"entity_type": "rep", "id": f"r-{round_no}", "updated_at": OUT_OF_RANGE_UPDATED_AT}
                value, headers, key = crm_message("evil", entity)
                await producer.send(
                    CRM_ENTITY_CHANGED.physical(pipeline.prefix), value, key=key, headers=headers
                )
                await producer.flush()

            return fault

        await pipeline.send(stream.planned, stream.stats, {at: poison(n) for n, at in enumerate(ROUNDS)})
        await pipeline.settle(STREAM)
        await pipeline.assert_stream_exact("poison from another tenant", stream)
        pipeline.assert_no_server_errors(stream.stats)

        letters = await inspect_dead_letters(pipeline.kafka, ACTIVITY_INGESTED, limit=1000)
        by_tenant = sorted(letter.header("ce_tenant") or "" for letter in letters)
        assert by_tenant == ["evil"] * (NUL_PER_ROUND * len(ROUNDS)) + ["misconfigured"] * (
            MISCONFIGURED_PER_ROUND * len(ROUNDS)
        )
        for letter in letters:
            assert letter.provenance["dlq_service"] == "attribution"
            if letter.header("ce_tenant") == "evil":
                # Refused by the contract as attribution decodes it, before any statement.
                assert letter.provenance["dlq_error"] == (
                    "body is not a valid ActivityIngestedV1: "
                    "external_id: must not contain a control character (U+0000 at position 3)"
                )
            else:
                assert letter.provenance["dlq_error"] == (
                    "TenantSettingsInvalid: tenant misconfigured: settings invalid at attribution.min_confidence: "
                    "Input should be a valid number"
                )
        crm_letters = await inspect_dead_letters(pipeline.kafka, CRM_ENTITY_CHANGED, limit=1000)
        assert [letter.header("ce_tenant") for letter in crm_letters] == ["evil"] * len(ROUNDS)
        assert {letter.provenance["dlq_error"] for letter in crm_letters} == {
            "body is not a valid CrmEntityChangedV1: "
            "entity.rep.updated_at: Input should be greater than or equal to 1970-01-01T00:00:00Z"
        }
        assert await inspect_dead_letters(pipeline.kafka, ACTIVITY_ATTRIBUTED, limit=10) == []
        assert await pipeline.scalar("SELECT count(*) FROM activities WHERE tenant_id <> 'acme'") == 0

        # No consumer restarted, and both are ready with their consumer check green.
        async with httpx.AsyncClient(timeout=30) as client:
            for name in ("attribution", "metrics"):
                process = pipeline.one(name)
                assert process.running, name
                assert process.exit_codes == [], name
                ready = await client.get(f"http://127.0.0.1:{process.port}/readyz")
                assert ready.status_code == 200, (name, ready.text)
                assert ready.json()["checks"]["consumer"] is True
                assert "DlqLimitExceeded" not in process.log_text()
                assert "RetryDeadlineExceeded" not in process.log_text()
            # The misconfigured tenant's messages shared batches with acme's: attribution took them
            # out and handled the rest again (the NUL and the out-of-range date never reach a
            # handler: their contracts refuse them as they are decoded).
            exposition = (
                await client.get(f"http://127.0.0.1:{pipeline.one('attribution').port}/metrics")
            ).text
            [calls] = [
                float(line.rsplit(" ", 1)[1])
                for line in exposition.splitlines()
                if line.startswith('spm_consumer_isolation_calls_total{service="attribution"}')
            ]
            assert calls >= 1
    finally:
        await producer.stop()
        codes = pipeline.stop_all()
    # Zero restarts: one exit per service, the clean one at the end.
    assert codes == {"ingest": [0], "attribution": [0], "metrics": [0]}, codes
