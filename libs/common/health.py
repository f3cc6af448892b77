"""Health, readiness and Prometheus routes, the same for every service.

``/healthz`` answers while the process lives and checks nothing else (a liveness probe
that checks dependencies restarts healthy pods when the database blips).
``/readyz`` checks the broker and the database with short timeouts; a consuming service adds
its consumer, which is not ready while it has been retrying a transient failure past
``CONSUMER_NOT_READY_AFTER_RETRYING_MS`` (see :mod:`libs.common.kafka.service`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from libs.common.telemetry import READY

ReadinessCheck = Callable[[], Awaitable[bool]]


def health_router(service: str, checks: dict[str, ReadinessCheck]) -> APIRouter:
    """Routes ``/healthz``, ``/readyz`` and ``/metrics``; ``checks`` maps a dependency name to a probe."""
    router = APIRouter(include_in_schema=False)

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": service}

    @router.get("/readyz")
    async def readyz(response: Response) -> dict[str, object]:
        names = list(checks)
        results = await asyncio.gather(*(checks[name]() for name in names), return_exceptions=True)
        status = {name: (result is True) for name, result in zip(names, results, strict=True)}
        ready = all(status.values())
        READY.labels(service).set(1 if ready else 0)
        response.status_code = 200 if ready else 503
        return {"ready": ready, "checks": status}

    @router.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router
