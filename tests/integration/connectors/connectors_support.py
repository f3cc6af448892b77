"""The connectors against the fake Google APIs and the real ingest → broker → attribution path."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.settings import DatabaseSettings, KafkaSettings
from libs.common.tenancy import create_tenant, webhook_secrets
from libs.common.testing.stack import TEST_SECRET_KEY, in_process_stack
from services.connectors.adapters.google import GoogleSessions
from services.connectors.adapters.http import RetryPolicy
from services.connectors.adapters.ingest import IngestPoster
from services.connectors.adapters.microsoft import MicrosoftSessions
from services.connectors.adapters.store import MailboxStore
from services.connectors.handlers import SyncDeps, connect_mailboxes
from services.connectors.settings import ConnectorsOptions
from tests.integration.pipeline_support import drained
from tests.integration.polling import eventually

from .google_fake import FakeGoogle, serving
from .graph_fake import LOGIN, FakeGraph

TENANT = "acme"
PUSH_BASE = "https://spm.example.com"
DIRECTORY = "7f3c2a1e-contoso-directory"
CLIENT_ID = "0b1c2d3e-app-client-id"
CLIENT_SECRET = "app~secret~value~never~printed"
CLIENT_EMAIL = "spm-connector@acme-project.iam.gserviceaccount.com"


def service_account_key(token_uri: str) -> tuple[str, bytes]:
    """A throwaway service-account key file (JSON) and its public key, for the fake to verify."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    info = {
        "type": "service_account",
        "project_id": "acme-project",
        "private_key_id": "0123456789abcdef",
        "private_key": private_pem,
        "client_email": CLIENT_EMAIL,
        "client_id": "100000000000000000001",
        "token_uri": token_uri,
    }
    return json.dumps(info), public_pem


class ToFake(httpx.BaseTransport):
    """Sends requests for a public host (MSAL accepts only an https authority) to a local fake."""

    def __init__(self, base_url: str) -> None:
        self._base = httpx.URL(base_url)
        self._inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.url = request.url.copy_with(
            scheme=self._base.scheme, host=self._base.host, port=self._base.port
        )
        return self._inner.handle_request(request)

    def close(self) -> None:
        self._inner.close()


@dataclass
class Harness:
    fake: FakeGoogle
    graph: FakeGraph
    service_account: str
    deps: SyncDeps
    ingest: httpx.AsyncClient
    db: AsyncEngine
    sleeps: list[float] = field(default_factory=list)


async def setup_tenant(db: AsyncEngine, settings: dict[str, Any]) -> None:
    async with db.begin() as conn:
        await create_tenant(conn, TENANT, TEST_SECRET_KEY)
        await conn.execute(
            text("UPDATE tenants SET settings = CAST(:s AS jsonb) WHERE tenant_id = :t"),
            {"s": json.dumps(settings), "t": TENANT},
        )


async def newest_secret(db: AsyncEngine, source: str) -> str:
    async with db.connect() as conn:
        return (await webhook_secrets(conn, TENANT, source, TEST_SECRET_KEY))[0]


@asynccontextmanager
async def harness(
    kafka: KafkaSettings,
    database: DatabaseSettings,
    db: AsyncEngine,
    tenant_settings: dict[str, Any],
    **options: Any,
) -> AsyncIterator[Harness]:
    """Fake Google and Graph on 127.0.0.1, ingest + attribution in-process, and the connectors' collaborators."""
    await setup_tenant(db, tenant_settings)
    async with in_process_stack(kafka, database, ("ingest", "attribution")) as stack:
        fake = FakeGoogle(b"", CLIENT_EMAIL)
        graph = FakeGraph(DIRECTORY, CLIENT_ID, CLIENT_SECRET)

        async def validate(url: str) -> tuple[int, str, str]:
            # Graph calls the public notification URL; here that is the in-process ingest.
            answer = await stack.ingest.post(url.removeprefix(PUSH_BASE))
            return answer.status_code, answer.headers.get("content-type", ""), answer.text

        graph.validator = validate
        async with serving(fake.app()) as base_url, serving(graph.app()) as graph_url:
            fake.base_url = base_url
            graph.base_url = graph_url
            service_account, public_pem = service_account_key(f"{base_url}/token")
            fake.public_key_pem = public_pem
            sleeps: list[float] = []

            async def record_sleep(seconds: float) -> None:
                sleeps.append(seconds)

            retry = RetryPolicy(max_attempts=4, initial_seconds=0.5, max_seconds=5.0, sleep=record_sleep)
            settings = ConnectorsOptions(
                ingest_url="http://ingest",
                gmail_base_url=base_url,
                calendar_base_url=base_url,
                graph_base_url=graph_url,
                **options,
            )
            async with httpx.AsyncClient() as vendor:
                with httpx.Client(mounts={LOGIN: ToFake(graph_url)}) as token_client:
                    store = MailboxStore(db, TEST_SECRET_KEY)
                    google = GoogleSessions(vendor, token_client, retry, base_url, base_url)
                    poster = IngestPoster(stack.ingest, "http://ingest", store.newest_secret, retry)
                    microsoft = MicrosoftSessions(vendor, token_client, retry, graph_url, LOGIN)
                    deps = SyncDeps(store, poster, google, microsoft, settings)
                    yield Harness(fake, graph, service_account, deps, stack.ingest, db, sleeps)


async def make_due(db: AsyncEngine) -> None:
    """Skip the wait until the next periodic sync (what time would do)."""
    async with db.begin() as conn:
        await conn.execute(text("UPDATE connector_mailboxes SET next_sync_at = now()"))


async def activities(
    db: AsyncEngine,
    kafka: KafkaSettings,
    source: str,
    expected: int,
    within: float = 60.0,
    until: Callable[[list[dict[str, Any]]], bool] = lambda rows: True,
) -> list[dict[str, Any]]:
    """The tenant's activities of ``source`` once ``expected`` are there and ``until`` holds, and
    attribution took everything ingest published (anything published twice would show)."""

    async def stored() -> list[dict[str, Any]]:
        async with db.connect() as conn:
            return [
                dict(r._mapping)
                for r in await conn.execute(
                    text(
                        "SELECT external_id, kind, direction, outcome, occurred_at, thread_id, ical_uid, "
                        "payload->>'subject' AS subject FROM activities WHERE tenant_id = :t AND source = :s "
                        "ORDER BY external_id"
                    ),
                    {"t": TENANT, "s": source},
                )
            ]

    rows: list[dict[str, Any]] = await eventually(
        stored, lambda got: len(got) >= expected and until(got), within, f"{expected} activities of {source}"
    )
    # Anything published twice has landed too.
    await drained(kafka, metrics_runs=False)
    async with db.connect() as conn:
        count = await conn.scalar(
            text("SELECT count(*) FROM activities WHERE tenant_id = :t AND source = :s"),
            {"t": TENANT, "s": source},
        )
    assert count == len(rows), (count, len(rows))
    return rows


def now_utc() -> datetime:
    return datetime.now(UTC)


async def connect_google(
    store: MailboxStore,
    kind: str,
    addresses: Sequence[str],
    *,
    now: datetime,
    tenant: str = TENANT,
    credentials: str = "{}",
    options: dict[str, Any] | None = None,
    backfill_days: int = 1,
) -> list[int]:
    """Connect ``tenant``'s Google ``kind`` (``gmail`` or ``google-calendar``) ``addresses``,
    each due for a backfill of ``backfill_days`` before ``now``."""
    return await connect_mailboxes(
        store,
        tenant,
        kind,
        vendor="google",
        credentials=credentials,
        options=options or {},
        addresses=addresses,
        backfill_days=backfill_days,
        now=now,
    )
