"""Attribution use cases: apply CRM changes, attribute new activities, re-match parked ones.

Ordering inside one batch transaction: reference data first (so activities in the same batch
see it), then activities, then re-matches. Output events are published and acknowledged
*before* the transaction commits: if the commit then fails, the retry recomputes the same
versions from the same state, and metrics deduplicates by (activity, version). Publishing
after the commit could lose a version for good (the replay finds nothing new to publish).
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter, defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, cast

import msgspec
from aiokafka import AIOKafkaProducer
from msgspec import UNSET
from msgspec.structs import replace as replace_struct
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from libs.common.contracts.activities import ActivityDeletedV1, ActivityIngestedV1, ActivityKind
from libs.common.contracts.activities_fast import Ingested, IngestedEvent, as_contract
from libs.common.contracts.attribution import AttributionStatus
from libs.common.contracts.attribution_fast import Attributed, AttributedFacts, encode_attributed
from libs.common.contracts.commands import AttributionOverriddenV1
from libs.common.contracts.crm import CrmEntityChangedV1
from libs.common.contracts.envelope import Envelope
from libs.common.contracts.fields import isoformat
from libs.common.contracts.tenant_settings import TenantSettings
from libs.common.db.engine import transaction
from libs.common.kafka.publisher import OutgoingMessage, send_in_batches
from libs.common.kafka.runner import ConsumedMessage, Rejected
from libs.common.telemetry import timed
from libs.common.tenant_settings_store import TenantSettingsCache, settings_of_batch
from libs.common.topics import ACTIVITY_ATTRIBUTED
from services.attribution.adapters import repository as repo
from services.attribution.adapters.erasure import replace_payloads
from services.attribution.adapters.reference_loader import load_reference_index, load_tenant_settings
from services.attribution.domain.attendance import Removal, removals_from_calendars, removals_in_force
from services.attribution.domain.decision import AttributionDecision, next_version, should_park, status_of
from services.attribution.domain.duplicates import (
    SourceReport,
    duplicate_explanation,
    mark_duplicates,
    report_of,
    report_windows,
)
from services.attribution.domain.reference import AmbiguityPolicy, CurrentAttribution, TenantAttributionPolicy
from services.attribution.domain.reference_index import ThreadMember, attribute_from_index
from services.attribution.domain.rematch import (
    RematchWindow,
    deal_rematch_window,
    identity_rematch_window,
    windows_as_parameters,
)
from services.attribution.domain.source_deals import SourceDeals, with_source_deals
from services.attribution.telemetry import ATTRIBUTIONS, REMATCHES

#: An activity's two forms, as a tuple for ``isinstance``: ``Ingested | ActivityIngestedV1`` is a
#: union built anew at each evaluation (about 900 instructions with the check, a tuple's 250),
#: and a pydantic model's check a miss costs about 1,000: the per-message checks try this first.
_ACTIVITY_TYPES = (Ingested, ActivityIngestedV1)


class ErasureCheck(Protocol):
    """Removes erased people from what the consumer receives (``services.attribution.erasure``)."""

    async def activities(
        self, conn: AsyncConnection, activities: Sequence[IngestedEvent]
    ) -> list[IngestedEvent]: ...

    async def split(
        self, conn: AsyncConnection, activities: Sequence[IngestedEvent]
    ) -> tuple[list[IngestedEvent], list[IngestedEvent]]: ...

    async def crm(self, events: Sequence[CrmEntityChangedV1]) -> list[CrmEntityChangedV1]: ...


@dataclass(frozen=True, slots=True)
class AttributionDeps:
    engine: AsyncEngine
    producer: AIOKafkaProducer
    topic_prefix: str
    rematch_limit: int = 5_000
    #: The process's tenant settings; None reads them afresh for every batch (tests, tools).
    settings: TenantSettingsCache | None = None
    erasures: ErasureCheck | None = None


def policy_from_settings(settings: TenantSettings) -> TenantAttributionPolicy:
    policy = settings.attribution
    return TenantAttributionPolicy(
        ambiguity_policy=AmbiguityPolicy(policy.ambiguity_policy.value),
        grace_days_before_created=policy.grace_days_before_created,
        grace_days_after_closed=policy.grace_days_after_closed,
        extra_personal_domains=frozenset(policy.extra_personal_domains),
        min_confidence=policy.min_confidence,
        park_days=policy.park_days,
        time_zone=settings.time_zone,
    )


def _current(stored: repo.StoredAttribution | None) -> CurrentAttribution | None:
    if stored is None:
        return None
    return CurrentAttribution(
        version=stored.version,
        status=status_of(stored.status),
        rep_id=stored.rep_id,
        team_id=stored.team_id,
        account_id=stored.account_id,
        deal_id=stored.deal_id,
        secondary_deal_ids=stored.secondary_deal_ids,
        confidence=stored.confidence,
        overridden=stored.is_override,
        duplicate_of=stored.duplicate_of,
    )


def activity_facts(
    activity: IngestedEvent, external_participants: int = 0, external_contact_ids: tuple[str, ...] = ()
) -> AttributedFacts:
    """What metrics counts of ``activity``, with the external people the decision found on it."""
    return AttributedFacts(
        kind=activity.kind,
        direction=activity.direction,
        outcome=activity.outcome,
        occurred_at=activity.occurred_at,
        duration_seconds=activity.duration_seconds,
        external_participants=external_participants,
        external_contact_ids=external_contact_ids,
        automated=activity.automated,
        revision=activity.revision,
    )


def retraction(
    activity: IngestedEvent,
    stored: repo.StoredAttribution,
    now: datetime,
    rule_path: str = "erased",
    detail: dict[str, str] | None = None,
) -> Attributed:
    """The version that takes an activity out of metrics: it counts nothing and credits no one
    (an erased person's activity, one its source deleted)."""
    return Attributed(
        tenant_id=activity.tenant_id,
        activity_id=activity.activity_id,
        version=stored.version + 1,
        status=AttributionStatus.EXCLUDED,
        confidence=1.0,
        facts=activity_facts(activity),
        decided_at=now,
        explanation={
            "rule_path": rule_path,
            "ingested_at": isoformat(activity.ingested_at),
            **(detail or {}),
        },
    )


async def retract_deleted(
    conn: AsyncConnection,
    tenant_id: str,
    deletions: Sequence[ActivityDeletedV1],
    now: datetime,
    settings: TenantSettings | None = None,
) -> AttributedBatch:
    """Each deletion applied to the activity attributed here, its new version saved.

    A deletion seen in the calendar of someone other than the meeting's organizer takes that
    person out of the meeting (``domain.attendance``): the meeting is stored without her and
    decided again. Any other deletion retracts the activity until a newer revision restores it
    (see :func:`attribute_batch`). One never attributed here, already retracted, or older than
    the revision held (``repo.advance_to_deletions``) gets nothing.
    """
    batch = AttributedBatch()
    wanted: dict[uuid.UUID, list[ActivityDeletedV1]] = defaultdict(list)
    for deletion in deletions:
        wanted[deletion.activity_id].append(deletion)
    current = await repo.current_attributions(conn, tenant_id, list(wanted))
    live = [i for i in wanted if i in current and not current[i].deleted]
    revisions = {i: _latest_revision(wanted[i]) for i in live}
    applied = await repo.advance_to_deletions(conn, tenant_id, revisions)
    retracted: list[tuple[IngestedEvent, ActivityDeletedV1]] = []
    left: list[ActivityIngestedV1] = []
    removals: list[tuple[uuid.UUID, Removal]] = []
    held = await repo.load_activities(conn, tenant_id, [i for i in live if i in applied])
    # Whose calendar: a rep's mailbox may be synced under another of her addresses.
    seen = [a for a in held if any(d.seen_in for d in wanted[a.activity_id])]
    addresses = {d.seen_in for a in seen for d in wanted[a.activity_id] if d.seen_in}
    addresses |= {p.email for a in seen for p in a.participants if p.email}
    people = await repo.people_of_addresses(conn, tenant_id, addresses) if seen else {}
    for activity in held:
        theirs = wanted[activity.activity_id]
        if all(d.seen_in is None for d in theirs):
            retracted.append((activity, theirs[-1]))
            continue
        deleting, meeting, gone = removals_from_calendars(
            as_contract(activity), [d.seen_in for d in theirs], people
        )
        if deleting is not None:
            retracted.append((activity, theirs[deleting]))
        elif meeting is not None:
            left.append(meeting)
            # Remembered at the revision held now (the deletion's, when it moved it up).
            held_at = max(activity.revision, revisions.get(activity.activity_id) or 0)
            removals += [
                (activity.activity_id, Removal(p.email.lower(), p.response_status, held_at))
                for p in gone
                if p.email is not None
            ]
    await repo.record_removals(conn, tenant_id, removals)
    if left:
        # Its facts changed (who attends, maybe the outcome): a new version even when its credit did not.
        await replace_payloads(conn, left)
        decided = await attribute_batch(
            conn, tenant_id, left, now, settings, revised={a.activity_id for a in left}
        )
        await repo.save_attributions(conn, decided.rows)
        batch.extend(decided)
    retractions = AttributedBatch()
    for activity, deletion in retracted:
        stored = current[activity.activity_id]
        event = retraction(activity, stored, now, *_retracted_because(deletion))
        retractions.events.append(event)
        retractions.rows.append(
            {
                "tenant_id": tenant_id,
                "activity_id": activity.activity_id,
                "version": event.version,
                "status": event.status._value_,
                "rep_id": None,
                "team_id": None,
                "account_id": None,
                "deal_id": None,
                "secondary_deal_ids": [],
                "confidence": event.confidence,
                "explanation": event.explanation,
                "is_override": False,
                "decided_at": now,
                "parked_until": None,
                "occurred_at": activity.occurred_at,
                "kind": activity.kind._value_,
                "inserted": False,
            }
        )
        retractions.changes.append(
            AttributionChange(
                activity.activity_id,
                event.version,
                status_of(stored.status),
                event.status,
                stored.deal_id,
                None,
            )
        )
    await repo.save_attributions(conn, retractions.rows)
    await repo.mark_retracted(conn, tenant_id, [activity.activity_id for activity, _ in retracted])
    batch.extend(retractions)
    return batch


def _retracted_because(deletion: ActivityDeletedV1) -> tuple[str, dict[str, str]]:
    """The retraction's ``rule_path`` and what the explanation says of it: ``deleted_at_source``
    with when ingest received the deletion and from which adapter, or, for an object whose newer
    revision is no meeting (``not_a_meeting``: a hold only colleagues attend, time away; it was
    not deleted), ``not_a_meeting`` with ingest's reason, when it read it and from which adapter."""
    if deletion.not_a_meeting is None:
        return repo.DELETED_AT_SOURCE, {
            "deleted_at": deletion.deleted_at.isoformat(),
            "deleted_by": deletion.adapter_version,
        }
    return repo.NOT_A_MEETING, {
        "reason": deletion.not_a_meeting,
        "read_at": deletion.deleted_at.isoformat(),
        "read_by": deletion.adapter_version,
    }


def _unit(value: float) -> float:
    """``max(0.0, min(1.0, value))``, the same float, without two calls that each parse their
    keywords (``min`` and ``max`` do on every call in Python 3.11)."""
    value = value if value < 1.0 else 1.0
    return value if value > 0.0 else 0.0


def _latest_revision(deletions: Sequence[ActivityDeletedV1]) -> int | None:
    """Where several deletions of one activity stand: at the latest revision any of them tells."""
    return max((d.revision for d in deletions if d.revision is not None), default=None)


async def retract_all_deleted(
    conn: AsyncConnection,
    deletions: Sequence[ActivityDeletedV1],
    now: datetime,
    settings: Mapping[str, TenantSettings] | None = None,
) -> AttributedBatch:
    """:func:`retract_deleted` for each tenant's deletions."""
    by_tenant: dict[str, list[ActivityDeletedV1]] = defaultdict(list)
    for deletion in deletions:
        by_tenant[deletion.tenant_id].append(deletion)
    batch = AttributedBatch()
    for tenant_id, theirs in by_tenant.items():
        tenant_settings = settings.get(tenant_id) if settings is not None else None
        batch.extend(await retract_deleted(conn, tenant_id, theirs, now, tenant_settings))
    return batch


def deletions_in_force(
    messages: Sequence[ConsumedMessage[Any]], fresh: Collection[uuid.UUID]
) -> list[ActivityDeletedV1]:
    """The batch's deletions, but those a restore follows in it.

    Deletions are applied after the batch's activities (:func:`handle_batch`), so a revision read
    *after* a deletion, newer than every revision before it (and than the deletion's, when it
    has one) and newer than the one stored (``fresh``), is the activity restored: its deletion is
    then skipped and the revision decided as any newer one. A copy of a revision read before the
    deletion is no restore.
    """
    newest: dict[uuid.UUID, int] = {}
    deletions: list[ActivityDeletedV1] = []
    #: Per activity, its deletions so far (their positions) and the revision each must be beaten by.
    pending: dict[uuid.UUID, list[tuple[int, int]]] = defaultdict(list)
    restored: set[int] = set()
    for m in messages:
        payload = m.payload
        # An activity first: most messages are (``_ACTIVITY_TYPES``); a deletion is none.
        if isinstance(payload, _ACTIVITY_TYPES):
            if payload.activity_id not in fresh:
                continue
            activity_id, revision = payload.activity_id, payload.revision
            if waiting := pending.get(activity_id):
                restored.update(i for i, floor in waiting if revision > floor)
            # ``max`` of two, inline: ``min`` and ``max`` parse their keywords on every call.
            held = newest.get(activity_id, -1)
            newest[activity_id] = revision if revision > held else held
        elif isinstance(payload, ActivityDeletedV1):
            own = -1 if payload.revision is None else payload.revision
            pending[payload.activity_id].append(
                (len(deletions), max(newest.get(payload.activity_id, -1), own))
            )
            deletions.append(payload)
    return [deletion for index, deletion in enumerate(deletions) if index not in restored]


def attributed_event(
    activity: IngestedEvent, decision: AttributionDecision, version: int, decided_at: datetime
) -> Attributed:
    """The version published for ``decision``.

    The contract's msgspec struct, not ``ActivityAttributedV1``: validating the model was 12 us of
    the 17 us spent per version on it; every part comes from a validated activity and the
    reference data, and ``encode_attributed`` gives the bytes pydantic gave
    (``tests/unit/attribution/test_attributed_encoding.py``).
    """
    return Attributed(
        tenant_id=activity.tenant_id,
        activity_id=activity.activity_id,
        version=version,
        status=decision.status,
        rep_id=decision.rep_id,
        team_id=decision.team_id,
        account_id=decision.account_id,
        deal_id=decision.deal_id,
        secondary_deal_ids=decision.secondary_deal_ids,
        confidence=_unit(decision.confidence),
        facts=activity_facts(activity, decision.external_participants, decision.external_contact_ids),
        decided_at=decided_at,
        explanation={"rule_path": decision.rule_path, "ingested_at": isoformat(activity.ingested_at)},
        duplicate_of=UNSET if decision.duplicate_of is None else decision.duplicate_of,
    )


class AttributionChange(msgspec.Struct, frozen=True):
    """One activity whose attribution moves to a new version (a frozen msgspec struct, as the
    decision: one per version decided)."""

    activity_id: uuid.UUID
    version: int
    old_status: AttributionStatus | None
    new_status: AttributionStatus
    old_deal_id: str | None
    new_deal_id: str | None


@dataclass
class AttributedBatch:
    """New versions for a set of activities: rows to save, events to publish, what changed."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    events: list[Attributed] = field(default_factory=list)
    changes: list[AttributionChange] = field(default_factory=list)
    #: Second reports' words on the deal, for their kept reports (``repo.record_sightings``).
    links: list[repo.Sighting] = field(default_factory=list)

    def extend(self, other: AttributedBatch) -> None:
        self.rows += other.rows
        self.events += other.events
        self.changes += other.changes
        self.links += other.links


def _thread_member(
    activity: IngestedEvent,
    decision: AttributionDecision,
    version: int | None,
    stored: repo.StoredAttribution | None,
) -> ThreadMember:
    """What later replies of the thread see: the new version, else the one still in force."""
    if version is None and stored is not None:
        return ThreadMember(
            activity.activity_id,
            activity.occurred_at,
            stored.version,
            stored.status,
            stored.rep_id,
            stored.account_id,
            stored.deal_id,
            stored.secondary_deal_ids,
            stored.confidence,
        )
    return ThreadMember.of_decision(activity, decision, version or 1)


async def attribute_batch(
    conn: AsyncConnection,
    tenant_id: str,
    activities: Sequence[IngestedEvent],
    now: datetime,
    settings: TenantSettings | None = None,
    revised: Collection[uuid.UUID] = (),
    inserted: Collection[uuid.UUID] = (),
    restored: Collection[uuid.UUID] = (),
) -> AttributedBatch:
    """Decide every activity against the current reference data; keep only what changes.

    Activities are decided oldest first, and each decision is remembered for its thread, so a
    reply in the same batch as the message it answers sees that message's attribution.
    ``revised`` activities arrived as a newer revision: their facts (time, duration, outcome)
    may have changed even when their attribution did not, so they always get a new version.
    ``inserted`` activities were stored for the first time in this transaction: they have no
    attribution yet, so only the others' current versions are read (``repo.store_activities``).
    An activity deleted at its source is decided again only when ``restored``: a revision newer
    than its deletion arrived (the consumer's newer revisions); no re-match, ``spm reattribute``,
    override or erasure brings it back.
    """
    batch = AttributedBatch()
    if not activities:
        return batch
    if settings is None:
        settings = await load_tenant_settings(conn, tenant_id)
    policy = policy_from_settings(settings)
    # Before the threads' versions are read: a batch deciding the same thread beside this one
    # commits first and is seen (``repo.lock_threads``).
    await repo.lock_threads(conn, tenant_id, {a.thread_id for a in activities if a.thread_id is not None})
    index = await load_reference_index(conn, tenant_id, activities, policy.grace_days_after_closed, settings)
    current = await repo.current_attributions(
        conn, tenant_id, [a.activity_id for a in activities if a.activity_id not in inserted]
    )
    if any(stored.deleted for stored in current.values()):
        # Deleted at its source: only a newer revision (a restore at the source) brings it back.
        activities = [
            a for a in activities if a.activity_id in restored or not _deleted(current.get(a.activity_id))
        ]
    decided: list[tuple[IngestedEvent, AttributionDecision]] = []
    # One instant for every row parked by this batch (the same ``now``): built once.
    parked_until = now + timedelta(days=policy.park_days)
    # A UUID orders as its text does (fixed-width hex): no str() per activity for the tie-break.
    for activity in sorted(activities, key=lambda a: (a.occurred_at, a.activity_id)):
        decision = attribute_from_index(activity, index, policy)
        stored = current.get(activity.activity_id)
        if activity.thread_id is not None:
            version = _version(activity, decision, stored, revised)
            index.remember(activity.thread_id, _thread_member(activity, decision, version, stored))
        decided.append((activity, decision))
    duplicates = await _source_duplicates(conn, tenant_id, activities, decided, current)
    for activity, decision in decided:
        stored = current.get(activity.activity_id)
        keeper = duplicates.get(activity.activity_id)
        if keeper is not None:
            decision = keeper
            # The kept report is counted: it takes the deal a CRM user filed this report on.
            link = (tenant_id, cast(uuid.UUID, keeper.duplicate_of), activity.source, activity.revision)
            batch.links.append((*link, activity.crm.deal_id))
        version = _version(activity, decision, stored, revised)
        if version is None:
            continue
        batch.rows.append(
            {
                "tenant_id": tenant_id,
                "activity_id": activity.activity_id,
                "version": version,
                # ``_value_``: what ``value`` returns, without its two Python calls (``domain.matching``).
                "status": decision.status._value_,
                "rep_id": decision.rep_id,
                "team_id": decision.team_id,
                "account_id": decision.account_id,
                "deal_id": decision.deal_id,
                "secondary_deal_ids": list(decision.secondary_deal_ids),
                "confidence": decision.confidence,
                # ``attribute_activity`` already lists the runners-up in it.
                "explanation": decision.explanation,
                "is_override": decision.overridden,
                "decided_at": now,
                "parked_until": parked_until if should_park(decision, policy) else None,
                "occurred_at": activity.occurred_at,
                "kind": activity.kind._value_,
                # No current row to replace: ``save_attributions`` does not look one up.
                "inserted": activity.activity_id in inserted,
            }
        )
        batch.events.append(attributed_event(activity, decision, version, now))
        batch.changes.append(
            AttributionChange(
                activity.activity_id,
                version,
                status_of(stored.status) if stored is not None else None,
                decision.status,
                stored.deal_id if stored is not None else None,
                decision.deal_id,
            )
        )
    return batch


def _deleted(stored: repo.StoredAttribution | None) -> bool:
    return stored is not None and stored.deleted


def _version(
    activity: IngestedEvent,
    decision: AttributionDecision,
    stored: repo.StoredAttribution | None,
    revised: Collection[uuid.UUID],
) -> int | None:
    """The version to publish ``decision`` under, or None when nothing changes."""
    version = next_version(_current(stored), decision)
    if version is None and stored is not None and activity.activity_id in revised:
        version = _revised_version(stored, decision)
    return version


async def _source_duplicates(
    conn: AsyncConnection,
    tenant_id: str,
    arrived: Sequence[IngestedEvent],
    decided: Sequence[tuple[IngestedEvent, AttributionDecision]],
    current: dict[uuid.UUID, repo.StoredAttribution],
) -> dict[uuid.UUID, AttributionDecision]:
    """The decisions of the calls and emails that are a second report of one another source
    reported first (``domain.duplicates``), marked as such; the others are absent (one that was a
    duplicate and no longer is gets a new version through its content).

    Only a batch holding a call or email with a rep and a counterpart costs anything: a lock per
    rep (see ``repo.lock_reps_reports``) and one query for the reps' calls and emails around them.
    """
    reports: dict[uuid.UUID, tuple[SourceReport, AttributionDecision]] = {}
    for activity, decision in decided:
        report = report_of(activity, decision.rep_id)
        if report is not None:
            reports[activity.activity_id] = (report, decision)
    if not reports:
        return {}
    await repo.lock_reps_reports(conn, tenant_id, (report.rep_id for report, _ in reports.values()))
    windows = report_windows(report for report, _ in reports.values())
    stored = await repo.reports_near(conn, tenant_id, windows, list(reports))
    # How the calls decided now stood when last decided.
    stored += [
        replace_struct(report, duplicate_of=held.duplicate_of)
        for activity_id, (report, _) in reports.items()
        if (held := current.get(activity_id)) is not None
    ]
    in_arrival = [reports[a.activity_id][0] for a in arrived if a.activity_id in reports]
    marked: dict[uuid.UUID, AttributionDecision] = {}
    for activity_id, keeper in mark_duplicates(in_arrival, stored).items():
        if keeper is None:
            continue  # kept: its decision as it is (released, if it was a duplicate)
        report, decision = reports[activity_id]
        explanation = {
            **decision.explanation,
            "duplicate_of": str(keeper.activity_id),
            "duplicate": duplicate_explanation(report, keeper),
        }
        marked[activity_id] = replace_struct(
            decision, duplicate_of=keeper.activity_id, explanation=explanation
        )
    return marked


def _revised_version(stored: repo.StoredAttribution, decision: AttributionDecision) -> int | None:
    """The version that carries a newer revision's facts under an unchanged attribution.

    None only when an override in force would be replaced by an automatic decision.
    """
    if stored.is_override and not decision.overridden:
        return None
    return stored.version + 1


def event_key(event: Attributed) -> str:
    """``tenant:rep``: one rep's versions share a partition and stay in order. An activity credited
    to nobody is keyed by itself, so unattributed traffic spreads instead of piling on one partition."""
    return f"{event.tenant_id}:{event.rep_id or event.activity_id}"


async def publish(producer: AIOKafkaProducer, events: Sequence[Attributed], prefix: str) -> None:
    """Publish versions keyed by rep so one rep's activities stay in order; wait for every ack.

    The envelopes' time is taken once per publish, as ingest's (``activity_messages``): one clock
    read, and ``Envelope``'s header memo writes its text once instead of per message."""
    topic = ACTIVITY_ATTRIBUTED.physical(prefix)
    sent_at = datetime.now(UTC)
    messages = [
        OutgoingMessage(
            topic,
            event_key(event).encode(),
            encode_attributed(event),
            Envelope(
                id=f"{subject}:v{event.version}",
                source="/attribution",
                type=ACTIVITY_ATTRIBUTED.event_type,
                subject=subject,
                tenant=event.tenant_id,
                time=sent_at,
            ),
        )
        for event in events
        for subject in (str(event.activity_id),)
    ]
    with timed("publish"):
        await asyncio.gather(*await send_in_batches(producer, messages))


async def rematch_ids(
    conn: AsyncConnection,
    tenant_id: str,
    changed: repo.ChangedReferences,
    now: datetime,
    limit: int,
    settings: TenantSettings | None = None,
) -> list[uuid.UUID]:
    """Activities a batch of CRM changes may settle or move: parked ones the changes point at,
    those credited to a rep whose person changed, and every automatic attribution inside the
    window of a deal that may now be a better candidate, or with a participant holding an email or
    phone a contact gained (``rematch_windows``); at most ``limit`` of each kind. Those windows
    holding more than ``limit`` are not cut short: the batch decides the oldest ``limit`` and queues a ``rematch`` job (in its transaction; merged into the tenant's
    queued one, ``repo.queue_rematch``) that re-decides the windows whole once it commits (those
    already decided change nothing again)."""
    if changed.empty():
        return []
    # A membership filed under an alias id (a CRM's team) changes its person's team.
    for alias, person in (await repo.people_of(conn, tenant_id, changed.rep_team_since)).items():
        changed.team_changed(person, changed.rep_team_since[alias])
    if settings is None:
        settings = await load_tenant_settings(conn, tenant_id)
    parked = await repo.activities_to_rematch(conn, tenant_id, changed, now, limit, settings.time_zone)
    # A rep who became (or stopped being) another's alias: its history is re-credited.
    parked += await repo.activities_of_reps(conn, tenant_id, changed.people_changed, limit)
    windows = await rematch_windows(conn, tenant_id, changed, now, policy_from_settings(settings))
    if not windows:
        return list(dict.fromkeys(parked))
    widened = await repo.activities_in_windows(conn, tenant_id, windows, limit)
    if len(widened) >= limit:
        await repo.queue_rematch(conn, tenant_id, {"windows": windows_as_parameters(windows)})
    return list(dict.fromkeys([*parked, *widened]))


async def rematch_windows(
    conn: AsyncConnection,
    tenant_id: str,
    changed: repo.ChangedReferences,
    now: datetime,
    policy: TenantAttributionPolicy,
) -> list[RematchWindow]:
    """The windows a batch of CRM changes re-decides whole, attributed ones included: each changed
    deal's (``deal_rematch_window``) and the contacts' new emails and phones
    (``identity_rematch_window``)."""
    windows: list[RematchWindow] = []
    if changed.deal_changes:
        left = await repo.contacts_elsewhere(conn, tenant_id, changed.deal_changes)
        windows = [
            window
            for before, after in changed.deal_changes
            if (window := deal_rematch_window(before, after, policy, now, left=left.get(after.id, ())))
            is not None
        ]
    if (gained := identity_rematch_window(changed.contact_identities, now)) is not None:
        windows.append(gained)
    return windows


def newest_revisions(activities: Sequence[IngestedEvent]) -> list[IngestedEvent]:
    """One activity per id, its highest revision (the first of equals), in arrival order.

    Two revisions of one activity in a batch (5 then 4, posted back to back) must settle on 5,
    as the ``activities`` row does: the version published carries revision 5's facts.
    """
    newest: dict[tuple[str, uuid.UUID], IngestedEvent] = {}
    for activity in activities:
        key = (activity.tenant_id, activity.activity_id)
        held = newest.get(key)
        if held is None or held.revision < activity.revision:
            newest[key] = activity
    return list(newest.values())


async def decide_linked_keepers(
    conn: AsyncConnection,
    tenant_id: str,
    links: Sequence[repo.Sighting],
    now: datetime,
    settings: TenantSettings,
) -> AttributedBatch:
    """The kept reports of calls and emails whose second reports' deals changed now, decided
    again (saved): the deal a CRM user filed the call on is the counted report's, whichever
    report came first (``domain.source_deals``); a newer CRM revision without it takes it off."""
    _, relinked = await repo.record_sightings(conn, links)
    if not relinked:
        return AttributedBatch()
    keepers = await repo.load_activities(conn, tenant_id, sorted(i for _, i in relinked))
    decided = await attribute_batch(conn, tenant_id, keepers, now, settings)
    await repo.save_attributions(conn, decided.rows)
    return decided


async def decide_and_follow(
    conn: AsyncConnection,
    tenant_id: str,
    activities: Sequence[IngestedEvent],
    wanted: Collection[uuid.UUID],
    now: datetime,
    settings: TenantSettings,
    limit: int,
    *,
    revised: Collection[uuid.UUID] = (),
    inserted: Collection[uuid.UUID] = (),
    restored: Collection[uuid.UUID] = (),
) -> AttributedBatch:
    """Decide ``activities`` and save the new versions, then what follows from them: the kept
    reports of linked calls and emails (``decide_linked_keepers``) and the parked replies (at most
    ``limit``) in the threads of what changed, one more pass on the saved versions. The consumer's
    batch and every re-decision in batches (``reattribution.reattribute_ids``: a ``rematch`` job,
    ``spm reattribute``) go through it, so a job that moves a thread settles its parked replies as
    the consumer does. ``wanted``: the activities decided here (never followed again)."""
    out = AttributedBatch()
    decided = await attribute_batch(
        conn, tenant_id, activities, now, settings, revised=revised, inserted=inserted, restored=restored
    )
    await repo.save_attributions(conn, decided.rows)
    out.extend(decided)
    out.extend(await decide_linked_keepers(conn, tenant_id, decided.links, now, settings))
    # Parked replies in the threads of what just changed: one more pass, on the saved versions.
    changed_ids = {c.activity_id for c in decided.changes}
    moved: dict[str, datetime] = {}
    for activity in activities:
        if activity.thread_id is not None and activity.activity_id in changed_ids:
            earliest = moved.get(activity.thread_id, activity.occurred_at)
            moved[activity.thread_id] = min(earliest, activity.occurred_at)
    replies = await repo.parked_replies(conn, tenant_id, moved, wanted, now, limit)
    if replies:
        REMATCHES.inc(len(replies))
        followed = await attribute_batch(
            conn, tenant_id, await repo.load_activities(conn, tenant_id, replies), now, settings
        )
        await repo.save_attributions(conn, followed.rows)
        out.extend(followed)
    return out


#: A module constant: an enum member read from its class is dear in Python 3.11 (``domain.matching``).
_MEETING = ActivityKind.MEETING


async def removals_still_in_force(
    conn: AsyncConnection, incoming: Sequence[IngestedEvent]
) -> list[IngestedEvent]:
    """``incoming`` with each guest who removed a meeting from her calendar still left out of a
    newer revision that lists her with the answer she had then (``domain.attendance``); the
    removals a newer answer ended are forgotten. One query, none without meetings."""
    meetings = [a for a in incoming if a.kind is _MEETING]
    if not meetings:
        return list(incoming)
    held = await repo.removals_of(conn, [(a.tenant_id, a.activity_id) for a in meetings])
    if not held:
        return list(incoming)
    kept: list[IngestedEvent] = []
    for activity in incoming:
        removals = held.get((activity.tenant_id, activity.activity_id))
        if not removals:
            kept.append(activity)
            continue
        meeting, ended, still = removals_in_force(as_contract(activity), removals)
        await repo.settle_removals(
            conn, activity.tenant_id, activity.activity_id, ended, still, activity.revision
        )
        kept.append(meeting if still else activity)
    return kept


def incoming_to_attribute(
    incoming: Sequence[IngestedEvent],
    fresh: Collection[uuid.UUID],
    source_deals: Mapping[tuple[str, uuid.UUID], SourceDeals],
    relinked: Collection[tuple[str, uuid.UUID]],
) -> defaultdict[str, dict[uuid.UUID, IngestedEvent | None]]:
    """Per tenant, the activities to decide: each new or newer one (its newest revision, with the
    deal a CRM filed it on when it names none); ``None`` for one whose older revision moved a
    source's deal (the revision held is loaded and decided again)."""
    to_attribute: defaultdict[str, dict[uuid.UUID, IngestedEvent | None]] = defaultdict(dict)
    for activity in newest_revisions(incoming):
        key = (activity.tenant_id, activity.activity_id)
        if activity.activity_id in fresh:
            to_attribute[activity.tenant_id][activity.activity_id] = with_source_deals(
                activity, source_deals.get(key, {})
            )
    for tenant_id, activity_id in relinked:
        to_attribute[tenant_id].setdefault(activity_id, None)
    return to_attribute


async def handle_batch(messages: Sequence[ConsumedMessage[Any]], deps: AttributionDeps) -> Sequence[Rejected]:
    """One transaction per batch: reference data, activities, overrides, re-matches; publish; commit.

    A tenant whose stored settings are invalid fails the call with ``TenantSettingsInvalid``
    naming the setting: the runner parks that tenant's messages and hands back the rest.
    """
    now = datetime.now(UTC)
    settings = await settings_of_batch(
        messages, deps.settings or TenantSettingsCache(deps.engine, ttl_seconds=0)
    )
    crm: list[CrmEntityChangedV1] = []
    incoming: list[IngestedEvent] = []
    overrides: list[AttributionOverriddenV1] = []
    for m in messages:  # each payload is of one of them at most: classified once (``_ACTIVITY_TYPES``)
        payload = m.payload
        if isinstance(payload, _ACTIVITY_TYPES):
            incoming.append(payload)
        elif isinstance(payload, CrmEntityChangedV1):
            crm.append(payload)
        elif isinstance(payload, AttributionOverriddenV1):
            overrides.append(payload)
    async with transaction(deps.engine) as conn:
        if deps.erasures is not None:
            # A replay of an erased person's data (raw or CRM) must not bring them back.
            crm = await deps.erasures.crm(crm)
            incoming = await deps.erasures.activities(conn, incoming)
        changed: dict[str, repo.ChangedReferences] = defaultdict(repo.ChangedReferences)
        crm_by_tenant: dict[str, list[CrmEntityChangedV1]] = defaultdict(list)
        for event in crm:
            crm_by_tenant[event.tenant_id].append(event)
        # Tenants in one order (sorted) in every transaction: two lanes, each holding one tenant's
        # advisory and row locks, never wait on each other crosswise (``repo.lock_reps_reports``).
        for tenant_id, events in sorted(crm_by_tenant.items()):
            await repo.apply_crm_entities(conn, tenant_id, events, changed[tenant_id])
        # A CRM's deal link on a meeting another source reports too, whichever revision is newer,
        # and on a call or email another source reported first (``domain.source_deals``).
        source_deals: dict[tuple[str, uuid.UUID], SourceDeals] = {}
        incoming = await removals_still_in_force(conn, incoming)
        fresh = await repo.store_activities(conn, incoming, source_deals)
        meeting_deals, relinked = await repo.record_source_deals(conn, incoming)
        source_deals.update(meeting_deals)
        deletions = deletions_in_force(messages, fresh)
        inserted = {activity_id for activity_id, new in fresh.items() if new}
        to_attribute = incoming_to_attribute(incoming, fresh, source_deals, relinked)
        for command in overrides:
            if await repo.save_override(conn, command):
                to_attribute[command.tenant_id].setdefault(command.activity_id, None)
        for tenant_id, refs_changed in sorted(changed.items()):
            rematch = await rematch_ids(
                conn, tenant_id, refs_changed, now, deps.rematch_limit, settings[tenant_id]
            )
            REMATCHES.inc(len(rematch))
            for activity_id in rematch:
                to_attribute[tenant_id].setdefault(activity_id, None)
        out = AttributedBatch()
        for tenant_id, wanted in sorted(to_attribute.items()):
            missing = [activity_id for activity_id, a in wanted.items() if a is None]
            loaded = {a.activity_id: a for a in await repo.load_activities(conn, tenant_id, missing)}
            activities = [a or loaded[i] for i, a in wanted.items() if a is not None or i in loaded]
            out.extend(
                await decide_and_follow(
                    conn,
                    tenant_id,
                    activities,
                    wanted,
                    now,
                    settings[tenant_id],
                    deps.rematch_limit,
                    revised=fresh,
                    inserted=inserted,
                    restored=fresh,
                )
            )
        # Last: a deletion follows, on its partition, every revision of its activity it deletes.
        out.extend(await retract_all_deleted(conn, deletions, now, settings))
        await publish(deps.producer, out.events, deps.topic_prefix)
        count_published(out.events)
    return []


def count_published(events: Sequence[Attributed]) -> None:
    """``spm_attributions_total``, counted per (status, rule path) first: one counter increment
    per pair, not per version."""
    published = Counter((e.status._value_, str(e.explanation.get("rule_path", ""))) for e in events)
    for (status, rule_path), count in published.items():
        ATTRIBUTIONS.labels(status, rule_path).inc(count)
