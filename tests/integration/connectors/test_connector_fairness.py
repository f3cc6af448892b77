"""One tenant's mailbox that its provider keeps waiting never holds back another tenant's."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.settings import DatabaseSettings, KafkaSettings
from libs.common.tenancy import create_tenant
from libs.common.testing.stack import TEST_SECRET_KEY
from services.connectors.handlers import sync_forever
from tests.integration.polling import eventually

from .connectors_support import TENANT, connect_google, harness, now_utc

ANA = "ana@acme.example"
GIA = "gia@globex.example"
BUYER = "Buyer <buyer@initech.example>"


async def _globex_messages(db: AsyncEngine) -> list[str]:
    async with db.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT external_id FROM activities WHERE tenant_id = 'globex' AND source = 'gmail' ORDER BY 1"
            )
        )
        return [r.external_id for r in rows]


async def test_a_mailbox_its_provider_keeps_waiting_does_not_hold_back_another_tenant_s(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """Acme's Gmail never answers (a provider hanging up to its timeouts, or a backfill of years of
    mail: hours of pages); Globex's mailbox keeps syncing meanwhile. The loop waited for every
    mailbox of a pass before claiming the next: Globex's new mail waited for Acme's."""
    async with harness(
        kafka_settings, database_settings, db_engine, {}, poll_seconds=0.05, concurrency=4
    ) as h:
        async with db_engine.begin() as conn:
            await create_tenant(conn, "globex", TEST_SECRET_KEY)
        now = now_utc()
        h.fake.add_message(ANA, "a-1", now - timedelta(hours=3), BUYER, ANA)
        h.fake.add_message(GIA, "g-1", now - timedelta(hours=2), BUYER, GIA)
        stuck = h.fake.holds[("profile", ANA)] = asyncio.Event()
        for tenant, address in ((TENANT, ANA), ("globex", GIA)):
            await connect_google(
                h.deps.store,
                "gmail",
                [address],
                tenant=tenant,
                credentials=h.service_account,
                options={"pubsub_topic": f"projects/{tenant}/topics/spm-gmail"},
                now=now,
            )
        stop = asyncio.Event()
        loop = asyncio.create_task(sync_forever(h.deps, stop))
        try:
            await eventually(lambda: _globex_messages(db_engine), lambda got: len(got) == 1, 30, "g-1")
            # New mail for Globex, due now (a push would do the same).
            h.fake.add_message(GIA, "g-2", now_utc(), BUYER, GIA)
            async with db_engine.begin() as conn:
                await conn.execute(
                    text("UPDATE connector_mailboxes SET next_sync_at = now() WHERE tenant_id = 'globex'")
                )
            got = await eventually(lambda: _globex_messages(db_engine), lambda got: len(got) == 2, 10, "g-2")
            assert got == ["<g-1@mail.example>", "<g-2@mail.example>"]
            assert not loop.done()
            async with db_engine.connect() as conn:
                acme = (
                    await conn.execute(
                        text(
                            "SELECT fetched, leased_until IS NOT NULL AS leased FROM connector_mailboxes WHERE tenant_id = 'acme'"
                        )
                    )
                ).one()
            assert (acme.fetched, acme.leased) == (0, True)
        finally:
            stuck.set()
            stop.set()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(loop, 30)
        # Acme's mailbox, answered at last, is synced before the loop stops.
        assert loop.done()
        assert loop.exception() is None
        async with db_engine.connect() as conn:
            fetched = await conn.scalar(
                text("SELECT fetched FROM connector_mailboxes WHERE tenant_id = 'acme'")
            )
        assert fetched == 1
