"""Schemathesis against the OpenAPI documents of ingest and the gateway, served in-process.

Generic over the schema: every documented operation (streams excepted: they never end) gets
a bounded number of generated requests with valid credentials; no answer may be a 5xx and
every documented response body must match its schema.
"""

from __future__ import annotations

import asyncio
import warnings
from typing import Any

import httpx
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import HypothesisDeprecationWarning
from pydantic import BaseModel
from schemathesis import Case, openapi
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import response_schema_conformance

from libs.common.contracts.activities import ActivityIn

from .stack import Services, bearer

CONTRACT_MODELS: dict[str, type[BaseModel]] = {"ActivityIn": ActivityIn}

EXAMPLES_PER_OPERATION = 12


def dangling_refs(document: dict[str, Any]) -> set[str]:
    """Every ``#/components/schemas/X`` the document points at but does not define."""
    defined = set(document.get("components", {}).get("schemas", {}))
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
                found.add(ref.rsplit("/", 1)[-1])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(document)
    return found - defined


def completed(document: dict[str, Any]) -> dict[str, Any]:
    """The document with the contract models it references but forgot to include."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for name in dangling_refs(document):
        model = CONTRACT_MODELS.get(name)
        if model is not None:
            exported = model.model_json_schema(ref_template="#/components/schemas/{model}")
            schemas.update(exported.pop("$defs", {}))
            schemas[name] = exported
    return document


def generated_cases(app: FastAPI) -> list[Case[Any]]:
    """Up to EXAMPLES_PER_OPERATION cases per operation; generated off the event loop."""
    schema = openapi.from_dict(completed(app.openapi()))
    cases: list[Case[Any]] = []
    for result in schema.get_all_operations():
        # An operation the loader cannot read is a schema bug: fail on it, do not skip it.
        assert isinstance(result, Ok), result.err()
        operation = result.ok()
        responses: dict[str, Any] = operation.definition.raw.get("responses", {})
        if any("text/event-stream" in (r.get("content") or {}) for r in responses.values()):
            continue

        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def collect(case: Case[Any]) -> None:
            cases.append(case)

        with warnings.catch_warnings():
            # schemathesis' own strategies (string formats) draw from `random`; that is its
            # concern, not ours: the cases stay deterministic (derandomize=True).
            warnings.simplefilter("ignore", HypothesisDeprecationWarning)
            collect()
    return cases


async def fuzz(client: httpx.AsyncClient, app: FastAPI, credentials: dict[str, str]) -> dict[int, int]:
    cases = await asyncio.to_thread(generated_cases, app)
    assert len(cases) >= 5
    statuses: dict[int, int] = {}
    for case in cases:
        kwargs = case.as_transport_kwargs(base_url=str(client.base_url))
        # Generated values of a declared Authorization header would only test the 401 path.
        generated = {k: v for k, v in kwargs.get("headers", {}).items() if k.lower() != "authorization"}
        kwargs["headers"] = {**generated, **credentials}
        kwargs.pop("cookies", None)
        response = await client.request(**kwargs)
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])
    return statuses


async def test_ingest_survives_generated_requests(services: Services) -> None:
    statuses = await fuzz(services.ingest, services.apps["ingest"], bearer(services.keys["ingest"]))
    assert all(status < 500 for status in statuses), statuses
    # Generated batches got past authentication and JSON parsing into validation.
    assert statuses.get(422, 0) + statuses.get(202, 0) >= EXAMPLES_PER_OPERATION // 2, statuses


def test_openapi_documents_define_every_schema_they_reference(services: Services) -> None:
    """Clients generate code from these documents: a dangling ``$ref`` breaks them."""
    assert {name: dangling_refs(app.openapi()) for name, app in services.apps.items()} == {
        "ingest": set(),
        "gateway": set(),
    }


async def test_gateway_survives_generated_requests(services: Services) -> None:
    # The admin key holds every gateway scope, so generated requests reach the handlers.
    statuses = await fuzz(services.gateway, services.apps["gateway"], bearer(services.keys["admin"]))
    assert all(status < 500 for status in statuses), statuses
    assert statuses.get(200, 0) >= 5, statuses
