"""The webhook routes: served by plain Starlette routes, documented and answered as FastAPI routes."""

from __future__ import annotations

import httpx
import orjson

from libs.common.telemetry import HTTP_REQUESTS
from services.ingest.app import create_app


def _requests(route: str, status: str) -> float:
    value = HTTP_REQUESTS.labels("ingest", "POST", route, status)._value.get()
    return float(value)


async def test_webhook_answers_are_counted_by_route_template_and_say_nosniff() -> None:
    app = create_app()  # no lifespan: an unknown source is refused before any collaborator is used
    template = "/v1/webhooks/{source}/{tenant}"
    with_token = "/v1/webhooks/{source}/{tenant}/{token}"
    before = _requests(template, "404"), _requests(with_token, "404")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ingest") as client:
        plain = await client.post("/v1/webhooks/nosuch/acme", content=b"{}")
        tokened = await client.post("/v1/webhooks/twilio/acme/s3cret", content=b"{}")
        wrong_method = await client.get("/v1/webhooks/twilio/acme")
    expected = {
        "type": "about:blank",
        "title": "Not found",
        "status": 404,
        "detail": "no webhook endpoint at this URL",
    }
    for answer in (plain, tokened):
        assert answer.status_code == 404
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.headers["x-content-type-options"] == "nosniff"
        # Byte-identical whatever the URL: no ``instance``.
        assert answer.content == orjson.dumps(expected)
    assert (_requests(template, "404"), _requests(with_token, "404")) == (before[0] + 1, before[1] + 1)
    assert wrong_method.status_code == 405
    assert wrong_method.headers["allow"] == "POST"
    assert wrong_method.headers["x-content-type-options"] == "nosniff"


def test_webhook_routes_stay_in_the_openapi_document() -> None:
    paths = create_app().openapi()["paths"]
    plain = paths["/v1/webhooks/{source}/{tenant}"]["post"]
    tokened = paths["/v1/webhooks/{source}/{tenant}/{token}"]["post"]
    assert [p["name"] for p in plain["parameters"]] == ["source", "tenant"]
    assert {"source", "tenant"} <= {p["name"] for p in tokened["parameters"]}
    assert sorted(plain["responses"]) == ["200", "401", "404", "422", "503"]
    assert tokened["summary"] == "Receive a vendor webhook authenticated by a secret in the URL (Salesforce)"
