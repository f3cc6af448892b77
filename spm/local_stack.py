"""``spm up``: the whole stack on one machine, embedded engines when none are configured.

Every child (broker, PostgreSQL, the services) dies with this process, and SIGTERM or
Ctrl-C stops the services first (they drain and commit), then the engines.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
from rich.console import Console

from libs.common.embedded import (
    EMBEDDED_SESSION_TIMEOUT_MS,
    EmbeddedKafka,
    EmbeddedPostgres,
    _die_with_parent,
)
from spm.services import SERVICES
from spm.stack import STACK_FILE_NAME, remove_stack_file, write_stack_file

console = Console(stderr=True)
DEMO_TENANT = "demo"


class _Stop(Exception):
    pass


def _raise_stop(signum: int, _frame: Any) -> None:
    raise _Stop(signum)


def _wait_ready(
    port: int, name: str, processes: dict[str, subprocess.Popen[bytes]], timeout: float = 60
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for svc, proc in processes.items():
            if proc.poll() is not None:
                raise RuntimeError(f"{svc} exited with code {proc.returncode} during start-up")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise TimeoutError(f"{name} was not ready on port {port} within {timeout}s")


def _start_service(name: str, env: dict[str, str], log_dir: Path) -> subprocess.Popen[bytes]:
    log = (log_dir / f"{name}.log").open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "spm.cli", "run", name],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        preexec_fn=lambda: _die_with_parent(signal.SIGTERM),
    )


def _stop_services(processes: dict[str, subprocess.Popen[bytes]], timeout: float = 30) -> None:
    for proc in processes.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for proc in processes.values():
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@contextmanager
def _environ(env: dict[str, str]) -> Iterator[None]:
    """The stack's environment as the process's while a CLI action reads its settings."""
    previous = dict(os.environ)
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(previous)


def _demo_credentials(env: dict[str, str], data_dir: Path) -> dict[str, Any]:
    """Create the demo tenant once; its keys are kept in the data dir (local use only)."""
    path = data_dir / "demo-tenant.json"
    if path.exists():
        loaded: dict[str, Any] = orjson.loads(path.read_bytes())
        return loaded
    from spm.admin import create_tenant_now

    with _environ(env):
        created = asyncio.run(create_tenant_now(DEMO_TENANT, "Demo Corp", "America/New_York"))
    if created is None:
        raise SystemExit(
            f"spm: the {DEMO_TENANT} tenant exists but {path} (its keys) is gone; "
            f"remove {data_dir} to start afresh"
        )
    path.write_bytes(orjson.dumps(created, option=orjson.OPT_INDENT_2))
    path.chmod(0o600)
    return created


def run_local_stack(data_dir: Path, demo: bool) -> int:
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    log_dir = data_dir / "logs"
    log_dir.mkdir(exist_ok=True)
    env = dict(os.environ)
    # The connectors post what they fetch to this stack's ingest.
    env.setdefault("CONNECTORS_INGEST_URL", f"http://127.0.0.1:{SERVICES['ingest'].port}")
    kafka: EmbeddedKafka | None = None
    postgres: EmbeddedPostgres | None = None
    processes: dict[str, subprocess.Popen[bytes]] = {}
    # Other `spm` commands find the stack through this file; it lives as long as the stack.
    stack_file = data_dir / STACK_FILE_NAME
    previous_term = signal.signal(signal.SIGTERM, _raise_stop)
    try:
        if not env.get("KAFKA_BOOTSTRAP_SERVERS"):
            port = int(env.get("SPM_EMBEDDED_KAFKA_PORT", "19092"))
            kafka = EmbeddedKafka(port=port, log_dir=log_dir)
            kafka.start()
            env["KAFKA_BOOTSTRAP_SERVERS"] = kafka.bootstrap_servers
            # The embedded broker has no idempotent producers.
            env["KAFKA_ENABLE_IDEMPOTENCE"] = "false"
            env.setdefault("KAFKA_PARTITIONS", "3")
            env.setdefault("CONSUMER_SESSION_TIMEOUT_MS", str(EMBEDDED_SESSION_TIMEOUT_MS))
            console.print(f"[green]embedded Kafka (Tansu)[/] on {kafka.bootstrap_servers}")
        if not env.get("DATABASE_URL"):
            port = int(env.get("SPM_EMBEDDED_POSTGRES_PORT", "15432"))
            postgres = EmbeddedPostgres(data_dir / "postgres", port=port)
            postgres.start()
            postgres.ensure_database("spm")
            env["DATABASE_URL"] = postgres.url()
            console.print(
                f"[green]embedded PostgreSQL[/] on 127.0.0.1:{postgres.port} (data in {postgres.data_dir})"
            )
            # The runbook's SQL, as written there: psql reads no "+asyncpg" scheme.
            console.print(
                f"  {postgres.bin_dir() / 'psql'} {postgres.url(driver='postgresql')}", soft_wrap=True
            )
        for name in ("migrate", "topics"):
            args = ["migrate"] if name == "migrate" else ["topics", "create"]
            subprocess.run([sys.executable, "-m", "spm.cli", *args], env=env, check=True)
        for name in SERVICES:
            processes[name] = _start_service(name, env, log_dir)
        for name, spec in SERVICES.items():
            _wait_ready(spec.port, name, processes)
        urls = {name: f"http://127.0.0.1:{spec.port}" for name, spec in SERVICES.items()}
        write_stack_file(stack_file, env, urls)
        console.print(f"[green]services ready[/] (logs in {log_dir}; addresses in {stack_file})")
        for name, spec in SERVICES.items():
            console.print(f"  {name:<12} http://127.0.0.1:{spec.port}")
        if demo:
            credentials = _demo_credentials(env, data_dir)
            keys = credentials["api_keys"]
            marker = data_dir / "demo-loaded"
            if not marker.exists():
                from spm.demo import generate_demo, push_demo, wait_for_crm

                dataset = generate_demo(
                    seed=7,
                    reps=int(env.get("SPM_DEMO_REPS", "24")),
                    days=int(env.get("SPM_DEMO_DAYS", "91")),
                    accounts=int(env.get("SPM_DEMO_ACCOUNTS", "300")),
                )
                with _environ(env):
                    asyncio.run(
                        push_demo(
                            dataset,
                            f"http://127.0.0.1:{SERVICES['ingest'].port}",
                            keys["ingest"],
                            progress=True,
                            crm_landed=lambda entities: wait_for_crm(DEMO_TENANT, entities),
                        )
                    )
                marker.write_text("loaded\n")
            console.print(f"[bold]dashboard[/]  http://127.0.0.1:{SERVICES['gateway'].port}/")
            console.print(f"tenant [bold]{DEMO_TENANT}[/] keys: read={keys['read']}")
            console.print(f"                  admin={keys['admin']}")
            console.print(f"                  ingest={keys['ingest']}")
        console.print("press Ctrl-C to stop")
        while True:
            for name, proc in processes.items():
                if proc.poll() is not None:
                    console.print(f"[red]{name} exited with {proc.returncode}[/]; restarting")
                    processes[name] = _start_service(name, env, log_dir)
            time.sleep(1)
    except (KeyboardInterrupt, _Stop):
        console.print("stopping...")
        return 0
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        remove_stack_file(stack_file)
        _stop_services(processes)
        if postgres is not None:
            postgres.stop()
        if kafka is not None:
            kafka.stop()
        signal.signal(signal.SIGTERM, previous_term)
