"""A page of settings history holds at most a few MiB of documents, whatever ``limit`` says.

A tenant's settings grow by PATCH (``rep_aliases`` holds up to 10,000 entries of 256 characters
each side: 5 MB) and every change stores the whole document again, so 500 versions (the largest
page) could be 2.5 GB: built in one gateway process, for one request, it would take the
process, and every tenant it serves, down. The page stops before its documents pass
``SETTINGS_HISTORY_PAGE_BYTES`` (at least one version a page); the cursor walks the rest."""

from __future__ import annotations

import secrets

import httpx
import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from .gateway_support import Keys, bearer


async def test_a_page_of_large_versions_stops_at_its_byte_budget_and_the_cursor_walks_on(
    gateway: httpx.AsyncClient, keys: Keys, db_engine: AsyncEngine
) -> None:
    # Six versions of 1.5 MB each (random text: PostgreSQL cannot compress it away).
    async with db_engine.begin() as conn:
        for version in range(1, 7):
            aliases = {secrets.token_hex(64): secrets.token_hex(64) for _ in range(5_800)}
            await conn.execute(
                text(
                    "INSERT INTO tenant_settings_history (tenant_id, version, settings, changed, changed_by) "
                    "VALUES ('acme', :v, CAST(:s AS jsonb), ARRAY['rep_aliases'], 'test')"
                ),
                {"v": version, "s": orjson.dumps({"rep_aliases": aliases}).decode()},
            )
    pages: list[list[int]] = []
    cursor = ""
    while True:
        answer = await gateway.get(f"/v1/settings/history?limit=100{cursor}", headers=bearer(keys.admin))
        assert answer.status_code == 200, answer.text
        page = answer.json()
        pages.append([item["version"] for item in page["items"]])
        assert len(answer.content) < 6 * 1024 * 1024
        if page["next_cursor"] is None:
            break
        cursor = f"&cursor={page['next_cursor']}"
    assert pages == [[6, 5, 4], [3, 2, 1]]
