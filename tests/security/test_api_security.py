"""Authentication, scopes, webhook signatures, secrets in logs, keys at rest, injection, rate limits.

Ingest and the gateway run in-process against the session's real broker and PostgreSQL.
Routes are read from each app's OpenAPI document, so new routes are covered without edits.
"""

from __future__ import annotations

import io
import time
import uuid
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.settings import DatabaseSettings, KafkaSettings
from libs.common.tenancy import WEBHOOK_SOURCES, key_id_of, revoke_api_key
from services.gateway.settings import GatewayOptions
from services.ingest.domain.signatures import standard_webhooks_signature
from services.ingest.domain.vendors.calendly import calendly_signature
from services.ingest.domain.vendors.hubspot import hubspot_signature
from services.ingest.domain.vendors.zoom import zoom_signature

from .stack import PEPPER, Services, bearer, operations, problem, start

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "webhooks"
#: Routes that are public by design.
PUBLIC = {"/healthz", "/readyz", "/metrics", "/", "/openapi.json", "/docs", "/redoc", "/docs/oauth2-redirect"}
#: Signing in and out of the dashboard is for readers too (tested in test_dashboard_sessions_*).
SIGN_IN = {"/v1/session"}


# --- scopes ----------------------------------------------------------------------------------


async def test_every_route_refuses_missing_unknown_and_wrong_scope_credentials(services: Services) -> None:
    checked = 0
    for name, client in (("ingest", services.ingest), ("gateway", services.gateway)):
        for method, path, _ in operations(services.apps[name]):
            if path in PUBLIC or path.startswith(("/v1/webhooks/", "/v1/push/")):
                continue
            body: dict[str, Any] | None = {} if method in {"POST", "PUT", "PATCH"} else None
            missing = await client.request(method, path, json=body)
            assert missing.status_code == 401, (name, method, path, missing.text)
            assert problem(missing)["status"] == 401
            unknown = await client.request(
                method, path, json=body, headers=bearer("spm_read_00000000_" + "x" * 32)
            )
            assert unknown.status_code == 401, (name, method, path, unknown.text)
            # Every route of one service needs one scope that the other service's key lacks.
            foreign = services.keys["read"] if name == "ingest" else services.keys["ingest"]
            wrong = await client.request(method, path, json=body, headers=bearer(foreign))
            assert wrong.status_code == 403, (name, method, path, wrong.text)
            if name == "gateway" and method != "GET" and path not in SIGN_IN:
                # Writes on the gateway are for admins: a read key is refused.
                read_only = await client.request(
                    method, path, json=body, headers=bearer(services.keys["read"])
                )
                assert read_only.status_code == 403, (method, path, read_only.text)
            checked += 1
    assert checked >= 10


async def test_revoked_key_is_refused(services: Services) -> None:
    # Revoked before its first use, so no replica can still hold it in its 30 s cache.
    key = services.keys["read"]
    async with services.engine.begin() as conn:
        assert await revoke_api_key(conn, key_id_of(key) or "")
    assert (await services.gateway.get("/v1/reps", headers=bearer(key))).status_code == 401
    assert (await services.gateway.get("/v1/reps", headers=bearer(services.keys["admin"]))).status_code == 200


async def test_dashboard_sessions_are_for_readers_and_end_with_their_key(services: Services) -> None:
    gateway = services.gateway
    refused = await gateway.post("/v1/session", headers=bearer(services.keys["ingest"]))
    assert refused.status_code == 403
    assert problem(refused)["detail"] == "this credential lacks the `read` scope"
    forged = await gateway.get("/v1/reps", headers={"Cookie": "spm_session=0123456789abcdef.forged"})
    assert forged.status_code == 401
    for garbage in ("", ".", "x" * 5000, "0123456789abcdef.", "a;b", "%00%ff", '"quoted"'):
        odd = await gateway.get("/v1/reps", headers={"Cookie": f"spm_session={garbage}"})
        assert odd.status_code == 401, garbage
    created = await gateway.post("/v1/session", headers=bearer(services.keys["read"]))
    assert created.status_code == 201
    cookie = {"Cookie": created.headers["set-cookie"].split(";")[0]}
    assert (await gateway.get("/v1/reps", headers=cookie)).status_code == 200
    # The cookie does not open ingest, and cannot change settings without the CSRF header.
    assert (
        await services.ingest.post("/v1/events", json={"activities": []}, headers=cookie)
    ).status_code == 401
    admin = await gateway.post("/v1/session", headers=bearer(services.keys["admin"]))
    admin_cookie = {"Cookie": admin.headers["set-cookie"].split(";")[0]}
    csrf = await gateway.put("/v1/insight-thresholds", json={}, headers=admin_cookie)
    assert csrf.status_code == 403
    assert (
        problem(csrf)["detail"] == "a request authenticated by the session cookie must send `x-spm-csrf: 1`"
    )
    saved = await gateway.put("/v1/insight-thresholds", json={}, headers={**admin_cookie, "X-SPM-CSRF": "1"})
    assert saved.status_code == 200
    assert saved.json()["created_by"] == key_id_of(services.keys["admin"])


async def test_every_answer_says_nosniff_even_to_hostile_requests(services: Services) -> None:
    answers = [
        await services.ingest.post(
            "/v1/events", content=b"\x00" * 10, headers=bearer(services.keys["ingest"])
        ),
        await services.ingest.post("/v1/webhooks/microsoft-graph/nobody?validationToken=%3Cscript%3E"),
        await services.ingest.get("/healthz"),
        await services.gateway.get("/v1/reps?cursor=%00"),
        await services.gateway.put(
            "/v1/insight-thresholds", content=b"{" * 70_000, headers=bearer(services.keys["admin"])
        ),
        await services.gateway.get("/"),
    ]
    assert [a.headers["x-content-type-options"] for a in answers] == ["nosniff"] * len(answers)
    echo = answers[1]
    assert (echo.status_code, echo.headers["content-type"], echo.text) == (
        200,
        "text/plain; charset=utf-8",
        "<script>",
    )
    assert answers[4].status_code == 413


# --- keys at rest and secrets in logs --------------------------------------------------------


async def test_api_keys_and_webhook_secrets_are_not_stored_in_plaintext(services: Services) -> None:
    async with services.engine.connect() as conn:
        keys = (await conn.execute(text("SELECT row_to_json(k)::text FROM api_keys k"))).scalars().all()
        secrets = (
            (await conn.execute(text("SELECT row_to_json(w)::text FROM webhook_secrets w"))).scalars().all()
        )
    assert len(keys) == len(services.keys)
    assert len(secrets) == len(services.webhook_secrets)
    dumped = "\n".join([*keys, *secrets])
    plain = [secret for secret in services.webhook_secrets.values() if secret]
    assert len(plain) >= 5
    for secret in plain:
        assert secret not in dumped
    for key in services.keys.values():
        assert key not in dumped
        # Nor the secret half of it.
        key_id = key_id_of(key)
        assert key_id is not None
        assert key_id in dumped  # the identifiable prefix is stored, so a key can be revoked
        secret_part = key.removeprefix(key_id)
        assert len(secret_part) >= 20
        assert secret_part not in dumped


async def test_auth_failures_and_webhook_verification_never_log_secrets(services: Services) -> None:
    secrets = [*services.keys.values(), *(s for s in services.webhook_secrets.values() if s), PEPPER]
    tampered = [k[:-4] + "abcd" for k in services.keys.values()]
    for key in [*services.keys.values(), *tampered]:
        await services.gateway.get("/v1/reps", headers=bearer(key))
        await services.ingest.post("/v1/events", json={"activities": []}, headers=bearer(key))
    for source in WEBHOOK_SOURCES:
        await services.ingest.post(
            f"/v1/webhooks/{source}/acme",
            content=b'{"x": 1}',
            headers={
                "content-type": "application/json",
                **garbage_signatures(services.webhook_secrets[source]),
            },
        )
    logged = services.log.getvalue()
    assert logged.count("\n") >= 1  # something was logged, and it is JSON
    for line in logged.splitlines():
        orjson.loads(line)
    for secret in [*secrets, *tampered]:
        assert secret not in logged


# --- webhooks --------------------------------------------------------------------------------


def garbage_signatures(hint: str = "nope") -> dict[str, str]:
    """Wrong values in every signature header the supported vendors use."""
    stamp = str(int(time.time()))
    return {
        "x-twilio-signature": "bm9wZQ==",
        "x-aircall-signature": "nope",
        "x-zm-signature": "v0=" + "0" * 64,
        "x-zm-request-timestamp": stamp,
        "calendly-webhook-signature": f"t={stamp},v1=" + "0" * 64,
        "x-hubspot-signature-v3": "bm9wZQ==",
        "x-hubspot-request-timestamp": stamp + "000",
        "webhook-id": "msg_1",
        "webhook-timestamp": stamp,
        "webhook-signature": "v1,bm9wZQ==",
        "x-goog-channel-token": hint[::-1],
        "verification-token": hint[::-1],
        "authorization": "Bearer " + hint[::-1],
    }


def fixture_body(source: str) -> bytes:
    if source == "twilio":
        # Twilio posts forms, not JSON.
        return b"CallSid=CA0123&CallStatus=completed&From=%2B14155550001&To=%2B12125550100"
    folder = FIXTURES / source
    files = sorted(folder.glob("*.json")) if folder.exists() else []
    return files[0].read_bytes() if files else b'{"event": "x"}'


@pytest.mark.parametrize("source", WEBHOOK_SOURCES)
async def test_webhook_without_or_with_wrong_signature_is_refused(services: Services, source: str) -> None:
    body = fixture_body(source)
    url = f"/v1/webhooks/{source}/acme"
    content_type = "application/x-www-form-urlencoded" if source == "twilio" else "application/json"
    missing = await services.ingest.post(url, content=body, headers={"content-type": content_type})
    assert missing.status_code == 401, missing.text
    assert problem(missing)["errors"][0]["field"]
    wrong = await services.ingest.post(
        url, content=body, headers={**garbage_signatures(), "content-type": content_type}
    )
    assert wrong.status_code == 401, wrong.text
    # An unknown tenant gets exactly the answer of a known tenant with a bad signature.
    for tenant in ("nobody", "x" * 200, "%00", "ACME"):
        headers = {**garbage_signatures(), "content-type": content_type}
        unknown = await services.ingest.post(f"/v1/webhooks/{source}/{tenant}", content=body, headers=headers)
        assert unknown.status_code == 401, (tenant, unknown.text)
        assert unknown.content == wrong.content, tenant
        assert unknown.headers["x-content-type-options"] == "nosniff"
    unsigned = await services.ingest.post(
        f"/v1/webhooks/{source}/nobody", content=body, headers={"content-type": content_type}
    )
    assert unsigned.content == missing.content


def sign(source: str, secret: str, body: bytes, at: int, message_id: str) -> tuple[dict[str, str], str]:
    """The headers a vendor sends for ``body`` signed at ``at``, and the timestamp field's name."""
    stamp = str(at)
    json_type = {"content-type": "application/json"}
    if source == "zoom":
        return {
            **json_type,
            "x-zm-request-timestamp": stamp,
            "x-zm-signature": zoom_signature(secret, stamp, body),
        }, "x-zm-request-timestamp"
    if source == "calendly":
        return {
            **json_type,
            "calendly-webhook-signature": f"t={stamp},v1={calendly_signature(secret, stamp, body)}",
        }, "calendly-webhook-signature"
    if source == "hubspot":
        millis = str(at * 1000)
        url = f"http://ingest/v1/webhooks/{source}/acme"
        return {
            **json_type,
            "x-hubspot-request-timestamp": millis,
            "x-hubspot-signature-v3": hubspot_signature(secret, "POST", url, body, millis),
        }, "x-hubspot-request-timestamp"
    # gmail and google-calendar arrive through a relay that signs with Standard Webhooks.
    return {
        **json_type,
        "webhook-id": message_id,
        "webhook-timestamp": stamp,
        "webhook-signature": standard_webhooks_signature(secret, message_id, stamp, body),
    }, "webhook-timestamp"


#: Sources whose signature covers a timestamp, and a fixture delivery that yields activities.
TIMESTAMPED = {
    "zoom": "meeting.ended.json",
    "calendly": "invitee.created.json",
    "hubspot": "calls.json",
    "gmail": "message.json",
    "google-calendar": "event.confirmed.json",
}


@pytest.mark.parametrize("source", sorted(TIMESTAMPED))
async def test_expired_tampered_and_replayed_signatures(services: Services, source: str) -> None:
    secret = services.webhook_secrets[source]
    body = (FIXTURES / source / TIMESTAMPED[source]).read_bytes()
    url = f"/v1/webhooks/{source}/acme"
    now = int(time.time())
    headers, time_field = sign(source, secret, body, now - 3600, "msg_old")
    expired = await services.ingest.post(url, content=body, headers=headers)
    assert expired.status_code == 401, expired.text
    assert problem(expired)["errors"][0]["field"] == time_field
    headers, _ = sign(source, secret, body, now, "msg_x")
    tampered = await services.ingest.post(url, content=body + b" ", headers=headers)
    assert tampered.status_code == 401, tampered.text
    headers, _ = sign(source, secret, body, now, f"msg_{uuid.uuid4().hex}")
    first = await services.ingest.post(url, content=body, headers=headers)
    assert first.status_code < 300, first.text
    replayed = await services.ingest.post(url, content=body, headers=headers)
    # A replay inside the window is an idempotent duplicate: no activity is published twice.
    assert replayed.status_code == first.status_code, replayed.text
    if source != "zoom":  # a lone meeting.ended completes no meeting: nothing to publish yet
        assert first.json()["activity_ids"], first.text
    assert replayed.json()["activity_ids"] == []
    assert replayed.json()["duplicates"] >= len(first.json()["activity_ids"])


# --- injection and rate limits ---------------------------------------------------------------


INJECTIONS = (
    "' OR '1'='1",
    "x'; DROP TABLE activities; --",
    'x" OR 1=1 --',
    "%' UNION SELECT key_hash FROM api_keys --",
    "\\x00",
)


async def test_filter_parameters_that_try_sql_injection_are_harmless(services: Services) -> None:
    headers = bearer(services.keys["read"])
    params = [
        p["name"] for p in services.apps["gateway"].openapi()["paths"]["/v1/activities"]["get"]["parameters"]
    ]
    filters = [p for p in params if p in {"rep_id", "team_id", "deal_id", "account_id", "kind", "status"}]
    assert len(filters) == 6
    for name in filters:
        for value in INJECTIONS:
            response = await services.gateway.get("/v1/activities", params={name: value}, headers=headers)
            assert response.status_code in (200, 422), (name, value, response.text)
            if response.status_code == 200:
                assert response.json()["items"] == []
    async with services.engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM activities"))).scalar_one() == 0
        assert (await conn.execute(text("SELECT count(*) FROM api_keys"))).scalar_one() == len(services.keys)


async def test_rate_limit_holds_per_key_and_says_when_to_retry(
    kafka_settings: KafkaSettings,
    database_settings: DatabaseSettings,
    db_engine: AsyncEngine,
    json_log: io.StringIO,
) -> None:
    async with AsyncExitStack() as stack:
        s = await start(
            kafka_settings,
            database_settings,
            db_engine,
            json_log,
            stack,
            GatewayOptions(rate_limit_per_minute=5),
        )
        statuses = [
            (await s.gateway.get("/v1/reps", headers=bearer(s.keys["read"]))).status_code for _ in range(8)
        ]
        assert statuses == [200] * 5 + [429] * 3
        limited = await s.gateway.get("/v1/reps", headers=bearer(s.keys["read"]))
        assert limited.status_code == 429
        assert int(limited.headers["retry-after"]) >= 1
        # Another key has its own bucket.
        assert (await s.gateway.get("/v1/reps", headers=bearer(s.keys["admin"]))).status_code == 200
