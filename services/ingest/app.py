"""The ingest HTTP application: canonical batch endpoints and vendor webhooks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, FastAPI, Header, Request
from pydantic import BaseModel

from libs.common.auth import ApiKeyAuthenticator, bearer_token
from libs.common.db.engine import database_reachable, make_engine
from libs.common.health import health_router
from libs.common.kafka.clients import broker_reachable
from libs.common.tenancy import Principal, Scope
from libs.common.web import Problem, install_common_handlers, read_body
from services.ingest import handlers
from services.ingest.adapters.publisher import BrokerUnavailable, KafkaPublisher
from services.ingest.settings import IngestSettings

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
    """Every activity was acknowledged by the broker; ids are deterministic per (tenant, source, external id)."""

    accepted: int
    activity_ids: list[str]


class EntitiesAccepted(BaseModel):
    accepted: int


def create_app(settings: IngestSettings | None = None) -> FastAPI:
    settings = settings or IngestSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.database, SERVICE)
        publisher = KafkaPublisher(settings.kafka, settings.ingest.publish_timeout_seconds)
        app.state.engine = engine
        app.state.publisher = publisher
        app.state.authenticator = ApiKeyAuthenticator(engine, settings.runtime.secret_key.get_secret_value())
        try:
            yield
        finally:
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

    async def _kafka_ready() -> bool:
        return await broker_reachable(settings.kafka)

    async def _db_ready() -> bool:
        return await database_reachable(app.state.engine)

    app.include_router(health_router(SERVICE, {"kafka": _kafka_ready, "database": _db_ready}))

    def _unavailable(exc: BrokerUnavailable) -> Problem:
        return Problem(
            503,
            "Broker unavailable",
            "the events were not acknowledged by the broker; retry later (nothing was accepted)",
            headers={"Retry-After": str(settings.ingest.retry_after_seconds)},
        )

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
        body = await read_body(request, settings.ingest.max_body_bytes)
        now = datetime.now(UTC)
        activities = handlers.parse_activity_batch(body, settings.ingest, now)
        events = [handlers.to_ingested(a, principal.tenant_id, now, "canonical/1") for a in activities]
        try:
            accepted = await handlers.publish_activities(
                request.app.state.publisher, events, settings.kafka.topic_prefix, "api"
            )
        except BrokerUnavailable as exc:
            raise _unavailable(exc) from None
        return EventsAccepted(accepted=len(accepted.activity_ids), activity_ids=list(accepted.activity_ids))

    @app.post("/v1/crm/sync", status_code=202, summary="Upsert a batch of CRM entities")
    async def post_crm_sync(request: Request, principal: IngestPrincipal) -> EntitiesAccepted:
        """Reps, teams, memberships, accounts, contacts and deals; newest ``updated_at`` wins downstream."""
        body = await read_body(request, settings.ingest.max_body_bytes)
        sync = handlers.parse_crm_sync(body)
        try:
            await request.app.state.publisher.publish(
                handlers.crm_messages(sync, principal.tenant_id, settings.kafka.topic_prefix)
            )
        except BrokerUnavailable as exc:
            raise _unavailable(exc) from None
        return EntitiesAccepted(accepted=len(sync.entities))

    return app
