"""Outbound alert webhooks are registered, listed and removed by admins; the secret is shown once."""

from __future__ import annotations

import httpx

from .gateway_support import Keys, bearer


async def test_alert_webhooks_are_registered_listed_and_removed(
    gateway: httpx.AsyncClient, keys: Keys
) -> None:
    body = {"url": "https://hooks.example.com/spm", "format": "slack"}
    assert (await gateway.post("/v1/alert-webhooks", json=body, headers=bearer(keys.read))).status_code == 403

    created = await gateway.post("/v1/alert-webhooks", json=body, headers=bearer(keys.admin))
    assert created.status_code == 201, created.text
    saved = created.json()
    assert (saved["url"], saved["format"]) == ("https://hooks.example.com/spm", "slack")
    assert saved["secret"].startswith("whsec_")
    assert len(saved["secret"]) == len("whsec_") + 32

    listed = (await gateway.get("/v1/alert-webhooks", headers=bearer(keys.admin))).json()["items"]
    assert [(w["webhook_id"], w["format"]) for w in listed] == [(saved["webhook_id"], "slack")]
    assert "secret" not in listed[0]
    assert (await gateway.get("/v1/alert-webhooks", headers=bearer(keys.other_admin))).json() == {"items": []}

    path = f"/v1/alert-webhooks/{saved['webhook_id']}"
    assert (await gateway.delete(path, headers=bearer(keys.other_admin))).status_code == 404
    assert (await gateway.delete(path, headers=bearer(keys.admin))).status_code == 204
    assert (await gateway.delete(path, headers=bearer(keys.admin))).status_code == 404


async def test_a_bad_webhook_is_refused_naming_the_field(gateway: httpx.AsyncClient, keys: Keys) -> None:
    for body, field in (
        ({"url": "ftp://hooks.example.com/x"}, "url"),
        ({"url": "not a url"}, "url"),
        ({"url": "https://hooks.example.com/x", "format": "teams"}, "format"),
    ):
        response = await gateway.post("/v1/alert-webhooks", json=body, headers=bearer(keys.admin))
        assert response.status_code == 422, body
        assert response.json()["errors"][0]["field"] == field
