"""Made-up tenant ids (a webhook names its tenant before it is verified) must not evict the
real tenants' cached settings and webhook secrets: counted in reads of the real database."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.tenancy import WebhookSecretCache, create_tenant
from libs.common.tenant_settings_store import TenantSettingsCache
from libs.common.testing.stack import TEST_SECRET_KEY

UNKNOWN = 2_000  # twice as many made-up tenants as the caches hold entries


@contextmanager
def counted_reads(engine: AsyncEngine, table: str) -> Iterator[list[str]]:
    reads: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if table in statement:
            reads.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", count)
    try:
        yield reads
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", count)


async def test_unknown_tenants_do_not_evict_a_real_tenants_settings_or_secrets(
    db_engine: AsyncEngine,
) -> None:
    async with db_engine.begin() as conn:
        await create_tenant(conn, "acme", TEST_SECRET_KEY, timezone="Europe/Paris")
    settings = TenantSettingsCache(db_engine, ttl_seconds=600, max_entries=1_000, max_unknown=1_000)
    secrets = WebhookSecretCache(
        db_engine, TEST_SECRET_KEY, ttl_seconds=600, max_entries=1_000, max_unknown=1_000
    )
    acme = await settings.get("acme")
    assert acme is not None
    assert acme.time_zone == "Europe/Paris"
    acme_secrets = await secrets.secrets("acme", "aircall")
    assert len(acme_secrets) == 1

    for n in range(UNKNOWN):
        assert await settings.get(f"made-up-{n}") is None
        assert await secrets.secrets(f"made-up-{n}", "aircall") == ()

    with (
        counted_reads(db_engine, "FROM tenants t") as settings_reads,
        counted_reads(db_engine, "FROM webhook_secrets") as secret_reads,
    ):
        assert await settings.get("acme") is acme
        assert await secrets.secrets("acme", "aircall") == acme_secrets
        assert (settings_reads, secret_reads) == ([], [])  # both still cached: no read
        # The newest unknown answers are cached too (one read each for the others).
        assert await settings.get(f"made-up-{UNKNOWN - 1}") is None
        assert settings_reads == []
        assert await settings.get("made-up-0") is None
        assert len(settings_reads) == 1
