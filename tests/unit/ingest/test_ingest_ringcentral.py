"""RingCentral: the validation handshake, the Verification-Token, and telephony session
notifications folded into one call per session, published once the session is finished."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
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
)
from libs.common.erasures import ErasedIdentities
from services.ingest.domain.capture import keep_of_delivery
from services.ingest.domain.privacy import PrivacyPolicy
from services.ingest.domain.vendors.ringcentral import (
    MAX_SESSION_PARTIES,
    RingCentralEvent,
    RingCentralSessionState,
    fold_ringcentral_session,
)
from services.ingest.domain.webhooks import ADAPTERS, WebhookRejected

from .ingest_webhook_helpers import CONFIG, dumps, fixture, fixture_json, make_request

TOKEN = "rc-verification-token-1"
adapter = ADAPTERS["ringcentral"]
ANA_EXT, DESK_EXT = "62944090008", "62944090001"
ANA_LINE, DESK_LINE, BO = "+16505551234", "+16505550100", "+14155552671"
MAPPED = replace(CONFIG, rep_aliases={ANA_EXT: "rep-ana"})
SESSION = "s-a0d7f4c1b2e34c5f9e8d7c6b5a4f3e2d"


def party(
    code: str,
    *,
    party_id: str = "p-1",
    direction: str = "Outbound",
    extension: str = ANA_EXT,
    line: str = ANA_LINE,
    name: str = "Ana Seller",
    other: str | None = BO,
    reason: str | None = None,
) -> dict[str, Any]:
    """One party as the Account Telephony Sessions Event lists it; ``from`` / ``to`` are seen
    from the party (an inbound party's own line is ``to``)."""
    own = {"phoneNumber": line, "name": name, "extensionId": extension}
    far: dict[str, Any] = {"phoneNumber": other} if other is not None else {}
    status: dict[str, Any] = {"code": code, "rcc": False, **({"reason": reason} if reason else {})}
    ends = {"from": own, "to": far} if direction == "Outbound" else {"from": far, "to": own}
    return {
        "accountId": "37439510",
        "extensionId": extension,
        "id": party_id,
        "direction": direction,
        **ends,
        "status": status,
        "missedCall": False,
        "standAlone": False,
    }


def notification(sequence: int, at: str, *parties: dict[str, Any], session: str = SESSION) -> dict[str, Any]:
    return {
        "uuid": f"uuid-{session}-{sequence}",
        "event": "/restapi/v1.0/account/37439510/telephony/sessions",
        "timestamp": at,
        "subscriptionId": "2f5c1a9e-8d3b-4c7a-b1e2-6a0f9d8c7b54",
        "ownerId": ANA_EXT,
        "body": {
            "sequence": sequence,
            "sessionId": "1456789012",
            "telephonySessionId": session,
            "serverId": "10.13.22.253.TAM",
            "eventTime": at,
            "origin": {"type": "Call"},
            "parties": list(parties),
        },
    }


def headers(token: str = TOKEN) -> dict[str, str]:
    return {"content-type": "application/json", "verification-token": token}


def events_of(document: dict[str, Any], config: Any = MAPPED) -> tuple[RingCentralEvent, ...]:
    request = make_request(dumps(document), headers())
    adapter.verify(request, [TOKEN], config)
    return adapter.parse(request, config).ringcentral_events


def fold_all(documents: Sequence[dict[str, Any]], config: Any = MAPPED) -> list[ActivityIn]:
    """Every activity the session emits as the notifications arrive in this order."""
    state: RingCentralSessionState | None = None
    emitted: list[ActivityIn] = []
    for document in documents:
        for event in events_of(document, config):
            state, activity = fold_ringcentral_session(state, event)
            if activity is not None:
                emitted.append(activity)
    return emitted


#: Ana calls Bo: ringing at 15:00:00, answered at 15:00:12, hung up at 15:05:12.
OUTBOUND = [
    notification(1, "2026-11-24T15:00:00.000Z", party("Setup")),
    notification(2, "2026-11-24T15:00:01.000Z", party("Proceeding")),
    notification(3, "2026-11-24T15:00:12.000Z", party("Answered")),
    notification(4, "2026-11-24T15:05:12.000Z", party("Disconnected", reason="CallFinished")),
]


# --------------------------------------------------------------------------- handshake, token


def test_the_validation_request_is_answered_with_its_token_in_the_header() -> None:
    request = make_request(b"", {"validation-token": "3f2a9c1e-77b0-4d6e-9f1a-0c8b7e6d5a43"})
    adapter.verify(request, [], CONFIG)  # no secret needed: the echo proves nothing
    handshake = adapter.parse(request, CONFIG).handshake
    assert handshake is not None
    assert (handshake.status_code, handshake.body) == (200, b"")
    assert dict(handshake.headers) == {"Validation-Token": "3f2a9c1e-77b0-4d6e-9f1a-0c8b7e6d5a43"}


@pytest.mark.parametrize("token", ["bad\r\nSet-Cookie: a=b", "with space", "x" * 257])
def test_a_validation_token_that_cannot_be_a_header_value_is_a_422(token: str) -> None:
    with pytest.raises(WebhookRejected) as refused:
        adapter.parse(make_request(b"", {"validation-token": token}), CONFIG)
    assert (refused.value.status_code, refused.value.field) == (422, "validation-token")


def test_a_notification_carrying_a_validation_token_is_still_a_notification() -> None:
    """Older subscriptions send the token with every notification too: the body decides."""
    request = make_request(
        fixture("ringcentral", "session.answered.json"), {**headers(), "validation-token": "abc"}
    )
    adapter.verify(request, [TOKEN], CONFIG)
    result = adapter.parse(request, CONFIG)
    assert result.handshake is None
    assert len(result.ringcentral_events) == 1


@pytest.mark.parametrize(
    ("sent", "reason"),
    [
        ({}, "missing"),
        ({"verification-token": ""}, "missing"),
        ({"verification-token": "guess"}, "does not match"),
    ],
)
def test_the_verification_token_is_required_and_must_match(sent: dict[str, str], reason: str) -> None:
    request = make_request(fixture("ringcentral", "session.answered.json"), sent)
    with pytest.raises(WebhookRejected) as refused:
        adapter.verify(request, [TOKEN, "rc-verification-token-0"], CONFIG)
    assert (refused.value.status_code, refused.value.field, refused.value.reason) == (
        401,
        "verification-token",
        reason,
    )


def test_either_secret_of_a_rotation_verifies_and_none_configured_refuses() -> None:
    for token in (TOKEN, "rc-verification-token-0"):
        request = make_request(fixture("ringcentral", "session.answered.json"), headers(token))
        adapter.verify(request, [TOKEN, "rc-verification-token-0"], CONFIG)
    with pytest.raises(WebhookRejected) as refused:
        adapter.verify(make_request(b"{}", headers()), [], CONFIG)
    assert (refused.value.status_code, refused.value.field) == (401, "secret")


# --------------------------------------------------------------------------- parsing


def test_a_notification_is_one_event_with_normalised_parties() -> None:
    (event,) = events_of(fixture_json("ringcentral", "session.disconnected.json"))
    assert (event.session_id, event.sequence) == (SESSION, 4)
    assert event.event_time == datetime(2026, 11, 24, 15, 5, 12, tzinfo=UTC)
    (one,) = event.parties
    assert (one.party_id, one.direction, one.status, one.reason) == (
        "p-a0d7f4c1b2e34c5f9e8d7c6b5a4f3e2d-1",
        Direction.OUTBOUND,
        "Disconnected",
        "CallFinished",
    )
    assert (one.extension_id, one.rep_id) == (ANA_EXT, "rep-ana")
    assert one.line == Participant(phone=ANA_LINE, name="Ana Seller", role=ParticipantRole.CALLER)
    assert one.counterpart == Participant(phone=BO, role=ParticipantRole.CALLEE)


def test_other_notifications_are_acknowledged_and_ignored() -> None:
    presence = {"event": "/restapi/v1.0/account/~/extension/~/presence", "body": {"presenceStatus": "Busy"}}
    result = adapter.parse(make_request(dumps(presence), headers()), CONFIG)
    assert (result.ringcentral_events, result.ignored) == (
        (),
        ("/restapi/v1.0/account/~/extension/~/presence: not a telephony session event",),
    )
    extension_level = notification(1, "2026-11-24T15:00:00Z", party("Setup"))
    extension_level["event"] = f"/restapi/v1.0/account/~/extension/{ANA_EXT}/telephony/sessions"
    assert len(events_of(extension_level)) == 1


@pytest.mark.parametrize(
    ("change", "field", "reason"),
    [
        (lambda d: d.pop("event"), "event", "required"),
        (lambda d: d["body"].pop("telephonySessionId"), "body.telephonySessionId", "required"),
        (lambda d: d["body"].pop("sequence"), "body.sequence", "required"),
        (lambda d: d["body"].update(eventTime="yesterday"), "body.eventTime", "not an ISO 8601 date-time"),
        (
            lambda d: d["body"]["parties"][0].update(direction="Sideways"),
            "body.parties[0].direction",
            "expected Inbound or Outbound",
        ),
        (lambda d: d["body"]["parties"][0]["status"].pop("code"), "body.parties[0].status.code", "required"),
        (lambda d: d["body"]["parties"][0].pop("id"), "body.parties[0].id", "required"),
        # The model's field names are not the payload's: a refusal names the payload's.
        (
            lambda d: d["body"].update(telephonySessionId="s-1\x00"),
            "body.telephonySessionId",
            None,
        ),
        (lambda d: d["body"]["parties"][0].update(id="p" * 257), "body.parties[0].id", None),
        (
            lambda d: d["body"]["parties"][0]["status"].update(code="c" * 65),
            "body.parties[0].status.code",
            None,
        ),
        (
            lambda d: d["body"]["parties"][0]["status"].update(reason="r" * 65),
            "body.parties[0].status.reason",
            None,
        ),
        (
            lambda d: d["body"]["parties"][0].update(extensionId="9" * 257),
            "body.parties[0].extensionId",
            None,
        ),
    ],
)
def test_a_bad_notification_is_a_422_naming_the_field(change: Any, field: str, reason: str | None) -> None:
    document = fixture_json("ringcentral", "session.answered.json")
    change(document)
    with pytest.raises(WebhookRejected) as refused:
        adapter.parse(make_request(dumps(document), headers()), CONFIG)
    assert (refused.value.status_code, refused.value.field) == (422, field)
    if reason is not None:
        assert refused.value.reason == reason


def test_a_line_whose_name_cannot_be_one_keeps_its_number() -> None:
    (event,) = events_of(notification(1, "2026-11-24T15:00:00Z", party("Setup", name="Ana\x00Seller")))
    assert event.parties[0].line == Participant(phone=ANA_LINE, role=ParticipantRole.CALLER)


def test_an_internal_extension_or_a_withheld_number_at_the_other_end_is_no_phone() -> None:
    internal = party("Setup", other=None)
    internal["to"] = {"phoneNumber": "102", "extensionNumber": "102", "extensionId": DESK_EXT}
    (event,) = events_of(notification(1, "2026-11-24T15:00:00Z", internal))
    assert event.parties[0].counterpart is None
    (withheld,) = events_of(
        notification(1, "2026-11-24T15:00:00Z", party("Setup", direction="Inbound", other="anonymous"))
    )
    assert withheld.parties[0].counterpart is None


@pytest.mark.parametrize("number", ["sip:123@sip.ringcentral.com", "266696687", "*67", "12"])
def test_a_number_at_the_other_end_that_cannot_be_read_is_no_phone_and_listed(number: str) -> None:
    """A 422 would refuse every notification of the session (the call lost, the subscription
    blacklisted after repeated failures): the number is no phone, as a withheld one, the call
    is kept with the rep's side, and the answer lists what was not read."""
    documents = [
        notification(n, at, party(code, other=number, **extra))
        for n, at, code, extra in [
            (1, "2026-11-24T15:00:00.000Z", "Setup", {}),
            (3, "2026-11-24T15:00:12.000Z", "Answered", {}),
            (4, "2026-11-24T15:05:12.000Z", "Disconnected", {"reason": "CallFinished"}),
        ]
    ]
    result = adapter.parse(make_request(dumps(documents[0]), headers()), MAPPED)
    (event,) = result.ringcentral_events
    assert event.parties[0].counterpart is None
    (note,) = result.ignored
    assert note.startswith("body.parties[0].to.phoneNumber: ")
    assert note.endswith(": the other end kept as no number")
    (call,) = fold_all(documents)
    assert (call.outcome, call.duration_seconds, call.participants, call.crm.owner_rep_id) == (
        Outcome.CONNECTED,
        300,
        (Participant(phone=ANA_LINE, name="Ana Seller", role=ParticipantRole.CALLER),),
        "rep-ana",
    )


# --------------------------------------------------------------------------- the session fold


def test_an_outbound_call_is_published_once_when_the_session_is_finished() -> None:
    (call,) = fold_all(OUTBOUND)
    assert call.source == "ringcentral"
    assert call.external_id == SESSION
    assert (call.kind, call.direction, call.outcome) == (
        ActivityKind.CALL,
        Direction.OUTBOUND,
        Outcome.CONNECTED,
    )
    assert call.occurred_at == datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
    assert call.duration_seconds == 300  # answered 15:00:12, hung up 15:05:12
    assert call.participants == (
        Participant(phone=ANA_LINE, name="Ana Seller", role=ParticipantRole.CALLER),
        Participant(phone=BO, role=ParticipantRole.CALLEE),
    )
    assert call.crm.owner_rep_id == "rep-ana"
    assert call.revision == 1


def test_an_unmapped_extension_leaves_the_rep_to_her_line() -> None:
    (call,) = fold_all(OUTBOUND, CONFIG)
    assert call.crm.owner_rep_id is None
    assert call.participants[0].phone == ANA_LINE
    # Kept all the same: attribution maps it when it decides, a mapping made later included.
    assert call.crm.owner_identities == (ANA_EXT,)


def test_notifications_out_of_order_settle_on_the_same_call() -> None:
    in_order = fold_all(OUTBOUND)[-1]
    shuffled = fold_all([OUTBOUND[3], OUTBOUND[1], OUTBOUND[0], OUTBOUND[2]])
    # The hang-up alone looked like a missed call; the answer, arriving late, makes it connected.
    assert [(a.outcome, a.duration_seconds, a.revision) for a in shuffled] == [
        (Outcome.NO_ANSWER, 0, 1),
        (Outcome.NO_ANSWER, 0, 2),  # the ringing, earlier: the call started at 15:00:01, then 15:00:00
        (Outcome.NO_ANSWER, 0, 3),
        (Outcome.CONNECTED, 300, 4),
    ]
    assert shuffled[-1].model_copy(update={"revision": 1}) == in_order


def test_a_redelivered_notification_changes_nothing() -> None:
    state = None
    for document in OUTBOUND:
        (event,) = events_of(document)
        state, _ = fold_ringcentral_session(state, event)
    assert state is not None
    (last,) = events_of(OUTBOUND[3])
    again, activity = fold_ringcentral_session(state, last)
    assert (again, activity) == (state, None)


def test_a_missed_inbound_call_is_not_answered_with_no_talk_time() -> None:
    ringing = party("Proceeding", direction="Inbound")
    (call,) = fold_all(
        [
            notification(1, "2026-11-24T09:00:00Z", ringing),
            notification(
                2,
                "2026-11-24T09:00:30Z",
                {**ringing, "status": {"code": "Disconnected", "reason": "NoAnswer"}, "missedCall": True},
            ),
        ]
    )
    assert (call.direction, call.outcome, call.duration_seconds) == (Direction.INBOUND, Outcome.NO_ANSWER, 0)
    assert call.participants == (
        Participant(phone=ANA_LINE, name="Ana Seller", role=ParticipantRole.CALLEE),
        Participant(phone=BO, role=ParticipantRole.CALLER),
    )


def test_an_inbound_call_sent_to_voicemail_is_a_voicemail() -> None:
    (call,) = fold_all(
        [
            notification(1, "2026-11-24T09:00:00Z", party("Proceeding", direction="Inbound")),
            notification(2, "2026-11-24T09:00:20Z", party("VoiceMail", direction="Inbound")),
            notification(3, "2026-11-24T09:01:05Z", party("Disconnected", direction="Inbound")),
        ]
    )
    assert (call.outcome, call.duration_seconds) == (Outcome.VOICEMAIL, 0)


@pytest.mark.parametrize(
    ("reason", "outcome"), [("TargetBusy", Outcome.BUSY), ("InvalidNumber", Outcome.FAILED)]
)
def test_a_call_that_never_rang_says_why(reason: str, outcome: Outcome) -> None:
    (call,) = fold_all(
        [
            notification(1, "2026-11-24T09:00:00Z", party("Setup")),
            notification(2, "2026-11-24T09:00:04Z", party("Disconnected", reason=reason)),
        ]
    )
    assert (call.outcome, call.duration_seconds) == (outcome, 0)


def _desk_line(code: str, reason: str | None, *, party_id: str, name: str, **own: str) -> dict[str, Any]:
    """The party of the main number's extension (``DESK_EXT``) in an inbound call from Bo, named
    ``name``; ``own``: more of its own line (``to``)."""
    answered = party(
        code,
        party_id=party_id,
        direction="Inbound",
        extension=DESK_EXT,
        line=DESK_LINE,
        name=name,
        reason=reason,
    )
    return {**answered, "to": {**answered["to"], **own}}


def test_a_call_the_front_desk_transfers_is_the_reps_who_took_it_after() -> None:
    """Bo calls the main number; the front desk answers at 10:00:05 and transfers him to Ana
    (a second party in the same session), who answers at 10:00:40 and hangs up at 10:12:40."""

    def desk(code: str, reason: str | None = None) -> dict[str, Any]:
        return _desk_line(code, reason, party_id="p-desk", name="Front Desk")

    def ana(code: str) -> dict[str, Any]:
        return party(code, party_id="p-ana", direction="Inbound")

    emitted = fold_all(
        [
            notification(1, "2026-11-24T10:00:00Z", desk("Proceeding")),
            notification(2, "2026-11-24T10:00:05Z", desk("Answered")),
            notification(3, "2026-11-24T10:00:30Z", desk("Disconnected", "BlindTransfer")),
            notification(4, "2026-11-24T10:00:31Z", ana("Setup")),
            notification(5, "2026-11-24T10:00:40Z", ana("Answered")),
            notification(6, "2026-11-24T10:12:40Z", ana("Disconnected")),
        ]
    )
    # The desk's hang-up looked like the end; Ana's party reopened the session.
    assert [a.revision for a in emitted] == [1, 2]
    call = emitted[-1]
    assert (call.direction, call.outcome) == (Direction.INBOUND, Outcome.CONNECTED)
    assert call.duration_seconds == 755  # the desk's answer at 10:00:05 to Ana's hang-up at 10:12:40
    assert call.crm.owner_rep_id == "rep-ana"
    # The extensions in the order their mapping credits them: the last to answer first.
    assert call.crm.owner_identities == (ANA_EXT, DESK_EXT)
    # The one who took the call last comes first: attribution credits the first rep listed.
    assert call.participants == (
        Participant(phone=ANA_LINE, name="Ana Seller", role=ParticipantRole.CALLEE),
        Participant(phone=DESK_LINE, name="Front Desk", role=ParticipantRole.CALLEE),
        Participant(phone=BO, role=ParticipantRole.CALLER),
    )


def test_an_ivr_menu_that_routed_the_caller_is_no_answer() -> None:
    """Bo calls the main number; the auto-receptionist answers at 10:00:01 and routes him on his
    key press (``CallerInputRedirect``) to Ana, who answers at 10:00:25: talk is hers, 300 s."""

    def menu(code: str, reason: str | None = None) -> dict[str, Any]:
        return party(
            code, party_id="p-ivr", direction="Inbound", extension=DESK_EXT, line=DESK_LINE, reason=reason
        )

    def ana(code: str) -> dict[str, Any]:
        return party(code, party_id="p-ana", direction="Inbound")

    emitted = fold_all(
        [
            notification(1, "2026-11-24T10:00:00Z", menu("Proceeding")),
            notification(2, "2026-11-24T10:00:01Z", menu("Answered")),
            notification(3, "2026-11-24T10:00:15Z", menu("Disconnected", "CallerInputRedirect")),
            notification(4, "2026-11-24T10:00:16Z", ana("Proceeding")),
            notification(5, "2026-11-24T10:00:25Z", ana("Answered")),
            notification(6, "2026-11-24T10:05:25Z", ana("Disconnected")),
        ]
    )
    # The menu alone looked like the end: a call nobody answered; then Ana's.
    assert [(a.outcome, a.duration_seconds) for a in emitted] == [
        (Outcome.NO_ANSWER, 0),
        (Outcome.CONNECTED, 300),
    ]
    assert emitted[-1].participants[0].phone == ANA_LINE


#: The tenant lists its auto-receptionist as a menu (``menu_extensions``).
WITH_MENU = replace(MAPPED, menu_extensions=frozenset({DESK_EXT}))


def _menu(code: str, reason: str | None = None, **own: str) -> dict[str, Any]:
    """The auto-receptionist's party of an inbound call from Bo (its own line ``to``)."""
    return _desk_line(code, reason, party_id="p-ivr", name="Auto-Receptionist", **own)


#: Bo calls the main number; the auto-receptionist answers at 19:30:01, he hangs up at 19:30:40.
MENU_ONLY = [
    notification(1, "2026-11-24T19:30:00Z", _menu("Proceeding")),
    notification(2, "2026-11-24T19:30:01Z", _menu("Answered")),
    notification(3, "2026-11-24T19:30:40Z", _menu("Disconnected", "CallFinished")),
]


def test_a_call_only_a_listed_menu_answered_is_not_connected() -> None:
    """Nothing in the notifications says the party is a menu (no key press): the tenant's
    ``menu_extensions`` does. Without it the menu's answer reads as a conversation of 39 s."""
    (call,) = fold_all(MENU_ONLY, WITH_MENU)
    assert (call.direction, call.outcome, call.duration_seconds) == (Direction.INBOUND, Outcome.NO_ANSWER, 0)
    assert call.crm.owner_rep_id is None
    assert call.participants == (
        Participant(phone=DESK_LINE, name="Auto-Receptionist", role=ParticipantRole.CALLEE),
        Participant(phone=BO, role=ParticipantRole.CALLER),
    )
    (unlisted,) = fold_all(MENU_ONLY, MAPPED)
    assert (unlisted.outcome, unlisted.duration_seconds) == (Outcome.CONNECTED, 39)


@pytest.mark.parametrize(
    ("listed", "own"),
    [
        # By its extension id, on every notification.
        (DESK_EXT, {}),
        # By its extension number: dialled by it (an internal caller), RingCentral sends it as
        # the party's own phoneNumber; or as extensionNumber.
        ("100", {"phoneNumber": "100"}),
        ("100", {"extensionNumber": "100"}),
    ],
)
def test_a_menu_is_known_by_its_extension_id_or_number(listed: str, own: dict[str, str]) -> None:
    config = replace(MAPPED, menu_extensions=frozenset({listed}))
    documents = [
        notification(1, "2026-11-24T19:30:00Z", _menu("Proceeding", **own)),
        notification(2, "2026-11-24T19:30:01Z", _menu("Answered", **own)),
        notification(3, "2026-11-24T19:30:40Z", _menu("Disconnected", "CallFinished", **own)),
    ]
    (call,) = fold_all(documents, config)
    assert (call.outcome, call.duration_seconds) == (Outcome.NO_ANSWER, 0)
    (other_number,) = fold_all(documents, replace(MAPPED, menu_extensions=frozenset({"101"})))
    assert (other_number.outcome, other_number.duration_seconds) == (Outcome.CONNECTED, 39)


def test_a_stored_session_names_menu_only_for_a_menu_party() -> None:
    """The previous version refuses unknown keys in a stored session: without a menu it finds
    none, so both read the sessions the other wrote while a deploy rolls."""
    state: RingCentralSessionState | None = None
    for document in MENU_ONLY[:2]:
        for event in events_of(document, MAPPED):
            state, _ = fold_ringcentral_session(state, event)
    assert state is not None
    assert "menu" not in state.model_dump_json()
    assert RingCentralSessionState.model_validate_json(state.model_dump_json()) == state
    listed = fold_ringcentral_session(None, events_of(MENU_ONLY[1], WITH_MENU)[0])[0]
    assert listed.model_dump(mode="json")["parties"]["p-ivr"]["party"]["menu"] is True
    assert RingCentralSessionState.model_validate_json(listed.model_dump_json()) == listed


def test_a_call_a_listed_menu_routed_to_a_rep_is_hers_from_her_answer() -> None:
    """The menu answers at 20:00:01 and, the caller pressing nothing, routes him on its timeout
    (no ``CallerInputRedirect``) to Ana, who answers at 20:00:30 and hangs up at 20:05:30."""

    def ana(code: str) -> dict[str, Any]:
        return party(code, party_id="p-ana", direction="Inbound")

    documents = [
        notification(1, "2026-11-24T20:00:00Z", _menu("Proceeding")),
        notification(2, "2026-11-24T20:00:01Z", _menu("Answered")),
        notification(3, "2026-11-24T20:00:20Z", _menu("Disconnected")),
        notification(4, "2026-11-24T20:00:21Z", ana("Proceeding")),
        notification(5, "2026-11-24T20:00:30Z", ana("Answered")),
        notification(6, "2026-11-24T20:05:30Z", ana("Disconnected")),
    ]
    emitted = fold_all(documents, WITH_MENU)
    # The menu alone looked like the end: a call nobody answered; then Ana's, 300 s.
    assert [(a.outcome, a.duration_seconds) for a in emitted] == [
        (Outcome.NO_ANSWER, 0),
        (Outcome.CONNECTED, 300),
    ]
    call = emitted[-1]
    assert (call.crm.owner_rep_id, call.crm.owner_identities) == ("rep-ana", (ANA_EXT, DESK_EXT))
    assert call.participants[0] == Participant(phone=ANA_LINE, name="Ana Seller", role=ParticipantRole.CALLEE)
    # Unlisted, the menu's 29 s before her answer were her talk.
    assert fold_all(documents, MAPPED)[-1].duration_seconds == 329


def test_a_call_picked_up_from_park_lists_who_took_it_first() -> None:
    """Ana answers Bo's call and parks it; Cy (an extension nobody maps) picks it up."""
    ana = party("Answered", party_id="p-ana", direction="Inbound")
    picked = party(
        "Answered", party_id="p-cy", direction="Inbound", extension="62944090010", line="+16505551236"
    )
    (call,) = fold_all(
        [
            notification(1, "2026-11-24T11:00:05Z", ana),
            notification(
                2, "2026-11-24T11:01:00Z", {**ana, "status": {"code": "Parked"}, "park": {"id": "*801"}}
            ),
            notification(3, "2026-11-24T11:01:30Z", picked),
            notification(4, "2026-11-24T11:01:30Z", {**ana, "status": {"code": "Gone", "reason": "Pickup"}}),
            notification(5, "2026-11-24T11:06:30Z", {**picked, "status": {"code": "Disconnected"}}),
        ]
    )
    assert (call.outcome, call.duration_seconds) == (Outcome.CONNECTED, 385)
    # Cy's line first: attribution finds his rep by it and credits him, as it credits the
    # first rep listed; Ana, mapped, stays the source's owner when Cy is nobody's.
    assert [p.phone for p in call.participants] == ["+16505551236", ANA_LINE, BO]
    assert call.crm.owner_rep_id == "rep-ana"


def test_a_call_between_two_extensions_is_internal() -> None:
    """Ana dials the desk by its extension number: both parties' other end is an extension."""
    ana = party("Answered", other=None)
    ana["to"] = {"phoneNumber": "102", "extensionId": DESK_EXT}
    desk = party("Answered", party_id="p-2", direction="Inbound", extension=DESK_EXT, line="102", other=None)
    desk["from"] = {"phoneNumber": "101", "extensionId": ANA_EXT}
    hung_up = [{**p, "status": {"code": "Disconnected"}} for p in (ana, desk)]
    (call,) = fold_all(
        [
            notification(1, "2026-11-24T12:00:04Z", ana, desk),
            notification(2, "2026-11-24T12:02:04Z", *hung_up),
        ]
    )
    assert (call.direction, call.outcome, call.duration_seconds) == (
        Direction.INTERNAL,
        Outcome.CONNECTED,
        120,
    )
    assert call.participants == (Participant(phone=ANA_LINE, name="Ana Seller", role=ParticipantRole.CALLER),)
    # A customer at the other end of either party makes it the first party's direction.
    (outbound,) = fold_all(OUTBOUND)
    assert outbound.direction is Direction.OUTBOUND


def test_an_excluded_number_keeps_the_session_from_ever_being_published() -> None:
    policy = PrivacyPolicy(excluded_addresses=frozenset({BO}))
    state = None
    for document in OUTBOUND:
        body = dumps(document)
        result = adapter.parse(make_request(body, headers()), MAPPED)
        kept = keep_of_delivery("ringcentral", body, result, policy, ErasedIdentities(b"k"))
        assert kept.raw_body is None
        (event,) = kept.ringcentral_events
        assert event.excluded
        assert all(p.line is None and p.counterpart is None for p in event.parties)
        state, activity = fold_ringcentral_session(state, event)
        assert activity is None


def test_a_session_keeps_at_most_500_parties() -> None:
    """A queue ringing agent after agent for hours: the session's stored state stops growing at
    500 parties; a party first named after that is left out, the known ones still change."""
    (ringing,) = events_of(notification(1, "2026-11-24T15:00:00.000Z", party("Proceeding")))
    state: RingCentralSessionState | None = None
    for n in range(MAX_SESSION_PARTIES + 1):
        agent = ringing.parties[0].model_copy(update={"party_id": f"p-{n}"})
        state, _ = fold_ringcentral_session(
            state, ringing.model_copy(update={"sequence": n, "parties": (agent,)})
        )
    assert state is not None
    assert (len(state.parties), MAX_SESSION_PARTIES) == (500, 500)
    assert f"p-{MAX_SESSION_PARTIES}" not in state.parties
    (hung_up,) = events_of(
        notification(9_999, "2026-11-24T15:10:00.000Z", party("Disconnected", party_id="p-0"))
    )
    state, _ = fold_ringcentral_session(state, hung_up)
    assert state.parties["p-0"].party.status == "Disconnected"
