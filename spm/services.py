"""Which services exist, their default ports, and how to build each one's app (imported lazily)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from fastapi import FastAPI


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    name: str
    default_port: int

    @property
    def port(self) -> int:
        return int(os.environ.get(f"{self.name.upper()}_PORT", self.default_port))


SERVICES: dict[str, ServiceSpec] = {
    "gateway": ServiceSpec("gateway", 8000),
    "ingest": ServiceSpec("ingest", 8001),
    "attribution": ServiceSpec("attribution", 8002),
    "metrics": ServiceSpec("metrics", 8003),
    "connectors": ServiceSpec("connectors", 8004),
}


def build_app(name: str) -> FastAPI:
    # Imported here so that running one service never imports the others.
    if name == "ingest":
        from services.ingest.app import create_app as ingest_app

        return ingest_app()
    if name == "attribution":
        from services.attribution.app import create_app as attribution_app

        return attribution_app()
    if name == "metrics":
        from services.metrics.app import create_app as metrics_app

        return metrics_app()
    if name == "gateway":
        from services.gateway.app import create_app as gateway_app

        return gateway_app()
    if name == "connectors":
        from services.connectors.app import create_app as connectors_app

        return connectors_app()
    raise KeyError(name)
