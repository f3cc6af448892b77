"""Ingest's use cases as plain functions that receive their collaborators.

Every delivery goes the same way: verify -> normalise -> privacy -> dedupe -> publish.

* ``verify`` and ``normalise``: :func:`verified_delivery` (the vendor adapter checks the
  signature, then parses the body into canonical activities, CRM entities and stateful events);
* ``privacy``: :func:`services.ingest.domain.capture.keep_of_delivery` decides what of the
  delivery may be written at all, then :func:`handlers.screen_activities` applies the tenant's
  policy and erasure list to each activity;
* stateful vendors (Zoom; Twilio softphone calls and their ``<Dial>`` legs; RingCentral
  telephony sessions) fold their events through :func:`fold_stateful`, a generic step
  over a :class:`StatefulFold`, inside the transaction that publishes what they complete;
* ``dedupe``: the duplicate ledger and the canonical-meeting choice
  (:func:`services.ingest.domain.meetings.choose_canonical_meetings`);
* ``publish``: :func:`publish_prepared`, acknowledged by the broker before any answer.

The routes in ``app.py`` only route: they read the request, call one of these, shape the answer.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple, Protocol, TypeVar
from urllib.parse import parse_qs, urlsplit

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from libs.common.contracts.activities import (
    ActivityFields,
    ActivityIn,
    ActivityKind,
    ParticipantRole,
    activity_id_for,
)
from libs.common.contracts.activities_fast import AnyActivity
from libs.common.contracts.crm import PHONE_REREAD_SOURCE, AccountV1, ContactV1, CrmEntity, CrmSyncIn
from libs.common.contracts.fields import TENANT_ID_PATTERN
from libs.common.contracts.tenant_settings import InvalidTenantSettings
from libs.common.erasures import ErasedIdentities
from libs.common.jobs import REREAD_PHONES, Job, queue_job, report_progress
from libs.common.kafka.publisher import BrokerUnavailable, KafkaPublisher, OutgoingMessage
from libs.common.tenancy import WebhookSecretCache
from libs.common.web import Problem, field_errors
from services.ingest import handlers
from services.ingest.adapters.repository import (
    CONTACTS_PAGE,
    CallParent,
    SeenLedger,
    TenantContext,
    TenantDirectory,
    account_countries,
    accounts_with_contacts_without_country,
    contacts_keeping_unread_phones,
    contacts_without_country,
    crm_people,
    deletions_read_after,
    held_account_countries,
    highest_revisions_published,
    lock_webhook_state,
    meetings_published_as,
    record_time_blocks,
    record_undated_deletions,
    reps_keeping_unread_phones,
    save_webhook_state,
    time_block_revisions,
)
from services.ingest.domain.capture import KeptDelivery, keep_of_delivery
from services.ingest.domain.crm_sync import (
    accounts_to_look_up,
    accounts_with_new_country,
    contacts_read_again,
    contacts_read_in_new_region,
)
from services.ingest.domain.ignored import (
    OLDER_STATE,
    OLDER_THAN_A_TIME_BLOCK,
    READ_BEFORE_A_DELETION,
    TIME_AHEAD,
    Ignored,
)
from services.ingest.domain.normalize import validation_to_rejection
from services.ingest.domain.tenant_config import phone_region
from services.ingest.domain.vendors.ringcentral import (
    TOKEN_HEADERS,
    RingCentralEvent,
    RingCentralSessionState,
    fold_ringcentral_session,
)
from services.ingest.domain.vendors.twilio import TwilioCallState, TwilioLeg, fold_twilio_call
from services.ingest.domain.webhook_types import HandshakeResponse, SourceDeletion, TimeBlock
from services.ingest.domain.webhooks import (
    URL_TOKEN_SOURCES,
    AdapterResult,
    TenantCheckRejected,
    TenantWebhookConfig,
    VendorAdapter,
    WebhookRejected,
    WebhookRequest,
    ZoomEvent,
    ZoomMeetingState,
    fold_zoom_meeting,
    unknown_tenant_config,
)
from services.ingest.telemetry import INGEST_EVENTS, INGEST_IGNORED, INGEST_PHONES_DROPPED, INGEST_REJECTIONS

TENANT_ID = re.compile(TENANT_ID_PATTERN)
#: The adapter version of what clients post (``POST /v1/events``, ``DELETE /v1/events/...``).
CANONICAL_VERSION = "canonical/1"
REJECTION_REASONS = {400: "malformed", 401: "unauthenticated", 404: "unknown_endpoint", 413: "too_large"}


@dataclass(frozen=True, slots=True)
class IngestDeps:
    """The collaborators of every use case, made once in the app's lifespan."""

    engine: AsyncEngine
    publisher: KafkaPublisher
    tenants: TenantDirectory
    webhook_secrets: WebhookSecretCache
    seen_ledger: SeenLedger
    topic_prefix: str
    retry_after_seconds: int


def broker_unavailable(deps: IngestDeps) -> Problem:
    return Problem(
        503,
        "Broker unavailable",
        "the events were not acknowledged by the broker; retry later (nothing was accepted)",
        headers={"Retry-After": str(deps.retry_after_seconds)},
    )


async def tenant_context(deps: IngestDeps, tenant_id: str, *, fresh: bool = False) -> TenantContext | None:
    """The tenant's settings, policy and erasure list; None for an unknown tenant (``fresh``: its
    settings read again, not from the cache)."""
    try:
        return await deps.tenants.context(tenant_id, fresh=fresh)
    except InvalidTenantSettings as exc:
        # Guessing a privacy policy could publish what the tenant excluded: refuse instead,
        # as unavailable (nothing is accepted, the sender retries) until an admin fixes it.
        raise Problem(
            503,
            "Tenant settings invalid",
            f"{exc}; nothing was accepted: retry once an admin has fixed the settings",
            headers={"Retry-After": str(deps.retry_after_seconds)},
            errors=[
                {"in": "tenant settings", "field": name, "reason": reason}
                for name, reason in zip(exc.settings, exc.reasons, strict=True)
            ],
        ) from None


async def webhook_tenant_context(
    deps: IngestDeps, tenant_id: str
) -> tuple[TenantContext | None, Problem | None]:
    """The tenant's context (None when unknown), or the 503 of its invalid settings to tell once verified.

    The secrets need no setting: a webhook request is verified first, and one that is not gets
    the answer of an unknown tenant, so invalid settings neither leak nor tell who exists.
    """
    if not TENANT_ID.match(tenant_id):
        return None, None
    try:
        return await tenant_context(deps, tenant_id), None
    except Problem as unusable:
        return None, unusable


# --------------------------------------------------------------------------- verify, normalise


def _verify_and_parse(
    adapter: VendorAdapter,
    delivery: WebhookRequest,
    secrets: Sequence[str],
    config: TenantWebhookConfig,
    unusable: Problem | None = None,
) -> AdapterResult:
    try:
        adapter.verify(delivery, secrets, config)
    except TenantCheckRejected:
        if unusable is None:
            raise
        raise unusable from None  # the secret matched; the check itself needs the settings
    try:
        result = adapter.parse(delivery, config, secrets)
    except ValidationError as error:
        # Adapters name their fields; a contract check one of them did not wrap is still a 422.
        raise validation_to_rejection("body", error) from None
    if unusable is not None and result.handshake is None:
        raise unusable  # verified: only now may the sender learn the tenant's settings are invalid
    return result


def rejection(adapter: VendorAdapter, delivery: WebhookRequest, exc: WebhookRejected) -> Problem:
    """A refused delivery as a problem naming the header, path or body field and the reason."""
    INGEST_REJECTIONS.labels(adapter.source, REJECTION_REASONS.get(exc.status_code, "invalid")).inc()
    INGEST_EVENTS.labels(adapter.source, "rejected").inc()
    if exc.field == "token" and adapter.source in URL_TOKEN_SOURCES:
        where = "path"
    elif exc.field in delivery.headers or exc.field.startswith("x-") or exc.field in TOKEN_HEADERS:
        where = "header"
    elif exc.field in parse_qs(urlsplit(delivery.url).query):
        where = "query"  # Graph's ?validationToken=
    else:
        where = "body"
    return Problem(
        exc.status_code,
        "Webhook refused",
        f"{exc.field}: {exc.reason}",
        errors=[{"in": where, "field": exc.field, "reason": exc.reason}],
    )


async def _secrets_or_decoy(
    cache: WebhookSecretCache, tenant_id: str, source: str, decoy: str, *, fresh: bool
) -> Sequence[str]:
    if not TENANT_ID.match(tenant_id):
        return (decoy,)  # never a tenant id: nothing to look up
    return await cache.secrets(tenant_id, source, fresh=fresh) or (decoy,)


async def verified_delivery(
    cache: WebhookSecretCache,
    adapter: VendorAdapter,
    delivery: WebhookRequest,
    tenant_id: str,
    context: TenantContext | None,
    decoy: str,
    unusable: Problem | None = None,
) -> AdapterResult:
    """Verify then parse; a rejection becomes a problem naming the field and the reason.

    An unknown tenant (``context`` None) takes the very same path, verified against ``decoy``
    (as is a tenant without a secret for the source): its answer, and the work done to give
    it, are those of a known tenant whose signature does not match. So is a tenant whose
    settings are invalid (``unusable``, the 503 naming them), until its request is verified.
    """
    config = context.webhook if context is not None else unknown_tenant_config(tenant_id)
    secrets = await _secrets_or_decoy(cache, tenant_id, adapter.source, decoy, fresh=False)
    try:
        try:
            return _verify_and_parse(adapter, delivery, secrets, config, unusable)
        except WebhookRejected as exc:
            if exc.status_code != 401:
                raise
            # A secret added since the cache was filled (a rotation) must work at once.
            fresh = await _secrets_or_decoy(cache, tenant_id, adapter.source, decoy, fresh=True)
            if fresh == secrets:
                raise
            return _verify_and_parse(adapter, delivery, fresh, config, unusable)
    except WebhookRejected as exc:
        raise rejection(adapter, delivery, exc) from None


# --------------------------------------------------------------------------- stateful vendors


class StatefulFold(Protocol):
    """A vendor whose events complete an activity only together (Zoom's meeting events).

    ``fold`` is pure: (stored state or None, event) -> (new state, or None when the event changed
    nothing (a replay); the activity the event completes, if any).
    """

    source: str

    def object_key(self, event: Any) -> str: ...

    def fold(self, stored: dict[str, Any] | None, event: Any) -> tuple[str | None, ActivityIn | None]: ...


class ZoomFold:
    """Zoom meetings: started, joins, leaves and ended fold into one held meeting."""

    source = "zoom"

    def object_key(self, event: ZoomEvent) -> str:
        return event.meeting_uuid

    def fold(self, stored: dict[str, Any] | None, event: ZoomEvent) -> tuple[str | None, ActivityIn | None]:
        previous = ZoomMeetingState.model_validate(stored) if stored is not None else None
        state, activity = fold_zoom_meeting(previous, event)
        if state == previous:
            return None, None
        return state.model_dump_json(), activity


ZOOM_FOLD = ZoomFold()


class TwilioFold:
    """A softphone's call, or a call between two numbers: its own callbacks and its ``<Dial>``
    legs' fold into one call."""

    source = "twilio"

    def object_key(self, leg: TwilioLeg) -> str:
        return leg.call_key

    def fold(self, stored: dict[str, Any] | None, leg: TwilioLeg) -> tuple[str | None, ActivityIn | None]:
        previous = TwilioCallState.model_validate(stored) if stored is not None else None
        state, activity = fold_twilio_call(previous, leg)
        if state == previous:
            # A call between two numbers is in the delivery's activities too, which count its
            # redelivery: its unchanged state is no replay to count again.
            return (state.model_dump_json(), None) if leg.two_numbers else (None, None)
        return state.model_dump_json(), activity


TWILIO_FOLD = TwilioFold()


class RingCentralFold:
    """A RingCentral telephony session: its notifications fold into one call, published once
    every party hung up."""

    source = "ringcentral"

    def object_key(self, event: RingCentralEvent) -> str:
        return event.session_id

    def fold(
        self, stored: dict[str, Any] | None, event: RingCentralEvent
    ) -> tuple[str | None, ActivityIn | None]:
        previous = RingCentralSessionState.model_validate(stored) if stored is not None else None
        state, activity = fold_ringcentral_session(previous, event)
        if state == previous:
            return None, None
        return state.model_dump_json(), activity


RINGCENTRAL_FOLD = RingCentralFold()


def stateful_step(kept: KeptDelivery) -> tuple[StatefulFold, Sequence[Any]] | None:
    """The vendor events of a delivery to fold with their stored state, if any."""
    if kept.zoom_events:
        return ZOOM_FOLD, kept.zoom_events
    if kept.twilio_legs:
        return TWILIO_FOLD, kept.twilio_legs
    if kept.ringcentral_events:
        return RINGCENTRAL_FOLD, kept.ringcentral_events
    return None


def unfolded_parent(stateful: tuple[StatefulFold, Sequence[Any]] | None) -> CallParent | None:
    """The parent of a Twilio call between two numbers, to keep for its ``<Dial>`` legs, if any.

    Such a call publishes itself from its callbacks, without a transaction (the hot path of a
    plain call); its "completed" is also kept, in the duplicate ledger's statement that looks its
    pairs up (:meth:`SeenLedger.look_up_keeping`), for legs that may come. Once a leg is stored,
    it folds under the row lock like a softphone's call.
    """
    if stateful is None or stateful[0] is not TWILIO_FOLD:
        return None
    legs: Sequence[TwilioLeg] = stateful[1]
    if len(legs) != 1 or not legs[0].two_numbers:
        return None
    (parent,) = legs
    return CallParent(TWILIO_FOLD.source, parent.call_key, parent.as_json(), parent.revision)


async def fold_stateful(
    conn: AsyncConnection, tenant_id: str, step: StatefulFold, events: Sequence[Any]
) -> tuple[list[ActivityIn], int]:
    """The activities the events complete, and how many events were replays that changed nothing."""
    emitted: list[ActivityIn] = []
    replays = 0
    for event in events:
        key = step.object_key(event)
        # The row stays locked until commit, so concurrent deliveries of one object serialise.
        stored = await lock_webhook_state(conn, tenant_id, step.source, key)
        state, activity = step.fold(stored, event)
        if state is None:
            replays += 1
            continue
        await save_webhook_state(conn, tenant_id, step.source, key, state)
        if activity is not None:
            emitted.append(activity)
    return emitted, replays


# --------------------------------------------------------------------------- privacy, dedupe, publish


async def publish_prepared(
    deps: IngestDeps,
    prepared: handlers.PreparedActivities,
    extra: Sequence[OutgoingMessage],
    raw: OutgoingMessage | None,
) -> None:
    """Publish the activities, the entities and the raw capture; returns once acknowledged."""
    sent_at = datetime.now(UTC)
    messages = handlers.activity_messages(prepared.events, deps.topic_prefix, sent_at)
    # A delivery holding excluded activities is not captured raw: privacy comes before replay.
    captured = [raw] if raw is not None and not prepared.excluded else []
    try:
        await deps.publisher.publish([*captured, *messages, *extra])
    except BrokerUnavailable:
        raise broker_unavailable(deps) from None


async def accept_activities(
    deps: IngestDeps,
    context: TenantContext,
    activities: Sequence[AnyActivity],
    now: datetime,
    adapter_version: str,
    *,
    stateful: tuple[StatefulFold, Sequence[Any]] | None = None,
    extra: Sequence[OutgoingMessage] = (),
    raw: OutgoingMessage | None = None,
    ids: Mapping[int, uuid.UUID] | None = None,
) -> handlers.PreparedActivities:
    """Fold, screen (privacy), dedupe and publish; returns only after the broker acknowledged.
    ``ids``: the ids already derived of some of ``activities`` (``handlers.screen_activities``)."""
    parent = unfolded_parent(stateful)
    if stateful is None or not stateful[1] or parent is not None:
        screened = handlers.screen_activities(context, activities, ids)
        if not screened.shares_state:
            # Calls and emails share no state with other deliveries: no transaction is held
            # across the broker round trip, the pairs are recorded once acknowledged. A call
            # between two numbers whose legs are known folds with them below instead.
            unshared = await handlers.prepare_unshared_activities(
                deps.seen_ledger, context, screened, now, adapter_version, parent
            )
            if unshared is not None:
                await publish_prepared(deps, unshared, extra, raw)
                await deps.seen_ledger.record(context.tenant_id, handlers.seen_pairs(unshared.events))
                return unshared
    # Vendor state and meeting keys are committed only after the broker's ack: a refused
    # publish rolls them back with the duplicate bookkeeping, and the locked state row
    # serialises concurrent deliveries of one object.
    async with deps.engine.begin() as conn:
        replays = 0
        if stateful is not None and stateful[1]:
            folded, replays = await fold_stateful(conn, context.tenant_id, *stateful)
            screened = handlers.screen_activities(context, [*activities, *folded])
        prepared = await handlers.prepare_activities(conn, context, screened, now, adapter_version)
        prepared.duplicates += replays
        await publish_prepared(deps, prepared, extra, raw)
    return prepared


async def deletions_published_as(
    deps: IngestDeps, tenant_id: str, deletions: Sequence[SourceDeletion]
) -> dict[uuid.UUID, uuid.UUID]:
    """The meeting each deleted object joined, where it joined another (one more read, only for
    a delivery that deletes)."""
    own = [activity_id_for(tenant_id, d.source, d.external_id) for d in deletions]
    return await meetings_published_as(deps.engine, tenant_id, own)


async def revisions_published(
    deps: IngestDeps,
    tenant_id: str,
    deletions: Sequence[SourceDeletion],
    published_as: Mapping[uuid.UUID, uuid.UUID],
) -> dict[uuid.UUID, int]:
    """The highest revision published of each activity a deletion dated on receipt deletes
    (``handlers.deletion_revision``; one more read, only for a delivery holding one)."""
    ids = [handlers.deleted_activity_id(tenant_id, d, published_as) for d in deletions if d.on_receipt]
    return await highest_revisions_published(deps.engine, tenant_id, ids)


async def time_blocks_retracting(
    deps: IngestDeps, tenant_id: str, blocks: Sequence[TimeBlock]
) -> list[SourceDeletion]:
    """The retractions of the meetings that calendar events read now as no meeting (``TimeBlock``:
    a hold its customer declined or was removed from, time away) were published as, at an older
    revision: a later state of a published meeting retracts it through the path of a deletion,
    saying why (``SourceDeletion.not_a_meeting``: attribution's ``not_a_meeting``, not
    ``deleted_at_source``), and a newer revision that is a meeting again restores it. Two reads,
    only for a delivery holding time blocks."""
    if not blocks:
        return []
    deletions = [SourceDeletion(b.source, b.external_id, b.revision, not_a_meeting=b.reason) for b in blocks]
    published_as = await deletions_published_as(deps, tenant_id, deletions)
    ids = {d: handlers.deleted_activity_id(tenant_id, d, published_as) for d in deletions}
    published = await highest_revisions_published(deps.engine, tenant_id, list(set(ids.values())))
    return [d for d, i in ids.items() if d.revision is not None and d.revision > published.get(i, d.revision)]


_ActivityT = TypeVar("_ActivityT", bound=ActivityFields)
_MEETING = ActivityKind.MEETING


async def older_than_time_blocks(
    deps: IngestDeps, tenant_id: str, activities: Sequence[_ActivityT]
) -> tuple[Sequence[_ActivityT], list[_ActivityT], dict[int, uuid.UUID]]:
    """``activities`` without the meetings older than a revision of their object read before as
    no meeting (``record_time_blocks``: a hold only colleagues attend, time away), and those: a
    hold leaves no trace attribution could order a stale meeting by (a retried post, a client
    re-sending its history after the hold). One read, only for a delivery holding meetings. With
    each meeting's id by ``id()`` of the activity, which screening then need not derive again."""
    own = {
        id(a): activity_id_for(tenant_id, a.source, a.external_id) for a in activities if a.kind is _MEETING
    }
    held = await time_block_revisions(deps.engine, tenant_id, list(own.values())) if own else {}
    if not held:
        return activities, [], own
    stale = [a for a in activities if id(a) in own and a.revision < held.get(own[id(a)], -1)]
    if not stale:
        return activities, [], own
    dropped = {id(a) for a in stale}
    return [a for a in activities if id(a) not in dropped], stale, own


async def record_blocks(deps: IngestDeps, tenant_id: str, blocks: Sequence[TimeBlock]) -> None:
    """Each time block's revision under its object's own id (``older_than_time_blocks``)."""
    revisions: dict[uuid.UUID, int] = {}
    for block in blocks:
        key = activity_id_for(tenant_id, block.source, block.external_id)
        revisions[key] = max(revisions.get(key, block.revision), block.revision)
    await record_time_blocks(deps.engine, tenant_id, revisions)


async def accept_events(
    deps: IngestDeps, context: TenantContext, activities: Sequence[AnyActivity], now: datetime
) -> tuple[handlers.PreparedActivities, list[Ignored]]:
    """``POST /v1/events``: the batch but its holds only colleagues attend (``handlers.holds_apart``:
    listed as ignored, each retracting the meeting an earlier revision of it was published as,
    as no meeting, and recorded so that an older meeting posted later is ignored too), published
    once acknowledged; with what was ignored."""
    kept, blocks, ignored = handlers.holds_apart(activities, context.webhook.internal_domains)
    kept, stale, ids = await older_than_time_blocks(deps, context.tenant_id, kept)
    if stale:
        positions = {id(a): position for position, a in enumerate(activities)}
        ignored = sorted(
            [
                *ignored,
                *(
                    Ignored(f"activities[{positions[id(a)]}]: {OLDER_THAN_A_TIME_BLOCK}", OLDER_STATE)
                    for a in stale
                ),
            ],
            key=handlers.ignored_position,
        )
    retractions: list[OutgoingMessage] = []
    if blocks:
        retracted = await time_blocks_retracting(deps, context.tenant_id, blocks)
        retractions = handlers.deletion_messages(
            retracted,
            context.tenant_id,
            CANONICAL_VERSION,
            deps.topic_prefix,
            now,
            await deletions_published_as(deps, context.tenant_id, retracted),
        )
    prepared = await accept_activities(
        deps, context, kept, now, CANONICAL_VERSION, extra=retractions, ids=ids
    )
    await record_blocks(deps, context.tenant_id, blocks)
    return prepared, ignored


async def read_before_deletions(deps: IngestDeps, tenant_id: str, result: AdapterResult) -> AdapterResult:
    """``result`` without the revisions of objects a deletion their source did not date was read
    for after this page was (``AdapterResult.read_at``): a page read before the deletion and
    delivered after it (two mailboxes' syncs, a retried post) holds an older state, whatever the
    source's time of the edit says. Read times are compared with read times, and the source's
    revisions with its own (``handlers.deletion_revision``): never one clock with another. Only a
    deletion of the meeting counts: one read in no named calendar, in the meeting's organizer's,
    or in the calendar this page was read from; a guest's removal from her own calendar (Google's
    event ids are shared across the attendees' calendars) is no newer state of the organizer's
    page. Each is listed as ignored."""
    if result.read_at is None or not result.activities:
        return result
    own = {activity_id_for(tenant_id, a.source, a.external_id): a for a in result.activities}
    older = await deletions_read_after(deps.engine, tenant_id, list(own), result.read_at)
    if not older:
        return result
    dropped = [a for i, a in own.items() if older.get(i, set()) & {"", result.read_in, _organizer_of(a)}]
    if not dropped:
        return result
    return replace(
        result,
        activities=tuple(a for a in result.activities if a not in dropped),
        ignored=(
            *result.ignored,
            *(Ignored(f"{a.source} {a.external_id}: {READ_BEFORE_A_DELETION}", OLDER_STATE) for a in dropped),
        ),
    )


def _organizer_of(activity: ActivityIn) -> str | None:
    return next((p.email for p in activity.participants if p.role is ParticipantRole.ORGANIZER), None)


async def record_read_deletions(
    deps: IngestDeps, tenant_id: str, deletions: Sequence[SourceDeletion]
) -> None:
    """When each deletion its source did not date was read (its ``revision`` then, in ms), under
    the deleted object's own id and the calendar it was read in (``SourceDeletion.seen_in``,
    ``''`` for none: ``read_before_deletions``)."""
    read: dict[tuple[uuid.UUID, str], datetime] = {}
    for d in deletions:
        if d.on_receipt and d.revision is not None:
            read[(activity_id_for(tenant_id, d.source, d.external_id), d.seen_in or "")] = (
                datetime.fromtimestamp(d.revision / 1000, UTC)
            )
    await record_undated_deletions(deps.engine, tenant_id, read)


async def delete_activity(
    deps: IngestDeps,
    context: TenantContext,
    source: str,
    external_id: str,
    now: datetime,
    revision: int | None = None,
) -> str:
    """Publish the deletion of the canonical activity (``source``, ``external_id``), at
    ``revision`` when the client numbers it; its id once acknowledged. A source or id the
    contract refuses is a 422 naming it."""
    deletion = SourceDeletion(source, external_id, revision)
    published_as = await deletions_published_as(deps, context.tenant_id, [deletion])
    try:
        (message,) = handlers.deletion_messages(
            [deletion], context.tenant_id, CANONICAL_VERSION, deps.topic_prefix, now, published_as
        )
    except ValidationError as exc:
        errors = [{**e, "in": "path"} for e in field_errors(exc) if e["field"] in ("source", "external_id")]
        detail = "; ".join(f"{e['field']}: {e['reason']}" for e in errors)
        raise Problem(422, "Invalid deletion", detail, errors=errors) from None
    try:
        await deps.publisher.publish([message])
    except BrokerUnavailable:
        raise broker_unavailable(deps) from None
    return message.envelope.subject


#: The ``source`` label ``POST /v1/crm/sync`` is counted under.
CRM_SYNC_SOURCE = "crm-sync"


async def sync_crm(
    deps: IngestDeps, context: TenantContext, sync: CrmSyncIn, received_at: datetime
) -> handlers.ReadCrmSync:
    """Publish CRM entities, a contact's phones read in its country, else its account's (sent
    along or held), else the tenant's region (an erased person's contact never), one dated more
    than ``INGEST_MAX_FUTURE_SKEW_SECONDS`` ahead of ``received_at`` never (``normalize.
    ahead_allowance`` around the call); acknowledged before returning, with what was dropped or
    left out (``warnings``)."""
    looked_up = accounts_to_look_up(sync.entities)
    stored = await account_countries(deps.engine, context.tenant_id, looked_up) if looked_up else {}
    region = phone_region(context.settings)
    read = handlers.crm_messages(
        sync,
        context.tenant_id,
        region,
        deps.topic_prefix,
        context.erased,
        stored,
        received_at=received_at,
    )
    again = await contacts_of_new_countries(deps, context.tenant_id, read.entities, region)
    reread = handlers.entity_messages(
        again, sync.source, context.tenant_id, deps.topic_prefix, context.erased
    )
    try:
        await deps.publisher.publish([*read.messages, *reread])
    except BrokerUnavailable:
        raise broker_unavailable(deps) from None
    for warning in read.warnings:
        if warning.problem is not None:
            INGEST_PHONES_DROPPED.labels(warning.problem.value).inc()
    if read.left_out:
        # Counted as a vendor's CRM record dated ahead is (listed in its ``ignored``).
        INGEST_IGNORED.labels(CRM_SYNC_SOURCE, TIME_AHEAD).inc(read.left_out)
    return read


async def contacts_of_new_countries(
    deps: IngestDeps, tenant_id: str, entities: Sequence[CrmEntity], region: str
) -> tuple[ContactV1, ...]:
    """The held contacts whose phones read differently now that an account of ``entities`` (read)
    states another country: those stating none of their own, not sent along (the batch read
    them already), read again in the account's country (``crm_sync.contacts_read_again``). One
    lookup of the batch's accounts; when a country changed, one of which of those accounts hold
    such contacts, then each one's contacts a page (``repository.CONTACTS_PAGE``) at a time, each
    page an index range (migration 0026); only those whose phones read differently are kept."""
    accounts = [e.id for e in entities if isinstance(e, AccountV1)]
    if not accounts:
        return ()
    held = await held_account_countries(deps.engine, tenant_id, accounts)
    changed = accounts_with_new_country(entities, held)
    if not changed:
        return ()
    sent = {e.id for e in entities if isinstance(e, ContactV1)}
    again: list[ContactV1] = []
    for account in await accounts_with_contacts_without_country(deps.engine, tenant_id, changed):
        after: str | None = None
        while True:
            page = await contacts_without_country(deps.engine, tenant_id, account, after, CONTACTS_PAGE)
            again += contacts_read_again([c for c in page if c.id not in sent], changed, region)
            if len(page) < CONTACTS_PAGE:
                break
            after = page[-1].id
    return tuple(again)


#: The ``source`` of the contacts a ``reread_phones`` job publishes again (attribution writes
#: one only over the version the job read).
REREAD_SOURCE = PHONE_REREAD_SOURCE


async def reread_unread_phones(deps: IngestDeps, job: Job, again_after: timedelta) -> dict[str, Any]:
    """A ``reread_phones`` job: the tenant's phone region changed (``default_phone_region``, or
    its time zone while that is unset); the values its contacts keep unread (``unread_phones``)
    are read again in the new region, a page of contacts at a time, and each contact gaining a
    number is published again (``crm_sync.contacts_read_in_new_region``): attribution re-matches
    the parked calls of those numbers as for any contact phone change.

    The pages are read off the event loop (``asyncio.to_thread``: parsing a page of 500 takes
    about a quarter of a second, while every tenant's webhooks wait on the loop). A contact synced
    just before the change that attribution had not written yet, or read in the former region by
    a replica whose settings cache was still the former one (``INGEST_TENANT_CACHE_SECONDS``), is
    not held when the job reads: the job queues itself once more ``again_after`` later
    (``INGEST_REREAD_AGAIN_AFTER_SECONDS``; the second pass, ``parameters.again_of``, queues none)."""
    deps.tenants.invalidate(job.tenant_id)
    context = await deps.tenants.context(job.tenant_id, fresh=True)
    if context is None:  # the tenant was deleted meanwhile
        return {
            "region": None,
            "contacts_read": 0,
            "contacts_published": 0,
            "contacts_over_limits": 0,
            "reps_read": 0,
            "reps_published": 0,
            "reps_over_limits": 0,
        }
    region = phone_region(context.settings)
    after: str | None = None
    published = seen = over_limits = 0
    while True:
        page, countries = await contacts_keeping_unread_phones(
            deps.engine, job.tenant_id, after, CONTACTS_PAGE
        )
        read = await asyncio.to_thread(contacts_read_in_new_region, page, countries, region)
        if read.again:
            await deps.publisher.publish(
                handlers.entity_messages(
                    read.again, REREAD_SOURCE, job.tenant_id, deps.topic_prefix, context.erased
                )
            )
        published += len(read.again)
        over_limits += len(read.over_limits)
        seen += len(page)
        await report_progress(deps.engine, job, seen, None)
        if len(page) < CONTACTS_PAGE:
            break
        after = page[-1].id
    reps = await _reread_reps(deps, job, context.erased, region)
    result: dict[str, Any] = {
        "region": region,
        "contacts_read": seen,
        "contacts_published": published,
        "contacts_over_limits": over_limits,
        "reps_read": reps.read,
        "reps_published": reps.published,
        "reps_over_limits": reps.over_limits,
    }
    if "again_of" not in job.parameters:
        async with deps.engine.begin() as conn:
            again = await queue_job(
                conn,
                job.tenant_id,
                REREAD_PHONES,
                job.created_by,
                parameters={"region": region, "again_of": str(job.job_id)},
                settings_version=job.settings_version,
                delay=again_after,
            )
        result["again_job"] = str(again)
    return result


class _RepsReread(NamedTuple):
    read: int
    published: int
    over_limits: int


async def _reread_reps(deps: IngestDeps, job: Job, erased: ErasedIdentities, region: str) -> _RepsReread:
    """The ``reread_phones`` job's second half: the tenant's reps keeping values no region read
    (``unread_phones``), read again in ``region`` and published again when they gain a number, as
    its contacts are (rules 2026.12.40: before, a rep's unread value was dropped, and her number
    did not come back when the region changed). A page at a time, off the event loop; a rep that
    would list too many phones keeps hers as held."""
    after: str | None = None
    read = published = over_limits = 0
    while True:
        page = await reps_keeping_unread_phones(deps.engine, job.tenant_id, after, CONTACTS_PAGE)
        again, over = await asyncio.to_thread(contacts_read_in_new_region, page, {}, region)
        over_limits += len(over)
        if again:
            await deps.publisher.publish(
                handlers.entity_messages(again, REREAD_SOURCE, job.tenant_id, deps.topic_prefix, erased)
            )
        published += len(again)
        read += len(page)
        if len(page) < CONTACTS_PAGE:
            return _RepsReread(read, published, over_limits)
        after = page[-1].id


@dataclass(frozen=True, slots=True)
class WebhookOutcome:
    """What a verified delivery became: a handshake to answer, or what was accepted (and an ack)."""

    handshake: HandshakeResponse | None = None
    result: AdapterResult | None = None
    prepared: handlers.PreparedActivities | None = None


async def read_in_held_references(
    deps: IngestDeps,
    adapter: VendorAdapter,
    delivery: WebhookRequest,
    context: TenantContext,
    result: AdapterResult,
) -> AdapterResult:
    """``result``, or the verified delivery parsed again with what is held for what it names
    without carrying: the countries of its contacts' accounts, for contacts stating none (their
    phones are read in the account's country; a Salesforce Outbound Message carries one object
    type: a Contact's Account never comes with it), and the addresses of the owners and contacts
    its engagements name (a HubSpot sync job posts meetings apart from their people). At most
    one lookup of each; parsing is pure."""
    needed = accounts_to_look_up(result.entities, read=True)
    held = await account_countries(deps.engine, context.tenant_id, needed) if needed else {}
    people = result.people_to_look_up
    found = await crm_people(deps.engine, context.tenant_id, people) if people else {}
    if not (held or found):
        return result
    try:
        return adapter.parse(delivery, replace(context.webhook, account_countries=held, crm_people=found))
    except WebhookRejected as exc:  # parsed once already: not expected, answered as the first
        raise rejection(adapter, delivery, exc) from None


async def receive_webhook(
    deps: IngestDeps,
    adapter: VendorAdapter,
    delivery: WebhookRequest,
    tenant_id: str,
    context: TenantContext | None,
    decoy: str,
    unusable: Problem | None = None,
) -> WebhookOutcome:
    """verify -> normalise -> privacy -> dedupe -> publish, for one vendor delivery."""
    result = await verified_delivery(
        deps.webhook_secrets, adapter, delivery, tenant_id, context, decoy, unusable
    )
    if result.handshake is not None:
        # Graph's validation echo needs no secret, so it is answered for any tenant id alike.
        return WebhookOutcome(handshake=result.handshake)
    if context is None:
        # Verified by a secret read fresh, for a tenant whose absence is still cached: one
        # created since. Its settings are read fresh once (as ``settings_of_batch`` does) and the
        # delivery parsed with them. Verified by the decoy, which nobody knows, the tenant stays
        # unknown: never published for it.
        context = await tenant_context(deps, tenant_id, fresh=True) if TENANT_ID.match(tenant_id) else None
        if context is None:
            raise rejection(adapter, delivery, WebhookRejected(401, "secret", "does not match"))
        result = await verified_delivery(deps.webhook_secrets, adapter, delivery, tenant_id, context, decoy)
    result = await read_in_held_references(deps, adapter, delivery, context, result)
    result = await read_before_deletions(deps, tenant_id, result)
    result = await without_superseded_meetings(deps, tenant_id, result)
    source, prefix = adapter.source, deps.topic_prefix
    # Privacy before anything is written: the raw capture, the vendor state, the activities.
    try:
        kept = keep_of_delivery(source, delivery.body, result, context.privacy, context.erased)
    except WebhookRejected as exc:  # a body the raw capture cannot write back
        raise rejection(adapter, delivery, exc) from None
    raw = (
        handlers.raw_webhook_message(
            tenant_id, source, adapter.version, delivery.received_at, delivery.headers, kept.raw_body, prefix
        )
        if kept.raw_body is not None
        else None
    )
    again = await contacts_of_new_countries(deps, tenant_id, result.entities, phone_region(context.settings))
    entities = handlers.entity_messages([*result.entities, *again], source, tenant_id, prefix, context.erased)
    # After the delivery's activities: a deletion is read after what it deletes.
    await record_read_deletions(deps, tenant_id, result.deletions)
    deleted = [*result.deletions, *await time_blocks_retracting(deps, tenant_id, result.time_blocks)]
    published_as = await deletions_published_as(deps, tenant_id, deleted)
    deletions = handlers.deletion_messages(
        deleted,
        tenant_id,
        adapter.version,
        prefix,
        delivery.received_at,
        published_as,
        await revisions_published(deps, tenant_id, deleted, published_as),
    )
    prepared = await accept_activities(
        deps,
        context,
        result.activities,
        delivery.received_at,
        adapter.version,
        stateful=stateful_step(kept),
        extra=[*entities, *deletions],
        raw=raw,
    )
    await record_blocks(deps, tenant_id, result.time_blocks)
    prepared.count(source)
    handlers.count_ignored(source, result.ignored)
    return WebhookOutcome(result=result, prepared=prepared)


async def without_superseded_meetings(
    deps: IngestDeps, tenant_id: str, result: AdapterResult
) -> AdapterResult:
    """``result`` without the meetings a time block supersedes: one of the same object at a
    higher revision in this delivery (``handlers.superseded_by_blocks``), or one read before
    (``older_than_time_blocks``; listed as ignored)."""
    if not result.activities:
        return result
    activities, superseded = handlers.superseded_by_blocks(result.activities, result.time_blocks)
    activities, stale, _ = await older_than_time_blocks(deps, tenant_id, activities)
    stale = [*superseded, *stale]
    if len(activities) == len(result.activities):
        return result
    return replace(
        result,
        activities=tuple(activities),
        ignored=(
            *result.ignored,
            *(Ignored(f"{a.source} {a.external_id}: {OLDER_THAN_A_TIME_BLOCK}", OLDER_STATE) for a in stale),
        ),
    )
