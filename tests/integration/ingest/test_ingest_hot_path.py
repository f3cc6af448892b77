"""The webhook hot path: cached secrets that still honour rotations, and duplicate bookkeeping
outside the publishing transaction (looked up before, recorded after the broker's ack)."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, event, text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.db.engine import make_engine
from libs.common.settings import DatabaseSettings, KafkaSettings
from libs.common.tenancy import (
    FRESH_NO_SECRET_SECONDS,
    WebhookSecretCache,
    add_webhook_secret,
    expire_old_webhook_secrets,
)
from libs.common.testing.stack import TEST_SECRET_KEY
from services.ingest.adapters.repository import SeenLedger, TenantDirectory

from .ingest_integration_support import (
    RECEIVED_AT,
    SECRETS,
    TENANT,
    activities_on_topic,
    fixture,
    ingest_client,
    setup_tenant,
    sign,
    url_for,
)

TWILIO_CURRENT, TWILIO_PREVIOUS = SECRETS["twilio"]


def callback(call_sid: str, sequence: int = 3) -> bytes:
    """The ``completed`` Twilio fixture for another call (and, optionally, another revision)."""
    body = fixture("twilio", "completed.txt").decode()
    body = body.replace("CA5f1c3b0a7e9d4c2b8a6f0e1d2c3b4a59", call_sid)
    return body.replace("SequenceNumber=3", f"SequenceNumber={sequence}").encode()


async def test_a_secret_added_while_the_cache_is_warm_verifies_at_once(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    await setup_tenant(db_engine)
    first, second = callback("CA" + "1" * 32), callback("CA" + "2" * 32)
    async with ingest_client(kafka_settings, database_settings) as client:
        warm = await client.post(
            url_for("twilio"), content=first, headers=sign("twilio", first, TWILIO_CURRENT)
        )
        async with db_engine.begin() as conn:
            await add_webhook_secret(conn, TENANT, "twilio", TEST_SECRET_KEY, "twilio-auth-token-next")
        rotated = await client.post(
            url_for("twilio"), content=second, headers=sign("twilio", second, "twilio-auth-token-next")
        )
        forged = await client.post(url_for("twilio"), content=second, headers=sign("twilio", second, "guess"))
    assert (warm.status_code, rotated.status_code, forged.status_code) == (200, 200, 401)
    assert [a["external_id"] for a in await activities_on_topic(kafka_settings)] == [
        "CA" + "1" * 32,
        "CA" + "2" * 32,
    ]


async def test_a_secret_expired_by_a_rotation_is_refused_once_the_cache_lapses(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    await setup_tenant(db_engine)
    body = callback("CA" + "3" * 32)
    # A zero TTL: every delivery reads the secrets, so a rotation without grace applies at once.
    async with ingest_client(kafka_settings, database_settings, tenant_cache_seconds=0.0) as client:
        before = await client.post(
            url_for("twilio"), content=body, headers=sign("twilio", body, TWILIO_PREVIOUS)
        )
        async with db_engine.begin() as conn:
            assert await expire_old_webhook_secrets(conn, TENANT, "twilio", timedelta(0)) == 1
        after = await client.post(
            url_for("twilio"), content=body, headers=sign("twilio", body, TWILIO_PREVIOUS)
        )
    assert (before.status_code, after.status_code) == (200, 401)
    assert after.json()["errors"][0]["field"] == "x-twilio-signature"


async def test_cached_secrets_expire_with_the_earliest_scheduled_expiry(
    database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    await setup_tenant(db_engine)
    async with db_engine.begin() as conn:
        # The previous token ends its grace period in 5 s; the TTL is 30 s.
        await conn.execute(
            text(
                "UPDATE webhook_secrets SET expires_at = now() + interval '5 seconds' "
                "WHERE tenant_id = :t AND source = 'twilio' AND secret_id = "
                "(SELECT min(secret_id) FROM webhook_secrets WHERE tenant_id = :t AND source = 'twilio')"
            ),
            {"t": TENANT},
        )
    now = [1_000.0]
    engine = make_engine(database_settings, "tests")
    cache = WebhookSecretCache(engine, TEST_SECRET_KEY, ttl_seconds=30.0, clock=lambda: now[0])
    try:
        loaded = await cache.secrets(TENANT, "twilio")
        async with db_engine.begin() as conn:
            await add_webhook_secret(conn, TENANT, "twilio", TEST_SECRET_KEY, "twilio-auth-token-next")
        now[0] += 4.0
        within = await cache.secrets(TENANT, "twilio")
        now[0] += 2.0
        past_expiry = await cache.secrets(TENANT, "twilio")
        fresh = await cache.secrets(TENANT, "twilio", fresh=True)
    finally:
        await engine.dispose()
    assert loaded == within == (TWILIO_CURRENT, TWILIO_PREVIOUS)
    # Reloaded 6 s after the load (not 30): the previous token is still valid in the database
    # for a moment, so only the new one is added.
    assert past_expiry == fresh == ("twilio-auth-token-next", TWILIO_CURRENT, TWILIO_PREVIOUS)


async def test_a_redelivered_callback_is_counted_as_a_duplicate_and_published_once(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    await setup_tenant(db_engine)
    call = "CA" + "4" * 32
    deliveries = [callback(call), callback(call), callback(call, sequence=4)]
    async with ingest_client(kafka_settings, database_settings) as client:
        answers = [
            await client.post(url_for("twilio"), content=b, headers=sign("twilio", b, TWILIO_CURRENT))
            for b in deliveries
        ]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert [(a.json()["accepted"], a.json()["duplicates"]) for a in answers] == [(1, 0), (1, 1), (1, 0)]
    assert [(a["external_id"], a["revision"]) for a in await activities_on_topic(kafka_settings)] == [
        (call, 3),
        (call, 4),
    ]
    async with db_engine.connect() as conn:
        recorded = (
            await conn.execute(text("SELECT revision FROM ingest_seen_events ORDER BY revision"))
        ).scalars()
        assert list(recorded) == [3, 4]


async def test_the_ledger_answers_concurrent_callers_from_shared_statements(
    database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    await setup_tenant(db_engine)
    await setup_tenant(db_engine, tenant="globex")
    a, b, c = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    engine = make_engine(database_settings, "tests")
    ledger = SeenLedger(engine)
    try:
        await ledger.record(TENANT, [(a, 1), (b, 0)])
        answers = await asyncio.gather(
            ledger.already_seen(TENANT, [(a, 1), (a, 2), (c, 0)]),
            ledger.already_seen("globex", [(a, 1), (b, 0)]),
            ledger.record("globex", [(c, 0)]),
            ledger.already_seen(TENANT, [(b, 0)]),
        )
        after = await ledger.already_seen("globex", [(a, 1), (c, 0)])
    finally:
        await ledger.close()
        await engine.dispose()
    assert list(answers) == [{(a, 1)}, set(), None, {(b, 0)}]
    assert after == {(c, 0)}


async def test_a_lookup_never_waits_behind_a_record_and_records_skip_the_wal_flush(
    database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    await setup_tenant(db_engine)
    held, other = (uuid.uuid4(), 1), (uuid.uuid4(), 1)
    engine = make_engine(database_settings, "tests")
    ledger = SeenLedger(engine)
    try:
        async with db_engine.connect() as blocker:
            # An uncommitted insert of the same pair: the record's insert waits for its outcome.
            await blocker.execute(
                text("INSERT INTO ingest_seen_events (tenant_id, activity_id, revision) VALUES (:t, :a, :r)"),
                {"t": TENANT, "a": held[0], "r": held[1]},
            )
            recording = asyncio.ensure_future(ledger.record(TENANT, [held]))
            await asyncio.sleep(0.2)
            assert not recording.done()
            # A lookup queued while that record's statement waits is answered all the same.
            seen = await asyncio.wait_for(ledger.already_seen(TENANT, [other, held]), timeout=5)
            await blocker.rollback()
        await asyncio.wait_for(recording, timeout=5)
        after = await ledger.already_seen(TENANT, [other, held])
        commits = [
            (await (await lane.connection()).exec_driver_sql("SHOW synchronous_commit")).scalar()
            for lane in (ledger._lookup_lane, ledger._record_lane)
        ]
        async with db_engine.connect() as conn:
            default = (await conn.exec_driver_sql("SHOW synchronous_commit")).scalar()
    finally:
        await ledger.close()
        await engine.dispose()
    assert seen == set()
    assert after == {held}
    # Lookups keep parents as durably as the database commits (tests run it without fsync);
    # records are bookkeeping a redelivery can redo, committed without waiting for the WAL.
    assert commits == [default, "off"]


async def test_every_waiting_caller_gets_the_ledger_error_and_the_next_flush_starts_afresh(
    database_settings: DatabaseSettings,
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    down = DatabaseSettings(url=f"postgresql+asyncpg://spm:spm@127.0.0.1:{closed_port}/spm")
    engine = make_engine(down, "tests")
    ledger = SeenLedger(engine)
    pair = (uuid.uuid4(), 0)
    try:
        answers = await asyncio.gather(
            ledger.already_seen(TENANT, [pair]), ledger.record(TENANT, [pair]), return_exceptions=True
        )
        with pytest.raises(ConnectionRefusedError):
            await ledger.already_seen(TENANT, [pair])
    finally:
        await ledger.close()
        await engine.dispose()
    assert [type(a).__name__ for a in answers] == ["ConnectionRefusedError", "ConnectionRefusedError"]


async def test_requests_that_miss_the_caches_together_share_one_read(
    database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    await setup_tenant(db_engine)
    engine = make_engine(database_settings, "tests")
    statements: list[str] = []
    event.listen(engine.sync_engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    secrets = WebhookSecretCache(engine, TEST_SECRET_KEY, ttl_seconds=30.0)
    tenants = TenantDirectory(engine, ttl_seconds=30.0)
    try:
        found = await asyncio.gather(*(secrets.secrets(TENANT, "twilio") for _ in range(20)))
        contexts = await asyncio.gather(*(tenants.context(TENANT) for _ in range(20)))
    finally:
        await engine.dispose()
    assert set(found) == {(TWILIO_CURRENT, TWILIO_PREVIOUS)}
    assert {c.tenant_id if c else None for c in contexts} == {TENANT}
    reads = [s.split()[1] for s in statements if s.startswith("SELECT") and "FROM" in s]
    # One secrets read, one tenant read (the tenant names its internal domains: no rep lookup),
    # one read of its erasure list.
    assert reads == ["secret_encrypted,", "t.timezone,", "identity_hash"]


@contextmanager
def secret_reads() -> Iterator[list[str]]:
    """Every read of ``webhook_secrets``, by any engine (the service's own included)."""
    reads: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "FROM webhook_secrets" in statement:
            reads.append(statement)

    event.listen(Engine, "before_cursor_execute", count)
    try:
        yield reads
    finally:
        event.remove(Engine, "before_cursor_execute", count)


async def test_forged_deliveries_to_made_up_tenants_cost_one_secrets_read_per_id(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """A delivery no cached secret verifies reloads the secrets (a rotation applies at once),
    but not a "no secret" read less than a second ago: each made-up id costs one read, however
    many forged deliveries name it (before, each cost one more)."""
    await setup_tenant(db_engine)
    body = callback("CA" + "3" * 32)
    async with ingest_client(kafka_settings, database_settings) as client:
        with secret_reads() as reads:
            answers = [
                await client.post(
                    url_for("twilio", f"made-up-{n}"), content=body, headers=sign("twilio", body, "x")
                )
                for n in range(5)
                for _ in range(2)
            ]
    assert [a.status_code for a in answers] == [401] * 10
    assert len(reads) == 5


async def test_a_tenant_created_after_its_id_was_looked_up_is_served_once_its_secret_verifies(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """Its absence (settings and secrets) is cached when a delivery names it before it exists;
    once created, a delivery it signed is verified by the secrets read fresh, and its settings
    are read fresh too (before, 401 ``secret: does not match`` until the cache lapsed, 30 s)."""
    first, second = callback("CA" + "4" * 32), callback("CA" + "5" * 32)
    async with ingest_client(kafka_settings, database_settings) as client:
        early = await client.post(
            url_for("twilio"), content=first, headers=sign("twilio", first, TWILIO_CURRENT)
        )
        await setup_tenant(db_engine)
        await asyncio.sleep(FRESH_NO_SECRET_SECONDS + 0.1)  # the "no secret" read is not trusted past it
        created = await client.post(
            url_for("twilio"), content=second, headers=sign("twilio", second, TWILIO_CURRENT)
        )
    assert (early.status_code, created.status_code) == (401, 200), created.text
    assert [a["external_id"] for a in await activities_on_topic(kafka_settings)] == ["CA" + "5" * 32]


async def test_the_future_skew_setting_bounds_vendor_times_too(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """``INGEST_MAX_FUTURE_SKEW_SECONDS`` is one setting: a Twilio callback dated two hours after
    its receipt is accepted by default (a day) and refused with an hour, naming ``Timestamp``."""
    await setup_tenant(db_engine)
    body = callback("CA" + "6" * 32).replace(
        b"Timestamp=Tue%2C+24+Nov+2026+15%3A15%3A20+%2B0000",
        b"Timestamp=Tue%2C+24+Nov+2026+18%3A00%3A00+%2B0000",
    )
    assert b"18%3A00%3A00" in body
    answers = []
    for options in ({"max_future_skew_seconds": 3_600}, {}):
        async with ingest_client(kafka_settings, database_settings, **options) as client:
            answers.append(
                await client.post(
                    url_for("twilio"), content=body, headers=sign("twilio", body, TWILIO_CURRENT)
                )
            )
    assert [a.status_code for a in answers] == [422, 200]
    [error] = answers[0].json()["errors"]
    assert (error["field"], error["reason"]) == (
        "Timestamp",
        f"more than 3600 s in the future (received {RECEIVED_AT.isoformat()})",
    )
