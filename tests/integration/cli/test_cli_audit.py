"""The ``spm`` commands that change a tenant's setup record each change in the audit log."""

from __future__ import annotations

import getpass

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.tenancy import WEBHOOK_SOURCES, key_id_of
from libs.common.testing.stack import TEST_SECRET_KEY
from services.gateway.adapters.audit import list_admin_actions
from spm.admin import create_tenant_now, revoke_key_now
from spm.commands.webhooks import rotate_webhook_secret


async def test_tenant_creation_key_revocation_and_rotation_are_audited(
    database_url: str, db_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("SPM_SECRET_KEY", TEST_SECRET_KEY)
    created = await create_tenant_now("acme", "Acme")
    assert created is not None
    keys: dict[str, str] = created["api_keys"]  # type: ignore[assignment]
    read_key_id = key_id_of(keys["read"])
    assert await revoke_key_now(read_key_id or "")
    assert not await revoke_key_now(read_key_id or "")
    secret, expiring = await rotate_webhook_secret("acme", "zoom", 2.0)
    assert expiring == 1

    async with db_engine.connect() as conn:
        rows, _ = await list_admin_actions(conn, "acme", limit=100)
    actor = f"cli:{getpass.getuser()}"
    assert {r["actor"] for r in rows} == {actor}
    assert {r["credential"] for r in rows} == {"cli"}
    actions = [r["action"] for r in reversed(rows)]
    assert actions == [
        "tenant.created",
        *["api_key.created"] * 3,
        *["webhook_secret.set"] * len(WEBHOOK_SOURCES),
        "api_key.revoked",
        "webhook_secret.rotated",
    ]
    created_keys = {
        r["after"]["key_id"]: r["after"]["scopes"] for r in rows if r["action"] == "api_key.created"
    }
    assert created_keys == {key_id_of(k): [scope] for scope, k in keys.items()}
    revoked = next(r for r in rows if r["action"] == "api_key.revoked")
    assert revoked["target"] == f"api_key:{read_key_id}"
    assert revoked["before"] == {"key_id": read_key_id, "name": "read", "scopes": ["read"], "revoked": False}
    assert revoked["after"] == {"key_id": read_key_id, "revoked": True}
    rotated = rows[0]
    assert rotated["after"] == {"source": "zoom", "secret": "***", "older_expiring": 1, "grace_hours": 2.0}
    # No secret or key appears anywhere in the log, only masks and key ids.
    text = repr(rows)
    assert secret not in text
    for value in [*keys.values(), *dict(created["webhook_secrets"]).values()]:  # type: ignore[call-overload]
        assert value not in text
