"""Suite-wide fixtures: tiers are marked by folder; engines start once per session.

In CI (``CI=true``) a test that needs the engines fails when they cannot start: it never skips.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.db.engine import make_engine
from libs.common.settings import DatabaseSettings, KafkaSettings
from libs.common.testing.engines import Engines, embedded_engines, isolated_topics

TIERS = ("unit", "integration", "e2e", "browser", "deploy")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    root = Path(str(config.rootpath)) / "tests"
    for item in items:
        try:
            tier = Path(str(item.path)).relative_to(root).parts[0]
        except ValueError:
            continue
        if tier in TIERS:
            item.add_marker(getattr(pytest.mark, tier))


@pytest.fixture(scope="session")
def engines() -> Iterator[Engines]:
    # Not under pytest's tmp: another pytest run makes that folder private again, and
    # PostgreSQL runs as its own user that must keep traversing to its data.
    base = Path(tempfile.mkdtemp(prefix="spm-test-engines-"))
    try:
        with embedded_engines(base) as running:
            yield running
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def database_url(engines: Engines) -> Iterator[str]:
    name = engines.new_database()
    try:
        yield engines.postgres.url(name)
    finally:
        engines.drop_database(name)


@pytest.fixture
def database_settings(database_url: str) -> DatabaseSettings:
    return DatabaseSettings(url=database_url, pool_size=5)


@pytest.fixture
async def db_engine(database_settings: DatabaseSettings) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(database_settings, "tests")
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture
async def kafka_settings(engines: Engines) -> AsyncIterator[KafkaSettings]:
    """The test's own topics (a new prefix), deleted after it: the broker lives all session."""
    async with isolated_topics(engines, partitions=2) as settings:
        yield settings
