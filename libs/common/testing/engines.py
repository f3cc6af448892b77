"""Session-wide embedded engines and cheap per-test isolation.

One PostgreSQL and one broker serve the whole session. Each test gets its own database,
cloned from a migrated template (not a migration run), and its own topic prefix, so tests
never see each other's data. A clone still costs PostgreSQL a few hundred milliseconds (and a
second on a loaded machine), so a thread keeps a couple cloned ahead and drops the used ones
while the tests run: a test takes a ready database and never waits for ``CREATE DATABASE``.
"""

from __future__ import annotations

import asyncio
import itertools
import queue
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.db.engine import make_engine
from libs.common.db.migrate import upgrade
from libs.common.embedded import EmbeddedKafka, EmbeddedPostgres
from libs.common.kafka.clients import connection_options, create_topics
from libs.common.settings import DatabaseSettings, KafkaSettings

TEMPLATE_DB = "spm_template"
#: Databases cloned ahead of the tests that will take them: a run of short tests takes several
#: in a row.
READY_DATABASES = 3
#: The pool thread's jobs, in the order it serves them: clones before drops (a test may be
#: waiting for a clone, never for a drop), and the stop once both are done.
_CLONE, _DROP, _STOP = 0, 1, 2


#: How many times the pool starts psql for one statement when the process cannot be started.
SPAWN_ATTEMPTS = 3


class DatabasePool:
    """Clones of the template made ahead, and used databases dropped, on one thread.

    Every clone is made from the template as it was migrated at the start (nothing writes to
    it afterwards), so a database cloned ahead is the same as one cloned on demand.
    """

    def __init__(self, postgres: EmbeddedPostgres, ready: int = READY_DATABASES) -> None:
        self._postgres = postgres
        self._ready: queue.Queue[str] = queue.Queue()
        #: (kind, sequence, database to drop): clones first, each kind in the order asked.
        self._work: queue.PriorityQueue[tuple[int, int, str]] = queue.PriorityQueue()
        self._sequence = itertools.count()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._serve, name="spm-test-databases", daemon=True)
        for _ in range(ready):
            self._ask(_CLONE)
        self._thread.start()

    def _ask(self, kind: int, name: str = "") -> None:
        self._work.put((kind, next(self._sequence), name))

    def _serve(self) -> None:
        while (job := self._work.get())[0] != _STOP:
            try:
                if job[0] == _DROP:
                    self._psql(f'DROP DATABASE IF EXISTS "{job[2]}" WITH (FORCE)')
                else:
                    name = f"test_{uuid.uuid4().hex[:12]}"
                    self._psql(f'CREATE DATABASE "{name}" TEMPLATE {TEMPLATE_DB}')
                    self._ready.put(name)
            except BaseException as exc:  # handed to the test that asks next
                self._error = exc
                return

    def _psql(self, sql: str) -> None:
        """``sql`` through psql; a psql that could not be started (the kernel refusing a process
        once: ``OSError``, seen as ``EFAULT`` from ``vfork`` on a loaded machine) is started again,
        up to ``SPAWN_ATTEMPTS`` times, since one refusal would fail every test after it. A
        statement that fails is not retried."""
        for attempt in range(1, SPAWN_ATTEMPTS + 1):
            try:
                self._postgres.psql(sql)
                return
            except OSError:
                if attempt == SPAWN_ATTEMPTS:
                    raise
                time.sleep(0.2 * attempt)

    def take(self, timeout: float = 120) -> str:
        """A fresh clone of the template; another is started in its place."""
        self._ask(_CLONE)
        deadline = time.monotonic() + timeout
        while True:
            self._raise_failure()
            try:
                return self._ready.get(timeout=0.2)
            except queue.Empty:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"no test database cloned within {timeout}s") from None

    def drop(self, name: str) -> None:
        self._ask(_DROP, name)

    def close(self) -> None:
        """Finish the drops asked for (the clones left over go with the server); fail if one failed."""
        self._ask(_STOP)
        self._thread.join(60)
        self._raise_failure()

    def _raise_failure(self) -> None:
        if self._error is not None:
            raise RuntimeError("creating or dropping a test database failed") from self._error


@dataclass
class Engines:
    postgres: EmbeddedPostgres
    kafka: EmbeddedKafka
    databases: DatabasePool | None = field(default=None, repr=False)

    def kafka_settings(self, prefix: str | None = None, partitions: int = 2) -> KafkaSettings:
        return KafkaSettings(
            bootstrap_servers=self.kafka.bootstrap_servers,
            topic_prefix=prefix if prefix is not None else f"t{uuid.uuid4().hex[:10]}.",
            enable_idempotence=False,
            partitions=partitions,
        )

    def new_database(self) -> str:
        if self.databases is not None:
            return self.databases.take()
        name = f"test_{uuid.uuid4().hex[:12]}"
        self.postgres.psql(f'CREATE DATABASE "{name}" TEMPLATE {TEMPLATE_DB}')
        return name

    def drop_database(self, name: str) -> None:
        """Drop ``name`` (on the pool's thread when there is one: nobody uses it afterwards)."""
        if self.databases is not None:
            self.databases.drop(name)
            return
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
        databases = DatabasePool(postgres)
        try:
            yield Engines(postgres, kafka, databases)
        finally:
            databases.close()
    finally:
        kafka.stop()
        postgres.stop(immediate=True)


@asynccontextmanager
async def isolated_topics(engines: Engines, partitions: int = 2) -> AsyncIterator[KafkaSettings]:
    """Every registry topic under a new prefix, all deleted again on exit (``drop_topics``)."""
    settings = engines.kafka_settings(partitions=partitions)
    await create_topics(settings, partitions)
    try:
        yield settings
    finally:
        await drop_topics(settings)


@asynccontextmanager
async def isolated_database(
    engines: Engines, pool_size: int = 5
) -> AsyncIterator[tuple[DatabaseSettings, AsyncEngine]]:
    """A migrated database of its own and an engine on it (a module's world, say), both gone on exit."""
    name = engines.new_database()
    database = DatabaseSettings(url=engines.postgres.url(name), pool_size=pool_size)
    engine = make_engine(database, "tests")
    try:
        yield database, engine
    finally:
        await engine.dispose()
        engines.drop_database(name)


async def drop_topics(settings: KafkaSettings) -> None:
    """Delete every topic under ``settings.topic_prefix``.

    The session's broker would otherwise keep every test's topics to the end, and every client
    start (each producer, consumer and admin client) reads the metadata of every topic there
    is: measured on the embedded broker, a producer's start took 0.13 s with 100 tests' topics
    and 0.67 s with 300 (creating a test's topics 2.2 s), against milliseconds with a handful.
    """
    admin = AIOKafkaAdminClient(client_id=f"{settings.client_id}-admin", **connection_options(settings))
    await admin.start()
    try:
        ours = [name for name in await admin.list_topics() if name.startswith(settings.topic_prefix)]
        if ours:
            await admin.delete_topics(ours)
    finally:
        await admin.close()


def run_sync(coro: object) -> None:
    """Run a coroutine from synchronous fixture code."""
    asyncio.run(coro)  # type: ignore[arg-type]
