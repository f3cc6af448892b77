"""Shared pieces of the ingest integration tests: a tenant with known secrets, the app on the
test's engines with a fixed clock, vendor signatures computed independently of the adapters,
and reading back exactly what reached a topic.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.contracts.activities import activity_id_for
from libs.common.kafka.clients import connection_options, end_offsets
from libs.common.settings import DatabaseSettings, KafkaSettings, RuntimeSettings
from libs.common.tenancy import add_webhook_secret, create_tenant
from libs.common.testing.stack import TEST_PUBLISH_TIMEOUT_SECONDS, TEST_SECRET_KEY
from libs.common.topics import ACTIVITY_INGESTED, CRM_ENTITY_CHANGED, WEBHOOK_RECEIVED, Topic
from services.ingest.app import create_app
from services.ingest.settings import IngestOptions, IngestSettings

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "webhooks"
TENANT = "acme"
#: The app's clock: the vendor fixtures describe a day that ends after this instant.
RECEIVED_AT = datetime(2026, 11, 24, 16, 0, tzinfo=UTC)
NOW_SECONDS = int(RECEIVED_AT.timestamp())
WHSEC = "whsec_" + base64.b64encode(b"connector-signing-key-current-32b").decode()
WHSEC_OLD = "whsec_" + base64.b64encode(b"connector-signing-key-previous-32").decode()
#: Two valid secrets per source (a rotation in progress); deliveries are signed with the newest.
SECRETS: dict[str, tuple[str, str]] = {
    "twilio": ("twilio-auth-token-current", "twilio-auth-token-previous"),
    "aircall": ("aircall-webhook-token-1", "aircall-webhook-token-0"),
    "zoom": ("zoom-secret-token-current", "zoom-secret-token-previous"),
    "calendly": ("calendly-signing-key-current", "calendly-signing-key-previous"),
    "hubspot": ("hubspot-client-secret-current", "hubspot-client-secret-previous"),
    "salesforce": ("salesforce-endpoint-token-current", "salesforce-endpoint-token-previous"),
    "google-calendar": (WHSEC, WHSEC_OLD),
    "microsoft-graph": (WHSEC, WHSEC_OLD),
    "gmail": (WHSEC, WHSEC_OLD),
    "ringcentral": ("ringcentral-verification-token-current", "ringcentral-verification-token-previous"),
}
ORGANIZATION_ID = "00D5j00000ABCDEEA2"
TENANT_SETTINGS: dict[str, Any] = {
    "internal_domains": ["acme.example"],
    "salesforce_organization_id": ORGANIZATION_ID,
}


def fixture(source: str, name: str) -> bytes:
    return (FIXTURES / source / name).read_bytes()


def fixture_json(source: str, name: str) -> Any:
    return json.loads(fixture(source, name))


def dumps(value: Any) -> bytes:
    return json.dumps(value).encode("utf-8")


def outbound_message(*notifications: str) -> bytes:
    """Salesforce's Outbound Message (SOAP) carrying ``notifications`` (``<Notification>``s)."""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
 <soapenv:Body>
  <notifications xmlns="http://soap.sforce.com/2005/09/outbound">
   <OrganizationId>{ORGANIZATION_ID}</OrganizationId>
   <ActionId>04k5j000000CaRkAAK</ActionId>
   <SessionId xsi:nil="true"/>
   <EnterpriseUrl>https://acme.my.salesforce.com/services/Soap/c/60.0/00D5j00000ABCDE</EnterpriseUrl>
   <PartnerUrl>https://acme.my.salesforce.com/services/Soap/u/60.0/00D5j00000ABCDE</PartnerUrl>
   {"".join(notifications)}
  </notifications>
 </soapenv:Body>
</soapenv:Envelope>""".encode()


def url_for(source: str, tenant: str = TENANT) -> str:
    return f"http://ingest/v1/webhooks/{source}/{tenant}"


def endpoint(source: str, secret: str, tenant: str = TENANT) -> str:
    """The URL a delivery signed with ``secret`` goes to: Salesforce puts the secret in the URL."""
    return url_for(source, tenant) + (f"/{secret}" if source == "salesforce" else "")


def _hmac256(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()


def sign(
    source: str, body: bytes, secret: str, timestamp: int = NOW_SECONDS, tenant: str = TENANT
) -> dict[str, str]:
    """The headers the vendor would send for ``body`` to ``tenant``'s endpoint (none for Aircall
    and Salesforce: see ``endpoint``)."""
    url = url_for(source, tenant)
    if source == "twilio":
        params = sorted(parse_qsl(body.decode(), keep_blank_values=True))
        payload = url + "".join(k + v for k, v in params)
        digest = hmac.new(secret.encode(), payload.encode(), hashlib.sha1).digest()
        return {
            "content-type": "application/x-www-form-urlencoded",
            "x-twilio-signature": base64.b64encode(digest).decode(),
        }
    if source == "ringcentral":
        return {"content-type": "application/json", "verification-token": secret}
    if source == "zoom":
        signature = _hmac256(secret.encode(), f"v0:{timestamp}:".encode() + body).hex()
        return {"x-zm-signature": f"v0={signature}", "x-zm-request-timestamp": str(timestamp)}
    if source == "calendly":
        signature = _hmac256(secret.encode(), f"{timestamp}.".encode() + body).hex()
        return {"calendly-webhook-signature": f"t={timestamp},v1={signature}"}
    if source == "hubspot":
        millis = str(timestamp * 1000)
        message = b"POST" + url.encode() + body + millis.encode()
        return {
            "x-hubspot-signature-v3": base64.b64encode(_hmac256(secret.encode(), message)).decode(),
            "x-hubspot-request-timestamp": millis,
        }
    if source in {"google-calendar", "microsoft-graph", "gmail"}:
        key = (
            base64.b64decode(secret.removeprefix("whsec_"))
            if secret.startswith("whsec_")
            else secret.encode()
        )
        message_id = "msg_" + hashlib.sha256(body).hexdigest()[:12]
        signature = base64.b64encode(_hmac256(key, f"{message_id}.{timestamp}.".encode() + body)).decode()
        return {
            "webhook-id": message_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": f"v1,{signature}",
        }
    return {}


async def setup_tenant(
    db_engine: AsyncEngine, settings: Mapping[str, Any] | None = None, tenant: str = TENANT
) -> dict[str, str]:
    """The tenant with known webhook secrets (two valid per source); returns its API keys."""
    async with db_engine.begin() as conn:
        created = await create_tenant(conn, tenant, TEST_SECRET_KEY)
        await conn.execute(text("DELETE FROM webhook_secrets WHERE tenant_id = :t"), {"t": tenant})
        for source, (current, previous) in SECRETS.items():
            await add_webhook_secret(conn, tenant, source, TEST_SECRET_KEY, previous)
            await add_webhook_secret(conn, tenant, source, TEST_SECRET_KEY, current)
        await conn.execute(
            text("UPDATE tenants SET settings = CAST(:s AS jsonb) WHERE tenant_id = :t"),
            {"s": json.dumps(dict(settings if settings is not None else TENANT_SETTINGS)), "t": tenant},
        )
    keys: dict[str, str] = created["api_keys"]  # type: ignore[assignment]
    return keys


@asynccontextmanager
async def ingest_client(
    kafka: KafkaSettings, database: DatabaseSettings, **options: Any
) -> AsyncIterator[httpx.AsyncClient]:
    options.setdefault("publish_timeout_seconds", TEST_PUBLISH_TIMEOUT_SECONDS)
    settings = IngestSettings(
        runtime=RuntimeSettings(secret_key=TEST_SECRET_KEY),
        kafka=kafka,
        database=database,
        ingest=IngestOptions(**options),
    )
    app = create_app(settings, clock=lambda: RECEIVED_AT)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://ingest") as client:
            yield client


async def read_topic(kafka: KafkaSettings, topic: Topic) -> list[dict[str, Any]]:
    """Every payload on the test's ``topic``, read from the start to the end offsets.

    Publishing is acknowledged before ingest answers, so the end offsets already include every
    accepted event: no waiting, and an empty list proves nothing was published.
    """
    name = topic.physical(kafka.topic_prefix)
    # From the beginning by default too: ``assign`` sends the default reset in the background, and
    # aiokafka applies a reset's answer even when a ``seek_to_beginning`` came in meanwhile, so a
    # slow ``latest`` answer left the reader at the end, reading nothing (seen under load).
    consumer = AIOKafkaConsumer(
        enable_auto_commit=False, auto_offset_reset="earliest", **connection_options(kafka)
    )
    await consumer.start()
    try:
        partitions = [TopicPartition(name, p) for p in range(2)]
        end = await end_offsets(kafka, partitions)
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        payloads: list[tuple[int, int, dict[str, Any]]] = []

        async def behind() -> bool:
            return any([await consumer.position(tp) < end[tp] for tp in partitions])

        while await behind():
            batch = await consumer.getmany(timeout_ms=1_000)
            for tp, records in batch.items():
                payloads.extend(
                    (tp.partition, r.offset, json.loads(r.value)) for r in records if r.value is not None
                )
        return [p for _, _, p in sorted(payloads, key=lambda x: (x[0], x[1]))]
    finally:
        await consumer.stop()


async def activities_on_topic(kafka: KafkaSettings) -> list[dict[str, Any]]:
    """Activities in a stable order (by external id, then revision): partitions interleave."""
    found = await read_topic(kafka, ACTIVITY_INGESTED)
    return sorted(found, key=lambda a: (a["external_id"], a["revision"]))


async def entities_on_topic(kafka: KafkaSettings) -> list[dict[str, Any]]:
    return await read_topic(kafka, CRM_ENTITY_CHANGED)


async def raw_on_topic(kafka: KafkaSettings) -> list[dict[str, Any]]:
    return await read_topic(kafka, WEBHOOK_RECEIVED)


def person(
    role: str, email: str | None = None, phone: str | None = None, name: str | None = None
) -> dict[str, Any]:
    return {"email": email, "phone": phone, "name": name, "role": role}


def expected_activity(
    source: str,
    external_id: str,
    kind: str,
    direction: str,
    outcome: str,
    occurred_at: str,
    duration: int,
    participants: list[dict[str, Any]],
    revision: int,
    *,
    crm: Mapping[str, Any] | None = None,
    thread_id: str | None = None,
    ical_uid: str | None = None,
    subject: str | None = None,
    automated: bool = False,
    activity_id: uuid.UUID | None = None,
) -> dict[str, Any]:
    """The exact ``activity-ingested`` payload (JSON mode) ingest must publish."""
    return {
        "source": source,
        "external_id": external_id,
        "kind": kind,
        "direction": direction,
        "outcome": outcome,
        "occurred_at": occurred_at,
        "duration_seconds": duration,
        "participants": participants,
        "thread_id": thread_id,
        "ical_uid": ical_uid,
        "subject": subject,
        "crm": {"deal_id": None, "account_id": None, "contact_ids": [], "owner_rep_id": None, **(crm or {})},
        "revision": revision,
        "tenant_id": TENANT,
        "activity_id": str(activity_id or activity_id_for(TENANT, source, external_id)),
        "ingested_at": "2026-11-24T16:00:00Z",
        "automated": automated,
        "adapter_version": f"{source}/1",
    }
