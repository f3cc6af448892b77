"""The gateway: the authenticated, multi-tenant read API and the built-in dashboard."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from libs.common.auth import ApiKeyAuthenticator
from libs.common.db.engine import database_reachable, make_engine
from libs.common.health import health_router
from libs.common.web import install_common_handlers
from services.gateway.routers import reps
from services.gateway.settings import GatewaySettings

SERVICE = "gateway"


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    settings = settings or GatewaySettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.database, SERVICE)
        app.state.engine = engine
        app.state.authenticator = ApiKeyAuthenticator(engine, settings.runtime.secret_key.get_secret_value())
        try:
            yield
        finally:
            await engine.dispose()

    app = FastAPI(
        title="SPM gateway",
        version="1.0.0",
        description="Read API for sales-activity dashboards: reps, teams, scores, leaderboards, funnels, "
        "insights and attributed activities. Authenticate with `Authorization: Bearer <key or JWT>`.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    install_common_handlers(app, SERVICE)
    if settings.gateway.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.gateway.cors_origins,
            allow_methods=["GET", "PUT", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type", "If-None-Match"],
            expose_headers=["ETag", "Retry-After", "X-RateLimit-Remaining"],
        )

    async def _db() -> bool:
        return await database_reachable(app.state.engine)

    app.include_router(health_router(SERVICE, {"database": _db}))
    app.include_router(reps.router)
    return app
