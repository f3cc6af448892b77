"""Run the four services in-process against given engines (integration tier)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

import httpx
from fastapi import FastAPI

from libs.common.settings import ConsumerSettings, DatabaseSettings, KafkaSettings, RuntimeSettings

TEST_SECRET_KEY = "test-secret-key"  # noqa: S105 - a fixture value, never a real secret

#: Tansu holds a new group's first join for about half the session timeout
#: (``EMBEDDED_SESSION_TIMEOUT_MS``): 2 s keeps each test's stack from waiting 5 s for its
#: partitions, and still leaves a loaded CI machine three heartbeats per session.
TEST_SESSION_TIMEOUT_MS = 2_000

#: How long the test stacks' ingest and gateway wait for the broker's acknowledgement. A test
#: asserts what was accepted, not how fast: the first publish of a stack starts its producer
#: and reads the topics' metadata, which took over the production default (1.5 s) once on a
#: loaded CI machine and answered 503. The 503 itself is tested with a broker that is down.
TEST_PUBLISH_TIMEOUT_SECONDS = 15.0


#: How often the test stacks' attribution looks for queued erasures. The production default (5 s)
#: left a test that asks for an erasure idle 2.5 s on average before the worker claimed it.
TEST_ERASURE_POLL_SECONDS = 0.5


def fast_consumer() -> ConsumerSettings:
    return ConsumerSettings(
        max_batch_time_ms=50,
        commit_interval_ms=200,
        retry_initial_backoff_ms=50,
        session_timeout_ms=TEST_SESSION_TIMEOUT_MS,
    )


@dataclass
class InProcessStack:
    ingest: httpx.AsyncClient
    gateway: httpx.AsyncClient
    apps: dict[str, FastAPI]


@asynccontextmanager
async def in_process_stack(
    kafka: KafkaSettings,
    database: DatabaseSettings,
    services: tuple[str, ...] = ("ingest", "attribution", "metrics", "gateway"),
) -> AsyncIterator[InProcessStack]:
    from services.attribution.app import create_app as attribution_app
    from services.attribution.settings import AttributionOptions, AttributionSettings
    from services.gateway.app import create_app as gateway_app
    from services.gateway.settings import GatewayOptions, GatewaySettings
    from services.ingest.app import create_app as ingest_app
    from services.ingest.settings import IngestOptions, IngestSettings
    from services.metrics.app import create_app as metrics_app
    from services.metrics.settings import MetricsServiceSettings

    runtime = RuntimeSettings(secret_key=TEST_SECRET_KEY)
    factories = {
        "ingest": lambda: ingest_app(
            IngestSettings(
                runtime=runtime,
                kafka=kafka,
                database=database,
                ingest=IngestOptions(publish_timeout_seconds=TEST_PUBLISH_TIMEOUT_SECONDS),
            )
        ),
        "attribution": lambda: attribution_app(
            AttributionSettings(
                runtime=runtime,
                kafka=kafka,
                database=database,
                consumer=fast_consumer(),
                attribution=AttributionOptions(erasure_poll_seconds=TEST_ERASURE_POLL_SECONDS),
            )
        ),
        "metrics": lambda: metrics_app(
            MetricsServiceSettings(runtime=runtime, kafka=kafka, database=database, consumer=fast_consumer())
        ),
        "gateway": lambda: gateway_app(
            GatewaySettings(
                runtime=runtime,
                kafka=kafka,
                database=database,
                gateway=GatewayOptions(publish_timeout_seconds=TEST_PUBLISH_TIMEOUT_SECONDS),
            )
        ),
    }
    apps = {name: factories[name]() for name in services}
    async with AsyncExitStack() as stack:
        for app in apps.values():
            await stack.enter_async_context(app.router.lifespan_context(app))
        ingest = await stack.enter_async_context(
            httpx.AsyncClient(transport=httpx.ASGITransport(app=apps["ingest"]), base_url="http://ingest")
            if "ingest" in apps
            else httpx.AsyncClient()
        )
        gateway = await stack.enter_async_context(
            httpx.AsyncClient(transport=httpx.ASGITransport(app=apps["gateway"]), base_url="http://gateway")
            if "gateway" in apps
            else httpx.AsyncClient()
        )
        yield InProcessStack(ingest, gateway, apps)
