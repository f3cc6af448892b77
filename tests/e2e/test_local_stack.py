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
    data_dir = tmp_path / "stack"
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
            response = httpx.get(url, headers={"Authorization": f"Bearer {keys['read']}"}, timeout=5)
            if response.status_code == 200:
                total = sum(p["counts"]["activities"] for p in response.json()["periods"])
                if total == expected:
                    break
            time.sleep(0.5)
        assert total == expected
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(60)
        log.close()
    assert code == 0, (tmp_path / "spm-up.log").read_text()
    survivors = [
        pid for pid in descendants if psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"
    ]
    assert survivors == []
