"""No shared fate in the duplicate ledger: one request's bad value never fails another request.

Requests in flight together share one ledger statement. Values are checked before they are
queued; and if the database still refuses the shared statement for a value, every request
runs alone so that only the culprit gets the error.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.db.engine import make_engine
from libs.common.settings import DatabaseSettings, KafkaSettings
from services.ingest.adapters.repository import SeenLedger

from .ingest_integration_support import TENANT, ingest_client, setup_tenant

OTHER = "globex"


def call(external_id: str, revision: int = 1) -> dict[str, Any]:
    return {
        "source": "dialer",
        "external_id": external_id,
        "kind": "call",
        "direction": "outbound",
        "outcome": "connected",
        "occurred_at": "2026-11-24T15:00:00Z",
        "duration_seconds": 40,
        "revision": revision,
        "participants": [{"phone": "+14155550001", "role": "caller"}],
    }


async def test_a_tenants_out_of_range_revision_fails_only_its_own_requests(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    hostile = await setup_tenant(db_engine)
    victim = await setup_tenant(db_engine, tenant=OTHER)
    async with ingest_client(kafka_settings, database_settings) as client:

        async def post(key: str, activity: dict[str, Any]) -> int:
            response = await client.post(
                "/v1/events", json={"activities": [activity]}, headers={"Authorization": f"Bearer {key}"}
            )
            return response.status_code

        # Interleaved and in flight together, as the 499 callbacks of the report were.
        who, requests = [], []
        for i in range(200):
            who.append(OTHER)
            requests.append(post(victim["ingest"], call(f"ok-{i}")))
            if i % 10 == 0:
                who.append(TENANT)
                requests.append(post(hostile["ingest"], call(f"bad-{i}", revision=2**63)))
        statuses = await asyncio.gather(*requests)
    answered = list(zip(who, statuses, strict=True))
    assert [s for w, s in answered if w == OTHER] == [202] * 200
    assert [s for w, s in answered if w == TENANT] == [422] * 20
    async with db_engine.connect() as conn:
        seen = await conn.execute(
            text("SELECT tenant_id, count(*) FROM ingest_seen_events GROUP BY tenant_id ORDER BY 1")
        )
        assert [tuple(row) for row in seen] == [(OTHER, 200)]


async def test_a_value_the_database_refuses_fails_only_its_request_in_a_shared_flush(
    database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    await setup_tenant(db_engine)
    await setup_tenant(db_engine, tenant=OTHER)
    engine = make_engine(database_settings, "tests")
    ledger = SeenLedger(engine)
    known = [(uuid.uuid4(), 1) for _ in range(3)]
    fresh = [(uuid.uuid4(), 1) for _ in range(3)]
    # Recorded beside the lookups, not looked up with them: records and lookups are sent by two
    # flushers, so a pair recorded while it is looked up may be found or not (see SeenLedger).
    extra = (uuid.uuid4(), 1)
    try:
        await ledger.record(OTHER, known)
        # Past the checks on purpose (as a value they do not know about would be): one request
        # with a revision past bigint (refused by the driver) and one with a NUL in its tenant
        # (refused by the server), among healthy lookups and records of both tenants.
        answers = await asyncio.gather(
            ledger.already_seen(OTHER, [*known, *fresh]),
            ledger._look_up(TENANT, [(uuid.uuid4(), 2**63)]),
            ledger.record(OTHER, [extra]),
            ledger._record("bad\x00tenant", [(uuid.uuid4(), 1)]),
            ledger.already_seen(TENANT, known),
            ledger.already_seen(OTHER, known[:1]),
            return_exceptions=True,
        )
        after = await ledger.already_seen(OTHER, [*fresh, extra])
    finally:
        await ledger.close()
        await engine.dispose()
    assert answers[0] == set(known)
    assert isinstance(answers[1], DBAPIError)
    assert answers[2] is None
    assert isinstance(answers[3], DBAPIError)
    assert answers[4] == set()
    assert answers[5] == {known[0]}
    assert after == {extra}


async def test_values_outside_the_ledgers_types_are_refused_before_they_are_queued(
    database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    engine = make_engine(database_settings, "tests")
    ledger = SeenLedger(engine)
    try:
        for tenant_id, pairs, reason in (
            (TENANT, [(uuid.uuid4(), 2**63)], "outside 0..9223372036854775807"),
            (TENANT, [(uuid.uuid4(), -1)], "outside 0..9223372036854775807"),
            ("a\x00b", [(uuid.uuid4(), 1)], "control character"),
        ):
            with pytest.raises(ValueError, match=reason):
                await ledger.already_seen(tenant_id, pairs)
            with pytest.raises(ValueError, match=reason):
                await ledger.record(tenant_id, pairs)
        assert ledger._lookups == []
        assert ledger._records == []
    finally:
        await ledger.close()
        await engine.dispose()
