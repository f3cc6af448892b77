"""The local stack as a user runs it: `spm up` with demo data, read through the gateway, stopped by SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import orjson
import psutil

from libs.common.embedded import free_port
from spm.demo import generate_demo

REPO = Path(__file__).resolve().parents[2]
DEMO = {"SPM_DEMO_REPS": "4", "SPM_DEMO_DAYS": "10", "SPM_DEMO_ACCOUNTS": "20"}


def _expected_activities(rep_email: str) -> int:
    dataset = generate_demo(seed=7, reps=4, days=10, accounts=20)
    return sum(1 for a in dataset.activities if any(p.get("email") == rep_email for p in a["participants"]))


def test_spm_up_serves_demo_scores_and_sigterm_leaves_no_process(tmp_path: Path) -> None:
    ports = {name: free_port() for name in ("GATEWAY", "INGEST", "ATTRIBUTION", "METRICS", "CONNECTORS")}
    env = {k: v for k, v in os.environ.items() if k not in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL")}
    env.update({f"{name}_PORT": str(port) for name, port in ports.items()})
    env.update(DEMO)
    env["SPM_EMBEDDED_KAFKA_PORT"] = str(free_port())
    env["SPM_EMBEDDED_POSTGRES_PORT"] = str(free_port())
    env["SPM_LOG_LEVEL"] = "WARNING"
    # The default layout: the CLI finds `.spm/stack.env` from the folder `spm up` ran in.
    data_dir = tmp_path / ".spm"
    log = (tmp_path / "spm-up.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "spm.cli", "up", "--data-dir", str(data_dir)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    descendants: set[int] = set()
    try:
        credentials_file = data_dir / "demo-tenant.json"
        deadline = time.monotonic() + 180
        while not (data_dir / "demo-loaded").exists():
            assert process.poll() is None, (tmp_path / "spm-up.log").read_text()
            assert time.monotonic() < deadline, (tmp_path / "spm-up.log").read_text()
            time.sleep(0.5)
        keys = orjson.loads(credentials_file.read_bytes())["api_keys"]
        descendants = {p.pid for p in psutil.Process(process.pid).children(recursive=True)}
        assert len(descendants) >= 7  # broker, PostgreSQL, five services

        entities = generate_demo(seed=7, reps=4, days=10, accounts=20).entities
        rep_email = next(e for e in entities if e["entity_type"] == "rep")["emails"][0]
        expected = _expected_activities(rep_email)
        assert expected > 50
        url = f"http://127.0.0.1:{ports['GATEWAY']}/v1/reps/rep-001/scores?granularity=quarter"
        total = -1
        while time.monotonic() < deadline + 60:
            response = httpx.get(url, headers={"Authorization": f"Bearer {keys['read']}"}, timeout=30)
            if response.status_code == 200:
                total = sum(p["counts"]["activities"] for p in response.json()["periods"])
                if total == expected:
                    break
            time.sleep(0.5)
        assert total == expected
        _cli_finds_the_stack(tmp_path)
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(60)
        log.close()
    assert code == 0, (tmp_path / "spm-up.log").read_text()
    survivors = [
        pid for pid in descendants if psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"
    ]
    assert survivors == []
    assert not (data_dir / "stack.env").exists()


def _spm_without_environment(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """A second shell: no DATABASE_URL, no KAFKA_*, only the working directory."""
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


def _cli_finds_the_stack(cwd: Path) -> None:
    created = _spm_without_environment(["tenants", "create", "acme", "--json"], cwd)
    assert created.returncode == 0, created.stderr
    assert orjson.loads(created.stdout)["tenant_id"] == "acme"
    listed = _spm_without_environment(["tenants", "list", "--json"], cwd)
    assert listed.returncode == 0, listed.stderr
    assert [t["tenant_id"] for t in orjson.loads(listed.stdout)] == ["demo", "acme"]
    changed = _spm_without_environment(
        ["tenants", "settings", "set", "acme", "privacy.keep_subjects=true"], cwd
    )
    assert changed.returncode == 0, changed.stderr
    # Announced on the stack's broker (an unreachable broker would say so on stderr).
    assert changed.stderr == ""
    assert changed.stdout == "tenant acme: settings version 1 saved; changed: privacy\n"
    since = _spm_without_environment(["reattribute", "--tenant", "acme", "--since", "2026-01-01"], cwd)
    assert since.returncode == 0, since.stderr
    # The progress bar is transient: it may leave blank lines behind.
    assert next(line for line in since.stdout.splitlines() if line.strip()) == (
        "tenant acme: 0 activities examined, 0 attributions changed, 0 of them in their deal; "
        "0 versions published"
    )
