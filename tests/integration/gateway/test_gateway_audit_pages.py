"""A page of the audit log holds at most a few MiB of before/after states, whatever ``limit``
says: a change of ``rep_aliases`` (up to 5 MB) records the whole mapping before and after, so a
page of 500 such entries could be gigabytes built in one gateway process for one request."""

from __future__ import annotations

import secrets

import httpx
import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from .gateway_support import Keys, bearer


async def test_a_page_of_large_entries_stops_at_its_byte_budget_and_the_cursor_walks_on(
    gateway: httpx.AsyncClient, keys: Keys, db_engine: AsyncEngine
) -> None:
    # Six settings changes, each 0.75 MB before and 0.75 MB after (random: not compressible).
    async with db_engine.begin() as conn:
        for n in range(1, 7):
            states = [
                orjson.dumps(
                    {"rep_aliases": {secrets.token_hex(64): secrets.token_hex(64) for _ in range(2_900)}}
                ).decode()
                for _ in range(2)
            ]
            await conn.execute(
                text(
                    "INSERT INTO audit_log (tenant_id, at, actor, credential, action, target, before, after) "
                    "VALUES ('acme', now() + make_interval(secs => :n), 'test', 'api_key', "
                    "'settings.changed', 'settings', CAST(:b AS jsonb), CAST(:a AS jsonb))"
                ),
                {"n": n, "b": states[0], "a": states[1]},
            )
    pages: list[int] = []
    seen = 0
    cursor = ""
    while True:
        answer = await gateway.get(
            f"/v1/audit?limit=100&action=settings.changed{cursor}", headers=bearer(keys.admin)
        )
        assert answer.status_code == 200, answer.text
        assert len(answer.content) < 6 * 1024 * 1024
        page = answer.json()
        pages.append(len(page["items"]))
        seen += len(page["items"])
        if page["next_cursor"] is None:
            break
        cursor = f"&cursor={page['next_cursor']}"
    assert (pages, seen) == ([3, 3], 6)
