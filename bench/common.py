"""Benchmark plumbing: an isolated stack of real processes, resource sampling, medians.

Every figure is measured next to its baseline in the same run, alternating the two, because
timings on shared 2-core machines drift; results quote medians and ratios.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

from libs.common.db.migrate import upgrade
from libs.common.embedded import (
    EMBEDDED_SESSION_TIMEOUT_MS,
    EmbeddedKafka,
    EmbeddedPostgres,
    _die_with_parent,
    free_port,
)
from libs.common.kafka.clients import create_topics
from libs.common.settings import KafkaSettings


@dataclass
class Engines:
    kafka: EmbeddedKafka
    postgres: EmbeddedPostgres
    base: Path

    def pids(self) -> list[int]:
        return [pid for group in self.pid_groups().values() for pid in group]

    def pid_groups(self) -> dict[str, list[int]]:
        """The broker's and PostgreSQL's processes (PostgreSQL forks one per connection)."""
        groups: dict[str, list[int]] = {}
        for name, proc in (("broker", self.kafka.process), ("postgres", self.postgres.process)):
            if proc is not None:
                pids = [proc.pid]
                pids += [c.pid for c in psutil.Process(proc.pid).children(recursive=True)]
                groups[name] = pids
        return groups


@contextmanager
def engines(partitions: int = 4) -> Iterator[Engines]:
    base = Path(tempfile.mkdtemp(prefix="spm-bench-"))
    kafka = EmbeddedKafka(log_dir=base)
    postgres = EmbeddedPostgres(base / "pg")
    try:
        postgres.start()
        if os.environ.get("BENCH_PG_STATEMENTS"):
            # bench.pg_backends.statements: pg_stat_statements, its nested statements too.
            postgres.psql("ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'")
            postgres.psql("ALTER SYSTEM SET pg_stat_statements.track = 'all'")
            postgres.stop()
            postgres.start()
        postgres.ensure_database("spm")
        upgrade(postgres.url())
        kafka.start()
        settings = KafkaSettings(bootstrap_servers=kafka.bootstrap_servers, enable_idempotence=False)
        asyncio.run(create_topics(settings, partitions))
        yield Engines(kafka, postgres, base)
    finally:
        kafka.stop()
        postgres.stop()
    # Only after a clean run: a failed one keeps its service logs (and data) for a look.
    shutil.rmtree(base, ignore_errors=True)


async def post_retrying(
    client: httpx.AsyncClient,
    path: str,
    content: bytes,
    headers: Callable[[], dict[str, str]],
    tries: int = 200,
    shown: int = 800,
) -> dict[str, Any]:
    """POSTs ``content`` until the answer is neither 429 nor 503 (half a second apart, ``tries`` times
    at most; ``headers`` made afresh for each try), and returns the answer's JSON; any other 4xx or 5xx
    raises with the first ``shown`` characters of its body."""
    for _ in range(tries):
        r = await client.post(path, content=content, headers=headers())
        if r.status_code in (429, 503):
            await asyncio.sleep(0.5)
            continue
        if r.status_code >= 400:
            raise RuntimeError(f"{path}: {r.status_code} {r.text[:shown]}")
        return dict(r.json())
    raise RuntimeError(f"{path} kept answering 429/503")


def service_env(eng: Engines, database: str = "spm", prefix: str = "") -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "KAFKA_BOOTSTRAP_SERVERS": eng.kafka.bootstrap_servers,
            "KAFKA_ENABLE_IDEMPOTENCE": "false",
            "KAFKA_TOPIC_PREFIX": prefix,
            "DATABASE_URL": eng.postgres.url(database),
            "SPM_LOG_LEVEL": "WARNING",
            "SPM_SECRET_KEY": "bench-secret",
            "CONSUMER_SESSION_TIMEOUT_MS": str(EMBEDDED_SESSION_TIMEOUT_MS),
        }
    )
    return env


@dataclass
class ServiceProcess:
    name: str
    process: subprocess.Popen[bytes]
    port: int


def start_service(name: str, env: dict[str, str], log_dir: Path, group: str | None = None) -> ServiceProcess:
    """``spm run <name>`` on a free port, once its ``/readyz`` answers 200.

    Consumers join ``group``, by default one per topic prefix: a run on fresh topics must not
    share a consumer group with the (stopped) consumers of an earlier run on the same broker,
    whose departed members would otherwise hold the group in a rebalance.
    """
    env = dict(env)
    prefix = env.get("KAFKA_TOPIC_PREFIX", "")
    group = group or (f"{prefix}{name}" if prefix else None)
    if group:
        env[f"{name.upper()}_GROUP_ID"] = group
    return start_process(name, ["-m", "spm.cli", "run", name], env, log_dir)


def start_process(name: str, args: list[str], env: dict[str, str], log_dir: Path) -> ServiceProcess:
    """``python <args>`` serving on a free port given as ``<NAME>_PORT``, once ``/readyz`` answers 200."""
    port = free_port()
    env = dict(env)
    env[f"{name.upper()}_PORT"] = str(port)
    log = (log_dir / f"{name}-{port}.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, *args],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        preexec_fn=lambda: _die_with_parent(signal.SIGTERM),
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return ServiceProcess(name, process, port)
        except httpx.HTTPError:
            pass
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}")
        time.sleep(0.2)
    raise TimeoutError(f"{name} not ready")


def stop_services(services: Sequence[ServiceProcess]) -> None:
    for s in services:
        if s.process.poll() is None:
            s.process.send_signal(signal.SIGTERM)
    for s in services:
        try:
            s.process.wait(30)
        except subprocess.TimeoutExpired:
            s.process.kill()


def cpu_by_pid(pids: Sequence[int]) -> dict[int, float]:
    """User + system CPU seconds of each live process."""
    out: dict[int, float] = {}
    for pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
            out[pid] = times.user + times.system
        except psutil.NoSuchProcess:
            continue
    return out


def cpu_seconds(pids: Sequence[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            continue
    return total


@dataclass
class RssSampler:
    """Peak resident memory per named process, sampled in a background thread."""

    pids: dict[str, int]
    interval: float = 0.25
    peaks: dict[str, int] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> RssSampler:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            for name, pid in self.pids.items():
                try:
                    rss = psutil.Process(pid).memory_info().rss
                except psutil.NoSuchProcess:
                    continue
                self.peaks[name] = max(self.peaks.get(name, 0), rss)
            self._stop.wait(self.interval)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]
