"""A huge account's deal changed again and again: one waiting ``rematch`` job, not one per change.

A batch of deal changes whose window holds more than ``ATTRIBUTION_REMATCH_LIMIT`` activities
queues a ``rematch`` job that re-decides the window whole when it runs (reading the references as
they are then). A CRM (or a careless integration) toggling a champion on a deal of a huge account
queued one job per change, each re-deciding the whole window again: work growing with the number
of changes, not with what changed. A change whose window is already waiting in a queued job adds
nothing that job will not do.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.jobs import REMATCH
from libs.common.settings import DatabaseSettings, KafkaSettings
from libs.common.testing.stack import in_process_stack
from tests.integration.attribution.test_attribution_held_out_situations_rematch import (
    _account,
    _deal,
    _mail,
    _person,
    _rep,
)
from tests.integration.quarter.quarter_support import new_tenant, post, settle, sync

TOGGLES = 6


async def _rematch_jobs(engine: AsyncEngine, tenant_id: str) -> list[tuple[str, Any]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT state, parameters FROM settings_jobs WHERE tenant_id = :t AND kind = :k"),
            {"t": tenant_id, "k": REMATCH},
        )
        return [(r[0], r[1]) for r in rows]


async def test_a_deal_toggled_again_and_again_waits_in_one_rematch_job(
    kafka_settings: KafkaSettings,
    database_settings: DatabaseSettings,
    db_engine: AsyncEngine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ATTRIBUTION_REMATCH_LIMIT", "10")
    # The job worker looks once at start (nothing queued yet), then not again during the test:
    # the jobs the changes queue stay waiting, as behind another tenant's long job.
    monkeypatch.setenv("ATTRIBUTION_JOBS_INTERVAL_SECONDS", "3600")
    tenant = await new_tenant(db_engine)
    days = [date(2026, 10, 1) + timedelta(days=i) for i in range(40)]
    mails = [_mail(f"max-{d.isoformat()}", "ana", "max@mega.example", d.isoformat()) for d in days]
    async with in_process_stack(kafka_settings, database_settings) as stack:
        await sync(
            stack,
            db_engine,
            tenant,
            "2026-11-21T00:00:00Z",
            _rep("ana"),
            _account("mega"),
            _person("max", "mega"),
        )
        await post(stack, tenant, *mails)
        await settle(kafka_settings)
        for n in range(TOGGLES):
            # The renewal opens with Max its champion, loses him, gets him back...
            champions = ("max",) if n % 2 == 0 else ()
            at = f"2026-11-22T00:00:{n:02d}Z"
            await sync(stack, db_engine, tenant, at, _deal("mega2", "mega", "ana", "2026-10-20", *champions))
            await settle(kafka_settings)
        jobs = await _rematch_jobs(db_engine, tenant.tenant_id)
    # Each change's window is the same (the renewal's account and Max, since its opening less the
    # grace days): one job waiting, not one per change (there were 6).
    assert jobs == [
        (
            "queued",
            {
                "windows": [
                    {
                        "accounts": ["acc-mega"],
                        "contacts": ["con-max"],
                        "since": "2026-10-06T00:00:00+00:00",
                        "until": None,
                    }
                ]
            },
        )
    ]
