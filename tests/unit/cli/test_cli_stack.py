"""The CLI finds the running local stack, and an unreachable dependency costs one line and exit 69."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from libs.common.embedded import free_port
from spm.stack import EXIT_UNAVAILABLE, apply_stack_file, find_stack_file, write_stack_file

REPO = Path(__file__).resolve().parents[3]


def _stack_file(folder: Path, pid: int | None = None) -> Path:
    (folder / ".spm").mkdir(parents=True, exist_ok=True)
    path = folder / ".spm" / "stack.env"
    env = {
        "DATABASE_URL": "postgresql+asyncpg://postgres@127.0.0.1:15432/spm",
        "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:19092",
        "KAFKA_ENABLE_IDEMPOTENCE": "false",
        "HOME": "/ignored",
    }
    write_stack_file(path, env, {"gateway": "http://127.0.0.1:8000", "ingest": "http://127.0.0.1:8001"})
    if pid is not None:
        path.write_text(path.read_text().replace(f"SPM_STACK_PID={os.getpid()}", f"SPM_STACK_PID={pid}"))
    return path


def test_unset_variables_are_filled_from_the_stack_file_found_in_a_parent(tmp_path: Path) -> None:
    _stack_file(tmp_path)
    nested = tmp_path / "a" / "b"
    nested.mkdir(parents=True)
    environ = {"KAFKA_BOOTSTRAP_SERVERS": "broker.example:9092"}
    found = apply_stack_file(environ, nested)
    assert found == tmp_path / ".spm" / "stack.env"
    assert environ == {
        "DATABASE_URL": "postgresql+asyncpg://postgres@127.0.0.1:15432/spm",
        # A configured broker keeps its own options: the embedded broker's are not mixed in.
        "KAFKA_BOOTSTRAP_SERVERS": "broker.example:9092",
        "SPM_GATEWAY_URL": "http://127.0.0.1:8000",
        "SPM_INGEST_URL": "http://127.0.0.1:8001",
    }
    assert (tmp_path / ".spm" / "stack.env").stat().st_mode & 0o777 == 0o600


def test_a_stack_file_left_by_a_dead_process_is_ignored(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    _stack_file(tmp_path, pid=dead.pid)
    environ: dict[str, str] = {}
    assert find_stack_file(tmp_path) is None
    assert apply_stack_file(environ, tmp_path) is None
    assert environ == {}


def _spm(args: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "KAFKA_", "SPM_"))}
    clean.update(env, PYTHONPATH=str(REPO), SPM_STACK_FILE=str(tmp_path / "none.env"))
    return subprocess.run(
        [sys.executable, "-m", "spm.cli", *args],
        cwd=tmp_path,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_unreachable_postgresql_is_one_line_and_exit_69(tmp_path: Path) -> None:
    port = free_port()
    result = _spm(
        ["tenants", "create", "acme", "--json"],
        tmp_path,
        DATABASE_URL=f"postgresql+asyncpg://postgres@127.0.0.1:{port}/spm",
    )
    assert result.returncode == EXIT_UNAVAILABLE
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"spm: cannot reach PostgreSQL at 127.0.0.1:{port}/spm (connect call failed ('127.0.0.1', {port})); "
        "start the local stack with `spm up` or set DATABASE_URL"
    ]


def test_unreachable_kafka_is_one_line_and_exit_69(tmp_path: Path) -> None:
    port = free_port()
    result = _spm(["topics", "create"], tmp_path, KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{port}")
    assert result.returncode == EXIT_UNAVAILABLE
    assert result.stderr.splitlines() == [
        f"spm: cannot reach Kafka at 127.0.0.1:{port} (no broker answered); "
        "start the local stack with `spm up` or set KAFKA_BOOTSTRAP_SERVERS"
    ]


def test_other_errors_still_fail_loudly(tmp_path: Path) -> None:
    result = _spm(["webhooks", "rotate", "--tenant", "acme", "--source", "nope"], tmp_path)
    assert result.returncode == 2
    assert "unknown source 'nope'" in result.stderr


def test_a_tenant_is_not_created_with_an_unknown_time_zone(tmp_path: Path) -> None:
    result = _spm(["tenants", "create", "acme", "--timezone", "Mars/Base"], tmp_path)
    assert result.returncode == 2
    assert "'Mars/Base' is not an IANA time zone" in result.stderr
