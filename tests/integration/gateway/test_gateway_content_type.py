"""A JSON body sent as a form (``curl -d`` without the header) is told to send Content-Type: application/json."""

from __future__ import annotations

import httpx

from .gateway_support import Keys, bearer


async def test_a_settings_patch_sent_as_a_form_names_the_content_type(
    gateway: httpx.AsyncClient, keys: Keys
) -> None:
    sent = await gateway.patch(
        "/v1/settings",
        content=b'{"time_zone": "Europe/Paris"}',
        headers={**bearer(keys.admin), "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert sent.status_code == 422
    assert sent.json()["errors"] == [
        {
            "in": "header",
            "field": "content-type",
            "reason": "must be application/json, not application/x-www-form-urlencoded",
        }
    ]
    assert sent.json()["detail"] == (
        "header content-type: must be application/json, not application/x-www-form-urlencoded"
    )
    # Nothing was saved; the same body as JSON is.
    assert (await gateway.get("/v1/settings", headers=bearer(keys.admin))).json()["version"] == 0
    # A JSON body that is not an object still gets the field's own reason.
    listed = await gateway.patch("/v1/settings", json=[1, 2], headers=bearer(keys.admin))
    assert listed.json()["errors"] == [
        {"in": "body", "field": "(root)", "reason": "Input should be a valid dictionary"}
    ]
