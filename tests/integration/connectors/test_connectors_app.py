"""``spm run connectors``: the app's lifespan runs the sync loop; health and metrics are served."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.settings import DatabaseSettings, RuntimeSettings
from libs.common.testing.stack import TEST_SECRET_KEY
from services.connectors.adapters.store import MailboxStore
from services.connectors.app import create_app
from services.connectors.settings import ConnectorsOptions, ConnectorsSettings
from tests.integration.polling import eventually

from .connectors_support import connect_google, setup_tenant


async def test_the_process_serves_health_and_exports_lag_by_provider_only(
    database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    await setup_tenant(db_engine, {})
    store = MailboxStore(db_engine, TEST_SECRET_KEY)
    await connect_google(store, "google-calendar", ["ana@acme.example"], now=datetime.now(UTC))
    # Synced 90 s ago and not due again: the loop only measures.
    async with db_engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE connector_mailboxes SET last_success_at = now() - interval '90 seconds', "
                "next_sync_at = now() + interval '1 hour', full_sync_since = NULL"
            )
        )
    settings = ConnectorsSettings(
        runtime=RuntimeSettings(secret_key=TEST_SECRET_KEY),
        database=database_settings,
        connectors=ConnectorsOptions(poll_seconds=0.05),
    )
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://connectors") as client,
    ):
        assert (await client.get("/healthz")).json() == {"status": "ok", "service": "connectors"}
        assert (await client.get("/readyz")).json() == {"ready": True, "checks": {"database": True}}

        async def lag_lines() -> list[str]:
            metrics = (await client.get("/metrics")).text
            return [line for line in metrics.splitlines() if line.startswith("spm_connector_lag_seconds{")]

        def of_calendar(lines: list[str]) -> list[str]:
            return [
                line
                for line in lines
                if line.startswith('spm_connector_lag_seconds{provider="google-calendar"}')
            ]

        # The loop's first pass; it returns as soon as it shows.
        lines = await eventually(lag_lines, lambda got: bool(of_calendar(got)), 60, "the calendar's lag")
        calendar = of_calendar(lines)
        # Labelled by provider only (other tests of the session may have added other providers).
        assert all(
            line.startswith('spm_connector_lag_seconds{provider="') and line.count("=") == 1 for line in lines
        )
        assert len(calendar) == 1
        assert float(calendar[0].split(" ")[1]) >= 90
