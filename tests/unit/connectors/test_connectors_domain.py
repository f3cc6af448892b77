"""The connectors' pure rules: what is fetched, what is forwarded, when to retry, health."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from libs.common.contracts.tenant_settings import InvalidTenantSettings, read_tenant_settings
from libs.common.tenancy import push_token
from services.connectors.domain import calendar, gmail, graph
from services.connectors.domain.mailboxes import (
    Connection,
    Mailbox,
    health,
    post_context,
    resync_since,
    subscription_due,
)
from services.connectors.domain.policy import FetchPolicy, fetch_policy
from services.connectors.domain.retry import (
    CallOutcome,
    backoff_seconds,
    classify,
    failure_delay,
    retry_after_seconds,
)
from services.ingest.domain.push import parse_calendar_push, parse_gmail_push, verify_push_token
from services.ingest.domain.webhook_types import WebhookRejected

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({}, FetchPolicy(False, False)),
        ({"privacy": {"keep_subjects": True}}, FetchPolicy(True, True)),
        ({"privacy": {"excluded_subject_keywords": ["salary"]}}, FetchPolicy(False, True)),
        ({"privacy": {"excluded_subject_keywords": ["  "]}}, FetchPolicy(False, False)),
        ({"privacy": "yes"}, FetchPolicy(False, False)),
    ],
)
def test_subjects_are_fetched_only_when_kept_or_filtered_on(
    settings: dict[str, object], expected: FetchPolicy
) -> None:
    try:
        read = read_tenant_settings("acme", settings)
    except InvalidTenantSettings:
        read = None  # what the store answers for settings that do not validate
    assert fetch_policy(read) == expected


def test_gmail_headers_and_what_is_forwarded() -> None:
    assert gmail.metadata_headers(FetchPolicy()) == (
        "From",
        "To",
        "Cc",
        "Bcc",
        "Date",
        "Message-ID",
        "In-Reply-To",
        "References",
    )
    assert gmail.metadata_headers(FetchPolicy(True, True))[-1] == "Subject"
    message = {
        "id": "m1",
        "threadId": "t1",
        "labelIds": ["INBOX"],
        "snippet": "body text",
        "internalDate": "1795518300000",
        "payload": {
            "headers": [{"name": "from", "value": "a@x"}, {"name": "Subject", "value": "s"}],
            "body": {"data": "x"},
        },
    }
    assert gmail.for_ingest(message, gmail.ADDRESS_HEADERS) == {
        "id": "m1",
        "threadId": "t1",
        "labelIds": ["INBOX"],
        "internalDate": "1795518300000",
        "payload": {"headers": [{"name": "from", "value": "a@x"}]},
    }
    assert gmail.sent_at(message) == datetime(2026, 11, 24, 11, 5, tzinfo=UTC)


def test_history_pages_name_added_messages_once_in_order() -> None:
    page = {
        "history": [
            {"id": "2", "messagesAdded": [{"message": {"id": "b"}}, {"message": {"id": "a"}}]},
            {"id": "3", "labelsAdded": [{"message": {"id": "c"}}]},
            {"id": "4", "messagesAdded": [{"message": {"id": "b"}}]},
        ]
    }
    assert gmail.added_message_ids(page) == ["b", "a"]
    assert gmail.added_message_ids({"historyId": "9"}) == []


def test_calendar_fields_and_forwarded_event() -> None:
    # The title is requested whatever the policy (a hold is told by it), forwarded only when needed.
    assert calendar.event_fields().endswith("summary),nextPageToken,nextSyncToken")
    assert "eventType" in calendar.event_fields()
    event = {"id": "e", "summary": "s", "description": "d", "location": "l", "status": "confirmed"}
    assert calendar.for_ingest(event, FetchPolicy()) == {"id": "e", "status": "confirmed"}
    assert calendar.for_ingest(event, FetchPolicy(False, True)) == {
        "id": "e",
        "status": "confirmed",
        "summary": "s",
    }
    # Ingest tells a meeting from a working location, out-of-office or focus-time entry by it.
    status = {"id": "w", "eventType": "workingLocation", "workingLocationProperties": {"type": "homeOffice"}}
    assert calendar.for_ingest(status, FetchPolicy()) == {"id": "w", "eventType": "workingLocation"}
    # And an all-day "Ana OOO" or a free "Ana in Berlin" sent to the team from a meeting by
    # whether it blocks time: ``transparency`` is requested and forwarded.
    assert "transparency" in calendar.event_fields()
    holiday = {"id": "h", "start": {"date": "2026-11-26"}, "transparency": "transparent", "colorId": "5"}
    assert calendar.for_ingest(holiday, FetchPolicy()) == {
        "id": "h",
        "start": {"date": "2026-11-26"},
        "transparency": "transparent",
    }


def test_a_holds_title_leaves_the_connector_as_the_word_alone_unless_subjects_are_needed() -> None:
    """A tenant that neither keeps nor filters on subjects: "HOLD: Globex demo" is forwarded as
    ``hold`` (ingest's rule reads it a hold, then drops it), a meeting's title not at all; a
    tenant that keeps subjects gets both whole. Google's ``summary``, Graph's ``subject`` alike."""
    hold = {"id": "h", "summary": "HOLD: Globex demo"}
    meeting = {"id": "m", "summary": "Holding company review with Globex"}
    assert calendar.for_ingest(hold, FetchPolicy()) == {"id": "h", "summary": "hold"}
    assert calendar.for_ingest(meeting, FetchPolicy()) == {"id": "m"}
    assert calendar.for_ingest(hold, FetchPolicy(True, True)) == hold
    assert calendar.for_ingest(meeting, FetchPolicy(True, True)) == meeting
    outlook = {"id": "o", "subject": "Globex demo (Placeholder)", "type": "singleInstance"}
    assert graph.for_ingest("microsoft-calendar", outlook, FetchPolicy()) == {
        "@odata.type": "#microsoft.graph.event",
        "id": "o",
        "type": "singleInstance",
        "subject": "placeholder",
    }
    assert graph.for_ingest("microsoft-calendar", {**outlook, "subject": "Globex demo"}, FetchPolicy()) == {
        "@odata.type": "#microsoft.graph.event",
        "id": "o",
        "type": "singleInstance",
    }


@pytest.mark.parametrize(
    ("status", "reason", "outcome"),
    [
        (429, None, CallOutcome.RETRY),
        (503, None, CallOutcome.RETRY),
        (403, "rateLimitExceeded", CallOutcome.RETRY),
        (403, "userRateLimitExceeded", CallOutcome.RETRY),
        (403, "forbidden", CallOutcome.FAIL),
        (404, "notFound", CallOutcome.FAIL),
        (410, "fullSyncRequired", CallOutcome.FAIL),
    ],
)
def test_which_failures_are_retried_in_place(status: int, reason: str | None, outcome: CallOutcome) -> None:
    assert classify(status, reason) is outcome


def test_retry_after_and_backoff() -> None:
    assert retry_after_seconds("7", NOW) == 7.0
    assert retry_after_seconds("Wed, 02 Dec 2026 12:00:30 GMT", NOW) == 30.0
    assert retry_after_seconds("soon", NOW) is None
    assert [backoff_seconds(n, 1.0, 5.0) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 5.0]
    assert [failure_delay(n, timedelta(minutes=5)).total_seconds() for n in (1, 2, 3, 5)] == [
        30,
        60,
        120,
        300,
    ]


def _mailbox(**kwargs: object) -> Mailbox:
    return Mailbox(1, "acme", "gmail", "a@x", Connection(1, "acme", "google"), **kwargs)  # type: ignore[arg-type]


def test_resync_window_never_reaches_before_the_connected_window() -> None:
    connected = NOW - timedelta(days=3)
    assert resync_since(_mailbox(backfill_since=connected), NOW, 7) == connected
    last = NOW - timedelta(hours=2)
    assert resync_since(_mailbox(backfill_since=connected, last_success_at=last), NOW, 7) == last - timedelta(
        days=1
    )
    assert resync_since(_mailbox(), NOW, 7) == NOW - timedelta(days=7)


def test_a_calendar_s_posts_name_its_mailbox_and_when_it_was_read_and_a_mail_folder_s_do_not() -> None:
    """Ingest tells a meeting deleted by its organizer from one an attendee removed from her
    calendar, and dates a deletion the calendar does not date by when its page was read."""
    connection = Connection(1, "acme", "google")
    read_at = datetime(2026, 11, 24, 5, 5, tzinfo=timezone(timedelta(hours=-5)))
    for provider in ("google-calendar", "microsoft-calendar"):
        assert post_context(Mailbox(1, "acme", provider, "ana@acme.example", connection), read_at) == {
            "mailbox": "ana@acme.example",
            "observed_at": "2026-11-24T10:05:00+00:00",
        }
    for provider in ("gmail", "microsoft-mail"):
        assert post_context(Mailbox(1, "acme", provider, "ana@acme.example", connection), read_at) == {}


def test_subscriptions_are_renewed_before_they_expire() -> None:
    margin = timedelta(days=1)
    assert subscription_due(_mailbox(), NOW, margin)
    assert subscription_due(_mailbox(subscription_expires_at=NOW + timedelta(hours=20)), NOW, margin)
    assert not subscription_due(_mailbox(subscription_expires_at=NOW + timedelta(days=6)), NOW, margin)


def test_health() -> None:
    def of(**kwargs: object) -> str:
        base: dict[str, object] = {
            "paused": False, "full_sync": False, "last_error_at": None, "last_success_at": NOW, "now": NOW,
            "stale_after": timedelta(hours=1),
        }  # fmt: skip
        return health(**{**base, **kwargs})  # type: ignore[arg-type]

    assert of() == "ok"
    assert of(paused=True) == "paused"
    assert of(last_error_at=NOW + timedelta(seconds=1)) == "failing"
    assert of(full_sync=True) == "backfilling"
    assert of(last_success_at=None) == "pending"
    assert of(now=NOW + timedelta(hours=2)) == "stale"


def test_connection_repr_never_shows_credentials() -> None:
    assert "PRIVATE" not in repr(Connection(1, "acme", "google", credentials="-----BEGIN PRIVATE KEY-----"))


def test_gmail_push_is_parsed_and_its_token_checked() -> None:
    data = base64.b64encode(
        json.dumps({"emailAddress": "Ana@Acme.example", "historyId": 9}).encode()
    ).decode()
    body = json.dumps({"message": {"data": data, "messageId": "1"}, "subscription": "s"}).encode()
    assert parse_gmail_push(body).address == "ana@acme.example"
    verify_push_token(["old", "new"], "acme", "gmail", push_token("old", "acme", "gmail"))
    with pytest.raises(WebhookRejected) as refused:
        verify_push_token(["new"], "acme", "gmail", push_token("new", "other", "gmail"))
    assert (refused.value.status_code, refused.value.field) == (401, "token")
    with pytest.raises(WebhookRejected) as bad:
        parse_gmail_push(b'{"message": {"data": "e30="}}')
    assert bad.value.field == "message.data.emailAddress"


def test_calendar_push_headers() -> None:
    first = parse_calendar_push({"x-goog-channel-id": "c1", "x-goog-resource-state": "sync"})
    assert (first.channel_id, first.handshake) == ("c1", True)
    assert not parse_calendar_push({"x-goog-channel-id": "c1", "x-goog-resource-state": "exists"}).handshake
    with pytest.raises(WebhookRejected):
        parse_calendar_push({})


def test_graph_initial_requests_select_only_what_is_forwarded() -> None:
    from urllib.parse import parse_qs, urlsplit

    since = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
    mail = urlsplit(
        graph.initial_url(
            "https://graph.microsoft.com", "microsoft-mail", "a@x", "inbox", since, FetchPolicy()
        )
    )
    assert mail.path == "/v1.0/users/a@x/mailFolders/inbox/messages/delta"
    query = parse_qs(mail.query)
    assert query["$filter"] == ["receivedDateTime ge 2026-11-29T12:00:00Z"]
    assert "subject" not in query["$select"][0].split(",")
    assert "body" not in query["$select"][0].split(",")
    assert "bodyPreview" not in query["$select"][0].split(",")
    assert "bccRecipients" in query["$select"][0].split(",")  # a blind copy is a participant
    events = urlsplit(
        graph.initial_url("https://g", "microsoft-calendar", "a@x", "calendarview", since, FetchPolicy())
    )
    assert parse_qs(events.query) == {
        "startDateTime": ["2026-11-29T12:00:00Z"],
        "endDateTime": ["2027-11-29T12:00:00Z"],
    }


def test_graph_resources_are_reduced_before_they_leave() -> None:

    event = {
        "id": "e",
        "subject": "s",
        "body": {"content": "notes"},
        "location": {},
        "start": {},
        "type": "occurrence",
        # The calendar owner's answer: ingest reads an organizer who declined her own event by it.
        "isOrganizer": True,
        "responseStatus": {"response": "declined", "time": "2026-11-20T09:00:00Z"},
        # Out of office, all day: ingest reads it as no meeting when only colleagues are invited.
        "showAs": "oof",
        "isAllDay": True,
        "isReminderOn": True,
    }
    assert graph.for_ingest("microsoft-calendar", event, FetchPolicy()) == {
        "@odata.type": "#microsoft.graph.event",
        "id": "e",
        "start": {},
        "type": "occurrence",
        "isOrganizer": True,
        "responseStatus": {"response": "declined", "time": "2026-11-20T09:00:00Z"},
        "showAs": "oof",
        "isAllDay": True,
    }
    assert graph.for_ingest("microsoft-calendar", dict(event, type="seriesMaster"), FetchPolicy()) is None
    assert (
        graph.for_ingest("microsoft-mail", {"id": "m", "@removed": {"reason": "deleted"}}, FetchPolicy())
        is None
    )
    # A deleted event goes to ingest as Graph named it, for its meeting to be retracted.
    removed = {"id": "e", "@removed": {"reason": "deleted"}, "@odata.etag": "W/1"}
    assert graph.for_ingest("microsoft-calendar", removed, FetchPolicy()) == {
        "@odata.type": "#microsoft.graph.event",
        "id": "e",
        "@removed": {"reason": "deleted"},
    }
    message = {"id": "m", "internetMessageId": "<m@x>", "subject": "s", "bodyPreview": "p"}
    assert graph.for_ingest("microsoft-mail", message, FetchPolicy(True, True)) == {
        "@odata.type": "#microsoft.graph.message",
        "internetMessageId": "<m@x>",
        "subject": "s",
    }
    assert graph.delta_expired(410, None)
    assert graph.delta_expired(400, "syncStateNotFound")
    assert not graph.delta_expired(400, "BadRequest")
    assert graph.read_cursor(graph.write_cursor({"sentitems": "b", "inbox": "a"})) == {
        "inbox": "a",
        "sentitems": "b",
    }
    assert graph.read_cursor("not json") == {}


def test_graph_subscription_request_and_its_times() -> None:
    from services.connectors.handlers import graph_time

    request = graph.subscription_request(
        "microsoft-mail", "a@x", "https://h/v1/push/microsoft-graph/acme", "tok", NOW
    )
    assert request["resource"] == "users/a@x/messages"
    assert request["lifecycleNotificationUrl"] == request["notificationUrl"]
    assert request["expirationDateTime"] == "2026-12-09T11:00:00Z"
    assert graph_time("2026-12-09T11:00:00.0000000Z") == datetime(2026, 12, 9, 11, 0, tzinfo=UTC)
    assert graph_time("garbage") is None


def test_graph_push_validation_and_lifecycle_events() -> None:
    from services.ingest.domain.push import parse_graph_push

    assert parse_graph_push(b"", "tok").validation_token == "tok"
    body = json.dumps(
        {"value": [{"subscriptionId": "s1", "clientState": "c", "lifecycleEvent": "subscriptionRemoved"}]}
    ).encode()
    push = parse_graph_push(body, None)
    assert push.client_states == (("value.0.clientState", "c"),)
    assert [(c.channel_id, c.removed, c.renew) for c in push.changes] == [("s1", True, False)]
    with pytest.raises(WebhookRejected) as missing:
        parse_graph_push(b'{"value": [{"clientState": "c"}]}', None)
    assert missing.value.field == "value.0.subscriptionId"


def test_graph_calendar_mail_is_left_to_the_calendar() -> None:
    """Graph types the calendar's mail in a mailbox (``eventMessageRequest`` invitations, in the
    organizer's Sent Items too; ``eventMessage`` cancellations; ``eventMessageResponse`` answers):
    the meeting counts from the calendar, so none is forwarded as an email, an answer "with a
    comment" neither (the comment is in the body, which ``Mail.ReadBasic.All`` does not grant).
    Before, each was forwarded as a message (its type replaced): every invitation its
    organizer's email, every click on Accept the buyer's."""

    def mail(odata_type: str) -> dict[str, object]:
        return {
            "@odata.type": odata_type,
            "id": "m",
            "internetMessageId": "<m@x>",
            "subject": "Accepted: Kaiju",
        }

    policy = FetchPolicy(True, True)
    for odata_type in ("eventMessageResponse", "eventMessageRequest", "eventMessage"):
        assert graph.for_ingest("microsoft-mail", mail(f"#microsoft.graph.{odata_type}"), policy) is None
    # A message (Graph names its type, or does not) is forwarded as before.
    for plain in (
        mail("#microsoft.graph.message"),
        {"internetMessageId": "<m@x>", "subject": "Accepted: Kaiju"},
    ):
        assert graph.for_ingest("microsoft-mail", plain, policy) == {
            "@odata.type": "#microsoft.graph.message",
            "internetMessageId": "<m@x>",
            "subject": "Accepted: Kaiju",
        }
