"""The connectors process: the sync loop as a lifespan task, and health / metrics routes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI

from libs.common.db.engine import database_reachable, make_engine
from libs.common.health import health_router
from libs.common.web import install_common_handlers
from services.connectors.adapters.google import GoogleSessions
from services.connectors.adapters.http import RetryPolicy
from services.connectors.adapters.ingest import IngestPoster
from services.connectors.adapters.microsoft import MicrosoftSessions
from services.connectors.adapters.store import MailboxStore
from services.connectors.handlers import SyncDeps, sync_forever
from services.connectors.settings import ConnectorsOptions, ConnectorsSettings

SERVICE = "connectors"
log = logging.getLogger(__name__)


def retry_policy(options: ConnectorsOptions) -> RetryPolicy:
    return RetryPolicy(options.max_attempts, options.backoff_initial_seconds, options.backoff_max_seconds)


@asynccontextmanager
async def sync_deps(
    settings: ConnectorsSettings, ingest_client: httpx.AsyncClient | None = None
) -> AsyncIterator[SyncDeps]:
    """Everything a sync needs, opened together and closed on exit (the CLI uses it too)."""
    options = settings.connectors
    engine = make_engine(settings.database, SERVICE)
    timeout = httpx.Timeout(options.request_timeout_seconds)
    try:
        async with (
            httpx.AsyncClient(timeout=timeout) as vendor_client,
            httpx.AsyncClient(timeout=timeout) if ingest_client is None else ingest_client as to_ingest,
        ):
            with httpx.Client(timeout=timeout) as token_client:
                store = MailboxStore(engine, settings.runtime.secret_key.get_secret_value())
                google = GoogleSessions(
                    vendor_client,
                    token_client,
                    retry_policy(options),
                    options.gmail_base_url,
                    options.calendar_base_url,
                )
                ingest = IngestPoster(
                    to_ingest, options.ingest_url, store.newest_secret, retry_policy(options)
                )
                microsoft = MicrosoftSessions(
                    vendor_client,
                    token_client,
                    retry_policy(options),
                    options.graph_base_url,
                    options.login_base_url,
                )
                yield SyncDeps(store, ingest, google, microsoft, options)
    finally:
        await engine.dispose()


def create_app(settings: ConnectorsSettings | None = None) -> FastAPI:
    settings = settings or ConnectorsSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with sync_deps(settings) as deps:
            app.state.engine = deps.store.engine
            stop = asyncio.Event()

            async def supervise() -> None:
                try:
                    await sync_forever(deps, stop)
                except Exception:
                    # Per-mailbox failures never get here; this is the database or a bug: restart.
                    log.exception("connector loop failed")
                    fatal = getattr(app.state, "fatal", None)
                    if fatal is not None:
                        fatal.set()
                    raise

            task = asyncio.create_task(supervise(), name=f"{SERVICE}-sync")
            try:
                yield
            finally:
                stop.set()
                try:
                    await asyncio.wait_for(task, timeout=20)
                except Exception:
                    task.cancel()

    app = FastAPI(title="SPM connectors", version="1.0.0", lifespan=lifespan)
    install_common_handlers(app, SERVICE)

    async def _db_ready() -> bool:
        return await database_reachable(app.state.engine)

    app.include_router(health_router(SERVICE, {"database": _db_ready}))
    return app
