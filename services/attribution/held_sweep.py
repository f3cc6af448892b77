"""The meetings booked ahead, held once they end: a calendar does not edit an event when its time
passes, so the revision synced ahead (``scheduled``) is the last a connector posts.

Every ``held_sweep_interval_seconds`` each attribution process looks for stored meetings still
``scheduled`` whose end (their start, without a length) is ``held_grace_minutes`` past
(``domain.held``), a batch at a time, and takes them the way a newer revision of their source
takes them: the stored row's outcome becomes ``held`` (same revision), the meeting is decided
again as ``revised`` (``attribute_batch``), the new version is published (and acknowledged)
before the transaction commits. Metrics counts it held once (a higher version of the same
revision); a later revision from the source (cancelled, no-show, moved) is newer and wins as usual.

Replicas: each tenant's meetings are locked ``FOR UPDATE SKIP LOCKED`` in their own transaction,
so two processes never publish one meeting twice, and a consumer storing a newer revision waits for
the lock (then replaces ``held``) or is skipped. A tenant whose batch fails (its settings invalid,
a row that does not decode) is retried a meeting at a time; a meeting failing alone is left out
for ``held_sweep_quarantine_seconds`` (logged, counted), so no tenant's row stops the others.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from aiokafka import AIOKafkaProducer
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.tenant_settings_store import TenantSettingsCache
from services.attribution.adapters import repository as repo
from services.attribution.domain.held import as_held, held_by, held_cutoff
from services.attribution.handlers import attribute_batch, count_published, publish
from services.attribution.telemetry import HELD_SWEEP_FAILURES, MEETINGS_HELD_BY_SWEEP

log = logging.getLogger(__name__)

#: One process's rounds per interval at most when every batch comes back full.
MAX_ROUNDS = 10


@dataclass
class SweepReport:
    """One round: meetings found ended, turned held (published), and left out as failing."""

    found: int = 0
    held: int = 0
    failed: list[tuple[str, uuid.UUID]] = field(default_factory=list)


class HeldSweep:
    def __init__(
        self,
        engine: AsyncEngine,
        producer: AIOKafkaProducer,
        topic_prefix: str,
        tenants: TenantSettingsCache,
        *,
        grace: timedelta,
        interval_seconds: float = 60.0,
        batch_size: int = 500,
        quarantine: timedelta = timedelta(hours=1),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.engine = engine
        self.producer = producer
        self.topic_prefix = topic_prefix
        self.tenants = tenants
        self.grace = grace
        self.interval = interval_seconds
        self.batch_size = batch_size
        self.quarantine = quarantine
        self.clock = clock
        #: (tenant, meeting) -> when it is tried again.
        self._quarantined: dict[tuple[str, uuid.UUID], datetime] = {}
        self._stopping = asyncio.Event()

    async def run_once(self, now: datetime | None = None) -> SweepReport:
        """One batch of ended meetings, across tenants, each tenant in its own transaction."""
        now = now or self.clock()
        self._quarantined = {key: until for key, until in self._quarantined.items() if until > now}
        async with self.engine.connect() as conn:
            found = await repo.ended_scheduled_meetings(
                conn, held_cutoff(now, self.grace), self.batch_size, self._quarantined
            )
        report = SweepReport(found=len(found))
        by_tenant: defaultdict[str, list[uuid.UUID]] = defaultdict(list)
        for tenant_id, activity_id in found:
            by_tenant[tenant_id].append(activity_id)
        for tenant_id, ids in sorted(by_tenant.items()):
            try:
                report.held += await self._hold(tenant_id, ids, now)
            except Exception:
                log.exception(
                    "held sweep: a tenant's batch failed; trying its meetings one by one",
                    extra={"tenant_id": tenant_id, "meetings": len(ids)},
                )
                report.held += await self._one_by_one(tenant_id, ids, now, report)
        MEETINGS_HELD_BY_SWEEP.inc(report.held)
        return report

    async def _one_by_one(
        self, tenant_id: str, ids: Sequence[uuid.UUID], now: datetime, report: SweepReport
    ) -> int:
        held = 0
        for activity_id in ids:
            try:
                held += await self._hold(tenant_id, [activity_id], now)
            except Exception as exc:
                key = (tenant_id, activity_id)
                self._quarantined[key] = now + self.quarantine
                report.failed.append(key)
                HELD_SWEEP_FAILURES.inc()
                log.warning(
                    "held sweep: meeting left out until the quarantine ends",
                    extra={"tenant_id": tenant_id, "activity_id": str(activity_id), "reason": repr(exc)},
                )
        return held

    async def _hold(self, tenant_id: str, ids: Sequence[uuid.UUID], now: datetime) -> int:
        """The tenant's meetings of ``ids`` still ended and scheduled, held: one transaction,
        published before it commits (``handlers``' order). Returns how many."""
        settings = await self.tenants.get(tenant_id)
        if settings is None:
            raise LookupError(f"no tenant {tenant_id!r}")
        async with self.engine.begin() as conn:
            locked = await repo.lock_ended_scheduled_meetings(
                conn, tenant_id, ids, held_cutoff(now, self.grace)
            )
            meetings = [
                as_held(a)
                for a in await repo.load_activities(conn, tenant_id, locked)
                if held_by(a, now, self.grace)
            ]
            held = [a.activity_id for a in meetings]
            await repo.mark_meetings_held(conn, tenant_id, held)
            batch = await attribute_batch(conn, tenant_id, meetings, now, settings, revised=held)
            await repo.save_attributions(conn, batch.rows)
            await publish(self.producer, batch.events, self.topic_prefix)
            count_published(batch.events)
        return len(held)

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        """Until stopped: every interval, batches until one comes back short (``MAX_ROUNDS`` at most)."""
        while not self._stopping.is_set():
            with suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.interval)
            for _ in range(MAX_ROUNDS):
                if self._stopping.is_set():
                    break
                try:
                    report = await self.run_once()
                except Exception:
                    log.exception("held sweep failed; retrying at the next interval")
                    break
                if report.found < self.batch_size:
                    break
