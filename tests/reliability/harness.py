"""A fault-injection harness: real engines, services as real processes, a load client, a reference.

The stream is designed so that its expected per-rep per-day counters are known without the
services' code: one rep identity per sender, one contact per rep, calls and emails with fixed
outcomes. The harness compares that reference with ``metric_rollups`` (level rep, granularity
day) and the activity counts, after the consumers committed everything they read.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from sqlalchemy import text

from libs.common.db.engine import make_engine
from libs.common.db.migrate import upgrade
from libs.common.embedded import EmbeddedKafka, EmbeddedPostgres, free_port
from libs.common.kafka.clients import create_topics, end_offsets
from libs.common.settings import DatabaseSettings, KafkaSettings
from libs.common.tenancy import create_tenant
from libs.common.topics import ACTIVITY_ATTRIBUTED, ACTIVITY_INGESTED, Topic
from tests.integration.polling import eventually, references_landed

SECRET_KEY = "reliability-secret-key"  # a fixture value, never a real secret
REPS = 25
DAYS = 10
#: Activities per POST: ingest accepts up to 1,000; fewer requests cost less CPU on both sides.
BATCH = 1_000
PARTITIONS = 3
TALK_SECONDS = 120
#: Counters the reference predicts; the services' code is not consulted to compute them.
CHECKED = ("activities", "dials", "connects", "talk_seconds", "emails_sent")
CONSUMERS = ("attribution", "metrics")
#: Activities counted so far (rep, day rollups): the whole stream once the pipeline is done.
COUNTED = "SELECT sum(activities) FROM metric_rollups WHERE level = 'rep' AND granularity = 'day'"
TEMPLATE_DB = "rel_template"


# --- engines ---------------------------------------------------------------------------------


@dataclass
class FaultEngines:
    """A broker and a durable PostgreSQL owned by one test module (they get killed and stopped)."""

    postgres: EmbeddedPostgres
    kafka: EmbeddedKafka
    base: Path
    template_ready: bool = False

    def new_database(self, name: str) -> None:
        """A database cloned from one migrated template: migrations run once per module."""
        if not self.template_ready:
            self.postgres.ensure_database(TEMPLATE_DB)
            upgrade(self.postgres.url(TEMPLATE_DB))
            self.template_ready = True
        self.postgres.psql(f'CREATE DATABASE "{name}" TEMPLATE {TEMPLATE_DB}')

    def pause_broker(self) -> None:
        assert self.kafka.process is not None
        self.kafka.process.send_signal(signal.SIGSTOP)

    def resume_broker(self) -> None:
        assert self.kafka.process is not None
        self.kafka.process.send_signal(signal.SIGCONT)


@contextmanager
def fault_engines(base: Path) -> Iterator[FaultEngines]:
    postgres = EmbeddedPostgres(base / "postgres", durable=True)
    kafka = EmbeddedKafka(log_dir=base)
    try:
        postgres.start()
        kafka.start()
        yield FaultEngines(postgres, kafka, base)
    finally:
        if kafka.process is not None and kafka.process.poll() is None:
            # Memory-only, so nothing to flush; SIGKILL also ends it if a test left it frozen,
            # where a SIGTERM could take the whole stop timeout.
            kafka.process.kill()
        kafka.stop()
        postgres.stop(immediate=True)


# --- the stream and its reference ------------------------------------------------------------


def crm_entities(now: datetime) -> list[dict[str, Any]]:
    """One rep, account, contact and deal per rep index: every activity has exactly one rep."""
    stamp = now.isoformat()
    entities: list[dict[str, Any]] = []
    for r in range(REPS):
        entities += [
            {
                "entity_type": "rep",
                "id": f"rep-{r}",
                "name": f"Rep {r}",
                "emails": [f"rep{r}@seller.example"],
                "phones": [f"+1415555{r:04d}"],
                "updated_at": stamp,
            },
            {
                "entity_type": "account",
                "id": f"acc-{r}",
                "name": f"Buyer {r}",
                "domains": [f"buyer{r}.example"],
                "updated_at": stamp,
            },
            {
                "entity_type": "contact",
                "id": f"con-{r}",
                "emails": [f"c{r}@buyer{r}.example"],
                "phones": [f"+1212555{r:04d}"],
                "account_id": f"acc-{r}",
                "updated_at": stamp,
            },
            {
                "entity_type": "deal",
                "id": f"deal-{r}",
                "name": f"Deal {r}",
                "account_id": f"acc-{r}",
                "owner_rep_id": f"rep-{r}",
                "stage": "proposal",
                "created_at": (now - timedelta(days=90)).isoformat(),
                "updated_at": stamp,
                "contacts": [{"contact_id": f"con-{r}", "role": "champion"}],
            },
        ]
    return entities


@dataclass(frozen=True, slots=True)
class Planned:
    rep: int
    day: date
    kind: str  # "connected", "no_answer" or "email"
    body: dict[str, Any]


def plan_stream(count: int, today: date, run: str) -> list[Planned]:
    """``count`` activities spread over REPS reps and DAYS days; kinds cycle connected/no answer/email."""
    planned = []
    for i in range(count):
        rep = i % REPS
        day = today - timedelta(days=1 + (i // REPS) % DAYS)
        kind = ("connected", "no_answer", "email")[(i // (REPS * DAYS)) % 3]
        at = datetime(day.year, day.month, day.day, 12, tzinfo=UTC) + timedelta(seconds=i % 3600)
        body: dict[str, Any]
        if kind == "email":
            body = {
                "source": "mail",
                "external_id": f"{run}-{i}",
                "kind": "email",
                "direction": "outbound",
                "outcome": "sent",
                "occurred_at": at.isoformat(),
                "participants": [
                    {"email": f"rep{rep}@seller.example", "role": "from"},
                    {"email": f"c{rep}@buyer{rep}.example", "role": "to"},
                ],
            }
        else:
            body = {
                "source": "dialer",
                "external_id": f"{run}-{i}",
                "kind": "call",
                "direction": "outbound",
                "outcome": kind,
                "occurred_at": at.isoformat(),
                "duration_seconds": TALK_SECONDS if kind == "connected" else 0,
                "participants": [
                    {"phone": f"+1415555{rep:04d}", "role": "caller"},
                    {"phone": f"+1212555{rep:04d}", "role": "callee"},
                ],
            }
        planned.append(Planned(rep, day, kind, body))
    return planned


Cells = dict[tuple[str, date], dict[str, int]]
Fault = Callable[[], Coroutine[Any, Any, None]]


def reference(planned: list[Planned]) -> Cells:
    """What every (rep, day) must show, from the plan alone."""
    cells: Cells = defaultdict(lambda: dict.fromkeys(CHECKED, 0))
    for p in planned:
        cell = cells[(f"rep-{p.rep}", p.day)]
        cell["activities"] += 1
        if p.kind == "email":
            cell["emails_sent"] += 1
        else:
            cell["dials"] += 1
        if p.kind == "connected":
            cell["connects"] += 1
            cell["talk_seconds"] += TALK_SECONDS
    return dict(cells)


# --- services as processes -------------------------------------------------------------------


@dataclass
class ServiceProcess:
    name: str
    port: int
    log_path: Path
    env: dict[str, str]
    popen: subprocess.Popen[bytes] | None = None
    exit_codes: list[int] = field(default_factory=list)

    def start(self) -> None:
        env = {**self.env, f"{self.name.upper()}_PORT": str(self.port)}
        with self.log_path.open("ab") as log:
            self.popen = subprocess.Popen(
                [sys.executable, "-m", "spm.cli", "run", self.name],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def signal(self, sig: int) -> None:
        assert self.popen is not None
        self.popen.send_signal(sig)

    def reap(self, timeout: float) -> int:
        """Wait for the exit and record its code."""
        assert self.popen is not None
        code = self.popen.wait(timeout)
        self.exit_codes.append(code)
        self.popen = None
        return code

    async def wait_ready(self, deadline_s: float = 60) -> None:
        deadline = time.monotonic() + deadline_s
        async with httpx.AsyncClient(timeout=2) as client:
            while time.monotonic() < deadline:
                if self.popen is None or self.popen.poll() is not None:
                    tail = self.log_text()[-3000:]
                    if "address already in use" in tail.lower() and self.popen is not None:
                        # free_port() raced with another process for the port: take another
                        # (not an exit of the service under test, so its code is not recorded).
                        self.popen.wait(1)
                        self.popen = None
                        self.port = free_port()
                        self.start()
                        continue
                    raise AssertionError(f"{self.name} exited during start-up ({self.log_path}):\n{tail}")
                try:
                    if (await client.get(f"http://127.0.0.1:{self.port}/readyz")).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.2)
        raise AssertionError(f"{self.name} not ready within {deadline_s}s; see {self.log_path}")

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@dataclass
class FaultRecord:
    fault: str
    sent: int
    accepted: int
    counted: int
    lost: int
    duplicated: int
    posts: int
    refused: int
    server_errors: int
    #: From the first post until the rollups and committed offsets were final (not asserted).
    seconds: float


#: Filled by every fault test and printed as a table at the end of the run.
SUMMARY: list[FaultRecord] = []


def summary_table(records: list[FaultRecord]) -> str:
    header = (
        "fault",
        "sent",
        "accepted",
        "counted",
        "lost",
        "duplicated",
        "posts",
        "503s",
        "other 5xx",
        "seconds",
    )
    rows = [header] + [
        tuple(
            str(v)
            for v in (
                r.fault,
                r.sent,
                r.accepted,
                r.counted,
                r.lost,
                r.duplicated,
                r.posts,
                r.refused,
                r.server_errors,
                f"{r.seconds:.0f}",
            )
        )
        for r in records
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [" | ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)) for row in rows]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


#: A 503 slower than this is slow: three times ingest's acknowledgement timeout (1.5 s), so a
#: loaded machine's parsing and scheduling fit; a request held by the broker's hang instead of
#: the timeout takes the client's 10 s (or aiokafka's 40 s).
SLOW_REFUSAL_SECONDS = 4.5


@dataclass
class LoadStats:
    sent: int = 0
    accepted: int = 0
    posts: int = 0
    refused: int = 0
    connection_errors: int = 0
    #: 503s answered after ``SLOW_REFUSAL_SECONDS``.
    slow_refusals: int = 0
    server_errors: Counter[int] = field(default_factory=Counter)
    #: The first few bodies of those other 5xx, for the failure message.
    server_error_bodies: list[str] = field(default_factory=list)
    retry_after: set[str] = field(default_factory=set)


@dataclass
class Stream:
    """A planned stream of activities, its reference totals, and what the load client saw."""

    planned: list[Planned]
    expected: Cells
    stats: LoadStats = field(default_factory=LoadStats)

    @property
    def size(self) -> int:
        return len(self.planned)


class Pipeline:
    """One run: a fresh database and topic prefix, the four services, a tenant, a stream."""

    def __init__(self, engines: FaultEngines, name: str, extra_env: dict[str, str] | None = None) -> None:
        self.engines = engines
        self.name = name
        self.run_id = uuid.uuid4().hex[:8]
        self.database = f"rel_{self.run_id}"
        self.prefix = f"r{self.run_id}."
        self.workdir = engines.base / f"run-{name}-{self.run_id}"
        self.workdir.mkdir(parents=True)
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "DATABASE_", "CONSUMER_"))},
            "KAFKA_BOOTSTRAP_SERVERS": engines.kafka.bootstrap_servers,
            "KAFKA_ENABLE_IDEMPOTENCE": "false",
            "KAFKA_TOPIC_PREFIX": self.prefix,
            "KAFKA_PARTITIONS": str(PARTITIONS),
            "DATABASE_URL": engines.postgres.url(self.database),
            "SPM_SECRET_KEY": SECRET_KEY,
            "SPM_HOST": "127.0.0.1",
            "SPM_LOG_JSON": "true",
            "ATTRIBUTION_GROUP_ID": f"attribution-{self.run_id}",
            "METRICS_GROUP_ID": f"metrics-{self.run_id}",
            "CONSUMER_SESSION_TIMEOUT_MS": "10000",
            "CONSUMER_COMMIT_INTERVAL_MS": "500",
            "PYTHONUNBUFFERED": "1",
            **(extra_env or {}),
        }
        self.services: dict[str, list[ServiceProcess]] = {}
        self.ingest_key = ""
        self.orchestrator_restarts: Counter[str] = Counter()
        self.stream_started = 0.0

    @property
    def kafka(self) -> KafkaSettings:
        return KafkaSettings(
            bootstrap_servers=self.engines.kafka.bootstrap_servers,
            topic_prefix=self.prefix,
            enable_idempotence=False,
            partitions=PARTITIONS,
        )

    @property
    def db(self) -> DatabaseSettings:
        return DatabaseSettings(url=self.engines.postgres.url(self.database), pool_size=2)

    async def prepare(self) -> None:
        await asyncio.to_thread(self.engines.new_database, self.database)
        await create_topics(self.kafka, PARTITIONS)
        engine = make_engine(self.db, "reliability")
        try:
            async with engine.begin() as conn:
                tenant = await create_tenant(conn, "acme", SECRET_KEY)
        finally:
            await engine.dispose()
        self.ingest_key = dict(tenant["api_keys"])["ingest"]  # type: ignore[call-overload]

    def add(self, name: str) -> ServiceProcess:
        instances = self.services.setdefault(name, [])
        process = ServiceProcess(name, free_port(), self.workdir / f"{name}-{len(instances)}.log", self.env)
        instances.append(process)
        process.start()
        return process

    def error_lines(self, name: str, limit: int = 20) -> list[str]:
        """Error-level log lines and tracebacks of every instance of ``name``, for failure messages."""
        lines = [
            line
            for process in self.services.get(name, [])
            for line in process.log_text().splitlines()
            if '"level":"error"' in line or '"level":"critical"' in line or "Traceback" in line
        ]
        return [line[:2000] for line in lines[:limit]]

    def assert_no_server_errors(self, stats: LoadStats) -> None:
        """Every refusal was a 503: another 5xx means a failure was not mapped to its contract."""
        assert stats.server_errors == {}, (
            f"ingest answered {dict(stats.server_errors)}: {stats.server_error_bodies} "
            f"{self.error_lines('ingest')}"
        )

    def one(self, name: str) -> ServiceProcess:
        return self.services[name][0]

    async def start_all(self) -> None:
        for name in ("ingest", "attribution", "metrics"):
            self.add(name)
        for name in ("ingest", "attribution", "metrics"):
            await self.one(name).wait_ready()

    async def restart(self, process: ServiceProcess) -> None:
        process.start()
        await process.wait_ready()

    async def kill9(self, name: str) -> None:
        process = self.one(name)
        process.signal(signal.SIGKILL)
        assert await asyncio.to_thread(process.reap, 10) == -signal.SIGKILL
        await self.restart(process)

    async def orchestrate(self, stop: asyncio.Event) -> None:
        """Restart consumers that exited on their own (retry deadline), as Kubernetes would."""
        while not stop.is_set():
            for name in CONSUMERS:
                for process in self.services.get(name, []):
                    if process.popen is not None and process.popen.poll() is not None:
                        process.reap(1)
                        self.orchestrator_restarts[name] += 1
                        process.start()
            await asyncio.sleep(0.5)

    def stop_all(self, timeout: float = 40) -> dict[str, list[int]]:
        """SIGTERM everything still running; returns every exit code seen per service."""
        for instances in self.services.values():
            for process in instances:
                if process.running:
                    process.signal(signal.SIGTERM)
        for instances in self.services.values():
            for process in instances:
                if process.popen is not None:
                    try:
                        process.reap(timeout)
                    except subprocess.TimeoutExpired:
                        process.popen.kill()
                        process.reap(5)
                        process.exit_codes.append(-999)
        return {name: [c for p in ps for c in p.exit_codes] for name, ps in self.services.items()}

    async def sync_crm(self, now: datetime) -> None:
        """The CRM entities, once attribution holds every one (reps, accounts, deals too)."""
        entities = crm_entities(now)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{self.one('ingest').port}", timeout=30) as c:
            response = await c.post(
                "/v1/crm/sync",
                json={"source": "crm", "entities": entities},
                headers={"Authorization": f"Bearer {self.ingest_key}"},
            )
            assert response.status_code == 202, response.text
        engine = make_engine(self.db, "reliability")
        try:
            await references_landed(engine, "acme", entities)
        finally:
            await engine.dispose()

    async def scalar(self, sql: str) -> int:
        engine = make_engine(self.db, "reliability")
        try:
            async with engine.connect() as conn:
                return int((await conn.execute(text(sql))).scalar_one() or 0)
        finally:
            await engine.dispose()

    async def wait_for(self, sql: str, expected: int, deadline_s: float) -> int:
        deadline = time.monotonic() + deadline_s
        value = -1
        while time.monotonic() < deadline:
            try:
                value = await self.scalar(sql)
            except Exception:  # PostgreSQL may be down on purpose: keep polling
                value = -1
            if value >= expected:
                return value
            await asyncio.sleep(0.5)
        return value

    async def send(
        self,
        planned: list[Planned],
        stats: LoadStats,
        milestones: dict[float, Fault] | None = None,
        deadline_s: float = 400,
        batch_size: int = BATCH,
    ) -> None:
        """Post the stream in batches; resend whatever did not get a 2xx; run faults at milestones."""
        pending = dict(sorted((milestones or {}).items()))
        stats.sent = len(planned)
        tasks: list[asyncio.Task[None]] = []
        self.stream_started = time.monotonic()
        deadline = self.stream_started + deadline_s
        headers = {"Authorization": f"Bearer {self.ingest_key}", "Content-Type": "application/json"}
        async with httpx.AsyncClient(timeout=httpx.Timeout(10, connect=2)) as client:
            for start in range(0, len(planned), batch_size):
                while pending and start >= next(iter(pending)) * len(planned):
                    _, fault = _pop_first(pending)
                    tasks.append(asyncio.create_task(fault()))
                batch = [p.body for p in planned[start : start + batch_size]]
                # Encoded once, resent as is: the client's CPU is the services' CPU on 2 cores.
                content = orjson.dumps({"activities": batch})
                while True:
                    if time.monotonic() > deadline:
                        raise AssertionError(f"stream not accepted within {deadline_s}s: {stats}")
                    url = f"http://127.0.0.1:{self.one('ingest').port}/v1/events"
                    stats.posts += 1
                    began = time.monotonic()
                    try:
                        response = await client.post(url, content=content, headers=headers)
                    except httpx.HTTPError:
                        stats.connection_errors += 1
                        await asyncio.sleep(0.2)
                        continue
                    if response.status_code == 202:
                        assert response.json()["accepted"] == len(batch)
                        stats.accepted += len(batch)
                        break
                    assert response.status_code >= 500, response.text
                    if response.status_code != 503:
                        # Resent like any failure, and reported: the contract is 503 + Retry-After.
                        stats.server_errors[response.status_code] += 1
                        if len(stats.server_error_bodies) < 3:
                            stats.server_error_bodies.append(response.text[:500])
                        await asyncio.sleep(0.3)
                        continue
                    stats.refused += 1
                    if time.monotonic() - began > SLOW_REFUSAL_SECONDS:
                        stats.slow_refusals += 1
                    stats.retry_after.add(response.headers.get("retry-after", ""))
                    await asyncio.sleep(0.3)
            for task in tasks:
                await task

    async def committed_lag(self) -> dict[str, int]:
        """Per consumer group: end offsets minus committed offsets over the topics it reads."""
        groups = {
            "attribution": (f"attribution-{self.run_id}", ACTIVITY_INGESTED),
            "metrics": (f"metrics-{self.run_id}", ACTIVITY_ATTRIBUTED),
        }
        return {name: await _group_lag(self.kafka, group, topic) for name, (group, topic) in groups.items()}

    async def settle(self, expected: int, deadline_s: float = 300) -> None:
        """Wait until the rollups hold every activity and both groups committed everything."""
        await self.wait_for(COUNTED, expected, deadline_s)
        await eventually(
            self.committed_lag, lambda lag: not any(lag.values()), 60, "consumers committing to the end (lag)"
        )

    async def rollups(self) -> Cells:
        engine = make_engine(self.db, "reliability")
        try:
            async with engine.connect() as conn:
                rows = (
                    await conn.execute(
                        text(
                            f"SELECT entity_id, period_start, {', '.join(CHECKED)} FROM metric_rollups "
                            "WHERE tenant_id = 'acme' AND level = 'rep' AND granularity = 'day'"
                        )
                    )
                ).all()
        finally:
            await engine.dispose()
        return {(r[0], r[1]): {c: int(r[2 + i]) for i, c in enumerate(CHECKED)} for r in rows}

    async def record(self, fault: str, stats: LoadStats, expected: Cells) -> FaultRecord:
        actual = await self.rollups()
        lost = dup = 0
        for cell in set(expected) | set(actual):
            want = expected.get(cell, {}).get("activities", 0)
            got = actual.get(cell, {}).get("activities", 0)
            lost += max(0, want - got)
            dup += max(0, got - want)
        counted = sum(c["activities"] for c in actual.values())
        record = FaultRecord(
            fault,
            stats.sent,
            stats.accepted,
            counted,
            lost,
            dup,
            stats.posts,
            stats.refused,
            sum(stats.server_errors.values()),
            time.monotonic() - self.stream_started,
        )
        SUMMARY.append(record)
        return record

    async def begin_stream(self, count: int) -> Stream:
        """The three services started, the CRM synced, and ``count`` activities planned."""
        await self.start_all()
        now = datetime.now(UTC)
        await self.sync_crm(now)
        planned = plan_stream(count, now.date(), self.run_id)
        return Stream(planned, reference(planned))

    async def assert_stream_exact(self, fault: str, stream: Stream) -> FaultRecord:
        """The fault's row in the summary, then exact totals: everything accepted, counted once."""
        record = await self.record(fault, stream.stats, stream.expected)
        await self.assert_exact(stream.expected, stream.size)
        assert (record.accepted, record.counted, record.lost, record.duplicated) == (
            stream.size,
            stream.size,
            0,
            0,
        )
        return record

    async def assert_exact(self, expected: Cells, count: int) -> None:
        assert await self.rollups() == expected
        assert await self.scalar("SELECT count(*) FROM activities WHERE tenant_id = 'acme'") == count
        assert (
            await self.scalar("SELECT count(*) FROM metric_contributions WHERE tenant_id = 'acme'") == count
        )


def _pop_first(
    pending: dict[float, Fault],
) -> tuple[float, Fault]:
    key = next(iter(pending))
    return key, pending.pop(key)


async def _group_lag(kafka: KafkaSettings, group: str, topic: Topic) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap_servers)
    await admin.start()
    try:
        name = topic.physical(kafka.topic_prefix)
        partitions = [TopicPartition(name, p) for p in range(PARTITIONS)]
        ends = await end_offsets(kafka, partitions)
        committed = await admin.list_consumer_group_offsets(group, partitions=partitions)
        lag = 0
        for tp in partitions:
            meta = committed.get(tp)
            position = meta.offset if meta is not None and meta.offset >= 0 else 0
            lag += max(0, ends[tp] - position)
        return lag
    finally:
        await admin.close()
