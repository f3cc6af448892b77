"""A ``reread_phones`` job (ingest) publishes a held contact again with the numbers its unread
values read in the tenant's new region, under the ``updated_at`` it read. A CRM correction sent
under that same ``updated_at`` and received while the job ran (or in the same batch) is not
replaced by the job's older copy: attribution writes the job's contact only over the version it
read. The consumer's batches against the real database."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.contracts.crm import PHONE_REREAD_SOURCE, CrmEntity
from services.attribution.telemetry import PHONE_REREADS_DROPPED
from tests.integration.attribution.attribution_support import (
    RecordingProducer,
    create_tenant,
    deliver,
    entity,
    rows,
)

HELD = "SELECT contact_id, phones, raw_phones, unread_phones, name FROM ref_contacts ORDER BY contact_id"


def _contact(contact_id: str, **fields: object) -> CrmEntity:
    return entity(entity_type="contact", id=contact_id, **fields)


def _reread(contact_id: str, unread: str, number: str, **fields: object) -> CrmEntity:
    """The job's copy: the version it read with ``unread`` read as ``number``."""
    return _contact(contact_id, phones=[number], raw_phones=[unread], **fields)


async def test_a_correction_received_while_the_job_ran_is_not_replaced_by_its_copy(
    db_engine: AsyncEngine,
) -> None:
    await create_tenant(db_engine)
    producer = RecordingProducer()
    # Synced while the tenant was read as US: each keeps a UK number unread.
    await deliver(
        db_engine,
        producer,
        _contact("con-a", unread_phones=["020 7946 0961"]),
        _contact("con-b", unread_phones=["020 7946 0962"]),
        _contact("con-c", unread_phones=["020 7946 0963"]),
        _contact("con-d", unread_phones=["020 7946 0964", "ask reception"]),
    )
    # The CRM corrects con-a's number under the same updated_at; the job had read it before.
    await deliver(db_engine, producer, _contact("con-a", unread_phones=["020 7946 0999"]))
    await deliver(
        db_engine,
        producer,
        _reread("con-a", "020 7946 0961", "+442079460961"),
        _reread("con-d", "020 7946 0964", "+442079460964", unread_phones=["ask reception"]),
        source=PHONE_REREAD_SOURCE,
    )
    # con-b's correction (a name) arrives in the job's batch, before its copy.
    await deliver(
        db_engine,
        producer,
        _contact("con-b", name="Bea", unread_phones=["020 7946 0962"]),
        _reread("con-b", "020 7946 0962", "+442079460962"),
        _reread("con-c", "020 7946 0963", "+442079460963"),
        source=["crm", PHONE_REREAD_SOURCE, PHONE_REREAD_SOURCE],
    )
    assert await rows(db_engine, HELD) == [
        ("con-a", [], [], ["020 7946 0999"], ""),
        ("con-b", [], [], ["020 7946 0962"], "Bea"),
        ("con-c", ["+442079460963"], ["020 7946 0963"], [], ""),
        ("con-d", ["+442079460964"], ["020 7946 0964"], ["ask reception"], ""),
    ]


async def test_an_older_version_or_a_replay_in_the_jobs_batch_does_not_drop_its_copy(
    db_engine: AsyncEngine,
) -> None:
    """Newest-wins ignores a version older than the one the job read, and a replay of it: the
    job's copy is written alongside them. A newer version in the batch still keeps it out."""
    await create_tenant(db_engine)
    producer = RecordingProducer()
    await deliver(
        db_engine,
        producer,
        _contact("con-e", unread_phones=["020 7946 0965"]),
        _contact("con-f", unread_phones=["020 7946 0966"]),
        _contact("con-g", unread_phones=["020 7946 0967"]),
    )
    dropped = PHONE_REREADS_DROPPED._value.get()
    await deliver(
        db_engine,
        producer,
        _contact("con-e", name="Old", updated_at="2026-10-01T00:00:00Z"),
        _reread("con-e", "020 7946 0965", "+442079460965"),
        _contact("con-f", unread_phones=["020 7946 0966"]),
        _reread("con-f", "020 7946 0966", "+442079460966"),
        _contact("con-g", name="Gil", updated_at="2026-11-02T00:00:00Z", unread_phones=["020 7946 0967"]),
        _reread("con-g", "020 7946 0967", "+442079460967"),
        source=["crm", PHONE_REREAD_SOURCE, "crm", PHONE_REREAD_SOURCE, "crm", PHONE_REREAD_SOURCE],
    )
    assert await rows(db_engine, HELD) == [
        ("con-e", ["+442079460965"], ["020 7946 0965"], [], ""),
        ("con-f", ["+442079460966"], ["020 7946 0966"], [], ""),
        ("con-g", [], [], ["020 7946 0967"], "Gil"),
    ]
    assert PHONE_REREADS_DROPPED._value.get() - dropped == 1  # con-g's, counted
