"""Ingest's SQL: tenant configuration (read-only, cached briefly), duplicate and meeting bookkeeping,
and the Zoom meeting state. Every write runs on the caller's connection, inside the transaction
that is committed only after the broker acknowledged.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.ingest.domain.privacy import PrivacyPolicy
from services.ingest.domain.tenant_config import (
    IngestTenantSettings,
    domains_of,
    privacy_policy,
    read_tenant_settings,
    webhook_config,
)
from services.ingest.domain.webhook_types import TenantWebhookConfig


@dataclass(frozen=True, slots=True)
class TenantContext:
    """What ingest needs to know about a tenant to parse, filter and dedupe its activities."""

    tenant_id: str
    settings: IngestTenantSettings
    webhook: TenantWebhookConfig
    privacy: PrivacyPolicy


class TenantDirectory:
    """Tenant settings and derived internal domains, cached for ``ttl_seconds``.

    Settings change rarely and are read on every request, so a short cache removes two queries
    from the hot path; a change takes effect within the TTL. Secrets are not cached: a rotation
    must be effective at once.
    """

    def __init__(
        self, engine: AsyncEngine, ttl_seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.engine = engine
        self.ttl = ttl_seconds
        self.clock = clock
        self._cache: dict[str, tuple[float, TenantContext | None]] = {}

    async def context(self, tenant_id: str) -> TenantContext | None:
        """The tenant's context, or None when the tenant does not exist."""
        now = self.clock()
        cached = self._cache.get(tenant_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        async with self.engine.connect() as conn:
            context = await load_tenant_context(conn, tenant_id)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[tenant_id] = (now + self.ttl, context)
        return context


async def load_tenant_context(conn: AsyncConnection, tenant_id: str) -> TenantContext | None:
    row = (
        await conn.execute(
            text("SELECT settings::text AS settings FROM tenants WHERE tenant_id = :t"), {"t": tenant_id}
        )
    ).one_or_none()
    if row is None:
        return None
    settings = read_tenant_settings(orjson.loads(row.settings))
    rep_domains: frozenset[str] = frozenset()
    if settings.internal_domains is None:
        emails = await conn.execute(
            text(
                "SELECT DISTINCT lower(email) AS email FROM ref_reps, unnest(emails) AS email "
                "WHERE tenant_id = :t AND NOT deleted"
            ),
            {"t": tenant_id},
        )
        rep_domains = domains_of(r.email for r in emails)
    return TenantContext(
        tenant_id=tenant_id,
        settings=settings,
        webhook=webhook_config(tenant_id, settings, rep_domains),
        privacy=privacy_policy(settings),
    )


async def record_seen(
    conn: AsyncConnection, tenant_id: str, seen: Sequence[tuple[uuid.UUID, int]]
) -> set[tuple[uuid.UUID, int]]:
    """Record (activity id, revision) pairs in one statement; returns the pairs not seen before."""
    if not seen:
        return set()
    rows = await conn.execute(
        text(
            "INSERT INTO ingest_seen_events (tenant_id, activity_id, revision) "
            "SELECT :t, id, rev FROM unnest(CAST(:ids AS uuid[]), CAST(:revs AS bigint[])) AS s(id, rev) "
            "ON CONFLICT DO NOTHING RETURNING activity_id, revision"
        ),
        {"t": tenant_id, "ids": [s[0] for s in seen], "revs": [s[1] for s in seen]},
    )
    return {(r.activity_id, int(r.revision)) for r in rows}


@dataclass(frozen=True, slots=True)
class MeetingSighting:
    activity_id: uuid.UUID
    source: str
    keys: tuple[str, ...]


async def canonical_meetings(
    conn: AsyncConnection, tenant_id: str, sightings: Sequence[MeetingSighting]
) -> dict[uuid.UUID, uuid.UUID]:
    """Map each sighting's activity id to the first activity recorded under any of its keys.

    One read and one set-based write per request; keys not yet known are recorded for the
    canonical activity so that later sightings by another key still find it.
    """
    wanted = sorted({k for s in sightings for k in s.keys})
    if not wanted:
        return {}
    rows = await conn.execute(
        text(
            "SELECT meeting_key, activity_id, source, sighting_id FROM ingest_meeting_keys "
            "WHERE tenant_id = :t AND (meeting_key = ANY(CAST(:keys AS text[])) "
            "OR sighting_id = ANY(CAST(:owns AS uuid[]))) ORDER BY created_at, meeting_key"
        ),
        {"t": tenant_id, "keys": wanted, "owns": sorted({s.activity_id for s in sightings})},
    )
    #: key -> (canonical activity id, source and own activity id of the sighting that recorded it)
    known: dict[str, tuple[uuid.UUID, str, uuid.UUID]] = {}
    #: own activity id -> the id it was published under, for objects seen before
    published_as: dict[uuid.UUID, uuid.UUID] = {}
    for row in rows:
        known.setdefault(row.meeting_key, (row.activity_id, row.source, row.sighting_id))
        published_as.setdefault(row.sighting_id, row.activity_id)
    canonical: dict[uuid.UUID, uuid.UUID] = {}
    new_keys: dict[str, tuple[uuid.UUID, str, uuid.UUID]] = {}
    for sighting in sightings:
        # An object keeps the id it was first published under, even when its time or people
        # changed since; otherwise any key matching another source's meeting decides.
        match = published_as.get(sighting.activity_id) or next(
            (known[k][0] for k in sighting.keys if k in known and _same_meeting(known[k], sighting)),
            sighting.activity_id,
        )
        published_as.setdefault(sighting.activity_id, match)
        canonical[sighting.activity_id] = match
        # The ``object:`` key records every sighting, even one whose other keys were all known.
        for key in (*sighting.keys, f"object:{sighting.activity_id}"):
            if key not in known:
                known[key] = new_keys[key] = (match, sighting.source, sighting.activity_id)
    if new_keys:
        await conn.execute(
            text(
                "INSERT INTO ingest_meeting_keys (tenant_id, meeting_key, activity_id, source, sighting_id) "
                "SELECT :t, k, id, s, own FROM unnest(CAST(:keys AS text[]), CAST(:ids AS uuid[]), "
                "CAST(:sources AS text[]), CAST(:owns AS uuid[])) AS n(k, id, s, own) ON CONFLICT DO NOTHING"
            ),
            {
                "t": tenant_id,
                "keys": list(new_keys),
                "ids": [v[0] for v in new_keys.values()],
                "sources": [v[1] for v in new_keys.values()],
                "owns": [v[2] for v in new_keys.values()],
            },
        )
    return canonical


def _same_meeting(recorded: tuple[uuid.UUID, str, uuid.UUID], sighting: MeetingSighting) -> bool:
    """Another source's sighting, or a later state of the very object that recorded the key.

    One source's two different events at the same slot stay two activities (a double booking
    is that source's business); the iCalUID key is tried first, so it wins over a slot match.
    """
    _, source, recorded_by = recorded
    return source != sighting.source or recorded_by == sighting.activity_id


async def lock_webhook_state(
    conn: AsyncConnection, tenant_id: str, source: str, object_key: str
) -> dict[str, Any] | None:
    """The stored state, row-locked until the transaction ends (None when first seen)."""
    # Insert a placeholder first so that two first deliveries of one meeting serialise on the row.
    await conn.execute(
        text(
            "INSERT INTO webhook_state (tenant_id, source, object_key, state) "
            "VALUES (:t, :s, :k, 'null'::jsonb) ON CONFLICT DO NOTHING"
        ),
        {"t": tenant_id, "s": source, "k": object_key},
    )
    row = (
        await conn.execute(
            text(
                "SELECT state::text AS state FROM webhook_state "
                "WHERE tenant_id = :t AND source = :s AND object_key = :k FOR UPDATE"
            ),
            {"t": tenant_id, "s": source, "k": object_key},
        )
    ).one()
    state: dict[str, Any] | None = orjson.loads(row.state)
    return state


async def save_webhook_state(
    conn: AsyncConnection, tenant_id: str, source: str, object_key: str, state: str
) -> None:
    await conn.execute(
        text(
            "UPDATE webhook_state SET state = CAST(:state AS jsonb), updated_at = now() "
            "WHERE tenant_id = :t AND source = :s AND object_key = :k"
        ),
        {"t": tenant_id, "s": source, "k": object_key, "state": state},
    )
