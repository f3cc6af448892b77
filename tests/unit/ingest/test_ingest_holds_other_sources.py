"""Calendar holds from the sources other than Google and Outlook that carry a meeting's title.

The rule is one (``normalize.colleagues_only_hold``: ``libs.common.calendar_holds`` on the title,
``a_customer_attends`` on the people): HubSpot's meetings and canonical meetings posted to
``POST /v1/events`` apply it. Calendly's and Zoom's meetings do not: a Calendly event is a booking
someone made through a scheduling link (its name is the event type's), and Zoom's is emitted only
once two people joined it, a meeting held whatever its topic said it was for.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from libs.common.contracts.activities import (
    ActivityIn,
    ActivityKind,
    Direction,
    Outcome,
    Participant,
    ParticipantRole,
    ResponseStatus,
)
from libs.common.contracts.activities_fast import decode_activity_batch
from services.ingest.domain.ignored import OLDER_THAN_A_TIME_BLOCK
from services.ingest.domain.normalize import HOLD_TIME, colleagues_only_hold
from services.ingest.domain.webhook_types import TimeBlock
from services.ingest.domain.webhooks import ADAPTERS
from services.ingest.handlers import holds_apart, superseded_by_blocks

from .ingest_webhook_helpers import CONFIG, dumps, fixture_json, make_request

DOMAINS = frozenset({"acme.example"})
ANA = Participant(email="ana@acme.example", role=ParticipantRole.ORGANIZER)
SE = Participant(email="se@acme.example", role=ParticipantRole.ATTENDEE)
DANA = Participant(email="dana@globex.example", role=ParticipantRole.ATTENDEE)
CALLER = Participant(phone="+14155550199", role=ParticipantRole.ATTENDEE)
ROOM = Participant(email="acme.example_room1@resource.calendar.google.com", role=ParticipantRole.ATTENDEE)


@pytest.mark.parametrize(
    ("title", "people", "expected"),
    [
        ("HOLD: Globex demo", (ANA, SE), HOLD_TIME),
        ("Placeholder: Globex", (ANA,), HOLD_TIME),
        # A room is nobody; a customer who declined attends nothing.
        ("Globex demo - HOLD", (ANA, SE, ROOM), HOLD_TIME),
        (
            "HOLD: Globex demo",
            (ANA, SE, DANA.model_copy(update={"response_status": ResponseStatus.DECLINED})),
            HOLD_TIME,
        ),
        # A hold a customer attends is the meeting with her.
        ("HOLD: Globex demo", (ANA, SE, DANA), None),
        # Someone known by a number alone (dialled in, a contact with no address) is outside.
        ("HOLD: Globex pricing call", (ANA, SE, CALLER), None),
        (
            "HOLD: Globex pricing call",
            (ANA, SE, CALLER.model_copy(update={"response_status": ResponseStatus.DECLINED})),
            HOLD_TIME,
        ),
        # Titles labelling no hold, and none.
        ("Holding company review", (ANA, SE), None),
        ("Globex deal on hold", (ANA, SE), None),
        (None, (ANA, SE), None),
    ],
)
def test_a_hold_only_colleagues_attend_is_time_blocked(
    title: str | None, people: tuple[Participant, ...], expected: str | None
) -> None:
    assert colleagues_only_hold(title, people, DOMAINS) == expected


def _canonical(external_id: str, subject: str | None, *people: Participant, **fields: Any) -> dict[str, Any]:
    return {
        "source": "calendar-export",
        "external_id": external_id,
        "kind": "meeting",
        "direction": "internal",
        "outcome": "held",
        "occurred_at": "2026-11-20T18:00:00Z",
        "participants": [p.model_dump(mode="json", exclude_none=True) for p in people],
        **({"subject": subject} if subject is not None else {}),
        **fields,
    }


def test_a_canonical_batch_sets_its_holds_apart_as_time_blocks_by_index() -> None:
    """The batch path's structs and the contract's models alike: a call titled "Hold" is a call,
    a hold the customer attends is the meeting, the colleagues' hold is time blocked at its revision."""
    call = {
        "source": "dialer",
        "external_id": "c1",
        "kind": "call",
        "direction": "outbound",
        "outcome": "connected",
        "occurred_at": "2026-11-20T17:00:00Z",
        "participants": [
            {"email": "ana@acme.example", "role": "caller"},
            {"phone": "+14155550100", "role": "callee"},
        ],
        "subject": "HOLD: Globex",
    }
    batch = [
        call,
        _canonical("m-hold", "HOLD: Globex demo", ANA, SE, revision=7),
        _canonical("m-dana", "HOLD: Globex demo", ANA, SE, DANA),
        _canonical("m-review", "Holding company review", ANA, SE),
        # A customer on the phone, or a contact the client files it with: the meeting with them.
        _canonical("m-caller", "HOLD: Globex pricing call", ANA, SE, CALLER),
        _canonical("m-filed", "HOLD: Globex pricing call", ANA, SE, crm={"contact_ids": ["con-dana"]}),
    ]
    structs = decode_activity_batch(dumps({"activities": batch}))
    assert structs is not None
    models = [ActivityIn.model_validate(item) for item in batch]
    for activities in (structs, models):
        kept, blocks, ignored = holds_apart(activities, DOMAINS)
        assert [a.external_id for a in kept] == ["c1", "m-dana", "m-review", "m-caller", "m-filed"]
        assert blocks == [TimeBlock("calendar-export", "m-hold", 7, HOLD_TIME)]
        assert ignored == [f"activities[1]: {HOLD_TIME}"]
        assert [line.reason for line in ignored] == ["time_block"]
    # Nothing set apart: the batch itself, not a copy.
    plain = models[:1] + models[2:]
    assert holds_apart(plain, DOMAINS) == (plain, [], [])


def _hubspot_meeting(title: str, contact_email: str | None) -> list[dict[str, Any]]:
    """The fixture's meeting titled ``title``, with its contact at ``contact_email`` (None: none)."""
    meeting, contact, owner = fixture_json("hubspot", "meetings.json")
    meeting = {**meeting, "properties": {**meeting["properties"], "hs_meeting_title": title}}
    if contact_email is None:
        meeting = {
            **meeting,
            "associations": {k: v for k, v in meeting["associations"].items() if k != "contacts"},
        }
        return [meeting, owner]
    return [meeting, {**contact, "properties": {**contact["properties"], "email": contact_email}}, owner]


HUBSPOT_REVISION = int(datetime(2026, 11, 23, 17, 5, tzinfo=UTC).timestamp() * 1000)


@pytest.mark.parametrize("contact", [None, "sam.se@acme.example"])
def test_a_hubspot_hold_with_no_customer_is_time_blocked(contact: str | None) -> None:
    """Ana's HubSpot meeting "HOLD: Globex deep dive" with no contact, or with a colleague kept as
    a contact: a time block at its revision (retracting the meeting an earlier revision was)."""
    result = ADAPTERS["hubspot"].parse(
        make_request(dumps(_hubspot_meeting("HOLD: Globex deep dive", contact))), CONFIG
    )
    assert result.activities == ()
    assert result.time_blocks == (TimeBlock("hubspot", "40140001", HUBSPOT_REVISION, HOLD_TIME),)
    assert result.ignored == (f"[0] meetings/40140001: {HOLD_TIME}",)


def _phone_only_contact(body: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The meeting with its contact known by a phone alone."""
    meeting, contact, owner = body
    properties = {k: v for k, v in contact["properties"].items() if k != "email"}
    return [meeting, {**contact, "properties": {**properties, "phone": "+1 415 555 0199"}}, owner]


def _contact_not_in_batch(body: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The meeting naming its contact, the contact neither in the batch nor held."""
    meeting, _, owner = body
    return [meeting, owner]


@pytest.mark.parametrize(
    ("shape", "direction"),
    [
        (lambda body: body, Direction.OUTBOUND),
        # The direction is read from addresses (none outside here); attribution decides the
        # meeting by the contact it is filed with.
        (_phone_only_contact, Direction.INTERNAL),
        (_contact_not_in_batch, Direction.INTERNAL),
    ],
    ids=["by-address", "phone-only", "not-in-batch"],
)
def test_a_hubspot_hold_its_customer_attends_is_the_meeting(shape: Any, direction: Direction) -> None:
    """A contact not known to be a colleague is a customer (docs/attribution.md: a HubSpot meeting
    is no meeting only with no contact, or only colleagues kept as contacts)."""
    body = shape(_hubspot_meeting("HOLD: Globex deep dive", "bo.buyer@globex.example"))
    result = ADAPTERS["hubspot"].parse(make_request(dumps(body)), CONFIG)
    (meeting,) = result.activities
    assert (meeting.kind, meeting.direction, meeting.outcome) == (
        ActivityKind.MEETING,
        direction,
        Outcome.HELD,
    )
    assert (meeting.subject, result.time_blocks, result.ignored) == ("HOLD: Globex deep dive", (), ())
    assert meeting.crm.contact_ids == ("901",)


def test_a_meeting_a_hold_in_the_same_batch_supersedes_is_not_kept() -> None:
    """The workshop at revision 1 (Dana accepted) and at revision 2 (a hold Dana declined) in one
    POST: revision 2 is the object's state, no meeting; revision 1 goes with it. A hold at a lower
    revision than the meeting, or another object's, supersedes nothing."""
    declined_dana = DANA.model_copy(update={"response_status": ResponseStatus.DECLINED})
    batch = [
        _canonical("workshop", "Globex workshop", ANA, SE, DANA, revision=1),
        _canonical("workshop", "HOLD: Globex workshop", ANA, SE, declined_dana, revision=2),
        _canonical("review", "Globex review", ANA, SE, DANA, revision=5),
        _canonical("review", "HOLD: Globex review", ANA, SE, revision=4),
        _canonical("other", "Globex demo", ANA, SE, DANA, revision=1),
    ]
    structs = decode_activity_batch(dumps({"activities": batch}))
    assert structs is not None
    models = [ActivityIn.model_validate(item) for item in batch]
    for activities in (structs, models):
        kept, blocks, ignored = holds_apart(activities, DOMAINS)
        assert [(a.external_id, a.revision) for a in kept] == [("review", 5), ("other", 1)]
        assert blocks == [
            TimeBlock("calendar-export", "workshop", 2, HOLD_TIME),
            TimeBlock("calendar-export", "review", 4, HOLD_TIME),
        ]
        assert ignored == [
            f"activities[0]: {OLDER_THAN_A_TIME_BLOCK}",
            f"activities[1]: {HOLD_TIME}",
            f"activities[3]: {HOLD_TIME}",
        ]
        assert [line.reason for line in ignored] == ["older_state", "time_block", "time_block"]


def test_a_deliverys_meeting_its_newer_hold_supersedes_is_set_apart() -> None:
    """A delivery holding a meeting's version and a newer one of it that is a hold:
    the meeting is set apart (listed as ignored by the pipeline); another object's is kept."""
    meeting = ActivityIn.model_validate(_canonical("40140001", "Globex deep dive", ANA, DANA, revision=1))
    other = ActivityIn.model_validate(_canonical("40140002", "Globex demo", ANA, DANA, revision=1))
    blocks = [TimeBlock("calendar-export", "40140001", 2, HOLD_TIME)]
    assert superseded_by_blocks([meeting, other], blocks) == ([other], [meeting])
    assert superseded_by_blocks([other], blocks) == ([other], [])
    assert superseded_by_blocks([meeting], []) == ([meeting], [])
