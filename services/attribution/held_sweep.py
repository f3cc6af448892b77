"""The meetings booked ahead, held once they end: a calendar does not edit an event when its time
passes, so the revision synced ahead (``scheduled``) is the last a connector posts.

Every ``held_sweep_interval_seconds`` each attribution process looks for stored meetings still
``scheduled`` whose end (their start, without a length) is ``held_grace_minutes`` past
(``domain.held``), a batch at a time, and takes them the way a newer revision of their source
takes them: the meeting is decided again as ``revised`` (``attribute_batch``, screened for erased
people as the consumer screens what it receives), the new version is saved and the stored row's
outcome becomes ``held`` (same revision). Metrics counts it held once (a higher version of the
same revision); a later revision from the source (cancelled, no-show, moved) is newer and wins.
A meeting the screen leaves without an external participant (its only customers erased, the
erasure job not there yet) is taken as that job takes it (``erasure.erase_emptied``): deleted,
its version in force retracted by one that counts nothing, queued like the held versions; so it
leaves the index in the pass that finds it and stops no tenant behind it.
A meeting deleted at its source is never selected (nothing would be published for it).

Each round takes two passes: the ended meetings that started within ``RECENT`` of the cutoff first (those just ended
are held within an interval, whatever backlog waits), then one batch of the older backlog (the
meetings synced ahead before the first deploy). A pass finds the tenants with ended meetings
first (the tenant whose earliest started first first), reads their settings, and takes its
batch tenant by tenant, each one's earliest first: a tenant left out is dropped before any of
its meetings is read (migration 0036's index is by tenant, then start).

Publishing: the transaction that locks, decides and stores a batch queues its versions
(``held_sweep_outbox``, migration 0037) and commits; they are published after, from the queue, in
a transaction that locks only the queue's rows and deletes them once the broker acknowledged
them. So no meeting's row stays locked while the broker takes its time: a consumer storing a
newer revision meanwhile goes ahead, reads the sweep's version as the one in force and
publishes the next (``handlers``' versioned path), which metrics keeps over the sweep's, in
whatever order they arrive (the higher revision, then version, counts). A process that dies
between the commit and the acknowledgement leaves the versions queued: the next round of any
replica publishes them (first thing), at least once; metrics keeps one per version. A queued
version failing on its own (its body cannot be decoded, the broker rejects it: too large, or it
fails alone while the others go) is set aside for ``held_sweep_quarantine_seconds`` (left queued,
counted in ``spm_held_sweep_failures_total``, logged), so it never stops the others' publishing;
a broker failing every row (down) fails the round, none set aside.

Replicas: each pass selects and locks its batch ``FOR UPDATE SKIP LOCKED`` in one transaction,
so replicas take different batches (each adds throughput); a meeting stored held leaves the
index, so no replica decides it twice, and the queue's rows are taken ``SKIP LOCKED`` too. A
consumer storing a newer revision while a batch is being decided waits for that transaction
(then replaces ``held``) or is skipped.
Each tenant's meetings are taken in a savepoint: a tenant whose settings cannot be read (invalid,
gone) is left out whole for ``held_sweep_quarantine_seconds`` (logged once, counted; none of its
meetings is read meanwhile); a failure that is the moment's, not the data's (the broker or the
database unreachable or timing out, ``failures.is_transient``), fails the round, retried at the
next interval with nobody left out; a tenant
whose batch fails otherwise is retried a meeting at a time, and a meeting failing alone is left
out for as long (at most ``QUARANTINE_CAP`` meetings of a tenant; past that the tenant is), so no tenant's
rows stop the others.

Without migration 0036's index each look would scan every tenant's activities: ``run`` checks it
exists each interval until it does and, meanwhile, counts a failure, logs why once and does not
sweep.
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
from aiokafka.errors import MessageSizeTooLargeError, RecordListTooLargeError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from libs.common.contracts.activities import Outcome
from libs.common.contracts.activities_fast import IngestedEvent
from libs.common.contracts.attribution_fast import Attributed, decode_encoded
from libs.common.contracts.tenant_settings import InvalidTenantSettings, TenantSettings
from libs.common.kafka.failures import is_transient
from libs.common.tenant_settings_store import TenantSettingsCache
from services.attribution.adapters import repository as repo
from services.attribution.domain.held import as_held, held_by, held_cutoff
from services.attribution.erasure import erase_emptied
from services.attribution.handlers import ErasureCheck, attribute_batch, count_published, publish
from services.attribution.telemetry import HELD_SWEEP_FAILURES, MEETINGS_HELD_BY_SWEEP

log = logging.getLogger(__name__)

#: One process's rounds per interval at most while a pass comes back full.
MAX_ROUNDS = 10
#: The meetings that ended this recently are taken first, each round.
RECENT = timedelta(days=1)
#: Meetings left out one by one at most; a tenant failing past it is left out whole.
QUARANTINE_CAP = 1_000
#: Queued versions failing in a row, none acknowledged since, that tell a broker down.
PROBES = 3
#: The broker's answers about one message (too large): it is that row's own failure.
REJECTED = (MessageSizeTooLargeError, RecordListTooLargeError)


@dataclass
class SweepReport:
    """One round: meetings found ended (recent window, backlog), stored held (their versions
    queued), deleted as an erased person's own (their retractions queued), versions published,
    and left out as failing (meetings; tenants whose settings or meetings failed)."""

    recent: int = 0
    backlog: int = 0
    held: int = 0
    #: Meetings an erasure left without an external participant: deleted, retracted (``_hold``).
    erased: int = 0
    #: Versions published from the queue (this round's, and any left by a round or process before).
    published: int = 0
    failed: list[tuple[str, uuid.UUID]] = field(default_factory=list)
    tenants_failed: list[str] = field(default_factory=list)
    #: Queued versions set aside as failing on their own (``held_sweep_outbox.outbox_id``).
    queue_failed: list[int] = field(default_factory=list)

    @property
    def found(self) -> int:
        return self.recent + self.backlog

    def full(self, batch_size: int) -> bool:
        """Whether either pass came back full (more may wait)."""
        return max(self.recent, self.backlog) >= batch_size


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
        erasures: ErasureCheck | None = None,
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
        self.erasures = erasures
        self.clock = clock
        #: (tenant, meeting) -> when it is tried again (``QUARANTINE_CAP`` a tenant at most).
        self._quarantined: dict[tuple[str, uuid.UUID], datetime] = {}
        #: tenant -> when its meetings are tried again.
        self._tenants_out: dict[str, datetime] = {}
        #: Queued versions (``held_sweep_outbox``) failing on their own -> when tried again.
        self._queue_out: dict[int, datetime] = {}
        #: Where the round's rows set aside are listed (``SweepReport.queue_failed``).
        self._queue_failed: list[int] = []
        #: Tenants whose failure was logged, until one of their meetings is held again.
        self._reported: set[str] = set()
        #: Whether migration 0036's index was found (checked until it is).
        self._indexed = False
        #: The reason the sweep is not running last logged (logged once each).
        self._not_ready_logged = ""
        self._stopping = asyncio.Event()

    async def run_once(self, now: datetime | None = None) -> SweepReport:
        """One round: a batch of the ended meetings that started within ``RECENT``, then one of the backlog."""
        now = now or self.clock()
        self._quarantined = {key: until for key, until in self._quarantined.items() if until > now}
        self._tenants_out = {t: until for t, until in self._tenants_out.items() if until > now}
        self._queue_out = {i: until for i, until in self._queue_out.items() if until > now}
        report = SweepReport()
        self._queue_failed = report.queue_failed
        # What a round that failed to publish, or a process that died, left queued: first, so a
        # broker that is down fails the round before another batch is queued.
        report.published += await self.publish_queued(now)
        since = held_cutoff(now, self.grace) - RECENT
        report.recent = await self._pass(now, report, started_after=since)
        report.backlog = await self._pass(now, report, started_by=since)
        return report

    async def publish_queued(self, now: datetime | None = None) -> int:
        """Publish the queued versions (``held_sweep_outbox``), a batch per transaction that locks
        only the queue's rows (``FOR UPDATE SKIP LOCKED``: another process publishing takes other
        rows), each deleted once the broker acknowledged it; until the queue is empty. Returns how
        many were published.

        A row failing on its own is set aside (left queued, not taken again for the quarantine,
        counted, logged) and the others go on: one whose body cannot be decoded, and, when the
        batch's publish fails, one that fails again when tried alone (``_one_at_a_time``). A
        broker that fails every row (down) fails the round, its rows still queued, none set aside."""
        now = now or self.clock()
        published = 0
        while True:
            down: Exception | None = None
            async with self.engine.begin() as conn:
                queued = await repo.lock_queued_held(conn, self.batch_size, self._queue_out)
                decoded = self._decoded(queued, now)
                try:
                    await publish(self.producer, [event for _, event in decoded], self.topic_prefix)
                    sent = decoded
                except Exception:
                    log.warning(
                        "held sweep: publishing the queue failed; trying its rows one at a time",
                        exc_info=True,
                    )
                    sent, down = await self._one_at_a_time(decoded, now)
                await repo.clear_queued_held(conn, [row.outbox_id for row, _ in sent])
            events = [event for _, event in sent]
            count_published(events)
            # Not the retractions of meetings an erasure left empty (``_hold``): they stay as stated.
            MEETINGS_HELD_BY_SWEEP.inc(sum(1 for e in events if e.facts.outcome == Outcome.HELD))
            published += len(events)
            if down is not None:
                raise down
            if len(queued) < self.batch_size:
                return published

    def _decoded(
        self, queued: Sequence[repo.QueuedHeld], now: datetime
    ) -> list[tuple[repo.QueuedHeld, Attributed]]:
        """The rows' versions; a row whose body cannot be decoded is set aside."""
        decoded = []
        for row in queued:
            try:
                decoded.append((row, decode_encoded(row.event)))
            except Exception as exc:
                self._set_aside(row, now, f"its body could not be decoded: {exc!r}")
        return decoded

    async def _one_at_a_time(
        self, decoded: Sequence[tuple[repo.QueuedHeld, Attributed]], now: datetime
    ) -> tuple[list[tuple[repo.QueuedHeld, Attributed]], Exception | None]:
        """The batch, published a version at a time: those acknowledged, and the broker's error
        when it looks down. A row the broker rejects as such (``REJECTED``: too large) is set aside.
        Any other failure is the row's own only when the broker acknowledged another row of the
        batch meanwhile; ``PROBES`` such failures in a row with none acknowledged since (or all of
        the batch's, with none acknowledged) are the broker's: they stay queued, not set aside."""
        sent: list[tuple[repo.QueuedHeld, Attributed]] = []
        streak: list[tuple[repo.QueuedHeld, Exception]] = []
        for row, event in decoded:
            try:
                await publish(self.producer, [event], self.topic_prefix)
            except REJECTED as exc:
                self._set_aside(row, now, f"the broker rejected it: {exc!r}")
                continue
            except Exception as exc:
                streak.append((row, exc))
                if len(streak) >= PROBES:
                    break
                continue
            sent.append((row, event))
            for failed, error in streak:
                self._set_aside(failed, now, f"publishing it failed: {error!r}")
            streak = []
        if streak and (not sent or len(streak) >= PROBES):
            return sent, streak[-1][1]
        for failed, error in streak:
            self._set_aside(failed, now, f"publishing it failed: {error!r}")
        return sent, None

    def _set_aside(self, row: repo.QueuedHeld, now: datetime, reason: str) -> None:
        """A queued row failing on its own: left queued, not taken again until the quarantine ends."""
        self._queue_out[row.outbox_id] = now + self.quarantine
        self._queue_failed.append(row.outbox_id)
        HELD_SWEEP_FAILURES.inc()
        log.warning(
            "held sweep: queued version set aside until the quarantine ends",
            extra={
                "outbox_id": row.outbox_id,
                "tenant_id": row.tenant_id,
                "activity_id": str(row.activity_id),
                "version": row.version,
                "reason": reason,
            },
        )

    async def _pass(
        self,
        now: datetime,
        report: SweepReport,
        *,
        started_after: datetime | None = None,
        started_by: datetime | None = None,
    ) -> int:
        """One batch, selected, locked, decided, stored held and queued in one transaction (each
        tenant's in a savepoint), then published.

        The tenants with ended meetings are found first and their settings read: a tenant whose
        settings fail is left out before any of its meetings is read or locked."""
        cutoff = held_cutoff(now, self.grace)
        async with self.engine.begin() as conn:
            waiting = await repo.tenants_with_ended_meetings(
                conn,
                cutoff,
                started_after=started_after,
                started_by=started_by,
                tenants_out=self._tenants_out,
            )
            readable: dict[str, TenantSettings] = {}
            for tenant_id in waiting:
                settings = await self._settings(tenant_id, now, report)
                if settings is not None:
                    readable[tenant_id] = settings
            found = await repo.lock_ended_scheduled_meetings(
                conn,
                cutoff,
                self.batch_size,
                list(readable),
                started_after=started_after,
                started_by=started_by,
                skipped=self._quarantined,
            )
            by_tenant: defaultdict[str, list[uuid.UUID]] = defaultdict(list)
            for tenant_id, activity_id in found:
                by_tenant[tenant_id].append(activity_id)
            for tenant_id, ids in by_tenant.items():
                settings = readable[tenant_id]
                try:
                    async with conn.begin_nested():
                        held, erased = await self._hold(conn, tenant_id, settings, ids, now)
                    report.held += held
                    report.erased += erased
                except Exception as exc:
                    if is_transient(exc):
                        raise  # the broker or the database for a moment: the round's, not the meetings'
                    log.exception(
                        "held sweep: a tenant's batch failed; trying its meetings one by one",
                        extra={"tenant_id": tenant_id, "meetings": len(ids)},
                    )
                    report.held += await self._one_by_one(conn, tenant_id, settings, ids, now, report)
        # Committed: the rows are unlocked before anything is sent.
        report.published += await self.publish_queued(now)
        return len(found)

    async def _settings(self, tenant_id: str, now: datetime, report: SweepReport) -> TenantSettings | None:
        """The tenant's settings; a tenant whose settings are invalid, or that is gone, is left out
        whole. Any other error (the database unreachable for a moment) is the round's: it is raised
        and the next interval tries again, leaving no tenant out for an hour over a blip."""
        try:
            settings = await self.tenants.get(tenant_id)
        except InvalidTenantSettings as exc:
            self._leave_out_tenant(tenant_id, now, report, f"its settings: {exc!r}")
            return None
        if settings is None:
            self._leave_out_tenant(tenant_id, now, report, f"its settings: no tenant {tenant_id!r}")
        return settings

    def _leave_out_tenant(self, tenant_id: str, now: datetime, report: SweepReport, reason: str) -> None:
        self._tenants_out[tenant_id] = now + self.quarantine
        report.tenants_failed.append(tenant_id)
        HELD_SWEEP_FAILURES.inc()
        if tenant_id not in self._reported:
            self._reported.add(tenant_id)
            log.warning(
                "held sweep: tenant left out until the quarantine ends",
                extra={"tenant_id": tenant_id, "reason": reason},
            )

    async def _one_by_one(
        self,
        conn: AsyncConnection,
        tenant_id: str,
        settings: TenantSettings,
        ids: Sequence[uuid.UUID],
        now: datetime,
        report: SweepReport,
    ) -> int:
        held = 0
        for activity_id in ids:
            if tenant_id in self._tenants_out:
                break
            try:
                async with conn.begin_nested():
                    one, erased = await self._hold(conn, tenant_id, settings, [activity_id], now)
                held += one
                report.erased += erased
            except Exception as exc:
                if is_transient(exc):
                    raise
                if sum(1 for t, _ in self._quarantined if t == tenant_id) >= QUARANTINE_CAP:
                    self._leave_out_tenant(tenant_id, now, report, f"too many failing meetings: {exc!r}")
                    break
                key = (tenant_id, activity_id)
                self._quarantined[key] = now + self.quarantine
                report.failed.append(key)
                HELD_SWEEP_FAILURES.inc()
                log.warning(
                    "held sweep: meeting left out until the quarantine ends",
                    extra={"tenant_id": tenant_id, "activity_id": str(activity_id), "reason": repr(exc)},
                )
        return held

    async def _hold(
        self,
        conn: AsyncConnection,
        tenant_id: str,
        settings: TenantSettings,
        ids: Sequence[uuid.UUID],
        now: datetime,
    ) -> tuple[int, int]:
        """The tenant's meetings of ``ids`` (locked by this transaction) decided again as held,
        stored held and their versions queued to publish once it commits (``publish_queued``);
        only those with a version are stored held. A meeting an erasure left without an external
        participant is deleted instead, its retraction queued (``erase_emptied``). Returns how
        many were stored held, and how many deleted."""
        ended = [a for a in await repo.load_activities(conn, tenant_id, ids) if held_by(a, now, self.grace)]
        emptied: list[IngestedEvent] = []
        if self.erasures is not None and ended:
            # As the consumer screens what it receives: erased people's participation removed. A
            # meeting left without an external participant (an erased person's own) is taken as
            # the erasure job takes it: deleted, its version in force retracted; so it leaves the
            # index now rather than be found again each round until the job reaches it.
            ended, emptied = await self.erasures.split(conn, ended)
        meetings = [as_held(a) for a in ended]
        batch = await attribute_batch(
            conn, tenant_id, meetings, now, settings, revised=[a.activity_id for a in meetings]
        )
        held = sorted({e.activity_id for e in batch.events})
        await repo.mark_meetings_held(conn, tenant_id, held)
        await repo.save_attributions(conn, batch.rows)
        retracted = await erase_emptied(conn, tenant_id, emptied, now)
        await repo.queue_held(conn, [*batch.events, *retracted])
        if emptied:
            log.info(
                "held sweep: meetings left without an external participant by an erasure deleted",
                extra={"tenant_id": tenant_id, "meetings": len(emptied), "retracted": len(retracted)},
            )
        self._reported.discard(tenant_id)
        return len(held), len(emptied)

    def stop(self) -> None:
        self._stopping.set()

    async def _ready(self) -> bool:
        """Whether the sweep may run: migration 0036's index is there. Checked each interval until
        it is (a database down when the service started, a migration rolled after it), each
        failed check counted in ``spm_held_sweep_failures_total`` and logged once."""
        if self._indexed:
            return True
        try:
            async with self.engine.connect() as conn:
                self._indexed = await repo.has_scheduled_meetings_index(conn)
        except Exception:
            self._not_ready("held sweep: could not check its index; not sweeping yet", exc_info=True)
            return False
        if not self._indexed:
            self._not_ready(
                f"held sweep: index {repo.SCHEDULED_MEETINGS_INDEX} missing (migration "
                "0036_scheduled_by_tenant not applied); not sweeping: meetings synced ahead stay "
                "scheduled until it is applied"
            )
        return self._indexed

    def _not_ready(self, message: str, exc_info: bool = False) -> None:
        HELD_SWEEP_FAILURES.inc()
        if message != self._not_ready_logged:
            self._not_ready_logged = message
            log.error(message, exc_info=exc_info)

    async def run(self) -> None:
        """Until stopped: every interval, rounds until none comes back full (``MAX_ROUNDS`` at
        most); none while migration 0036's index is missing (counted, logged once). A round
        that fails as a whole (the database unreachable) is counted too, and retried at the
        next interval."""
        while not self._stopping.is_set():
            with suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.interval)
            if self._stopping.is_set() or not await self._ready():
                continue
            for _ in range(MAX_ROUNDS):
                if self._stopping.is_set():
                    break
                try:
                    report = await self.run_once()
                except Exception:
                    HELD_SWEEP_FAILURES.inc()
                    log.exception("held sweep failed; retrying at the next interval")
                    break
                if not report.full(self.batch_size):
                    break
