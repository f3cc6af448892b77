"""The drainer: applies the versions batches set aside while their tenant's rollups were busy.

A background task of the metrics process next to the refresher. Every ``interval_seconds`` it
lists the tenants with versions in ``metric_deferred_events`` and applies each one's, oldest
first, a transaction per ``DRAIN_BATCH`` holding the tenant's rollup lock exclusively
(``handlers.drain_deferred``); a tenant whose rebuild or rescore still runs is left for the next
tick. It then reports what is still waiting (``spm_metrics_deferred_versions`` per tenant,
``spm_metrics_deferred_oldest_age_seconds``). A failure is logged and retried on the next tick;
it never stops the consumer. Several replicas may drain at once: the lock serialises them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime

from services.metrics.adapters import deferred
from services.metrics.adapters.deferred import Backlog
from services.metrics.handlers import MetricsDeps, drain_tenant
from services.metrics.telemetry import DEFERRED_OLDEST_AGE, DEFERRED_WAITING

log = logging.getLogger(__name__)


class DeferredDrainer:
    def __init__(self, deps: MetricsDeps, interval_seconds: float, lock_wait_ms: int = 1_000) -> None:
        self._deps = deps
        self._interval = interval_seconds
        self._lock_wait_ms = lock_wait_ms
        self._stopping = asyncio.Event()
        #: Tenants whose gauge is set, so that a drained one's label is removed.
        self._reported: set[str] = set()

    def stop(self) -> None:
        self._stopping.set()

    async def tick(self) -> int:
        """One pass: drain every tenant whose rollups are free; returns the versions applied."""
        drained = 0
        for waiting in await self._backlog():
            if self._stopping.is_set():
                break
            try:
                drained += await drain_tenant(self._deps, waiting.tenant_id, lock_wait_ms=self._lock_wait_ms)
            except Exception:
                log.exception(
                    "versions set aside not applied; retried next tick",
                    extra={"tenant_id": waiting.tenant_id},
                )
        self._report(await self._backlog())
        return drained

    async def _backlog(self) -> list[Backlog]:
        async with self._deps.engine.connect() as conn:
            return await deferred.backlog(conn)

    def _report(self, backlog: list[Backlog]) -> None:
        now = datetime.now(UTC)
        listed = {b.tenant_id for b in backlog}
        for tenant_id in self._reported - listed:
            DEFERRED_WAITING.remove(tenant_id)
        for waiting in backlog:
            DEFERRED_WAITING.labels(waiting.tenant_id).set(waiting.versions)
        self._reported = listed
        DEFERRED_OLDEST_AGE.set(max(((now - b.oldest).total_seconds() for b in backlog), default=0.0))

    async def run(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.tick()
            except Exception:
                log.exception("could not list the versions set aside; retried next tick")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=self._interval)
