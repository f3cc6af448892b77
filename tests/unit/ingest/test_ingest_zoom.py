from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict

from libs.common.contracts.activities import (
    ActivityIn,
    ActivityKind,
    Direction,
    Outcome,
    Participant,
    ParticipantRole,
)
from services.ingest.domain.webhooks import (
    ADAPTERS,
    WebhookRejected,
    ZoomEvent,
    ZoomMeetingState,
    fold_zoom_meeting,
)
from services.ingest.pipeline import ZOOM_FOLD

from .ingest_webhook_helpers import (
    CONFIG,
    NOW_SECONDS,
    dumps,
    fixture,
    fixture_json,
    hmac_sha256,
    make_request,
    zoom_headers,
)

SECRET = "zoom-secret-token-current"
OLD_SECRET = "zoom-secret-token-previous"
HOST_ID = "z8yCxTTTTSiw02QgCAp8uQ"
adapter = ADAPTERS["zoom"]


def event_from(payload: dict[str, Any]) -> ZoomEvent:
    body = dumps(payload)
    request = make_request(body, zoom_headers(body, SECRET))
    adapter.verify(request, [SECRET], CONFIG)
    (event,) = adapter.parse(request, CONFIG).zoom_events
    return event


def host_joined() -> dict[str, Any]:
    payload: dict[str, Any] = fixture_json("zoom", "meeting.participant_joined.json")
    payload["event_ts"] = 1795528810000
    payload["payload"]["object"]["participant"].update(
        id=HOST_ID,
        user_name="Ana Seller",
        participant_uuid="HOSTPARTICIPANTUUID",
        join_time="2026-11-24T14:00:10Z",
        email="Ana.Seller@acme.example",
    )
    return payload


def fold_all(payloads: list[dict[str, Any]]) -> tuple[ZoomMeetingState | None, list[ActivityIn]]:
    state: ZoomMeetingState | None = None
    emitted: list[ActivityIn] = []
    for payload in payloads:
        state, activity = fold_zoom_meeting(state, event_from(payload))
        if activity is not None:
            emitted.append(activity)
    return state, emitted


def test_url_validation_answers_with_the_encrypted_token() -> None:
    body = fixture("zoom", "endpoint.url_validation.json")
    request = make_request(body, zoom_headers(body, SECRET))
    adapter.verify(request, [SECRET], CONFIG)

    result = adapter.parse(request, CONFIG, [SECRET])

    assert result.handshake is not None
    assert result.handshake.status_code == 200
    assert result.handshake.media_type == "application/json"
    assert json.loads(result.handshake.body) == {
        "plainToken": "qgg8vlvZRS6UYooatFL8Aw",
        "encryptedToken": hmac_sha256(SECRET.encode(), b"qgg8vlvZRS6UYooatFL8Aw").hex(),
    }


def test_url_validation_during_rotation_uses_the_secret_that_signed() -> None:
    body = fixture("zoom", "endpoint.url_validation.json")
    request = make_request(body, zoom_headers(body, OLD_SECRET))
    adapter.verify(request, [SECRET, OLD_SECRET], CONFIG)
    result = adapter.parse(request, CONFIG, [SECRET, OLD_SECRET])
    assert result.handshake is not None
    expected = hmac_sha256(OLD_SECRET.encode(), b"qgg8vlvZRS6UYooatFL8Aw").hex()
    assert json.loads(result.handshake.body)["encryptedToken"] == expected


def test_url_validation_without_secrets_is_401() -> None:
    body = fixture("zoom", "endpoint.url_validation.json")
    with pytest.raises(WebhookRejected) as caught:
        adapter.parse(make_request(body), CONFIG)
    assert caught.value.status_code == 401


def test_join_event_is_parsed_for_the_reducer() -> None:
    event = event_from(fixture_json("zoom", "meeting.participant_joined.json"))
    assert event.event_type == "meeting.participant_joined"
    assert event.meeting_uuid == "4444AAAiAAAAAiAiAiiAii=="
    assert event.event_ts == 1795528920000
    assert event.participant is not None
    assert event.participant.key == "55555AAAiAAAAAiAiAiiAii"
    assert event.participant.email == "bo.buyer@globex.example"
    assert event.participant.joined_at == datetime(2026, 11, 24, 14, 2, tzinfo=UTC)
    assert event.internal_domains == ("acme.example",)


def test_fold_merges_joins_into_the_ended_meeting() -> None:
    state, emitted = fold_all(
        [
            fixture_json("zoom", "meeting.started.json"),
            host_joined(),
            fixture_json("zoom", "meeting.participant_joined.json"),
            fixture_json("zoom", "meeting.participant_left.json"),
            fixture_json("zoom", "meeting.ended.json"),
        ]
    )
    assert len(emitted) == 1
    meeting = emitted[0]
    assert meeting.source == "zoom"
    assert meeting.external_id == "4444AAAiAAAAAiAiAiiAii=="
    assert meeting.kind is ActivityKind.MEETING
    assert meeting.outcome is Outcome.HELD
    assert meeting.direction is Direction.OUTBOUND
    assert meeting.occurred_at == datetime(2026, 11, 24, 14, 0, tzinfo=UTC)
    assert meeting.duration_seconds == 45 * 60
    assert meeting.subject == "Globex renewal review"
    assert meeting.revision == 1795531500000
    assert meeting.participants == (
        Participant(email="ana.seller@acme.example", name="Ana Seller", role=ParticipantRole.ORGANIZER),
        Participant(email="bo.buyer@globex.example", name="Bo Buyer", role=ParticipantRole.ATTENDEE),
    )
    assert state is not None
    assert state.ended
    assert state.emitted_revision == 1795531500000
    (guest,) = [p for p in state.participants if p.key == "55555AAAiAAAAAiAiAiiAii"]
    assert guest.left_at == datetime(2026, 11, 24, 14, 44, tzinfo=UTC)


def test_state_round_trips_through_json() -> None:
    state, _ = fold_all([fixture_json("zoom", "meeting.started.json"), host_joined()])
    assert state is not None
    assert ZoomMeetingState.model_validate_json(state.model_dump_json()) == state


def _colleague_joined() -> dict[str, Any]:
    """Sam, the host's colleague, joins (event_ts before meeting.ended's)."""
    colleague = host_joined()
    colleague["payload"]["object"]["participant"].update(
        id="", participant_uuid="COLLEAGUE", email="sam.se@acme.example", user_name="Sam SE"
    )
    return colleague


def test_late_join_after_the_end_emits_again_with_a_higher_revision() -> None:
    state, emitted = fold_all(
        [
            host_joined(),
            _colleague_joined(),
            fixture_json("zoom", "meeting.ended.json"),
            fixture_json("zoom", "meeting.participant_joined.json"),
        ]
    )
    assert [len(a.participants) for a in emitted] == [2, 3]
    # The late join's own event_ts is older than meeting.ended's, yet the revision still goes up.
    assert emitted[1].revision == emitted[0].revision + 1
    assert state is not None
    assert state.emitted_revision == emitted[1].revision


def test_a_host_alone_in_her_meeting_is_no_meeting_until_someone_joins() -> None:
    """Nobody came (or she tested her room): nothing, as a calendar event only its organizer
    attends; a join reported after the end makes it the meeting it was."""
    state, emitted = fold_all([host_joined(), fixture_json("zoom", "meeting.ended.json")])
    assert emitted == []
    assert state is not None
    assert state.ended
    assert state.emitted_revision == 0
    state, late = fold_zoom_meeting(
        state, event_from(fixture_json("zoom", "meeting.participant_joined.json"))
    )
    assert late is not None
    assert [p.email for p in late.participants] == ["ana.seller@acme.example", "bo.buyer@globex.example"]
    assert late.revision == 1795528920000


def test_a_host_with_guests_zoom_gives_no_email_for_is_still_a_meeting() -> None:
    """Guests who joined by the link without signing in carry no email: each join record is a
    person there, so the host and one such guest are a meeting (listing the host only, internal
    as its people with an address are)."""
    guest = host_joined()
    guest["payload"]["object"]["participant"].update(
        id="", participant_uuid="GUEST-1", email="", user_name="iPhone"
    )
    _, emitted = fold_all([host_joined(), guest, fixture_json("zoom", "meeting.ended.json")])
    (meeting,) = emitted
    assert ([p.email for p in meeting.participants], meeting.direction) == (
        ["ana.seller@acme.example"],
        Direction.INTERNAL,
    )


def test_replayed_event_changes_nothing_and_emits_nothing() -> None:
    state, _ = fold_all([host_joined(), fixture_json("zoom", "meeting.ended.json")])
    again, activity = fold_zoom_meeting(state, event_from(fixture_json("zoom", "meeting.ended.json")))
    assert activity is None
    assert again == state


def test_meeting_with_only_internal_people_is_internal() -> None:
    _, emitted = fold_all([host_joined(), _colleague_joined(), fixture_json("zoom", "meeting.ended.json")])
    assert emitted[0].direction is Direction.INTERNAL


def test_ended_meeting_without_any_email_emits_nothing() -> None:
    state, emitted = fold_all([fixture_json("zoom", "meeting.ended.json")])
    assert emitted == []
    assert state is not None
    assert state.ended


def test_other_events_are_ignored() -> None:
    body = dumps({"event": "recording.completed", "event_ts": 1, "payload": {}})
    result = adapter.parse(make_request(body), CONFIG)
    assert result.ignored == ("recording.completed: not a meeting lifecycle event",)


def test_bad_signature_is_401() -> None:
    body = fixture("zoom", "meeting.ended.json")
    with pytest.raises(WebhookRejected) as caught:
        adapter.verify(make_request(body, zoom_headers(body, "other")), [SECRET], CONFIG)
    assert (caught.value.status_code, caught.value.field) == (401, "x-zm-signature")


def test_missing_signature_is_401() -> None:
    body = fixture("zoom", "meeting.ended.json")
    headers = zoom_headers(body, SECRET)
    del headers["x-zm-signature"]
    with pytest.raises(WebhookRejected) as caught:
        adapter.verify(make_request(body, headers), [SECRET], CONFIG)
    assert (caught.value.status_code, caught.value.field) == (401, "x-zm-signature")


def test_expired_timestamp_is_401() -> None:
    body = fixture("zoom", "meeting.ended.json")
    headers = zoom_headers(body, SECRET, timestamp=NOW_SECONDS - 301)
    with pytest.raises(WebhookRejected) as caught:
        adapter.verify(make_request(body, headers), [SECRET], CONFIG)
    assert (caught.value.status_code, caught.value.field) == (401, "x-zm-request-timestamp")
    adapter.verify(make_request(body, zoom_headers(body, SECRET, NOW_SECONDS - 299)), [SECRET], CONFIG)


def test_two_secrets_are_valid_during_rotation() -> None:
    body = fixture("zoom", "meeting.ended.json")
    for secret in (SECRET, OLD_SECRET):
        adapter.verify(make_request(body, zoom_headers(body, secret)), [SECRET, OLD_SECRET], CONFIG)


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"event": "meeting.ended", "event_ts": 1, "payload": {"object": {}}}, "payload.object.uuid"),
        ({"event": "meeting.ended", "payload": {"object": {"uuid": "u"}}}, "event_ts"),
        (
            {
                "event": "meeting.ended",
                "event_ts": 1,
                "payload": {"object": {"uuid": "u", "start_time": "soon"}},
            },
            "payload.object.start_time",
        ),
        (
            {"event": "meeting.participant_joined", "event_ts": 1, "payload": {"object": {"uuid": "u"}}},
            "payload.object.participant",
        ),
        ({"event": "endpoint.url_validation", "payload": {}}, "payload.plainToken"),
    ],
)
def test_malformed_bodies_name_the_field(payload: dict[str, Any], field: str) -> None:
    with pytest.raises(WebhookRejected) as caught:
        adapter.parse(make_request(dumps(payload)), CONFIG, [SECRET])
    assert (caught.value.status_code, caught.value.field) == (422, field)


def _dialled_in(uuid: str, number: str | None, user_name: str = "14155550100") -> dict[str, Any]:
    """A participant who joined by phone: no email, the number Zoom gives (``phone_number``)."""
    caller = host_joined()
    caller["payload"]["object"]["participant"].update(
        id="", user_id="16778300", participant_uuid=uuid, email="", user_name=user_name
    )
    if number is not None:
        caller["payload"]["object"]["participant"]["phone_number"] = number
    return caller


def test_a_participant_who_dialled_in_is_listed_by_the_number_she_called_from() -> None:
    """Gil dials in from his desk: Zoom's join event carries ``phone_number`` and no email. He is
    listed by that number in E.164 (read in the tenant's default region when it has no ``+``), for
    attribution to match his CRM phone; the meeting is outbound (a caller is someone the domains
    do not place), not the host's internal meeting."""
    _, emitted = fold_all(
        [host_joined(), _dialled_in("DIAL-1", "(212) 555-0198"), fixture_json("zoom", "meeting.ended.json")]
    )
    (meeting,) = emitted
    assert meeting.participants == (
        Participant(email="ana.seller@acme.example", name="Ana Seller", role=ParticipantRole.ORGANIZER),
        Participant(phone="+12125550198", name="14155550100", role=ParticipantRole.ATTENDEE),
    )
    assert meeting.direction is Direction.OUTBOUND


@pytest.mark.parametrize(
    "number",
    [
        None,  # Zoom gave none
        "",
        "+1 212****198",  # the account masks dial-in numbers: digits are missing
        "Restricted",  # the caller withheld it
        "not a number",
    ],
)
def test_a_dial_in_without_a_usable_number_is_a_person_there_whom_nothing_identifies(
    number: str | None,
) -> None:
    """No number, a masked or withheld one, or junk: nothing is guessed. The caller still counts as
    someone who came (the host and the caller are a meeting), listed by nobody, as a guest Zoom
    gives no email for; the delivery is not refused."""
    state, emitted = fold_all(
        [host_joined(), _dialled_in("DIAL-2", number), fixture_json("zoom", "meeting.ended.json")]
    )
    (meeting,) = emitted
    assert ([p.email for p in meeting.participants], meeting.direction) == (
        ["ana.seller@acme.example"],
        Direction.INTERNAL,
    )
    assert state is not None
    assert [p.phone for p in state.participants] == [None, None]


def test_a_dial_in_number_read_on_the_join_is_kept_through_the_leave() -> None:
    """The leave event of the same participant (``participant_uuid``) carries no number: the join's
    is kept, and the state stored between deliveries round-trips it."""
    left = _dialled_in("DIAL-3", None)
    left["event"] = "meeting.participant_left"
    left["payload"]["object"]["participant"]["leave_time"] = "2026-11-24T14:30:00Z"
    state, emitted = fold_all(
        [
            host_joined(),
            _dialled_in("DIAL-3", "+44 20 7946 0958"),
            left,
            fixture_json("zoom", "meeting.ended.json"),
        ]
    )
    assert [p.phone for p in emitted[0].participants] == [None, "+442079460958"]
    assert state is not None
    assert ZoomMeetingState.model_validate_json(state.model_dump_json()) == state


class _PreviousParticipant(BaseModel):
    """``ZoomParticipant`` of the release before dial-in numbers, as it reads a stored state."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str
    name: str | None = None
    email: str | None = None
    user_id: str | None = None
    joined_at: datetime | None = None
    left_at: datetime | None = None


class _PreviousState(BaseModel):
    """``ZoomMeetingState`` of the release before dial-in numbers."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    meeting_uuid: str
    meeting_id: str | None = None
    topic: str | None = None
    host_id: str | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    participants: tuple[_PreviousParticipant, ...] = ()
    ended: bool = False
    emitted_revision: int = 0
    internal_domains: tuple[str, ...] = ()
    excluded: bool = False


def test_a_stored_meeting_names_phone_only_for_who_dialled_in() -> None:
    """The previous release refuses unknown keys in a stored meeting state: a meeting nobody
    dialled into is stored byte for byte as it stored it, so either reads what the other wrote
    while a deploy rolls or after a rollback. Before, every participant carried ``"phone": null``
    and the previous release failed every later event of the meeting."""
    payloads = [fixture_json("zoom", "meeting.started.json"), host_joined(), _colleague_joined()]
    state, _ = fold_all(payloads)
    assert state is not None
    stored: dict[str, Any] | None = None
    for payload in payloads:
        written, _ = ZOOM_FOLD.fold(stored, event_from(payload))
        assert written is not None
        stored = json.loads(written)
    assert written == state.model_dump_json()
    assert "phone" not in written
    previous = _PreviousState.model_validate_json(written)
    assert previous.model_dump_json() == written
    assert ZoomMeetingState.model_validate_json(previous.model_dump_json()) == state
    dialled, _ = fold_all([host_joined(), _dialled_in("DIAL-4", "(212) 555-0198")])
    assert dialled is not None
    stored_people = {p["key"]: p for p in dialled.model_dump(mode="json")["participants"]}
    assert (stored_people["DIAL-4"]["phone"], "phone" in stored_people["HOSTPARTICIPANTUUID"]) == (
        "+12125550198",
        False,
    )
    assert ZoomMeetingState.model_validate_json(dialled.model_dump_json()) == dialled
