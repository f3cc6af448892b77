"""Tenant settings in the attribution consumer: an invalid policy stored by hand stops only its tenant."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.kafka.failures import TenantSettingsInvalid
from services.attribution.handlers import handle_batch

from .attribution_support import RecordingProducer, create_tenant, deps_for, email, messages


async def test_an_invalid_attribution_policy_fails_only_that_tenants_messages(
    db_engine: AsyncEngine,
) -> None:
    await create_tenant(db_engine, {"attribution": {"ambiguity_policy": "newest_deal"}})
    async with db_engine.begin() as conn:
        await conn.execute(text("INSERT INTO tenants (tenant_id, name) VALUES ('globex', 'globex')"))
    broken = email("e-1", "ana@seller.example", "buyer@customer.example", at="2026-11-02T10:00:00Z")
    served = broken.model_copy(update={"tenant_id": "globex", "activity_id": uuid.UUID(int=2)})
    producer = RecordingProducer()

    with pytest.raises(TenantSettingsInvalid) as caught:
        await handle_batch(messages(broken, served), deps_for(db_engine, producer))
    # The runner parks that tenant's messages on this error and hands the rest back.
    assert caught.value.tenant_id == "acme"
    assert str(caught.value) == (
        "tenant acme: settings invalid at attribution.ambiguity_policy: "
        "Input should be 'primary_with_secondaries' or 'unique_only'"
    )
    assert producer.take() == []
    await handle_batch(messages(served), deps_for(db_engine, producer))
    assert [(s.event.tenant_id, s.event.activity_id) for s in producer.take()] == [
        ("globex", uuid.UUID(int=2))
    ]
