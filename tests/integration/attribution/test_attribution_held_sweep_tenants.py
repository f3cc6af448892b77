"""The held sweep across tenants and replicas (attribution's own path, the real PostgreSQL): two
processes sweeping at once publish each ended meeting once; a tenant whose settings are broken
is left out (the tenant quarantined) while the others' are held, and is held once repaired; a
cancelled meeting never becomes held, a meeting moved ahead again waits for its new end, and
the source's later revisions win over held (a stale copy does not)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from aiokafka import AIOKafkaProducer
from prometheus_client import REGISTRY
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from libs.common.contracts.activities import ActivityIngestedV1, activity_id_for
from libs.common.tenant_settings_store import TenantSettingsCache
from services.attribution.held_sweep import HeldSweep

from .attribution_support import RecordingProducer, activity, baseline, create_tenant, deliver, rows

DAY = datetime(2026, 11, 24, 17, 0, tzinfo=UTC)
GRACE = timedelta(minutes=15)


def _meeting(
    tenant: str, external_id: str, at: datetime, outcome: str = "scheduled", revision: int = 1
) -> ActivityIngestedV1:
    """Ana's half hour with Bo at ``at``, as the tenant's calendar stated it in ``revision``."""
    base = activity(
        external_id,
        source="calendar",
        kind="meeting",
        outcome=outcome,
        occurred_at=at.isoformat(),
        duration_seconds=1800,
        revision=revision,
        participants=[
            {"email": "ana@seller.example", "role": "organizer"},
            {"email": "bo@buyer.example", "role": "attendee"},
        ],
    )
    return base.model_copy(
        update={"tenant_id": tenant, "activity_id": activity_id_for(tenant, "calendar", external_id)}
    )


def _sweep(engine: AsyncEngine, producer: RecordingProducer) -> HeldSweep:
    """One replica's sweep (its own settings cache, read afresh)."""
    tenants = TenantSettingsCache(engine, ttl_seconds=0)
    return HeldSweep(engine, cast(AIOKafkaProducer, producer), "t.", tenants, grace=GRACE, batch_size=10)


def _counted() -> tuple[float, float]:
    """``spm_meetings_held_by_sweep_total``, ``spm_held_sweep_failures_total`` (this process's)."""
    held, failed = (
        REGISTRY.get_sample_value(name) or 0.0
        for name in ("spm_meetings_held_by_sweep_total", "spm_held_sweep_failures_total")
    )
    return held, failed


async def _stored(engine: AsyncEngine) -> dict[tuple[str, str], tuple[Any, ...]]:
    """(tenant, external id) -> (outcome column, payload outcome, revision, attribution version)."""
    found = await rows(
        engine,
        "SELECT a.tenant_id, a.external_id, a.outcome, a.payload->>'outcome', a.revision, t.version "
        "FROM activities a JOIN attributions t USING (tenant_id, activity_id)",
    )
    return {(t, e): tuple(rest) for t, e, *rest in found}


async def _settings(engine: AsyncEngine, tenant: str, settings: str) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE tenants SET settings = CAST(:s AS jsonb) WHERE tenant_id = :t"),
            {"t": tenant, "s": settings},
        )


async def test_replicas_hold_each_meeting_once_and_a_broken_tenant_stops_no_other(
    db_engine: AsyncEngine,
) -> None:
    await create_tenant(db_engine)
    async with db_engine.begin() as conn:
        await conn.execute(
            text("INSERT INTO tenants (tenant_id, name) VALUES ('globex', 'globex'), ('initech', 'initech')")
        )
    producer = RecordingProducer()
    await deliver(
        db_engine,
        producer,
        *baseline(),
        _meeting("acme", "ended", DAY),
        _meeting("acme", "moved", DAY),
        _meeting("acme", "called-off", DAY, "cancelled"),
        _meeting("globex", "ended", DAY),
        _meeting("initech", "ended", DAY),
    )
    # Acme's second meeting moved a week on (still ahead when the sweep runs); globex's settings broken.
    await deliver(db_engine, producer, _meeting("acme", "moved", DAY + timedelta(days=7), revision=2))
    await _settings(db_engine, "globex", '{"attribution": {"ambiguity_policy": "newest_deal"}}')
    producer.take()

    one, two = _sweep(db_engine, producer), _sweep(db_engine, producer)
    before = _counted()
    reports = await asyncio.gather(
        one.run_once(DAY + timedelta(days=1)), two.run_once(DAY + timedelta(days=1))
    )
    published = [
        (s.event.tenant_id, s.event.activity_id, s.event.version, s.event.facts.outcome)
        for s in producer.take()
    ]
    stored = await _stored(db_engine)
    counted = tuple(n - b for n, b in zip(_counted(), before, strict=True))
    again = await one.run_once(DAY + timedelta(days=1, minutes=1))

    held = "held"
    assert sorted(published) == sorted(
        [
            ("acme", activity_id_for("acme", "calendar", "ended"), 2, held),
            ("initech", activity_id_for("initech", "calendar", "ended"), 2, held),
        ]
    )
    assert sum(r.held for r in reports) == 2
    assert counted == (2.0, 2.0)
    # The replicas took different meetings (locked as selected); each read globex's settings
    # before any of its meetings, left the tenant out whole (each process its own quarantine,
    # each counted), and the others went on.
    assert sum(r.found for r in reports) == 2
    assert [t for r in reports for t in r.tenants_failed] == ["globex", "globex"]
    assert [r.failed for r in reports] == [[], []]
    assert stored == {
        ("acme", "ended"): ("held", "held", 1, 2),
        ("acme", "moved"): ("scheduled", "scheduled", 2, 2),
        ("acme", "called-off"): ("cancelled", "cancelled", 1, 1),
        ("globex", "ended"): ("scheduled", "scheduled", 1, 1),
        ("initech", "ended"): ("held", "held", 1, 2),
    }
    # Quarantined: not even looked at within the hour.
    assert (again.found, again.held, again.tenants_failed) == (0, 0, [])

    await _settings(db_engine, "globex", "{}")
    repaired = await one.run_once(DAY + timedelta(days=1, hours=2))
    moved = await one.run_once(DAY + timedelta(days=8))
    assert (repaired.held, moved.held) == (1, 1)
    assert [(s.event.tenant_id, s.event.version, s.event.facts.outcome) for s in producer.take()] == [
        ("globex", 2, held),
        ("acme", 3, held),
    ]

    # A stale copy of the revision synced ahead changes nothing; the source's next revision wins.
    stale = await deliver(db_engine, producer, _meeting("acme", "ended", DAY))
    later = await deliver(db_engine, producer, _meeting("acme", "ended", DAY, "no_show", revision=2))
    last = await one.run_once(DAY + timedelta(days=9))
    assert stale == []
    assert [(s.event.version, s.event.facts.outcome, s.event.facts.revision) for s in later] == [
        (3, "no_show", 2)
    ]
    assert (last.found, last.held) == (0, 0)
    assert (await _stored(db_engine))[("acme", "ended")] == ("no_show", "no_show", 2, 3)


class _OneConnection:
    """Stands in for the engine: the sweep's transactions are savepoints of one connection, so
    what they read is counted in that backend's ``pg_stat_xact_user_tables``."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncConnection]:
        async with self.conn.begin_nested():
            yield self.conn

    connect = begin


async def _visited(conn: AsyncConnection) -> int:
    """The ``activities`` rows this transaction read so far: fetched through an index or scanned."""
    found = await conn.execute(
        text(
            "SELECT coalesce(idx_tup_fetch, 0) + seq_tup_read FROM pg_stat_xact_user_tables "
            "WHERE relname = 'activities'"
        )
    )
    return int(found.scalar_one())


async def test_a_tenant_left_out_is_not_read(db_engine: AsyncEngine) -> None:
    """A tenant whose settings are broken, with 3,000 meetings waiting that started before any
    other tenant's: its settings are read before any of its meetings, so neither the round that
    leaves it out (which holds the other tenant's) nor a later one reads them (before: each pass
    after the first stepped over all 3,000, row by row, in the index by start)."""
    await create_tenant(db_engine)
    async with db_engine.begin() as conn:
        await conn.execute(text("INSERT INTO tenants (tenant_id, name) VALUES ('globex', 'globex')"))
    producer = RecordingProducer()
    await deliver(
        db_engine, producer, *baseline(), _meeting("acme", "ended", DAY), _meeting("acme", "next", DAY)
    )
    producer.take()
    async with db_engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO activities (tenant_id, activity_id, source, external_id, kind, direction, "
                "outcome, occurred_at, duration_seconds, payload, ingested_at) SELECT 'globex', "
                "gen_random_uuid(), 'calendar', 'g-' || n, 'meeting', 'outbound', 'scheduled', "
                "CAST(:at AS timestamptz) + n * interval '1 minute', 1800, '{}', now() "
                "FROM generate_series(1, 3000) n"
            ),
            {"at": DAY - timedelta(days=30)},
        )
        await conn.execute(text("ANALYZE activities"))
    await _settings(db_engine, "globex", '{"attribution": {"ambiguity_policy": "newest_deal"}}')

    async with db_engine.connect() as conn:
        await conn.begin()
        sweep = HeldSweep(
            cast(AsyncEngine, _OneConnection(conn)),
            cast(AIOKafkaProducer, producer),
            "t.",
            TenantSettingsCache(db_engine, ttl_seconds=0),
            grace=GRACE,
            batch_size=10,
        )
        start = await _visited(conn)
        first = await sweep.run_once(DAY + timedelta(days=1))
        read_first = await _visited(conn) - start
        start = await _visited(conn)
        later = await sweep.run_once(DAY + timedelta(days=1, minutes=1))
        read_later = await _visited(conn) - start
        await conn.commit()

    assert (first.found, first.held, first.tenants_failed) == (2, 2, ["globex"])
    assert (later.found, later.held, later.tenants_failed) == (0, 0, [])
    assert [(s.event.tenant_id, s.event.facts.outcome) for s in producer.take()] == [("acme", "held")] * 2
    # A few rows each (the tenants' first entries, acme's two meetings): none of globex's 3,000.
    assert (read_first < 30, read_later < 10) == (True, True), (read_first, read_later)
