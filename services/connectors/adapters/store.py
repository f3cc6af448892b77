"""The connectors' SQL: connections (credentials encrypted), mailbox state, leases and health."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from libs.common.contracts.tenant_settings import (
    DEFAULT_TENANT_SETTINGS,
    InvalidTenantSettings,
    TenantSettings,
)
from libs.common.tenancy import decrypt_secret, encrypt_secret, tenant_exists
from libs.common.tenant_settings_store import load_tenant_settings
from services.connectors.domain.mailboxes import Connection, Mailbox

_MAILBOX_COLUMNS = """
    m.mailbox_id, m.tenant_id, m.provider, m.address, m.cursor, m.full_sync_since,
    m.full_sync_page_token, m.full_sync_cursor, m.subscription_id, m.subscription_expires_at,
    m.failures, m.backfill_since, m.last_success_at, c.connection_id, c.vendor, c.credentials_encrypted, c.options::text AS options
"""


class LeaseLost(Exception):
    """The mailbox's lease passed to another run (this one outlived it): this run's writes changed nothing."""

    def __init__(self, mailbox_id: int) -> None:
        super().__init__(f"mailbox {mailbox_id}: the lease passed to another run")
        self.mailbox_id = mailbox_id


@dataclass(frozen=True, slots=True)
class MailboxStatus:
    """One row of ``spm connectors list``: never the credentials."""

    mailbox_id: int
    tenant_id: str
    provider: str
    address: str
    paused: bool
    full_sync: bool
    fetched: int
    last_success_at: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    subscription_expires_at: datetime | None


class MailboxStore:
    def __init__(self, engine: AsyncEngine, pepper: str) -> None:
        self.engine = engine
        self._pepper = pepper

    def _mailbox(self, row: Row[Any]) -> Mailbox:
        connection = Connection(
            connection_id=row.connection_id,
            tenant_id=row.tenant_id,
            vendor=row.vendor,
            credentials=decrypt_secret(row.credentials_encrypted, self._pepper),
            options=orjson.loads(row.options),
        )
        return Mailbox(
            mailbox_id=row.mailbox_id,
            tenant_id=row.tenant_id,
            provider=row.provider,
            address=row.address,
            connection=connection,
            cursor=row.cursor,
            full_sync_since=row.full_sync_since,
            full_sync_page_token=row.full_sync_page_token,
            full_sync_cursor=row.full_sync_cursor,
            subscription_id=row.subscription_id,
            subscription_expires_at=row.subscription_expires_at,
            failures=row.failures,
            backfill_since=row.backfill_since,
            last_success_at=row.last_success_at,
            claimed_at=getattr(row, "claimed_at", None),
        )

    # -- connecting ---------------------------------------------------------------------------

    async def add_connection(
        self, tenant_id: str, vendor: str, credentials: str, options: dict[str, Any]
    ) -> int:
        async with self.engine.begin() as conn:
            if not await tenant_exists(conn, tenant_id):
                raise LookupError(f"no tenant {tenant_id!r}")
            row = await conn.execute(
                text(
                    "INSERT INTO connector_connections (tenant_id, vendor, credentials_encrypted, options) "
                    "VALUES (:t, :v, :c, CAST(:o AS jsonb)) RETURNING connection_id"
                ),
                {
                    "t": tenant_id,
                    "v": vendor,
                    "c": encrypt_secret(credentials, self._pepper),
                    "o": orjson.dumps(options).decode(),
                },
            )
            return int(row.scalar_one())

    async def add_mailboxes(
        self, connection_id: int, tenant_id: str, provider: str, addresses: Sequence[str], since: datetime
    ) -> list[int]:
        """Connect ``addresses`` (a full sync from ``since`` first); an address already connected
        moves to the new connection and keeps its cursor."""
        ids: list[int] = []
        async with self.engine.begin() as conn:
            for address in addresses:
                row = await conn.execute(
                    text(
                        """
                        INSERT INTO connector_mailboxes (connection_id, tenant_id, provider, address, full_sync_since, backfill_since)
                        VALUES (:c, :t, :p, :a, :since, :since)
                        ON CONFLICT (tenant_id, provider, address)
                        DO UPDATE SET connection_id = EXCLUDED.connection_id, paused = false, next_sync_at = now()
                        RETURNING mailbox_id
                        """
                    ),
                    {
                        "c": connection_id,
                        "t": tenant_id,
                        "p": provider,
                        "a": address.strip().lower(),
                        "since": since,
                    },
                )
                ids.append(int(row.scalar_one()))
        return ids

    async def set_paused(
        self, tenant_id: str, provider: str | None, addresses: Sequence[str], paused: bool
    ) -> int:
        """Pause or resume mailboxes (all of the tenant's for ``provider`` when ``addresses`` is empty);
        returns how many changed."""
        async with self.engine.begin() as conn:
            result = await conn.execute(
                text(
                    "UPDATE connector_mailboxes SET paused = :paused, next_sync_at = now() "
                    "WHERE tenant_id = :t AND paused <> :paused AND (CAST(:p AS text) IS NULL OR provider = :p) "
                    "AND (cardinality(CAST(:a AS text[])) = 0 OR address = ANY(CAST(:a AS text[])))"
                ),
                {
                    "t": tenant_id,
                    "p": provider,
                    "a": [a.strip().lower() for a in addresses],
                    "paused": paused,
                },
            )
        return int(result.rowcount)

    async def statuses(self, tenant_id: str | None = None, ids: Sequence[int] = ()) -> list[MailboxStatus]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                text(
                    """
                    SELECT mailbox_id, tenant_id, provider, address, paused, full_sync_since IS NOT NULL AS full_sync,
                           fetched, last_success_at, last_error, last_error_at, subscription_expires_at
                    FROM connector_mailboxes
                    WHERE (CAST(:t AS text) IS NULL OR tenant_id = :t)
                      AND (cardinality(CAST(:ids AS bigint[])) = 0 OR mailbox_id = ANY(CAST(:ids AS bigint[])))
                    ORDER BY tenant_id, provider, address
                    """
                ),
                {"t": tenant_id, "ids": list(ids)},
            )
            return [MailboxStatus(**row._asdict()) for row in rows]

    # -- syncing ------------------------------------------------------------------------------

    async def claim_due(
        self, limit: int, lease_seconds: float, shard: int, shards: int, running: Sequence[int] = ()
    ) -> list[Mailbox]:
        """Lease up to ``limit`` due mailboxes of this shard, skipping those another process holds and
        ``running`` (this process's syncs under way: one may outlive its lease). Each claim is
        stamped ``claimed_at``: the run's writes go through only while the claim is still its own."""
        async with self.engine.begin() as conn:
            rows = await conn.execute(
                text(
                    f"""
                    WITH due AS (
                        SELECT mailbox_id FROM connector_mailboxes
                        WHERE NOT paused AND next_sync_at <= now()
                          AND (leased_until IS NULL OR leased_until < now())
                          AND mod(mailbox_id, :shards) = :shard
                          AND mailbox_id <> ALL(CAST(:running AS bigint[]))
                        ORDER BY next_sync_at LIMIT :limit
                        FOR UPDATE SKIP LOCKED
                    ), leased AS (
                        UPDATE connector_mailboxes m
                        SET leased_until = now() + make_interval(secs => :lease), claimed_at = now()
                        FROM due WHERE m.mailbox_id = due.mailbox_id
                        RETURNING m.*
                    )
                    SELECT {_MAILBOX_COLUMNS}, m.claimed_at
                    FROM leased m JOIN connector_connections c USING (connection_id)
                    """
                ),
                {
                    "limit": limit,
                    "lease": lease_seconds,
                    "shard": shard,
                    "shards": shards,
                    "running": list(running),
                },
            )
            return [self._mailbox(row) for row in rows]

    async def mailbox(self, mailbox_id: int) -> Mailbox | None:
        """The mailbox as stored, with its current claim."""
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    text(
                        f"SELECT {_MAILBOX_COLUMNS}, m.claimed_at FROM connector_mailboxes m "
                        "JOIN connector_connections c USING (connection_id) WHERE m.mailbox_id = :id"
                    ),
                    {"id": mailbox_id},
                )
            ).one_or_none()
        return self._mailbox(row) if row is not None else None

    async def tenant_settings(self, tenant_id: str) -> TenantSettings | None:
        """The tenant's settings; None when they do not validate (fetch the least meanwhile)."""
        async with self.engine.connect() as conn:
            try:
                return await load_tenant_settings(conn, tenant_id) or DEFAULT_TENANT_SETTINGS
            except InvalidTenantSettings:
                return None

    async def newest_secret(self, tenant_id: str, source: str) -> str | None:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    text(
                        "SELECT secret_encrypted FROM webhook_secrets WHERE tenant_id = :t AND source = :s "
                        "AND (expires_at IS NULL OR expires_at > now()) ORDER BY secret_id DESC LIMIT 1"
                    ),
                    {"t": tenant_id, "s": source},
                )
            ).one_or_none()
        return decrypt_secret(row.secret_encrypted, self._pepper) if row is not None else None

    async def _update(self, conn: AsyncConnection, mailbox: Mailbox, sql: str, **values: Any) -> bool:
        """Write the run's state, fenced on its claim: False (nothing written) once another run claimed it."""
        result = await conn.execute(
            text(f"UPDATE connector_mailboxes SET {sql} WHERE mailbox_id = :id AND claimed_at = :claimed"),
            {"id": mailbox.mailbox_id, "claimed": mailbox.claimed_at, **values},
        )
        return bool(result.rowcount)

    async def _save(self, mailbox: Mailbox, sql: str, **values: Any) -> None:
        """A write in the middle of a run: one whose lease passed to another run stops (LeaseLost)."""
        async with self.engine.begin() as conn:
            if not await self._update(conn, mailbox, sql, **values):
                raise LeaseLost(mailbox.mailbox_id)

    async def start_full_sync(self, mailbox: Mailbox, since: datetime) -> None:
        """An expired cursor: everything since ``since`` is listed again (ingest drops what it has)."""
        await self._save(
            mailbox,
            "full_sync_since = :since, full_sync_page_token = NULL, full_sync_cursor = NULL, cursor = NULL",
            since=since,
        )

    async def save_full_sync(
        self, mailbox: Mailbox, page_token: str | None, cursor: str | None, fetched: int, lease_seconds: float
    ) -> None:
        """A page is in ingest: resume after it if the process stops; the lease is extended."""
        await self._save(
            mailbox,
            "full_sync_page_token = :page, full_sync_cursor = :cursor, fetched = fetched + :n, "
            "leased_until = now() + make_interval(secs => :lease)",
            page=page_token,
            cursor=cursor,
            n=fetched,
            lease=lease_seconds,
        )

    async def finish_full_sync(self, mailbox: Mailbox, cursor: str | None, fetched: int) -> None:
        await self._save(
            mailbox,
            "cursor = :cursor, full_sync_since = NULL, full_sync_page_token = NULL, "
            "full_sync_cursor = NULL, fetched = fetched + :n",
            cursor=cursor,
            n=fetched,
        )

    async def advance_cursor(self, mailbox: Mailbox, cursor: str, fetched: int) -> None:
        await self._save(mailbox, "cursor = :cursor, fetched = fetched + :n", cursor=cursor, n=fetched)

    async def save_cursor_page(
        self, mailbox: Mailbox, cursor: str, fetched: int, lease_seconds: float
    ) -> None:
        """A delta page is in ingest: the next link is the cursor; the lease is extended."""
        await self._save(
            mailbox,
            "cursor = :cursor, fetched = fetched + :n, leased_until = now() + make_interval(secs => :lease)",
            cursor=cursor,
            n=fetched,
            lease=lease_seconds,
        )

    async def save_subscription(
        self, mailbox: Mailbox, subscription_id: str, expires_at: datetime | None
    ) -> None:
        await self._save(
            mailbox,
            "subscription_id = :sid, subscription_expires_at = :exp",
            sid=subscription_id,
            exp=expires_at,
        )

    async def record_success(self, mailbox: Mailbox, interval_seconds: float) -> bool:
        """Release the lease; a push that arrived during the sync keeps the mailbox due now. False
        (nothing written) when the lease passed to another run."""
        async with self.engine.begin() as conn:
            return await self._update(
                conn,
                mailbox,
                """
                leased_until = NULL, failures = 0, last_success_at = now(), last_error = NULL,
                next_sync_at = CASE WHEN sync_requested_at > :claimed THEN now()
                                    ELSE now() + make_interval(secs => :interval) END,
                sync_requested_at = CASE WHEN sync_requested_at > :claimed THEN sync_requested_at END
                """,
                interval=interval_seconds,
            )

    async def record_failure(self, mailbox: Mailbox, error: str, retry_in_seconds: float) -> bool:
        """Release the lease and retry later; False (nothing written) when the lease passed to another run."""
        async with self.engine.begin() as conn:
            return await self._update(
                conn,
                mailbox,
                "leased_until = NULL, failures = failures + 1, last_error = :error, last_error_at = now(), "
                "next_sync_at = now() + make_interval(secs => :delay)",
                error=error[:1_000],
                delay=retry_in_seconds,
            )

    async def lag_by_provider(self) -> dict[str, float]:
        """Seconds since the least recently synced active mailbox of each provider synced."""
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                text(
                    "SELECT provider, extract(epoch FROM now() - min(coalesce(last_success_at, created_at))) AS lag "
                    "FROM connector_mailboxes WHERE NOT paused GROUP BY provider"
                )
            )
            return {row.provider: float(row.lag) for row in rows}
