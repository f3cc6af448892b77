"""One-shot administrative actions run by the CLI against DATABASE_URL; each change is audited."""

from __future__ import annotations

import sys
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from libs.common.audit import AuditAction, cli_actor, record_admin_action
from libs.common.db.engine import make_engine
from libs.common.settings import DatabaseSettings, KafkaSettings, RuntimeSettings
from libs.common.tenancy import create_tenant, key_id_of, list_tenants, revoke_api_key, tenant_exists
from libs.common.tenant_settings_store import (
    SettingsChange,
    SettingsRefused,
    change_tenant_settings,
    unknown_zone,
)


async def create_tenant_now(slug: str, name: str = "", timezone: str = "UTC") -> dict[str, object] | None:
    """The new tenant's keys and secrets (shown once); None when the tenant already exists."""
    engine = make_engine(DatabaseSettings(), "spm-cli")
    actor = cli_actor()
    try:
        async with engine.begin() as conn:
            if await tenant_exists(conn, slug):
                return None
            if (unknown := await unknown_zone(conn, timezone)) is not None:
                raise ValueError(unknown)
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
    except IntegrityError as exc:
        if "tenants_pkey" not in str(exc.orig):
            raise
        # Created by someone else between the check and the insert.
        return None
    finally:
        await engine.dispose()


async def list_tenants_now() -> list[dict[str, object]]:
    engine = make_engine(DatabaseSettings(), "spm-cli")
    try:
        async with engine.connect() as conn:
            return await list_tenants(conn)
    finally:
        await engine.dispose()


async def change_tenant_settings_now(
    tenant_id: str,
    changed_by: str,
    *,
    document: dict[str, Any] | None = None,
    patch: dict[str, Any] | None = None,
) -> SettingsChange | list[dict[str, Any]] | None:
    """Save a new settings version and announce it (neither when nothing changes); the field errors when refused; None: no tenant."""
    engine = make_engine(DatabaseSettings(), "spm-cli")
    try:
        async with engine.begin() as conn:
            change = await change_tenant_settings(
                conn, tenant_id, changed_by, document=document, patch=patch, actor=cli_actor()
            )
    except SettingsRefused as refused:
        return refused.errors
    finally:
        await engine.dispose()
    if change is not None and change.saved:
        from aiokafka.errors import KafkaError

        from libs.common.kafka.settings_events import announce_settings_changed

        try:
            await announce_settings_changed(KafkaSettings(), change.event(), "spm/cli")
        except (KafkaError, OSError):
            # Saved all the same: the services' caches expire within their TTL (30 s by default).
            sys.stderr.write("spm: saved, but the broker is unreachable: services apply it within 30 s\n")
    return change


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
