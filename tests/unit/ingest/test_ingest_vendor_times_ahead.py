"""A vendor's time more than a day ahead of its receipt is refused naming the payload field
(``normalize.not_ahead``, the canonical API's rule): a revision dated 2099 would freeze its
object (every later real revision looks older), a call dated 2099 would be counted. A calendar
meeting's start may be months ahead: only its revision clock is bounded.

A delivery of one object (Zoom, RingCentral, Twilio, Aircall, Calendly) is a 422; in a batch
(HubSpot, Salesforce Outbound Messages, Graph, Google Calendar and Gmail pages) only that item is
left out, listed in ``ignored`` with the field and reason: a retry of the batch would fail the
same way forever, losing the good items with it. A received mail's sender-set date is bounded by
the server's (Graph ``receivedDateTime``, Salesforce ``CreatedDate``)."""

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


def _read(source: str, body: bytes) -> tuple[int, tuple[str, ...]]:
    result = ADAPTERS[source].parse(make_request(body), CONFIG)
    return len(result.activities) + len(result.entities) + len(result.deletions), result.ignored


def _ignored_alone(source: str, written: bytes, body: bytes, field: str) -> None:
    """``body`` (``written`` with one item's time ahead) is accepted: that item alone is left out,
    listed in ``ignored`` naming ``field``; the others are read as before."""
    read, ignored = _read(source, written)
    read_ahead, ignored_ahead = _read(source, body)
    assert read_ahead == read - 1
    (added,) = set(ignored_ahead) - set(ignored)
    assert added.endswith(f": {field} {REASON}"), added


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
def test_hubspot_engagements_ahead_are_ignored_naming_the_property(
    name: str, properties: dict[str, str], field: str
) -> None:
    body = _hubspot(name, **properties)[:1]
    result = ADAPTERS["hubspot"].parse(make_request(dumps(body)), CONFIG)
    assert result.activities == ()
    assert result.ignored == (f"[0] {body[0]['objectType']}/{body[0]['id']}: {field} {REASON}",)


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
            "<sf:LastModifiedDate>2026-11-24T11:00:04.000Z",
            "<sf:LastModifiedDate>2099-01-01T00:00:00.000Z",
        ),
    ],
)
def test_salesforce_times_ahead_are_ignored_naming_the_field(name: str, written: str, ahead: str) -> None:
    body = fixture("salesforce", name)
    assert written.encode() in body
    field = written.split(">")[0].removeprefix("<sf:")
    _ignored_alone(
        "salesforce",
        body,
        body.replace(written.encode(), ahead.encode(), 1),
        f"Notification[0].sObject.{field}",
    )


def test_a_salesforce_event_starting_days_ahead_is_accepted() -> None:
    body = fixture("salesforce", "Event.xml")
    (meeting,) = ADAPTERS["salesforce"].parse(make_request(body), CONFIG).activities
    assert meeting.occurred_at == RECEIVED_AT + timedelta(days=2, hours=17)


# (source, fixture, as written, dated 2099, the field named): each vendor's revision clock or its
# call's or mail's time.
WRITTEN_AHEAD = [
    (
        "microsoft-graph",
        "message.json",
        '"lastModifiedDateTime": "2026-11-24T10:00:03Z"',
        '"lastModifiedDateTime": "2099-01-01T00:00:00Z"',
        "lastModifiedDateTime",
    ),
    (
        "microsoft-graph",
        "message.json",
        '"receivedDateTime": "2026-11-24T10:00:01Z",\n  "sentDateTime": "2026-11-24T10:00:00Z"',
        '"receivedDateTime": "2099-01-01T00:00:00Z",\n  "sentDateTime": "2099-01-01T00:00:00Z"',
        "sentDateTime",
    ),
    (
        "microsoft-graph",
        "event.json",
        '"lastModifiedDateTime": "2026-11-23T09:30:00.1234567Z"',
        '"lastModifiedDateTime": "2099-01-01T00:00:00Z"',
        "lastModifiedDateTime",
    ),
    (
        "google-calendar",
        "event.confirmed.json",
        '"updated": "2026-11-20T12:34:56.789Z"',
        '"updated": "2099-01-01T00:00:00Z"',
        "updated",
    ),
    (
        "gmail",
        "message.json",
        '"internalDate": "1795518300000"',
        '"internalDate": "4070908800000"',
        "internalDate",
    ),
    ("aircall", "call.ended.json", '"timestamp": 1795532745', '"timestamp": 4070908800', "timestamp"),
    ("aircall", "call.ended.json", '"started_at": 1795532400', '"started_at": 4070908800', "data.started_at"),
    (
        "calendly",
        "invitee.created.json",
        '"updated_at": "2026-11-24T09:15:02.000000Z"',
        '"updated_at": "2099-01-01T00:00:00Z"',
        "payload.updated_at",
    ),
    (
        "ringcentral",
        "session.disconnected.json",
        '"eventTime": "2026-11-24T15:05:12.000Z"',
        '"eventTime": "2099-01-01T00:00:00.000Z"',
        "body.eventTime",
    ),
    (
        "twilio",
        "completed.txt",
        "Timestamp=Tue%2C+24+Nov+2026+15%3A15%3A20+%2B0000",
        "Timestamp=Thu%2C+01+Jan+2099+00%3A00%3A00+%2B0000",
        "Timestamp",
    ),
    ("zoom", "meeting.ended.json", '"event_ts": 1795531500000', '"event_ts": 4070908800000', "event_ts"),
    # A CRM record's revision clock.
    (
        "hubspot",
        "crm-objects.json",
        '"updatedAt": "2026-11-02T09:00:00.000Z"',
        '"updatedAt": "2099-01-01T00:00:00.000Z"',
        "[0].updatedAt",
    ),
    (
        "salesforce",
        "Contact.xml",
        "<sf:LastModifiedDate>2026-11-01T09:00:00.000Z",
        "<sf:LastModifiedDate>2099-01-01T00:00:00.000Z",
        "Notification[0].sObject.LastModifiedDate",
    ),
]


#: Vendors delivering many items at once: one item ahead is ignored, not the batch refused.
BATCHES = frozenset({"microsoft-graph", "google-calendar", "gmail", "hubspot", "salesforce"})


@pytest.mark.parametrize(
    ("source", "name", "written", "ahead", "field"), WRITTEN_AHEAD, ids=lambda v: str(v)[:40]
)
def test_each_vendors_times_ahead_are_refused_naming_the_field(
    source: str, name: str, written: str, ahead: str, field: str
) -> None:
    body = fixture(source, name)
    # As written (in the past), the delivery is read.
    ADAPTERS[source].parse(make_request(body), CONFIG)
    assert written.encode() in body
    if source in BATCHES:
        _ignored_alone(source, body, body.replace(written.encode(), ahead.encode(), 1), field)
        return
    with pytest.raises(WebhookRejected) as refused:
        ADAPTERS[source].parse(make_request(body.replace(written.encode(), ahead.encode(), 1)), CONFIG)
    assert (refused.value.status_code, refused.value.field, refused.value.reason) == (422, field, REASON)


def test_a_calendar_meeting_starting_months_ahead_is_accepted() -> None:
    body = fixture("google-calendar", "event.confirmed.json")
    (meeting,) = ADAPTERS["google-calendar"].parse(make_request(body), CONFIG).activities
    later = body.replace(meeting.occurred_at.strftime("%Y-%m-%d").encode(), b"2027-03-01")
    (moved,) = ADAPTERS["google-calendar"].parse(make_request(later), CONFIG).activities
    assert moved.occurred_at.date().isoformat() == "2027-03-01"


def test_a_hubspot_deal_deleted_in_2099_is_ignored_naming_occurred_at() -> None:
    body = fixture_json("hubspot", "object.deletion.json")
    assert body[5]["objectTypeId"] == "0-3"  # a deal: retired as a tombstone dated occurredAt
    written = dumps(body)
    body[5]["occurredAt"] = 4_070_908_800_000
    _ignored_alone("hubspot", written, dumps(body), "[5].occurredAt")


def test_a_graph_page_with_a_sender_dated_next_year_keeps_both_messages() -> None:
    message = fixture_json("microsoft-graph", "message.json")
    future = {**message, "id": "X2", "internetMessageId": "<x2@sender.example>"}
    future["sentDateTime"] = "2027-11-24T10:00:00Z"
    page = {"value": [message, future]}
    result = ADAPTERS["microsoft-graph"].parse(make_request(dumps(page)), CONFIG)
    # The sender's Date header is bounded by Exchange's receivedDateTime: both are read.
    assert [a.occurred_at.isoformat() for a in result.activities] == [
        "2026-11-24T10:00:00+00:00",
        "2026-11-24T10:00:01+00:00",
    ]
    # A message whose server time is itself ahead is left out, the good one kept.
    future["receivedDateTime"] = "2027-11-24T10:00:00Z"
    result = ADAPTERS["microsoft-graph"].parse(make_request(dumps(page)), CONFIG)
    assert len(result.activities) == 1
    assert result.ignored == (f"value[1] X2: value[1].sentDateTime {REASON}",)


def test_an_incoming_salesforce_mail_dated_ahead_by_its_sender_is_read_as_created() -> None:
    body = fixture("salesforce", "EmailMessage.xml")
    written = b"<sf:MessageDate>2026-11-24T10:58:41.000Z"
    assert written in body
    later = body.replace(written, b"<sf:MessageDate>2027-11-24T10:00:00.000Z", 1)
    incoming, *_ = ADAPTERS["salesforce"].parse(make_request(later), CONFIG).activities
    assert incoming.occurred_at.isoformat() == "2026-11-24T11:00:03+00:00"


def test_hubspot_engagements_not_yet_done_are_ignored_whatever_their_time() -> None:
    calls = fixture_json("hubspot", "calls.json")
    queued = {**calls[0], "id": "q1", "properties": {**calls[0]["properties"]}}
    queued["properties"]["hs_call_status"] = "QUEUED"
    for ahead in (timedelta(hours=1), timedelta(days=2)):
        queued["properties"]["hs_timestamp"] = (RECEIVED_AT + ahead).isoformat()
        result = ADAPTERS["hubspot"].parse(make_request(dumps([calls[0], queued])), CONFIG)
        assert len(result.activities) == 1
        assert result.ignored == ("[1] calls/q1: hs_call_status=QUEUED: the call is still under way",)
    emails = fixture_json("hubspot", "emails.json")
    for status in ("SCHEDULED", "SENDING", "FAILED", "BOUNCED"):
        other = {**emails[0], "id": "e2", "properties": {**emails[0]["properties"]}}
        other["properties"].update(
            hs_email_status=status, hs_timestamp=(RECEIVED_AT + timedelta(days=3)).isoformat()
        )
        result = ADAPTERS["hubspot"].parse(make_request(dumps([emails[0], other])), CONFIG)
        assert len(result.activities) == 1
        assert result.ignored == (f"[1] emails/e2: hs_email_status={status}: the email was not sent",)
