"""What the in-process CPU harnesses share (``bench.attribution_cpu``, ``bench.metrics_cpu``,
``bench.ingest_cpu``): a producer that builds record batches and sends nothing, the consumer's
per-batch decoding, PostgreSQL's CPU, the timed section (cProfile, callgrind), the embedded
PostgreSQL, the common options and the closing summary.

The callgrind library and command line are described in ``bench.attribution_cpu``'s docstring.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import ctypes
import json
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from bench.common import cpu_seconds
from bench.ingest_throughput import SECRET_KEY
from libs.common.contracts.envelope import Envelope

#: (topic name, key, value, headers) as the ingest app would have produced them.
Raw = tuple[str, bytes, bytes, list[tuple[str, bytes]]]
Decode = Callable[[Sequence[Raw]], list[Any]]


class BuildingProducer:
    """What ``send_in_batches`` asks of the producer (4 partitions, the service's partitioner): a
    real ``BatchBuilder`` per batch, built (as the sender would before sending), acknowledged at once."""

    def __init__(self) -> None:
        from aiokafka.producer.message_accumulator import BatchBuilder

        from libs.common.kafka.partitioning import KeyHashPartitioner

        self._partitioner = KeyHashPartitioner()
        self._partitions = frozenset(range(4))
        self._batch = BatchBuilder
        self.records = 0

    async def partitions_for(self, topic: str) -> set[int]:
        return {0, 1, 2, 3}

    def _partition(self, topic: str, partition: int | None, key: bytes, *args: Any) -> int:
        # As ``AIOKafkaProducer._partition``: the topic's partitions listed from the metadata.
        return self._partitioner(key, list(self._partitions), list(self._partitions))

    def create_batch(self) -> Any:
        return self._batch(1_048_576, 0)

    async def send_batch(self, batch: Any, topic: str, *, partition: int) -> asyncio.Future[None]:
        self.records += batch.record_count()
        batch._build()
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    async def send(self, topic: str, value: bytes, key: bytes, headers: Any) -> asyncio.Future[None]:
        self.records += 1
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


def ingest_app_without_broker(
    url: str, bootstrap: str, publish: Callable[[Any, Sequence[Any]], Awaitable[None]]
) -> Any:
    """The ingest app on the database at ``url`` whose ``KafkaPublisher`` hands its messages to
    ``publish`` (called with the publisher and the messages) and skips its warm-up."""
    from libs.common.kafka.publisher import KafkaPublisher
    from libs.common.settings import DatabaseSettings, KafkaSettings, RuntimeSettings
    from services.ingest.app import create_app
    from services.ingest.settings import IngestSettings

    async def warm_up(self: KafkaPublisher, topics: Sequence[str], timeout_seconds: float = 30.0) -> None:
        return None

    KafkaPublisher.publish = publish  # type: ignore[method-assign,assignment]
    KafkaPublisher.warm_up = warm_up  # type: ignore[method-assign]
    settings = IngestSettings(
        runtime=RuntimeSettings(secret_key=SECRET_KEY),
        kafka=KafkaSettings(bootstrap_servers=bootstrap, enable_idempotence=False),
        database=DatabaseSettings(url=url),
    )
    return create_app(settings)


def backend_cpu(pid: int) -> float:
    """CPU seconds of PostgreSQL's processes (the postmaster and every backend it forked)."""
    proc = psutil.Process(pid)
    return cpu_seconds([p.pid for p in [proc, *proc.children(recursive=True)]])


def decoder(*topics: Any) -> Decode:
    """What ``ConsumerRunner`` does per batch of the given topics' messages: ``Envelope.from_headers``,
    the topic's decoder, ``check_tenant``, the collector paused."""
    from libs.common.collector import collector_paused
    from libs.common.contracts.envelope import check_tenant
    from libs.common.kafka.runner import ConsumedMessage

    by_name = {t.physical(""): t for t in topics}

    def decode(raws: Sequence[Raw]) -> list[ConsumedMessage[Any]]:
        out = []
        with collector_paused():
            for offset, (topic_name, key, value, headers) in enumerate(raws):
                topic = by_name[topic_name]
                envelope = Envelope.from_headers(headers)
                payload = topic.decode_as(envelope.type, value)
                check_tenant(envelope, payload)
                out.append(ConsumedMessage(topic, 0, offset, key, envelope, payload))
        return out

    return decode


async def migrated_database(pg: Any, prefix: str) -> str:
    """A new database on ``pg`` at the newest migration; its name."""
    from libs.common.db.migrate import upgrade

    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    pg.psql(f'CREATE DATABASE "{name}"')
    await asyncio.to_thread(upgrade, pg.url(name))
    return name


@dataclass
class Clock:
    """The timed section's CPU seconds in this process, wall seconds and PostgreSQL's CPU seconds."""

    cpu: float = 0.0
    wall: float = 0.0
    pg_cpu: float = 0.0

    def figures(self, events: int) -> dict[str, float]:
        return {
            "cpu_us": round(self.cpu / events * 1e6, 1),
            "pg_cpu_us": round(self.pg_cpu / events * 1e6, 1),
            "wall_s": round(self.wall, 2),
        }


@contextmanager
def timed(pg: Any, profile: str | None, callgrind: Any) -> Iterator[Clock]:
    """Times the block; with ``profile`` writes its cProfile there, with ``callgrind`` counts its
    instructions alone."""
    clock = Clock()
    profiler = cProfile.Profile() if profile else None
    pg_cpu0 = backend_cpu(pg.process.pid)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    if profiler:
        profiler.enable()
    if callgrind is not None:
        callgrind.cg_start()
    yield clock
    if callgrind is not None:
        callgrind.cg_stop()
    if profiler and profile:
        profiler.disable()
        profiler.dump_stats(profile)
    clock.cpu, clock.wall = time.process_time() - cpu0, time.perf_counter() - wall0
    clock.pg_cpu = backend_cpu(pg.process.pid) - pg_cpu0


async def consume_timed(
    pg: Any,
    raws: Sequence[Raw],
    decode: Decode,
    handle: Callable[[list[Any]], Awaitable[Any]],
    batch: int,
    profile: str | None,
    callgrind: Any,
) -> tuple[int, Clock]:
    """A consumer's rounds: the first 50 messages as warm-up outside the clock (connections,
    caches, the first statements' preparation), then the rest, timed, in batches of ``batch``;
    the number timed and the clock."""
    from libs.common.collector import collector_paused

    await handle(decode(raws[:50]))
    rest = raws[50:]
    with timed(pg, profile, callgrind) as clock:
        for i in range(0, len(rest), batch):
            decoded = decode(rest[i : i + batch])
            with collector_paused():
                await handle(decoded)
    return len(rest), clock


def parser(
    doc: str | None, activities_help: str | None = None, *, batches: bool = False
) -> argparse.ArgumentParser:
    """The options every harness takes: ``--rounds``, ``--activities``, ``--profile``,
    ``--callgrind-lib``; with ``batches``, a consumer's ``--batch``."""
    out = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    out.add_argument("--rounds", type=int, default=3)
    out.add_argument("--activities", type=int, default=5_000, help=activities_help)
    if batches:
        out.add_argument("--batch", type=int, default=1_000)
    out.add_argument(
        "--profile", default=None, help="write cProfile stats of the timed rounds to FILE.<round>"
    )
    out.add_argument(
        "--callgrind-lib",
        default=None,
        help="a shared library exporting cg_start and cg_stop (see bench.attribution_cpu)",
    )
    return out


def round_database(pg: Any, template: str) -> str:
    """A round's database, a copy of ``template``; its name."""
    name = f"r_{uuid.uuid4().hex[:8]}"
    pg.psql(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    return name


def report(results: list[dict[str, Any]], row: dict[str, Any]) -> None:
    """A round's figures, printed as they come and kept for the summary."""
    print(json.dumps(row), flush=True)
    results.append(row)


def callgrind_lib(path: str | None) -> Any:
    return ctypes.CDLL(path) if path else None


def round_profile(profile: str | None, r: int) -> str | None:
    return f"{profile}.{r}" if profile else None


@contextmanager
def embedded_postgres(prefix: str) -> Iterator[Any]:
    """An embedded PostgreSQL in a temporary directory, removed only after a clean run (as
    ``bench.common.engines``)."""
    from libs.common.embedded import EmbeddedPostgres

    base = Path(tempfile.mkdtemp(prefix=prefix))
    pg = EmbeddedPostgres(base / "pg")
    pg.start()
    try:
        yield pg
    finally:
        pg.stop()
    shutil.rmtree(base, ignore_errors=True)


def print_summary(results: Sequence[dict[str, Any]]) -> None:
    print(
        json.dumps(
            {
                "cpu_us_median": statistics.median(r["cpu_us"] for r in results),
                "cpu_us": [r["cpu_us"] for r in results],
                "pg_cpu_us_median": statistics.median(r["pg_cpu_us"] for r in results),
            }
        )
    )
