from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from libs.common.contracts.activities import ActivityIn, Participant, ParticipantRole
from services.ingest.domain.meetings import meeting_keys, rounded_start

INTERNAL = frozenset({"acme.example"})


def meeting(start: str, emails: list[str], ical_uid: str | None = None, kind: str = "meeting") -> ActivityIn:
    return ActivityIn.model_validate(
        {
            "source": "test",
            "external_id": "m-1",
            "kind": kind,
            "direction": "outbound",
            "outcome": "held" if kind == "meeting" else "sent",
            "occurred_at": start,
            "ical_uid": ical_uid,
            "participants": [
                Participant(
                    email=e, role=ParticipantRole.ATTENDEE if kind == "meeting" else ParticipantRole.TO
                )
                for e in emails
            ],
        }
    )


def slot(start: str, people: str) -> str:
    return f"slot:{start}:{hashlib.sha256(people.encode()).hexdigest()}"


def test_start_rounds_to_the_nearest_quarter_hour() -> None:
    assert rounded_start(datetime(2026, 11, 24, 14, 7, 29, tzinfo=UTC)) == datetime(
        2026, 11, 24, 14, 0, tzinfo=UTC
    )
    assert rounded_start(datetime(2026, 11, 24, 14, 7, 30, tzinfo=UTC)) == datetime(
        2026, 11, 24, 14, 15, tzinfo=UTC
    )


def test_keys_are_the_ical_uid_then_the_slot_of_external_people() -> None:
    keys = meeting_keys(
        meeting(
            "2026-11-24T15:02:00+01:00",
            ["ana@acme.example", "Bo@Globex.example", "cy@globex.example"],
            "uid-1",
        ),
        INTERNAL,
    )
    assert keys == (
        "ical:uid-1:2026-11-24",
        slot("2026-11-24T14:00:00+00:00", "bo@globex.example,cy@globex.example"),
    )


def test_each_instance_of_a_recurring_event_has_its_own_ical_key_on_the_day_it_happens() -> None:
    week = [
        meeting(start, ["bo@globex.example"], "series-1")
        for start in ("2026-11-24T14:00:00Z", "2026-12-01T14:00:00Z")
    ]
    assert [meeting_keys(m, INTERNAL)[0] for m in week] == [
        "ical:series-1:2026-11-24",
        "ical:series-1:2026-12-01",
    ]
    # The same instance moved to later that day (its start rounded as the slot's: 23:53 is the next day).
    moved = meeting("2026-11-24T17:30:00Z", ["bo@globex.example"], "series-1")
    late = meeting("2026-11-24T23:53:00Z", ["bo@globex.example"], "series-1")
    assert meeting_keys(moved, INTERNAL)[0] == "ical:series-1:2026-11-24"
    assert meeting_keys(late, INTERNAL)[0] == "ical:series-1:2026-11-25"


def test_the_same_people_at_the_same_time_share_a_key_whoever_hosts() -> None:
    zoom = meeting("2026-11-24T14:03:00Z", ["ana@acme.example", "bo@globex.example"])
    calendly = meeting("2026-11-24T14:00:00Z", ["sam@eu.acme.example", "bo@globex.example"])
    assert meeting_keys(zoom, INTERNAL) == meeting_keys(calendly, INTERNAL)


def test_internal_meetings_key_on_everyone_and_other_kinds_have_no_key() -> None:
    internal = meeting("2026-11-24T14:00:00Z", ["sam@acme.example", "ana@acme.example"])
    assert meeting_keys(internal, INTERNAL) == (
        slot("2026-11-24T14:00:00+00:00", "ana@acme.example,sam@acme.example"),
    )
    email = meeting("2026-11-24T14:00:00Z", ["ana@acme.example", "bo@globex.example"], kind="email")
    assert meeting_keys(email, INTERNAL) == ()


def test_the_internal_domains_key_alike_in_any_collection() -> None:
    # A frozenset (the tenant's settings) is read as it is; any other collection as a tuple.
    held = meeting("2026-11-24T14:07:31.5Z", ["sam@EU.acme.example", "bo@globex.example", "ana@acme.example"])
    keys = (slot("2026-11-24T14:15:00+00:00", "bo@globex.example"),)
    for domains in (INTERNAL, ("acme.example",), ["ACME.example"], {"acme.example": 1}.keys()):
        assert meeting_keys(held, domains) == keys


def test_a_uid_too_long_for_the_keys_index_is_keyed_by_its_digest_and_shorter_ones_as_sent() -> None:
    four_bytes = "".join(chr(0x20000 + i) for i in range(1024))  # 4,096 bytes of UTF-8
    [hashed, _] = meeting_keys(meeting("2026-11-24T14:00:00Z", ["bo@globex.example"], four_bytes), INTERNAL)
    assert hashed == f"ical:sha256={hashlib.sha256(four_bytes.encode()).hexdigest()}:2026-11-24"
    # Up to 2,048 bytes a UID keeps the key it always had: every ASCII UID the contract takes.
    for kept in ("x" * 1024, four_bytes[:512]):
        assert meeting_keys(meeting("2026-11-24T14:00:00Z", ["bo@globex.example"], kept), INTERNAL)[0] == (
            f"ical:{kept}:2026-11-24"
        )
    assert meeting_keys(meeting("2026-11-24T14:00:00Z", ["bo@globex.example"], four_bytes[:513]), INTERNAL)[
        0
    ].startswith("ical:sha256=")
