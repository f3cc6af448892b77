"""A mailbox is synced by one run at a time: a sync held past its lease is not claimed again by its
own loop, and a run whose lease another took (a stale run) changes nothing when it finishes."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.settings import DatabaseSettings, KafkaSettings
from libs.common.testing.stack import TEST_SECRET_KEY
from services.connectors.adapters.store import LeaseLost, MailboxStore
from services.connectors.handlers import sync_forever
from tests.integration.polling import eventually

from .connectors_support import connect_google, harness, now_utc, setup_tenant

ANA = "ana@acme.example"
BUYER = "Buyer <buyer@initech.example>"


async def _lease(db: AsyncEngine) -> Any:
    async with db.connect() as conn:
        return (
            await conn.execute(
                text(
                    "SELECT fetched, failures, last_error, leased_until, leased_until < now() AS expired, "
                    "next_sync_at, cursor, full_sync_page_token FROM connector_mailboxes WHERE address = :a"
                ),
                {"a": ANA},
            )
        ).one()


async def test_a_sync_held_past_its_lease_is_not_claimed_again_by_the_same_loop(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """Gmail keeps Ana's first request waiting past the lease (a slow vendor, 429 back-offs): the
    loop, with free slots and the mailbox's lease expired, started a second sync of it beside the
    first, and both saved the mailbox's state."""
    async with harness(
        kafka_settings, database_settings, db_engine, {}, poll_seconds=0.02, concurrency=4, lease_seconds=0.2
    ) as h:
        h.fake.add_message(ANA, "a-1", now_utc() - timedelta(hours=3), BUYER, ANA)
        stuck = h.fake.holds[("profile", ANA)] = asyncio.Event()
        await connect_google(h.deps.store, "gmail", [ANA], credentials=h.service_account, now=now_utc())

        def profile_calls() -> int:
            return sum(1 for op, user, _ in h.fake.requests if (op, user) == ("profile", ANA))

        stop = asyncio.Event()
        loop = asyncio.create_task(sync_forever(h.deps, stop))
        try:
            await eventually(lambda: asyncio.sleep(0, profile_calls()), lambda n: n >= 1, 10, "profile")
            await eventually(lambda: _lease(db_engine), lambda row: row.expired, 10, "lease expired")
            # Fifteen polls of the loop with the lease expired and slots free.
            await asyncio.sleep(0.3)
            assert profile_calls() == 1
        finally:
            stuck.set()
            stop.set()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(loop, 30)
        assert loop.exception() is None
        row = await _lease(db_engine)
        assert (row.fetched, row.failures, row.leased_until) == (1, 0, None)


async def test_a_stale_run_finishing_changes_nothing_of_the_live_run_s(db_engine: AsyncEngine) -> None:
    """Run A's lease expired and run B (another process) claimed the mailbox: A finishing released
    B's lease (B's mailbox open to a third run) and wrote its page token and counts over B's."""
    await setup_tenant(db_engine, {})
    store = MailboxStore(db_engine, TEST_SECRET_KEY)
    await connect_google(store, "gmail", [ANA], now=now_utc())
    [stale] = await store.claim_due(1, 0.05, 0, 1)
    await eventually(lambda: _lease(db_engine), lambda row: row.expired, 10, "lease expired")
    [live] = await store.claim_due(1, 300, 0, 1)
    assert live.claimed_at is not None
    assert stale.claimed_at is not None
    assert live.claimed_at > stale.claimed_at
    before = await _lease(db_engine)

    for write in (
        store.save_full_sync(stale, "stale-page", "99", 5, 300),
        store.save_cursor_page(stale, "stale-cursor", 5, 300),
        store.advance_cursor(stale, "stale-cursor", 5),
        store.finish_full_sync(stale, "stale-cursor", 5),
    ):
        try:
            await write
        except LeaseLost:
            pass
        else:
            raise AssertionError("a stale run's page save went through")
    await store.record_failure(stale, "late 503", 60)
    await store.record_success(stale, 60)
    assert await _lease(db_engine) == before
    assert (before.fetched, before.failures, before.cursor, before.full_sync_page_token) == (0, 0, None, None)
    assert before.leased_until is not None
    assert not before.expired

    await store.save_full_sync(live, "live-page", "42", 3, 300)
    await store.record_success(live, 60)
    after = await _lease(db_engine)
    assert (after.fetched, after.leased_until, after.full_sync_page_token) == (3, None, "live-page")
