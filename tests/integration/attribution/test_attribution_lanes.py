"""Two partitions' batches decided at once (the runner's lanes, or two instances): what their
decisions share is locked in PostgreSQL, so each batch decides as if the other had come first.
A reply decided beside the message it answers waits for it (``repo.lock_threads``)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.kafka.runner import ConsumedMessage
from services.attribution.handlers import handle_batch

from . import attribution_support as support
from .attribution_support import (
    RecordedBatch,
    RecordingProducer,
    baseline,
    create_tenant,
    current,
    deliver,
    deps_for,
    email,
    messages,
    rows,
)


@dataclass
class HeldProducer(RecordingProducer):
    """Publishes only once ``release`` is set: its batch's transaction stays open until then."""

    publishing: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def send_batch(self, batch: RecordedBatch, topic: str, *, partition: int) -> asyncio.Future[None]:
        self.publishing.set()
        await self.release.wait()
        return await super().send_batch(batch, topic, partition=partition)


OPENING = email("e-1", "ana@seller.example", "bo@buyer.example", at="2026-11-02T10:00:00Z", thread_id="th")
#: From the buyer's private address: only its thread tells which deal it continues.
REPLY = email(
    "e-2",
    "bo.private@gmail.com",
    "ana@seller.example",
    at="2026-11-03T10:00:00Z",
    thread_id="th",
    direction="inbound",
    outcome="received",
)


async def test_a_reply_alone_is_not_credited_to_the_deal(db_engine: AsyncEngine) -> None:
    """What the reply gets without its thread: the case the lock must keep from happening."""
    await create_tenant(db_engine)
    producer = RecordingProducer()
    await deliver(db_engine, producer, *baseline())
    await deliver(db_engine, producer, REPLY)
    alone = await current(db_engine, REPLY.activity_id)
    assert (alone.deal_id, alone.rule_path) != ("deal-1", "thread")


async def test_a_reply_decided_beside_the_message_it_answers_waits_and_continues_its_deal(
    db_engine: AsyncEngine,
) -> None:
    await create_tenant(db_engine)
    await deliver(db_engine, RecordingProducer(), *baseline())
    held = HeldProducer()
    opening = asyncio.create_task(handle_batch(messages(OPENING), deps_for(db_engine, held)))
    # The opening is decided and saved, its transaction still open (publishing comes before COMMIT).
    await asyncio.wait_for(held.publishing.wait(), 30)
    reply = asyncio.create_task(handle_batch(messages(REPLY), deps_for(db_engine, RecordingProducer())))
    await asyncio.sleep(0.5)
    assert not reply.done()  # it waits for the thread's lock
    held.release.set()
    await asyncio.wait_for(asyncio.gather(opening, reply), 30)
    first = await current(db_engine, OPENING.activity_id)
    answer = await current(db_engine, REPLY.activity_id)
    assert (first.version, first.status, first.deal_id, first.rule_path) == (
        1,
        "attributed",
        "deal-1",
        "contact_role",
    )
    assert (answer.version, answer.status, answer.deal_id, answer.rule_path) == (
        1,
        "attributed",
        "deal-1",
        "thread",
    )


def _tenant_mails(
    monkeypatch: pytest.MonkeyPatch, tenant: str, tag: str, n: int
) -> list[ConsumedMessage[Any]]:
    monkeypatch.setattr(support, "TENANT", tenant)
    days = [f"2026-11-0{2 + i % 5}T10:00:00Z" for i in range(n)]
    return messages(
        *(email(f"{tag}-{i}", "ana@seller.example", "bo@buyer.example", at=days[i]) for i in range(n))
    )


async def test_two_lanes_with_two_tenants_in_opposite_order_never_deadlock(
    db_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each batch takes its tenants' locks in one order (sorted), whatever order its messages came
    in: lane A with acme then beta, lane B with beta then acme, both wait at most, never deadlock."""
    for tenant in ("acme", "beta"):
        monkeypatch.setattr(support, "TENANT", tenant)
        await create_tenant(db_engine)
        await deliver(db_engine, RecordingProducer(), *baseline())
    failures: list[BaseException] = []
    for r in range(4):
        lane_a = _tenant_mails(monkeypatch, "acme", f"A{r}", 20) + _tenant_mails(
            monkeypatch, "beta", f"A{r}", 20
        )
        lane_b = _tenant_mails(monkeypatch, "beta", f"B{r}", 20) + _tenant_mails(
            monkeypatch, "acme", f"B{r}", 20
        )
        done = await asyncio.gather(
            handle_batch(lane_a, deps_for(db_engine, RecordingProducer())),
            handle_batch(lane_b, deps_for(db_engine, RecordingProducer())),
            return_exceptions=True,
        )
        failures += [x for x in done if isinstance(x, BaseException)]
    assert [repr(x)[:200] for x in failures] == []
    counts = await rows(
        db_engine, "SELECT tenant_id, count(*) FROM attributions GROUP BY tenant_id ORDER BY tenant_id"
    )
    assert counts == [("acme", 160), ("beta", 160)]
