"""The test database pool hands out its clones in order, starts psql again when the kernel refused
to start it once, and tells the next taker when PostgreSQL refused one."""

from __future__ import annotations

import errno
import subprocess
from typing import cast

import pytest

from libs.common.embedded import EmbeddedPostgres
from libs.common.testing.engines import SPAWN_ATTEMPTS, DatabasePool


class FakePostgres:
    """Records the statements; refuses every one once ``refuse`` is set; psql cannot be started
    the first ``unstartable`` times (``EFAULT``, as ``vfork`` was seen to fail on a loaded machine)."""

    def __init__(self, unstartable: int = 0) -> None:
        self.statements: list[str] = []
        self.refuse = False
        self.unstartable = unstartable

    def psql(self, sql: str, database: str = "postgres") -> str:
        if self.unstartable:
            self.unstartable -= 1
            raise OSError(errno.EFAULT, "Bad address")
        if self.refuse:
            raise subprocess.CalledProcessError(1, ["psql"], stderr="too many connections")
        self.statements.append(sql)
        return ""


def test_taken_databases_are_distinct_clones_of_the_template_and_drops_are_done_by_close() -> None:
    postgres = FakePostgres()
    pool = DatabasePool(cast(EmbeddedPostgres, postgres), ready=2)
    taken = [pool.take(timeout=10) for _ in range(3)]
    assert len(set(taken)) == 3
    pool.drop(taken[0])
    pool.close()
    created = [s for s in postgres.statements if s.startswith("CREATE")]
    # Two ahead at the start, one more for each taken.
    assert len(created) == 5
    assert all(s.endswith(" TEMPLATE spm_template") for s in created)
    assert [s for s in postgres.statements if s.startswith("DROP")] == [
        f'DROP DATABASE IF EXISTS "{taken[0]}" WITH (FORCE)'
    ]


def test_a_clone_postgresql_refused_fails_the_next_take_and_the_close() -> None:
    postgres = FakePostgres()
    postgres.refuse = True
    pool = DatabasePool(cast(EmbeddedPostgres, postgres), ready=1)
    with pytest.raises(RuntimeError, match="creating or dropping a test database failed") as failed:
        pool.take(timeout=10)
    assert isinstance(failed.value.__cause__, subprocess.CalledProcessError)
    with pytest.raises(RuntimeError):
        pool.close()


def test_a_psql_the_kernel_refused_to_start_once_is_started_again() -> None:
    postgres = FakePostgres(unstartable=1)
    pool = DatabasePool(cast(EmbeddedPostgres, postgres), ready=1)
    name = pool.take(timeout=10)
    assert f'CREATE DATABASE "{name}" TEMPLATE spm_template' in postgres.statements
    pool.close()


def test_a_psql_never_started_fails_the_next_take() -> None:
    pool = DatabasePool(cast(EmbeddedPostgres, FakePostgres(unstartable=SPAWN_ATTEMPTS)), ready=1)
    with pytest.raises(RuntimeError, match="creating or dropping a test database failed") as failed:
        pool.take(timeout=10)
    assert isinstance(failed.value.__cause__, OSError)
