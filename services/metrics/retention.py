"""The retention purge: per tenant, what is past its retention goes; the aggregates stay exact.

For each tenant, activities that occurred before ``now - retention.activities_days`` are
deleted with their attributions, history, overrides and metric contributions, and vendor
webhook state not updated for ``retention.raw_captures_days``. Rollups (the aggregates
behind every score) are left as they are: they hold no person, and since a version of a
purged activity no longer finds its contribution, metrics does not count it again
(:meth:`MetricSettings.past_retention`). Ingest's duplicate ledgers are pruned past the
redelivery window, for every tenant at once. Each tenant's run is recorded in
``retention_purges`` and in the audit log.

Runs in the metrics process every ``METRICS_PURGE_INTERVAL_SECONDS`` and on demand as
``spm purge``; batches are bounded, so a large backlog never holds long locks.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.audit import Actor, AuditAction, CredentialKind, record_admin_action
from libs.common.contracts.retention import RetentionSettings, retention_of
from services.metrics.adapters import retention as sql

log = logging.getLogger(__name__)

SYSTEM_ACTOR = Actor("system:retention", CredentialKind.SYSTEM)


@dataclass
class PurgeReport:
    """What one purge removed, per tenant and table, and the tenants whose policy is invalid."""

    tenants: dict[str, dict[str, int]] = field(default_factory=dict)
    ledgers: dict[str, int] = field(default_factory=dict)
    invalid: dict[str, str] = field(default_factory=dict)


async def purge_tenant(
    engine: AsyncEngine,
    tenant_id: str,
    retention: RetentionSettings,
    now: datetime,
    *,
    batch_size: int = 5_000,
    actor: Actor = SYSTEM_ACTOR,
) -> dict[str, int]:
    """Purge one tenant past its retention; each batch is its own transaction. Returns the counts."""
    cutoff = retention.activities_cutoff(now)
    counts: Counter[str] = Counter()
    for table in sql.DATED_TABLES:
        while True:
            async with engine.begin() as conn:
                removed = await sql.purge_dated(conn, table, tenant_id, cutoff, batch_size)
            counts.update(removed)
            if removed[table] < batch_size:
                break
    async with engine.begin() as conn:
        counts["webhook_state"] = await sql.purge_webhook_state(
            conn, tenant_id, retention.raw_captures_cutoff(now)
        )
        result = {k: counts[k] for k in sorted(counts)}
        await sql.record_purge(conn, tenant_id, cutoff, result)
        if any(result.values()):
            await record_admin_action(
                conn,
                tenant_id,
                actor,
                AuditAction.RETENTION_PURGED,
                f"tenant:{tenant_id}",
                after={"cutoff": cutoff.isoformat(), "retention": retention.model_dump(), "removed": result},
            )
    return result


async def purge(
    engine: AsyncEngine,
    now: datetime,
    ledger_window: timedelta,
    *,
    tenant_id: str | None = None,
    batch_size: int = 5_000,
    actor: Actor = SYSTEM_ACTOR,
) -> PurgeReport:
    """Purge every tenant (or one) past its retention, then prune the ledgers past ``ledger_window``."""
    report = PurgeReport()
    async with engine.connect() as conn:
        tenants = await sql.tenant_settings(conn)
    for tenant, settings in tenants:
        if tenant_id is not None and tenant != tenant_id:
            continue
        try:
            retention = retention_of(settings)
        except ValueError as exc:
            # One tenant's bad policy never stops the others' purge.
            report.invalid[tenant] = str(exc)
            continue
        report.tenants[tenant] = await purge_tenant(
            engine, tenant, retention, now, batch_size=batch_size, actor=actor
        )
    async with engine.begin() as conn:
        report.ledgers = await sql.prune_ledgers(conn, now - ledger_window)
    return report


class RetentionPurger:
    """Runs :func:`purge` every ``interval_seconds`` in the metrics process; a failure waits for the next run."""

    def __init__(self, engine: AsyncEngine, interval_seconds: float, ledger_window: timedelta) -> None:
        self.engine = engine
        self.interval = interval_seconds
        self.ledger_window = ledger_window
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        while not self._stopping.is_set():
            try:
                report = await purge(self.engine, datetime.now(UTC), self.ledger_window)
                for tenant, problem in report.invalid.items():
                    log.warning(
                        "retention policy invalid; tenant not purged",
                        extra={"tenant_id": tenant, "reason": problem},
                    )
            except Exception:
                log.exception("retention purge failed; retrying at the next interval")
            with suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.interval)
