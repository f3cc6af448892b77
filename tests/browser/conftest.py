"""One demo stack for the browser tests: the demo tenant loaded and scored once per module.

Real broker and PostgreSQL; ingest, attribution, metrics and the gateway in-process; the
gateway served by uvicorn on 127.0.0.1 so the browser reaches it. Screenshots and figures go
to ``$SPM_TEST_ARTIFACTS`` (default: test-artifacts/ at the repository root, git-ignored).
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.db.engine import make_engine
from libs.common.settings import DatabaseSettings
from libs.common.tenancy import create_tenant
from libs.common.testing.engines import Engines, isolated_topics
from libs.common.testing.stack import TEST_SECRET_KEY, InProcessStack, in_process_stack
from spm.demo import DemoDataset, generate_demo
from tests.integration.polling import references_landed

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def artifacts_dir() -> Path:
    folder = Path(
        os.environ.get("SPM_TEST_ARTIFACTS") or Path(__file__).resolve().parents[2] / "test-artifacts"
    )
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def require_browser() -> None:
    try:
        import playwright  # noqa: F401
    except ImportError:
        missing = "playwright is not installed (pip install playwright; never `playwright install`)"
    else:
        missing = "" if CHROMIUM.exists() else "chromium is missing: run scripts/install-system-deps.sh"
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(missing)
        pytest.skip(missing)


@asynccontextmanager
async def served(app: FastAPI) -> AsyncIterator[str]:
    """Serve an app whose lifespan already runs (the stack's) on a free port of 127.0.0.1."""
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    )
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.05)
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        server.should_exit = True
        await task


async def load_demo(ingest: httpx.AsyncClient, engine: AsyncEngine, key: str, data: DemoDataset) -> int:
    """``data`` into the demo tenant: its CRM entities, once attribution holds them its activities."""
    headers = {"Authorization": f"Bearer {key}"}
    for i in range(0, len(data.entities), 500):
        response = await ingest.post(
            "/v1/crm/sync", json={"source": "demo", "entities": data.entities[i : i + 500]}, headers=headers
        )
        assert response.status_code == 202, response.text
    await references_landed(engine, "demo", data.entities)
    accepted = 0
    for i in range(0, len(data.activities), 500):
        response = await ingest.post(
            "/v1/events", json={"activities": data.activities[i : i + 500]}, headers=headers
        )
        assert response.status_code == 202, response.text
        accepted += int(response.json()["accepted"])
    return accepted


def fresh_emails(data: DemoDataset, rep_id: str, count: int) -> list[dict[str, Any]]:
    """``count`` outbound emails by ``rep_id`` to one of its contacts, at the demo's last moment.

    Sent then, they land in the period in progress whatever the weekday the test runs.
    """
    rep = next(e for e in data.entities if e["entity_type"] == "rep" and e["id"] == rep_id)
    # A contact on one of the rep's own deals, so the emails join that rep's pipeline.
    accounts = {
        e["account_id"] for e in data.entities if e["entity_type"] == "deal" and e["owner_rep_id"] == rep_id
    }
    contact = next(e for e in data.entities if e["entity_type"] == "contact" and e["account_id"] in accounts)
    sent = max(datetime.fromisoformat(a["occurred_at"].replace("Z", "+00:00")) for a in data.activities)
    return [
        {
            "source": "mail",
            "external_id": f"live-{rep_id}-{n}-{uuid.uuid4().hex[:6]}",
            "kind": "email",
            "direction": "outbound",
            "outcome": "sent",
            "occurred_at": (sent + timedelta(seconds=n)).isoformat().replace("+00:00", "Z"),
            "participants": [
                {"email": rep["emails"][0], "role": "from"},
                {"email": contact["emails"][0], "role": "to"},
            ],
        }
        for n in range(count)
    ]


async def wait_until_scored(engine: AsyncEngine, activities: int) -> None:
    """Every activity attributed and counted, and the read models refreshed once after that."""
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        async with engine.connect() as conn:
            row = (
                await conn.execute(
                    text(
                        "SELECT (SELECT count(*) FROM attributions) AS attributed, "
                        "(SELECT count(*) FROM metric_contributions) AS counted, "
                        "(SELECT count(*) FROM metric_refresh_state WHERE dirty_since IS NULL "
                        " AND refreshed_at IS NOT NULL) AS refreshed"
                    )
                )
            ).one()
        if row.attributed == activities and row.counted == activities and row.refreshed == 1:
            return
        await asyncio.sleep(0.5)
    raise AssertionError(f"demo not scored within 240 s: {row}")


@dataclass
class DemoSite:
    base: str
    keys: dict[str, str]
    data: DemoDataset
    stack: InProcessStack
    engine: AsyncEngine
    artifacts: Path

    def api(self, key: str = "read") -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.base, headers={"Authorization": f"Bearer {self.keys[key]}"})


@pytest.fixture(scope="module")
def browser_ready() -> None:
    require_browser()


@pytest.fixture(scope="module")
async def demo_site(engines: Engines, browser_ready: None) -> AsyncIterator[DemoSite]:
    """The demo tenant (6 reps, 28 days, two regions over four teams) scored and served."""
    name = engines.new_database()
    database = DatabaseSettings(url=engines.postgres.url(name), pool_size=5)
    engine = make_engine(database, "tests")
    try:
        async with engine.begin() as conn:
            tenant = await create_tenant(conn, "demo", TEST_SECRET_KEY)
        keys: dict[str, str] = tenant["api_keys"]  # type: ignore[assignment]
        data = generate_demo(reps=6, days=28, accounts=30)
        async with (
            isolated_topics(engines, partitions=2) as kafka,
            in_process_stack(kafka, database) as stack,
        ):
            accepted = await load_demo(stack.ingest, engine, keys["ingest"], data)
            assert accepted == len(data.activities)
            await wait_until_scored(engine, accepted)
            async with served(stack.apps["gateway"]) as base:
                yield DemoSite(base, keys, data, stack, engine, artifacts_dir())
    finally:
        await engine.dispose()
        engines.drop_database(name)


@pytest.fixture(scope="module")
async def chromium(browser_ready: None) -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


@pytest.fixture
def page_errors() -> list[str]:
    """Page errors and CSP violations a test's pages report; every test asserts it stays empty."""
    return []
