"""Erasure in attribution: forget a person everywhere, and keep them forgotten.

``run_erasure`` is the job behind ``POST /v1/privacy/erasures`` and ``spm privacy erase``. It
pages through the tenant's activities; an activity in which the person is the only external
participant is deleted (with its attributions, overrides and ingest bookkeeping) and metrics
receives a new version of it that counts nothing, so the contribution it held is retracted
exactly; any other activity of theirs loses that participant and is re-attributed, a new
version replacing the old contribution. Their CRM contacts go too, with their deal roles.
Every step is idempotent: a job that died is resumed from the start and finds nothing twice.

``screen_incoming`` keeps them forgotten: every activity the consumer receives goes through
the same check (:func:`libs.common.erasures.screen_participants`) against the cached list.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from contextlib import suppress
from datetime import UTC, datetime

from aiokafka import AIOKafkaProducer
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from libs.common.contracts.activities import ActivityIngestedV1
from libs.common.contracts.activities_fast import IngestedEvent, as_contract
from libs.common.contracts.attribution_fast import Attributed
from libs.common.contracts.crm import ContactV1, CrmEntityChangedV1
from libs.common.erasures import (
    ErasedIdentities,
    ErasureListCache,
    add_erased_identities,
    identity_hashes,
    is_erased,
    meeting_removals,
    names_anyone,
    names_erased_person,
    screen_participants,
    undated_deletion_calendars,
    webhook_states,
)
from services.attribution.adapters import erasure as store
from services.attribution.adapters import repository as repo
from services.attribution.adapters.reference_loader import load_reference_index, load_tenant_settings
from services.attribution.domain.reference_index import attribute_from_index
from services.attribution.handlers import attribute_batch, policy_from_settings, publish, retraction

log = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int], None]


async def external_participants(
    conn: AsyncConnection, tenant_id: str, activities: Sequence[IngestedEvent]
) -> dict[uuid.UUID, int]:
    """How many external participants attribution sees in each activity (its own rule, reps known)."""
    if not activities:
        return {}
    settings = await load_tenant_settings(conn, tenant_id)
    policy = policy_from_settings(settings)
    index = await load_reference_index(conn, tenant_id, activities, policy.grace_days_after_closed, settings)
    counts = {}
    for activity in activities:
        decision = attribute_from_index(activity, index, policy)
        counts[activity.activity_id] = decision.external_participants
    return counts


async def _split(
    conn: AsyncConnection, tenant_id: str, activities: Sequence[IngestedEvent], erased: ErasedIdentities
) -> tuple[list[IngestedEvent], list[ActivityIngestedV1], list[ActivityIngestedV1]]:
    """(untouched, redacted: erased participants removed, others remain, emptied: no external left)."""
    if not erased:
        return list(activities), [], []
    untouched: list[IngestedEvent] = []
    stripped: list[ActivityIngestedV1] = []
    for activity in activities:
        # The check reads either form; only an activity that names an erased person becomes the
        # contract's model (the consumer's activities may be the decoder's structs), which the
        # redacted pages and their lookups take.
        if not any(is_erased(p, erased) for p in activity.participants):
            untouched.append(activity)
            continue
        model = as_contract(activity)
        participants, _ = screen_participants(model.participants, erased)
        stripped.append(model.model_copy(update={"participants": participants}))
    external = await external_participants(conn, tenant_id, stripped)
    redacted = [a for a in stripped if external[a.activity_id] > 0]
    emptied = [a for a in stripped if external[a.activity_id] == 0]
    return untouched, redacted, emptied


class ErasureScreen:
    """The consumer's check against the cached erasure list (:class:`handlers.ErasureCheck`)."""

    def __init__(self, erasures: ErasureListCache) -> None:
        self.erasures = erasures

    async def activities(
        self, conn: AsyncConnection, activities: Sequence[IngestedEvent]
    ) -> list[IngestedEvent]:
        """The batch without erased people: their participation removed, their own activities dropped."""
        kept, _dropped = await self.split(conn, activities)
        return kept

    async def split(
        self, conn: AsyncConnection, activities: Sequence[IngestedEvent]
    ) -> tuple[list[IngestedEvent], list[IngestedEvent]]:
        """(kept: the activities without erased people, their participation removed; emptied: those
        left without an external participant once they are out, an erased person's own, which an
        erasure deletes, ``erase_emptied``)."""
        by_tenant: dict[str, list[IngestedEvent]] = defaultdict(list)
        for activity in activities:
            by_tenant[activity.tenant_id].append(activity)
        kept: list[IngestedEvent] = []
        emptied: list[IngestedEvent] = []
        for tenant_id, theirs in by_tenant.items():
            # Reference data is read only for activities that named an erased person.
            erased = await self.erasures.get(tenant_id)
            untouched, redacted, dropped = await _split(conn, tenant_id, theirs, erased)
            kept += untouched
            kept += redacted
            emptied += dropped
        return kept, emptied

    async def crm(self, events: Sequence[CrmEntityChangedV1]) -> list[CrmEntityChangedV1]:
        """CRM changes without the contacts of erased people (a CRM replay must not bring them back)."""
        kept = []
        for event in events:
            entity = event.entity
            if isinstance(entity, ContactV1) and names_erased_person(
                entity.emails, entity.phones, await self.erasures.get(event.tenant_id)
            ):
                continue
            kept.append(event)
        return kept


async def _erase_contacts(
    conn: AsyncConnection, tenant_id: str, erasure_id: uuid.UUID, erased: ErasedIdentities
) -> tuple[ErasedIdentities, int]:
    """Delete the person's CRM contacts; their other addresses and phones join the list (the same
    person), an address also as the mailbox it delivers to (``identity_hashes``)."""
    contacts: list[str] = []
    hashes = set(erased.hashes)
    for contact_id, emails, phones in await store.contact_identities(conn, tenant_id):
        if names_erased_person(emails, phones, erased):
            contacts.append(contact_id)
            hashes |= identity_hashes(erased.key, emails, phones)
    if not contacts:
        return erased, 0
    await add_erased_identities(conn, tenant_id, erasure_id, sorted(hashes))
    return ErasedIdentities(erased.key, frozenset(hashes)), await store.delete_contacts(
        conn, tenant_id, contacts
    )


async def _erase_webhook_state(conn: AsyncConnection, tenant_id: str, erased: ErasedIdentities) -> int:
    keys = [
        (source, key)
        for source, key, state in await webhook_states(conn, tenant_id)
        if names_anyone(state, erased)
    ]
    await store.delete_webhook_states(conn, tenant_id, keys)
    return len(keys)


async def _erase_removals(conn: AsyncConnection, tenant_id: str, erased: ErasedIdentities) -> None:
    """Forget the meetings the person removed from her calendar (``meeting_removals``, by her
    address): the meeting no longer lists her once she left it, so its payload does not tell; and
    the deletions read in her calendar (``ingest_undated_deletions``)."""
    removals = await meeting_removals(conn, tenant_id)
    await store.forget_removals(conn, tenant_id, [r for r in removals if erased.names(r.address, None)])
    # And when a deletion was read in her calendar (``ingest_undated_deletions``, by her mailbox).
    calendars = await undated_deletion_calendars(conn, tenant_id)
    await store.forget_undated_deletions_read_in(
        conn, tenant_id, [c for c in calendars if erased.names(c, None)]
    )


async def erase_emptied(
    conn: AsyncConnection, tenant_id: str, emptied: Sequence[IngestedEvent], now: datetime
) -> list[Attributed]:
    """Activities left without an external participant once the erased people are out (``_split``):
    deleted with their attributions, overrides and ledger rows, each one attributed here
    retracted by a version that counts nothing. Returns those versions, to publish (the erasure
    job; the held sweep, for a meeting it finds still ``scheduled`` before the job reached it)."""
    if not emptied:
        return []
    ids = [a.activity_id for a in emptied]
    stored = await repo.current_attributions(conn, tenant_id, ids)
    events = [retraction(a, stored[a.activity_id], now) for a in emptied if a.activity_id in stored]
    await store.delete_activities(conn, tenant_id, ids)
    return events


async def _erase_page(
    conn: AsyncConnection,
    producer: AIOKafkaProducer,
    topic_prefix: str,
    tenant_id: str,
    page: Sequence[IngestedEvent],
    erased: ErasedIdentities,
    counts: Counter[str],
) -> None:
    now = datetime.now(UTC)
    _, redacted, emptied = await _split(conn, tenant_id, page, erased)
    events = await erase_emptied(conn, tenant_id, emptied, now)
    if redacted:
        await store.replace_payloads(conn, redacted)
        # Always a new version: its facts (external participants, contacts) changed even when the
        # attribution did not, and metrics replaces the stored contribution with it.
        decided = await attribute_batch(
            conn, tenant_id, redacted, now, revised={a.activity_id for a in redacted}
        )
        await repo.save_attributions(conn, decided.rows)
        events += decided.events
    # Acknowledged before the commit, as the consumer does: a failure re-runs the page.
    await publish(producer, events, topic_prefix)
    counts["activities_deleted"] += len(emptied)
    counts["activities_redacted"] += len(redacted)
    counts["versions_published"] += len(events)


async def run_erasure(
    engine: AsyncEngine,
    producer: AIOKafkaProducer,
    topic_prefix: str,
    key: bytes,
    tenant_id: str,
    erasure_id: uuid.UUID,
    *,
    batch_size: int = 500,
    on_progress: ProgressCallback | None = None,
) -> dict[str, int]:
    """Erase the person of one request from the tenant; returns the counts (also stored on the request)."""
    async with engine.begin() as conn:
        request = await store.load_erasure(conn, tenant_id, erasure_id)
        if request is None:
            raise LookupError(f"no erasure {erasure_id} for tenant {tenant_id!r}")
        if request.state == "done":
            return dict(request.counts)
        total = await store.count_activities(conn, tenant_id)
        await store.mark_running(conn, tenant_id, erasure_id, total)
        # A resumed job also knows the identities it found in the CRM before it died.
        listed = await store.listed_identities(conn, tenant_id, erasure_id)
    erased = ErasedIdentities(key, frozenset({request.identity_hash, *listed}))
    counts: Counter[str] = Counter(activities_deleted=0, activities_redacted=0, versions_published=0)
    try:
        async with engine.begin() as conn:
            erased, counts["contacts_deleted"] = await _erase_contacts(conn, tenant_id, erasure_id, erased)
            counts["webhook_states_deleted"] = await _erase_webhook_state(conn, tenant_id, erased)
            await _erase_removals(conn, tenant_id, erased)
        done, after = 0, None
        while True:
            async with engine.begin() as conn:
                page = await store.activity_page(conn, tenant_id, after, batch_size)
                if not page:
                    break
                await _erase_page(conn, producer, topic_prefix, tenant_id, page, erased, counts)
                done += len(page)
                after = page[-1].activity_id
                await store.report_progress(conn, tenant_id, erasure_id, done, dict(counts))
            if on_progress is not None:
                on_progress(done, max(total, done))
        async with engine.begin() as conn:
            await store.mark_metrics_dirty(conn, tenant_id)
            await store.finish(conn, tenant_id, erasure_id, dict(counts))
    except Exception as exc:
        async with engine.begin() as conn:
            await store.finish(
                conn, tenant_id, erasure_id, dict(counts), error=f"{type(exc).__name__}: {exc}"
            )
        raise
    return dict(counts)


class ErasureWorker:
    """Runs queued erasures one at a time, polling every ``interval_seconds`` (one replica takes each)."""

    def __init__(
        self,
        engine: AsyncEngine,
        producer: AIOKafkaProducer,
        topic_prefix: str,
        key: bytes,
        interval_seconds: float,
    ) -> None:
        self.engine = engine
        self.producer = producer
        self.topic_prefix = topic_prefix
        self.key = key
        self.interval = interval_seconds
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()

    async def run_once(self) -> bool:
        """Run the next queued erasure; False when there was none."""
        async with self.engine.begin() as conn:
            claimed = await store.claim_next(conn)
        if claimed is None:
            return False
        tenant_id, erasure_id = claimed
        try:
            await run_erasure(self.engine, self.producer, self.topic_prefix, self.key, tenant_id, erasure_id)
        except Exception:
            # Recorded as failed on the request; POSTing it again queues it again.
            log.exception("erasure failed", extra={"tenant_id": tenant_id, "erasure_id": str(erasure_id)})
        return True

    async def run(self) -> None:
        while not self._stopping.is_set():
            try:
                while await self.run_once():
                    pass
            except Exception:
                log.exception("erasure worker: claiming failed; retrying")
            with suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.interval)
