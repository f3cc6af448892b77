"""An admin (or a script) flipping the tenant's phone region back and forth: a bounded number
of ``reread_phones`` jobs waiting, not one per change.

Each change of the region, while contacts keep unread phones, queues a ``reread_phones`` job
that ingest runs: it reads the region as it is when it runs (not the one the change named), over
every such contact of the tenant, and queues its own second pass. A waiting job of the same
region already does what another would; 40 flips queued 40 full passes (and 40 second passes).
"""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.jobs import REREAD_PHONES

from .gateway_support import Keys, bearer

FLIPS = 40


async def test_region_flips_leave_one_waiting_reread_per_region(
    gateway: httpx.AsyncClient, keys: Keys, db_engine: AsyncEngine
) -> None:
    async with db_engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO ref_contacts (tenant_id, contact_id, unread_phones, updated_at) "
                "VALUES ('acme', 'con-uk', ARRAY['020 7946 0958'], :at)"
            ),
            {"at": datetime(2026, 11, 2, tzinfo=UTC)},
        )
    answers = []
    for n in range(FLIPS):
        region = "GB" if n % 2 == 0 else "DE"
        answer = await gateway.patch(
            "/v1/settings", json={"default_phone_region": region}, headers=bearer(keys.admin)
        )
        assert answer.status_code == 200, answer.text
        answers.append(answer.json())
    async with db_engine.connect() as conn:
        waiting = (
            await conn.execute(
                text(
                    "SELECT parameters->>'region', count(*) FROM settings_jobs WHERE kind = :k "
                    "GROUP BY 1 ORDER BY 1"
                ),
                {"k": REREAD_PHONES},
            )
        ).all()
    # One per region named (no worker runs here: all still queued), not one per flip.
    assert [tuple(row) for row in waiting] == [("DE", 1), ("GB", 1)]
    # A flip back answers with the job still waiting for its region.
    assert answers[2]["jobs"] == answers[0]["jobs"] != answers[1]["jobs"]
    assert len(answers[0]["jobs"]) == 1
