"""Tenant settings in the attribution consumer: an invalid policy stored by hand stops only its tenant."""

from __future__ import annotations

import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.attribution.handlers import handle_batch

from .attribution_support import RecordingProducer, create_tenant, deps_for, email, messages


async def test_an_invalid_attribution_policy_rejects_only_that_tenants_messages(
    db_engine: AsyncEngine,
) -> None:
    await create_tenant(db_engine, {"attribution": {"ambiguity_policy": "newest_deal"}})
    async with db_engine.begin() as conn:
        await conn.execute(text("INSERT INTO tenants (tenant_id, name) VALUES ('globex', 'globex')"))
    broken = email("e-1", "ana@seller.example", "buyer@customer.example", at="2026-11-02T10:00:00Z")
    served = broken.model_copy(update={"tenant_id": "globex", "activity_id": uuid.UUID(int=2)})
    producer = RecordingProducer()

    rejected = await handle_batch(messages(broken, served), deps_for(db_engine, producer))

    assert [(r.message.offset, r.reason) for r in rejected] == [
        (
            0,
            "tenant 'acme' has invalid settings: attribution.ambiguity_policy: "
            "Input should be 'primary_with_secondaries' or 'unique_only'",
        )
    ]
    assert [(s.event.tenant_id, s.event.activity_id) for s in producer.take()] == [
        ("globex", uuid.UUID(int=2))
    ]
