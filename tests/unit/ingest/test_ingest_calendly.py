from __future__ import annotations

from datetime import UTC, datetime

import pytest

from libs.common.contracts.activities import (
    ActivityKind,
    Direction,
    Outcome,
    Participant,
    ParticipantRole,
)
from services.ingest.domain.webhooks import ADAPTERS, WebhookRejected

from .ingest_webhook_helpers import (
    CONFIG,
    NOW_SECONDS,
    calendly_headers,
    dumps,
    fixture,
    fixture_json,
    make_request,
)

SECRET = "calendly-signing-key-current"
OLD_SECRET = "calendly-signing-key-previous"
adapter = ADAPTERS["calendly"]


def test_created_invitee_is_a_scheduled_meeting() -> None:
    body = fixture("calendly", "invitee.created.json")
    request = make_request(body, calendly_headers(body, SECRET))
    adapter.verify(request, [SECRET], CONFIG)

    (meeting,) = adapter.parse(request, CONFIG).activities

    assert meeting.source == "calendly"
    assert meeting.external_id == "https://api.calendly.com/scheduled_events/NEWEVENT000000002"
    assert meeting.kind is ActivityKind.MEETING
    assert meeting.outcome is Outcome.SCHEDULED
    assert meeting.direction is Direction.OUTBOUND
    assert meeting.occurred_at == datetime(2026, 11, 26, 15, 0, tzinfo=UTC)
    assert meeting.duration_seconds == 1800
    assert meeting.subject == "30 Minute Discovery Call"
    assert meeting.revision == int(datetime(2026, 11, 24, 9, 15, 2, tzinfo=UTC).timestamp() * 1000)
    assert meeting.participants == (
        Participant(email="ana.seller@acme.example", name="Ana Seller", role=ParticipantRole.ORGANIZER),
        Participant(
            email="bo.buyer@globex.example",
            phone="+14155552671",
            name="Bo Buyer",
            role=ParticipantRole.ATTENDEE,
        ),
    )


def test_reschedule_cancels_the_old_event_and_schedules_the_new_one() -> None:
    cancel = adapter.parse(make_request(fixture("calendly", "invitee.canceled.json")), CONFIG).activities[0]
    create = adapter.parse(make_request(fixture("calendly", "invitee.created.json")), CONFIG).activities[0]
    assert (cancel.external_id, cancel.outcome) == (
        "https://api.calendly.com/scheduled_events/OLDEVENT000000001",
        Outcome.CANCELLED,
    )
    assert cancel.occurred_at == datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
    assert (create.external_id, create.outcome) == (
        "https://api.calendly.com/scheduled_events/NEWEVENT000000002",
        Outcome.SCHEDULED,
    )


def test_other_events_are_ignored() -> None:
    body = dumps(
        {"event": "routing_form_submission.created", "created_at": "2026-11-24T09:00:00Z", "payload": {}}
    )
    result = adapter.parse(make_request(body), CONFIG)
    assert result.ignored == (
        "routing_form_submission.created: not an invitee booking, cancellation or no-show",
    )


def test_bad_signature_is_401() -> None:
    body = fixture("calendly", "invitee.created.json")
    with pytest.raises(WebhookRejected) as caught:
        adapter.verify(make_request(body, calendly_headers(body, "other")), [SECRET], CONFIG)
    assert (caught.value.status_code, caught.value.field) == (401, "calendly-webhook-signature")


def test_missing_or_garbled_signature_is_401() -> None:
    body = fixture("calendly", "invitee.created.json")
    for headers in (
        {},
        {"calendly-webhook-signature": "v1=abc"},
        {"calendly-webhook-signature": "t=x,v1=abc"},
    ):
        with pytest.raises(WebhookRejected) as caught:
            adapter.verify(make_request(body, headers), [SECRET], CONFIG)
        assert (caught.value.status_code, caught.value.field) == (401, "calendly-webhook-signature")


def test_expired_timestamp_is_401() -> None:
    body = fixture("calendly", "invitee.created.json")
    with pytest.raises(WebhookRejected) as caught:
        adapter.verify(
            make_request(body, calendly_headers(body, SECRET, NOW_SECONDS - 600)), [SECRET], CONFIG
        )
    assert caught.value.status_code == 401
    assert caught.value.reason == "timestamp outside the accepted window"


def test_two_secrets_are_valid_during_rotation() -> None:
    body = fixture("calendly", "invitee.created.json")
    for secret in (SECRET, OLD_SECRET):
        adapter.verify(make_request(body, calendly_headers(body, secret)), [OLD_SECRET, SECRET], CONFIG)


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (("scheduled_event", "start_time"), "next tuesday", "payload.scheduled_event.start_time"),
        (("scheduled_event", "end_time"), None, "payload.scheduled_event.end_time"),
        (("text_reminder_number",), "12", "payload.text_reminder_number"),
    ],
)
def test_malformed_bodies_name_the_field(path: tuple[str, ...], value: object, field: str) -> None:
    payload = fixture_json("calendly", "invitee.created.json")
    target = payload["payload"]
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    if path == ("text_reminder_number",):
        payload["payload"]["email"] = None
    with pytest.raises(WebhookRejected) as caught:
        adapter.parse(make_request(dumps(payload)), CONFIG)
    assert (caught.value.status_code, caught.value.field) == (422, field)


def test_a_bad_time_of_the_change_names_the_field_it_was_read_from() -> None:
    """An invitee without ``updated_at`` is dated by the webhook's ``created_at``: a bad one is
    named there, not as the invitee's ``updated_at`` the payload does not hold."""
    payload = fixture_json("calendly", "invitee.created.json")
    payload["payload"].pop("updated_at", None)
    payload["created_at"] = "yesterday"
    with pytest.raises(WebhookRejected) as caught:
        adapter.parse(make_request(dumps(payload)), CONFIG)
    assert (caught.value.status_code, caught.value.field) == (422, "created_at")
    payload = fixture_json("calendly", "invitee.created.json")
    payload["payload"]["updated_at"] = "yesterday"
    with pytest.raises(WebhookRejected) as caught:
        adapter.parse(make_request(dumps(payload)), CONFIG)
    assert (caught.value.status_code, caught.value.field) == (422, "payload.updated_at")


def test_body_that_is_not_an_object_is_400() -> None:
    with pytest.raises(WebhookRejected) as caught:
        adapter.parse(make_request(b"[1, 2]"), CONFIG)
    assert (caught.value.status_code, caught.value.field) == (400, "body")


def _no_show(name: str, **changes: object) -> bytes:
    payload = fixture_json("calendly", name)
    payload["payload"]["scheduled_event"].update(changes)
    return dumps(payload)


def test_a_no_show_mark_makes_the_meeting_a_no_show_newer_than_its_booking() -> None:
    booked = adapter.parse(make_request(fixture("calendly", "invitee.created.json")), CONFIG).activities[0]
    (marked,) = adapter.parse(
        make_request(fixture("calendly", "invitee_no_show.created.json")), CONFIG
    ).activities

    assert (marked.external_id, marked.outcome) == (booked.external_id, Outcome.NO_SHOW)
    assert marked.revision == int(datetime(2026, 11, 26, 15, 20, 3, tzinfo=UTC).timestamp() * 1000)
    assert marked.revision > booked.revision
    assert (marked.occurred_at, marked.duration_seconds, marked.participants) == (
        booked.occurred_at,
        booked.duration_seconds,
        booked.participants,
    )


def test_a_no_show_taken_back_is_held_once_the_meeting_ended_else_scheduled() -> None:
    body = fixture("calendly", "invitee_no_show.deleted.json")
    after = datetime(2026, 11, 26, 16, 5, 1, tzinfo=UTC)
    (unmarked,) = adapter.parse(make_request(body, received_at=after), CONFIG).activities
    (early,) = adapter.parse(
        make_request(body, received_at=datetime(2026, 11, 26, 15, 25, tzinfo=UTC)), CONFIG
    ).activities
    marked = adapter.parse(
        make_request(fixture("calendly", "invitee_no_show.created.json")), CONFIG
    ).activities[0]

    assert unmarked.outcome is Outcome.HELD
    assert early.outcome is Outcome.SCHEDULED
    # Dated by the webhook (no mark left to date it): newer than the mark it takes back.
    assert unmarked.revision == int(datetime(2026, 11, 26, 16, 5, tzinfo=UTC).timestamp() * 1000)
    assert unmarked.revision > marked.revision


def test_one_invitee_s_no_show_on_a_group_event_changes_nothing() -> None:
    group = {"invitees_counter": {"total": 4, "active": 3, "limit": 10}}
    for name in ("invitee_no_show.created.json", "invitee_no_show.deleted.json"):
        result = adapter.parse(make_request(_no_show(name, **group)), CONFIG)
        event = name.removesuffix(".json")
        assert (result.activities, result.ignored) == (
            (),
            (f"{event}: one invitee's no-show on a group event: the others may have attended",),
        )
