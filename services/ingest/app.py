"""The ingest HTTP application: canonical batch endpoints and vendor webhooks."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
from fastapi import Depends, FastAPI, Header, Request, Response
from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncConnection

from libs.common.auth import ApiKeyAuthenticator, bearer_token
from libs.common.contracts.activities import ActivityIn
from libs.common.contracts.crm import CrmSyncIn
from libs.common.contracts.fields import TENANT_ID_PATTERN
from libs.common.contracts.tenant_settings import InvalidTenantSettings, SettingsChangedV1
from libs.common.db.engine import database_reachable, make_engine
from libs.common.health import health_router
from libs.common.kafka.clients import broker_reachable
from libs.common.kafka.publisher import BrokerUnavailable, KafkaPublisher, OutgoingMessage
from libs.common.kafka.settings_events import SettingsChangeListener
from libs.common.tenancy import Principal, Scope, WebhookSecretCache
from libs.common.web import (
    Problem,
    document_models,
    install_common_handlers,
    install_database_unavailable_handler,
    read_body,
)
from services.ingest import handlers
from services.ingest.adapters.repository import (
    SeenLedger,
    TenantContext,
    TenantDirectory,
    lock_webhook_state,
    save_webhook_state,
)
from services.ingest.domain.normalize import MAX_BODY_BYTES, validation_to_rejection
from services.ingest.domain.tenant_config import phone_region
from services.ingest.domain.webhooks import (
    ADAPTERS,
    URL_TOKEN_SOURCES,
    AdapterResult,
    TenantWebhookConfig,
    VendorAdapter,
    WebhookRejected,
    WebhookRequest,
    ZoomEvent,
    ZoomMeetingState,
    decoy_secret,
    fold_zoom_meeting,
    unknown_tenant_config,
)
from services.ingest.push import push_router
from services.ingest.settings import IngestSettings
from services.ingest.telemetry import INGEST_EVENTS, INGEST_PHONES_DROPPED, INGEST_REJECTIONS

SERVICE = "ingest"


async def ingest_principal(
    request: Request, authorization: Annotated[str | None, Header()] = None
) -> Principal:
    token = bearer_token(authorization)
    if token is None:
        raise Problem(
            401,
            "Unauthorized",
            "send `Authorization: Bearer <ingest key>`",
            headers={"WWW-Authenticate": "Bearer"},
        )
    principal: Principal | None = await request.app.state.authenticator.principal(token)
    if principal is None:
        raise Problem(
            401,
            "Unauthorized",
            "the API key is unknown or revoked",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if not principal.allows(Scope.INGEST):
        raise Problem(403, "Forbidden", "this key lacks the `ingest` scope")
    return principal


IngestPrincipal = Annotated[Principal, Depends(ingest_principal)]


_TENANT_ID = re.compile(TENANT_ID_PATTERN)
_REJECTION_REASONS = {400: "malformed", 401: "unauthenticated", 404: "unknown_endpoint", 413: "too_large"}


def _verify_and_parse(
    adapter: VendorAdapter, delivery: WebhookRequest, secrets: Sequence[str], config: TenantWebhookConfig
) -> AdapterResult:
    adapter.verify(delivery, secrets, config)
    try:
        return adapter.parse(delivery, config, secrets)
    except ValidationError as error:
        # Adapters name their fields; a contract check one of them did not wrap is still a 422.
        raise validation_to_rejection("body", error) from None


def _rejection(adapter: VendorAdapter, delivery: WebhookRequest, exc: WebhookRejected) -> Problem:
    """A refused delivery as a problem naming the header, path or body field and the reason."""
    INGEST_REJECTIONS.labels(adapter.source, _REJECTION_REASONS.get(exc.status_code, "invalid")).inc()
    INGEST_EVENTS.labels(adapter.source, "rejected").inc()
    if exc.field == "token" and adapter.source in URL_TOKEN_SOURCES:
        where = "path"
    elif exc.field in delivery.headers or exc.field.startswith("x-"):
        where = "header"
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
    if not _TENANT_ID.match(tenant_id):
        return (decoy,)  # never a tenant id: nothing to look up
    return await cache.secrets(tenant_id, source, fresh=fresh) or (decoy,)


async def verified_delivery(
    cache: WebhookSecretCache,
    adapter: VendorAdapter,
    delivery: WebhookRequest,
    tenant_id: str,
    context: TenantContext | None,
    decoy: str,
) -> AdapterResult:
    """Verify then parse; a rejection becomes a problem naming the field and the reason.

    An unknown tenant (``context`` None) takes the very same path, verified against ``decoy``
    (as is a tenant without a secret for the source): its answer, and the work done to give
    it, are those of a known tenant whose signature does not match.
    """
    config = context.webhook if context is not None else unknown_tenant_config(tenant_id)
    secrets = await _secrets_or_decoy(cache, tenant_id, adapter.source, decoy, fresh=False)
    try:
        try:
            return _verify_and_parse(adapter, delivery, secrets, config)
        except WebhookRejected as exc:
            if exc.status_code != 401:
                raise
            # A secret added since the cache was filled (a rotation) must work at once.
            fresh = await _secrets_or_decoy(cache, tenant_id, adapter.source, decoy, fresh=True)
            if fresh == secrets:
                raise
            return _verify_and_parse(adapter, delivery, fresh, config)
    except WebhookRejected as exc:
        raise _rejection(adapter, delivery, exc) from None


class EventsAccepted(BaseModel):
    """Every published activity was acknowledged by the broker.

    ``accepted`` every activity ingest answers for (so ``accepted + excluded`` is what was sent);
    of those, ``duplicates`` were redeliveries of an (activity, revision) already accepted, or a
    meeting already seen from another source; ``excluded`` withheld by the tenant's
    privacy policy (never published); ``automated`` published but flagged as sent by a machine.
    ``activity_ids`` are the ids published, deterministic per (tenant, source, external id) or the
    id of the meeting first seen from another source.
    """

    accepted: int
    duplicates: int = 0
    excluded: int = 0
    automated: int = 0
    activity_ids: list[str]


class WebhookAccepted(EventsAccepted):
    """A vendor delivery: also the entities published and the events deliberately ignored."""

    entities: int = 0
    ignored: list[str]


class EntityWarningRead(BaseModel):
    """Something dropped from an accepted entity (an unreadable phone), named by index and field."""

    index: int
    field: str
    reason: str


class EntitiesAccepted(BaseModel):
    accepted: int
    warnings: list[EntityWarningRead] = []


def create_app(  # noqa: C901 - shrink when next touched
    settings: IngestSettings | None = None, *, clock: Callable[[], datetime] | None = None
) -> FastAPI:
    """The ingest app; ``clock`` (aware UTC) is injected by tests that replay fixed vendor times."""
    settings = settings or IngestSettings()
    now_utc = clock or (lambda: datetime.now(UTC))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.database, SERVICE)
        publisher = KafkaPublisher(settings.kafka, settings.ingest.publish_timeout_seconds, "ingest")
        app.state.engine = engine
        app.state.publisher = publisher
        app.state.authenticator = ApiKeyAuthenticator(engine, settings.runtime.secret_key.get_secret_value())
        app.state.tenants = TenantDirectory(engine, settings.ingest.tenant_cache_seconds)
        app.state.webhook_secrets = WebhookSecretCache(
            engine, settings.runtime.secret_key.get_secret_value(), settings.ingest.tenant_cache_seconds
        )
        app.state.seen_ledger = SeenLedger(engine)
        tenants: TenantDirectory = app.state.tenants

        async def forget(event: SettingsChangedV1) -> None:
            tenants.invalidate(event.tenant_id)

        app.state.settings_listener = SettingsChangeListener(settings.kafka, forget)
        app.state.settings_listener.start()
        try:
            yield
        finally:
            await app.state.settings_listener.stop()
            await app.state.seen_ledger.close()
            await publisher.close()
            await engine.dispose()

    app = FastAPI(
        title="SPM ingest",
        version="1.0.0",
        description="Accepts activities and CRM entities (canonical batches and vendor webhooks) and "
        "publishes them to Kafka. A 2xx means the broker acknowledged every event.",
        lifespan=lifespan,
    )
    install_common_handlers(app, SERVICE)
    install_database_unavailable_handler(app, settings.ingest.retry_after_seconds)
    # Bodies are read raw (all-or-nothing validation with every bad index), so FastAPI does not
    # see these models: they are added to the document for the routes' $refs.
    document_models(app, ActivityIn, CrmSyncIn)

    async def _kafka_ready() -> bool:
        return await broker_reachable(settings.kafka)

    async def _db_ready() -> bool:
        return await database_reachable(app.state.engine)

    app.include_router(health_router(SERVICE, {"kafka": _kafka_ready, "database": _db_ready}))
    app.include_router(push_router())

    def _unavailable(exc: BrokerUnavailable) -> Problem:
        return Problem(
            503,
            "Broker unavailable",
            "the events were not acknowledged by the broker; retry later (nothing was accepted)",
            headers={"Retry-After": str(settings.ingest.retry_after_seconds)},
        )

    async def _tenant_context(directory: TenantDirectory, tenant_id: str) -> TenantContext | None:
        try:
            return await directory.context(tenant_id)
        except InvalidTenantSettings as exc:
            # Guessing a privacy policy could publish what the tenant excluded: refuse instead,
            # as unavailable (nothing is accepted, the sender retries) until an admin fixes it.
            raise Problem(
                503,
                "Tenant settings invalid",
                f"{exc}; nothing was accepted: retry once an admin has fixed the settings",
                headers={"Retry-After": str(settings.ingest.retry_after_seconds)},
                errors=[
                    {"in": "tenant settings", "field": name, "reason": reason}
                    for name, reason in zip(exc.settings, exc.reasons, strict=True)
                ],
            ) from None

    async def _accept(
        request: Request,
        context: TenantContext,
        activities: Sequence[ActivityIn],
        zoom_events: Sequence[ZoomEvent],
        adapter_version: str,
        now: datetime,
        extra: Sequence[OutgoingMessage],
        raw: OutgoingMessage | None,
    ) -> handlers.PreparedActivities:
        """Fold, filter, dedupe and publish; returns only after the broker acknowledged."""
        screened = None if zoom_events else handlers.screen_activities(context, activities)
        if screened is not None and not screened.shares_state:
            # Calls and emails share no state with other deliveries: no transaction is held
            # across the broker round trip, the pairs are recorded once acknowledged.
            ledger: SeenLedger = request.app.state.seen_ledger
            prepared = await handlers.prepare_unshared_activities(
                ledger, context, screened, now, adapter_version
            )
            await _publish(request, prepared, extra, raw)
            await ledger.record(context.tenant_id, [(e.activity_id, e.revision) for e in prepared.events])
            return prepared
        # Zoom state and meeting keys are committed only after the broker's ack: a refused
        # publish rolls them back with the duplicate bookkeeping, and the locked Zoom row
        # serialises concurrent deliveries of one meeting.
        async with request.app.state.engine.begin() as conn:
            replays = 0
            if screened is None:
                folded, replays = await _fold_zoom(conn, context.tenant_id, zoom_events)
                screened = handlers.screen_activities(context, [*activities, *folded])
            prepared = await handlers.prepare_activities(conn, context, screened, now, adapter_version)
            prepared.duplicates += replays
            await _publish(request, prepared, extra, raw)
        return prepared

    async def _publish(
        request: Request,
        prepared: handlers.PreparedActivities,
        extra: Sequence[OutgoingMessage],
        raw: OutgoingMessage | None,
    ) -> None:
        prefix = settings.kafka.topic_prefix
        messages = [handlers.activity_message(e, prefix) for e in prepared.events]
        # A delivery holding excluded activities is not captured raw: privacy comes before replay.
        captured = [raw] if raw is not None and not prepared.excluded else []
        try:
            await request.app.state.publisher.publish([*captured, *messages, *extra])
        except BrokerUnavailable as exc:
            raise _unavailable(exc) from None

    async def _fold_zoom(
        conn: AsyncConnection, tenant_id: str, events: Sequence[ZoomEvent]
    ) -> tuple[list[ActivityIn], int]:
        """The meetings the events complete, and how many events were replays that changed nothing."""
        emitted: list[ActivityIn] = []
        replays = 0
        for event in events:
            # The row stays locked until commit, so concurrent deliveries of one meeting serialise.
            stored = await lock_webhook_state(conn, tenant_id, "zoom", event.meeting_uuid)
            previous = ZoomMeetingState.model_validate(stored) if stored is not None else None
            state, activity = fold_zoom_meeting(previous, event)
            if state == previous:
                replays += 1
                continue
            await save_webhook_state(conn, tenant_id, "zoom", event.meeting_uuid, state.model_dump_json())
            if activity is not None:
                emitted.append(activity)
        return emitted, replays

    def _public_url(request: Request) -> str:
        base = settings.ingest.public_base_url
        if not base:
            return str(request.url)
        query = request.url.query
        return base.rstrip("/") + request.url.path + (f"?{query}" if query else "")

    @app.post(
        "/v1/events",
        status_code=202,
        summary="Ingest a batch of canonical activities",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["activities"],
                            "properties": {
                                "activities": {
                                    "type": "array",
                                    "maxItems": 1000,
                                    "items": {"$ref": "#/components/schemas/ActivityIn"},
                                }
                            },
                        }
                    }
                },
            }
        },
        responses={202: {"description": "Every activity was acknowledged by the broker"}},
    )
    async def post_events(request: Request, principal: IngestPrincipal) -> EventsAccepted:
        """Validate all-or-nothing, then publish; 202 only after the broker acknowledged."""
        context = await _tenant_context(request.app.state.tenants, principal.tenant_id)
        if context is None:
            raise Problem(403, "Forbidden", "the key's tenant no longer exists")
        try:
            body = await read_body(request, settings.ingest.max_body_bytes)
            now = now_utc()
            activities = handlers.parse_activity_batch(
                body, settings.ingest, now, phone_region(context.settings)
            )
        except Problem as exc:
            INGEST_REJECTIONS.labels("api", _REJECTION_REASONS.get(exc.status, "invalid")).inc()
            raise
        prepared = await _accept(request, context, activities, (), "canonical/1", now, (), None)
        prepared.count("api")
        return EventsAccepted(
            accepted=prepared.accepted,
            duplicates=prepared.duplicates,
            excluded=prepared.excluded,
            automated=prepared.automated,
            activity_ids=[str(e.activity_id) for e in prepared.events],
        )

    @app.post(
        "/v1/crm/sync",
        status_code=202,
        summary="Upsert a batch of CRM entities",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/CrmSyncIn"}}},
            }
        },
    )
    async def post_crm_sync(request: Request, principal: IngestPrincipal) -> EntitiesAccepted:
        """Reps, teams, memberships, accounts, contacts and deals; newest ``updated_at`` wins downstream."""
        body = await read_body(request, settings.ingest.max_body_bytes)
        sync = handlers.parse_crm_sync(body)
        context = await _tenant_context(request.app.state.tenants, principal.tenant_id)
        if context is None:
            raise Problem(403, "Forbidden", "the key's tenant no longer exists")
        read = handlers.crm_messages(
            sync, principal.tenant_id, phone_region(context.settings), settings.kafka.topic_prefix
        )
        try:
            await request.app.state.publisher.publish(read.messages)
        except BrokerUnavailable as exc:
            raise _unavailable(exc) from None
        for warning in read.warnings:
            INGEST_PHONES_DROPPED.labels(warning.problem.value).inc()
        return EntitiesAccepted(
            accepted=len(sync.entities),
            warnings=[
                EntityWarningRead(index=w.index, field=w.field, reason=w.reason) for w in read.warnings
            ],
        )

    webhook_responses: dict[int | str, dict[str, Any]] = {
        200: {"description": "Acknowledged by the broker, or a handshake answered"},
        401: {
            "description": "Signature, timestamp, token or organization refused (the field is named); "
            "an unknown tenant gets exactly this answer"
        },
        404: {"description": "Unknown source"},
        503: {"description": "The broker did not acknowledge; retry after Retry-After"},
    }

    @app.post(
        "/v1/webhooks/{source}/{tenant}",
        summary="Receive a vendor webhook",
        response_model=None,
        responses=webhook_responses,
    )
    @app.post(
        "/v1/webhooks/{source}/{tenant}/{token}",
        summary="Receive a vendor webhook authenticated by a secret in the URL (Salesforce)",
        response_model=None,
        responses=webhook_responses,
    )
    async def post_webhook(source: str, tenant: str, request: Request) -> Response:
        """Verify, parse, filter and publish one vendor delivery; handshakes are answered at once."""
        adapter = ADAPTERS.get(source)
        token: str | None = request.path_params.get("token")
        if adapter is None or (token is not None and source not in URL_TOKEN_SOURCES):
            INGEST_REJECTIONS.labels(source if adapter else "unknown", "unknown_endpoint").inc()
            # Without ``instance``: the body is byte-identical whatever the URL was.
            return Problem(404, "Not found", "no webhook endpoint at this URL").response()
        # An unknown tenant is not answered here but verified like a known one (see verified_delivery).
        context = (
            await _tenant_context(request.app.state.tenants, tenant) if _TENANT_ID.match(tenant) else None
        )
        try:
            body = await read_body(request, MAX_BODY_BYTES)
        except Problem as exc:
            INGEST_REJECTIONS.labels(source, _REJECTION_REASONS.get(exc.status, "invalid")).inc()
            raise
        now = now_utc()
        delivery = WebhookRequest(
            method=request.method,
            url=_public_url(request),
            headers={k.lower(): v for k, v in request.headers.items()},
            body=body,
            received_at=now,
            url_token=token,
        )
        prefix = settings.kafka.topic_prefix
        decoy = decoy_secret(settings.runtime.secret_key.get_secret_value(), tenant, source)
        try:
            result = await verified_delivery(
                request.app.state.webhook_secrets, adapter, delivery, tenant, context, decoy
            )
        except Problem as exc:
            # Without ``instance``: the URL may hold a token, and the answer must not depend on it.
            return exc.response()
        if result.handshake is not None:
            # Graph's validation echo needs no secret, so it is answered for any tenant id alike.
            handshake = result.handshake
            return Response(
                handshake.body, status_code=handshake.status_code, media_type=handshake.media_type
            )
        if context is None:
            # Unreachable without the decoy, which nobody knows; never published for an unknown tenant.
            return _rejection(adapter, delivery, WebhookRejected(401, "secret", "does not match")).response()
        raw = handlers.raw_webhook_message(
            tenant, source, adapter.version, now, delivery.headers, body, prefix
        )
        entities = handlers.entity_messages(result.entities, source, tenant, prefix)
        prepared = await _accept(
            request, context, result.activities, result.zoom_events, adapter.version, now, entities, raw
        )
        prepared.count(source)
        if result.ack is not None:
            return Response(
                result.ack.body, status_code=result.ack.status_code, media_type=result.ack.media_type
            )
        answer = WebhookAccepted(
            accepted=prepared.accepted,
            duplicates=prepared.duplicates,
            excluded=prepared.excluded,
            automated=prepared.automated,
            activity_ids=[str(e.activity_id) for e in prepared.events],
            entities=len(result.entities),
            ignored=list(result.ignored),
        )
        return Response(orjson.dumps(answer.model_dump()), media_type="application/json")

    return app
