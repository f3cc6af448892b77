"""Background jobs a settings change starts (``settings_jobs``): queued by the writer, claimed by
the service that owns the work, progress visible at ``GET /v1/settings/jobs/{id}``.

A job is claimed with ``FOR UPDATE SKIP LOCKED``, so one replica runs it; progress is written on
its own autocommit connection, so it is visible while the work's transaction is still open, and
is the job's heartbeat (``heartbeat_at``, migration 0041). A job left ``running`` by a process
that died (no heartbeat for ``stale_after``) is claimed again; a job a stopping worker interrupts
(a rolling restart) is queued again at once and runs from the start on the next claim.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

log = logging.getLogger(__name__)

#: A change of these settings rebuilds the tenant's period rollups (run by metrics).
REBUILD_ROLLUPS = "rebuild_rollups"
#: Re-attribute a slice of history under the current settings, or count what would move (attribution).
REATTRIBUTE = "reattribute"
REBUILT_BY = frozenset({"time_zone", "fiscal_year_start_month"})
#: A change of these settings queues a dry-run re-attribution of the last
#: ``REATTRIBUTION_PREVIEW_DAYS``: what would move, before anything does (``time_zone``: a rep's
#: team is read on the activity's day in the tenant's time).
PREVIEWED_BY = frozenset({"attribution", "internal_domains", "time_zone"})
#: Re-credit, at once, the history of the reps and addresses a change of the tenant's rep mapping
#: names (attribution; new versions where the credit moves, as a merge from the CRM does).
RECREDIT_REPS = "recredit_reps"
RECREDITED_BY = frozenset({"rep_aliases"})
#: Re-decide what a batch of deal changes reaches past ``ATTRIBUTION_REMATCH_LIMIT`` (attribution
#: queues it from the consumer, in the batch's transaction; new versions only where they change).
REMATCH = "rematch"
#: Finished ``rematch`` jobs are kept (and a failed one counted in ``rematch_jobs_failed``) this long.
REMATCH_JOBS_KEPT = timedelta(days=14)
REATTRIBUTION_PREVIEW_DAYS = 90
#: Read again the phones a tenant's contacts keep unread (``unread_phones``: no region read them)
#: in its new phone region (ingest), queued when a change of ``default_phone_region``, or of
#: ``time_zone`` while that is unset, changes the region and such contacts are held.
REREAD_PHONES = "reread_phones"


@dataclass(frozen=True, slots=True)
class QueuedJob:
    job_id: uuid.UUID
    kind: str


class JobStatus(BaseModel):
    """A job as the admin who started it follows it: what it does, how far it got, what came of it."""

    model_config = ConfigDict(frozen=True)

    job_id: uuid.UUID
    #: ``rebuild_rollups`` (after a time zone or fiscal calendar change), ``reattribute``,
    #: ``recredit_reps`` (after a ``rep_aliases`` change), ``reread_phones`` (after a change of
    #: the phone region) or ``rematch`` (the rest of a deal change's window past the consumer's
    #: bound).
    kind: str
    #: ``queued``, ``running``, ``done`` or ``failed``.
    state: str
    done: int
    total: int | None
    parameters: dict[str, Any]
    settings_version: int | None
    result: dict[str, Any] | None
    error: str | None
    created_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    #: Failed runs retried so far (``rematch``: ``JobWorker.retries``; ``error`` is the last one's).
    attempts: int = 0


class Job(JobStatus):
    """A stored job, with the tenant it works for."""

    tenant_id: str
    #: How far a retried job's committed batches got (``save_checkpoint``); ``None`` from the start.
    checkpoint: dict[str, Any] | None = None


async def queue_job(
    conn: AsyncConnection,
    tenant_id: str,
    kind: str,
    created_by: str,
    *,
    parameters: dict[str, Any] | None = None,
    settings_version: int | None = None,
    delay: timedelta | None = None,
    unless_waiting: bool = False,
) -> uuid.UUID:
    """Queue a job in the caller's transaction (it starts once that commits, or ``delay`` later:
    ``run_after``, migration 0041).

    ``unless_waiting``: a job of the tenant of the same kind and ``parameters`` still queued (not
    started; one that reads what it works on when it runs, as ``reread_phones`` reads the region)
    does all this one would: its id is returned and none queued. It is locked until the caller's
    transaction ends, so no worker starts it before what the caller wrote is visible."""
    if unless_waiting:
        waiting = await conn.execute(
            text(
                "SELECT job_id FROM settings_jobs WHERE tenant_id = :t AND kind = :kind AND state = 'queued' "
                "AND parameters = CAST(:p AS jsonb) LIMIT 1 FOR UPDATE SKIP LOCKED"
            ),
            {"t": tenant_id, "kind": kind, "p": orjson.dumps(parameters or {}).decode()},
        )
        if (held := waiting.scalar_one_or_none()) is not None:
            return uuid.UUID(str(held))
    job_id = uuid.uuid4()
    await conn.execute(
        text(
            "INSERT INTO settings_jobs (job_id, tenant_id, kind, parameters, settings_version, created_by, "
            "run_after) VALUES (:id, :t, :kind, CAST(:p AS jsonb), :v, :by, now() + CAST(:delay AS interval))"
        ),
        {
            "id": job_id,
            "t": tenant_id,
            "kind": kind,
            "p": orjson.dumps(parameters or {}).decode(),
            "v": settings_version,
            "by": created_by,
            "delay": delay,
        },
    )
    return job_id


_COLUMNS = (
    "job_id, tenant_id, kind, parameters::text AS parameters, settings_version, state, done, total, "
    "result::text AS result, error, created_by, created_at, started_at, finished_at, attempts, "
    "checkpoint::text AS checkpoint"
)


def _job(row: Any) -> Job:
    return Job(
        job_id=row.job_id,
        tenant_id=row.tenant_id,
        kind=row.kind,
        parameters=orjson.loads(row.parameters),
        settings_version=row.settings_version,
        state=row.state,
        done=row.done,
        total=row.total,
        result=None if row.result is None else orjson.loads(row.result),
        error=row.error,
        created_by=row.created_by,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        attempts=row.attempts,
        checkpoint=None if row.checkpoint is None else orjson.loads(row.checkpoint),
    )


async def get_job(conn: AsyncConnection, tenant_id: str, job_id: uuid.UUID) -> Job | None:
    row = (
        await conn.execute(
            text(f"SELECT {_COLUMNS} FROM settings_jobs WHERE job_id = :id AND tenant_id = :t"),
            {"id": job_id, "t": tenant_id},
        )
    ).one_or_none()
    return None if row is None else _job(row)


#: Waiting (queued and due, or left running by a dead process: no heartbeat for ``:stale``), of
#: ``:kind``. Each half matches a partial index (``settings_jobs_queued``, ``settings_jobs_running``).
_WAITING = (
    "kind = :kind AND ((state = 'queued' AND (run_after IS NULL OR run_after <= now())) OR (state = 'running' "
    "AND greatest(heartbeat_at, started_at) < now() - CAST(:stale AS interval)))"
)
#: The tenants with a job waiting and none of the kind running (a job takes one of a worker's
#: slots, never two of one tenant's), in turn: the one whose last job of the kind started longest
#: ago (or never) first, then the one waiting longest. One look at each such tenant's jobs.
_TURNS = f"""
SELECT w.tenant_id FROM (
    SELECT tenant_id, min(created_at) AS oldest FROM settings_jobs WHERE {_WAITING} GROUP BY tenant_id
) w
WHERE NOT EXISTS (
    SELECT 1 FROM settings_jobs r WHERE r.tenant_id = w.tenant_id AND r.kind = :kind AND r.state = 'running'
    AND greatest(r.heartbeat_at, r.started_at) >= now() - CAST(:stale AS interval)
)
ORDER BY (SELECT max(s.started_at) FROM settings_jobs s WHERE s.tenant_id = w.tenant_id AND s.kind = :kind)
    NULLS FIRST, w.oldest, w.tenant_id
"""
#: A replica claiming a job of ``:kind`` for tenant ``:t`` holds this until its claim commits; a
#: replica that cannot take it skips the tenant (another is claiming its job this moment).
_CLAIMING = "SELECT pg_try_advisory_xact_lock(hashtextextended('settings-job:' || :kind || ':' || :t, 0))"
#: The tenant's oldest waiting job, unless another replica holds it or one of the kind is running
#: for the tenant (read again here, under ``_CLAIMING``: ``_TURNS`` was read before it was taken).
_CLAIM = f"""
UPDATE settings_jobs SET state = 'running', started_at = now(), heartbeat_at = now(), done = 0 WHERE job_id = (
    SELECT job_id FROM settings_jobs WHERE tenant_id = :t AND {_WAITING}
    AND NOT EXISTS (
        SELECT 1 FROM settings_jobs r WHERE r.tenant_id = :t AND r.kind = :kind AND r.state = 'running'
        AND greatest(r.heartbeat_at, r.started_at) >= now() - CAST(:stale AS interval)
    )
    ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED
) RETURNING {_COLUMNS}
"""


async def claim_job(engine: AsyncEngine, kind: str, stale_after: timedelta) -> Job | None:
    """Take a queued job of ``kind`` (or one left running by a dead process): the tenants take
    turns, the one whose last job of the kind started longest ago (or never) first, each
    tenant's jobs oldest first. So a tenant queueing many (a script posting re-attributions in a
    loop) delays another tenant's job by one of its own, not by all of them."""
    async with engine.begin() as conn:
        turns = await conn.execute(text(_TURNS), {"kind": kind, "stale": stale_after})
        for tenant_id in list(turns.scalars()):
            if (job := await claim_tenant_job(conn, kind, stale_after, tenant_id)) is not None:
                return job
    return None


async def claim_tenant_job(
    conn: AsyncConnection, kind: str, stale_after: timedelta, tenant_id: str
) -> Job | None:
    """The tenant's oldest waiting job of ``kind``, in the caller's transaction (which should end
    soon after: it holds the tenant's claim lock); None when one of the kind is running for the
    tenant, or another replica is claiming one (never two of one tenant at once, whatever the
    replicas read of ``_TURNS``)."""
    params = {"kind": kind, "stale": stale_after, "t": tenant_id}
    if not (await conn.execute(text(_CLAIMING), params)).scalar_one():
        return None
    row = (await conn.execute(text(_CLAIM), params)).one_or_none()
    return None if row is None else _job(row)


class JobLost(Exception):
    """The job's claim is no longer this run's: another replica claimed it again (this run was
    silent past ``stale_after``), or it was queued again, or finished. The run stops; its updates
    change nothing."""


#: A run's updates match its own claim only (the ``started_at`` its claim set): a worker silent
#: past ``stale_after`` whose job another replica claimed again changes nothing of the new run.
_OWN_RUN = "job_id = :id AND state = 'running' AND started_at = :run"


def _run(job: Job) -> dict[str, Any]:
    return {"id": job.job_id, "run": job.started_at}


async def report_progress(engine: AsyncEngine, job: Job, done: int, total: int | None) -> None:
    """How far the job got; its heartbeat too (a job reporting is not claimed by another replica).
    Raises ``JobLost`` when the claim is no longer this run's: the run stops."""
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        updated = await conn.execute(
            text(
                f"UPDATE settings_jobs SET done = :done, total = :total, heartbeat_at = now() WHERE {_OWN_RUN}"
            ),
            {**_run(job), "done": done, "total": total},
        )
    if updated.rowcount == 0:
        raise JobLost(f"settings job {job.job_id} was claimed again since {job.started_at}")


async def requeue_job(engine: AsyncEngine, job: Job) -> None:
    """Put a running job back in the queue (its worker is stopping): the next claim runs it anew."""
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE settings_jobs SET state = 'queued', done = 0, total = NULL, started_at = NULL, "
                f"heartbeat_at = NULL WHERE {_OWN_RUN}"
            ),
            _run(job),
        )


async def finish_job(
    engine: AsyncEngine, job: Job, *, result: dict[str, Any] | None = None, error: str | None = None
) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE settings_jobs SET state = :state, result = CAST(:result AS jsonb), error = :error, "
                f"finished_at = now(), done = coalesce(total, done) WHERE {_OWN_RUN}"
            ),
            {
                **_run(job),
                "state": "failed" if error is not None else "done",
                "result": None if result is None else orjson.dumps(result).decode(),
                "error": error,
            },
        )


async def save_checkpoint(engine: AsyncEngine, job: Job, checkpoint: dict[str, Any]) -> None:
    """Keep how far a job's committed work got (its own autocommit connection): a retry resumes there."""
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(
            text(f"UPDATE settings_jobs SET checkpoint = CAST(:c AS jsonb) WHERE {_OWN_RUN}"),
            {**_run(job), "c": orjson.dumps(checkpoint).decode()},
        )


async def retry_job(engine: AsyncEngine, job: Job, error: str, delay: timedelta) -> None:
    """Queue a failed job again, claimed no sooner than ``delay`` from now; its checkpoint kept."""
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE settings_jobs SET state = 'queued', attempts = attempts + 1, error = :error, "
                f"run_after = now() + CAST(:delay AS interval) WHERE {_OWN_RUN}"
            ),
            {**_run(job), "error": error, "delay": delay},
        )


JobHandler = Callable[[Job], Awaitable[dict[str, Any]]]


@dataclass
class JobWorker:
    """Runs the jobs of one kind, up to ``concurrency`` at once and never two of one tenant,
    polling every ``interval_seconds`` while a slot is free (a background task of a service). So
    a tenant's job that runs for an hour (a re-attribution of years) holds one slot, and the other
    tenants' jobs run beside it.

    A failing job is marked ``failed`` with its error; it never stops the service. A job running
    when the worker stops (the service shuts down) is queued again (``requeue_job``). With ``retries``
    (a kind the system queues itself, ``rematch``), it is queued again that many times first,
    after ``retry_after`` doubled at each attempt (``retry_job``; the handler resumes from its
    ``checkpoint``).
    """

    engine: AsyncEngine
    kind: str
    handle: JobHandler
    interval_seconds: float = 1.0
    stale_after: timedelta = timedelta(minutes=30)
    retries: int = 0
    retry_after: timedelta = timedelta(seconds=30)
    concurrency: int = 2
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)
    _task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"jobs-{self.kind}")

    async def stop(self) -> None:
        self._stopping.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def run_once(self) -> bool:
        """Claim and run one job; False when none was waiting."""
        job = await claim_job(self.engine, self.kind, self.stale_after)
        if job is None:
            return False
        await self._handle(job)
        return True

    async def _handle(self, job: Job) -> None:
        """Run a claimed job and record how it ended."""
        try:
            result = await self.handle(job)
        except asyncio.CancelledError:
            # Stopping: another replica (or this one, restarted) runs it, not in ``stale_after``.
            try:
                await requeue_job(self.engine, job)
            except Exception:
                log.exception(
                    "could not queue an interrupted settings job again", extra={"job_id": str(job.job_id)}
                )
            raise
        except JobLost:
            log.warning(
                "settings job claimed again by another run; this run stopped",
                extra={"job_id": str(job.job_id), "tenant_id": job.tenant_id},
            )
        except Exception as exc:
            log.exception(
                "settings job failed", extra={"job_id": str(job.job_id), "tenant_id": job.tenant_id}
            )
            error = f"{type(exc).__name__}: {exc}"
            if job.attempts < self.retries:
                await retry_job(self.engine, job, error, self.retry_after * 2**job.attempts)
            else:
                await finish_job(self.engine, job, error=error)
        else:
            await finish_job(self.engine, job, result=result)

    async def _run(self) -> None:
        running: set[asyncio.Task[None]] = set()
        try:
            while not self._stopping.is_set():
                for task in [t for t in running if t.done()]:
                    running.discard(task)
                    if not task.cancelled() and (error := task.exception()) is not None:
                        log.error("settings job ended unrecorded", extra={"kind": self.kind}, exc_info=error)
                claimed = None
                if len(running) < self.concurrency:
                    try:
                        claimed = await claim_job(self.engine, self.kind, self.stale_after)
                    except Exception:
                        log.exception(
                            "could not claim settings jobs; retried later", extra={"kind": self.kind}
                        )
                if claimed is not None:
                    running.add(asyncio.create_task(self._handle(claimed)))
                    continue
                # Until a slot frees, the worker stops, or the next look for a job is due.
                stopping = asyncio.ensure_future(self._stopping.wait())
                try:
                    await asyncio.wait(
                        {stopping, *running},
                        timeout=self.interval_seconds,
                        return_when=asyncio.FIRST_COMPLETED,
                    )
                finally:
                    stopping.cancel()
        finally:
            # Stopping (cancelled): each running job is queued again by its own handling.
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)
