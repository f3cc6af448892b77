"""``spm rebuild-deal-engagement`` recomputes a tenant's kept deal engagement from its contributions."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from typer.testing import CliRunner, Result

from spm.cli import _register_commands, app
from tests.integration.metrics.metrics_support import apply, attributed, create_tenant

AT = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)


async def test_the_rebuild_writes_every_engaged_deal_of_one_tenant_or_all_and_refuses_an_unknown_one(
    database_url: str, db_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    await create_tenant(db_engine)
    await create_tenant(db_engine, "globex")
    await apply(
        db_engine,
        [
            attributed(activity=1, deal_id="d1", occurred_at=AT, external_contact_ids=("c1",)),
            attributed(activity=2, deal_id="d2", occurred_at=AT, external_contact_ids=("c1", "c2")),
            attributed(activity=3, deal_id=None, occurred_at=AT),
        ],
    )
    _register_commands()

    result = await _invoke(["rebuild-deal-engagement", "--tenant", "acme"])

    assert result.exit_code == 0, result.output
    assert result.output == "acme: 2 deals' engagement rebuilt\n"
    every = await _invoke(["rebuild-deal-engagement"])
    assert every.exit_code == 0, every.output
    assert every.output == "acme: 2 deals' engagement rebuilt\nglobex: 0 deals' engagement rebuilt\n"
    async with db_engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT deal_id, last_activity_at, contact_ids FROM metric_deal_engagement ORDER BY deal_id")
        )
        assert [(r.deal_id, r.last_activity_at, sorted(r.contact_ids)) for r in rows] == [
            ("d1", AT, ["c1"]),
            ("d2", AT, ["c1", "c2"]),
        ]
        pending = await conn.execute(text("SELECT count(*) FROM metric_deal_engagement_changes"))
        assert pending.scalar_one() == 0  # what the batch logged is superseded by the rebuild

    missing = await _invoke(["rebuild-deal-engagement", "--tenant", "nobody"])
    assert missing.exit_code == 1
    assert "no tenant 'nobody'" in missing.output


async def _invoke(args: list[str]) -> Result:
    # The command runs its own event loop: keep it off the test's.
    return await asyncio.to_thread(CliRunner().invoke, app, args)
