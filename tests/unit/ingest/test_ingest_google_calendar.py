from __future__ import annotations

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
from services.ingest.domain.webhook_types import SourceDeletion, TimeBlock
from services.ingest.domain.webhooks import ADAPTERS, WebhookRejected

from .ingest_webhook_helpers import CONFIG, dumps, fixture, fixture_json, make_request

adapter = ADAPTERS["google-calendar"]
#: ``make_request``'s received_at (2026-11-24 16:00 UTC) in ms: a deletion Google does not date
#: is dated when ingest received it.
RECEIVED_MS = 1795536000000


def test_past_confirmed_instance_is_a_held_meeting() -> None:
    (meeting,) = adapter.parse(
        make_request(fixture("google-calendar", "event.confirmed.json")), CONFIG
    ).activities
    assert meeting.source == "google-calendar"
    assert meeting.external_id == "7cbh8rpc10lrc0ckih9tafss99_20261124T090000Z"
    assert meeting.thread_id == "7cbh8rpc10lrc0ckih9tafss99"
    assert meeting.ical_uid == "7cbh8rpc10lrc0ckih9tafss99@google.com"
    assert meeting.kind is ActivityKind.MEETING
    assert meeting.outcome is Outcome.HELD
    assert meeting.direction is Direction.OUTBOUND
    assert meeting.occurred_at == datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
    assert meeting.duration_seconds == 1800
    assert meeting.subject == "Weekly sync with Globex"
    assert meeting.revision == int(datetime(2026, 11, 20, 12, 34, 56, tzinfo=UTC).timestamp() * 1000) + 789
    # The declined attendee and the room are left out.
    assert meeting.participants == (
        Participant(email="ana.seller@acme.example", name="Ana Seller", role=ParticipantRole.ORGANIZER),
        Participant(
            email="bo.buyer@globex.example",
            name="Bo Buyer",
            role=ParticipantRole.ATTENDEE,
            response_status=ResponseStatus.ACCEPTED,
        ),
    )


def test_future_confirmed_event_is_scheduled() -> None:
    early = make_request(
        fixture("google-calendar", "event.confirmed.json"),
        received_at=datetime(2026, 11, 24, 9, 10, tzinfo=UTC),
    )
    assert adapter.parse(early, CONFIG).activities[0].outcome is Outcome.SCHEDULED


def test_cancelled_events_in_a_sync_page() -> None:
    result = adapter.parse(make_request(fixture("google-calendar", "event.cancelled.json")), CONFIG)
    (cancelled,) = result.activities
    assert cancelled.outcome is Outcome.CANCELLED
    assert cancelled.external_id == "2mk8x0aepdm1d3d0c3pabn0s3k"
    # The event stripped to its id and status was deleted: its meeting is to be retracted.
    assert result.deletions == (
        SourceDeletion("google-calendar", "0ab1cd2ef3gh4ij5kl6mn7op8q", RECEIVED_MS, on_receipt=True),
    )
    assert result.ignored == ()


def test_a_deleted_occurrence_of_a_recurring_event_names_that_occurrence() -> None:
    body = dumps(
        {
            "items": [
                {
                    "id": "7cbh8rpc10lrc0ckih9tafss99_20261124T090000Z",
                    "status": "cancelled",
                    "recurringEventId": "7cbh8rpc10lrc0ckih9tafss99",
                    "originalStartTime": {"dateTime": "2026-11-24T09:00:00Z"},
                }
            ]
        }
    )
    result = adapter.parse(make_request(body), CONFIG)
    assert result.activities == ()
    assert result.deletions == (
        SourceDeletion(
            "google-calendar", "7cbh8rpc10lrc0ckih9tafss99_20261124T090000Z", RECEIVED_MS, on_receipt=True
        ),
    )


def test_all_day_event_starts_at_midnight_utc() -> None:
    event = fixture_json("google-calendar", "event.confirmed.json")
    event["start"] = {"date": "2026-11-30"}
    event["end"] = {"date": "2026-12-01"}
    (meeting,) = adapter.parse(make_request(dumps(event)), CONFIG).activities
    assert meeting.occurred_at == datetime(2026, 11, 30, tzinfo=UTC)
    assert meeting.duration_seconds == 86_400


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"start": None}, "start"),
        ({"start": {"dateTime": "2026-11-24T10:00:00"}}, "start.dateTime"),
        ({"id": None}, "id"),
        ({"attendees": "everyone"}, "attendees"),
    ],
)
def test_malformed_events_name_the_field(changes: dict[str, object], field: str) -> None:
    event = fixture_json("google-calendar", "event.confirmed.json")
    event.update(changes)
    with pytest.raises(WebhookRejected) as caught:
        adapter.parse(make_request(dumps(event)), CONFIG)
    assert (caught.value.status_code, caught.value.field) == (422, field)


def test_statuses_and_gmail_reservations_are_ignored_not_meetings() -> None:
    """``events.list`` without ``eventTypes`` returns them all: only ``default`` (or no type, as
    older connectors forward) is a meeting."""
    base = fixture_json("google-calendar", "event.confirmed.json")
    kinds = ("default", "workingLocation", "outOfOffice", "focusTime", "birthday", "fromGmail", None)
    items = [{**base, "id": f"e-{n}", "eventType": kind} for n, kind in enumerate(kinds)]
    result = adapter.parse(make_request(dumps({"items": items})), CONFIG)
    assert [a.external_id for a in result.activities] == ["e-0", "e-6"]
    assert result.ignored == tuple(
        f"items[{n}] e-{n}: eventType {kind}: a calendar status or a Gmail reservation, not a meeting"
        for n, kind in enumerate(kinds[1:6], start=1)
    )


def test_an_event_nobody_but_its_organizer_attends_is_blocked_time_not_a_meeting() -> None:
    """Google lists the organizer among the attendees; a room does not attend."""
    event = fixture_json("google-calendar", "event.confirmed.json")
    ana, bo, _, room = event["attendees"]
    items = [
        {**event, "id": "alone", "attendees": []},
        {**event, "id": "self", "attendees": [ana]},
        {**event, "id": "room", "attendees": [ana, room]},
        {**event, "id": "meeting", "attendees": [ana, bo]},
    ]
    result = adapter.parse(make_request(dumps({"items": items})), CONFIG)
    assert [a.external_id for a in result.activities] == ["meeting"]
    assert result.ignored == tuple(
        f"items[{n}] {name}: nobody but its organizer attends: time blocked in a calendar, not a meeting"
        for n, name in enumerate(("alone", "self", "room"))
    )


def _dee(answer: str = "accepted") -> dict[str, str]:
    return {"email": "dee.rep@acme.example", "displayName": "Dee Rep", "responseStatus": answer}


def test_an_all_day_event_only_colleagues_are_invited_to_is_time_away_not_a_meeting() -> None:
    """Google's default event type, a date for its start, sent to the team: "Ana OOO", a
    "Company holiday" on the team's shared calendar (its organizer, a calendar, is nobody), a
    three-day "Offsite" a customer was invited to and declined. Time away, not an internal meeting
    held. With a customer there it is the meeting: an on-site workshop day, or the day a
    customer invited the rep to."""
    event = fixture_json("google-calendar", "event.confirmed.json")
    ana, bo, cy_declined, _ = event["attendees"]
    day = {"start": {"date": "2026-11-26"}, "end": {"date": "2026-11-27"}}
    team = "c_0a1b2c3d@group.calendar.google.com"
    items = [
        {**event, **day, "id": "ooo", "summary": "Ana OOO", "attendees": [ana, _dee()]},
        {
            **event,
            "start": {"date": "2026-11-26"},
            "end": {"date": "2026-11-28"},
            "id": "holiday",
            "summary": "Company holiday",
            "organizer": {"email": team, "displayName": "Acme team"},
            "attendees": [{**ana, "organizer": False}, _dee("needsAction")],
            "transparency": "transparent",
        },
        {
            **event,
            "start": {"date": "2026-12-01"},
            "end": {"date": "2026-12-04"},
            "id": "offsite",
            "summary": "Offsite",
            "attendees": [ana, _dee(), cy_declined],
        },
        {
            **event,
            **day,
            "id": "workshop",
            "summary": "Globex on-site workshop",
            "attendees": [ana, _dee(), bo],
        },
        {
            **event,
            **day,
            "id": "invited",
            "summary": "Globex partner day",
            "organizer": {"email": bo["email"], "displayName": "Bo Buyer"},
            "attendees": [{**bo, "organizer": True}, {**ana, "organizer": False}],
        },
        {**event, "id": "timed", "summary": "Team sync", "attendees": [ana, _dee()]},
    ]
    result = adapter.parse(make_request(dumps({"items": items})), CONFIG)
    assert [(a.external_id, a.direction, a.outcome, a.duration_seconds) for a in result.activities] == [
        ("workshop", Direction.OUTBOUND, Outcome.SCHEDULED, 86_400),
        ("invited", Direction.INBOUND, Outcome.SCHEDULED, 86_400),
        ("timed", Direction.INTERNAL, Outcome.HELD, 1_800),
    ]
    assert result.ignored == tuple(
        f"items[{n}] {name}: an all-day event only colleagues are invited to: time away or blocked, "
        "not a meeting"
        for n, name in enumerate(("ooo", "holiday", "offsite"))
    )


def test_an_event_on_the_teams_shared_calendar_is_the_meeting_of_the_people_it_invites() -> None:
    """A shared calendar (its address at ``group.calendar.google.com``) organising an event is
    nobody: the "All hands" it sends to colleagues is internal (it was inbound, from an outsider,
    and read as a customer meeting), the demo it books with a buyer outbound."""
    event = fixture_json("google-calendar", "event.confirmed.json")
    ana, bo, _, _ = event["attendees"]
    team = {"email": "c_0a1b2c3d@group.calendar.google.com", "displayName": "Acme team"}
    guests = [{**ana, "organizer": False}, _dee()]
    items = [
        {**event, "id": "all-hands", "organizer": team, "attendees": guests},
        {**event, "id": "demo", "organizer": team, "attendees": [*guests, bo]},
    ]
    result = adapter.parse(make_request(dumps({"items": items})), CONFIG)
    assert [(a.external_id, a.direction) for a in result.activities] == [
        ("all-hands", Direction.INTERNAL),
        ("demo", Direction.OUTBOUND),
    ]


def test_an_event_shown_as_free_only_colleagues_are_invited_to_is_no_meeting() -> None:
    """``transparency`` ``transparent`` ("Show as: free"): the calendar blocks no time. "Ana in
    Berlin" shared with the team is no internal meeting; a customer call shown as free is still
    the meeting with her; a busy (``opaque``) team sync is an internal meeting."""
    event = fixture_json("google-calendar", "event.confirmed.json")
    ana, bo, _, _ = event["attendees"]
    items = [
        {
            **event,
            "id": "fyi",
            "summary": "Ana in Berlin",
            "attendees": [ana, _dee()],
            "transparency": "transparent",
        },
        {**event, "id": "customer", "attendees": [ana, bo], "transparency": "transparent"},
        {**event, "id": "sync", "attendees": [ana, _dee()], "transparency": "opaque"},
    ]
    result = adapter.parse(make_request(dumps({"items": items})), CONFIG)
    assert [(a.external_id, a.direction) for a in result.activities] == [
        ("customer", Direction.OUTBOUND),
        ("sync", Direction.INTERNAL),
    ]
    assert result.ignored == (
        "items[0] fyi: shown as free, only colleagues invited: time the calendar does not block, not a meeting",
    )


ANA = Participant(email="ana.seller@acme.example", name="Ana Seller", role=ParticipantRole.ORGANIZER)
#: Each guest's answer as the event lists it (the organizer's is read only when she declined).
BO = Participant(
    email="bo.buyer@globex.example",
    name="Bo Buyer",
    role=ParticipantRole.ATTENDEE,
    response_status=ResponseStatus.ACCEPTED,
)
CY_DECLINED = Participant(
    email="cy.cfo@globex.example", role=ParticipantRole.ATTENDEE, response_status=ResponseStatus.DECLINED
)


def test_an_organizer_who_declined_her_own_event_is_marked_declined() -> None:
    """Ana organised the meeting and declined it (her own entry, ``organizer: true``): she keeps
    her role, marked declined, so attribution credits Dan who went. Left alone with Bo, the
    meeting is called off: cancelled, listing Ana."""
    event = fixture_json("google-calendar", "event.confirmed.json")
    ana, bo, _, _ = event["attendees"]
    ana_no = {**ana, "responseStatus": "declined"}
    dan = {"email": "dan@acme.example", "responseStatus": "accepted"}
    items = [
        {**event, "id": "went", "attendees": [ana_no, bo, dan]},
        {**event, "id": "alone-with-bo", "attendees": [ana_no, bo]},
    ]
    went, alone = adapter.parse(make_request(dumps({"items": items})), CONFIG).activities
    ana_declined = ANA.model_copy(update={"response_status": ResponseStatus.DECLINED})
    dan_p = Participant(
        email="dan@acme.example", role=ParticipantRole.ATTENDEE, response_status=ResponseStatus.ACCEPTED
    )
    assert (went.outcome, went.participants) == (Outcome.HELD, (ana_declined, BO, dan_p))
    # Called off: who declined is listed, Bo left alone is not (no evidence, nothing counted).
    assert (alone.outcome, alone.participants) == (Outcome.CANCELLED, (ana_declined,))


def test_an_invite_every_guest_declined_is_called_off_not_ignored() -> None:
    """Every guest declined: a later revision of a meeting published while one had accepted.
    Published cancelled, the guests marked declined, so the newer revision replaces the
    published one (ignoring it left that one counted). A declined guest beside a guest who
    comes is left out, as before."""
    event = fixture_json("google-calendar", "event.confirmed.json")
    ana, bo, cy, room = event["attendees"]
    items = [
        {**event, "id": "all-declined", "attendees": [ana, cy, room]},
        {**event, "id": "one-declined", "attendees": [ana, bo, cy]},
    ]
    result = adapter.parse(make_request(dumps({"items": items})), CONFIG)
    off, held = result.activities
    assert (off.outcome, off.direction, off.participants) == (
        Outcome.CANCELLED,
        Direction.OUTBOUND,
        (ANA, CY_DECLINED),
    )
    assert (held.outcome, held.participants) == (Outcome.HELD, (ANA, BO))
    assert result.ignored == ()


def test_a_buyers_invite_every_rep_declined_is_called_off_without_the_buyer() -> None:
    """Bo (Globex) invited Ana, who declined: the meeting is off. The buyer left alone is not
    listed (she would be evidence: a booked and cancelled meeting for the deal's owner)."""
    event = fixture_json("google-calendar", "event.confirmed.json")
    ana, bo, _, _ = event["attendees"]
    invite = {
        **event,
        "organizer": {"email": "bo.buyer@globex.example"},
        "attendees": [{**bo, "organizer": True}, {**ana, "organizer": False, "responseStatus": "declined"}],
    }
    (off,) = adapter.parse(make_request(dumps(invite)), CONFIG).activities
    ana_declined = Participant(
        email="ana.seller@acme.example",
        name="Ana Seller",
        role=ParticipantRole.ATTENDEE,
        response_status=ResponseStatus.DECLINED,
    )
    assert (off.outcome, off.direction, off.participants) == (
        Outcome.CANCELLED,
        Direction.INTERNAL,
        (ana_declined,),
    )


def test_a_deletion_is_marked_with_the_calendar_it_was_seen_in_and_its_revision() -> None:
    """The connector names the mailbox it synced; a stripped event that kept ``updated`` is
    deleted at that revision (a later restore is newer, a stale copy is not)."""
    body = dumps(
        {
            "mailbox": " Ana.Seller@ACME.example ",
            "items": [
                {"id": "evt-one", "status": "cancelled", "updated": "2026-11-25T12:00:00.250Z"},
                {"id": "evt-two", "status": "cancelled"},
            ],
        }
    )
    result = adapter.parse(make_request(body), CONFIG)
    assert result.deletions == (
        SourceDeletion("google-calendar", "evt-one", 1795608000250, "ana.seller@acme.example"),
        SourceDeletion("google-calendar", "evt-two", RECEIVED_MS, "ana.seller@acme.example", on_receipt=True),
    )


def test_a_mailbox_that_is_no_address_is_refused_naming_it() -> None:
    body = dumps({"mailbox": "not an address", "items": [{"id": "evt-one", "status": "cancelled"}]})
    with pytest.raises(WebhookRejected) as refused:
        adapter.parse(make_request(body), CONFIG)
    assert (refused.value.status_code, refused.value.field, refused.value.reason) == (
        422,
        "mailbox",
        "not an email address",
    )


def test_a_deletion_without_updated_is_dated_when_received_on_the_scale_of_updated() -> None:
    """Edited at 10:00, stripped to its id without ``updated`` and received at 10:05: the 10:00
    edit, delivered after, is older than the deletion; one updated at 10:07 (a restore) is newer."""
    received = datetime(2026, 11, 24, 10, 5, tzinfo=UTC)
    stripped = dumps({"items": [{"id": "evt-one", "status": "cancelled"}]})
    (deletion,) = adapter.parse(make_request(stripped, received_at=received), CONFIG).deletions

    def edited(at: str) -> int:
        event = {**fixture_json("google-calendar", "event.confirmed.json"), "id": "evt-one", "updated": at}
        (meeting,) = adapter.parse(make_request(dumps(event)), CONFIG).activities
        return meeting.revision

    assert deletion == SourceDeletion("google-calendar", "evt-one", 1795514700000, on_receipt=True)
    assert edited("2026-11-24T10:00:00.000Z") == 1795514400000
    assert edited("2026-11-24T10:07:00.000Z") == 1795514820000


def test_a_deletion_without_updated_is_dated_when_the_connector_read_its_page() -> None:
    """Read at 10:05, received at 10:10 after the connector's retries: dated 10:05, so the event
    restored at 10:07 (updated 10:07, the next page) is newer than the deletion."""
    received = datetime(2026, 11, 24, 10, 10, tzinfo=UTC)
    stripped = dumps(
        {"observed_at": "2026-11-24T10:05:00+00:00", "items": [{"id": "evt-one", "status": "cancelled"}]}
    )
    (deletion,) = adapter.parse(make_request(stripped, received_at=received), CONFIG).deletions
    assert deletion == SourceDeletion("google-calendar", "evt-one", 1795514700000, on_receipt=True)


def test_one_event_read_in_two_calendars_is_one_activity_each_page_naming_its_calendar() -> None:
    """Google gives an event one id in the organizer's and each attendee's calendar: both pages
    are the same activity, so a page tells which calendar it was read in (``read_in``), and a
    deletion read in a guest's calendar is told apart from the organizer's (``seen_in``)."""
    event = fixture_json("google-calendar", "event.confirmed.json")
    pages = [
        adapter.parse(make_request(dumps({"mailbox": mailbox, "items": [event]})), CONFIG)
        for mailbox in ("Ana.Seller@acme.example", "bo.buyer@globex.example")
    ]
    assert [(p.read_in, [a.external_id for a in p.activities]) for p in pages] == [
        ("ana.seller@acme.example", [event["id"]]),
        ("bo.buyer@globex.example", [event["id"]]),
    ]
    unnamed = adapter.parse(make_request(dumps({"items": [event]})), CONFIG)
    assert unnamed.read_in is None


HOLD_IGNORED = "a hold or placeholder only colleagues are invited to: time blocked for a meeting, not one"


def test_a_hold_only_colleagues_are_invited_to_is_no_meeting() -> None:
    """A rep blocks the slot she means to offer the customer and invites the SE: "HOLD: Globex
    demo", "Hold \u2013 Globex QBR (tentative)", "Placeholder: Globex", busy, with hours. Time blocked
    for a meeting, not an internal one held; so is one the customer was invited to and declined
    (who declined attends nothing). A hold the customer attends is the meeting; the colleagues'
    "Holding company review" is an internal meeting (its title labels no hold)."""
    event = fixture_json("google-calendar", "event.confirmed.json")
    ana, bo, cy_declined, _ = event["attendees"]
    items = [
        {**event, "id": "hold", "summary": "HOLD: Globex demo", "attendees": [ana, _dee()]},
        {**event, "id": "qbr", "summary": "Hold \u2013 Globex QBR (tentative)", "attendees": [ana, _dee()]},
        {**event, "id": "ph", "summary": "Placeholder: Globex", "attendees": [ana, _dee("needsAction")]},
        {**event, "id": "declined", "summary": "Globex demo [HOLD]", "attendees": [ana, _dee(), cy_declined]},
        {**event, "id": "with-bo", "summary": "HOLD: Globex demo", "attendees": [ana, _dee(), bo]},
        {**event, "id": "holding", "summary": "Holding company review", "attendees": [ana, _dee()]},
        {**event, "id": "cfo", "summary": "Holding company review with Globex CFO", "attendees": [ana, bo]},
    ]
    result = adapter.parse(make_request(dumps({"items": items})), CONFIG)
    assert [(a.external_id, a.direction, a.outcome) for a in result.activities] == [
        ("with-bo", Direction.OUTBOUND, Outcome.HELD),
        ("holding", Direction.INTERNAL, Outcome.HELD),
        ("cfo", Direction.OUTBOUND, Outcome.HELD),
    ]
    assert result.ignored == tuple(
        f"items[{n}] {name}: {HOLD_IGNORED}" for n, name in enumerate(("hold", "qbr", "ph", "declined"))
    )


def test_a_hold_replaced_by_the_customers_invitation_is_the_meeting_from_that_revision() -> None:
    """The rep edits her hold into the real invitation: same event id, the title changed and the
    customer added, a newer ``updated``. The hold's revision is no activity; the edit's is the
    meeting, under the event's id, at its own revision."""
    event = fixture_json("google-calendar", "event.confirmed.json")
    ana, bo, _, _ = event["attendees"]
    hold = {
        **event,
        "id": "slot",
        "summary": "HOLD: Globex demo",
        "attendees": [ana, _dee()],
        "updated": "2026-11-10T09:00:00.000Z",
    }
    invitation = {
        **hold,
        "summary": "Globex demo",
        "attendees": [ana, _dee(), bo],
        "updated": "2026-11-12T09:00:00.000Z",
    }
    first = adapter.parse(make_request(dumps(hold)), CONFIG)
    assert (first.activities, first.ignored) == ((), (f"body slot: {HOLD_IGNORED}",))
    # Kept as a time block at its revision: were it a later state of a meeting published (the
    # customer declined), ingest would retract that meeting.
    hold_revision = int(datetime(2026, 11, 10, 9, tzinfo=UTC).timestamp() * 1000)
    assert first.time_blocks == (TimeBlock("google-calendar", "slot", hold_revision, HOLD_IGNORED),)
    (meeting,) = adapter.parse(make_request(dumps(invitation)), CONFIG).activities
    assert (meeting.external_id, meeting.direction, meeting.subject, meeting.revision) == (
        "slot",
        Direction.OUTBOUND,
        "Globex demo",
        int(datetime(2026, 11, 12, 9, tzinfo=UTC).timestamp() * 1000),
    )
