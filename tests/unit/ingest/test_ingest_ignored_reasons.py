"""The bounded reason ``spm_ingest_ignored_total`` counts an ``ignored`` line under: the code each
adapter and the pipeline write the line with (``domain.ignored.Ignored``), never read back from
its words. Every adapter's real lines, from their own payloads, carry the code they mean."""

from __future__ import annotations

from typing import Any

import pytest

from services.ingest.domain import ignored
from services.ingest.domain.ignored import Ignored, ignored_counts, ignored_line
from services.ingest.domain.normalize import HOLD_TIME
from services.ingest.domain.webhooks import ADAPTERS

from .ingest_webhook_helpers import CONFIG, dumps, fixture, fixture_json, make_request
from .test_ingest_holds_other_sources import _hubspot_meeting
from .test_ingest_vendor_times_ahead import BATCHES, WRITTEN_AHEAD


def _lines(source: str, body: bytes, config: Any = CONFIG) -> dict[str, str]:
    """Each ``ignored`` line of ``source``'s parse of ``body`` -> its code."""
    lines = ADAPTERS[source].parse(make_request(body), config).ignored
    assert all(isinstance(line, Ignored) for line in lines)
    return {line: line.reason for line in lines}


@pytest.mark.parametrize(
    ("source", "name", "written", "ahead", "field"),
    [case for case in WRITTEN_AHEAD if case[0] in BATCHES],
    ids=lambda v: str(v)[:40],
)
def test_every_batch_vendors_item_dated_ahead_is_time_ahead(
    source: str, name: str, written: str, ahead: str, field: str
) -> None:
    """HubSpot and Salesforce CRM records and engagements, Graph, Google and Gmail items."""
    body = fixture(source, name)
    before = _lines(source, body)
    after = _lines(source, body.replace(written.encode(), ahead.encode(), 1))
    added = {line: code for line, code in after.items() if line not in before}
    assert list(added.values()) == ["time_ahead"], added
    assert field in next(iter(added))


def _hubspot(name: str, **properties: str) -> bytes:
    batch: list[dict[str, Any]] = fixture_json("hubspot", name)
    batch[0]["properties"].update(properties)
    return dumps(batch)


def _hubspot_object_type(object_type: str) -> bytes:
    batch: list[dict[str, Any]] = fixture_json("hubspot", "crm-objects.json")[:1]
    batch[0]["objectType"] = object_type
    return dumps(batch)


def _hubspot_meeting_hold() -> bytes:
    return dumps(_hubspot_meeting("HOLD: Globex deep dive", None))


def _graph_draft() -> bytes:
    message = fixture_json("microsoft-graph", "message.json")
    message["isDraft"] = True
    return dumps(message)


def _gmail(label: str) -> bytes:
    message = fixture_json("gmail", "message.json")
    message["labelIds"] = [label]
    return dumps(message)


def _salesforce_draft() -> bytes:
    body = fixture("salesforce", "EmailMessage.xml").decode()
    start = body.index("<sf:Status>")
    end = body.index("</sf:Status>", start)
    return (body[:start] + "<sf:Status>5" + body[end:]).encode()


def _google_hold() -> bytes:
    event = fixture_json("google-calendar", "event.confirmed.json")
    ana = event["attendees"][0]
    return dumps({**event, "summary": "HOLD: Globex demo", "attendees": [ana]})


#: (source, body) -> every line it is answered with and the code each carries.
REAL_LINES: list[tuple[str, bytes, dict[str, str]]] = [
    (
        "hubspot",
        _hubspot("calls.json", hs_call_status="RINGING"),
        {"[0] calls/40120001: hs_call_status=RINGING: the call is still under way": "not_done"},
    ),
    (
        "hubspot",
        _hubspot("emails.json", hs_email_status="BOUNCED"),
        {"[0] emails/40130001: hs_email_status=BOUNCED: the email was not sent": "not_done"},
    ),
    (
        "hubspot",
        fixture("hubspot", "contact.propertyChange.json"),
        {"[0] contact.propertyChange: a change notification without object data": "other"},
    ),
    # A sender's text echoed in the line says nothing of its code.
    (
        "hubspot",
        _hubspot_object_type("notes: more than 86400 s in the future (received x)"),
        {
            "[0] notes: more than 86400 s in the future (received x): object type not used": "other",
        },
    ),
    (
        "twilio",
        fixture("twilio", "ringing.txt"),
        {"CallStatus=ringing: the call has not connected or ended yet": "not_done"},
    ),
    (
        "aircall",
        fixture("aircall", "call.created.json"),
        {"call.created: the call has not been answered or ended yet": "not_done"},
    ),
    (
        "zoom",
        dumps({"event": "recording.completed", "event_ts": 1, "payload": {}}),
        {"recording.completed: not a meeting lifecycle event": "other"},
    ),
    (
        "calendly",
        dumps(
            {"event": "routing_form_submission.created", "created_at": "2026-11-24T09:00:00Z", "payload": {}}
        ),
        {"routing_form_submission.created: not an invitee booking, cancellation or no-show": "other"},
    ),
    ("microsoft-graph", _graph_draft(), {"body AAMkAGUAAAwTW09AAA=: a draft was never sent": "not_done"}),
    ("gmail", _gmail("DRAFT"), {"body 18c5f0a1b2c3d4e5: a draft was never sent": "not_done"}),
    ("gmail", _gmail("SPAM"), {"body 18c5f0a1b2c3d4e5: spam": "other"}),
    (
        "microsoft-graph",
        fixture("microsoft-graph", "change-notification.json"),
        {
            "value[0] created Users/ana.seller@acme.example/Messages/AAMkAGUAAAwTW09AAA=: change notification "
            "without resource data": "other"
        },
    ),
    (
        "google-calendar",
        _google_hold(),
        {
            "body 7cbh8rpc10lrc0ckih9tafss99_20261124T090000Z: nobody but its organizer attends: time "
            "blocked in a calendar, not a meeting": "time_block"
        },
    ),
    (
        "hubspot",
        _hubspot_meeting_hold(),
        {f"[0] meetings/40140001: {HOLD_TIME}": "time_block"},
    ),
    (
        "salesforce",
        _salesforce_draft(),
        {
            "Notification[0].sObject EmailMessage/02s5j00000Ab1CdAAJ: Status=5: a draft, not sent": "not_done",
            "Notification[1].sObject EmailMessage/02s5j00000Ab1CeAAJ: Status=5: a draft, not sent": "not_done",
        },
    ),
    (
        "salesforce",
        fixture("salesforce", "Task.xml").replace(b'xsi:type="sf:Task"', b'xsi:type="sf:Note"', 1),
        {"Notification[0].sObject Note: object type not used": "other"},
    ),
    (
        "ringcentral",
        dumps({"event": "/restapi/v1.0/account/~/extension/~/presence", "body": {"presenceStatus": "Busy"}}),
        {"/restapi/v1.0/account/~/extension/~/presence: not a telephony session event": "other"},
    ),
]


@pytest.mark.parametrize(("source", "body", "expected"), REAL_LINES, ids=lambda v: str(v)[:30])
def test_each_adapters_real_lines_carry_their_code(
    source: str, body: bytes, expected: dict[str, str]
) -> None:
    assert _lines(source, body) == expected


def test_a_line_keeps_the_code_it_was_written_with_and_counts_by_it() -> None:
    """A label before a converter's reason keeps the reason's code (a plain reason is ``other``);
    the response lists the words alone; a code outside the counter's few values is refused."""
    draft = Ignored(ignored.DRAFT_NEVER_SENT, ignored.NOT_DONE)
    lines = [
        ignored_line("body m1", draft),
        ignored_line("body m2", "spam"),
        Ignored(f"activities[0]: {HOLD_TIME}", ignored.TIME_BLOCK),
    ]
    assert lines == ["body m1: a draft was never sent", "body m2: spam", f"activities[0]: {HOLD_TIME}"]
    assert ignored_counts(lines) == {"not_done": 1, "other": 1, "time_block": 1}
    with pytest.raises(ValueError, match="not a reason"):
        Ignored("x", "a draft")
