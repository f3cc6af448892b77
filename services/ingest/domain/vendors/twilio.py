"""Twilio Voice status callbacks (form-encoded), signed with X-Twilio-Signature."""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import unquote, unquote_to_bytes

import orjson
from pydantic import BaseModel, ConfigDict, Field

from libs.common.contracts.activities import (
    NO_CRM_REFERENCES,
    ActivityIn,
    ActivityKind,
    CrmReferences,
    Direction,
    Outcome,
    Participant,
    ParticipantRole,
    participant_json_fields,
)
from libs.common.contracts.fields import LINE_PATTERN, SafeStr
from libs.common.contracts.tenant_settings import twilio_sip_domain
from libs.common.personal_domains import parent_domains
from libs.common.phones import ParsedPhone, parse_phone
from services.ingest.domain.ignored import NOT_DONE, OTHER, TWILIO_CALL_NOT_ENDED, Ignored
from services.ingest.domain.normalize import (
    build_activity,
    checked_id,
    decode_utf8,
    ensure_body_size,
    make_participant,
    normalize_email,
    not_ahead,
    parse_rfc2822,
    reported_duration,
    unique_participants,
)
from services.ingest.domain.signatures import (
    any_secret_matches,
    b64,
    hmac_sha1,
    require_header,
    require_secrets,
)
from services.ingest.domain.webhook_types import (
    AdapterResult,
    TenantWebhookConfig,
    WebhookRejected,
    WebhookRequest,
)

#: CallStatus -> outcome for the states in which the call has connected or ended.
#: "completed" is decided by CallDuration (see ``_outcome``); earlier states are ignored.
FINAL_OUTCOMES: dict[str, Outcome] = {
    "in-progress": Outcome.CONNECTED,
    "busy": Outcome.BUSY,
    "no-answer": Outcome.NO_ANSWER,
    "failed": Outcome.FAILED,
    "canceled": Outcome.FAILED,
}
NOT_YET_OUTCOMES = frozenset({"queued", "initiated", "ringing"})
#: ``AnsweredBy`` (answering machine detection) values of a call a machine took: a message left
#: on a machine is a voicemail, a fax line a failure, neither a conversation. "human", "unknown"
#: or no detection keep the call connected.
MACHINE_OUTCOMES: dict[str, Outcome] = {
    "machine_start": Outcome.VOICEMAIL,
    "machine_end_beep": Outcome.VOICEMAIL,
    "machine_end_silence": Outcome.VOICEMAIL,
    "machine_end_other": Outcome.VOICEMAIL,
    "fax": Outcome.FAILED,
}

#: Used as revision when the callback carries no SequenceNumber: later states rank higher.
STATUS_RANK: dict[str, int] = {
    "queued": 0,
    "initiated": 1,
    "ringing": 2,
    "in-progress": 3,
    "busy": 4,
    "no-answer": 4,
    "failed": 4,
    "canceled": 4,
    "completed": 4,
}

DIRECTIONS: dict[str, Direction] = {
    "inbound": Direction.INBOUND,
    "outbound-api": Direction.OUTBOUND,
    "outbound-dial": Direction.OUTBOUND,
}


def _signed_payload(url: str, params: Sequence[tuple[str, str]]) -> bytes:
    """What Twilio signs: the URL followed by every parameter name and value, sorted by name."""
    return (url + "".join([name + value for name, value in sorted(params)])).encode("utf-8")


def _signed_with(secret: str, payload: bytes) -> str:
    """The signature: base64 HMAC-SHA1 of the payload."""
    return b64(hmac_sha1(secret.encode("utf-8"), payload))


@functools.lru_cache(maxsize=64)
def _form_params(body: bytes) -> tuple[tuple[str, str], ...]:
    # Cached: ``verify`` and ``parse`` read the same body one after the other (a pure function
    # of the bytes; a refused body raises and is not cached).
    ensure_body_size(body)
    text = decode_utf8(body)
    try:
        return form_fields(text)
    except (ValueError, UnicodeDecodeError):
        raise WebhookRejected(400, "body", "not application/x-www-form-urlencoded") from None


def form_fields(text: str) -> tuple[tuple[str, str], ...]:
    """``tuple(parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text), errors="strict"))``:
    the same pairs, and ``ValueError`` (a field without ``=``, an empty one) or
    ``UnicodeDecodeError`` (escapes that are no UTF-8) where it raises. Each name and value is
    unescaped only when it holds a ``%``, in one ``unquote_to_bytes`` of it: ``unquote`` split
    every escaped value into its ASCII runs with a regular expression first (``text``, decoded
    from UTF-8, holds whole characters only, so decoding the escapes' bytes with the literal
    characters' is decoding each run alone). A third of a Twilio callback's verify and parse.

    A body without an escaped ``&`` or ``=`` is unescaped whole, then split (one
    ``unquote_to_bytes`` instead of one per escaped name or value): the separators are the same
    characters before and after, and text that is UTF-8 around ASCII separators decodes whole
    exactly when each part does. Any refusal is read again part by part, to raise what
    ``parse_qsl`` raises for the first part at fault."""
    if not text:
        return ()
    if "%" not in text:
        return _split_fields(text.replace("+", " "))
    lowered = text.lower()
    if "%26" not in lowered and "%3d" not in lowered:
        try:
            return _split_fields(unquote_to_bytes(text.replace("+", " ")).decode("utf-8"))
        except ValueError:
            pass  # a field without "=", or escapes that are no UTF-8: named below, as parse_qsl
    return _unescaped_fields(text)


def _split_fields(text: str) -> tuple[tuple[str, str], ...]:
    fields = []
    for field in text.split("&"):
        name, equals, value = field.partition("=")
        if not equals:
            raise ValueError(f"bad query field: {field!r}")
        fields.append((name, value))
    return tuple(fields)


def _unescaped_fields(text: str) -> tuple[tuple[str, str], ...]:
    fields = []
    for field in text.split("&"):
        name, equals, value = field.partition("=")
        if not equals:
            raise ValueError(f"bad query field: {field!r}")
        fields.append((_unescaped(name), _unescaped(value)))
    return tuple(fields)


def _unescaped(part: str) -> str:
    part = part.replace("+", " ")
    return part if "%" not in part else unquote_to_bytes(part).decode("utf-8")


@dataclass(frozen=True, slots=True)
class TwilioAdapter:
    """Voice status callbacks; one activity per terminal or connected status."""

    source: str = "twilio"
    version: str = "twilio/1"

    def verify(self, request: WebhookRequest, secrets: Sequence[str], config: TenantWebhookConfig) -> None:
        require_secrets(secrets)
        presented = require_header(request, "x-twilio-signature")
        # What is signed is made once, whichever secrets (two during a rotation) it is checked with.
        payload = _signed_payload(request.url, _form_params(request.body))
        if not any_secret_matches(secrets, [presented], lambda s: _signed_with(s, payload)):
            raise WebhookRejected(401, "x-twilio-signature", "does not match")

    def parse(
        self, request: WebhookRequest, config: TenantWebhookConfig, secrets: Sequence[str] = ()
    ) -> AdapterResult:
        params = dict(_form_params(request.body))

        def required(name: str) -> str:
            value = params.get(name, "").strip()
            if not value:
                raise WebhookRejected(422, name, "required")
            return value

        call_sid = checked_id(required("CallSid"), "CallSid")
        status = required("CallStatus").lower()
        if status in NOT_YET_OUTCOMES:
            return AdapterResult(
                ignored=(Ignored(f"CallStatus={status}: {TWILIO_CALL_NOT_ENDED}", NOT_DONE),)
            )
        if status not in FINAL_OUTCOMES and status != "completed":
            raise WebhookRejected(422, "CallStatus", "unknown call status")
        direction = DIRECTIONS.get(required("Direction").lower())
        if direction is None:
            raise WebhookRejected(422, "Direction", "unknown call direction")
        duration = reported_duration(_non_negative_int(params, "CallDuration"), "CallDuration")
        outcome = _outcome(status, duration, params.get("AnsweredBy", "").strip().lower())
        sequence = _non_negative_int(params, "SequenceNumber") if params.get("SequenceNumber") else None
        event_at = (
            not_ahead(parse_rfc2822(params["Timestamp"], "Timestamp"), request.received_at, "Timestamp")
            if params.get("Timestamp")
            else request.received_at
        )
        parent = params.get("ParentCallSid", "").strip()
        if parent:
            checked_id(parent, "ParentCallSid")
        revision = sequence if sequence is not None else STATUS_RANK[status]
        # The callback's Timestamp is when this status happened; minus the talk time it is the
        # moment the call connected, the same for every callback of one call.
        occurred_at = event_at - timedelta(seconds=duration)
        if parent:
            # A <Dial> child leg: the number our side dialed (its To), folded into the parent call.
            dialed = _party(required("To"), ParticipantRole.CALLEE, "To", config)
            return AdapterResult(
                twilio_legs=(
                    TwilioLeg(
                        call_sid=call_sid,
                        parent_call_sid=parent,
                        revision=revision,
                        direction=direction,
                        outcome=outcome,
                        occurred_at=occurred_at,
                        duration_seconds=duration,
                        participants=(dialed.participant,) if dialed.participant else (),
                        rep_id=dialed.rep_id,
                        identities=dialed.identities,
                    ),
                )
            )
        from_raw = required("From")
        to_raw = params.get("To", "").strip()
        if not to_raw and not from_raw.lower().startswith((_CLIENT, *_SIP)):
            raise WebhookRejected(422, "To", "required")
        parties = (
            _party(from_raw, ParticipantRole.CALLER, "From", config),
            _party(to_raw, ParticipantRole.CALLEE, "To", config),
        )
        participants = unique_participants(party.participant for party in parties)
        if not participants and not any(party.dials for party in parties):
            return AdapterResult(
                ignored=(
                    Ignored("a call between two softphones: no number or address on either side", OTHER),
                )
            )
        direction = _placed_direction(direction, from_raw, parties[0])
        softphone_reps = [party.rep_id for party in parties if party.rep_id]
        rep_id = softphone_reps[0] if softphone_reps else None
        identities = tuple(dict.fromkeys(i for party in parties for i in party.identities))

        def as_leg(two_numbers: bool) -> TwilioLeg:
            return TwilioLeg(
                call_sid=call_sid,
                revision=revision,
                direction=direction,
                outcome=outcome,
                occurred_at=occurred_at,
                duration_seconds=duration,
                participants=participants,
                rep_id=rep_id,
                identities=identities,
                two_numbers=two_numbers,
            )

        if any(party.softphone for party in parties):
            # A softphone's call: what it dialed is named by its <Dial> legs, folded into it.
            return AdapterResult(twilio_legs=(as_leg(two_numbers=False),))
        activity = build_activity(
            "body",
            source=self.source,
            external_id=call_sid,
            kind=ActivityKind.CALL,
            direction=direction,
            outcome=outcome,
            occurred_at=occurred_at,
            duration_seconds=duration,
            participants=participants,
            revision=revision,
            crm=CrmReferences(owner_rep_id=rep_id) if rep_id else NO_CRM_REFERENCES,
        )
        if status != "completed":
            return AdapterResult(activities=(activity,))
        # A call between two numbers counts itself, as its callbacks say; its "completed" is also
        # kept for its <Dial> legs, should any come, which tell who it reached
        # (``two_number_call``). A leg ends before or as its parent does; a call never answered
        # (busy, no-answer, failed, canceled) ran no TwiML, so dialled no leg.
        return AdapterResult(activities=(activity,), twilio_legs=(as_leg(two_numbers=True),))


def _placed_direction(direction: Direction, from_raw: str, caller: _Party) -> Direction:
    """A call a rep places from a softphone enters Twilio from it, so Twilio reports it
    ``inbound``: it is her outbound call when the caller is a Twilio Client identity (the
    tenant's own app mints them) or a SIP user known as a rep (``rep_aliases``, an address at the
    tenant's domains). A SIP caller nobody knows keeps Twilio's direction."""
    ours = from_raw.lower().startswith(_CLIENT) or caller.rep_id is not None or caller.participant is not None
    if direction is Direction.INBOUND and caller.softphone and not caller.dials and ours:
        return Direction.OUTBOUND
    return direction


def _outcome(status: str, duration: int, answered_by: str) -> Outcome:
    if status == "completed":
        return MACHINE_OUTCOMES.get(answered_by, Outcome.CONNECTED) if duration > 0 else Outcome.NO_ANSWER
    if status == "in-progress":
        return MACHINE_OUTCOMES.get(answered_by, Outcome.CONNECTED)
    return FINAL_OUTCOMES[status]


def _non_negative_int(params: dict[str, str], name: str) -> int:
    raw = params.get(name, "0").strip() or "0"
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 12:
        raise WebhookRejected(422, name, "expected a non-negative integer")
    return int(raw)


@dataclass(frozen=True, slots=True)
class _Party:
    """One side of a call: its participant (``None``: nothing to match it by), the rep a
    softphone identity names through the tenant's ``rep_aliases``, whether the side is a
    softphone (its call's other party may be named only by its ``<Dial>`` legs), and whether it
    is a TwiML application (no ``To``, or an application SID) that dials whoever it dials. A
    softphone's ``identities`` are the ``rep_aliases`` keys it goes by (its Client identity; its
    SIP user, then its SIP address, on the tenant's Twilio SIP domain; elsewhere the one the
    tenant maps), kept on the call so attribution maps them again when it decides (a mapping
    made or changed after the call re-credits it)."""

    participant: Participant | None
    rep_id: str | None = None
    identities: tuple[str, ...] = ()
    softphone: bool = False
    dials: bool = False


#: URI schemes of a softphone's side: a Twilio Client (browser or mobile SDK) identity, a SIP URI.
_CLIENT, _SIP = "client:", ("sip:", "sips:")
#: One line of text (``SafeStr``): what a ``crm.owner_identities`` entry may hold.
_LINE = re.compile(LINE_PATTERN)
#: A TwiML application's SID, the ``To`` of a softphone's call to an application.
_APPLICATION_SID = re.compile(r"^AP[0-9a-fA-F]{32}$")


def _party(raw: str, role: ParticipantRole, field: str, config: TenantWebhookConfig) -> _Party:
    """``From`` or ``To``: a phone number as every source's (a withheld one is no phone, junk a
    422 naming the field), or a softphone (``client:ana``, ``sip:ana@acme.sip.twilio.com``): the
    rep's side of the call, which has no phone. It is the rep the tenant maps its identity or SIP
    user to (``rep_aliases``: ``{"ana": "rep-a"}``), a participant by email when the SIP URI is an
    address at the tenant's domains (``sip:ana.seller@acme.example``), a phone when the SIP user is
    a number (a trunk's ``sip:+14155550100@carrier.example``); otherwise nobody, and the call keeps
    its other side."""
    lowered = raw.lower()
    region = config.default_phone_region
    if not raw or _APPLICATION_SID.match(raw):
        return _Party(None, softphone=True, dials=True)
    if lowered.startswith(_CLIENT):
        identity = raw[len(_CLIENT) :].strip()
        return _Party(None, config.rep_aliases.get(identity), softphone=True, identities=_keys(identity))
    if not lowered.startswith(_SIP):
        return _Party(make_participant(role=role, field=field, region=region, phone=raw))
    # sip:user@host;transport=udp?headers: the address without its parameters and headers.
    address = raw.split(":", 1)[1].split(";", 1)[0].split("?", 1)[0].strip()
    user, _, written_host = address.rpartition("@")
    user = unquote(user or address)
    # An edge location's host is its SIP Domain's (acme.sip.us1.twilio.com: acme.sip.twilio.com),
    # the address the tenant maps in rep_aliases and the identity the call keeps.
    host = twilio_sip_domain(written_host) or written_host
    email = normalize_email(f"{user}@{host}") if host else None
    # A mapping written with the edge host (before it was normalised) still names its rep.
    as_written = normalize_email(f"{user}@{written_host}") if host != written_host else None
    if email is not None and any(d in config.internal_domains for d in parent_domains(host.lower())):
        return _Party(make_participant(role=role, field=field, region=region, email=email), softphone=True)
    if user[:1] == "+" and isinstance(parse_phone(user, region), ParsedPhone):
        # A trunk's number: a phone as any other, not a softphone.
        return _Party(make_participant(role=role, field=field, region=region, phone=user))
    aliases = config.rep_aliases
    mapped = [key for key in (user, email, as_written) if key and aliases.get(key)]
    rep_id = aliases[mapped[0]] if mapped else None
    if _own_sip_domain(host, config):
        # A user registered on the tenant's Twilio SIP domain: one of its people, mapped or not.
        identities = _keys(user, email, as_written if as_written in mapped else None)
    else:
        # A phone on another host may be anyone's: kept only as the key the tenant maps now.
        identities = _keys(mapped[0] if mapped else None)
    return _Party(None, rep_id, softphone=True, identities=identities)


def _own_sip_domain(host: str, config: TenantWebhookConfig) -> bool:
    """Whether ``host`` is one of the tenant's Twilio SIP Domains (an edge location's host is its
    domain's): those of its ``twilio_sip_domains``, or when it names none, any Twilio SIP Domain
    (another company's Twilio softphone calling in is then taken for the tenant's)."""
    domain = twilio_sip_domain(host)
    if domain is None:
        return False
    return not config.twilio_sip_domains or domain in config.twilio_sip_domains


def _keys(*identities: str | None) -> tuple[str, ...]:
    """The identities a call can keep as ``crm.owner_identities`` (one line, 1 to 256 characters:
    one that cannot be a ``rep_aliases`` key names nobody, as before)."""
    return tuple(
        dict.fromkeys(i for i in identities if i and len(i) <= 256 and _LINE.fullmatch(i) is not None)
    )


# --------------------------------------------------------------------------- softphone calls


class TwilioLeg(BaseModel):
    """One callback of a softphone's call (the parent) or of a ``<Dial>`` leg of it (a child,
    ``ParentCallSid`` set): the fold's input, and what the stored call state keeps of each."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    call_sid: SafeStr = Field(min_length=1, max_length=256)
    #: Keys the stored call state (with ``call_sid`` for a parent): a control character here
    #: would reach PostgreSQL.
    parent_call_sid: SafeStr | None = Field(default=None, min_length=1, max_length=256)
    revision: int = Field(ge=0)
    direction: Direction
    outcome: Outcome
    occurred_at: datetime
    duration_seconds: int = Field(ge=0)
    #: A parent's parties; a child's dialed party (its ``To``).
    participants: tuple[Participant, ...] = ()
    rep_id: str | None = None
    #: The softphone identities of its side(s) (``_Party.identities``), best first.
    identities: tuple[str, ...] = ()
    #: An excluded person was on this leg (not kept): the call is never emitted.
    excluded: bool = False
    #: A parent between two numbers (it names both sides itself, and is published as its own
    #: callbacks say): its legs, once one dialed someone, make it a call of the fold's.
    two_numbers: bool = False

    @property
    def call_key(self) -> str:
        """The parent call's SID: the stored state and the activity of the whole call."""
        return self.parent_call_sid or self.call_sid

    def as_json(self) -> str:
        """``model_dump_json()``, character for character, written by orjson: the parent a call's
        "completed" keeps for its legs (every such callback), where pydantic's serializer called
        back into Python for each participant's optional fields, about 2 % of the callback."""
        return orjson.dumps(
            {
                "call_sid": self.call_sid,
                "parent_call_sid": self.parent_call_sid,
                "revision": self.revision,
                "direction": self.direction,
                "outcome": self.outcome,
                "occurred_at": self.occurred_at,
                "duration_seconds": self.duration_seconds,
                "participants": [participant_json_fields(p) for p in self.participants],
                "rep_id": self.rep_id,
                "identities": self.identities,
                "excluded": self.excluded,
                "two_numbers": self.two_numbers,
            },
            option=orjson.OPT_UTC_Z,
        ).decode()


class TwilioCallState(BaseModel):
    """A softphone's call so far: its own latest callback and each leg's; stored as JSON."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    parent: TwilioLeg | None = None
    legs: dict[str, TwilioLeg] = Field(default_factory=dict)
    #: Revision of the last activity emitted; a re-emission always goes higher.
    emitted_revision: int = 0


#: Which leg's outcome is the call's when several were dialed (one answered, the others not).
_OUTCOME_RANK: dict[Outcome, int] = {
    Outcome.CONNECTED: 4,
    Outcome.VOICEMAIL: 3,
    Outcome.BUSY: 2,
    Outcome.NO_ANSWER: 1,
    Outcome.FAILED: 0,
}


def fold_twilio_call(
    state: TwilioCallState | None, leg: TwilioLeg
) -> tuple[TwilioCallState, ActivityIn | None]:
    """Merge one callback into the call; emit the call whenever what it says of the call changed.

    A callback no newer than the one kept for its leg (a redelivery, or one overtaken) changes
    nothing and emits nothing, so redelivery is safe. Each emission is a new revision of one
    activity, the parent's ``CallSid``: the call counts once, whichever leg said what.
    """
    current = state or TwilioCallState()
    if leg.parent_call_sid is None:
        if current.parent is not None and current.parent.revision >= leg.revision:
            return current, None
        merged = current.model_copy(update={"parent": leg})
    else:
        known = current.legs.get(leg.call_sid)
        if known is not None and known.revision >= leg.revision:
            return current, None
        merged = current.model_copy(update={"legs": {**current.legs, leg.call_sid: leg}})
    revision = current.emitted_revision + 1
    activity = folded_call(merged, revision)
    if activity is None or activity == folded_call(current, revision):
        # Nothing to tell yet, or nothing new (the parent's "completed" once its leg decided).
        return merged, None
    return merged.model_copy(update={"emitted_revision": revision}), activity


#: Revisions of a call between two numbers folded with its legs rank above every revision its
#: own callbacks publish it under (``SequenceNumber``, at most 12 digits, or the status rank): the
#: fold's version, which knows who the legs reached, wins whatever the order of arrival.
TWO_NUMBER_FOLD_RANK = 10**12


def folded_call(state: TwilioCallState, emission: int) -> ActivityIn | None:
    """The call the fold publishes, its ``emission``-th version: a softphone's call, or a call
    between two numbers once a leg dialed someone."""
    if state.parent is not None and state.parent.two_numbers:
        return two_number_call(state, emission)
    return softphone_call(state, emission)


def two_number_call(state: TwilioCallState, emission: int) -> ActivityIn | None:
    """A call between two numbers with the parties its ``<Dial>`` legs reached; None while no
    leg dialed anyone (the call's own callbacks publish it as they say).

    Twilio answers the parent (an inbound call to the tenant's number, or a call placed with the
    REST API) and the parent's TwiML dials the leg: the conversation is the leg's. So the call
    lists the parent's caller, then whom each leg dialed (callee), then the parent's callee; its
    direction stays the parent's, its outcome and length are the best leg's (connected,
    voicemail, busy, no answer, failed), not the parent's, which include the menu and the
    ringing. Attribution finds the rep by her number wherever she is listed (the parent's
    caller first on an outbound call, the callees on an inbound one, the one it knows otherwise).
    """
    parent = state.parent
    legs = sorted(state.legs.values(), key=lambda leg: leg.call_sid)
    if parent is None or parent.excluded or any(leg.excluded for leg in legs):
        return None
    # A leg to a rep's softphone (``<Dial><Client>ana</Client>``) reached her, though it lists
    # no number: its outcome and length are the call's, and she is its rep (the one the tenant
    # maps its identity to, now or later).
    dialed = [leg for leg in legs if leg.participants or leg.rep_id or leg.identities]
    if not dialed:
        return None
    best = max(dialed, key=lambda leg: (_OUTCOME_RANK[leg.outcome], leg.duration_seconds))
    participants = unique_participants(
        [
            *(p for p in parent.participants if p.role is ParticipantRole.CALLER),
            *(p for leg in dialed for p in leg.participants),
            *(p for p in parent.participants if p.role is not ParticipantRole.CALLER),
        ]
    )
    rep_id = parent.rep_id or best.rep_id or next((leg.rep_id for leg in legs if leg.rep_id), None)
    identities = _owner_identities(parent, best, *legs)
    return ActivityIn(
        source="twilio",
        external_id=parent.call_sid,
        kind=ActivityKind.CALL,
        direction=parent.direction,
        outcome=best.outcome,
        occurred_at=parent.occurred_at,
        duration_seconds=best.duration_seconds,
        participants=participants,
        revision=TWO_NUMBER_FOLD_RANK + emission,
        crm=CrmReferences(owner_rep_id=rep_id, owner_identities=identities)
        if rep_id or identities
        else NO_CRM_REFERENCES,
    )


def _owner_identities(*legs: TwilioLeg) -> tuple[str, ...]:
    """The legs' softphone identities in the order their reps are credited (``crm.owner_identities``)."""
    return tuple(dict.fromkeys(i for leg in legs for i in leg.identities))[:64]


def softphone_call(state: TwilioCallState, revision: int) -> ActivityIn | None:
    """The call as one activity, once its parent is known and someone in it has a number.

    The parent's softphone is the rep's side (``rep_aliases``); its other side, when it names
    none (a TwiML application), is whoever its legs dialed. A leg's outcome and length are the
    call's once there is one (the parent's own are the rep listening to the ringing: "completed"
    after 40 s for a buyer who never answered); several dialed at once, the best one's.
    """
    parent = state.parent
    legs = sorted(state.legs.values(), key=lambda leg: leg.call_sid)
    if parent is None or parent.excluded or any(leg.excluded for leg in legs):
        return None
    dialed = [leg for leg in legs if leg.participants]
    participants = unique_participants(
        [*parent.participants, *(p for leg in dialed for p in leg.participants)]
    )
    if not participants:
        return None
    direction, outcome, duration = parent.direction, parent.outcome, parent.duration_seconds
    if dialed:
        best = max(dialed, key=lambda leg: (_OUTCOME_RANK[leg.outcome], leg.duration_seconds))
        direction, outcome, duration = Direction.OUTBOUND, best.outcome, best.duration_seconds
    rep_id = parent.rep_id or next((leg.rep_id for leg in legs if leg.rep_id), None)
    identities = _owner_identities(parent, *legs)
    return ActivityIn(
        source="twilio",
        external_id=parent.call_sid,
        kind=ActivityKind.CALL,
        direction=direction,
        outcome=outcome,
        occurred_at=parent.occurred_at,
        duration_seconds=duration,
        participants=participants,
        revision=revision,
        crm=CrmReferences(owner_rep_id=rep_id, owner_identities=identities)
        if rep_id or identities
        else NO_CRM_REFERENCES,
    )
