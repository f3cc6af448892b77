"""Signing a JWT subject out: its tokens issued before a moment are refused.

An identity provider's JWT is checked by its signature alone, so without this a departing
user's or a leaked token would hold until its ``exp``. Revoking a subject (the ``sub`` claim)
of a tenant records ``not_before = now``: every token of that subject issued earlier (its
``iat``, in whole seconds as the claim is), and every token without ``iat``, is refused by every gateway replica within the
credential re-check interval, and the dashboard sessions opened with those tokens end at once.
Tokens issued afterwards are accepted: signing the person in again needs nothing here.
Restoring a subject removes the row (a revocation made by mistake).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime

from pydantic import BaseModel, ConfigDict
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from libs.common.caching import LoadingCache

#: How a JWT subject is named wherever the gateway records a caller (``set_by``, sessions, audit).
SUBJECT_PREFIX = "jwt:"


#: What a revocation reads back as (``JwtRevocation`` without the session count).
_COLUMNS = "subject, not_before, revoked_by, reason"


class JwtRevocation(BaseModel):
    """A signed-out subject: its tokens issued before ``not_before`` are refused."""

    model_config = ConfigDict(frozen=True)

    #: The JWT's ``sub`` claim.
    subject: str
    not_before: datetime
    revoked_by: str
    reason: str
    #: Dashboard sessions opened with the subject's tokens that this revocation ended (only in the
    #: answer to the revocation itself; null in lists).
    sessions_revoked: int | None = None


async def revoke_jwt_subject(
    conn: AsyncConnection, tenant_id: str, subject: str, revoked_by: str, reason: str = ""
) -> JwtRevocation:
    """Refuse the subject's tokens issued until now and end its sessions; a later call moves the moment on."""
    row = (
        await conn.execute(
            text(
                """
                INSERT INTO jwt_revocations (tenant_id, subject, not_before, revoked_by, reason)
                VALUES (:t, :s, date_trunc('second', now()), :by, :reason)
                ON CONFLICT (tenant_id, subject) DO UPDATE SET not_before = EXCLUDED.not_before,
                    revoked_by = EXCLUDED.revoked_by, reason = EXCLUDED.reason
                RETURNING """
                + _COLUMNS
            ),
            {"t": tenant_id, "s": subject, "by": revoked_by, "reason": reason},
        )
    ).one()
    ended = await conn.execute(
        text(
            "UPDATE gateway_sessions SET revoked_at = now() "
            "WHERE tenant_id = :t AND subject = :s AND revoked_at IS NULL AND expires_at > now()"
        ),
        {"t": tenant_id, "s": SUBJECT_PREFIX + subject},
    )
    return JwtRevocation(**row._mapping, sessions_revoked=int(ended.rowcount))


async def restore_jwt_subject(conn: AsyncConnection, tenant_id: str, subject: str) -> JwtRevocation | None:
    """Accept the subject's tokens again (sessions already ended stay ended); the removed row, if any."""
    row = (
        await conn.execute(
            text(f"DELETE FROM jwt_revocations WHERE tenant_id = :t AND subject = :s RETURNING {_COLUMNS}"),
            {"t": tenant_id, "s": subject},
        )
    ).first()
    return None if row is None else JwtRevocation(**row._mapping)


async def list_jwt_revocations(conn: AsyncConnection, tenant_id: str) -> list[JwtRevocation]:
    """The tenant's signed-out subjects, most recent first."""
    rows = await conn.execute(
        text(
            f"SELECT {_COLUMNS} FROM jwt_revocations WHERE tenant_id = :t ORDER BY not_before DESC, subject"
        ),
        {"t": tenant_id},
    )
    return [JwtRevocation(**row._mapping) for row in rows]


async def jwt_not_before(conn: AsyncConnection, tenant_id: str, subject: str) -> float | None:
    """Unix seconds before which the subject's tokens are refused; None when it was never revoked."""
    row = (
        await conn.execute(
            text(
                "SELECT extract(epoch FROM not_before) AS at FROM jwt_revocations "
                "WHERE tenant_id = :t AND subject = :s"
            ),
            {"t": tenant_id, "s": subject},
        )
    ).first()
    return None if row is None else float(row.at)


def token_revoked(not_before: float | None, issued_at: float | None) -> bool:
    """Whether a token issued at ``issued_at`` (None: no ``iat``) falls under the revocation."""
    return not_before is not None and (issued_at is None or issued_at < not_before)


class JwtRevocationCache:
    """Each (tenant, subject)'s ``not_before``, read at most every ``recheck_seconds``.

    Most subjects were never revoked; their absence is cached too, so a JWT costs one lookup
    per subject and interval, the same bound as a revoked API key.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        recheck_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        max_entries: int = 10_000,
    ) -> None:
        self.engine = engine
        self.recheck = recheck_seconds
        self._cache: LoadingCache[tuple[str, str], float | None] = LoadingCache(
            self._load, clock, max_entries
        )

    async def revoked(self, tenant_id: str, subject: str, issued_at: float | None) -> bool:
        return token_revoked(await self._cache.get((tenant_id, subject)), issued_at)

    def forget(self, tenant_id: str, subject: str) -> None:
        """This replica applies a revocation or restoration it made itself at once."""
        self._cache.invalidate((tenant_id, subject))

    async def _load(self, key: tuple[str, str]) -> tuple[float | None, float]:
        async with self.engine.connect() as conn:
            return await jwt_not_before(conn, *key), self.recheck
