"""A vendor's time more than a day ahead of its receipt is refused with a 422 naming the payload
field (``normalize.not_ahead``, the canonical API's rule): a revision dated 2099 would freeze its
object (every later real revision looks older), a call dated 2099 would be counted. A calendar
meeting's start may be months ahead: only its revision clock is bounded."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from services.ingest.domain.webhooks import ADAPTERS, WebhookRejected

from .ingest_webhook_helpers import CONFIG, RECEIVED_AT, dumps, fixture, fixture_json, make_request

AHEAD = "2099-01-01T00:00:00.000Z"
REASON = f"more than 86400 s in the future (received {RECEIVED_AT.isoformat()})"
IN_25_HOURS = (RECEIVED_AT + timedelta(hours=25)).isoformat()
IN_23_HOURS = (RECEIVED_AT + timedelta(hours=23)).isoformat()
IN_A_MONTH = (RECEIVED_AT + timedelta(days=30)).isoformat()


def _refused(
    source: str, body: Any, url: str = "https://ingest.example.com/v1/webhooks/x/acme"
) -> tuple[int, str, str]:
    with pytest.raises(WebhookRejected) as refused:
        ADAPTERS[source].parse(make_request(dumps(body), url=url), CONFIG)
    return refused.value.status_code, refused.value.field, refused.value.reason


def _hubspot(name: str, **properties: str) -> list[dict[str, Any]]:
    body: list[dict[str, Any]] = fixture_json("hubspot", name)
    body[0]["properties"].update(properties)
    return body


@pytest.mark.parametrize(
    ("name", "properties", "field"),
    [
        ("calls.json", {"hs_lastmodifieddate": AHEAD}, "[0].properties.hs_lastmodifieddate"),
        ("calls.json", {"hs_timestamp": IN_25_HOURS}, "[0].properties.hs_timestamp"),
        ("emails.json", {"hs_timestamp": AHEAD}, "[0].properties.hs_timestamp"),
        ("meetings.json", {"hs_lastmodifieddate": AHEAD}, "[0].properties.hs_lastmodifieddate"),
    ],
)
def test_hubspot_times_ahead_are_refused_naming_the_property(
    name: str, properties: dict[str, str], field: str
) -> None:
    assert _refused("hubspot", _hubspot(name, **properties)) == (422, field, REASON)


def test_hubspot_times_within_a_day_and_meetings_starting_later_are_accepted() -> None:
    parse = ADAPTERS["hubspot"].parse
    call, *_ = parse(
        make_request(dumps(_hubspot("calls.json", hs_lastmodifieddate=IN_23_HOURS))), CONFIG
    ).activities
    assert call.revision == int((RECEIVED_AT + timedelta(hours=23)).timestamp() * 1000)
    meeting_body = _hubspot(
        "meetings.json",
        hs_timestamp=IN_A_MONTH,
        hs_meeting_start_time=IN_A_MONTH,
        hs_meeting_end_time=IN_A_MONTH,
    )
    meeting, *_ = parse(make_request(dumps(meeting_body)), CONFIG).activities
    assert meeting.occurred_at == RECEIVED_AT + timedelta(days=30)


@pytest.mark.parametrize(
    ("name", "written", "ahead"),
    [
        (
            "Task.xml",
            "<sf:LastModifiedDate>2026-11-24T10:15:02.000Z",
            "<sf:LastModifiedDate>2099-01-01T00:00:00.000Z",
        ),
        (
            "Task.xml",
            "<sf:CompletedDateTime>2026-11-24T10:15:00.000Z",
            "<sf:CompletedDateTime>2099-01-01T00:00:00.000Z",
        ),
        (
            "Event.xml",
            "<sf:LastModifiedDate>2026-11-24T08:00:00.000Z",
            "<sf:LastModifiedDate>2099-01-01T00:00:00.000Z",
        ),
        (
            "EmailMessage.xml",
            "<sf:MessageDate>2026-11-24T10:58:41.000Z",
            "<sf:MessageDate>2099-01-01T00:00:00.000Z",
        ),
        (
            "EmailMessage.xml",
            "<sf:LastModifiedDate>2026-11-24T11:00:04.000Z",
            "<sf:LastModifiedDate>2099-01-01T00:00:00.000Z",
        ),
    ],
)
def test_salesforce_times_ahead_are_refused_naming_the_field(name: str, written: str, ahead: str) -> None:
    body = fixture("salesforce", name)
    assert written.encode() in body
    with pytest.raises(WebhookRejected) as refused:
        ADAPTERS["salesforce"].parse(make_request(body.replace(written.encode(), ahead.encode(), 1)), CONFIG)
    field = written.split(">")[0].removeprefix("<sf:")
    assert (refused.value.status_code, refused.value.field, refused.value.reason) == (
        422,
        f"Notification[0].sObject.{field}",
        REASON,
    )


def test_a_salesforce_event_starting_days_ahead_is_accepted() -> None:
    body = fixture("salesforce", "Event.xml")
    (meeting,) = ADAPTERS["salesforce"].parse(make_request(body), CONFIG).activities
    assert meeting.occurred_at == RECEIVED_AT + timedelta(days=2, hours=17)
