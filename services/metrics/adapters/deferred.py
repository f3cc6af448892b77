"""Versions set aside while their tenant's rollups are busy (``metric_deferred_events``).

A consumer batch writes here, in its own transaction, the versions of a tenant whose rollups a
rebuild or a rescore holds, and of a tenant that already has versions here (they queue behind
the earlier ones: a tenant's versions are applied in the order they were consumed). The drainer
takes them back, oldest first, in the transaction that applies them. A redelivered version is
written once (the table's unique key); applying one twice changes nothing anyway (``plan_batch``
keeps the highest (revision, version) of each activity).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from libs.common.contracts.attribution_fast import AttributedEvent, decode_attributed, encode_event

_DEFER = text(
    "INSERT INTO metric_deferred_events (tenant_id, activity_id, revision, version, body) "
    "SELECT u.t, u.a, u.r, u.v, u.b FROM unnest(CAST(:t AS varchar[]), CAST(:a AS uuid[]), "
    "CAST(:r AS bigint[]), CAST(:v AS int[]), CAST(:b AS bytea[])) WITH ORDINALITY AS u(t, a, r, v, b, n) "
    "ORDER BY u.n ON CONFLICT (tenant_id, activity_id, revision, version) DO NOTHING"
)
_BACKLOGGED = text("SELECT DISTINCT tenant_id FROM metric_deferred_events WHERE tenant_id = ANY(:t)")
_TAKE = text(
    "DELETE FROM metric_deferred_events WHERE seq IN (SELECT seq FROM metric_deferred_events "
    "WHERE tenant_id = :t ORDER BY seq LIMIT :n) RETURNING seq, body"
)
_BACKLOG = text(
    "SELECT tenant_id, count(*) AS versions, min(deferred_at) AS oldest FROM metric_deferred_events "
    "GROUP BY tenant_id ORDER BY oldest"
)


async def defer(conn: AsyncConnection, events: Sequence[AttributedEvent]) -> int:
    """Set the versions aside, in this order, behind the ones already there; returns those written
    (a version already set aside, redelivered, is not written again)."""
    if not events:
        return 0
    result = await conn.execute(
        _DEFER,
        {
            "t": [e.tenant_id for e in events],
            "a": [e.activity_id for e in events],
            "r": [e.facts.revision for e in events],
            "v": [e.version for e in events],
            "b": [encode_event(e) for e in events],
        },
    )
    return int(result.rowcount)


async def backlogged(conn: AsyncConnection, tenant_ids: Sequence[str]) -> set[str]:
    """The tenants, of ``tenant_ids``, that have versions set aside."""
    if not tenant_ids:
        return set()
    return set((await conn.execute(_BACKLOGGED, {"t": list(tenant_ids)})).scalars())


async def take(conn: AsyncConnection, tenant_id: str, limit: int) -> list[AttributedEvent]:
    """The tenant's oldest ``limit`` versions set aside, in the order they were, deleted in this
    transaction (so they are back if it does not commit)."""
    rows = (await conn.execute(_TAKE, {"t": tenant_id, "n": limit})).all()
    return [decode_attributed(bytes(row.body)) for row in sorted(rows, key=lambda row: row.seq)]


@dataclass(frozen=True, slots=True)
class Backlog:
    tenant_id: str
    versions: int
    oldest: datetime


async def backlog(conn: AsyncConnection) -> list[Backlog]:
    """Every tenant with versions set aside: how many, and since when (oldest first)."""
    return [Backlog(r.tenant_id, r.versions, r.oldest) for r in await conn.execute(_BACKLOG)]
