"""Erasure requests at the gateway: validation, scopes, tenant isolation, idempotence, audit."""

from __future__ import annotations

import uuid

import httpx

from .gateway_support import Keys, bearer


async def test_erasure_requests_are_validated_queued_once_and_audited(
    gateway: httpx.AsyncClient, keys: Keys
) -> None:
    url = "/v1/privacy/erasures"
    for body, field, reason in (
        ({}, "email", "give exactly one of email and phone"),
        (
            {"email": "bo@buyer.example", "phone": "+12125550100"},
            "email",
            "give exactly one of email and phone",
        ),
        ({"email": "bo-at-buyer"}, "email", "must be an email address"),
        ({"phone": "212 555 0100"}, "phone", "must be a phone number in E.164, e.g. +14155550100"),
    ):
        refused = await gateway.post(url, json=body, headers=bearer(keys.admin))
        assert refused.status_code == 422, body
        assert refused.json()["errors"] == [{"in": "body", "field": field, "reason": reason}]
    assert (
        await gateway.post(url, json={"email": "bo@buyer.example"}, headers=bearer(keys.read))
    ).status_code == 403

    created = await gateway.post(url, json={"email": "Bo@Buyer.example"}, headers=bearer(keys.admin))
    assert created.status_code == 202, created.text
    job = created.json()
    assert job["state"] == "queued"
    assert job["identity_kind"] == "email"
    assert (job["done"], job["total"], job["progress"], job["counts"]) == (0, None, None, {})
    assert "bo" not in created.text.lower()
    same = await gateway.post(url, json={"email": "bo@buyer.example"}, headers=bearer(keys.admin))
    assert same.status_code == 200
    assert same.json()["erasure_id"] == job["erasure_id"]

    read = await gateway.get(f"{url}/{job['erasure_id']}", headers=bearer(keys.admin))
    assert read.json() == job
    assert (
        await gateway.get(f"{url}/{job['erasure_id']}", headers=bearer(keys.other_admin))
    ).status_code == 404
    assert (await gateway.get(f"{url}/{uuid.uuid4()}", headers=bearer(keys.admin))).status_code == 404

    audited = (
        await gateway.get("/v1/audit", params={"action": "erasure.requested"}, headers=bearer(keys.admin))
    ).json()
    assert [(a["target"], a["after"]["created"]) for a in audited["items"]] == [
        (f"erasure:{job['erasure_id']}", False),
        (f"erasure:{job['erasure_id']}", True),
    ]
    assert "bo@" not in str(audited).lower()
