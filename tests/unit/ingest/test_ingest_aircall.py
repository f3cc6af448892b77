from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from libs.common.contracts.activities import (
    ActivityKind,
    Direction,
    Outcome,
    Participant,
    ParticipantRole,
)
from services.ingest.domain.webhooks import ADAPTERS, WebhookRejected

from .ingest_webhook_helpers import CONFIG, dumps, fixture, fixture_json, make_request

TOKEN = "aircall-webhook-token-1"
adapter = ADAPTERS["aircall"]


def test_ended_call_is_a_connected_outbound_call() -> None:
    request = make_request(fixture("aircall", "call.ended.json"))
    adapter.verify(request, [TOKEN], CONFIG)

    (call,) = adapter.parse(request, CONFIG).activities

    assert call.source == "aircall"
    assert call.external_id == "812345678"
    assert call.kind is ActivityKind.CALL
    assert call.direction is Direction.OUTBOUND
    assert call.outcome is Outcome.CONNECTED
    assert call.duration_seconds == 312
    assert call.occurred_at == datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
    assert call.revision == 2 * 10**13 + 1795532745000
    assert call.participants == (
        Participant(
            email="ana.seller@acme.example",
            phone="+16505551234",
            name="Ana Seller",
            role=ParticipantRole.CALLER,
        ),
        Participant(
            email="bo.buyer@globex.example",
            phone="+33612345678",
            name="Bo Buyer",
            role=ParticipantRole.CALLEE,
        ),
    )


def test_lifecycle_events_rank_created_answered_ended() -> None:
    created = adapter.parse(make_request(fixture("aircall", "call.created.json")), CONFIG)
    answered = adapter.parse(make_request(fixture("aircall", "call.answered.json")), CONFIG)
    ended = adapter.parse(make_request(fixture("aircall", "call.ended.json")), CONFIG)
    assert created.activities == ()
    assert created.ignored == ("call.created: the call has not been answered or ended yet",)
    assert answered.activities[0].outcome is Outcome.CONNECTED
    assert answered.activities[0].duration_seconds == 0
    assert answered.activities[0].revision < ended.activities[0].revision


def test_rank_beats_a_later_timestamp() -> None:
    answered = fixture_json("aircall", "call.answered.json")
    answered["timestamp"] = 1795533999  # delivered with a clock later than call.ended's
    late_answered = adapter.parse(make_request(dumps(answered)), CONFIG).activities[0]
    ended = adapter.parse(make_request(fixture("aircall", "call.ended.json")), CONFIG).activities[0]
    assert ended.revision > late_answered.revision


@pytest.mark.parametrize(
    ("changes", "outcome"),
    [
        (
            {"answered_at": None, "duration": 25, "voicemail": "https://aircall.example/vm.mp3"},
            Outcome.VOICEMAIL,
        ),
        (
            {"answered_at": None, "duration": 25, "missed_call_reason": "agents_did_not_answer"},
            Outcome.NO_ANSWER,
        ),
    ],
)
def test_unanswered_calls(changes: dict[str, object], outcome: Outcome) -> None:
    payload = fixture_json("aircall", "call.ended.json")
    payload["data"].update(changes)
    (call,) = adapter.parse(make_request(dumps(payload)), CONFIG).activities
    assert call.outcome is outcome
    assert call.duration_seconds == 0


@pytest.mark.parametrize("reason", ["abandoned_in_ivr", "abandoned_in_classic", "short_abandoned"])
def test_a_call_aircall_says_was_missed_is_not_connected_even_with_an_answer_time(reason: str) -> None:
    """The caller hung up in the number's IVR or its queue: Aircall names why nobody took the
    call (``missed_call_reason``); an ``answered_at`` (the IVR's answer) makes it no conversation."""
    payload = fixture_json("aircall", "call.ended.json")
    payload["data"].update(direction="inbound", user=None, duration=40, missed_call_reason=reason)
    (call,) = adapter.parse(make_request(dumps(payload)), CONFIG).activities
    assert (call.outcome, call.duration_seconds) == (Outcome.NO_ANSWER, 0)


def test_a_call_nobody_took_keeps_the_line_that_rang_as_the_reps_side() -> None:
    """A missed inbound call names no ``user``: the Aircall line (a rep's direct line) is still
    the tenant's side of the call; a line that is no number is left out, never a 422."""

    def missed(digits: str) -> tuple[Participant, ...]:
        body = fixture_json("aircall", "call.ended.json")
        body["data"].update(
            direction="inbound", answered_at=None, user=None, number={"id": 791, "digits": digits}
        )
        (call,) = adapter.parse(make_request(dumps(body)), CONFIG).activities
        assert call.outcome is Outcome.NO_ANSWER
        return call.participants

    buyer = Participant(
        email="bo.buyer@globex.example", phone="+33612345678", name="Bo Buyer", role=ParticipantRole.CALLER
    )
    assert missed("+1 415-555-0002") == (
        Participant(phone="+14155550002", role=ParticipantRole.CALLEE),
        buyer,
    )
    assert missed("Sales line") == (buyer,)


def test_the_user_a_call_was_transferred_to_is_on_the_tenants_side() -> None:
    """The front desk took Bo Buyer's call and transferred it to Ana: both are the tenant's side
    (callees of the inbound call), the user who took it first; a transfer to a team adds nobody."""
    desk = {"id": 460, "name": "Front Desk", "email": "front.desk@acme.example"}

    def transferred(to: dict[str, object]) -> tuple[Participant, ...]:
        body = fixture_json("aircall", "call.ended.json")
        body["data"].update(direction="inbound", user=desk, transferred_by=desk, transferred_to=to)
        (call,) = adapter.parse(make_request(dumps(body)), CONFIG).activities
        return call.participants

    ana = {"id": 456, "name": "Ana Seller", "email": "Ana.Seller@acme.example"}
    assert [(p.email, p.role) for p in transferred(ana)] == [
        ("front.desk@acme.example", ParticipantRole.CALLEE),
        ("ana.seller@acme.example", ParticipantRole.CALLEE),
        ("bo.buyer@globex.example", ParticipantRole.CALLER),
    ]
    assert [p.email for p in transferred({"id": 12, "name": "Sales team"})] == [
        "front.desk@acme.example",
        "bo.buyer@globex.example",
    ]


def test_inbound_call_swaps_roles() -> None:
    payload = fixture_json("aircall", "call.ended.json")
    payload["data"]["direction"] = "inbound"
    (call,) = adapter.parse(make_request(dumps(payload)), CONFIG).activities
    assert call.direction is Direction.INBOUND
    assert [p.role for p in call.participants] == [ParticipantRole.CALLEE, ParticipantRole.CALLER]


def test_invalid_number_without_email_is_422_naming_the_field() -> None:
    payload = fixture_json("aircall", "call.ended.json")
    payload["data"]["raw_digits"] = "not a number"
    payload["data"]["contact"] = None
    with pytest.raises(WebhookRejected) as caught:
        adapter.parse(make_request(dumps(payload)), CONFIG)
    assert (caught.value.status_code, caught.value.field) == (422, "data.raw_digits")


@pytest.mark.parametrize("withheld", ["anonymous", "Anonymous", "RESTRICTED", "+266696687"])
def test_a_withheld_number_is_the_reps_call_with_nobody_to_match(withheld: str) -> None:
    payload = fixture_json("aircall", "call.ended.json")
    payload["data"]["raw_digits"] = withheld
    payload["data"]["contact"] = None
    (call,) = adapter.parse(make_request(dumps(payload)), CONFIG).activities
    assert call.participants == (
        Participant(
            email="ana.seller@acme.example",
            phone="+16505551234",
            name="Ana Seller",
            role=ParticipantRole.CALLER,
        ),
    )
    assert (call.outcome, call.duration_seconds) == (Outcome.CONNECTED, 312)


def test_invalid_number_with_a_contact_email_keeps_the_participant_by_email() -> None:
    payload = fixture_json("aircall", "call.ended.json")
    payload["data"]["raw_digits"] = "anonymous"
    (call,) = adapter.parse(make_request(dumps(payload)), CONFIG).activities
    assert call.participants[1] == Participant(
        email="bo.buyer@globex.example", name="Bo Buyer", role=ParticipantRole.CALLEE
    )


def test_wrong_token_is_401() -> None:
    with pytest.raises(WebhookRejected) as caught:
        adapter.verify(make_request(fixture("aircall", "call.ended.json")), ["another-token"], CONFIG)
    assert (caught.value.status_code, caught.value.field) == (401, "token")


def test_missing_token_is_401() -> None:
    payload = fixture_json("aircall", "call.ended.json")
    del payload["token"]
    with pytest.raises(WebhookRejected) as caught:
        adapter.verify(make_request(dumps(payload)), [TOKEN], CONFIG)
    assert (caught.value.status_code, caught.value.field, caught.value.reason) == (401, "token", "missing")


def test_two_tokens_are_valid_during_rotation() -> None:
    request = make_request(fixture("aircall", "call.ended.json"))
    adapter.verify(request, ["aircall-webhook-token-2", TOKEN], CONFIG)
    adapter.verify(request, [TOKEN, "aircall-webhook-token-2"], CONFIG)


@pytest.mark.parametrize(
    ("mutate", "status", "field"),
    [
        (lambda p: p["data"].pop("id"), 422, "data.id"),
        (lambda p: p["data"].update(started_at="yesterday"), 422, "data.started_at"),
        (lambda p: p["data"].update(direction="sideways"), 422, "data.direction"),
        (lambda p: p.update(data=[1, 2]), 422, "data"),
        (lambda p: p.pop("timestamp"), 422, "timestamp"),
    ],
)
def test_malformed_bodies_name_the_field(
    mutate: Callable[[dict[str, Any]], object], status: int, field: str
) -> None:
    payload = fixture_json("aircall", "call.ended.json")
    mutate(payload)
    with pytest.raises(WebhookRejected) as caught:
        adapter.parse(make_request(dumps(payload)), CONFIG)
    assert (caught.value.status_code, caught.value.field) == (status, field)


def test_not_json_is_400() -> None:
    with pytest.raises(WebhookRejected) as caught:
        adapter.parse(make_request(b"{not json"), CONFIG)
    assert (caught.value.status_code, caught.value.field) == (400, "body")
