"""The security tier's stack: ingest and the gateway in-process on the session's real engines."""

from __future__ import annotations

import io
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.logging import JsonFormatter
from libs.common.settings import DatabaseSettings, KafkaSettings, RuntimeSettings
from libs.common.tenancy import create_tenant
from libs.common.testing.stack import TEST_PUBLISH_TIMEOUT_SECONDS
from services.gateway.app import create_app as gateway_app
from services.gateway.settings import GatewayOptions, GatewaySettings
from services.ingest.app import create_app as ingest_app
from services.ingest.settings import IngestOptions, IngestSettings

PEPPER = "security-pepper-value-0123456789"


@dataclass
class Services:
    ingest: httpx.AsyncClient
    gateway: httpx.AsyncClient
    apps: dict[str, FastAPI]
    keys: dict[str, str]
    webhook_secrets: dict[str, str]
    engine: AsyncEngine
    log: io.StringIO


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """Every record of every logger, formatted by the services' JSON formatter."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(JsonFormatter("tests"))
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield buffer
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)


async def start(
    kafka: KafkaSettings,
    database: DatabaseSettings,
    db_engine: AsyncEngine,
    log: io.StringIO,
    stack: AsyncExitStack,
    gateway: GatewayOptions | None = None,
) -> Services:
    async with db_engine.begin() as conn:
        tenant = await create_tenant(conn, "acme", PEPPER)
    runtime = RuntimeSettings(secret_key=PEPPER)
    apps = {
        "ingest": ingest_app(
            IngestSettings(
                runtime=runtime,
                kafka=kafka,
                database=database,
                ingest=IngestOptions(publish_timeout_seconds=TEST_PUBLISH_TIMEOUT_SECONDS),
            )
        ),
        "gateway": gateway_app(
            GatewaySettings(
                runtime=runtime, kafka=kafka, database=database, gateway=gateway or GatewayOptions()
            )
        ),
    }
    for app in apps.values():
        await stack.enter_async_context(app.router.lifespan_context(app))
    clients = {
        name: await stack.enter_async_context(
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=f"http://{name}")
        )
        for name, app in apps.items()
    }
    return Services(
        clients["ingest"],
        clients["gateway"],
        apps,
        dict(tenant["api_keys"]),  # type: ignore[call-overload]
        dict(tenant["webhook_secrets"]),  # type: ignore[call-overload]
        db_engine,
        log,
    )


@pytest.fixture
async def services(
    kafka_settings: KafkaSettings,
    database_settings: DatabaseSettings,
    db_engine: AsyncEngine,
    json_log: io.StringIO,
) -> AsyncIterator[Services]:
    async with AsyncExitStack() as stack:
        yield await start(kafka_settings, database_settings, db_engine, json_log, stack)


def operations(app: FastAPI) -> list[tuple[str, str, dict[str, Any]]]:
    """(method, concrete path, operation) for every documented route, path parameters filled."""
    out = []
    for path, item in app.openapi()["paths"].items():
        for method, operation in item.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            concrete = path
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path":
                    concrete = concrete.replace("{" + parameter["name"] + "}", "x1")
            out.append((method.upper(), concrete, operation))
    return out


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def problem(response: httpx.Response) -> dict[str, Any]:
    assert response.headers["content-type"].startswith("application/problem+json"), response.text
    body: dict[str, Any] = response.json()
    return body
