"""Two partitions' batches decided at once (the runner's lanes, or two instances): what their
decisions share is locked in PostgreSQL, so each batch decides as if the other had come first.
A reply decided beside the message it answers waits for it (``repo.lock_threads``)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine

from services.attribution.handlers import handle_batch

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
