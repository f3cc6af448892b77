"""What of a delivery may be kept, per vendor: content only when opted in, nothing about an excluded person."""

from __future__ import annotations

import time

import orjson
import pytest

from libs.common.erasures import (
    ERASED_ADDRESS,
    NO_ERASURES,
    ErasedIdentities,
    IdentityKind,
    erasure_key,
    identity_hash,
)
from services.ingest.domain.capture import keep_of_delivery
from services.ingest.domain.privacy import PrivacyPolicy
from services.ingest.domain.vendors.twilio import TwilioLeg, fold_twilio_call
from services.ingest.domain.vendors.zoom import ZoomMeetingState, fold_zoom_meeting, held_meeting
from services.ingest.domain.webhooks import ADAPTERS

from .ingest_webhook_helpers import CONFIG, fixture, make_request

#: (source, fixture, content that must not be captured by default, a person in it, kept raw when excluded?)
CASES = [
    (
        "gmail",
        "message.json",
        ["Proposal for Globex", "as promised here is the proposal"],
        "bo.buyer@globex.example",
    ),
    (
        "microsoft-graph",
        "message.json",
        ["Re: Globex renewal", "see you Thursday"],
        "bo.buyer@globex.example",
    ),
    ("microsoft-graph", "event.json", ["Quarterly business review"], "bo.buyer@globex.example"),
    ("google-calendar", "event.confirmed.json", ["Weekly sync with Globex"], "bo.buyer@globex.example"),
    ("zoom", "meeting.participant_joined.json", ["Globex renewal review"], "bo.buyer@globex.example"),
    ("calendly", "invitee.created.json", ["30 Minute Discovery Call"], "bo.buyer@globex.example"),
    ("hubspot", "meetings.json", ["Globex technical deep dive"], None),
    ("hubspot", "emails.json", ["Proposal for Globex"], None),
    ("hubspot", "calls.json", ["Renewal pricing"], None),
    ("salesforce", "Task.xml", ["Email: Proposal for Globex"], None),
    ("salesforce", "Event.xml", ["Contract walkthrough"], None),
    (
        "salesforce",
        "EmailMessage.xml",
        ["Re: Proposal for Globex", "Looks good to us", "Draft: next steps"],
        "bo.buyer@globex.example",
    ),
    ("twilio", "completed.txt", [], "+14155552671"),
    ("aircall", "call.ended.json", [], "+33612345678"),
]


def _delivery(source: str, name: str) -> tuple[bytes, object]:
    body = fixture(source, name)
    return body, ADAPTERS[source].parse(make_request(body), CONFIG)


@pytest.mark.parametrize(("source", "name", "content", "person"), CASES)
def test_content_is_captured_only_when_the_tenant_keeps_it(
    source: str, name: str, content: list[str], person: str | None
) -> None:
    body, result = _delivery(source, name)
    kept = keep_of_delivery(source, body, result, PrivacyPolicy(), NO_ERASURES)  # type: ignore[arg-type]
    assert kept.raw_body is not None
    assert kept.withheld is None
    for text in content:
        assert text.encode() in body
        assert text.encode() not in kept.raw_body
    opted_in = keep_of_delivery(source, body, result, PrivacyPolicy(keep_subjects=True), NO_ERASURES)  # type: ignore[arg-type]
    assert opted_in.raw_body is not None
    for text in content:
        assert text.encode() in opted_in.raw_body


@pytest.mark.parametrize(("source", "name", "person"), [(s, n, p) for s, n, _, p in CASES if p is not None])
def test_a_delivery_about_an_excluded_or_erased_person_is_never_captured(
    source: str, name: str, person: str
) -> None:
    body, result = _delivery(source, name)
    excluded = PrivacyPolicy(excluded_addresses=frozenset({person}))
    kept = keep_of_delivery(source, body, result, excluded, NO_ERASURES)  # type: ignore[arg-type]
    assert kept.raw_body is None
    key = erasure_key("test-secret-key")
    kind = IdentityKind.PHONE if person.startswith("+") else IdentityKind.EMAIL
    erased = ErasedIdentities(key, frozenset({identity_hash(key, kind, person)}))
    forgotten = keep_of_delivery(source, body, result, PrivacyPolicy(), erased)  # type: ignore[arg-type]
    assert forgotten.raw_body is None
    assert forgotten.withheld in {"erased participant", "erased contact"}


def test_a_zoom_join_of_an_excluded_person_keeps_no_trace_and_excludes_the_meeting() -> None:
    body, result = _delivery("zoom", "meeting.participant_joined.json")
    policy = PrivacyPolicy(excluded_domains=frozenset({"globex.example"}))
    kept = keep_of_delivery("zoom", body, result, policy, NO_ERASURES)  # type: ignore[arg-type]
    assert kept.raw_body is None
    assert kept.withheld == "excluded participant"
    [event] = kept.zoom_events
    assert event.participant is None
    assert event.excluded_participant is True
    assert event.topic is None
    state, emitted = fold_zoom_meeting(None, event)
    assert emitted is None
    stored = state.model_dump_json().lower()
    assert "globex" not in stored
    assert "bo" not in stored.replace("bool", "")
    ended = ZoomMeetingState.model_validate({**state.model_dump(), "ended": True})
    assert held_meeting(ended, 1) is None


def test_a_zoom_join_of_an_erased_person_becomes_the_placeholder() -> None:
    body, result = _delivery("zoom", "meeting.participant_joined.json")
    key = erasure_key("test-secret-key")
    erased = ErasedIdentities(
        key, frozenset({identity_hash(key, IdentityKind.EMAIL, "bo.buyer@globex.example")})
    )
    kept = keep_of_delivery("zoom", body, result, PrivacyPolicy(), erased)  # type: ignore[arg-type]
    assert kept.raw_body is None
    [event] = kept.zoom_events
    assert event.participant is not None
    assert (event.participant.email, event.participant.name, event.participant.user_id) == (
        ERASED_ADDRESS,
        None,
        None,
    )


#: A ``<Dial>`` leg of Ana's softphone call (``client:ana`` to a TwiML application), dialing Bo.
TWILIO_LEG = (
    b"CallSid=CA-leg&ParentCallSid=CA-parent&CallStatus=completed&CallDuration=35&SequenceNumber=2"
    b"&Direction=outbound-dial&From=%2B16505551234&To=%2B14155552671"
)
TWILIO_PARENT = (
    b"CallSid=CA-parent&CallStatus=completed&CallDuration=40&SequenceNumber=3"
    b"&Direction=inbound&From=client%3Aana&To=AP0123456789abcdef0123456789abcdef"
)


def _twilio_legs(body: bytes, policy: PrivacyPolicy, erased: ErasedIdentities) -> tuple[TwilioLeg, ...]:
    result = ADAPTERS["twilio"].parse(make_request(body), CONFIG)
    kept = keep_of_delivery("twilio", body, result, policy, erased)
    assert kept.raw_body is None if kept.withheld else kept.raw_body == body
    return kept.twilio_legs


def test_a_twilio_leg_dialing_an_excluded_or_erased_number_keeps_no_trace_of_it() -> None:
    """The call state is stored between deliveries: an excluded number never reaches it (the
    call is then never emitted, as its activity would be excluded), an erased one is dropped."""
    (parent,) = _twilio_legs(TWILIO_PARENT, PrivacyPolicy(), NO_ERASURES)
    excluded = PrivacyPolicy(excluded_addresses=frozenset({"+14155552671"}))
    (leg,) = _twilio_legs(TWILIO_LEG, excluded, NO_ERASURES)
    assert (leg.participants, leg.excluded) == ((), True)
    state, first = fold_twilio_call(None, leg)
    assert (first, fold_twilio_call(state, parent)[1]) == (None, None)
    assert "4155552671" not in state.model_dump_json()
    key = erasure_key("test-secret-key")
    erased = ErasedIdentities(key, frozenset({identity_hash(key, IdentityKind.PHONE, "+14155552671")}))
    (forgotten,) = _twilio_legs(TWILIO_LEG, PrivacyPolicy(), erased)
    assert (forgotten.participants, forgotten.excluded) == ((), False)
    (kept,) = _twilio_legs(TWILIO_LEG, PrivacyPolicy(), NO_ERASURES)
    assert [p.phone for p in kept.participants] == ["+14155552671"]


def test_secrets_stay_masked_in_what_is_captured() -> None:
    body, result = _delivery("aircall", "call.ended.json")
    kept = keep_of_delivery("aircall", body, result, PrivacyPolicy(keep_subjects=True), NO_ERASURES)  # type: ignore[arg-type]
    assert kept.raw_body is not None
    assert b'"token":"***"' in kept.raw_body


def test_a_calendar_page_from_an_excluded_or_erased_person_s_mailbox_is_never_captured() -> None:
    """A page of deletions holds no participant, but names the mailbox it was read from."""
    body = b'{"mailbox": "ceo@acme.example", "items": [{"id": "evt-1", "status": "cancelled"}]}'
    result = ADAPTERS["google-calendar"].parse(make_request(body), CONFIG)
    captured = keep_of_delivery("google-calendar", body, result, PrivacyPolicy(), NO_ERASURES).raw_body
    assert captured == b'{"mailbox":"ceo@acme.example","items":[{"id":"evt-1","status":"cancelled"}]}'
    excluded = PrivacyPolicy(excluded_addresses=frozenset({"CEO@acme.example"}))
    kept = keep_of_delivery("google-calendar", body, result, excluded, NO_ERASURES)
    assert (kept.raw_body, kept.withheld) == (None, "excluded mailbox")
    key = erasure_key("test-secret-key")
    erased = ErasedIdentities(key, frozenset({identity_hash(key, IdentityKind.EMAIL, "ceo@acme.example")}))
    forgotten = keep_of_delivery("google-calendar", body, result, PrivacyPolicy(), erased)
    assert (forgotten.raw_body, forgotten.withheld) == (None, "erased mailbox")


def test_a_calendar_page_of_events_from_an_excluded_persons_mailbox_is_never_captured() -> None:
    """Not only a page of deletions: any page naming her mailbox (before 2026-12, one without
    deletions was captured whole)."""
    event = orjson.loads(fixture("google-calendar", "event.confirmed.json"))
    body = orjson.dumps({"mailbox": "ceo@acme.example", "items": [event]})
    result = ADAPTERS["google-calendar"].parse(make_request(body), CONFIG)
    assert result.deletions == ()
    excluded = PrivacyPolicy(excluded_addresses=frozenset({"ceo@acme.example"}))
    kept = keep_of_delivery("google-calendar", body, result, excluded, NO_ERASURES)
    assert (kept.raw_body, kept.withheld) == (None, "excluded mailbox")
    assert (
        keep_of_delivery("google-calendar", body, result, PrivacyPolicy(), NO_ERASURES).raw_body is not None
    )


def _dial_in() -> tuple[bytes, object]:
    """Gil's join by phone: no email, the number he called from."""
    document = orjson.loads(fixture("zoom", "meeting.participant_joined.json"))
    document["payload"]["object"]["participant"].update(
        email="", participant_uuid="DIAL-1", user_name="Gil", phone_number="+12125550198"
    )
    body = orjson.dumps(document)
    return body, ADAPTERS["zoom"].parse(make_request(body), CONFIG)


def test_a_zoom_dial_in_from_an_excluded_or_erased_number_keeps_no_trace_of_it() -> None:
    """Excluded: the join becomes the flag (the meeting is never emitted), as an excluded address.
    Erased: the number and name go; the join stays, a person there whom nothing identifies."""
    body, result = _dial_in()
    excluded = keep_of_delivery(
        "zoom",
        body,
        result,  # type: ignore[arg-type]
        PrivacyPolicy(excluded_addresses=frozenset({"+12125550198"})),
        NO_ERASURES,
    )
    [event] = excluded.zoom_events
    assert (excluded.raw_body, event.participant, event.excluded_participant) == (None, None, True)
    key = erasure_key("test-secret-key")
    erased = ErasedIdentities(key, frozenset({identity_hash(key, IdentityKind.PHONE, "+12125550198")}))
    forgotten = keep_of_delivery("zoom", body, result, PrivacyPolicy(), erased)  # type: ignore[arg-type]
    [event] = forgotten.zoom_events
    assert (forgotten.raw_body, forgotten.withheld) == (None, "erased participant")
    assert event.participant is not None
    assert (event.participant.phone, event.participant.name, event.participant.key) == (None, None, "DIAL-1")


def test_a_salesforce_body_full_of_unclosed_content_tags_is_stripped_in_linear_time() -> None:
    """A valid Outbound Message carrying 40,000 ``<Subject>`` in an XML comment (the adapter reads
    the message; the capture strips content from the raw bytes): each opening tag without its
    closing one made the strip scan to the end of the body again, 20 s of ingest's event loop
    for 360 KB (minutes for the 2 MiB a delivery may hold), every tenant's requests waiting."""
    body = fixture("salesforce", "Task.xml").replace(
        b"</soapenv:Envelope>", b"<!-- " + b"<Subject>" * 40_000 + b" --></soapenv:Envelope>"
    )
    result = ADAPTERS["salesforce"].parse(make_request(body), CONFIG)
    started = time.perf_counter()
    kept = keep_of_delivery("salesforce", body, result, PrivacyPolicy(), NO_ERASURES)
    assert time.perf_counter() - started < 2.0
    assert kept.raw_body is not None
    assert b"Email: Proposal for Globex" not in kept.raw_body
    assert kept.raw_body.count(b"<Subject>") == 40_000  # none closed: nothing else is content
