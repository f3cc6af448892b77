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


async def test_a_body_that_is_not_json_names_the_body_and_why(gateway: httpx.AsyncClient, keys: Keys) -> None:
    """Cut short, not UTF-8, or nested past what the parser reads: each a 4xx whose error names
    the body (``(root)``) and the reason, not a character offset as the field (``"12"``) or a
    bare title."""
    answers = []
    for body in (b'{"privacy": ', b'{"time_zone": "\xff"}', b"[" * 5000 + b"]" * 5000):
        sent = await gateway.patch(
            "/v1/settings", content=body, headers={**bearer(keys.admin), "Content-Type": "application/json"}
        )
        answers.append((sent.status_code, sent.json()["errors"]))
    assert answers == [
        (
            422,
            [{"in": "body", "field": "(root)", "reason": "not valid JSON: Expecting value at character 12"}],
        ),
        (400, [{"in": "body", "field": "(root)", "reason": "not valid UTF-8"}]),
        (400, [{"in": "body", "field": "(root)", "reason": "not valid JSON: nested too deep"}]),
    ]
