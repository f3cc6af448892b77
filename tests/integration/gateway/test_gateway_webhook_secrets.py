"""Webhook secrets through the admin API: register a vendor-issued secret, list masked, rotate with grace."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.tenancy import webhook_secrets
from libs.common.testing.stack import TEST_SECRET_KEY

from .gateway_support import Keys, bearer

VENDOR_TOKEN = "twilio-auth-token-0123456789abcdef"


async def test_a_vendor_issued_secret_is_registered_listed_masked_and_the_old_one_kept_for_the_grace(
    gateway: httpx.AsyncClient, keys: Keys, db_engine: AsyncEngine
) -> None:
    registered = await gateway.post(
        "/v1/webhook-secrets/twilio",
        json={"secret": VENDOR_TOKEN, "grace_hours": 2},
        headers=bearer(keys.admin),
    )
    assert registered.status_code == 201, registered.text
    body = registered.json()
    assert (body["source"], body["masked"], body["secret"], body["expiring"], body["valid"]) == (
        "twilio",
        "…cdef",
        None,
        1,
        True,
    )
    listed = (await gateway.get("/v1/webhook-secrets?source=twilio", headers=bearer(keys.admin))).json()[
        "items"
    ]
    assert [(s["masked"], s["valid"], s["expires_at"] is None) for s in listed] == [
        ("…cdef", True, True),
        (listed[1]["masked"], True, False),
    ]
    expires = datetime.fromisoformat(listed[1]["expires_at"])
    assert timedelta(hours=1, minutes=59) < expires - datetime.now(UTC) <= timedelta(hours=2)
    assert VENDOR_TOKEN not in str(listed)
    # What ingest verifies deliveries with: the vendor's secret first, the old one during the grace.
    async with db_engine.connect() as conn:
        valid = await webhook_secrets(conn, "acme", "twilio", TEST_SECRET_KEY)
    assert valid[0] == VENDOR_TOKEN
    assert len(valid) == 2
    everything = (await gateway.get("/v1/webhook-secrets", headers=bearer(keys.admin))).json()["items"]
    assert len(everything) == 11  # ten sources at creation, one more for twilio
    # Audited, the secret masked.
    [entry] = (await gateway.get("/v1/audit", headers=bearer(keys.admin))).json()["items"]
    assert (entry["action"], entry["target"]) == ("webhook_secret.set", "webhook_secret:twilio")
    assert entry["after"] == {"source": "twilio", "secret": "***", "older_expiring": 1, "grace_hours": 2.0}


async def test_a_generated_secret_is_shown_once_and_bad_input_is_named(
    gateway: httpx.AsyncClient, keys: Keys
) -> None:
    generated = await gateway.post(
        "/v1/webhook-secrets/zoom", json={"grace_hours": 0}, headers=bearer(keys.admin)
    )
    assert generated.status_code == 201
    secret = generated.json()["secret"]
    assert len(secret) >= 32
    assert generated.json()["masked"] == "…" + secret[-4:]
    listed = (await gateway.get("/v1/webhook-secrets?source=zoom", headers=bearer(keys.admin))).json()[
        "items"
    ]
    # No grace: the older secret stopped at once.
    assert [s["valid"] for s in listed] == [True, False]

    cases = [
        ("/v1/webhook-secrets/telegraph", {"secret": VENDOR_TOKEN}, "path", "source"),
        ("/v1/webhook-secrets/twilio", {"secret": " padded "}, "body", "secret"),
        ("/v1/webhook-secrets/twilio", {"secret": ""}, "body", "secret"),
        ("/v1/webhook-secrets/twilio", {"secret": VENDOR_TOKEN, "grace_hours": -1}, "body", "grace_hours"),
    ]
    for url, body, location, field in cases:
        refused = await gateway.post(url, json=body, headers=bearer(keys.admin))
        assert refused.status_code == 422, (url, body)
        [error] = refused.json()["errors"]
        assert (error["in"], error["field"]) == (location, field)
    assert (await gateway.get("/v1/webhook-secrets", headers=bearer(keys.read))).status_code == 403
    assert (
        await gateway.post("/v1/webhook-secrets/twilio", json={}, headers=bearer(keys.read))
    ).status_code == 403


async def test_a_rotation_without_grace_also_ends_a_secret_still_in_an_earlier_grace(
    gateway: httpx.AsyncClient, keys: Keys, db_engine: AsyncEngine
) -> None:
    async def rotate(secret: str, grace_hours: int) -> int:
        answer = await gateway.post(
            "/v1/webhook-secrets/aircall",
            json={"secret": secret, "grace_hours": grace_hours},
            headers=bearer(keys.admin),
        )
        assert answer.status_code == 201, answer.text
        expiring: int = answer.json()["expiring"]
        return expiring

    async with db_engine.connect() as conn:
        [original] = await webhook_secrets(conn, "acme", "aircall", TEST_SECRET_KEY)
    # A routine rotation: the original stays valid for 24 h.
    assert await rotate("aircall-token-second-000000", 24) == 1
    # Then a leak: rotate at once. Neither older secret may stay valid.
    assert await rotate("aircall-token-third-0000000", 0) == 2
    async with db_engine.connect() as conn:
        assert await webhook_secrets(conn, "acme", "aircall", TEST_SECRET_KEY) == [
            "aircall-token-third-0000000"
        ]
    assert original != "aircall-token-third-0000000"
    # A later rotation with a long grace never brings an expired secret back.
    assert await rotate("aircall-token-fourth-000000", 48) == 1
    async with db_engine.connect() as conn:
        assert await webhook_secrets(conn, "acme", "aircall", TEST_SECRET_KEY) == [
            "aircall-token-fourth-000000",
            "aircall-token-third-0000000",
        ]
    listed = (await gateway.get("/v1/webhook-secrets?source=aircall", headers=bearer(keys.admin))).json()[
        "items"
    ]
    assert [s["valid"] for s in listed] == [True, True, False, False]
