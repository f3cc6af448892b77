"""A tenant living through a quarter of CRM changes: CRM versions and activities posted over time
through the canonical API (``POST /v1/crm/sync``, ``POST /v1/events``), read back through the
gateway as a RevOps admin and a sales manager would.

Every activity here is a dial (an unanswered outbound call, score 1) or an email, so each figure
is a count one can check by hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.contracts.activities import activity_id_for
from libs.common.settings import KafkaSettings
from libs.common.tenancy import create_tenant
from libs.common.testing.stack import TEST_SECRET_KEY
from tests.integration.pipeline_support import drained
from tests.integration.polling import references_landed


@dataclass(frozen=True)
class Tenant:
    tenant_id: str
    ingest: dict[str, str]
    read: dict[str, str]
    admin: dict[str, str]


async def new_tenant(engine: AsyncEngine, tenant_id: str = "acme", time_zone: str = "UTC") -> Tenant:
    async with engine.begin() as conn:
        made = await create_tenant(conn, tenant_id, TEST_SECRET_KEY, timezone=time_zone)
    keys: dict[str, str] = made["api_keys"]  # type: ignore[assignment]
    return Tenant(
        tenant_id,
        *({"Authorization": f"Bearer {keys[scope]}"} for scope in ("ingest", "read", "admin")),
    )


async def configure(engine: AsyncEngine, tenant: Tenant, settings: dict[str, Any]) -> None:
    """The tenant's settings document (``rep_aliases``...), written before the stack starts."""
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE tenants SET settings = CAST(:s AS jsonb) WHERE tenant_id = :t"),
            {"t": tenant.tenant_id, "s": orjson.dumps(settings).decode()},
        )


async def sync(stack: Any, engine: AsyncEngine, tenant: Tenant, at: str, *entities: dict[str, Any]) -> None:
    """The CRM's version of ``entities`` as of ``at`` (their ``updated_at`` unless they carry one),
    accepted, and held by attribution before anything posted after it."""
    sent: list[dict[str, Any]] = [{"updated_at": at, **e} for e in entities]
    body = {"source": "crm", "entities": sent}
    response = await stack.ingest.post("/v1/crm/sync", json=body, headers=tenant.ingest)
    assert response.status_code == 202, response.text
    assert response.json()["warnings"] == []
    await references_landed(engine, tenant.tenant_id, sent)


async def post(stack: Any, tenant: Tenant, *activities: dict[str, Any]) -> None:
    response = await stack.ingest.post(
        "/v1/events", json={"activities": list(activities)}, headers=tenant.ingest
    )
    assert response.status_code == 202, response.text


async def settle(kafka: KafkaSettings) -> None:
    """Every CRM change and activity posted so far decided by attribution and counted by metrics."""
    await drained(kafka)


async def get(stack: Any, tenant: Tenant, url: str) -> Any:
    response: httpx.Response = await stack.gateway.get(url, headers=tenant.read)
    assert response.status_code == 200, response.text
    return response.json()


def dial(external_id: str, rep_phone: str, at: str, **fields: Any) -> dict[str, Any]:
    """An unanswered outbound call from ``rep_phone`` to a number nobody knows: the rep's work
    (score 1), on no account."""
    return {
        "source": "dialer",
        "external_id": external_id,
        "kind": "call",
        "direction": "outbound",
        "outcome": "no_answer",
        "occurred_at": at,
        "participants": [
            {"phone": rep_phone, "role": "caller"},
            {"phone": "+12125559999", "role": "callee"},
        ],
        **fields,
    }


def email(external_id: str, sender: str, recipient: str, at: str, **fields: Any) -> dict[str, Any]:
    """An email from ``sender`` to ``recipient``; outbound unless ``fields`` say otherwise."""
    return {
        "source": "mail",
        "external_id": external_id,
        "kind": "email",
        "direction": "outbound",
        "outcome": "sent",
        "occurred_at": at,
        "participants": [{"email": sender, "role": "from"}, {"email": recipient, "role": "to"}],
        **fields,
    }


async def activity(stack: Any, tenant: Tenant, source: str, external_id: str) -> dict[str, Any]:
    """``GET /v1/activities/{id}``'s attribution headline: what a manager reads on the activity."""
    body = await get(
        stack, tenant, f"/v1/activities/{activity_id_for(tenant.tenant_id, source, external_id)}"
    )
    a = body["attribution"]
    return {
        "status": a["status"],
        "rep": a["rep_id"],
        "team": a["team_id"],
        "account": a["account_id"],
        "deal": a["deal_id"],
        "rule_path": a["rule_path"],
        "version": a["version"],
    }


async def counted(
    stack: Any, tenant: Tenant, kind: str, entity: str, granularity: str, start: str, end: str
) -> dict[str, int]:
    """period start -> activities counted for a rep's or team's (``kind`` ``reps`` or ``teams``)
    periods starting in [start, end], empty periods left out."""
    body = await get(
        stack, tenant, f"/v1/{kind}/{entity}/scores?granularity={granularity}&from={start}&to={end}"
    )
    return {
        p["period_start"]: p["counts"]["activities"] for p in body["periods"] if p["counts"]["activities"]
    }
