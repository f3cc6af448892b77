"""Held-out: the on-call runbook's commands (docs/operations.md) against a local stack.

A platform engineer rehearses the runbook before going on call: `spm up` in an empty folder (as
the README says), then every `spm ...` the runbook tells on-call to run in a pod, run here without
the `kubectl exec` prefix, and the runbook's psql recipe with the address `spm up` wrote. Each
must exit 0 and say what the runbook says it says.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import orjson

from libs.common.embedded import free_port

REPO = Path(__file__).resolve().parents[2]
OPERATIONS = (REPO / "docs" / "operations.md").read_text(encoding="utf-8")
SERVICES = ("GATEWAY", "INGEST", "ATTRIBUTION", "METRICS", "CONNECTORS")


def _spm(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """A second shell in the folder `spm up` ran in: no DATABASE_URL, no KAFKA_*."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "KAFKA_", "SPM_STACK"))}
    env["PYTHONPATH"] = str(REPO)
    return subprocess.run(
        [sys.executable, "-m", "spm.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _runbook_spm_commands() -> list[list[str]]:
    """Every `kubectl -n spm exec deploy/spm-<x> -- spm ...` line of the runbook, as spm arguments."""
    commands = []
    for line in re.findall(r"kubectl -n spm exec (?:-it )?deploy/spm-\w+ -- spm ([^#`\n]+)", OPERATIONS):
        args = line.split()
        if "..." in args:
            continue
        commands.append(args)
    return commands


def test_runbook_commands_run_on_a_local_stack(tmp_path: Path) -> None:
    ports = {name: free_port() for name in SERVICES}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "DATABASE_", "SPM_STACK"))}
    env.update({f"{name}_PORT": str(port) for name, port in ports.items()})
    env.update(
        SPM_EMBEDDED_KAFKA_PORT=str(free_port()),
        SPM_EMBEDDED_POSTGRES_PORT=str(free_port()),
        SPM_LOG_LEVEL="WARNING",
        PYTHONPATH=str(REPO),
    )
    log_path = tmp_path / "spm-up.log"
    log = log_path.open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "spm.cli", "up", "--no-demo"],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    stack_file = tmp_path / ".spm" / "stack.env"
    try:
        deadline = time.monotonic() + 180
        while not stack_file.exists():
            assert process.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.5)

        # Every service answers the three endpoints the probes and Prometheus use.
        for name, port in ports.items():
            for path in ("/healthz", "/readyz"):
                response = httpx.get(f"http://127.0.0.1:{port}{path}", timeout=10)
                assert response.status_code == 200, (name, path, response.text)
            metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
            assert re.search(rf'^spm_ready\{{service="{name.lower()}"\}} 1\.0$', metrics, re.MULTILINE), name

        created = _spm(["tenants", "create", "acme", "--json"], tmp_path)
        assert created.returncode == 0, created.stderr
        assert orjson.loads(created.stdout)["tenant_id"] == "acme"

        # "Upgrading with migrations": the database at this release's head, as the runbook names it.
        [head] = re.findall(r"this release's head: (\w+)\)", OPERATIONS)
        status = _spm(["migrate", "--status"], tmp_path)
        assert status.returncode == 0, status.stderr
        assert head in status.stdout, status.stdout

        commands = _runbook_spm_commands()
        assert len(commands) >= 6, commands
        for args in commands:
            if args[:2] == ["migrate", "--down-to"]:
                continue  # a downgrade is not a rehearsal
            done = _spm(args, tmp_path)
            assert done.returncode == 0, (args, done.stdout, done.stderr)

        for args in (
            ["dlq", "replay", "--topic", "crm-entity-changed", "--tenant", "acme", "--dry-run"],
            ["connectors", "list", "--tenant", "acme"],
            ["webhooks", "list", "--tenant", "acme"],
            ["jwt", "list", "--tenant", "acme"],
            ["tenants", "settings", "get", "acme"],
            ["purge", "--tenant", "acme"],
            ["keys", "revoke", "--help"],
            ["tenants", "create", "--help"],
        ):
            done = _spm(args, tmp_path)
            assert done.returncode == 0, (args, done.stdout, done.stderr)

        # The runbook's psql recipe: PGURL from DATABASE_URL in .spm/stack.env, psql from the wheel.
        database_url = next(
            line.split("=", 1)[1].strip().strip("'\"")
            for line in stack_file.read_text().splitlines()
            if line.startswith("DATABASE_URL=")
        )
        pgurl = "postgresql" + database_url.removeprefix("postgresql+asyncpg")
        psql = (
            Path(sys.executable).parent.parent
            / "lib/python3.11/site-packages/embedded_postgres/pginstall/bin/psql"
        )
        for sql in (
            "SELECT 1",
            "SELECT tenant_id, count(*), min(deferred_at) FROM metric_deferred_events GROUP BY tenant_id",
        ):
            done = subprocess.run([str(psql), pgurl, "-c", sql], capture_output=True, text=True, timeout=60)
            assert done.returncode == 0, (sql, done.stderr)
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(60)
        log.close()
    assert code == 0, log_path.read_text()
