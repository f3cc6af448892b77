"""Made-up session cookies (anyone can send them) must not evict live sessions from the gateway's
cache: counted in reads of the real database."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.tenancy import Scope, create_tenant
from libs.common.testing.stack import TEST_SECRET_KEY
from services.gateway.adapters.credentials import create_session
from services.gateway.auth import SessionAuthenticator
from tests.integration.common.test_tenant_caches_unknown_tenants import counted_reads


async def test_made_up_cookies_do_not_evict_a_live_session(db_engine: AsyncEngine) -> None:
    async with db_engine.begin() as conn:
        await create_tenant(conn, "acme-cookies", TEST_SECRET_KEY)
        token, stored = await create_session(
            conn,
            tenant_id="acme-cookies",
            subject="ana",
            key_id=None,
            scopes=frozenset({Scope.READ}),
            expires_at=datetime.now(UTC) + timedelta(hours=1),
            pepper=TEST_SECRET_KEY,
        )
    sessions = SessionAuthenticator(db_engine, TEST_SECRET_KEY, 600, max_entries=100, max_unknown=100)
    caller = await sessions.caller(token)
    assert caller is not None
    assert caller.session_id == stored.session_id
    for _ in range(300):  # three times as many as the cache holds
        assert await sessions.caller(f"{secrets.token_hex(8)}.{secrets.token_urlsafe(32)}") is None
    with counted_reads(db_engine, "gateway_sessions") as reads:
        again = await sessions.caller(token)
        assert again is not None
        assert again.session_id == stored.session_id
        assert reads == []  # still cached: no read
