"""The ingest HTTP application: canonical batch endpoints and vendor webhooks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, FastAPI, Header, Query, Request, Response
from pydantic import BaseModel

from libs.common.auth import ApiKeyAuthenticator, bearer_token
from libs.common.contracts.activities import ActivityIn
from libs.common.contracts.crm import CrmSyncIn
from libs.common.contracts.fields import INT8_MAX
from libs.common.contracts.tenant_settings import SettingsChangedV1
from libs.common.db.engine import database_reachable, make_engine
from libs.common.erasures import erasure_key
from libs.common.health import health_router
from libs.common.jobs import REREAD_PHONES, Job, JobWorker
from libs.common.kafka.clients import broker_reachable
from libs.common.kafka.publisher import KafkaPublisher
from libs.common.kafka.settings_events import SettingsChangeListener
from libs.common.tenancy import Principal, Scope, WebhookSecretCache
from libs.common.topics import ACTIVITY_INGESTED, CRM_ENTITY_CHANGED, WEBHOOK_RECEIVED
from libs.common.web import (
    PlainRoute,
    Problem,
    document_models,
    install_common_handlers,
    install_database_unavailable_handler,
    read_asgi_body,
    read_body,
    request_url,
    serve_directly,
)
from services.ingest import handlers, pipeline
from services.ingest.adapters.repository import SeenLedger, TenantContext, TenantDirectory
from services.ingest.domain.normalize import MAX_BODY_BYTES, ahead_allowance
from services.ingest.domain.tenant_config import phone_region
from services.ingest.domain.webhooks import (
    ADAPTERS,
    URL_TOKEN_SOURCES,
    AdapterResult,
    WebhookRequest,
    decoy_secret,
)
from services.ingest.push import push_router
from services.ingest.settings import IngestSettings
from services.ingest.telemetry import INGEST_REJECTIONS

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


class EventsAccepted(BaseModel):
    """Every published activity was acknowledged by the broker.

    ``accepted`` every activity ingest answers for (so ``accepted + excluded`` is what was sent);
    of those, ``duplicates`` were redeliveries of an (activity, revision) already accepted, or a
    meeting already seen from another source; ``excluded`` withheld by the tenant's
    privacy policy (never published); ``automated`` published but flagged as sent by a machine.
    ``activity_ids`` are the ids published, deterministic per (tenant, source, external id) or the
    id of the meeting first seen from another source. ``ignored``: what is no activity, named
    and why (for ``POST /v1/events``, by its index: a meeting whose subject labels a calendar
    hold only colleagues attend, or one older than a revision of its object read as such a hold),
    so ``accepted + excluded`` and the ignored are what was sent.
    """

    accepted: int
    duplicates: int = 0
    excluded: int = 0
    automated: int = 0
    activity_ids: list[str]
    ignored: list[str] = []


class WebhookAccepted(EventsAccepted):
    """A vendor delivery: also the entities published and the events deliberately ignored."""

    entities: int = 0
    #: Objects the source deleted, published for attribution to retract (``activity-deleted``).
    deleted: int = 0
    ignored: list[str]


class EntityWarningRead(BaseModel):
    """Something dropped from an accepted entity (an unreadable phone), or an entity left out (an
    ``updated_at`` too far ahead of receipt: not counted in ``accepted``), named by index and field."""

    index: int
    field: str
    reason: str


class EntitiesAccepted(BaseModel):
    accepted: int
    warnings: list[EntityWarningRead] = []


router = APIRouter()


def _settings(request: Request) -> IngestSettings:
    settings: IngestSettings = request.app.state.settings
    return settings


def _deps(request: Request) -> pipeline.IngestDeps:
    deps: pipeline.IngestDeps = request.app.state.deps
    return deps


def _now(request: Request) -> datetime:
    now: datetime = request.app.state.clock()
    return now


async def _known_tenant(deps: pipeline.IngestDeps, principal: Principal) -> TenantContext:
    context = await pipeline.tenant_context(deps, principal.tenant_id)
    if context is None:
        raise Problem(403, "Forbidden", "the key's tenant no longer exists")
    return context


def _public_url(request: Request) -> str:
    base = _settings(request).ingest.public_base_url
    if not base:
        return request_url(request.scope)
    query = request.url.query
    return base.rstrip("/") + request.url.path + (f"?{query}" if query else "")


_EVENTS_BODY = {
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
}


@router.post(
    "/v1/events",
    status_code=202,
    summary="Ingest a batch of canonical activities",
    openapi_extra=_EVENTS_BODY,
    responses={202: {"description": "Every activity was acknowledged by the broker"}},
)
async def post_events(request: Request, principal: IngestPrincipal) -> EventsAccepted:
    """Validate all-or-nothing, then publish; 202 only after the broker acknowledged."""
    settings, deps = _settings(request), _deps(request)
    context = await _known_tenant(deps, principal)
    try:
        body = await read_body(request, settings.ingest.max_body_bytes)
        now = _now(request)
        activities = handlers.read_activity_batch(body, settings.ingest, now, phone_region(context.settings))
    except Problem as exc:
        INGEST_REJECTIONS.labels("api", pipeline.REJECTION_REASONS.get(exc.status, "invalid")).inc()
        raise
    prepared, ignored = await pipeline.accept_events(deps, context, activities, now)
    prepared.count("api")
    handlers.count_ignored("api", ignored)
    return EventsAccepted(
        accepted=prepared.accepted,
        duplicates=prepared.duplicates,
        excluded=prepared.excluded,
        automated=prepared.automated,
        activity_ids=[e.activity_id_text for e in prepared.events],
        ignored=ignored,
    )


class EventDeleted(BaseModel):
    """The deletion was acknowledged by the broker: attribution retracts the activity."""

    activity_id: str


@router.delete(
    "/v1/events/{source}/{external_id:path}",
    status_code=202,
    summary="Delete a canonical activity at its source",
    responses={202: {"description": "The deletion was acknowledged by the broker"}},
)
async def delete_event(
    source: str,
    external_id: str,
    request: Request,
    principal: IngestPrincipal,
    revision: Annotated[int | None, Query(ge=0, le=INT8_MAX)] = None,
) -> EventDeleted:
    """The activity posted as (``source``, ``external_id``) was deleted where it came from (at
    ``revision``: a later POST of a higher revision restores it)."""
    deps = _deps(request)
    context = await _known_tenant(deps, principal)
    activity_id = await pipeline.delete_activity(deps, context, source, external_id, _now(request), revision)
    return EventDeleted(activity_id=activity_id)


@router.post(
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
    """Reps, teams, memberships, accounts, contacts and deals; newest ``updated_at`` wins downstream
    (one more than ``INGEST_MAX_FUTURE_SKEW_SECONDS`` ahead of receipt is left out, with a warning,
    as a vendor's CRM record is)."""
    options = _settings(request).ingest
    body = await read_body(request, options.max_body_bytes)
    sync = handlers.parse_crm_sync(body)
    deps = _deps(request)
    context = await _known_tenant(deps, principal)
    # One setting bounds the canonical API's times ahead and every vendor's.
    with ahead_allowance(options.max_future_skew_seconds):
        read = await pipeline.sync_crm(deps, context, sync, _now(request))
    return EntitiesAccepted(
        accepted=len(sync.entities) - read.left_out,
        warnings=[EntityWarningRead(index=w.index, field=w.field, reason=w.reason) for w in read.warnings],
    )


_WEBHOOK_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "Acknowledged by the broker, or a handshake answered"},
    401: {
        "description": "Signature, timestamp, token or organization refused (the field is named); "
        "an unknown tenant gets exactly this answer"
    },
    404: {"description": "Unknown source"},
    503: {"description": "The broker did not acknowledge; retry after Retry-After"},
}


async def _delivery(request: Request, source: str, token: str | None) -> WebhookRequest:
    scope = request.scope
    try:
        # Read from the ASGI call: the webhook routes read their body only here.
        body = await read_asgi_body(scope, request.receive, MAX_BODY_BYTES)
    except Problem as exc:
        INGEST_REJECTIONS.labels(source, pipeline.REJECTION_REASONS.get(exc.status, "invalid")).inc()
        raise
    return WebhookRequest(
        method=scope["method"],
        url=_public_url(request),
        # What ``request.headers.items()`` gives, without building a ``Headers`` first.
        headers={k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]},
        body=body,
        received_at=_now(request),
        url_token=token,
    )


def _webhook_answer(outcome: pipeline.WebhookOutcome) -> Response:
    if outcome.handshake is not None:
        handshake = outcome.handshake
        return Response(
            handshake.body,
            status_code=handshake.status_code,
            media_type=handshake.media_type,
            headers=dict(handshake.headers),
        )
    result, prepared = outcome.result, outcome.prepared
    assert result is not None
    assert prepared is not None
    if result.ack is not None:
        return Response(result.ack.body, status_code=result.ack.status_code, media_type=result.ack.media_type)
    return Response(orjson.dumps(webhook_accepted(prepared, result)), media_type="application/json")


def webhook_accepted(prepared: handlers.PreparedActivities, result: AdapterResult) -> dict[str, Any]:
    """:class:`WebhookAccepted`'s fields in its order, as its ``model_dump()`` gives them (a
    model built per callback only to be dumped again cost more than the dict)."""
    return {
        "accepted": prepared.accepted,
        "duplicates": prepared.duplicates,
        "excluded": prepared.excluded,
        "automated": prepared.automated,
        "activity_ids": [e.activity_id_text for e in prepared.events],
        "ignored": list(result.ignored),
        "entities": len(result.entities),
        "deleted": len(dict.fromkeys(result.deletions)),
    }


async def receive_webhook_request(request: Request) -> Response:
    """Verify, parse, filter and publish one vendor delivery; handshakes are answered at once."""
    source: str = request.path_params["source"]
    tenant: str = request.path_params["tenant"]
    adapter = ADAPTERS.get(source)
    token: str | None = request.path_params.get("token")
    if adapter is None or (token is not None and source not in URL_TOKEN_SOURCES):
        INGEST_REJECTIONS.labels(source if adapter else "unknown", "unknown_endpoint").inc()
        # Without ``instance``: the body is byte-identical whatever the URL was.
        return Problem(404, "Not found", "no webhook endpoint at this URL").response()
    deps = _deps(request)
    # An unknown tenant is not answered here but verified like a known one (see verified_delivery).
    context, unusable = await pipeline.webhook_tenant_context(deps, tenant)
    delivery = await _delivery(request, source, token)
    decoy = decoy_secret(_settings(request).runtime.secret_key.get_secret_value(), tenant, source)
    try:
        # One setting bounds the canonical API's times ahead and every vendor's.
        with ahead_allowance(_settings(request).ingest.max_future_skew_seconds):
            outcome = await pipeline.receive_webhook(
                deps, adapter, delivery, tenant, context, decoy, unusable
            )
    except Problem as exc:
        if exc.status >= 500:
            raise
        # Without ``instance``: the URL may hold a token, and the answer must not depend on it.
        return exc.response()
    return _webhook_answer(outcome)


WEBHOOK_PATHS = ("/v1/webhooks/{source}/{tenant}", "/v1/webhooks/{source}/{tenant}/{token}")


def webhook_routes() -> list[PlainRoute]:
    """Vendor callbacks, served by :class:`PlainRoute` routes placed in front of the app's routes.

    Callbacks are the hottest single requests; these routes skip FastAPI's per-request
    dependency solving and nested-router matching (about 70 us of CPU per request, measured).
    The FastAPI routes below declare the same paths for the OpenAPI document and call the
    same function, so either way a request is answered alike. ``create_app`` also serves them
    in front of the middleware stack (:func:`libs.common.web.serve_directly`).
    """
    return [PlainRoute(path, receive_webhook_request, methods=["POST"]) for path in WEBHOOK_PATHS]


@router.post(
    WEBHOOK_PATHS[0], summary="Receive a vendor webhook", response_model=None, responses=_WEBHOOK_RESPONSES
)
@router.post(
    WEBHOOK_PATHS[1],
    summary="Receive a vendor webhook authenticated by a secret in the URL (Salesforce)",
    response_model=None,
    responses=_WEBHOOK_RESPONSES,
)
async def post_webhook(source: str, tenant: str, request: Request) -> Response:
    """Verify, parse, filter and publish one vendor delivery; handshakes are answered at once."""
    return await receive_webhook_request(request)


def create_app(
    settings: IngestSettings | None = None, *, clock: Callable[[], datetime] | None = None
) -> FastAPI:
    """The ingest app; ``clock`` (aware UTC) is injected by tests that replay fixed vendor times."""
    settings = settings or IngestSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        secret = settings.runtime.secret_key.get_secret_value()
        engine = make_engine(settings.database, SERVICE)
        publisher = KafkaPublisher(settings.kafka, settings.ingest.publish_timeout_seconds, "ingest")
        app.state.engine = engine
        app.state.authenticator = ApiKeyAuthenticator(engine, secret)
        app.state.deps = pipeline.IngestDeps(
            engine=engine,
            publisher=publisher,
            tenants=TenantDirectory(
                engine, settings.ingest.tenant_cache_seconds, erasure_key=erasure_key(secret)
            ),
            webhook_secrets=WebhookSecretCache(engine, secret, settings.ingest.tenant_cache_seconds),
            seen_ledger=SeenLedger(engine),
            topic_prefix=settings.kafka.topic_prefix,
            retry_after_seconds=settings.ingest.retry_after_seconds,
        )
        # The push routes (services/ingest/push.py) verify with the same secrets.
        app.state.webhook_secrets = app.state.deps.webhook_secrets
        tenants: TenantDirectory = app.state.deps.tenants

        async def forget(event: SettingsChangedV1) -> None:
            tenants.invalidate(event.tenant_id)

        listener = SettingsChangeListener(settings.kafka, forget)
        listener.start()

        async def reread_phones(job: Job) -> dict[str, Any]:
            again_after = timedelta(seconds=settings.ingest.reread_again_after_seconds)
            return await pipeline.reread_unread_phones(app.state.deps, job, again_after)

        rereads = JobWorker(engine, REREAD_PHONES, reread_phones, settings.ingest.jobs_interval_seconds)
        rereads.start()
        topics = (ACTIVITY_INGESTED, CRM_ENTITY_CHANGED, WEBHOOK_RECEIVED)
        warm_up = asyncio.create_task(
            publisher.warm_up([topic.physical(settings.kafka.topic_prefix) for topic in topics])
        )
        try:
            yield
        finally:
            warm_up.cancel()
            await asyncio.gather(warm_up, return_exceptions=True)
            await rereads.stop()
            await listener.stop()
            await app.state.deps.seen_ledger.close()
            await publisher.close()
            await engine.dispose()

    app = FastAPI(
        title="SPM ingest",
        version="1.0.0",
        description="Accepts activities and CRM entities (canonical batches and vendor webhooks) and "
        "publishes them to Kafka. A 2xx means the broker acknowledged every event.",
        lifespan=lifespan,
        # FastAPI's own OpenTelemetry instrumentation: nothing here configures a provider, and
        # off it costs nothing per request (it checked the global providers on each one).
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    app.state.clock = clock or (lambda: datetime.now(UTC))
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
    callbacks = webhook_routes()
    app.router.routes[:0] = callbacks
    app.include_router(router)
    # Callbacks skip the middleware stack too; the stack's behaviour is re-done in one wrapper.
    serve_directly(app, callbacks, SERVICE)
    return app
