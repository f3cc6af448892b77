from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest

from libs.common.contracts.activities import (
    ActivityKind,
    Direction,
    Outcome,
    Participant,
    ParticipantRole,
    ResponseStatus,
)
from services.ingest.domain.webhook_types import SourceDeletion
from services.ingest.domain.webhooks import ADAPTERS, WebhookRejected

from .ingest_webhook_helpers import CONFIG, dumps, fixture, fixture_json, make_request, standard_headers

CLIENT_STATE = "graph-client-state-1"
SECRET = "whsec_" + base64.b64encode(b"graph-connector-key").decode()
adapter = ADAPTERS["microsoft-graph"]
#: ``make_request``'s received_at (2026-11-24 16:00 UTC) in ms: ``@removed`` gives no time, so
#: the deletion is dated when ingest received it.
RECEIVED_MS = 1795536000000


def test_validation_token_is_echoed_as_text() -> None:
    url = "https://ingest.example.com/v1/webhooks/microsoft-graph/acme?validationToken=Validation%3A+Testing+client+application"
    request = make_request(b"", url=url)
    adapter.verify(request, [CLIENT_STATE], CONFIG)

    result = adapter.parse(request, CONFIG)

    assert result.handshake is not None
    assert (result.handshake.status_code, result.handshake.media_type, result.handshake.body) == (
        200,
        "text/plain",
        b"Validation: Testing client application",
    )


def test_change_notification_needs_a_matching_client_state() -> None:
    body = fixture("microsoft-graph", "change-notification.json")
    adapter.verify(make_request(body), ["graph-client-state-0", CLIENT_STATE], CONFIG)
    result = adapter.parse(make_request(body), CONFIG)
    assert result.activities == ()
    assert result.ignored == (
        "value[0] created Users/ana.seller@acme.example/Messages/AAMkAGUAAAwTW09AAA=: "
        "change notification without resource data",
    )
    with pytest.raises(WebhookRejected) as caught:
        adapter.verify(make_request(body), ["another-state"], CONFIG)
    assert (caught.value.status_code, caught.value.field) == (401, "value[0].clientState")


def test_change_notification_without_client_state_is_401() -> None:
    notification = fixture_json("microsoft-graph", "change-notification.json")
    del notification["value"][0]["clientState"]
    with pytest.raises(WebhookRejected) as caught:
        adapter.verify(make_request(dumps(notification)), [CLIENT_STATE], CONFIG)
    assert (caught.value.status_code, caught.value.reason) == (401, "missing")


def test_message_from_a_customer_is_received() -> None:
    body = fixture("microsoft-graph", "message.json")
    request = make_request(body, standard_headers(body, SECRET))
    adapter.verify(request, [SECRET], CONFIG)

    (email,) = adapter.parse(request, CONFIG).activities

    assert email.source == "microsoft-graph"
    assert (
        email.external_id == "<BY5PR11MB3925C1B3E4D3A6F0C8D2B1A9E6F7@BY5PR11MB3925.namprd11.prod.outlook.com>"
    )
    assert email.kind is ActivityKind.EMAIL
    assert (email.direction, email.outcome) == (Direction.INBOUND, Outcome.RECEIVED)
    assert email.occurred_at == datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
    assert email.thread_id == "AAQkAGUAAAIDNjIzZTY3LWE0YjQtNDBiMC1iNGZiLWM1MDNlOTYwYjFkMwAQAA=="
    assert email.revision == int(datetime(2026, 11, 24, 10, 0, 3, tzinfo=UTC).timestamp() * 1000)
    assert email.participants == (
        Participant(email="bo.buyer@globex.example", name="Bo Buyer", role=ParticipantRole.FROM),
        Participant(email="ana.seller@acme.example", name="Ana Seller", role=ParticipantRole.TO),
        Participant(email="cy.cfo@globex.example", name="Cy CFO", role=ParticipantRole.CC),
    )


def test_event_is_a_held_meeting_with_its_ical_uid() -> None:
    (meeting,) = adapter.parse(make_request(fixture("microsoft-graph", "event.json")), CONFIG).activities
    assert meeting.external_id == "AAMkAGIAAAoZDOFAAA="
    assert (
        meeting.ical_uid
        == "040000008200E00074C5B7101A82E00800000000D02AB1F5E0A5D801000000000000000010000000F3C1"
    )
    assert meeting.kind is ActivityKind.MEETING
    assert (meeting.direction, meeting.outcome) == (Direction.OUTBOUND, Outcome.HELD)
    assert meeting.occurred_at == datetime(2026, 11, 23, 13, 0, tzinfo=UTC)
    assert meeting.duration_seconds == 3600
    assert meeting.revision == int(datetime(2026, 11, 23, 9, 30, tzinfo=UTC).timestamp() * 1000) + 123
    assert meeting.participants == (
        Participant(email="ana.seller@acme.example", name="Ana Seller", role=ParticipantRole.ORGANIZER),
        Participant(email="bo.buyer@globex.example", name="Bo Buyer", role=ParticipantRole.ATTENDEE),
    )


def test_cancelled_event_and_windows_time_zone() -> None:
    event = fixture_json("microsoft-graph", "event.json")
    event["isCancelled"] = True
    event["start"] = {"dateTime": "2026-11-23T08:00:00.0000000", "timeZone": "Eastern Standard Time"}
    event["end"] = {"dateTime": "2026-11-23T09:00:00.0000000", "timeZone": "Eastern Standard Time"}
    (meeting,) = adapter.parse(make_request(dumps({"value": [event]})), CONFIG).activities
    assert meeting.outcome is Outcome.CANCELLED
    assert meeting.occurred_at == datetime(2026, 11, 23, 13, 0, tzinfo=UTC)


def test_a_removed_event_is_a_deletion_and_a_removed_message_is_not() -> None:
    """The delta's ``@removed`` entries as the connector forwards them: an id and a reason."""
    page = {
        "value": [
            {"@odata.type": "#microsoft.graph.event", "id": "AAMkEv1=", "@removed": {"reason": "deleted"}},
            {"@odata.type": "#microsoft.graph.event", "id": "AAMkEv2=", "@removed": {"reason": "changed"}},
            {"@odata.type": "#microsoft.graph.message", "id": "AAMkMs1=", "@removed": {"reason": "deleted"}},
        ]
    }
    result = adapter.parse(make_request(dumps(page)), CONFIG)
    assert result.activities == ()
    assert result.deletions == (SourceDeletion("microsoft-graph", "AAMkEv1=", RECEIVED_MS, on_receipt=True),)
    assert result.ignored == (
        "value[1] AAMkEv2=: event removed from the delta (changed), not deleted",
        "value[2] AAMkMs1=: #microsoft.graph.message removed (deleted): a deleted message was still sent "
        "or received",
    )


def test_draft_is_ignored() -> None:
    message = fixture_json("microsoft-graph", "message.json")
    message["isDraft"] = True
    result = adapter.parse(make_request(dumps(message)), CONFIG)
    assert result.ignored == ("body AAMkAGUAAAwTW09AAA=: a draft was never sent",)


@pytest.mark.parametrize(
    ("name", "changes", "field"),
    [
        ("message.json", {"internetMessageId": None}, "internetMessageId"),
        ("message.json", {"sentDateTime": "noon"}, "sentDateTime"),
        (
            "event.json",
            {"start": {"dateTime": "2026-11-23T13:00:00", "timeZone": "Mars/Olympus"}},
            "start.timeZone",
        ),
        ("event.json", {"attendees": [1]}, "attendees[0]"),
    ],
)
def test_malformed_resources_name_the_field(name: str, changes: dict[str, object], field: str) -> None:
    resource = fixture_json("microsoft-graph", name)
    resource.update(changes)
    with pytest.raises(WebhookRejected) as caught:
        adapter.parse(make_request(dumps(resource)), CONFIG)
    assert (caught.value.status_code, caught.value.field) == (422, field)


def test_an_event_nobody_but_its_organizer_attends_is_blocked_time_not_a_meeting() -> None:
    """Time blocked alone, or with a room only."""
    event = fixture_json("microsoft-graph", "event.json")
    alone = {**event, "id": "alone", "attendees": []}
    room_only = {
        **event,
        "id": "room",
        "attendees": [a for a in event["attendees"] if a["type"] == "resource"],
    }
    result = adapter.parse(make_request(dumps({"value": [alone, room_only, event]})), CONFIG)
    assert [a.external_id for a in result.activities] == [event["id"]]
    assert result.ignored == tuple(
        f"value[{n}] {name}: nobody but its organizer attends: time blocked in a calendar, not a meeting"
        for n, name in enumerate(("alone", "room"))
    )


def test_a_series_master_and_time_out_of_office_are_no_meetings() -> None:
    """An integrator's connector posts a series' master beside its occurrences (each occurrence
    is the meeting, the master's start the first's), and Outlook's "Out of office" sent to the
    team (``showAs`` ``oof``, colleagues only; a customer who declined and a room do not make it
    a meeting): neither is a meeting; a meeting shown as free still is."""
    event = fixture_json("microsoft-graph", "event.json")
    master = {**event, "id": "master", "type": "seriesMaster"}
    team = [
        {"type": "required", "emailAddress": {"name": "Dee Rep", "address": "dee.rep@acme.example"}},
        *(a for a in event["attendees"] if a["type"] != "required"),
    ]
    away = {**event, "id": "away", "isAllDay": True, "showAs": "oof", "attendees": team}
    free = {**event, "id": "free", "showAs": "free"}
    result = adapter.parse(make_request(dumps({"value": [master, away, free]})), CONFIG)
    assert [a.external_id for a in result.activities] == ["free"]
    assert result.ignored == (
        "value[0] master: a series master: its occurrences are the meetings",
        "value[1] away: showAs oof: time out of office, not a meeting",
    )


def test_an_all_day_or_free_event_only_colleagues_are_invited_to_is_no_meeting() -> None:
    """Outlook's ``isAllDay`` "Company holiday" or three-day "Offsite" sent to the team (shown as
    busy, not "Out of office"), and "Ana in Berlin" shown as free: no meeting. The all-day
    workshop a customer attends is one."""
    event = fixture_json("microsoft-graph", "event.json")
    dee = {"type": "required", "emailAddress": {"name": "Dee Rep", "address": "dee.rep@acme.example"}}
    team = [dee, *(a for a in event["attendees"] if a["type"] != "required")]
    days = {
        "isAllDay": True,
        "start": {"dateTime": "2026-12-01T00:00:00.0000000", "timeZone": "UTC"},
        "end": {"dateTime": "2026-12-04T00:00:00.0000000", "timeZone": "UTC"},
    }
    holiday = {**event, **days, "id": "holiday", "showAs": "busy", "attendees": team}
    fyi = {**event, "id": "fyi", "showAs": "free", "attendees": team}
    workshop = {**event, **days, "id": "workshop", "showAs": "busy", "attendees": [dee, *event["attendees"]]}
    sync = {**event, "id": "sync", "showAs": "busy", "attendees": team}
    result = adapter.parse(make_request(dumps({"value": [holiday, fyi, workshop, sync]})), CONFIG)
    assert [(a.external_id, a.direction, a.duration_seconds) for a in result.activities] == [
        ("workshop", Direction.OUTBOUND, 86_400),
        ("sync", Direction.INTERNAL, 3_600),
    ]
    assert result.ignored == (
        "value[0] holiday: an all-day event only colleagues are invited to: time away or blocked, not a meeting",
        "value[1] fyi: shown as free, only colleagues invited: time the calendar does not block, not a meeting",
    )


def test_an_on_site_visit_marked_out_of_office_with_a_customer_is_a_meeting() -> None:
    """Reps mark a visit at the customer's site "Out of office": the customer attends, so it is
    the meeting with her, outbound and held like any other."""
    event = fixture_json("microsoft-graph", "event.json")
    visit = {**event, "id": "visit", "showAs": "oof"}
    result = adapter.parse(make_request(dumps(visit)), CONFIG)
    (meeting,) = result.activities
    assert (meeting.external_id, meeting.kind, meeting.direction, result.ignored) == (
        "visit",
        ActivityKind.MEETING,
        Direction.OUTBOUND,
        (),
    )
    assert [p.email for p in meeting.participants if p.response_status is None] == [
        "ana.seller@acme.example",
        "bo.buyer@globex.example",
    ]


ANA = Participant(email="ana.seller@acme.example", name="Ana Seller", role=ParticipantRole.ORGANIZER)
BO = Participant(email="bo.buyer@globex.example", name="Bo Buyer", role=ParticipantRole.ATTENDEE)
CY_DECLINED = Participant(
    email="cy.cfo@globex.example",
    name="Cy CFO",
    role=ParticipantRole.ATTENDEE,
    response_status=ResponseStatus.DECLINED,
)


def test_an_invite_every_guest_declined_is_called_off_not_ignored() -> None:
    """Every guest declined (a later state of a meeting published while one had accepted):
    published cancelled with the guests marked declined, so that it replaces the published one."""
    event = fixture_json("microsoft-graph", "event.json")
    declined = {**event, "attendees": [a for a in event["attendees"] if a["type"] != "required"]}
    result = adapter.parse(make_request(dumps(declined)), CONFIG)
    (off,) = result.activities
    assert (off.outcome, off.direction, off.participants) == (
        Outcome.CANCELLED,
        Direction.OUTBOUND,
        (ANA, CY_DECLINED),
    )
    assert result.ignored == ()


def test_an_organizer_who_declined_her_own_event_is_marked_declined() -> None:
    """Her answer on her own calendar (``isOrganizer``, ``responseStatus``) or her entry among
    the attendees: she keeps her role, marked declined (attribution credits Dan, who went). Left
    alone with Bo, the meeting is called off, listing Ana only. Another owner's answer is not
    the organizer's."""
    event = fixture_json("microsoft-graph", "event.json")
    no = {"response": "declined", "time": "2026-11-19T09:00:00Z"}
    dan = {
        "type": "required",
        "status": {"response": "accepted"},
        "emailAddress": {"address": "dan@acme.example"},
    }
    ana_entry = {"type": "required", "status": no, "emailAddress": {"address": "Ana.Seller@acme.example"}}
    bo = event["attendees"][0]
    items = [
        {**event, "id": "went", "responseStatus": no, "attendees": [bo, dan]},
        {**event, "id": "alone-with-bo", "attendees": [ana_entry, bo]},
        {**event, "id": "not-hers", "isOrganizer": False, "responseStatus": no, "attendees": [bo]},
    ]
    went, alone, not_hers = adapter.parse(make_request(dumps({"value": items})), CONFIG).activities
    ana_declined = ANA.model_copy(update={"response_status": ResponseStatus.DECLINED})
    dan_p = Participant(email="dan@acme.example", role=ParticipantRole.ATTENDEE)
    assert (went.outcome, went.participants) == (Outcome.HELD, (ana_declined, BO, dan_p))
    # Called off: who declined is listed, Bo left alone is not (no evidence, nothing counted).
    assert (alone.outcome, alone.participants) == (Outcome.CANCELLED, (ana_declined,))
    assert (not_hers.outcome, not_hers.participants) == (Outcome.HELD, (ANA, BO))


def test_a_removed_event_is_marked_with_the_mailbox_it_was_removed_from() -> None:
    page = {
        "mailbox": "ana.seller@acme.example",
        "value": [
            {"@odata.type": "#microsoft.graph.event", "id": "AAMkEv1=", "@removed": {"reason": "deleted"}}
        ],
    }
    result = adapter.parse(make_request(dumps(page)), CONFIG)
    assert result.deletions == (
        SourceDeletion(
            "microsoft-graph", "AAMkEv1=", RECEIVED_MS, "ana.seller@acme.example", on_receipt=True
        ),
    )


def test_a_removed_event_is_dated_when_received_on_the_scale_of_its_edits() -> None:
    """Edited at 10:00, its removal received at 10:05: the 10:00 edit, delivered after, is older
    than the deletion (a stale copy); an edit at 10:07 (a restore) is newer."""
    received = datetime(2026, 11, 24, 10, 5, tzinfo=UTC)
    removed = {"@odata.type": "#microsoft.graph.event", "id": "AAMkEv1=", "@removed": {"reason": "deleted"}}
    (deletion,) = adapter.parse(make_request(dumps(removed), received_at=received), CONFIG).deletions

    def edited(at: str) -> int:
        event = {
            **fixture_json("microsoft-graph", "event.json"),
            "id": "AAMkEv1=",
            "lastModifiedDateTime": at,
        }
        (meeting,) = adapter.parse(make_request(dumps(event)), CONFIG).activities
        return meeting.revision

    assert deletion == SourceDeletion("microsoft-graph", "AAMkEv1=", 1795514700000, on_receipt=True)
    assert edited("2026-11-24T10:00:00.0000000Z") == 1795514400000
    assert edited("2026-11-24T10:07:00.0000000Z") == 1795514820000


@pytest.mark.parametrize(
    ("observed", "expected"),
    [
        # Read at 10:05 by the connector, received at 10:10 after its retries: dated 10:05, so a
        # restore made at 10:07 (its next page) is newer than the deletion.
        ("2026-11-24T10:05:00+00:00", 1795514700000),
        # A connector clock ahead of ingest's: never later than ingest received it.
        ("2026-11-24T10:30:00Z", 1795515000000),
    ],
)
def test_a_removed_event_is_dated_when_the_connector_read_its_page(observed: str, expected: int) -> None:
    received = datetime(2026, 11, 24, 10, 10, tzinfo=UTC)
    removed = {"@odata.type": "#microsoft.graph.event", "id": "AAMkEv1=", "@removed": {"reason": "deleted"}}
    body = dumps({"mailbox": "ana.seller@acme.example", "observed_at": observed, "value": [removed]})
    (deletion,) = adapter.parse(make_request(body, received_at=received), CONFIG).deletions
    assert deletion.revision == expected


def test_an_observed_at_that_is_no_time_is_a_422_naming_it() -> None:
    removed = {"@odata.type": "#microsoft.graph.event", "id": "AAMkEv1=", "@removed": {"reason": "deleted"}}
    body = dumps({"observed_at": "yesterday", "value": [removed]})
    with pytest.raises(WebhookRejected) as rejected:
        adapter.parse(make_request(body), CONFIG)
    assert (rejected.value.status_code, rejected.value.field, rejected.value.reason) == (
        422,
        "observed_at",
        "not an ISO 8601 date-time",
    )


def test_a_hold_only_colleagues_are_invited_to_is_no_meeting() -> None:
    """Outlook: "HOLD: Globex demo" sent to the SE (busy, hours set) is time blocked for a
    meeting, not an internal meeting; "Acme demo - Placeholder" likewise; the hold the customer
    attends is the meeting, and the colleagues' "Holding company review" an internal meeting."""
    event = fixture_json("microsoft-graph", "event.json")
    dee = {"type": "required", "emailAddress": {"name": "Dee Rep", "address": "dee.rep@acme.example"}}
    team = [dee, *(a for a in event["attendees"] if a["type"] != "required")]
    hold = {**event, "id": "hold", "subject": "HOLD: Globex demo", "showAs": "busy", "attendees": team}
    placeholder = {**event, "id": "ph", "subject": "Globex demo - Placeholder", "attendees": team}
    customer = {
        **event,
        "id": "customer",
        "subject": "HOLD: Globex demo",
        "attendees": [dee, *event["attendees"]],
    }
    holding = {**event, "id": "holding", "subject": "Holding company review", "attendees": team}
    result = adapter.parse(make_request(dumps({"value": [hold, placeholder, customer, holding]})), CONFIG)
    assert [(a.external_id, a.direction) for a in result.activities] == [
        ("customer", Direction.OUTBOUND),
        ("holding", Direction.INTERNAL),
    ]
    assert result.ignored == tuple(
        f"value[{n}] {name}: a hold or placeholder only colleagues are invited to: time blocked for a "
        "meeting, not one"
        for n, name in enumerate(("hold", "ph"))
    )
