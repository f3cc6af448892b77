"""PostgreSQL's CPU over a window, by backend: which of its processes spent it.

A sampler started around the pipeline bench's timed window (``postgres_by_backend`` in its
result) reads every quarter second each process the postmaster forked, its CPU time (psutil) and
its process title, and, for a client backend it has not named yet, its ``application_name``
(``pg_stat_activity``: each service names its connections after itself, the bench's poller
``bench-poller``, this sampler ``bench-sampler``). Roles:

* ``client:<application_name>`` for client backends (``client:?`` for one gone before it was
  named);
* the auxiliary processes by their title: ``checkpointer``, ``background writer``,
  ``walwriter``, ``autovacuum launcher``, ``autovacuum worker`` (every database's), ...;
* ``postmaster`` itself;
* ``exited, unsampled``: what processes that ended during the window spent after their last
  sample, or before any (a poll's connection lives a few milliseconds), read from the CPU
  the postmaster collected of its ended children (``cpu_times().children_*``).

A process alive at the start counts from its CPU then; one started during the window from zero.
With ``BENCH_PG_STATEMENTS=1`` in the environment, ``bench.common.engines`` loads
``pg_stat_statements`` (nested statements tracked: the index expression's SQL function shows
as its own statement) and the pipeline bench adds ``postgres_statements``: the statements of the
window by execution time: us, calls and shared buffers read (hit or not) per event (the
timings for ranking only; buffers are counts, which the machine's load does not move).

Unlike the pipeline's ``postgres`` figure (its processes alive at the end), this counts the
processes that ended during the window too: autovacuum workers, the poller's connections.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import psutil

#: Seconds between samples.
INTERVAL = 0.25
_TITLE = "postgres: "


@dataclass
class Seen:
    role: str
    start: float  # CPU seconds at the window's start (0 for a process started during it)
    last: float  # CPU seconds at its last sample


def _cpu(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return float(times.user + times.system)


def role_of(title: str) -> str | None:
    """The role a process title names, or None for a client backend (named by its application).

    ``postgres: checkpointer`` -> ``checkpointer``; ``postgres: autovacuum worker bench_1`` ->
    ``autovacuum worker``; ``postgres: postgres bench_1 127.0.0.1(5432) idle`` -> None.
    """
    if not title.startswith(_TITLE):
        return "postmaster"
    rest = title[len(_TITLE) :]
    if rest.startswith("autovacuum worker"):
        return "autovacuum worker"
    if "(" in rest or "[local]" in rest:
        return None
    return rest.strip()


@dataclass
class BackendSampler:
    """Samples PostgreSQL's processes from ``start`` to ``stop`` (both awaited)."""

    postmaster: int
    dsn: str
    seen: dict[int, Seen] = field(default_factory=dict)
    _names: dict[int, str] = field(default_factory=dict)
    _reaped0: float = 0.0
    _own0: float = 0.0
    _conn: Any = None
    _task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._conn = await asyncpg.connect(self.dsn, server_settings={"application_name": "bench-sampler"})
        parent = psutil.Process(self.postmaster)
        times = parent.cpu_times()
        self._reaped0 = times.children_user + times.children_system
        self._own0 = times.user + times.system
        await self._sample(first=True)
        self._task = asyncio.create_task(self._loop())

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(INTERVAL)
            await self._sample(first=False)

    async def _sample(self, first: bool) -> None:
        unnamed = []
        for proc in psutil.Process(self.postmaster).children():
            try:
                cpu = _cpu(proc)
                held = self.seen.get(proc.pid)
                if held is None:
                    title = " ".join(proc.cmdline())
                    role = role_of(title)
                    if role is None:
                        role = self._names.get(proc.pid, "")
                        if not role:
                            unnamed.append(proc.pid)
                    held = self.seen[proc.pid] = Seen(role, cpu if first else 0.0, cpu)
                held.last = cpu
            except psutil.NoSuchProcess:
                continue
        if unnamed:
            rows = await self._conn.fetch("SELECT pid, application_name FROM pg_stat_activity")
            names = {r["pid"]: r["application_name"] or "?" for r in rows}
            for pid in unnamed:
                self.seen[pid].role = f"client:{names.get(pid, '?')}"

    async def stop(self) -> dict[str, float]:
        """CPU seconds of the window by role."""
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        await self._sample(first=False)
        alive = {p.pid for p in psutil.Process(self.postmaster).children()}
        parent = psutil.Process(self.postmaster).cpu_times()
        by_role = window_by_role(
            self.seen,
            alive,
            reaped=parent.children_user + parent.children_system - self._reaped0,
            postmaster=parent.user + parent.system - self._own0,
        )
        await self._conn.close()
        return by_role


def window_by_role(
    seen: dict[int, Seen], alive: set[int], reaped: float, postmaster: float
) -> dict[str, float]:
    """CPU seconds by role: each process sampled, from its start value to its last sample; what
    the postmaster reaped of its ended children (``reaped``, over the window) beyond their last
    samples as ``exited, unsampled``; the postmaster's own."""
    by_role: dict[str, float] = {"postmaster": postmaster}
    ended_seen = 0.0
    for pid, held in seen.items():
        by_role[held.role] = by_role.get(held.role, 0.0) + held.last - held.start
        if pid not in alive:
            ended_seen += held.last
    by_role["exited, unsampled"] = max(0.0, reaped - ended_seen)
    return by_role


def per_event(by_role: dict[str, float], events: int) -> dict[str, float]:
    """Microseconds per event by role, largest first, the roles under 0.05 us left out."""
    out = {role: round(seconds / events * 1e6, 1) for role, seconds in by_role.items()}
    return dict(sorted(((r, v) for r, v in out.items() if v >= 0.05), key=lambda rv: -rv[1]))


_STATEMENTS = """
SELECT left(regexp_replace(query, '\\s+', ' ', 'g'), 90) AS query, sum(calls) AS calls,
       sum(total_exec_time) AS ms, sum(shared_blks_hit + shared_blks_read) AS buffers
FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
GROUP BY 1 ORDER BY 3 DESC LIMIT 25
"""


async def statements_reset(dsn: str) -> bool:
    """Resets ``pg_stat_statements`` if loaded (``BENCH_PG_STATEMENTS``); False if not."""
    conn = await asyncpg.connect(dsn)
    try:
        loaded = await conn.fetchval(
            "SELECT count(*) FROM pg_settings WHERE name = 'shared_preload_libraries' "
            "AND setting LIKE '%pg_stat_statements%'"
        )
        if not loaded:
            return False
        await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        await conn.execute("SELECT pg_stat_statements_reset()")
        return True
    finally:
        await conn.close()


async def statements(dsn: str, events: int) -> list[tuple[str, float, float, float]]:
    """The window's 25 costliest statements: text, us of execution, calls and buffers per event."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(_STATEMENTS)
    finally:
        await conn.close()
    return [
        (
            r["query"],
            round(float(r["ms"]) * 1000 / events, 2),
            round(float(r["calls"]) / events, 4),
            round(float(r["buffers"]) / events, 2),
        )
        for r in rows
    ]
