"""RingCentral telephony session notifications (JSON webhooks), authenticated by the
``Verification-Token`` header.

Three kinds of request reach this endpoint:

* the subscription's validation request: a ``Validation-Token`` header and no body, answered
  ``200`` with the same header (RingCentral creates the subscription only then);
* telephony session notifications (event filter ``/restapi/v1.0/account/~/telephony/sessions``,
  or an extension's ``.../extension/{id}/telephony/sessions``): ``{uuid, event, timestamp,
  subscriptionId, ownerId, body: {telephonySessionId, sequence, eventTime, parties: [...]}}``;
* any other notification of the subscription: acknowledged and listed as ignored.

A notification tells one status change of a call's parties (``Setup``, ``Proceeding``,
``Answered``, ``VoiceMail``, ``Disconnected``, ...), at ``eventTime``, numbered by ``sequence``,
and carries no call length: RingCentral's guide computes talk time from the times between status
changes, gathered per ``telephonySessionId`` and ordered by ``sequence``. So the adapter returns
each notification as a :class:`RingCentralEvent`, and ingest folds them into the session kept in
``webhook_state`` (:func:`fold_ringcentral_session`, like Twilio's legs), publishing the call once
every party of the session is disconnected.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from libs.common.contracts.activities import (
    NO_CRM_REFERENCES,
    ActivityIn,
    ActivityKind,
    CrmReferences,
    Direction,
    Outcome,
    Participant,
    ParticipantRole,
)
from libs.common.contracts.fields import SafeStr
from services.ingest.domain.ignored import OTHER, Ignored
from services.ingest.domain.normalize import (
    JsonObject,
    duration_between,
    load_json_object,
    make_participant,
    not_ahead,
    parse_iso_datetime,
    unique_participants,
    validation_to_rejection,
)
from services.ingest.domain.signatures import any_secret_matches, require_header, require_secrets
from services.ingest.domain.stored_state import StoredState
from services.ingest.domain.webhook_types import (
    AdapterResult,
    HandshakeResponse,
    TenantWebhookConfig,
    WebhookRejected,
    WebhookRequest,
)

SOURCE = "ringcentral"
VALIDATION_HEADER = "validation-token"
VERIFICATION_HEADER = "verification-token"
#: Header fields a refusal names, also when the header is missing (a problem's ``"in": "header"``).
TOKEN_HEADERS = frozenset({VALIDATION_HEADER, VERIFICATION_HEADER})
#: RingCentral refuses a validation answer above 1,024 bytes, headers included; a token is a
#: header value, so it must be printable ASCII without spaces (a CR or LF would split the answer).
MAX_VALIDATION_TOKEN = 256
_TOKEN = re.compile(r"^[\x21-\x7e]+$")
#: The account-level and the extension-level telephony session event filters (query ignored).
TELEPHONY_SESSIONS = re.compile(
    r"^/restapi/v1\.0/account/[^/?]+(?:/extension/[^/?]+)?/telephony/sessions(?:\?.*)?$"
)
MAX_PARTIES = 100
#: Parties a session keeps (``fold_ringcentral_session``): a session's state is stored whole and
#: read at each of its notifications, so a runaway one (a queue ringing agents for hours) must not
#: grow it without end; a party first named past this is left out, known ones still change.
MAX_SESSION_PARTIES = 500
DIRECTIONS: dict[str, Direction] = {"Inbound": Direction.INBOUND, "Outbound": Direction.OUTBOUND}
#: A party that left the call: ``Gone`` moved to another session (a call flip, a park pickup).
FINISHED = frozenset({"Disconnected", "Gone"})
#: ``status.reason`` of a ``Disconnected`` party whose call never rang anyone.
BUSY_REASONS = frozenset({"TargetBusy"})
#: ``status.reason`` of a party that ended because the caller chose an option: an IVR menu
#: (auto-receptionist) that routed the caller on. Its answer is a recording's, not a person's.
MENU_REASONS = frozenset({"CallerInputRedirect"})
FAILED_REASONS = frozenset(
    {
        "InvalidNumber",
        "InternationalDisabled",
        "DestinationBlocked",
        "NotEnoughFunds",
        "NoSuchUser",
        "InternalError",
    }
)


def validation_token(request: WebhookRequest) -> str | None:
    """The subscription's validation request: a ``Validation-Token`` header and an empty body
    (a notification may carry the header too, with its body)."""
    token = request.headers.get(VALIDATION_HEADER)
    return token if token is not None and not request.body.strip() else None


@dataclass(frozen=True, slots=True)
class RingCentralAdapter:
    """The validation handshake, and telephony session notifications as events to fold."""

    source: str = SOURCE
    version: str = "ringcentral/1"

    def verify(self, request: WebhookRequest, secrets: Sequence[str], config: TenantWebhookConfig) -> None:
        # The validation request proves nothing and is echoed for any tenant id alike (as Graph's).
        if validation_token(request) is not None:
            return
        require_secrets(secrets)
        token = require_header(request, VERIFICATION_HEADER)
        if not any_secret_matches(secrets, [token], lambda s: s):
            raise WebhookRejected(401, VERIFICATION_HEADER, "does not match")

    def parse(
        self, request: WebhookRequest, config: TenantWebhookConfig, secrets: Sequence[str] = ()
    ) -> AdapterResult:
        token = validation_token(request)
        if token is not None:
            token = token.strip()
            if not token or len(token) > MAX_VALIDATION_TOKEN or not _TOKEN.match(token):
                raise WebhookRejected(
                    422,
                    VALIDATION_HEADER,
                    f"expected 1 to {MAX_VALIDATION_TOKEN} printable characters without spaces",
                )
            return AdapterResult(
                handshake=HandshakeResponse(200, "text/plain", b"", {"Validation-Token": token})
            )
        envelope = load_json_object(request.body)
        event = envelope.req_str("event")
        if not TELEPHONY_SESSIONS.match(event):
            return AdapterResult(ignored=(Ignored(f"{event}: not a telephony session event", OTHER),))
        body = envelope.req_obj("body")
        parties = body.objs("parties")
        if not parties:
            return AdapterResult(ignored=(Ignored(f"{body.field('parties')}: no party to tell of", OTHER),))
        if len(parties) > MAX_PARTIES:
            raise WebhookRejected(422, body.field("parties"), f"more than {MAX_PARTIES} parties")
        unread: list[Ignored] = []
        fields = {
            "session_id": body.req_str("telephonySessionId"),
            "sequence": body.req_int("sequence"),
            "event_time": not_ahead(
                parse_iso_datetime(body.req_str("eventTime"), body.field("eventTime")),
                request.received_at,
                body.field("eventTime"),
            ),
            "parties": tuple(_party(p, config, unread) for p in parties),
        }
        try:
            notification = RingCentralEvent.model_validate(fields)
        except ValidationError as error:  # an id with a control character, a negative sequence...
            raise validation_to_rejection(
                body.path or "body", error, {"session_id": body.field("telephonySessionId")}
            ) from None
        return AdapterResult(ringcentral_events=(notification,), ignored=tuple(unread))


class RingCentralParty(StoredState):
    """One party of a call (a RingCentral extension's endpoint: a rep's phone, a call queue, an
    IVR) as one notification tells it. ``from`` and ``to`` are seen from the party: an
    ``Outbound`` party's own line is ``from``, an ``Inbound`` one's is ``to``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    party_id: SafeStr = Field(min_length=1, max_length=256)
    direction: Direction
    status: SafeStr = Field(min_length=1, max_length=64)
    reason: SafeStr | None = Field(default=None, max_length=64)
    extension_id: SafeStr | None = Field(default=None, max_length=256)
    #: The rep the tenant maps the extension to (``rep_aliases``), if any.
    rep_id: str | None = None
    #: The party's own line (the tenant's side of the call) and the number at the other end.
    line: Participant | None = None
    counterpart: Participant | None = None
    #: The other end is another extension of the account (a call between colleagues).
    internal: bool = False
    #: The party is one of the tenant's ``menu_extensions`` (an IVR menu, a call queue): its
    #: answer is a recording's, not a person's.
    menu: bool = False

    #: A session stored by this version stays readable by the one before it while a deploy
    #: rolls, unless a menu answered.
    written_when_set = ("menu",)


class RingCentralEvent(BaseModel):
    """One telephony session notification: the fold's input."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    session_id: SafeStr = Field(min_length=1, max_length=256)
    sequence: int = Field(ge=0, le=2**62)
    event_time: datetime
    parties: tuple[RingCentralParty, ...]
    #: An excluded person was on the call (not kept): the call is never emitted.
    excluded: bool = False


def _party(party: JsonObject, config: TenantWebhookConfig, unread: list[Ignored]) -> RingCentralParty:
    region = config.default_phone_region
    raw_direction = party.req_str("direction")
    direction = DIRECTIONS.get(raw_direction)
    if direction is None:
        raise WebhookRejected(422, party.field("direction"), "expected Inbound or Outbound")
    status = party.req_obj("status")
    own_key, other_key = ("from", "to") if direction is Direction.OUTBOUND else ("to", "from")
    own, other = party.opt_obj(own_key), party.opt_obj(other_key)
    own_role, other_role = (
        (ParticipantRole.CALLER, ParticipantRole.CALLEE)
        if direction is Direction.OUTBOUND
        else (ParticipantRole.CALLEE, ParticipantRole.CALLER)
    )
    extension_id = party.opt_str("extensionId")
    extension_field = party.field("extensionId")
    if not extension_id and own is not None:
        extension_id, extension_field = own.opt_str("extensionId"), own.field("extensionId")
    fields = {
        "party_id": party.req_str("id"),
        "direction": direction,
        "status": status.req_str("code"),
        "reason": status.opt_str("reason"),
        "extension_id": extension_id,
        "rep_id": config.rep_aliases.get(extension_id) if extension_id else None,
        "line": _line(own, own_role, region),
        "counterpart": _counterpart(other, other_role, region, unread),
        "internal": other is not None and _is_extension(other),
        "menu": _is_menu(extension_id, own, config.menu_extensions),
    }
    try:
        return RingCentralParty.model_validate(fields)
    except ValidationError as error:
        raise validation_to_rejection(
            party.path,
            error,
            {
                "party_id": party.field("id"),
                "status": status.field("code"),
                "reason": status.field("reason"),
                "extension_id": extension_field,
            },
        ) from None


def _counterpart(
    other: JsonObject | None, role: ParticipantRole, region: str, unread: list[Ignored]
) -> Participant | None:
    """The number at the other end. Another extension of the account (an internal call dialled
    by its short number) is the tenant's side, left out as a line is. A number that cannot be
    read (``sip:123@sip.ringcentral.com``, a short code, ``*67``) is no phone, as a withheld one:
    the call is kept with the rep's side, and the number listed in ``unread`` (the answer's
    ``ignored``). A 422 would refuse every notification of the session, losing the call, and
    RingCentral blacklists a subscription whose deliveries keep failing."""
    if other is None:
        return None
    if _is_extension(other):
        return _line(other, role, region)
    field = other.field("phoneNumber")
    try:
        return make_participant(role=role, field=field, region=region, phone=other.opt_str("phoneNumber"))
    except WebhookRejected as refused:
        unread.append(Ignored(f"{field}: {refused.reason}: the other end kept as no number", OTHER))
        return None


def _is_menu(extension_id: str | None, own: JsonObject | None, menus: frozenset[str]) -> bool:
    """The party is an extension the tenant lists as a menu (``menu_extensions``): by its
    ``extensionId`` (on every notification), or by its extension number, which RingCentral
    sends as the own side's ``extensionNumber`` or as its ``phoneNumber`` when the extension was
    dialled by it (an internal call; a caller from outside reaches it by a phone number)."""
    if not menus:
        return False
    names = [extension_id]
    if own is not None:
        names += [own.opt_str("extensionId"), own.opt_str("extensionNumber"), own.opt_str("phoneNumber")]
    return any(name in menus for name in names if name)


def _is_extension(end: JsonObject) -> bool:
    """``from`` / ``to`` naming an extension: the account's side, not a customer's number."""
    return end.has("extensionId") or end.has("extensionNumber")


def _line(own: JsonObject | None, role: ParticipantRole, region: str) -> Participant | None:
    """The party's own number, named after its extension: a number that is none (an extension
    dialled by its short number) is left out, the call keeps its extension's rep and other side;
    a name that cannot be one (a control character) is left out, the number kept."""
    if own is None:
        return None
    phone = own.opt_str("phoneNumber")
    for name in (own.opt_str("name"), None):
        try:
            return make_participant(
                role=role, field=own.field("phoneNumber"), region=region, phone=phone, name=name
            )
        except WebhookRejected:
            continue
    return None


# --------------------------------------------------------------------------- the session fold


class RingCentralPartyState(BaseModel):
    """What the session keeps of one party: its latest notification, and when it answered and
    hung up (facts that later notifications never undo)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    party: RingCentralParty
    #: The sequence of the notification ``party`` comes from, and of the first one naming it.
    sequence: int
    first_sequence: int
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    voicemail: bool = False


class RingCentralSessionState(BaseModel):
    """A telephony session so far; stored as JSON in ``webhook_state``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    session_id: str
    parties: dict[str, RingCentralPartyState] = Field(default_factory=dict)
    #: The earliest ``eventTime`` seen: the call's start (its first ringing).
    started_at: datetime
    excluded: bool = False
    #: Revision of the last activity emitted; a re-emission always goes higher.
    emitted_revision: int = 0


def fold_ringcentral_session(
    state: RingCentralSessionState | None, event: RingCentralEvent
) -> tuple[RingCentralSessionState, ActivityIn | None]:
    """Merge one notification into the session; emit the call when the session is finished
    (every party ``Disconnected`` or ``Gone``) and what it says of the call changed.

    Notifications may arrive in any order: a party keeps its status of the highest sequence, the
    earliest answer and the latest hang-up. A redelivered notification changes nothing and emits
    nothing. Each emission is a new revision of one activity, the ``telephonySessionId``: a
    session that looked finished (a rep transferred the caller) and goes on emits again.
    """
    current = state or RingCentralSessionState(session_id=event.session_id, started_at=event.event_time)
    parties = dict(current.parties)
    for party in event.parties:
        known = parties.get(party.party_id)
        if known is None and len(parties) >= MAX_SESSION_PARTIES:
            continue
        parties[party.party_id] = _merged(known, party, event)
    merged = current.model_copy(
        update={
            "parties": parties,
            "started_at": min(current.started_at, event.event_time),
            "excluded": current.excluded or event.excluded,
        }
    )
    revision = current.emitted_revision + 1
    activity = session_call(merged, revision)
    if activity is None or activity == session_call(current, revision):
        return merged, None
    return merged.model_copy(update={"emitted_revision": revision}), activity


def _merged(
    known: RingCentralPartyState | None, party: RingCentralParty, event: RingCentralEvent
) -> RingCentralPartyState:
    answered = event.event_time if party.status == "Answered" else None
    ended = event.event_time if party.status in FINISHED else None
    if known is None:
        return RingCentralPartyState(
            party=party,
            sequence=event.sequence,
            first_sequence=event.sequence,
            answered_at=answered,
            ended_at=ended,
            voicemail=party.status == "VoiceMail",
        )
    newer = event.sequence > known.sequence
    return RingCentralPartyState(
        party=party if newer else known.party,
        sequence=max(known.sequence, event.sequence),
        first_sequence=min(known.first_sequence, event.sequence),
        answered_at=_earliest(known.answered_at, answered),
        ended_at=_latest(known.ended_at, ended),
        voicemail=known.voicemail or party.status == "VoiceMail",
    )


def _earliest(a: datetime | None, b: datetime | None) -> datetime | None:
    return min(a, b) if a is not None and b is not None else a or b


def _latest(a: datetime | None, b: datetime | None) -> datetime | None:
    return max(a, b) if a is not None and b is not None else a or b


def session_call(state: RingCentralSessionState, revision: int) -> ActivityIn | None:
    """The finished session as one call (None while a party is still on it, or nobody in it has
    a number).

    Its direction is internal when every party's other end is another extension of the account
    (colleagues calling each other), else its first party's (the caller's side for an outbound
    call, the line that rang for an inbound one); it is connected when a party answered (a menu
    is no answer: an extension the tenant lists in ``menu_extensions``, or an IVR menu that
    routed the caller on, ``MENU_REASONS``), from the first answer to the last hang-up of a party
    that answered; else a voicemail when it went to voicemail, busy or
    failed when RingCentral says why it ended so, else not answered (a missed call). Its people
    are the parties' own lines (those who answered first, the last to answer first: the rep a
    call was transferred or parked to comes before the one who took it, so attribution credits
    her as it credits the first rep listed) and the numbers at the other end. Its rep is the
    mapped extension (``rep_aliases``) of the last party who answered, else of the first mapped
    party: a front desk that transfers the caller to a rep makes the call that rep's. The
    extensions are kept in that order (``crm.owner_identities``), so attribution credits the rep
    the tenant maps them to when it decides, a mapping made after the call included.
    """
    parties = sorted(state.parties.values(), key=lambda p: (p.first_sequence, p.party.party_id))
    if state.excluded or not parties or any(p.party.status not in FINISHED for p in parties):
        return None
    answered = sorted((p for p in parties if _took_the_call(p)), key=_answer_order)
    others = [p for p in parties if not _took_the_call(p)]
    participants = unique_participants(
        [
            *(p.party.line for p in [*reversed(answered), *others]),
            *(p.party.counterpart for p in parties),
        ]
    )[:500]
    if not participants:
        return None
    # The extensions in the order their mapping credits them: attribution maps them again at
    # decision time (a mapping made or changed later re-credits the call), ingest now.
    ranked = [*reversed(answered), *parties]
    extensions = tuple(dict.fromkeys(p.party.extension_id for p in ranked if p.party.extension_id))[:64]
    rep_id = next((p.party.rep_id for p in ranked if p.party.rep_id), None)
    duration = 0
    if answered:
        first_answer = answered[0].answered_at
        assert first_answer is not None
        duration = duration_between(first_answer, max((p.ended_at or first_answer) for p in answered))
    return ActivityIn(
        source=SOURCE,
        external_id=state.session_id,
        kind=ActivityKind.CALL,
        direction=Direction.INTERNAL
        if all(p.party.internal for p in parties)
        else parties[0].party.direction,
        outcome=_outcome(parties, bool(answered)),
        occurred_at=state.started_at,
        duration_seconds=duration,
        participants=participants,
        revision=revision,
        crm=CrmReferences(owner_rep_id=rep_id, owner_identities=extensions)
        if rep_id or extensions
        else NO_CRM_REFERENCES,
    )


def _took_the_call(party: RingCentralPartyState) -> bool:
    """The party answered, and is no menu: neither one the tenant lists (``menu_extensions``:
    an IVR menu, a call queue playing its greeting) nor an IVR menu that answered and routed the
    caller on a key press (``MENU_REASONS``)."""
    return party.answered_at is not None and not party.party.menu and party.party.reason not in MENU_REASONS


def _answer_order(party: RingCentralPartyState) -> tuple[datetime, int]:
    assert party.answered_at is not None
    return party.answered_at, party.first_sequence


def _outcome(parties: Sequence[RingCentralPartyState], answered: bool) -> Outcome:
    if answered:
        return Outcome.CONNECTED
    if any(p.voicemail for p in parties):
        return Outcome.VOICEMAIL
    reasons = {p.party.reason for p in parties}
    if reasons & BUSY_REASONS:
        return Outcome.BUSY
    if reasons & FAILED_REASONS:
        return Outcome.FAILED
    return Outcome.NO_ANSWER
