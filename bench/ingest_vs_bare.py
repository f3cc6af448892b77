"""Ingest against a bare produce-and-202 endpoint, both served the same way on the same broker.

Single Twilio status callbacks go through the open-loop generator at fixed offered rates
(requests/s answered 2xx over the schedule's steady part, p50/p99 from each request's due time;
see ``bench.openloop``); batches of 1,000 activities
go through ``POST /v1/events`` two at a time (events/s). Every request carries new ids, so
ingest never takes its duplicate shortcut. Rounds alternate ingest and bare; medians are quoted.

Each phase also reports the server process's CPU time per event or per 2xx request
(``cpu_us_per_event``, ``cpu_us_per_request``): on a shared machine the rates follow the CPU
share the server happens to get, its CPU cost per unit of work much less.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

import httpx

from bench.common import (
    Engines,
    cpu_seconds,
    median,
    service_env,
    start_process,
    start_service,
    stop_services,
)
from bench.ingest_throughput import TENANT, events_batch, prepare_tenant, twilio_callback
from bench.openloop import open_loop, raw_post
from libs.common.kafka.clients import create_topics
from libs.common.settings import KafkaSettings
from libs.common.topics import ACTIVITY_INGESTED

BARE_PREFIX = "bare."


def _callbacks(port: int, first: int, count: int) -> list[bytes]:
    base_url = f"http://127.0.0.1:{port}"
    path = f"/v1/webhooks/twilio/{TENANT}"
    out = []
    for n in range(first, first + count):
        body, headers = twilio_callback(base_url, n)
        out.append(raw_post("127.0.0.1", port, path, body, headers))
    return out


async def _batches(
    port: int, key: str, first_batch: int, batches: int, in_flight: int = 2
) -> dict[str, float]:
    """``batches`` bodies of 1,000 new activities, ``in_flight`` at a time; events/s accepted."""
    bodies = [events_batch(first_batch + b) for b in range(batches)]
    headers = {"Authorization": f"Bearer {key}", "content-type": "application/json"}
    accepted = 0
    queue = list(reversed(bodies))
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:

        async def worker() -> None:
            nonlocal accepted
            while queue:
                body = queue.pop()
                response = await client.post("/v1/events", content=body, headers=headers)
                if response.status_code != 202:
                    raise RuntimeError(f"/v1/events answered {response.status_code}: {response.text[:300]}")
                accepted += response.json()["accepted"]

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(in_flight)))
        elapsed = time.perf_counter() - started
    return {"events": accepted, "events_per_s": accepted / elapsed}


def run_ingest_vs_bare(
    eng: Engines, rates: list[int], seconds: float, batches: int, repeats: int
) -> dict[str, Any]:
    ingest_key = asyncio.run(prepare_tenant(eng.postgres.url("spm")))
    bare_kafka = KafkaSettings(
        bootstrap_servers=eng.kafka.bootstrap_servers, topic_prefix=BARE_PREFIX, enable_idempotence=False
    )
    asyncio.run(create_topics(bare_kafka, 2))
    env = service_env(eng)
    bare_env = service_env(eng, prefix=BARE_PREFIX)
    bare_env["BARE_TOPIC"] = ACTIVITY_INGESTED.physical(BARE_PREFIX)
    services = [
        start_service("ingest", env, eng.base),
        start_process("bare", ["-m", "bench.bare_endpoint"], bare_env, eng.base),
    ]
    ports = {"ingest": services[0].port, "bare": services[1].port}
    pids = {"ingest": services[0].process.pid, "bare": services[1].process.pid}
    runs: dict[str, dict[str, list[dict[str, float]]]] = {
        name: {"batches": [], **{f"callbacks_{r}": [] for r in rates}} for name in ports
    }
    next_batch = next_call = 0
    try:
        for round_ in range(repeats):
            order = ["bare", "ingest"] if round_ % 2 == 0 else ["ingest", "bare"]
            for name in order:
                port = ports[name]
                pid = [pids[name]]
                before = cpu_seconds(pid)
                result = asyncio.run(_batches(port, ingest_key, next_batch, batches))
                result["cpu_us_per_event"] = (cpu_seconds(pid) - before) / result["events"] * 1e6
                next_batch += batches
                runs[name]["batches"].append(result)
                sys.stdout.write(
                    f"  {name:<7} round {round_ + 1} batches: {result['events_per_s']:,.0f} events/s "
                    f"CPU {result['cpu_us_per_event']:,.1f} us/event\n"
                )
                for rate in rates:
                    count = int(rate * seconds)
                    requests = _callbacks(port, next_call, count)
                    next_call += count
                    before = cpu_seconds(pid)
                    loaded = asyncio.run(open_loop("127.0.0.1", port, requests, rate, seconds))
                    loaded["cpu_us_per_request"] = (cpu_seconds(pid) - before) / max(loaded["ok"], 1) * 1e6
                    runs[name][f"callbacks_{rate}"].append(loaded)
                    sys.stdout.write(
                        f"  {name:<7} round {round_ + 1} callbacks at {rate}/s: {loaded['ok_per_s']:,.0f} ok/s "
                        f"(whole run {loaded['ok_per_s_whole_run']:,.0f}, sent late p99 "
                        f"{loaded['send_lag_p99_ms']:.1f} ms) "
                        f"p50 {loaded['p50_ms']:.1f} ms p99 {loaded['p99_ms']:.1f} ms failed {loaded['failed']:.0f} "
                        f"resent {loaded['resent_on_closed_idle_connection']:.0f} "
                        f"CPU {loaded['cpu_us_per_request']:,.0f} us/request "
                        f"{ {k[7:]: int(v) for k, v in loaded.items() if k.startswith('failed_')} }\n"
                    )
    finally:
        stop_services(services)

    def summary(name: str) -> dict[str, Any]:
        out: dict[str, Any] = {
            "batch_events_per_s": median([r["events_per_s"] for r in runs[name]["batches"]]),
            "batch_cpu_us_per_event": median([r["cpu_us_per_event"] for r in runs[name]["batches"]]),
        }
        for rate in rates:
            rows = runs[name][f"callbacks_{rate}"]
            out[f"callbacks_{rate}"] = {
                key: median([r[key] for r in rows])
                for key in (
                    "ok_per_s",
                    "ok_per_s_whole_run",
                    "send_lag_p99_ms",
                    "p50_ms",
                    "p99_ms",
                    "failed",
                    "resent_on_closed_idle_connection",
                    "cpu_us_per_request",
                )
            }
        return out

    ours, bare = summary("ingest"), summary("bare")
    return {
        "rates": rates,
        "seconds_per_rate": seconds,
        "batches_of_1000": batches,
        "repeats": repeats,
        "ingest": ours,
        "bare": bare,
        "batch_ratio": ours["batch_events_per_s"] / bare["batch_events_per_s"],
        "batch_cpu_ratio": bare["batch_cpu_us_per_event"] / ours["batch_cpu_us_per_event"],
        "runs": runs,
    }
