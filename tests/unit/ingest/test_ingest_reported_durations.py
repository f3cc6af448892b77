"""A call length a vendor reports beyond 24 h is a corrupt record: 422 naming the field, never clamped.

Clamping used to turn it into a day of talk time on the rep's figures without anyone seeing why.
24 h itself is still a call (Twilio's longest time limit); a length computed from a start and an
end (a calendar event over several days) is still capped, as the contract's maximum.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from services.ingest.domain.normalize import MAX_DURATION_SECONDS, reported_duration
from services.ingest.domain.webhooks import ADAPTERS, WebhookRejected, WebhookRequest

from .ingest_webhook_helpers import CONFIG, dumps, fixture, fixture_json, make_request
from .test_ingest_salesforce import delivered

TWILIO_URL = "https://ingest.example.com/v1/webhooks/twilio/acme?tenant_hint=eu"
HUBSPOT_URL = "https://ingest.example.com/v1/webhooks/hubspot/acme"


def _twilio(seconds: int) -> WebhookRequest:
    body = fixture("twilio", "completed.txt").replace(b"CallDuration=312", f"CallDuration={seconds}".encode())
    return make_request(body, url=TWILIO_URL)


def _aircall(seconds: int) -> WebhookRequest:
    event = fixture_json("aircall", "call.ended.json")
    event["data"]["duration"] = seconds
    return make_request(dumps(event))


def _hubspot(seconds: int) -> WebhookRequest:
    batch = fixture_json("hubspot", "calls.json")
    batch[0]["properties"]["hs_call_duration"] = str(seconds * 1000)
    return make_request(dumps(batch), url=HUBSPOT_URL)


def _salesforce(seconds: int) -> WebhookRequest:
    body = fixture("salesforce", "Task.xml").replace(
        b"<sf:CallDurationInSeconds>41<", f"<sf:CallDurationInSeconds>{seconds}<".encode()
    )
    return delivered(body)


VENDORS: dict[str, tuple[Callable[[int], WebhookRequest], str]] = {
    "twilio": (_twilio, "CallDuration"),
    "aircall": (_aircall, "data.duration"),
    "hubspot": (_hubspot, "[0].properties.hs_call_duration"),
    "salesforce": (_salesforce, "Notification[0].sObject.CallDurationInSeconds"),
}


@pytest.mark.parametrize("source", sorted(VENDORS))
def test_a_call_longer_than_a_day_is_refused_naming_the_field(source: str) -> None:
    build, field = VENDORS[source]
    with pytest.raises(WebhookRejected) as caught:
        ADAPTERS[source].parse(build(MAX_DURATION_SECONDS + 1), CONFIG)
    assert (caught.value.status_code, caught.value.field, caught.value.reason) == (
        422,
        field,
        "longer than 86400 seconds (24 h): not a call's length",
    )


@pytest.mark.parametrize("source", sorted(VENDORS))
def test_a_day_long_call_is_a_call(source: str) -> None:
    build, _ = VENDORS[source]
    calls = [
        a for a in ADAPTERS[source].parse(build(MAX_DURATION_SECONDS), CONFIG).activities if a.kind == "call"
    ]
    assert calls[0].duration_seconds == MAX_DURATION_SECONDS


def test_a_negative_length_reads_as_not_connected() -> None:
    assert (reported_duration(-5, "d"), reported_duration(0, "d"), reported_duration(61, "d")) == (0, 0, 61)
