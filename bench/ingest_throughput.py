"""Ingest throughput: ``python -m bench.ingest_throughput [--profile]``.

Serves ingest with uvicorn on 127.0.0.1 (``spm run ingest``, a separate process) against the
embedded broker and PostgreSQL, then measures, each bounded by a count and a time:

* events/s through ``POST /v1/events`` in batches of 1,000 (sequential requests);
* requests/s of single Twilio status callbacks (``POST /v1/webhooks/twilio/{tenant}``, 8 in flight).

Every event is new (unique ids), so the figures include the duplicate bookkeeping writes.
``--profile`` instead runs the same two loads in-process under pyinstrument and prints where
ingest spends its time.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import time
from typing import Any
from urllib.parse import urlencode

import httpx
from sqlalchemy import text

from bench.common import engines, median, percentile, service_env, start_service, stop_services
from libs.common.db.engine import make_engine
from libs.common.settings import DatabaseSettings
from libs.common.tenancy import add_webhook_secret, create_tenant

SECRET_KEY = "bench-secret"  # noqa: S105 - matches bench.common, never a real secret
TENANT = "bench"
TWILIO_TOKEN = "bench-twilio-auth-token"  # noqa: S105 - a bench value
BATCH = 1_000
MAX_BATCHES = 30
MAX_CALLBACKS = 2_000
PHASE_SECONDS = 45.0
IN_FLIGHT = 8


async def prepare_tenant(database_url: str) -> str:
    """The bench tenant with its settings and a known Twilio token; returns its ingest key."""
    engine = make_engine(DatabaseSettings(url=database_url), "bench")
    try:
        async with engine.begin() as conn:
            created = await create_tenant(conn, TENANT, SECRET_KEY)
            await add_webhook_secret(conn, TENANT, "twilio", SECRET_KEY, TWILIO_TOKEN)
            settings = {
                "internal_domains": ["acme.example"],
                "privacy": {"excluded_domains": ["lawfirm.example"]},
            }
            await conn.execute(
                text("UPDATE tenants SET settings = CAST(:s AS jsonb) WHERE tenant_id = :t"),
                {"s": json.dumps(settings), "t": TENANT},
            )
    finally:
        await engine.dispose()
    keys: dict[str, str] = created["api_keys"]  # type: ignore[assignment]
    return keys["ingest"]


def events_batch(batch_no: int) -> bytes:
    activities = []
    for i in range(BATCH):
        n = batch_no * BATCH + i
        kind = ("email", "call", "meeting")[n % 3]
        outcome = {"email": "sent", "call": "connected", "meeting": "held"}[kind]
        roles = {"email": ("from", "to"), "call": ("caller", "callee"), "meeting": ("organizer", "attendee")}[
            kind
        ]
        activities.append(
            {
                "source": "bench",
                "external_id": f"b-{n}",
                "kind": kind,
                "direction": "outbound",
                "outcome": outcome,
                "occurred_at": f"2026-11-{1 + n % 20:02d}T{n % 24:02d}:{n % 60:02d}:00Z",
                "duration_seconds": 60 if kind != "email" else 0,
                "subject": "Follow-up",
                "participants": [
                    {"email": f"rep{n % 50}@acme.example", "role": roles[0]},
                    {"email": f"buyer{n % 997}@buyer{n % 89}.example", "role": roles[1]},
                ],
            }
        )
    return json.dumps({"activities": activities}).encode()


def twilio_callback(base_url: str, n: int) -> tuple[bytes, dict[str, str]]:
    params = {
        "AccountSid": "AC00000000000000000000000000000000",
        "CallSid": f"CA{n:032x}",
        "CallStatus": "completed",
        "CallDuration": "42",
        "Direction": "outbound-api",
        "From": "+16505551234",
        "To": "+14155552671",
        "SequenceNumber": "3",
        "Timestamp": "Tue, 24 Nov 2026 15:10:08 +0000",
    }
    url = f"{base_url}/v1/webhooks/twilio/{TENANT}"
    signed = url + "".join(k + v for k, v in sorted(params.items()))
    signature = base64.b64encode(
        hmac.new(TWILIO_TOKEN.encode(), signed.encode(), hashlib.sha1).digest()
    ).decode()
    return urlencode(params).encode(), {
        "content-type": "application/x-www-form-urlencoded",
        "x-twilio-signature": signature,
    }


async def measure_events(client: httpx.AsyncClient, ingest_key: str) -> dict[str, float]:
    headers = {"Authorization": f"Bearer {ingest_key}", "content-type": "application/json"}
    bodies = [events_batch(b) for b in range(MAX_BATCHES)]
    latencies: list[float] = []
    accepted = 0
    started = time.perf_counter()
    for body in bodies:
        t0 = time.perf_counter()
        response = await client.post("/v1/events", content=body, headers=headers)
        latencies.append(time.perf_counter() - t0)
        if response.status_code != 202:
            raise RuntimeError(f"/v1/events answered {response.status_code}: {response.text[:300]}")
        accepted += response.json()["accepted"]
        if time.perf_counter() - started > PHASE_SECONDS:
            break
    elapsed = time.perf_counter() - started
    return {
        "events": accepted,
        "events_per_s": accepted / elapsed,
        "batch_p50_ms": median(latencies) * 1000,
        "batch_p95_ms": percentile(latencies, 95) * 1000,
    }


async def measure_twilio(client: httpx.AsyncClient) -> dict[str, float]:
    base_url = str(client.base_url).rstrip("/")
    requests = [twilio_callback(base_url, n) for n in range(MAX_CALLBACKS)]
    latencies: list[float] = []
    next_index = 0
    deadline = time.perf_counter() + PHASE_SECONDS

    async def worker() -> None:
        nonlocal next_index
        while next_index < len(requests) and time.perf_counter() < deadline:
            body, headers = requests[next_index]
            next_index += 1
            t0 = time.perf_counter()
            response = await client.post(f"/v1/webhooks/twilio/{TENANT}", content=body, headers=headers)
            latencies.append(time.perf_counter() - t0)
            if response.status_code != 200:
                raise RuntimeError(f"twilio callback answered {response.status_code}: {response.text[:300]}")

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(IN_FLIGHT)))
    elapsed = time.perf_counter() - started
    return {
        "requests": len(latencies),
        "requests_per_s": len(latencies) / elapsed,
        "p50_ms": median(latencies) * 1000,
        "p95_ms": percentile(latencies, 95) * 1000,
    }


async def run_loads(client: httpx.AsyncClient, ingest_key: str) -> dict[str, dict[str, float]]:
    return {
        "events_batches": await measure_events(client, ingest_key),
        "twilio_callbacks": await measure_twilio(client),
    }


def served() -> dict[str, Any]:
    with engines(partitions=2) as eng:
        ingest_key = asyncio.run(prepare_tenant(eng.postgres.url("spm")))
        service = start_service("ingest", service_env(eng), eng.base)
        try:

            async def go() -> dict[str, dict[str, float]]:
                async with httpx.AsyncClient(
                    base_url=f"http://127.0.0.1:{service.port}", timeout=30
                ) as client:
                    return await run_loads(client, ingest_key)

            return dict(asyncio.run(go()))
        finally:
            stop_services([service])


def profiled() -> str:
    from pyinstrument import Profiler

    from libs.common.settings import KafkaSettings, RuntimeSettings
    from services.ingest.app import create_app
    from services.ingest.settings import IngestSettings

    with engines(partitions=2) as eng:
        url = eng.postgres.url("spm")
        ingest_key = asyncio.run(prepare_tenant(url))
        settings = IngestSettings(
            runtime=RuntimeSettings(secret_key=SECRET_KEY),
            kafka=KafkaSettings(bootstrap_servers=eng.kafka.bootstrap_servers, enable_idempotence=False),
            database=DatabaseSettings(url=url),
        )
        app = create_app(settings)
        profiler = Profiler(async_mode="enabled")

        async def go() -> None:
            async with app.router.lifespan_context(app):
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
                    profiler.start()
                    await run_loads(client, ingest_key)
                    profiler.stop()

        asyncio.run(go())
        return str(profiler.output_text(unicode=False, color=False, show_all=False))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--profile", action="store_true", help="profile in-process instead of measuring")
    args = parser.parse_args(argv)
    if args.profile:
        print(profiled())
        return
    print(json.dumps(served(), indent=2))


if __name__ == "__main__":
    main()
