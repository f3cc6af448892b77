"""The ``reread_phones`` job ingest runs after a tenant's phone region changed, through the real
broker and database: its result names what it did (the region, the contacts read, published,
and those left as held because they would list too many phones), the phones are parsed off the
event loop, and it runs once more ``INGEST_REREAD_AGAIN_AFTER_SECONDS`` later for the contacts
attribution wrote after the first pass (synced just before the change, still in its backlog)."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.contracts.crm import PHONE_REREAD_SOURCE
from libs.common.jobs import REREAD_PHONES, Job, get_job, queue_job
from libs.common.settings import DatabaseSettings, KafkaSettings
from services.ingest import pipeline
from services.ingest.domain import crm_sync
from tests.integration.attribution.attribution_support import RecordingProducer, deliver, entity
from tests.integration.ingest.ingest_integration_support import (
    TENANT,
    TENANT_SETTINGS,
    entities_on_topic,
    ingest_client,
    setup_tenant,
)
from tests.integration.polling import eventually

UPDATED = datetime(2026, 11, 2, tzinfo=UTC)
FULL = [f"+1415555{n:04d}" for n in range(50)]


async def _held(
    engine: AsyncEngine, contact_id: str, unread: list[str], phones: list[str] | None = None
) -> None:
    """A contact as attribution writes it from ``crm-entity-changed``."""
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO ref_contacts (tenant_id, contact_id, phones, raw_phones, unread_phones, updated_at) "
                "VALUES (:t, :c, :p, :p, :u, :at)"
            ),
            {"t": TENANT, "c": contact_id, "p": phones or [], "u": unread, "at": UPDATED},
        )


async def _done(engine: AsyncEngine, job_id: uuid.UUID) -> Job:
    async def probe() -> Job | None:
        async with engine.connect() as conn:
            return await get_job(conn, TENANT, job_id)

    job = await eventually(probe, lambda j: j is not None and j.state in ("done", "failed"), 30, "the job")
    assert isinstance(job, Job)
    return job


async def test_the_job_names_what_it_did_parses_off_the_loop_and_runs_again_for_late_contacts(
    kafka_settings: KafkaSettings,
    database_settings: DatabaseSettings,
    db_engine: AsyncEngine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    keys = await setup_tenant(
        db_engine, {**TENANT_SETTINGS, "time_zone": "UTC", "default_phone_region": "GB"}
    )
    await _held(db_engine, "con-a", ["020 7946 0961"])
    await _held(db_engine, "con-full", ["020 7946 0962"], FULL)
    await _held(db_engine, "con-z", ["ask reception"])
    async with db_engine.begin() as conn:
        first = await queue_job(conn, TENANT, REREAD_PHONES, "admin", parameters={"region": "GB"})
    parsed_on: list[int] = []
    read_in_new_region = crm_sync.contacts_read_in_new_region

    def recorded(*args: Any) -> Any:
        parsed_on.append(threading.get_ident())
        return read_in_new_region(*args)

    monkeypatch.setattr(pipeline, "contacts_read_in_new_region", recorded)
    loop_thread = threading.get_ident()
    async with ingest_client(
        kafka_settings, database_settings, jobs_interval_seconds=0.05, reread_again_after_seconds=1.5
    ) as client:
        # The job's source is ingest's own: a CRM sync may not send under it.
        refused = await client.post(
            "/v1/crm/sync",
            json={
                "source": "ingest-phone-region",
                "entities": [{"entity_type": "account", "id": "acc-1", "updated_at": "2026-11-02T00:00:00Z"}],
            },
            headers={"Authorization": f"Bearer {keys['ingest']}"},
        )
        assert refused.status_code == 422, refused.text
        assert refused.json()["errors"] == [
            {
                "in": "body",
                "field": "source",
                "reason": "Value error, 'ingest-phone-region' is reserved for ingest's own phone re-reads",
            }
        ]
        assert "reserved for ingest's own phone re-reads" in refused.text
        done = await _done(db_engine, first)
        assert done.result is not None
        again = uuid.UUID(done.result.pop("again_job"))
        # con-full would list 51 phones: kept as held, counted.
        assert (done.state, done.result) == (
            "done",
            {
                "region": "GB",
                "contacts_read": 3,
                "contacts_published": 1,
                "contacts_over_limits": 1,
                "reps_read": 0,
                "reps_published": 0,
                "reps_over_limits": 0,
            },
        )
        # Synced before the change, written by attribution after the first pass.
        await _held(db_engine, "con-late", ["020 7946 0965"])
        second = await _done(db_engine, again)
        # con-a again too: no attribution runs here to write what the first pass published.
        assert (second.state, second.result, second.parameters) == (
            "done",
            {
                "region": "GB",
                "contacts_read": 4,
                "contacts_published": 2,
                "contacts_over_limits": 1,
                "reps_read": 0,
                "reps_published": 0,
                "reps_over_limits": 0,
            },
            {"region": "GB", "again_of": str(first)},
        )
    assert parsed_on
    assert loop_thread not in parsed_on
    published = [
        (e["entity"]["id"], e["entity"]["phones"], e["source"])
        for e in await entities_on_topic(kafka_settings)
    ]
    assert published == [
        ("con-a", ["+442079460961"], "ingest-phone-region"),
        ("con-a", ["+442079460961"], "ingest-phone-region"),
        ("con-late", ["+442079460965"], "ingest-phone-region"),
    ]


async def test_values_read_into_one_number_or_a_number_held_reach_attribution(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """Two unread values giving one number, and a value giving a number the contact holds beside
    one giving a new number: the job's copies go through the broker and are written by
    attribution's consumer (not dropped as corrections, pass after pass)."""
    await setup_tenant(db_engine, {**TENANT_SETTINGS, "time_zone": "UTC", "default_phone_region": "DE"})
    await _held(db_engine, "con-twice", ["030 1234567", "(030) 1234567"])
    await _held(db_engine, "con-held", ["030 1234567", "0170 9876543"], ["+49301234567"])
    async with db_engine.begin() as conn:
        first = await queue_job(conn, TENANT, REREAD_PHONES, "admin", parameters={"region": "DE"})
    async with ingest_client(
        kafka_settings, database_settings, jobs_interval_seconds=0.05, reread_again_after_seconds=60
    ):
        done = await _done(db_engine, first)
    assert done.result is not None
    assert (done.result["contacts_read"], done.result["contacts_published"]) == (2, 2)
    published = [
        entity(**e["entity"])
        for e in await entities_on_topic(kafka_settings)
        if e["source"] == PHONE_REREAD_SOURCE
    ]
    await deliver(db_engine, RecordingProducer(), *published, source=PHONE_REREAD_SOURCE)
    async with db_engine.connect() as conn:
        held = (
            await conn.execute(
                text(
                    "SELECT contact_id, phones, unread_phones FROM ref_contacts WHERE tenant_id = :t "
                    "ORDER BY contact_id"
                ),
                {"t": TENANT},
            )
        ).all()
    assert [tuple(r) for r in held] == [
        ("con-held", ["+49301234567", "+491709876543"], []),
        ("con-twice", ["+49301234567"], []),
    ]
