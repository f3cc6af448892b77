"""A tenant living through a quarter of CRM changes: CRM versions and activities posted over time
through the canonical API (``POST /v1/crm/sync``, ``POST /v1/events``), read back through the
gateway as a RevOps admin and a sales manager would.

Every activity here is a dial (an unanswered outbound call, score 1) or an email, so each figure
is a count one can check by hand.
"""

from __future__ import annotations

from collections.abc import Mapping
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
from tests.integration.ingest.ingest_integration_support import TENANT, setup_tenant
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
    return tenant_of(tenant_id, keys)


def tenant_of(tenant_id: str, keys: Mapping[str, str]) -> Tenant:
    """The tenant's bearer headers from its API keys (``create_tenant``'s ``api_keys``)."""
    return Tenant(
        tenant_id,
        *({"Authorization": f"Bearer {keys[scope]}"} for scope in ("ingest", "read", "admin")),
    )


async def webhook_tenant(engine: AsyncEngine, settings: Mapping[str, Any]) -> Tenant:
    """The webhook tests' tenant (``setup_tenant``: known webhook secrets) with ``settings``."""
    return tenant_of(TENANT, await setup_tenant(engine, settings))


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


async def override(stack: Any, tenant: Tenant, source: str, external_id: str, **body: Any) -> None:
    """An admin's ``PUT /v1/activities/{id}/attribution`` of the activity (``body``: its deal or
    rep, and the reason), accepted."""
    aid = activity_id_for(tenant.tenant_id, source, external_id)
    response = await stack.gateway.put(f"/v1/activities/{aid}/attribution", json=body, headers=tenant.admin)
    assert response.status_code == 202, response.text


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


def received(external_id: str, sender: str, recipient: str, at: str) -> dict[str, Any]:
    """An email from ``sender`` (a buyer) received at ``recipient``."""
    return email(external_id, sender, recipient, at, direction="inbound", outcome="received")


def rep(rep_id: str, address: str, name: str | None = None, **fields: Any) -> dict[str, Any]:
    """A rep with one address, named ``name`` (her id when not given)."""
    return {"entity_type": "rep", "id": rep_id, "name": name or rep_id, "emails": [address], **fields}


def contact(contact_id: str, account_id: str, address: str) -> dict[str, Any]:
    """A contact of ``account_id`` with one address."""
    return {"entity_type": "contact", "id": contact_id, "account_id": account_id, "emails": [address]}


def membership(mid: str, rep_id: str, team_id: str, start: str, end: str | None = None) -> dict[str, Any]:
    """``rep_id`` on ``team_id`` from ``start`` to ``end`` (open when None)."""
    return {
        "entity_type": "team_membership",
        "id": mid,
        "rep_id": rep_id,
        "team_id": team_id,
        "valid_from": start,
        "valid_to": end,
    }


def deal(
    deal_id: str, name: str, account_id: str, owner: str, created_at: str, *champions: str, **fields: Any
) -> dict[str, Any]:
    """An open deal ("proposal") of ``account_id`` owned by ``owner``, ``champions`` (contact ids)
    its champions."""
    return {
        "entity_type": "deal",
        "id": deal_id,
        "name": name,
        "account_id": account_id,
        "owner_rep_id": owner,
        "stage": "proposal",
        "created_at": created_at,
        "contacts": [{"contact_id": c, "role": "champion"} for c in champions],
        **fields,
    }


def renewal(owner: str) -> dict[str, Any]:
    """deal-1, acc-1's "Buyer renewal" (con-1 its champion), owned by ``owner``."""
    return deal("deal-1", "Buyer renewal", "acc-1", owner, "2026-09-01T00:00:00Z", "con-1")


def east_and_west(ana: dict[str, Any], bea: dict[str, Any], buyer: str) -> list[dict[str, Any]]:
    """Two teams: ``ana`` (rep-ana's entity) in West, ``bea`` (rep-bea's) in East; the account
    acc-1 (``buyer.example``), its contact con-1 at ``buyer``, and deal-1, Bea's."""
    return [
        {"entity_type": "team", "id": "team-east", "name": "East"},
        {"entity_type": "team", "id": "team-west", "name": "West"},
        ana,
        bea,
        {
            "entity_type": "team_membership",
            "id": "m-ana",
            "rep_id": "rep-ana",
            "team_id": "team-west",
            "valid_from": "2026-01-01",
        },
        {
            "entity_type": "team_membership",
            "id": "m-bea",
            "rep_id": "rep-bea",
            "team_id": "team-east",
            "valid_from": "2026-01-01",
        },
        {"entity_type": "account", "id": "acc-1", "name": "Buyer", "domains": ["buyer.example"]},
        {"entity_type": "contact", "id": "con-1", "emails": [buyer], "account_id": "acc-1"},
        renewal("rep-bea"),
    ]


async def attribution(stack: Any, tenant: Tenant, source: str, external_id: str) -> dict[str, Any]:
    """The activity's current attribution as ``GET /v1/activities/{id}`` shows it."""
    body = await get(
        stack, tenant, f"/v1/activities/{activity_id_for(tenant.tenant_id, source, external_id)}"
    )
    return dict(body["attribution"])


async def activity(stack: Any, tenant: Tenant, source: str, external_id: str) -> dict[str, Any]:
    """``GET /v1/activities/{id}``'s attribution headline: what a manager reads on the activity."""
    a = await attribution(stack, tenant, source, external_id)
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
