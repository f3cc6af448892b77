"""The built-in dashboard in headless Chromium against a small demo stack over real HTTP.

Real broker and PostgreSQL; ingest, attribution, metrics and the gateway in-process; the
gateway served by uvicorn on 127.0.0.1 so the browser reaches it. Leaves
test-artifacts/dashboard.png and test-artifacts/leaderboard-latency.txt behind.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.settings import DatabaseSettings, KafkaSettings
from libs.common.tenancy import create_tenant
from libs.common.testing.stack import TEST_SECRET_KEY, in_process_stack
from spm.demo import DemoDataset, generate_demo

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
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def _require_browser() -> None:
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


async def _load_demo(ingest: httpx.AsyncClient, key: str, data: DemoDataset) -> int:
    headers = {"Authorization": f"Bearer {key}"}
    for i in range(0, len(data.entities), 500):
        response = await ingest.post(
            "/v1/crm/sync", json={"source": "demo", "entities": data.entities[i : i + 500]}, headers=headers
        )
        assert response.status_code == 202, response.text
    await asyncio.sleep(1.0)  # let the reference data land before the activities
    accepted = 0
    for i in range(0, len(data.activities), 500):
        response = await ingest.post(
            "/v1/events", json={"activities": data.activities[i : i + 500]}, headers=headers
        )
        assert response.status_code == 202, response.text
        accepted += int(response.json()["accepted"])
    return accepted


def _fresh_emails(data: DemoDataset, rep_id: str, count: int) -> list[dict[str, Any]]:
    """``count`` outbound emails by ``rep_id`` to one of its contacts, at the demo's last moment.

    Sent then, they land in the leaderboard's latest period whatever the weekday the test runs.
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
            "external_id": f"live-{rep_id}-{n}",
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


async def _wait_until_scored(engine: AsyncEngine, activities: int) -> None:
    """Every activity attributed and counted, and the read models refreshed once after that."""
    deadline = time.monotonic() + 120
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
    raise AssertionError(f"demo not scored within 120 s: {row}")


async def _leaderboard_latency(base: str, key: str, rounds: int = 200) -> str:
    timings: list[float] = []
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {key}"}) as client:
        for _ in range(rounds):
            started = time.perf_counter()
            response = await client.get("/v1/leaderboard?period=week&metric=score")
            timings.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200
    timings.sort()
    p50 = statistics.median(timings)
    p99 = timings[int(len(timings) * 0.99) - 1]
    return f"GET /v1/leaderboard on the demo data over HTTP, {rounds} requests: p50 {p50:.1f} ms, p99 {p99:.1f} ms"


async def test_dashboard_signs_in_and_shows_the_demo_tenant(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    _require_browser()
    from playwright.async_api import async_playwright, expect

    async with db_engine.begin() as conn:
        tenant = await create_tenant(conn, "demo", TEST_SECRET_KEY)
    keys: dict[str, str] = tenant["api_keys"]  # type: ignore[assignment]
    data = generate_demo(reps=6, days=28, accounts=30)
    async with in_process_stack(kafka_settings, database_settings) as stack:
        accepted = await _load_demo(stack.ingest, keys["ingest"], data)
        assert accepted == len(data.activities)
        await _wait_until_scored(db_engine, accepted)
        async with served(stack.apps["gateway"]) as base:
            ARTIFACTS.mkdir(exist_ok=True)
            latency = await _leaderboard_latency(base, keys["read"])
            (ARTIFACTS / "leaderboard-latency.txt").write_text(latency + "\n")
            print(latency)

            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
                try:
                    context = await browser.new_context(viewport={"width": 1440, "height": 1000})
                    page = await context.new_page()
                    # The page's CSP forbids inline script and style: any violation is a failure.
                    violations: list[str] = []
                    page.on(
                        "console",
                        lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None,
                    )
                    page.on("pageerror", lambda e: violations.append(str(e)))
                    urls: list[str] = []
                    context.on("request", lambda r: urls.append(r.url))
                    await page.goto(base + "/")
                    await expect(page.locator("#sign-in")).to_be_visible()
                    await page.fill("#api-key", keys["read"])
                    await page.click("#sign-in-form button[type=submit]")

                    rows = page.locator("#leaderboard tbody tr")
                    await expect(rows).to_have_count(6, timeout=30_000)
                    await expect(page.locator("#live")).to_have_class("live on", timeout=30_000)
                    # The top rep is selected: its trend chart and funnel are drawn.
                    await expect(page.locator("#trend svg path.line")).to_have_count(1, timeout=30_000)
                    await expect(page.locator("#funnel .funnel-row")).to_have_count(6)
                    # Live: activities scored after sign-in reach the open page over the SSE stream.
                    last = await rows.nth(5).get_attribute("data-rep")
                    assert last is not None
                    last_value = page.locator(f'#leaderboard tbody tr[data-rep="{last}"] td.num')
                    before = await last_value.inner_text()
                    fresh = _fresh_emails(data, last, 12)
                    posted = await stack.ingest.post(
                        "/v1/events",
                        json={"activities": fresh},
                        headers={"Authorization": f"Bearer {keys['ingest']}"},
                    )
                    assert posted.status_code == 202, posted.text
                    await expect(last_value).not_to_have_text(before, timeout=60_000)

                    second = await rows.nth(1).get_attribute("data-rep")
                    await rows.nth(1).click()
                    await expect(page.locator("#trend-rep")).to_contain_text(
                        next(
                            e["name"]
                            for e in data.entities
                            if e["entity_type"] == "rep" and e["id"] == second
                        )
                    )
                    await expect(page.locator("#trend svg circle.point").first).to_be_visible()

                    # Follow one of the rep's deals to its timeline with the attribution explanation.
                    chip = page.locator("#rep-deals .chip").first
                    await expect(chip).to_be_visible(timeout=30_000)
                    deal_id = await chip.get_attribute("data-deal")
                    await chip.click()
                    items = page.locator("#timeline li.item")
                    await expect(items.first).to_be_visible(timeout=30_000)
                    await expect(page.locator("#timeline .rule-path").first).not_to_have_text("n/a")
                    await expect(page.locator("#deal-name")).not_to_be_empty()
                    async with httpx.AsyncClient(base_url=base) as client:
                        timeline = await client.get(
                            f"/v1/deals/{deal_id}/activities?limit=20",
                            headers={"Authorization": f"Bearer {keys['read']}"},
                        )
                    assert await items.count() == len(timeline.json()["items"])

                    await page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)

                    # The key was exchanged for an httpOnly cookie: the page holds no credential,
                    # and none went into a URL (the stream included).
                    assert await page.evaluate("document.cookie") == ""
                    assert await page.evaluate("sessionStorage.length + localStorage.length") == 0
                    assert await page.input_value("#api-key") == ""
                    assert any("/v1/stream/leaderboard?" in u for u in urls)
                    assert not [u for u in urls if "access_token" in u or keys["read"] in u]
                    (cookie,) = await context.cookies()
                    assert (cookie["name"], cookie["httpOnly"], cookie["sameSite"]) == (
                        "spm_session",
                        True,
                        "Strict",
                    )

                    # Another tab of this browser shares the session: no second sign-in.
                    tab = await context.new_page()
                    await tab.goto(base + "/")
                    await expect(tab.locator("#leaderboard tbody tr")).to_have_count(6, timeout=30_000)
                    await expect(tab.locator("#live")).to_have_class("live on", timeout=30_000)
                    await tab.close()

                    # Signing out ends the session on the server, not only in the page.
                    await page.click("#sign-out")
                    await expect(page.locator("#sign-in")).to_be_visible()
                    status = await page.evaluate("fetch('/v1/session').then((r) => r.status)")
                    assert status == 401
                    assert await context.cookies() == []
                    assert violations == []
                finally:
                    await browser.close()
