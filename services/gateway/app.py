"""The gateway: the authenticated, multi-tenant read API and the built-in dashboard."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles

from libs.common.auth import ApiKeyAuthenticator
from libs.common.db.engine import database_reachable, make_engine
from libs.common.health import health_router
from libs.common.jwt_revocations import JwtRevocationCache
from libs.common.kafka.publisher import KafkaPublisher
from libs.common.web import (
    BodyLimitMiddleware,
    install_common_handlers,
    install_database_unavailable_handler,
    refuse_control_characters,
    refuse_unknown_query_parameters,
)
from services.gateway.adapters.jwks import JwksKeys
from services.gateway.auth import SessionAuthenticator
from services.gateway.caching import ETagMiddleware
from services.gateway.export import CsvNegotiation
from services.gateway.ratelimit import RateLimiter, RateLimitHeaders
from services.gateway.routers import (
    activities,
    admin_settings,
    alert_webhooks,
    audit,
    connectors,
    crm,
    dashboard,
    deals,
    digests,
    funnel,
    goals,
    insights,
    jwt_revocations,
    leaderboard,
    periods,
    pipeline,
    privacy,
    reps,
    session,
    stream,
    teams,
    tenant_settings,
    webhook_secrets,
)
from services.gateway.settings import GatewaySettings

SERVICE = "gateway"

DESCRIPTION = """
Read API for sales-activity dashboards: reps, teams, scores, leaderboards, funnels, insights
and attributed activities, plus admin overrides and per-tenant settings.

Authenticate with `Authorization: Bearer <API key or JWT>` (the dashboard exchanges one for a
session cookie at `POST /v1/session`). Errors are
`application/problem+json` (RFC 9457) naming the parameter and the reason. Lists are
cursor-paginated (`limit`, `cursor` -> `next_cursor`). Reads carry a weak `ETag` and honour
`If-None-Match`. Lists, scores, funnels and insights answer CSV on `Accept: text/csv`. Each credential and each tenant is rate limited (`RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset` of the bucket that binds on every answer; 429 + `Retry-After`). See docs/api.md.
"""


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    settings = settings or GatewaySettings()
    options = settings.gateway

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.database, SERVICE)
        app.state.engine = engine
        pepper = settings.runtime.secret_key.get_secret_value()
        app.state.authenticator = ApiKeyAuthenticator(engine, pepper, options.credential_recheck_seconds)
        app.state.sessions = SessionAuthenticator(engine, pepper, options.credential_recheck_seconds)
        app.state.jwt_revocations = JwtRevocationCache(engine, options.credential_recheck_seconds)
        app.state.jwks = (
            None
            if options.jwt_jwks_url is None
            else JwksKeys(
                str(options.jwt_jwks_url),
                options.jwt_jwks_refresh_seconds,
                options.jwt_jwks_min_refetch_seconds,
            )
        )
        app.state.rate_limiter = RateLimiter(options.rate_limit_per_minute)
        app.state.tenant_rate_limiter = RateLimiter(options.rate_limit_per_tenant_per_minute)
        app.state.stream_slots = stream.StreamSlots()
        publisher = KafkaPublisher(settings.kafka, options.publish_timeout_seconds, "gateway")
        app.state.publisher = publisher
        try:
            yield
        finally:
            await publisher.close()
            await engine.dispose()

    app = FastAPI(
        title="SPM gateway",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        dependencies=[Depends(refuse_control_characters), Depends(refuse_unknown_query_parameters)],
    )
    app.state.settings = settings
    # Inside the ETag layer: it tags the JSON answers and lets the CSV ones through.
    app.add_middleware(CsvNegotiation)
    app.add_middleware(ETagMiddleware, max_age=options.cache_max_age_seconds)
    app.add_middleware(BodyLimitMiddleware, limit=options.max_body_bytes, setting="GATEWAY_MAX_BODY_BYTES")
    app.add_middleware(RateLimitHeaders)
    # Added last, so outermost: metrics and security headers cover the answers above too.
    install_common_handlers(app, SERVICE)
    install_database_unavailable_handler(app)
    if options.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=options.cors_origins,
            allow_methods=["GET", "PUT", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type", "If-None-Match"],
            expose_headers=[
                "ETag",
                "Retry-After",
                "Link",
                "Content-Disposition",
                "RateLimit-Limit",
                "RateLimit-Remaining",
                "RateLimit-Reset",
            ],
        )

    async def _db() -> bool:
        return await database_reachable(app.state.engine)

    app.include_router(health_router(SERVICE, {"database": _db}))
    for module in (
        reps,
        teams,
        leaderboard,
        periods,
        funnel,
        insights,
        goals,
        alert_webhooks,
        digests,
        deals,
        activities,
        crm,
        pipeline,
        tenant_settings,
        admin_settings,
        webhook_secrets,
        jwt_revocations,
        stream,
        session,
        audit,
        privacy,
        connectors,
    ):
        app.include_router(module.router)
    app.include_router(dashboard.router)
    app.mount("/static", StaticFiles(directory=dashboard.STATIC_DIR), name="static")
    return app
