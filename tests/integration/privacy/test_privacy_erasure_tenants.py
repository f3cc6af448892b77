"""Erasures are run one at a time by whichever attribution replica claims one, for every tenant:
a tenant requesting many (a bulk clean-up) must not hold another tenant's erasure back until all
of its own have run. Claims go round the tenants, each tenant's requests oldest first."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.erasures import IdentityKind, request_erasure
from libs.common.tenancy import create_tenant
from libs.common.testing.stack import TEST_SECRET_KEY
from services.attribution.adapters import erasure as store


async def _request(engine: AsyncEngine, tenant_id: str, identity_hash: str) -> None:
    async with engine.begin() as conn:  # one transaction each: its own requested_at
        await request_erasure(conn, tenant_id, IdentityKind.EMAIL, identity_hash, "test")


async def test_a_tenant_requesting_many_erasures_does_not_hold_back_another_tenants(
    db_engine: AsyncEngine,
) -> None:
    async with db_engine.begin() as conn:
        for tenant in ("acme", "initech"):
            await create_tenant(conn, tenant, TEST_SECRET_KEY)
    for n in range(4):
        await _request(db_engine, "acme", f"acme-{n}")
    await _request(db_engine, "initech", "initech-0")

    claimed: list[tuple[str, str]] = []
    while True:
        async with db_engine.begin() as conn:
            taken = await store.claim_next(conn)
            if taken is None:
                break
            tenant_id, erasure_id = taken
            (identity_hash,) = await store.listed_identities(conn, tenant_id, erasure_id)
            claimed.append((tenant_id, identity_hash))
            await store.finish(conn, tenant_id, erasure_id, {})
    # initech's erasure runs second, not fifth; acme's in the order they were requested.
    assert claimed == [
        ("acme", "acme-0"),
        ("initech", "initech-0"),
        ("acme", "acme-1"),
        ("acme", "acme-2"),
        ("acme", "acme-3"),
    ]
