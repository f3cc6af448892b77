"""The admin audit log: one recording function for every path that changes a tenant's setup.

Every admin action, from the gateway's routes and from the ``spm`` CLI alike, goes through
:func:`record_admin_action` in the same transaction as the change it describes, so an action is
recorded exactly when it took effect. A row names the actor (an API key id, ``jwt:<sub>``, a
dashboard session, or ``cli:<user>``), the action, its target and the state before and after.
Secrets never reach the log: :func:`mask_secrets` replaces every value under a secret-like key.
"""

from __future__ import annotations

import getpass
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

#: What a masked value reads as.
MASK = "***"
_SECRET_KEY = re.compile(r"secret|token|password|passphrase|client_?state|private_?key|^key$|key_hash", re.I)


class AuditAction(StrEnum):
    """Every admin action the log knows; dotted ``<object>.<verb>`` in the past tense."""

    ATTRIBUTION_OVERRIDDEN = "attribution.overridden"
    ATTRIBUTION_REATTRIBUTED = "attribution.reattributed"
    SETTINGS_CHANGED = "settings.changed"
    SCORING_MODEL_CHANGED = "scoring_model.changed"
    TENANT_CREATED = "tenant.created"
    API_KEY_CREATED = "api_key.created"
    API_KEY_REVOKED = "api_key.revoked"
    JWT_SUBJECT_REVOKED = "jwt_subject.revoked"
    JWT_SUBJECT_RESTORED = "jwt_subject.restored"
    WEBHOOK_SECRET_SET = "webhook_secret.set"  # noqa: S105 - an action name, not a secret
    WEBHOOK_SECRET_ROTATED = "webhook_secret.rotated"  # noqa: S105 - an action name
    CONNECTOR_CONNECTED = "connector.connected"
    CONNECTOR_PAUSED = "connector.paused"
    CONNECTOR_RESUMED = "connector.resumed"
    ERASURE_REQUESTED = "erasure.requested"
    GOAL_SET = "goal.set"
    GOAL_REMOVED = "goal.removed"
    ALERT_WEBHOOK_ADDED = "alert_webhook.added"
    ALERT_WEBHOOK_REMOVED = "alert_webhook.removed"
    PRIVACY_EXPORTED = "privacy.exported"
    RETENTION_PURGED = "retention.purged"
    DEAL_NAMES_BACKFILLED = "deal_names.backfilled"


class CredentialKind(StrEnum):
    """How the actor authenticated."""

    API_KEY = "api_key"
    JWT = "jwt"
    SESSION = "session"
    CLI = "cli"
    SYSTEM = "system"


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acted: ``name`` is a key id, ``jwt:<sub>``, ``session:<id> (<subject>)`` or ``cli:<user>``."""

    name: str
    credential: CredentialKind


def cli_actor() -> Actor:
    """The operator running ``spm`` (the OS user; the CLI holds DATABASE_URL, not a tenant key)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return Actor(f"cli:{user}", CredentialKind.CLI)


def mask_secrets(value: Any) -> Any:
    """``value`` with every entry under a secret-like key (secret, token, password, ...) masked."""
    if isinstance(value, dict):
        return {
            key: MASK
            if isinstance(key, str) and _SECRET_KEY.search(key) and item is not None
            else mask_secrets(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [mask_secrets(item) for item in value]
    return value


def _json(value: dict[str, Any] | None) -> str | None:
    if value is None:
        return None
    return orjson.dumps(mask_secrets(value), default=str).decode()


async def record_admin_action(
    conn: AsyncConnection,
    tenant_id: str,
    actor: Actor,
    action: AuditAction,
    target: str = "",
    *,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> int:
    """Append one audit row in ``conn``'s transaction (the caller commits); returns its id."""
    row = (
        await conn.execute(
            text(
                "INSERT INTO audit_log (tenant_id, actor, credential, action, target, before, after) "
                "VALUES (:t, :actor, :credential, :action, :target, CAST(:before AS jsonb), CAST(:after AS jsonb)) "
                "RETURNING audit_id"
            ),
            {
                "t": tenant_id,
                "actor": actor.name,
                "credential": actor.credential.value,
                "action": action.value,
                "target": target,
                "before": _json(before),
                "after": _json(after),
            },
        )
    ).one()
    return int(row.audit_id)
