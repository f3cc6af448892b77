"""One-shot administrative actions run by the CLI against DATABASE_URL; each one is audited."""

from __future__ import annotations

from sqlalchemy import text

from libs.common.audit import AuditAction, cli_actor, record_admin_action
from libs.common.db.engine import make_engine
from libs.common.settings import DatabaseSettings, RuntimeSettings
from libs.common.tenancy import create_tenant, key_id_of, revoke_api_key


async def create_tenant_now(slug: str, name: str = "", timezone: str = "UTC") -> dict[str, object]:
    engine = make_engine(DatabaseSettings(), "spm-cli")
    actor = cli_actor()
    try:
        async with engine.begin() as conn:
            created = await create_tenant(
                conn, slug, RuntimeSettings().secret_key.get_secret_value(), name=name, timezone=timezone
            )
            await record_admin_action(
                conn,
                slug,
                actor,
                AuditAction.TENANT_CREATED,
                f"tenant:{slug}",
                after={"name": name or slug, "timezone": timezone},
            )
            for scope, key in dict(created["api_keys"]).items():  # type: ignore[call-overload]
                key_id = key_id_of(key)
                await record_admin_action(
                    conn,
                    slug,
                    actor,
                    AuditAction.API_KEY_CREATED,
                    f"api_key:{key_id}",
                    after={"key_id": key_id, "scopes": [scope]},
                )
            for source, secret in dict(created["webhook_secrets"]).items():  # type: ignore[call-overload]
                await record_admin_action(
                    conn,
                    slug,
                    actor,
                    AuditAction.WEBHOOK_SECRET_SET,
                    f"webhook_secret:{source}",
                    after={"source": source, "secret": secret},
                )
            return created
    finally:
        await engine.dispose()


async def revoke_key_now(key_id: str) -> bool:
    engine = make_engine(DatabaseSettings(), "spm-cli")
    try:
        async with engine.begin() as conn:
            row = (
                await conn.execute(
                    text("SELECT tenant_id, name, scopes FROM api_keys WHERE key_id = :k"), {"k": key_id}
                )
            ).first()
            if row is None or not await revoke_api_key(conn, key_id):
                return False
            await record_admin_action(
                conn,
                row.tenant_id,
                cli_actor(),
                AuditAction.API_KEY_REVOKED,
                f"api_key:{key_id}",
                before={"key_id": key_id, "name": row.name, "scopes": list(row.scopes), "revoked": False},
                after={"key_id": key_id, "revoked": True},
            )
            return True
    finally:
        await engine.dispose()
