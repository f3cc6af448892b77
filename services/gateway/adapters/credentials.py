"""Credential state in PostgreSQL: dashboard sessions, and whether a credential still holds.

A session cookie is ``<session id>.<secret>``; the row is found by the id and only an HMAC of the
whole cookie (peppered with ``SPM_SECRET_KEY``) is stored, as for API keys.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from libs.common.tenancy import Scope, hash_api_key

#: The session is valid, its tenant exists, and the API key it came from (if any) is not revoked.
_LIVE_SESSION = """
    SELECT s.tenant_id, s.subject, s.key_id, s.scopes, s.token_hash,
           extract(epoch FROM s.expires_at) AS expires_at
    FROM gateway_sessions s
    WHERE s.session_id = :session_id AND s.revoked_at IS NULL AND s.expires_at > now()
      AND (s.key_id IS NULL OR EXISTS (
          SELECT 1 FROM api_keys k WHERE k.key_id = s.key_id AND k.revoked_at IS NULL))
"""


@dataclass(frozen=True, slots=True)
class StoredSession:
    session_id: str
    tenant_id: str
    #: Who signed in: the API key id or ``jwt:<sub>``.
    subject: str
    #: The API key the session was exchanged for; None for a JWT.
    key_id: str | None
    scopes: frozenset[Scope]
    #: Unix seconds.
    expires_at: float


def session_id_of(token: str) -> str | None:
    session_id, dot, secret = token.partition(".")
    if not dot or len(session_id) != 16 or not secret or len(token) > 128:
        return None
    return session_id


async def create_session(
    conn: AsyncConnection,
    *,
    tenant_id: str,
    subject: str,
    key_id: str | None,
    scopes: frozenset[Scope],
    expires_at: datetime,
    pepper: str,
) -> tuple[str, StoredSession]:
    """A new session: (the cookie value, shown once, and the stored session)."""
    session_id = secrets.token_hex(8)
    token = f"{session_id}.{secrets.token_urlsafe(32)}"
    # Sessions of this subject that expired are pruned here, so the table stays small.
    await conn.execute(
        text("DELETE FROM gateway_sessions WHERE tenant_id = :t AND subject = :s AND expires_at < now()"),
        {"t": tenant_id, "s": subject},
    )
    await conn.execute(
        text(
            "INSERT INTO gateway_sessions (session_id, tenant_id, token_hash, subject, key_id, scopes, expires_at) "
            "VALUES (:id, :t, :hash, :s, :key_id, :scopes, :expires_at)"
        ),
        {
            "id": session_id,
            "t": tenant_id,
            "hash": hash_api_key(token, pepper),
            "s": subject,
            "key_id": key_id,
            "scopes": sorted(scope.value for scope in scopes),
            "expires_at": expires_at,
        },
    )
    stored = StoredSession(session_id, tenant_id, subject, key_id, scopes, expires_at.timestamp())
    return token, stored


async def load_session(conn: AsyncConnection, token: str, pepper: str) -> StoredSession | None:
    """The live session of a cookie, or None when unknown, wrong, expired, revoked or its key revoked."""
    session_id = session_id_of(token)
    if session_id is None:
        return None
    row = (await conn.execute(text(_LIVE_SESSION), {"session_id": session_id})).one_or_none()
    if row is None or not hmac.compare_digest(row.token_hash, hash_api_key(token, pepper)):
        return None
    return StoredSession(
        session_id,
        row.tenant_id,
        row.subject,
        row.key_id,
        frozenset(Scope(s) for s in row.scopes),
        float(row.expires_at),
    )


async def session_is_live(conn: AsyncConnection, session_id: str) -> bool:
    return (await conn.execute(text(_LIVE_SESSION), {"session_id": session_id})).first() is not None


async def revoke_session(conn: AsyncConnection, session_id: str) -> bool:
    result = await conn.execute(
        text("UPDATE gateway_sessions SET revoked_at = now() WHERE session_id = :id AND revoked_at IS NULL"),
        {"id": session_id},
    )
    return bool(result.rowcount)


async def api_key_is_live(conn: AsyncConnection, tenant_id: str, key_id: str) -> bool:
    """The key exists for this tenant and is not revoked (its hash was checked when it was presented)."""
    row = await conn.execute(
        text("SELECT 1 FROM api_keys WHERE key_id = :k AND tenant_id = :t AND revoked_at IS NULL"),
        {"k": key_id, "t": tenant_id},
    )
    return row.first() is not None


async def tenant_is_live(conn: AsyncConnection, tenant_id: str) -> bool:
    row = await conn.execute(text("SELECT 1 FROM tenants WHERE tenant_id = :t"), {"t": tenant_id})
    return row.first() is not None
