"""The ``rematch`` job a batch of deal changes queues past ``ATTRIBUTION_REMATCH_LIMIT``, through
the real broker and database: a failure is retried from the last committed batch (the window is
never left half re-decided while ``up_to_date`` says true); batches past the bound while one is
queued merge their windows into it; the job follows a moved thread's parked replies as the
consumer does."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.jobs import REMATCH, claim_job, requeue_job, save_checkpoint
from libs.common.kafka.clients import make_producer
from libs.common.settings import DatabaseSettings, KafkaSettings
from libs.common.testing.stack import in_process_stack
from services.attribution import jobs as attribution_jobs
from services.attribution import reattribution
from services.attribution.adapters import repository as repo
from services.attribution.handlers import AttributionDeps, handle_batch, publish
from services.attribution.reattribution import reattribute_ids
from tests.integration.attribution.attribution_support import (
    TENANT,
    RecordingProducer,
    baseline,
    create_tenant,
    current,
    deliver,
    email,
    entity,
    messages,
    rows,
)
from tests.integration.attribution.test_attribution_held_out_situations_rematch import (
    _account,
    _deal,
    _mail,
    _person,
    _rep,
)
from tests.integration.polling import poll_json
from tests.integration.quarter.quarter_support import get, new_tenant, post, settle, sync

#: Ana writes to Max every day from 6 September to 4 November; the renewal opened on 20 October
#: re-decides the 30 of its window (6 October on, 14 days' grace), 10 by the CRM batch.
DAYS = [date(2026, 9, 6) + timedelta(days=i) for i in range(60)]
CRM = [_rep("ana"), _account("mega"), _person("max", "mega")]
JOBS = (
    "SELECT state, attempts, done, total, (result->>'examined')::int, (result->>'resumed_after')::int, "
    "(result->>'changed')::int FROM settings_jobs WHERE tenant_id = :t AND kind = 'rematch' ORDER BY created_at"
)


def _mails() -> list[dict[str, Any]]:
    return [_mail(f"max-{d.isoformat()}", "ana", "max@mega.example", d.isoformat()) for d in DAYS]


async def test_a_failed_rematch_job_is_retried_from_its_last_committed_batch(
    kafka_settings: KafkaSettings,
    database_settings: DatabaseSettings,
    db_engine: AsyncEngine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The job re-decides 10 activities a transaction; the broker times out on its second batch.
    It is queued again (``attempts`` 1) and, 0.2 s later, resumes after the first batch: 20 more
    examined, all 30 of the window on the renewal. Before, it was ``failed`` at once, 20 mails of
    the window left as they were, and ``up_to_date`` true."""
    monkeypatch.setenv("ATTRIBUTION_REMATCH_LIMIT", "10")
    monkeypatch.setenv("ATTRIBUTION_REMATCH_RETRY_SECONDS", "0.2")
    monkeypatch.setattr(attribution_jobs, "REMATCH_BATCH", 10, raising=False)
    failures: list[int] = []

    async def flaky(producer: Any, events: Any, prefix: str) -> None:
        if events and not failures:
            failures.append(len(events))
            raise TimeoutError("the broker did not acknowledge in time (test)")
        await publish(producer, events, prefix)

    monkeypatch.setattr(reattribution, "publish", flaky)
    tenant = await new_tenant(db_engine)
    async with in_process_stack(kafka_settings, database_settings) as stack:
        await sync(stack, db_engine, tenant, "2026-11-21T00:00:00Z", *CRM)
        await post(stack, tenant, *_mails())
        await settle(kafka_settings)
        await sync(
            stack,
            db_engine,
            tenant,
            "2026-11-22T00:00:00Z",
            _deal("mega2", "mega", "ana", "2026-10-20", "max"),
        )
        await poll_json(
            stack.gateway,
            "/v1/pipeline/status",
            tenant.read,
            lambda s: s["up_to_date"] and s["settings_jobs_pending"] == 0,
        )
        await settle(kafka_settings)
        status = await get(stack, tenant, "/v1/pipeline/status")
        listed = await get(stack, tenant, "/v1/activities?account_id=acc-mega&limit=500")
    by_deal: dict[tuple[str, str | None], int] = {}
    for item in listed["items"]:
        key = (item["status"], item["deal_id"])
        by_deal[key] = by_deal.get(key, 0) + 1
    assert by_deal == {("attributed", "deal-mega2"): 30, ("account_only", None): 30}
    assert failures == [10]  # the second batch's 10 new versions
    # done 30 of 30 (the first attempt's 10 included); this attempt examined 20 and moved them.
    assert await rows(db_engine, JOBS, {"t": tenant.tenant_id}) == [("done", 1, 30, 30, 20, 10, 20)]
    assert (status["up_to_date"], status["settings_jobs_pending"], status["rematch_jobs_failed"]) == (
        True,
        0,
        0,
    )


async def test_deal_changes_past_the_limit_queue_one_rematch_job_per_tenant(
    kafka_settings: KafkaSettings,
    database_settings: DatabaseSettings,
    db_engine: AsyncEngine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Three batches moving the renewal's dates (each window past the bound of 10) while no job
    runs: one queued ``rematch`` job holding the three windows, not three jobs re-deciding the
    window three times. Once it is claimed, the next batch queues a new one."""
    monkeypatch.setenv("ATTRIBUTION_REMATCH_LIMIT", "10")
    monkeypatch.setenv("ATTRIBUTION_JOBS_INTERVAL_SECONDS", "3600")  # the workers look once, at start
    tenant = await new_tenant(db_engine)
    queued = (
        "SELECT state, jsonb_array_length(parameters->'windows') FROM settings_jobs "
        "WHERE tenant_id = :t AND kind = 'rematch' ORDER BY created_at"
    )
    async with in_process_stack(kafka_settings, database_settings) as stack:
        await sync(stack, db_engine, tenant, "2026-11-21T00:00:00Z", *CRM)
        await post(stack, tenant, *_mails())
        await settle(kafka_settings)
        for hour, created in enumerate(("2026-10-20", "2026-10-18", "2026-10-16")):
            renewal = _deal("mega2", "mega", "ana", created, "max")
            await sync(stack, db_engine, tenant, f"2026-11-22T0{hour}:00:00Z", renewal)
        await settle(kafka_settings)
        coalesced = await rows(db_engine, queued, {"t": tenant.tenant_id})
        claimed = await claim_job(db_engine, REMATCH, timedelta(minutes=30))
        renewal = _deal("mega2", "mega", "ana", "2026-10-14", "max")
        await sync(stack, db_engine, tenant, "2026-11-22T05:00:00Z", renewal)
        await settle(kafka_settings)
        after_claim = await rows(db_engine, queued, {"t": tenant.tenant_id})
    assert coalesced == [("queued", 3)]
    assert claimed is not None
    assert claimed.tenant_id == tenant.tenant_id
    assert after_claim == [("running", 3), ("queued", 1)]


async def test_a_rematch_job_follows_the_parked_replies_of_the_threads_it_moves(
    db_engine: AsyncEngine, kafka_settings: KafkaSettings
) -> None:
    """Ana's mail to Zed (unknown yet) and the reply of Zed's assistant in its thread are parked,
    unmatched. Zed becomes a contact of acc-1 in a batch that re-matches nothing (its bound is 0):
    re-deciding Ana's mail alone (as a ``rematch`` job does, ``reattribute_ids``) moves the reply
    with it (the thread's deal), as the consumer's follow-up pass does. Before, the reply stayed
    unmatched and parked."""
    await create_tenant(db_engine)
    recording = RecordingProducer()
    first = email(
        "t-first", "ana@seller.example", "zed@newco.example", at="2026-11-02T10:00:00Z", thread_id="t-1"
    )
    reply = email(
        "t-reply", "pa@elsewhere.example", "ana@seller.example", at="2026-11-03T10:00:00Z", thread_id="t-1"
    )
    await deliver(db_engine, recording, *baseline(), first, reply)
    before = [(await current(db_engine, a.activity_id)).status for a in (first, reply)]
    zed = entity(entity_type="contact", id="con-9", emails=["zed@newco.example"], account_id="acc-1")
    deps = AttributionDeps(db_engine, recording, "t.", rematch_limit=0)
    await handle_batch(messages(zed), deps)
    producer = make_producer(kafka_settings, "rematch-replies-test")
    await producer.start()
    try:
        report = await reattribute_ids(
            db_engine, producer, kafka_settings.topic_prefix, TENANT, [first.activity_id], dry_run=False
        )
    finally:
        await producer.stop()
    after = [await current(db_engine, a.activity_id) for a in (first, reply)]
    assert before == ["unmatched", "unmatched"]
    # Ana's mail: a close call between acc-1's two open deals; the reply continues its thread.
    assert [(c.status, c.deal_id, c.version, c.rule_path) for c in after] == [
        ("ambiguous", "deal-2", 2, "recency"),
        ("attributed", "deal-2", 2, "thread"),
    ]
    assert (report.examined, report.changed, report.published) == (1, 2, 2)


async def test_a_requeued_job_holding_a_checkpoint_takes_no_new_windows(db_engine: AsyncEngine) -> None:
    """A job its stopping worker put back with a checkpoint resumes past it: windows merged into
    it would lose their activities sorting before the checkpoint, so a new job is queued instead."""
    await create_tenant(db_engine)
    first_windows = [
        {"accounts": ["acc-1"], "contacts": [], "since": "2026-10-01T00:00:00+00:00", "until": None}
    ]
    later_windows = [
        {"accounts": ["acc-2"], "contacts": [], "since": "2026-01-01T00:00:00+00:00", "until": None}
    ]
    async with db_engine.begin() as conn:
        first = await repo.queue_rematch(conn, TENANT, {"windows": first_windows})
    job = await claim_job(db_engine, REMATCH, timedelta(minutes=30))
    assert job is not None
    assert job.job_id == first
    after = ["2026-11-20T00:00:00+00:00", "ffffffff-0000-0000-0000-000000000000"]
    await save_checkpoint(db_engine, job, {"after": after, "done": 500})
    await requeue_job(db_engine, job)  # its worker stopped (a deploy)
    async with db_engine.begin() as conn:
        second = await repo.queue_rematch(conn, TENANT, {"windows": later_windows})
    assert second != first
    jobs = await rows(
        db_engine,
        "SELECT job_id, state, attempts, jsonb_array_length(parameters->'windows'), checkpoint IS NOT NULL "
        "FROM settings_jobs WHERE tenant_id = :t AND kind = 'rematch' ORDER BY created_at",
        {"t": TENANT},
    )
    assert jobs == [(first, "queued", 0, 1, True), (second, "queued", 0, 1, False)]
