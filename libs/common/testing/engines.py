"""Session-wide embedded engines and cheap per-test isolation.

One PostgreSQL and one broker serve the whole session. Each test gets its own database,
cloned from a migrated template (milliseconds, not a migration run), and its own topic
prefix, so tests never see each other's data.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path

from libs.common.db.migrate import upgrade
from libs.common.embedded import EmbeddedKafka, EmbeddedPostgres
from libs.common.kafka.clients import create_topics
from libs.common.settings import KafkaSettings

TEMPLATE_DB = "spm_template"


@dataclass
class Engines:
    postgres: EmbeddedPostgres
    kafka: EmbeddedKafka

    def kafka_settings(self, prefix: str | None = None, partitions: int = 2) -> KafkaSettings:
        return KafkaSettings(
            bootstrap_servers=self.kafka.bootstrap_servers,
            topic_prefix=prefix if prefix is not None else f"t{uuid.uuid4().hex[:10]}.",
            enable_idempotence=False,
            partitions=partitions,
        )

    def new_database(self) -> str:
        name = f"test_{uuid.uuid4().hex[:12]}"
        self.postgres.psql(f'CREATE DATABASE "{name}" TEMPLATE {TEMPLATE_DB}')
        return name

    def drop_database(self, name: str) -> None:
        self.postgres.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def embedded_engines(base: Path) -> Iterator[Engines]:
    postgres = EmbeddedPostgres(base / "postgres", durable=False)
    kafka = EmbeddedKafka(log_dir=base)
    try:
        postgres.start()
        postgres.ensure_database(TEMPLATE_DB)
        upgrade(postgres.url(TEMPLATE_DB))
        kafka.start()
        yield Engines(postgres, kafka)
    finally:
        kafka.stop()
        postgres.stop(immediate=True)


@asynccontextmanager
async def isolated_topics(engines: Engines, partitions: int = 2) -> AsyncIterator[KafkaSettings]:
    settings = engines.kafka_settings(partitions=partitions)
    await create_topics(settings, partitions)
    yield settings


def run_sync(coro: object) -> None:
    """Run a coroutine from synchronous fixture code."""
    asyncio.run(coro)  # type: ignore[arg-type]
