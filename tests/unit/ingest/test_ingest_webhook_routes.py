"""The webhook routes: served by plain Starlette routes, documented and answered as FastAPI routes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import httpx
import orjson

from libs.common.contracts.activities import ActivityIn
from libs.common.telemetry import HTTP_REQUESTS
from services.ingest.app import WebhookAccepted, create_app, webhook_accepted
from services.ingest.domain.ignored import NOT_DONE, Ignored
from services.ingest.domain.webhooks import AdapterResult
from services.ingest.handlers import PreparedActivities, ingested_timestamp, to_ingested


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


def test_the_accepted_answer_is_the_documented_models_json_byte_for_byte() -> None:
    when = datetime(2026, 11, 24, 15, 10, 8, tzinfo=UTC)
    activity = ActivityIn.model_validate(
        {
            "source": "twilio",
            "external_id": "CA1",
            "kind": "call",
            "direction": "outbound",
            "outcome": "connected",
            "occurred_at": "2026-11-24T15:10:08Z",
            "participants": [{"phone": "+14155552671", "role": "callee"}],
        }
    )
    ids = [uuid.UUID(int=1), uuid.UUID(int=2)]
    events = [to_ingested(activity, "acme", ingested_timestamp(when), "twilio/1", activity_id=i) for i in ids]
    prepared = PreparedActivities(events=events, new=1, duplicates=2, automated=1)
    prepared.exclusions["excluded_domain"] = 3
    result = AdapterResult(activities=(activity,), ignored=(Ignored("call.ringing: not final", NOT_DONE),))

    expected = WebhookAccepted(
        accepted=3,
        duplicates=2,
        excluded=3,
        automated=1,
        activity_ids=[str(i) for i in ids],
        entities=0,
        ignored=["call.ringing: not final"],
    )
    assert orjson.dumps(webhook_accepted(prepared, result)) == orjson.dumps(expected.model_dump())
    assert orjson.dumps(webhook_accepted(PreparedActivities(), AdapterResult())) == orjson.dumps(
        WebhookAccepted(accepted=0, activity_ids=[], ignored=[]).model_dump()
    )
