"""Re-run attribution over a bounded slice of a tenant's history (``spm reattribute``).

Uses the consumer's own code path (``handlers.decide_and_follow``): same reference loading, same rules,
same versioning, so a re-run that reaches the same result writes and publishes nothing. Each
batch is one transaction that locks the attributions it decides; a real run publishes the new
versions and waits for every acknowledgement before committing (as the consumer does), a dry
run rolls back and publishes nothing.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from aiokafka import AIOKafkaProducer
from sqlalchemy.ext.asyncio import AsyncEngine

from services.attribution.adapters import repository as repo
from services.attribution.adapters.reference_loader import load_tenant_settings
from services.attribution.handlers import decide_and_follow, publish

#: (old status, new status); the old one is ``None`` for an activity never attributed before.
Transition = tuple[str | None, str]


@dataclass
class ReattributionReport:
    """What a re-run found (dry run) or did (real run)."""

    tenant_id: str
    dry_run: bool
    examined: int = 0
    changed: int = 0
    deal_changed: int = 0
    published: int = 0
    transitions: Counter[Transition] = field(default_factory=Counter)
    #: (old deal, new deal) -> count, for the attributions whose deal moves.
    deal_moves: Counter[tuple[str | None, str | None]] = field(default_factory=Counter)


async def activity_ids_in_range(
    engine: AsyncEngine, tenant_id: str, since: datetime, until: datetime | None, limit: int | None
) -> list[uuid.UUID]:
    """The tenant's activities with ``since <= occurred_at < until`` the rules decide, oldest first
    (``repository.activities_in_range``: an override naming a deal or an account is left out)."""
    async with engine.connect() as conn:
        return await repo.activities_in_range(conn, tenant_id, since, until, limit)


async def reattribute(
    engine: AsyncEngine,
    producer: AIOKafkaProducer | None,
    topic_prefix: str,
    tenant_id: str,
    since: datetime,
    until: datetime | None = None,
    *,
    dry_run: bool = False,
    limit: int | None = None,
    batch_size: int = 500,
    on_progress: Callable[[int, int], None] | None = None,
) -> ReattributionReport:
    """Re-attribute the tenant's activities in ``[since, until)``; ``on_progress(done, total)``."""
    if producer is None and not dry_run:
        raise ValueError("a real run needs a producer to publish the new versions")
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    ids = await activity_ids_in_range(engine, tenant_id, since, until, limit)
    return await reattribute_ids(
        engine,
        producer,
        topic_prefix,
        tenant_id,
        ids,
        dry_run=dry_run,
        batch_size=batch_size,
        on_progress=on_progress,
    )


#: A re-credit reaches every activity of the people it names (a job, in batches; not a consumer batch).
EVERY = 2**31 - 1


async def recredit_people(
    engine: AsyncEngine,
    producer: AIOKafkaProducer,
    topic_prefix: str,
    tenant_id: str,
    names: Sequence[str],
    *,
    batch_size: int = 500,
    on_progress: Callable[[int, int], None] | None = None,
) -> ReattributionReport:
    """After the tenant's ``rep_aliases`` changed: the people of the rep ids it maps (either way,
    added or removed) are resolved again (``ref_reps.alias_of``), then every automatic attribution
    credited to those ids or their persons, on a deal one of them owns, with a participant at
    a mapped address, or whose source knows its rep by a mapped id (``crm.owner_identities``: a
    RingCentral extension, a Twilio softphone identity), is re-decided and published as a new version where it changes.

    Run again (a job claimed twice), it re-decides the same activities and changes nothing more.
    """
    async with engine.begin() as conn:
        changed = repo.ChangedReferences()
        for name in sorted(set(names)):
            await repo.resolve_people(conn, tenant_id, name, changed)
        persons = await repo.people_of(conn, tenant_id, names)
        reps = set(names) | set(persons.values()) | changed.people_changed
        ids = await repo.activities_of_reps(conn, tenant_id, reps, EVERY)
        ids += await repo.activities_naming(conn, tenant_id, [n for n in names if "@" in n], names, EVERY)
    return await reattribute_ids(
        engine,
        producer,
        topic_prefix,
        tenant_id,
        list(dict.fromkeys(ids)),
        dry_run=False,
        batch_size=batch_size,
        on_progress=on_progress,
    )


async def reattribute_ids(
    engine: AsyncEngine,
    producer: AIOKafkaProducer | None,
    topic_prefix: str,
    tenant_id: str,
    ids: Sequence[uuid.UUID],
    *,
    dry_run: bool,
    batch_size: int = 500,
    on_progress: Callable[[int, int], None] | None = None,
    follow_limit: int = 5_000,
) -> ReattributionReport:
    """Re-attribute these activities of the tenant in batches of ``batch_size``, each one
    transaction, through the consumer's path (``handlers.decide_and_follow``: the parked replies
    of the threads that move, at most ``follow_limit`` a batch, follow); a real run publishes the
    new versions before it commits, a dry run rolls back what it saved."""
    report = ReattributionReport(tenant_id, dry_run)
    if on_progress is not None:
        on_progress(0, len(ids))
    for start in range(0, len(ids), batch_size):
        chunk = ids[start : start + batch_size]
        now = datetime.now(UTC)
        # Leaving the block without a commit rolls the transaction back (dry run, or a failure).
        async with engine.connect() as conn:
            transaction = await conn.begin()
            activities = await repo.load_activities(conn, tenant_id, chunk)
            settings = await load_tenant_settings(conn, tenant_id)
            # The consumer's own path: saved, then linked keepers and parked replies followed.
            batch = await decide_and_follow(conn, tenant_id, activities, chunk, now, settings, follow_limit)
            if producer is not None and not dry_run:
                await publish(producer, batch.events, topic_prefix)
                await transaction.commit()
                report.published += len(batch.events)
            else:
                await transaction.rollback()
        report.examined += len(activities)
        for change in batch.changes:
            report.changed += 1
            report.transitions[
                (change.old_status.value if change.old_status else None, change.new_status.value)
            ] += 1
            if change.old_deal_id != change.new_deal_id:
                report.deal_changed += 1
                report.deal_moves[(change.old_deal_id, change.new_deal_id)] += 1
        if on_progress is not None:
            on_progress(start + len(chunk), len(ids))
    return report
