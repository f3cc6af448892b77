"""What the held sweep leaves alone (attribution's own path, the real PostgreSQL): a meeting
deleted at its source is neither published, stored held nor counted; a meeting whose only
customer was erased is screened out as the consumer screens what it receives and taken as the
erasure job takes it (deleted, retracted by a version naming nobody: it stops no tenant behind
it and is not found again); and without migration 0036's index the sweep does not run at all (it would
scan every tenant's activities), saying why. Two replicas' passes lock different batches
(``FOR UPDATE SKIP LOCKED`` on the select itself), so each adds throughput."""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import datetime, timedelta
from typing import Any, cast

import msgspec
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import MessageSizeTooLargeError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.contracts.activities import ActivityDeletedV1, activity_id_for
from libs.common.contracts.attribution import ActivityAttributedV1
from libs.common.contracts.attribution_fast import Attributed, decode_encoded
from libs.common.erasures import ErasedIdentities, ErasureListCache, IdentityKind, erasure_key, identity_hash
from libs.common.tenant_settings_store import TenantSettingsCache
from services.attribution.adapters import repository as repo
from services.attribution.adapters.erasure import delete_contacts
from services.attribution.erasure import ErasureScreen
from services.attribution.handlers import retract_deleted
from services.attribution.held_sweep import HeldSweep
from tests.integration.polling import eventually

from .attribution_support import RecordingProducer, baseline, create_tenant, deliver, rows
from .test_attribution_held_sweep_tenants import DAY, GRACE, _counted, _meeting, _stored
from .test_attribution_migration_0037 import _held

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


def _published(producer: RecordingProducer) -> list[tuple[str, str, int, str, str, str]]:
    """(tenant, meeting, version, outcome, status, rule path) of each version published."""
    return [
        (
            s.event.tenant_id,
            next(
                m
                for m in ("e0", "e1", "e2", "ended")
                if activity_id_for(s.event.tenant_id, "calendar", m) == s.event.activity_id
            ),
            s.event.version,
            s.event.facts.outcome,
            s.event.status,
            s.event.explanation["rule_path"],
        )
        for s in producer.sent
    ]


async def test_a_meeting_whose_only_customer_was_erased_is_deleted_and_retracted(
    db_engine: AsyncEngine,
) -> None:
    """Screened as the consumer screens what it receives, the meeting is left without an external
    participant: it is taken as the erasure job takes it (deleted, its version in force retracted
    by one that counts nothing and names nobody), not held, and never found again."""
    await create_tenant(db_engine)
    producer = RecordingProducer()
    await deliver(db_engine, producer, *baseline(), _meeting("acme", "e0", DAY))
    producer.take()
    before = _counted()

    report = await _sweep(db_engine, producer, screened=True).run_once(AFTER)

    assert _published(producer) == [("acme", "e0", 2, "scheduled", "excluded", "erased")]
    retraction = producer.take()[0].event
    assert (retraction.facts.external_participants, retraction.facts.external_contact_ids) == (0, ())
    assert sorted(retraction.explanation) == ["ingested_at", "rule_path"]
    assert (report.found, report.held, report.erased, report.published) == (1, 0, 1, 1)
    assert tuple(n - b for n, b in zip(_counted(), before, strict=True)) == (0.0, 0.0)
    e0 = activity_id_for("acme", "calendar", "e0")
    for table in ("activities", "attributions", "held_sweep_outbox", "ingest_seen_events"):
        assert await rows(db_engine, f"SELECT count(*) FROM {table} WHERE activity_id = :a", {"a": e0}) == [
            (0,)
        ]
    again = await _sweep(db_engine, producer, screened=True).run_once(AFTER + timedelta(minutes=1))
    assert (again.found, again.published, producer.take()) == (0, 0, [])


async def test_meetings_whose_only_customer_was_erased_stop_no_other_tenant(db_engine: AsyncEngine) -> None:
    """A full batch (3) of acme's meetings whose only customer, Bo, acme erased, ahead of globex's
    meeting with its own Bo (not erased there). Before, the three were found every round, never
    held nor left out, so globex's was never reached; now the first round deletes and retracts
    them (the pass comes back full: ``run`` goes on at once) and the next holds globex's."""
    await create_tenant(db_engine)
    async with db_engine.begin() as conn:
        await conn.execute(text("INSERT INTO tenants (tenant_id, name) VALUES ('globex', 'globex')"))
    producer = RecordingProducer()
    erased = [_meeting("acme", f"e{n}", DAY + timedelta(minutes=n)) for n in range(3)]
    await deliver(
        db_engine, producer, *baseline(), *erased, _meeting("globex", "ended", DAY + timedelta(hours=1))
    )
    producer.take()
    sweep = _sweep(db_engine, producer, screened=True)
    sweep.batch_size = 3
    before = _counted()

    first = await sweep.run_once(AFTER)
    retracted = _published(producer)
    producer.take()
    second = await sweep.run_once(AFTER + timedelta(seconds=1))
    held = _published(producer)
    producer.take()
    third = await sweep.run_once(AFTER + timedelta(seconds=2))

    assert sorted(retracted) == [("acme", f"e{n}", 2, "scheduled", "excluded", "erased") for n in range(3)]
    assert (first.found, first.held, first.erased, first.full(3)) == (3, 0, 3, True)
    assert held == [("globex", "ended", 2, "held", "unmatched", "none")]
    assert (second.found, second.held, second.erased) == (1, 1, 0)
    assert (third.found, third.published, producer.take()) == (0, 0, [])
    assert tuple(n - b for n, b in zip(_counted(), before, strict=True)) == (1.0, 0.0)
    assert await rows(
        db_engine, "SELECT tenant_id, external_id, outcome FROM activities WHERE kind = 'meeting' ORDER BY 1"
    ) == [("globex", "ended", "held")]


async def test_without_the_index_the_sweep_waits_for_it_counted_and_holds_once_it_is_there(
    db_engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    """Without migration 0036's index nothing is swept; each interval's check is counted (the
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
                        f"CREATE INDEX {repo.SCHEDULED_MEETINGS_INDEX} ON activities (tenant_id, occurred_at) "
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
        "held sweep: index activities_scheduled_by_tenant missing (migration 0036_scheduled_by_tenant "
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
        first = await repo.lock_ended_scheduled_meetings(one, cutoff, 2, ["acme"])
        second = await repo.lock_ended_scheduled_meetings(two, cutoff, 2, ["acme"])
    ids = [activity_id_for("acme", "calendar", f"m{n}") for n in range(3)]
    assert first == [("acme", ids[0]), ("acme", ids[1])]
    assert second == [("acme", ids[2])]


class _BrokerDown(RecordingProducer):
    """A broker that acknowledges nothing: the process stops there (dies, or fails its round)."""

    async def send_batch(self, batch: object, topic: str, *, partition: int) -> asyncio.Future[None]:
        raise ConnectionError("the broker is down")


async def test_versions_stored_but_not_published_are_published_by_the_next_round(
    db_engine: AsyncEngine,
) -> None:
    """The meeting is stored held and its version queued in the transaction that decided it;
    published after it commits. A round whose publish fails (a process that dies there alike)
    leaves the version queued; the next round of any replica publishes it, once."""
    await create_tenant(db_engine)
    producer = RecordingProducer()
    await deliver(db_engine, producer, *baseline(), _meeting("acme", "ended", DAY))
    producer.take()
    down = _BrokerDown()
    before = _counted()

    with pytest.raises(ConnectionError):
        await _sweep(db_engine, cast(RecordingProducer, down)).run_once(AFTER)
    queued = await rows(db_engine, "SELECT tenant_id, activity_id, version FROM held_sweep_outbox")
    stored = (await _stored(db_engine))[("acme", "ended")]
    counted = _counted()[0] - before[0]
    # Another replica (or the process restarted): it publishes what waits first, nothing to decide.
    report = await _sweep(db_engine, producer).run_once(AFTER + timedelta(minutes=1))
    again = await _sweep(db_engine, producer).run_once(AFTER + timedelta(minutes=2))

    ended = activity_id_for("acme", "calendar", "ended")
    assert (down.take(), queued, stored, counted) == ([], [("acme", ended, 2)], ("held", "held", 1, 2), 0.0)
    assert (report.found, report.held, report.published) == (0, 0, 1)
    assert [(s.event.activity_id, s.event.version, s.event.facts.outcome) for s in producer.take()] == [
        (ended, 2, "held")
    ]
    assert _counted()[0] - before[0] == 1.0
    assert (again.published, producer.take()) == (0, [])
    assert await rows(db_engine, "SELECT count(*) FROM held_sweep_outbox") == [(0,)]


class _Rejects(RecordingProducer):
    """A broker that rejects one version (too large for it) and acknowledges the others."""

    def __init__(self, rejected: uuid.UUID) -> None:
        super().__init__()
        self.rejected = rejected
        self.tried: list[uuid.UUID] = []

    async def send_batch(self, batch: Any, topic: str, *, partition: int) -> asyncio.Future[None]:
        ids = [ActivityAttributedV1.model_validate_json(value).activity_id for _, value, _ in batch.messages]
        self.tried += ids
        if self.rejected in ids:
            raise MessageSizeTooLargeError("the message is larger than the broker accepts")
        return await super().send_batch(batch, topic, partition=partition)


def _queued(tenant_id: str, n: int) -> Attributed:
    return msgspec.structs.replace(_held(n), tenant_id=tenant_id)


async def test_a_queued_version_failing_on_its_own_is_set_aside_and_the_others_published(
    db_engine: AsyncEngine,
) -> None:
    """Queued first, a row whose body cannot be decoded and a version the broker rejects (too
    large), other tenants' after them: those two are set aside (left queued, counted, not taken
    again until their quarantine ends) and the others published in the same round; a broker down
    fails the round and sets nothing aside."""
    async with db_engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO held_sweep_outbox (tenant_id, activity_id, version, event) "
                "VALUES ('t-x', :a, 2, '\\x00ff'::bytea)"
            ),
            {"a": uuid.UUID(int=9)},
        )
        await repo.queue_held(conn, [_queued("t-big", 3), _queued("t-a", 1), _queued("t-b", 2)])
    rejects = _Rejects(uuid.UUID(int=3))
    sweep = _sweep(db_engine, cast(RecordingProducer, rejects))
    before = _counted()

    report = await sweep.run_once(AFTER)

    assert (report.published, len(report.queue_failed)) == (2, 2)
    assert [(s.event.tenant_id, s.event.activity_id) for s in rejects.take()] == [
        ("t-a", uuid.UUID(int=1)),
        ("t-b", uuid.UUID(int=2)),
    ]
    assert _counted()[1] - before[1] == 2.0
    left = "SELECT tenant_id, activity_id FROM held_sweep_outbox ORDER BY outbox_id"
    assert await rows(db_engine, left) == [("t-x", uuid.UUID(int=9)), ("t-big", uuid.UUID(int=3))]

    # Within the quarantine neither is tried again; once it ends, both are (still failing).
    rejects.tried = []
    again = await sweep.run_once(AFTER + timedelta(minutes=30))
    assert (again.published, again.queue_failed, rejects.tried) == (0, [], [])
    later = await sweep.run_once(AFTER + timedelta(hours=2))
    assert (later.published, len(later.queue_failed), rejects.tried) == (0, 2, [uuid.UUID(int=3)] * 2)

    # A broker down: the round fails, nothing set aside; the next round publishes what it can.
    async with db_engine.begin() as conn:
        await conn.execute(text("DELETE FROM held_sweep_outbox"))
        await repo.queue_held(conn, [_queued("t-a", n) for n in range(4, 9)])
    fresh = _sweep(db_engine, cast(RecordingProducer, _BrokerDown()))
    with pytest.raises(ConnectionError):
        await fresh.run_once(AFTER)
    assert fresh._queue_out == {}
    fresh.producer = cast(AIOKafkaProducer, rejects)
    assert (await fresh.run_once(AFTER)).published == 5
    assert await rows(db_engine, "SELECT count(*) FROM held_sweep_outbox") == [(0,)]


async def test_a_contact_erasure_scrubs_the_queued_versions(db_engine: AsyncEngine) -> None:
    """The erasure of a contact takes her out of the versions still queued, as out of the stored
    ones: published later, none names her to metrics again. A row that cannot be decoded and
    names her is deleted; another tenant's queue is not touched."""
    dana = {"contact_id": "con-dana", "matched_by": "email"}
    eli = {"contact_id": "con-eli", "matched_by": "email"}

    def version(tenant_id: str, n: int, contacts: tuple[str, ...]) -> Attributed:
        held = _queued(tenant_id, n)
        facts = msgspec.structs.replace(held.facts, external_contact_ids=contacts)
        listed = [c for c in (dana, eli) if c["contact_id"] in contacts]
        return msgspec.structs.replace(
            held, facts=facts, explanation={**held.explanation, "contacts": listed}
        )

    async with db_engine.begin() as conn:
        await repo.queue_held(
            conn,
            [
                version("acme", 1, ("con-dana", "con-eli")),
                version("acme", 2, ("con-eli",)),
                version("other", 3, ("con-dana",)),
            ],
        )
        for n, body in ((4, b'{"broken": "con-dana"'), (5, b'{"broken": "con-eli"')):
            await conn.execute(
                text(
                    "INSERT INTO held_sweep_outbox (tenant_id, activity_id, version, event) "
                    "VALUES ('acme', :a, 2, :e)"
                ),
                {"a": uuid.UUID(int=n), "e": body},
            )
    async with db_engine.begin() as conn:
        await delete_contacts(conn, "acme", ["con-dana"])

    queued = {
        (tenant, n.int): body
        for tenant, n, body in await rows(
            db_engine, "SELECT tenant_id, activity_id, event FROM held_sweep_outbox ORDER BY outbox_id"
        )
    }
    assert sorted(queued) == [("acme", 1), ("acme", 2), ("acme", 5), ("other", 3)]
    first = decode_encoded(queued[("acme", 1)])
    assert (first.facts.external_contact_ids, first.explanation["contacts"]) == (("con-eli",), [eli])
    assert first.explanation["rule_path"] == "owner_participates"
    assert decode_encoded(queued[("acme", 2)]) == version("acme", 2, ("con-eli",))
    assert decode_encoded(queued[("other", 3)]) == version("other", 3, ("con-dana",))
