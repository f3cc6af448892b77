"""One-shot administrative actions run by the CLI against DATABASE_URL."""

from __future__ import annotations

from libs.common.db.engine import make_engine
from libs.common.settings import DatabaseSettings, RuntimeSettings
from libs.common.tenancy import create_tenant, list_tenants, revoke_api_key


async def create_tenant_now(slug: str, name: str = "", timezone: str = "UTC") -> dict[str, object]:
    engine = make_engine(DatabaseSettings(), "spm-cli")
    try:
        async with engine.begin() as conn:
            return await create_tenant(
                conn, slug, RuntimeSettings().secret_key.get_secret_value(), name=name, timezone=timezone
            )
    finally:
        await engine.dispose()


async def list_tenants_now() -> list[dict[str, object]]:
    engine = make_engine(DatabaseSettings(), "spm-cli")
    try:
        async with engine.connect() as conn:
            return await list_tenants(conn)
    finally:
        await engine.dispose()


async def revoke_key_now(key_id: str) -> bool:
    engine = make_engine(DatabaseSettings(), "spm-cli")
    try:
        async with engine.begin() as conn:
            return await revoke_api_key(conn, key_id)
    finally:
        await engine.dispose()
