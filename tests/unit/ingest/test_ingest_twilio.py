from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from urllib.parse import parse_qsl, urlencode

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from libs.common.contracts.activities import (
    ActivityIn,
    ActivityKind,
    CrmReferences,
    Direction,
    Outcome,
    Participant,
    ParticipantRole,
    ResponseStatus,
)
from services.ingest.domain.vendors.twilio import TwilioLeg, fold_twilio_call, form_fields
from services.ingest.domain.webhook_types import TenantWebhookConfig
from services.ingest.domain.webhooks import ADAPTERS, WebhookRejected
from services.ingest.pipeline import TWILIO_FOLD

from .ingest_webhook_helpers import CONFIG, fixture, make_request, twilio_headers

URL = "https://ingest.example.com/v1/webhooks/twilio/acme?tenant_hint=eu"
TOKEN = "twilio-auth-token-current"
OLD_TOKEN = "twilio-auth-token-previous"
adapter = ADAPTERS["twilio"]


def signed(name: str, token: str = TOKEN) -> tuple[bytes, dict[str, str]]:
    body = fixture("twilio", name)
    return body, twilio_headers(URL, body, token)


def test_completed_call_is_a_connected_outbound_call() -> None:
    body, headers = signed("completed.txt")
    request = make_request(body, headers, url=URL)
    adapter.verify(request, [TOKEN], CONFIG)

    result = adapter.parse(request, CONFIG)

    assert len(result.activities) == 1
    call = result.activities[0]
    assert call.source == "twilio"
    assert call.external_id == "CA5f1c3b0a7e9d4c2b8a6f0e1d2c3b4a59"
    assert call.kind is ActivityKind.CALL
    assert call.direction is Direction.OUTBOUND
    assert call.outcome is Outcome.CONNECTED
    assert call.duration_seconds == 312
    # Timestamp 15:15:20 minus 312 s of talk time.
    assert call.occurred_at == datetime(2026, 11, 24, 15, 10, 8, tzinfo=UTC)
    assert call.revision == 3
    assert call.participants == (
        Participant(phone="+16505551234", role=ParticipantRole.CALLER),
        Participant(phone="+14155552671", role=ParticipantRole.CALLEE),
    )


#: ``failed.txt`` without its ``ParentCallSid``: a call of its own.
LONE_FAILED = fixture("twilio", "failed.txt").replace(
    b"&ParentCallSid=CA5f1c3b0a7e9d4c2b8a6f0e1d2c3b4a59", b""
)


@pytest.mark.parametrize(
    ("body", "outcome", "direction"),
    [
        (fixture("twilio", "no-answer.txt"), Outcome.NO_ANSWER, Direction.OUTBOUND),
        (fixture("twilio", "busy.txt"), Outcome.BUSY, Direction.INBOUND),
        (LONE_FAILED, Outcome.FAILED, Direction.OUTBOUND),
    ],
)
def test_final_statuses_map_to_outcomes(body: bytes, outcome: Outcome, direction: Direction) -> None:
    (call,) = adapter.parse(make_request(body, twilio_headers(URL, body, TOKEN), url=URL), CONFIG).activities
    assert call.outcome is outcome
    assert call.direction is direction
    assert call.duration_seconds == 0
    assert call.thread_id is None


def test_a_dial_child_leg_of_a_call_between_numbers_is_not_a_second_call() -> None:
    """``failed.txt`` is a ``<Dial>`` leg of the call ``completed.txt`` reports (its
    ``ParentCallSid``), a call between two numbers that names its buyer itself: the leg is no
    activity of its own, only a leg to fold, and with no softphone's call stored under its
    parent it completes nothing. One call, counted by the parent's callbacks."""
    body, headers = signed("failed.txt")
    result = adapter.parse(make_request(body, headers, url=URL), CONFIG)
    assert (result.activities, result.ignored) == ((), ())
    (leg,) = result.twilio_legs
    assert (leg.call_key, leg.outcome) == ("CA5f1c3b0a7e9d4c2b8a6f0e1d2c3b4a59", Outcome.FAILED)
    assert fold_twilio_call(None, leg)[1] is None


def _callback(call_sid: str, status: str, seconds: int, sequence: int, **extra: str) -> bytes:
    return urlencode(
        {
            "CallSid": call_sid,
            "CallStatus": status,
            "CallDuration": str(seconds),
            "Timestamp": "Tue, 24 Nov 2026 15:15:20 +0000",
            "SequenceNumber": str(sequence),
            **extra,
        }
    ).encode()


#: Ana calls from her browser (Twilio Client) through a TwiML application, which dials the buyer.
APP = "AP0123456789abcdef0123456789abcdef"
PARENT = _callback("CA-parent", "completed", 40, 3, Direction="inbound", From="client:ana", To=APP)
LEG = {
    "ParentCallSid": "CA-parent",
    "Direction": "outbound-dial",
    "From": "+16505551234",
    "To": "(415) 555-2671",
}
ANSWERED = _callback("CA-leg", "completed", 35, 2, **LEG)


def _fold(*bodies: bytes) -> list[ActivityIn]:
    """What ingest publishes for these callbacks, delivered in this order: their legs folded
    into the stored call state (each parse of one callback, then the fold)."""
    state, emitted = None, []
    for body in bodies:
        for leg in adapter.parse(make_request(body, url=URL), SOFTPHONE_CONFIG).twilio_legs:
            state, activity = fold_twilio_call(state, leg)
            emitted += [activity] if activity is not None else []
    return emitted


def test_a_softphones_call_gains_the_number_its_dial_leg_names() -> None:
    """The parent (``client:ana`` to a TwiML application) names no number; its ``<Dial>`` leg
    names the buyer. Folded, the call is the parent's (its CallSid), Ana's (``rep_aliases``),
    with the buyer's number and the leg's outcome and talk time (the parent's 40 s include the
    ringing). In either order of arrival; a redelivery emits nothing. Before, the leg was
    ignored and the call, with no number at all, lost."""
    buyer = Participant(phone="+14155552671", role=ParticipantRole.CALLEE)
    parent_first = _fold(PARENT, ANSWERED, ANSWERED, PARENT)
    leg_first = _fold(ANSWERED, PARENT)
    assert len(parent_first) == len(leg_first) == 1
    for call in (parent_first[-1], leg_first[-1]):
        assert (call.external_id, call.participants, call.crm.owner_rep_id) == (
            "CA-parent",
            (buyer,),
            "rep-a",
        )
        assert (call.direction, call.outcome, call.duration_seconds) == (
            Direction.OUTBOUND,
            Outcome.CONNECTED,
            35,
        )
        assert call.occurred_at == datetime(2026, 11, 24, 15, 14, 40, tzinfo=UTC)


def test_a_dial_leg_nobody_answered_is_the_calls_outcome() -> None:
    """The parent is "completed" after Ana listened to 40 s of ringing; the leg says nobody
    answered: no connect, no talk time. A later callback of the leg (in progress, then
    completed) is a new revision of the one call."""
    unanswered = _callback("CA-leg", "no-answer", 0, 2, **LEG)
    (call,) = _fold(unanswered, PARENT)
    assert (call.outcome, call.duration_seconds) == (Outcome.NO_ANSWER, 0)
    ringing = _callback("CA-leg", "in-progress", 0, 1, **LEG)
    first, second = _fold(PARENT, ringing, ANSWERED)
    assert (first.external_id, second.external_id) == ("CA-parent", "CA-parent")
    assert (first.outcome, second.outcome, second.duration_seconds) == (
        Outcome.CONNECTED,
        Outcome.CONNECTED,
        35,
    )
    assert second.revision > first.revision
    # The parent's later callback changes nothing the leg had not decided: nothing re-emitted.
    in_progress = _callback(
        "CA-parent",
        "in-progress",
        0,
        1,
        Direction="inbound",
        From="client:ana",
        To=APP,
        Timestamp="Tue, 24 Nov 2026 15:14:40 +0000",
    )
    assert len(_fold(in_progress, ANSWERED, PARENT)) == 1


def test_canceled_and_zero_length_completed_calls() -> None:
    canceled = LONE_FAILED.replace(b"CallStatus=failed", b"CallStatus=canceled")
    (call,) = adapter.parse(make_request(canceled, url=URL), CONFIG).activities
    assert call.outcome is Outcome.FAILED
    zero = fixture("twilio", "completed.txt").replace(b"CallDuration=312", b"CallDuration=0")
    (call,) = adapter.parse(make_request(zero, url=URL), CONFIG).activities
    assert call.outcome is Outcome.NO_ANSWER


@pytest.mark.parametrize(
    ("answered_by", "outcome"),
    [
        ("human", Outcome.CONNECTED),
        ("unknown", Outcome.CONNECTED),
        ("machine_start", Outcome.VOICEMAIL),
        ("machine_end_beep", Outcome.VOICEMAIL),
        ("machine_end_silence", Outcome.VOICEMAIL),
        ("machine_end_other", Outcome.VOICEMAIL),
        ("fax", Outcome.FAILED),
    ],
)
def test_answering_machine_detection_tells_a_voicemail_from_a_conversation(
    answered_by: str, outcome: Outcome
) -> None:
    for fixture_name in ("completed.txt", "in-progress.txt"):
        body = fixture("twilio", fixture_name) + f"&AnsweredBy={answered_by}".encode()
        (call,) = adapter.parse(make_request(body, url=URL), CONFIG).activities
        assert call.outcome is outcome


def test_ringing_is_accepted_but_ignored() -> None:
    body, headers = signed("ringing.txt")
    result = adapter.parse(make_request(body, headers, url=URL), CONFIG)
    assert result.activities == ()
    assert result.ignored == ("CallStatus=ringing: the call has not connected or ended yet",)


def test_reordered_callbacks_settle_on_the_final_state() -> None:
    deliveries = [fixture("twilio", "completed.txt"), fixture("twilio", "in-progress.txt")]
    calls = [adapter.parse(make_request(body, url=URL), CONFIG).activities[0] for body in deliveries]
    # Delivered completed first, in-progress second: the highest revision still wins.
    assert [c.revision for c in calls] == [3, 2]
    final = max(calls, key=lambda c: c.revision)
    assert final.outcome is Outcome.CONNECTED
    assert final.duration_seconds == 312
    # Both callbacks describe the same call with the same start, so they collapse to one id.
    assert {c.external_id for c in calls} == {"CA5f1c3b0a7e9d4c2b8a6f0e1d2c3b4a59"}
    assert {c.occurred_at for c in calls} == {datetime(2026, 11, 24, 15, 10, 8, tzinfo=UTC)}


def test_without_sequence_number_the_status_orders_callbacks() -> None:
    early = fixture("twilio", "in-progress.txt").replace(b"&SequenceNumber=2", b"")
    late = fixture("twilio", "completed.txt").replace(b"&SequenceNumber=3", b"")
    revisions = [
        adapter.parse(make_request(b, url=URL), CONFIG).activities[0].revision for b in (early, late)
    ]
    assert revisions == [3, 4]


def test_bad_signature_is_401() -> None:
    body, _ = signed("completed.txt")
    headers = twilio_headers(URL, body, "someone-else")
    with pytest.raises(WebhookRejected) as caught:
        adapter.verify(make_request(body, headers, url=URL), [TOKEN], CONFIG)
    assert (caught.value.status_code, caught.value.field) == (401, "x-twilio-signature")


def test_signature_covers_the_query_string_and_the_body() -> None:
    body, headers = signed("completed.txt")
    with pytest.raises(WebhookRejected):
        adapter.verify(make_request(body, headers, url=URL.replace("eu", "us")), [TOKEN], CONFIG)
    tampered = body.replace(b"CallDuration=312", b"CallDuration=999")
    with pytest.raises(WebhookRejected):
        adapter.verify(make_request(tampered, headers, url=URL), [TOKEN], CONFIG)


def test_missing_signature_is_401() -> None:
    body, _ = signed("completed.txt")
    with pytest.raises(WebhookRejected) as caught:
        adapter.verify(make_request(body, url=URL), [TOKEN], CONFIG)
    assert (caught.value.status_code, caught.value.field, caught.value.reason) == (
        401,
        "x-twilio-signature",
        "missing",
    )


def test_two_tokens_are_valid_during_rotation() -> None:
    for token in (TOKEN, OLD_TOKEN):
        body, headers = signed("completed.txt", token)
        adapter.verify(make_request(body, headers, url=URL), [TOKEN, OLD_TOKEN], CONFIG)


def test_no_configured_token_is_401() -> None:
    body, headers = signed("completed.txt")
    with pytest.raises(WebhookRejected) as caught:
        adapter.verify(make_request(body, headers, url=URL), [], CONFIG)
    assert caught.value.status_code == 401


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        (b"\xff\xfe", 400, "body"),
        (b"CallSid=CA1&CallStatus=completed", 422, "Direction"),
        (b"CallStatus=completed&Direction=inbound&From=%2B14155552671&To=%2B16505551234", 422, "CallSid"),
        (b"CallSid=CA1&CallStatus=exploded&Direction=inbound", 422, "CallStatus"),
        (b"CallSid=CA1&CallStatus=completed&Direction=sideways&From=x&To=y", 422, "Direction"),
        (
            b"CallSid=CA1&CallStatus=completed&Direction=inbound&From=not+a+number&To=%2B16505551234",
            422,
            "From",
        ),
        (
            b"CallSid=CA1&CallStatus=completed&CallDuration=abc&Direction=inbound"
            b"&From=%2B14155552671&To=%2B16505551234",
            422,
            "CallDuration",
        ),
    ],
)
def test_malformed_bodies_name_the_field(body: bytes, status: int, field: str) -> None:
    with pytest.raises(WebhookRejected) as caught:
        adapter.parse(make_request(body, url=URL), CONFIG)
    assert (caught.value.status_code, caught.value.field) == (status, field)


def test_secret_is_never_in_the_rejection() -> None:
    body, _ = signed("completed.txt")
    headers = twilio_headers(URL, body, "wrong")
    with pytest.raises(WebhookRejected) as caught:
        adapter.verify(make_request(body, headers, url=URL), [TOKEN], CONFIG)
    assert TOKEN not in str(caught.value)


SOFTPHONE_CONFIG = replace(CONFIG, rep_aliases={"ana": "rep-a", "bo@acme.sip.twilio.com": "rep-b"})


@pytest.mark.parametrize(
    ("softphone", "participant", "owner_rep_id", "identities"),
    [
        # A browser / mobile SDK client the tenant maps to a rep: that rep's call, no phone.
        ("client:ana", None, "rep-a", ("ana",)),
        # A SIP user mapped by its user part, or by its whole address.
        (
            "sip:ana@acme.sip.twilio.com;transport=tls",
            None,
            "rep-a",
            ("ana", "ana@acme.sip.twilio.com"),
        ),
        ("sip:bo@acme.sip.twilio.com", None, "rep-b", ("bo", "bo@acme.sip.twilio.com")),
        # An address at the tenant's domains: the participant, by email (attribution finds the rep).
        (
            "sip:Ana.Seller@acme.example",
            Participant(email="ana.seller@acme.example", role=ParticipantRole.CALLER),
            None,
            (),
        ),
        # A trunk's number: a phone like any.
        (
            "sip:+14155550001@carrier.example",
            Participant(phone="+14155550001", role=ParticipantRole.CALLER),
            None,
            (),
        ),
        # Nobody the tenant maps yet: the call keeps its other side, and the identity attribution
        # maps when it decides (a mapping made later re-credits the call).
        ("client:unmapped", None, None, ("unmapped",)),
        # An edge location's host is its SIP Domain's: the identity kept, and the address mapped.
        ("sip:desk-7@acme.sip.us1.twilio.com", None, None, ("desk-7", "desk-7@acme.sip.twilio.com")),
        ("sip:bo@ACME.sip.ie1.twilio.com", None, "rep-b", ("bo", "bo@acme.sip.twilio.com")),
        # A SIP phone on another host may be anyone's (a buyer's): kept only as the key mapped now.
        ("sip:desk-7@10.0.0.5", None, None, ()),
        ("sip:ana@pbx.voip.example", None, "rep-a", ("ana",)),
    ],
)
def test_a_softphone_is_the_reps_side_of_the_call_not_a_refused_number(
    softphone: str, participant: Participant | None, owner_rep_id: str | None, identities: tuple[str, ...]
) -> None:
    body = urlencode(
        {
            "CallSid": "CA1",
            "CallStatus": "completed",
            "CallDuration": "75",
            "Direction": "outbound-api",
            "From": softphone,
            "To": "(415) 555-2671",
        }
    ).encode()
    result = adapter.parse(make_request(body, url=URL), SOFTPHONE_CONFIG)
    # A softphone's call is folded with its legs: alone, it is the call as its callback says.
    (call,) = result.activities or _fold(body)
    buyer = Participant(phone="+14155552671", role=ParticipantRole.CALLEE)
    assert call.participants == ((participant, buyer) if participant else (buyer,))
    assert (call.crm.owner_rep_id, call.crm.owner_identities) == (owner_rep_id, identities)
    assert (call.outcome, call.duration_seconds) == (Outcome.CONNECTED, 75)


def test_a_mapping_written_with_an_edge_host_still_names_its_rep() -> None:
    """A ``rep_aliases`` key written with the edge location's host (as calls showed it before its
    host was read as its SIP Domain's) still maps, and is kept with the domain's address."""
    config = replace(CONFIG, rep_aliases={"cy@acme.sip.us1.twilio.com": "rep-c"})
    body = urlencode(
        {
            "CallSid": "CA1",
            "CallStatus": "completed",
            "CallDuration": "75",
            "Direction": "outbound-api",
            "From": "sip:cy@acme.sip.us1.twilio.com",
            "To": "(415) 555-2671",
        }
    ).encode()
    (leg,) = adapter.parse(make_request(body, url=URL), config).twilio_legs
    _, call = fold_twilio_call(None, leg)
    assert call is not None
    assert (call.crm.owner_rep_id, call.crm.owner_identities) == (
        "rep-c",
        ("cy", "cy@acme.sip.twilio.com", "cy@acme.sip.us1.twilio.com"),
    )


def test_a_call_between_two_softphones_is_ignored_with_its_reason() -> None:
    body = (
        b"CallSid=CA1&CallStatus=completed&CallDuration=5&Direction=inbound&From=client%3Aana&To=client%3Abo"
    )
    result = adapter.parse(make_request(body, url=URL), SOFTPHONE_CONFIG)
    assert result.activities == ()
    assert result.ignored == ("a call between two softphones: no number or address on either side",)


# --------------------------------------------------------------------------- calls between two numbers

BUYER, LINE, CELL = "+14155552671", "+16505550100", "+16505551234"


def _published(*bodies: bytes) -> list[ActivityIn]:
    """Everything ingest publishes for these callbacks in this order: each callback's own
    activity (a call between two numbers counts itself) and what the fold emits."""
    state, published = None, list[ActivityIn]()
    for body in bodies:
        result = adapter.parse(make_request(body, url=URL), CONFIG)
        published += result.activities
        for leg in result.twilio_legs:
            state, activity = fold_twilio_call(state, leg)
            published += [activity] if activity is not None else []
    return published


def _kept(published: list[ActivityIn]) -> ActivityIn:
    """What downstream keeps of one call: its highest revision."""
    assert len({a.external_id for a in published}) == 1
    return max(published, key=lambda a: a.revision)


def _callee(phone: str) -> Participant:
    return Participant(phone=phone, role=ParticipantRole.CALLEE)


def _caller(phone: str) -> Participant:
    return Participant(phone=phone, role=ParticipantRole.CALLER)


#: Bo calls the tenant's number (LINE); its TwiML <Dial>s Ana's mobile (CELL), which rings 15 s.
FORWARDED = _callback("CA-fwd", "completed", 95, 3, Direction="inbound", From=BUYER, To=LINE)
FORWARD_LEG = {"ParentCallSid": "CA-fwd", "Direction": "outbound-dial", "From": BUYER, "To": CELL}


@pytest.mark.parametrize(
    ("leg", "outcome", "seconds"),
    [
        (_callback("CA-fwd-leg", "completed", 80, 2, **FORWARD_LEG), Outcome.CONNECTED, 80),
        # Ana never picked up: the buyer listened to the ringing, and the parent still says
        # "completed" after 95 s. Before, that was a connect with 95 s of talk time.
        (_callback("CA-fwd-leg", "no-answer", 0, 2, **FORWARD_LEG), Outcome.NO_ANSWER, 0),
        (_callback("CA-fwd-leg", "busy", 0, 2, **FORWARD_LEG), Outcome.BUSY, 0),
    ],
)
def test_a_forwarded_call_is_the_buyers_call_to_whom_the_leg_reached(
    leg: bytes, outcome: Outcome, seconds: int
) -> None:
    """An inbound call forwarded by ``<Dial>``: the buyer called (caller), the leg reached Ana's
    mobile (callee, listed before the tenant's number she was called on), inbound, with the
    leg's outcome and talk time. In either order of arrival, redelivered or not, the version
    downstream keeps is the same, and it is one call (the parent's CallSid)."""
    alone = _kept(_published(FORWARDED))
    assert (alone.participants, alone.outcome, alone.duration_seconds, alone.revision) == (
        (_caller(BUYER), _callee(LINE)),
        Outcome.CONNECTED,
        95,
        3,
    )
    orders = [(FORWARDED, leg), (leg, FORWARDED), (FORWARDED, leg, leg, FORWARDED), (leg, FORWARDED, leg)]
    kept = [_kept(_published(*order)) for order in orders]
    for call in kept:
        assert call.external_id == "CA-fwd"
        assert call.participants == (_caller(BUYER), _callee(CELL), _callee(LINE))
        assert (call.direction, call.outcome, call.duration_seconds) == (Direction.INBOUND, outcome, seconds)
        assert call.occurred_at == datetime(2026, 11, 24, 15, 13, 45, tzinfo=UTC)  # 15:15:20 - 95 s
        assert call.revision == 10**12 + 1
    # A redelivery emits nothing new: one fold version per order.
    assert [len([a for a in _published(*o) if a.revision > 10**12]) for o in orders] == [1, 1, 1, 1]


@pytest.mark.parametrize(
    ("parent_to", "leg_to"),
    [
        # Click to call: Twilio calls Ana's mobile first (REST API), then <Dial>s the buyer.
        (CELL, BUYER),
        # Callback: Twilio calls the buyer (REST API), then <Dial>s Ana's mobile.
        (BUYER, CELL),
    ],
)
def test_a_call_placed_with_the_rest_api_lists_both_people_it_joined(parent_to: str, leg_to: str) -> None:
    """A REST API call from the tenant's number (caller) that then ``<Dial>``s someone: the call
    lists the leg's callee before the parent's; outbound; the leg's 120 s, not the parent's 130
    (which include the ringing). Whichever of Ana and the buyer Twilio called first,
    attribution finds Ana by her number and the buyer by his. Before, the leg was ignored: the
    one the leg reached was not on the call (the buyer, unmatched; or Ana, a call of nobody's)."""
    parent = _callback("CA-api", "completed", 130, 3, Direction="outbound-api", From=LINE, To=parent_to)
    leg = _callback(
        "CA-api-leg",
        "completed",
        120,
        2,
        ParentCallSid="CA-api",
        Direction="outbound-dial",
        From=LINE,
        To=leg_to,
    )
    for order in ((parent, leg), (leg, parent, parent)):
        call = _kept(_published(*order))
        assert call.participants == (_caller(LINE), _callee(leg_to), _callee(parent_to))
        assert (call.direction, call.outcome, call.duration_seconds) == (
            Direction.OUTBOUND,
            Outcome.CONNECTED,
            120,
        )


def test_the_fold_waits_for_the_parents_final_callback_and_ranks_above_its_own_versions() -> None:
    """The parent answered (its own callback, published as it says; not kept: a leg ends before
    or as its parent does), the leg in progress then completed (kept, waiting for the parent),
    the parent's "completed" (published as it says, and kept: with the leg known, the fold's
    version, above every version the parent's own callbacks publish). A later leg callback is a
    new fold version; the parent's "completed" redelivered last does not undo the leg's outcome."""
    ringing = _callback("CA-fwd-leg", "in-progress", 0, 1, **FORWARD_LEG)
    done = _callback("CA-fwd-leg", "completed", 80, 2, **FORWARD_LEG)
    in_progress = _callback(
        "CA-fwd",
        "in-progress",
        0,
        1,
        Direction="inbound",
        From=BUYER,
        To=LINE,
        Timestamp="Tue, 24 Nov 2026 15:13:45 +0000",
    )
    published = _published(in_progress, ringing, FORWARDED, done, FORWARDED)
    assert [(a.revision, a.outcome, a.duration_seconds) for a in published] == [
        (1, Outcome.CONNECTED, 0),  # the parent answered
        (3, Outcome.CONNECTED, 95),  # the parent's own "completed"
        (10**12 + 1, Outcome.CONNECTED, 0),  # with the leg known so far
        (10**12 + 2, Outcome.CONNECTED, 80),  # the leg completed
        (3, Outcome.CONNECTED, 95),  # the parent's redelivery: its own version, below the fold's
    ]
    assert _kept(published).duration_seconds == 80


@pytest.mark.parametrize("status", ["in-progress", "busy", "no-answer", "failed", "canceled"])
def test_only_a_completed_call_between_two_numbers_is_kept_for_legs(status: str) -> None:
    """A leg ends before or as its parent: the parent's "completed" is kept for its legs. A call
    in progress will complete; one never answered ran no TwiML, so it dialled no leg: neither is
    kept (no state written for them), each is published as it says."""
    body = _callback("CA-fwd", status, 0, 2, Direction="inbound", From=BUYER, To=LINE)
    result = adapter.parse(make_request(body, url=URL), CONFIG)
    assert (len(result.activities), result.twilio_legs) == (1, ())
    (kept,) = adapter.parse(make_request(FORWARDED, url=URL), CONFIG).twilio_legs
    assert (kept.call_key, kept.two_numbers, kept.revision) == ("CA-fwd", True, 3)


def test_a_two_number_parents_redelivery_is_counted_once() -> None:
    """The parent's callback is an activity of its own (the ledger counts its redelivery) and a
    state to keep for its legs: its unchanged state is saved again, not counted as a replay."""
    (leg,) = adapter.parse(make_request(FORWARDED, url=URL), CONFIG).twilio_legs
    stored, first = TWILIO_FOLD.fold(None, leg)
    assert stored is not None
    assert first is None
    again, emitted = TWILIO_FOLD.fold(orjson.loads(stored), leg)
    assert (again, emitted) == (stored, None)
    # A softphone's leg redelivered is a replay (it has no activity of its own).
    (app_leg,) = adapter.parse(make_request(ANSWERED, url=URL), SOFTPHONE_CONFIG).twilio_legs
    kept, _ = TWILIO_FOLD.fold(None, app_leg)
    assert kept is not None
    assert TWILIO_FOLD.fold(orjson.loads(kept), app_leg) == (None, None)


@pytest.mark.parametrize(
    ("caller", "direction"),
    [
        # Twilio says ``inbound``: the call entered Twilio from the rep's softphone.
        ("client:ana", Direction.OUTBOUND),
        ("sip:bo@acme.sip.twilio.com", Direction.OUTBOUND),
        ("sip:Ana.Seller@acme.example", Direction.OUTBOUND),
        # A SIP caller nobody knows, and a trunk's number, keep Twilio's direction.
        ("sip:desk-7@10.0.0.5", Direction.INBOUND),
        ("sip:+14155550001@carrier.example", Direction.INBOUND),
    ],
)
def test_a_call_a_rep_places_from_a_softphone_is_outbound(caller: str, direction: Direction) -> None:
    """A SIP desk phone or a browser calling a number straight (no ``<Dial>`` leg reported):
    Twilio reports the call ``inbound``, as it entered Twilio; it is the rep's outbound call."""
    body = _callback(
        "CA-sip",
        "completed",
        95,
        3,
        Direction="inbound",
        From=caller,
        To="sip:+14155552671@acme.sip.twilio.com",
    )
    result = adapter.parse(make_request(body, url=URL), SOFTPHONE_CONFIG)
    (call,) = result.activities or _fold(body)
    assert (call.direction, call.duration_seconds) == (direction, 95)


def test_a_call_forwarded_to_a_reps_browser_is_hers_with_the_legs_outcome() -> None:
    """A buyer rings the tenant's number, whose TwiML dials Ana's browser
    (``<Dial><Client>ana</Client>``): the leg lists no number, yet it reached her. The call is
    hers (``rep_aliases``), its outcome and length the leg's: 185 s talked, or, when she did not
    pick up, no answer (not the parent's 30 s of ringing). Before, the leg was not read as
    dialling anyone: the parent went out alone, connected, with no rep. Her browser not mapped
    yet, the call is the leg's all the same and keeps its identity (mapped when attribution
    decides: a mapping made later credits her)."""

    def kept(leg_status: str, seconds: int, config: TenantWebhookConfig = SOFTPHONE_CONFIG) -> ActivityIn:
        state, published = None, list[ActivityIn]()
        parent = _callback(
            "CA-fwd", "completed", 30, 3, Direction="inbound", From="+14155552671", To="+14155550100"
        )
        leg = _callback(
            "CA-fwd-leg",
            leg_status,
            seconds,
            2,
            ParentCallSid="CA-fwd",
            Direction="outbound-dial",
            From="+14155552671",
            To="client:ana",
        )
        for body in (parent, leg):
            result = adapter.parse(make_request(body, url=URL), config)
            published += result.activities
            for part in result.twilio_legs:
                state, activity = fold_twilio_call(state, part)
                published += [activity] if activity is not None else []
        return _kept(published)

    answered, missed = kept("completed", 185), kept("no-answer", 0)
    unmapped = kept("completed", 185, CONFIG)
    assert (unmapped.outcome, unmapped.duration_seconds, unmapped.crm) == (
        Outcome.CONNECTED,
        185,
        CrmReferences(owner_identities=("ana",)),
    )
    assert answered.crm.owner_identities == ("ana",)
    assert (answered.outcome, answered.duration_seconds, answered.crm.owner_rep_id) == (
        Outcome.CONNECTED,
        185,
        "rep-a",
    )
    assert (missed.outcome, missed.duration_seconds, missed.crm.owner_rep_id) == (
        Outcome.NO_ANSWER,
        0,
        "rep-a",
    )
    assert answered.participants == (_caller("+14155552671"), _callee("+14155550100"))
    assert answered.direction is Direction.INBOUND


def _as_parse_qsl(text: str) -> object:
    try:
        return tuple(parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text), errors="strict"))
    except ValueError as exc:  # UnicodeDecodeError is one
        return type(exc)


def _as_form_fields(text: str) -> object:
    try:
        return form_fields(text)
    except ValueError as exc:
        return type(exc)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "a=1",
        "a=",
        "=1",
        "=",
        "a",
        "a=1&",
        "&a=1",
        "a=1&&b=2",
        "a=1=2",
        "From=%2B16505551234&Timestamp=Tue%2C+24+Nov+2026+15%3A10%3A08+%2B0000",
        "a+b=c+d",
        "a=%",
        "a=%4",
        "a=%4g",
        "a=%C3%A9",
        "a=%C3",
        "a=%C3é",
        "a=é%A9",
        "a=%e9",
        "a=%26%3D&b=%2525",
        "caf%C3%A9=na%C3%AFve+%E2%82%AC",
        "a=%%41",
        "a=%ZZ%41%",
        "a=%F0%9F%98%80&b=%ED%A0%80",
        "a&b=%C3",
        "a=%C3&b",
        "a=%C3&b=%A9",
        "a=%2B1&b+c=%3a%2c+%2b&%41=%42",
        "a=%2541&b=%%32%36&c=%2%36",
        "a=%3d&b=%3D",
        "a=1&b=%26",
    ],
)
def test_form_fields_are_what_parse_qsl_reads(text: str) -> None:
    """The callback's form, read as ``parse_qsl`` (strict, blank values kept, escapes strict
    UTF-8) reads it: the same pairs, or the same error."""
    assert _as_form_fields(text) == _as_parse_qsl(text)


@given(st.text(alphabet=st.sampled_from("ab=&+%2345CcDdEeFf9é€\U0001f600 "), max_size=24))
def test_form_fields_are_what_parse_qsl_reads_for_any_text(text: str) -> None:
    assert _as_form_fields(text) == _as_parse_qsl(text)


def _leg(**changes: object) -> TwilioLeg:
    fields: dict[str, object] = {
        "call_sid": "CA" + "0" * 32,
        "revision": 3,
        "direction": Direction.OUTBOUND,
        "outcome": Outcome.CONNECTED,
        "occurred_at": datetime(2026, 11, 24, 15, 9, 26, tzinfo=UTC),
        "duration_seconds": 42,
        "participants": (
            Participant(phone="+16505551234", role=ParticipantRole.CALLER),
            Participant(phone="+14155552671", role=ParticipantRole.CALLEE, extension="12"),
        ),
        "two_numbers": True,
    }
    return TwilioLeg(**{**fields, **changes})


@pytest.mark.parametrize(
    "leg",
    [
        _leg(),
        _leg(occurred_at=datetime(2026, 11, 24, 15, 9, 26, 120_500, tzinfo=UTC)),
        _leg(occurred_at=datetime(2026, 11, 24, 16, 9, 26, tzinfo=timezone(timedelta(hours=1)))),
        _leg(
            occurred_at=datetime(
                2026, 11, 24, 10, 9, 26, 7, tzinfo=timezone(timedelta(hours=-5, minutes=-30))
            )
        ),
        _leg(parent_call_sid="CA" + "1" * 32, two_numbers=False, participants=()),
        _leg(rep_id="rep-ä", identities=("ana", "sip:ana@acme.sip.twilio.com"), excluded=True),
        _leg(
            participants=(
                Participant(
                    email="ana@acme.example",
                    name='Ana "Ñ" \u2028 Núñez\\',
                    role=ParticipantRole.ATTENDEE,
                    response_status=ResponseStatus.DECLINED,
                ),
            ),
            outcome=Outcome.NO_ANSWER,
            duration_seconds=0,
        ),
    ],
)
def test_a_kept_parent_is_its_models_json_character_for_character(leg: TwilioLeg) -> None:
    assert leg.as_json() == leg.model_dump_json()


def test_a_kept_parent_writes_every_field_of_its_models() -> None:
    # A field added to either model must be written by ``as_json`` too: this fails until it is.
    everyone = Participant(
        email="bo@buyer.example",
        phone="+14155552671",
        name="Bo",
        role=ParticipantRole.CALLEE,
        response_status=ResponseStatus.ACCEPTED,
        extension="7",
    )
    written = orjson.loads(_leg(participants=(everyone,)).as_json())
    assert set(written) == set(TwilioLeg.model_fields)
    assert set(written["participants"][0]) == set(Participant.model_fields)
