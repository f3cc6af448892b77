"""The test database pool hands out its clones in order and tells the next taker when PostgreSQL refused one."""

from __future__ import annotations

import subprocess
from typing import cast

import pytest

from libs.common.embedded import EmbeddedPostgres
from libs.common.testing.engines import DatabasePool


class FakePostgres:
    """Records the statements; refuses every one once ``refuse`` is set."""

    def __init__(self) -> None:
        self.statements: list[str] = []
        self.refuse = False

    def psql(self, sql: str, database: str = "postgres") -> str:
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
