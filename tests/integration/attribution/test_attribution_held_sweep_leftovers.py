"""What the held sweep leaves alone (attribution's own path, the real PostgreSQL): a meeting
deleted at its source is neither published, stored held nor counted; a meeting whose only
customer was erased is screened out as the consumer screens what it receives (nothing about them
published again); and without migration 0032's index the sweep does not run at all (it would
scan every tenant's activities), saying why. Two replicas' passes lock different batches
(``FOR UPDATE SKIP LOCKED`` on the select itself), so each adds throughput."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import Any, cast

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaTimeoutError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.contracts.activities import ActivityDeletedV1, activity_id_for
from libs.common.erasures import ErasedIdentities, ErasureListCache, IdentityKind, erasure_key, identity_hash
from libs.common.tenant_settings_store import TenantSettingsCache
from services.attribution.adapters import repository as repo
from services.attribution.erasure import ErasureScreen
from services.attribution.handlers import retract_deleted
from services.attribution.held_sweep import HeldSweep
from tests.integration.polling import eventually

from .attribution_support import RecordingProducer, baseline, create_tenant, deliver, rows
from .test_attribution_held_sweep_tenants import DAY, GRACE, _counted, _meeting, _stored

AFTER = DAY + timedelta(days=1)
KEY = erasure_key("test-secret-key")


class _Erased:
    """Stands in for ``ErasureListCache``: acme erased Bo (``bo@buyer.example``)."""

    async def get(self, tenant_id: str) -> ErasedIdentities:
        bo = identity_hash(KEY, IdentityKind.EMAIL, "bo@buyer.example")
        return ErasedIdentities(KEY, frozenset({bo} if tenant_id == "acme" else set()))


def _sweep(engine: AsyncEngine, producer: RecordingProducer, screened: bool = False) -> HeldSweep:
    return HeldSweep(
        engine,
        cast(AIOKafkaProducer, producer),
        "t.",
        TenantSettingsCache(engine, ttl_seconds=0),
        grace=GRACE,
        batch_size=10,
        erasures=ErasureScreen(cast(ErasureListCache, _Erased())) if screened else None,
    )


async def _deleted_at_source(engine: AsyncEngine, external_id: str, at: datetime) -> None:
    """The calendar deleted it: the consumer's retraction, saved."""
    deletion = ActivityDeletedV1(
        tenant_id="acme",
        activity_id=activity_id_for("acme", "calendar", external_id),
        source="calendar",
        external_id=external_id,
        deleted_at=at,
        revision=2,
    )
    async with engine.begin() as conn:
        batch = await retract_deleted(conn, "acme", [deletion], at)
        await repo.save_attributions(conn, batch.rows)


async def test_a_meeting_deleted_at_its_source_is_not_held_nor_counted(db_engine: AsyncEngine) -> None:
    await create_tenant(db_engine)
    producer = RecordingProducer()
    await deliver(
        db_engine, producer, *baseline(), _meeting("acme", "ended", DAY), _meeting("acme", "gone", DAY)
    )
    await _deleted_at_source(db_engine, "gone", DAY + timedelta(hours=1))
    producer.take()
    before = _counted()

    report = await _sweep(db_engine, producer).run_once(AFTER)

    published = [(s.event.activity_id, s.event.version, s.event.facts.outcome) for s in producer.take()]
    assert published == [(activity_id_for("acme", "calendar", "ended"), 2, "held")]
    assert (report.found, report.held) == (1, 1)
    assert _counted()[0] - before[0] == 1.0
    stored = await _stored(db_engine)
    assert stored[("acme", "ended")] == ("held", "held", 1, 2)
    # Still retracted (at the deletion's revision), still as its source last stated it.
    assert stored[("acme", "gone")] == ("scheduled", "scheduled", 2, 2)
    # Only its flag tells it, taking it out of the sweep's index (migration 0035).
    assert await rows(
        db_engine,
        "SELECT external_id, retracted FROM activities WHERE tenant_id = 'acme' AND kind = 'meeting' "
        "ORDER BY external_id",
    ) == [("ended", False), ("gone", True)]


async def test_a_meeting_whose_only_customer_was_erased_is_screened_out(db_engine: AsyncEngine) -> None:
    await create_tenant(db_engine)
    producer = RecordingProducer()
    await deliver(db_engine, producer, *baseline(), _meeting("acme", "ended", DAY))
    producer.take()

    report = await _sweep(db_engine, producer, screened=True).run_once(AFTER)

    assert producer.take() == []
    assert (report.found, report.held) == (1, 0)
    assert (await _stored(db_engine))[("acme", "ended")] == ("scheduled", "scheduled", 1, 1)


async def test_without_the_index_the_sweep_waits_for_it_counted_and_holds_once_it_is_there(
    db_engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    """Without migration 0032's index nothing is swept; each interval's check is counted (the
    alert on ``spm_held_sweep_failures_total`` fires) and logged once. Once the index is built,
    the next interval holds the meeting, no restart needed (before: the sweep stopped for good,
    silently but for one log line, and a database down when attribution started did the same)."""
    await create_tenant(db_engine)
    producer = RecordingProducer()
    await deliver(db_engine, producer, *baseline(), _meeting("acme", "ended", DAY))
    producer.take()
    async with db_engine.begin() as conn:
        await conn.execute(text(f"DROP INDEX {repo.SCHEDULED_MEETINGS_INDEX}"))
    sweep = _sweep(db_engine, producer)
    sweep.interval = 0.05
    failures = _counted()[1]
    with caplog.at_level(logging.ERROR, logger="services.attribution.held_sweep"):
        running = asyncio.create_task(sweep.run())
        try:

            async def failed() -> float:
                return _counted()[1] - failures

            await eventually(failed, lambda n: n >= 3, 30, "three counted checks without the index")
            assert producer.take() == []
            assert (await _stored(db_engine))[("acme", "ended")] == ("scheduled", "scheduled", 1, 1)
            async with db_engine.begin() as conn:
                await conn.execute(
                    text(
                        f"CREATE INDEX {repo.SCHEDULED_MEETINGS_INDEX} ON activities (occurred_at) "
                        "WHERE kind = 'meeting' AND outcome = 'scheduled' AND NOT retracted"
                    )
                )

            async def ended() -> tuple[str, str, int, int]:
                return (await _stored(db_engine))[("acme", "ended")]

            await eventually(
                ended, lambda row: row[0] == "held", 30, "the meeting held once the index is built"
            )
        finally:
            sweep.stop()
            await running
    assert [r.getMessage() for r in caplog.records] == [
        "held sweep: index activities_scheduled_meetings missing (migration 0032_scheduled_meetings "
        "not applied); not sweeping: meetings synced ahead stay scheduled until it is applied"
    ]
    assert [(s.event.version, s.event.facts.outcome) for s in producer.take()] == [(2, "held")]


async def test_replicas_passes_take_different_batches(db_engine: AsyncEngine) -> None:
    await create_tenant(db_engine)
    producer = RecordingProducer()
    meetings = [_meeting("acme", f"m{n}", DAY + timedelta(minutes=n)) for n in range(3)]
    await deliver(db_engine, producer, *baseline(), *meetings)
    cutoff = AFTER - GRACE
    # One replica's pass holds its batch (the earliest two) while another's selects.
    async with db_engine.begin() as one, db_engine.begin() as two:
        first = await repo.lock_ended_scheduled_meetings(one, cutoff, 2)
        second = await repo.lock_ended_scheduled_meetings(two, cutoff, 2)
    ids = [activity_id_for("acme", "calendar", f"m{n}") for n in range(3)]
    assert first == [("acme", ids[0]), ("acme", ids[1])]
    assert second == [("acme", ids[2])]


class _BrokerDown(RecordingProducer):
    """The broker does not acknowledge (a moment's outage): every publish times out."""

    async def send_batch(self, batch: Any, topic: str, *, partition: int) -> asyncio.Future[None]:
        raise KafkaTimeoutError()


async def test_a_broker_outage_fails_the_round_and_leaves_no_meeting_out(db_engine: AsyncEngine) -> None:
    """The broker down for a moment is no fault of the meetings: the round fails (counted, tried
    again at the next interval), nothing is stored held, and no meeting is left out for the
    quarantine hour. Before, the failed batch was tried a meeting at a time and each meeting,
    failing as well, was left out for an hour: held an hour late once the broker was back."""
    await create_tenant(db_engine)
    producer = RecordingProducer()
    await deliver(db_engine, producer, *baseline(), _meeting("acme", "m1", DAY), _meeting("acme", "m2", DAY))
    producer.take()
    sweep = _sweep(db_engine, producer)
    sweep.producer = cast(AIOKafkaProducer, _BrokerDown())

    with pytest.raises(KafkaTimeoutError):
        await sweep.run_once(AFTER)

    assert sweep._quarantined == {}
    assert (await _stored(db_engine))[("acme", "m1")] == ("scheduled", "scheduled", 1, 1)
    # The broker is back a minute later: both are held at once, not an hour later.
    sweep.producer = cast(AIOKafkaProducer, producer)
    report = await sweep.run_once(AFTER + timedelta(minutes=1))
    assert (report.found, report.held, report.failed) == (2, 2, [])
    assert sorted(s.event.facts.outcome for s in producer.take()) == ["held", "held"]
