"""Twilio Voice status callbacks (form-encoded), signed with X-Twilio-Signature."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import parse_qsl, unquote

from libs.common.contracts.activities import (
    ActivityKind,
    CrmReferences,
    Direction,
    Outcome,
    Participant,
    ParticipantRole,
)
from libs.common.personal_domains import parent_domains
from services.ingest.domain.normalize import (
    build_activity,
    decode_utf8,
    ensure_body_size,
    make_participant,
    normalize_email,
    parse_rfc2822,
    reported_duration,
    unique_participants,
)
from services.ingest.domain.phones import ParsedPhone, parse_phone
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


def twilio_signature(secret: str, url: str, params: Sequence[tuple[str, str]]) -> str:
    """Base64 HMAC-SHA1 of the URL followed by every parameter name and value, sorted by name."""
    payload = url + "".join(name + value for name, value in sorted(params))
    return b64(hmac_sha1(secret.encode("utf-8"), payload.encode("utf-8")))


@functools.lru_cache(maxsize=64)
def _form_params(body: bytes) -> tuple[tuple[str, str], ...]:
    # Cached: ``verify`` and ``parse`` read the same body one after the other (a pure function
    # of the bytes; a refused body raises and is not cached).
    ensure_body_size(body)
    text = decode_utf8(body)
    try:
        return tuple(parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text), errors="strict"))
    except (ValueError, UnicodeDecodeError):
        raise WebhookRejected(400, "body", "not application/x-www-form-urlencoded") from None


@dataclass(frozen=True, slots=True)
class TwilioAdapter:
    """Voice status callbacks; one activity per terminal or connected status."""

    source: str = "twilio"
    version: str = "twilio/1"

    def verify(self, request: WebhookRequest, secrets: Sequence[str], config: TenantWebhookConfig) -> None:
        require_secrets(secrets)
        presented = require_header(request, "x-twilio-signature")
        params = _form_params(request.body)
        if not any_secret_matches(secrets, [presented], lambda s: twilio_signature(s, request.url, params)):
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

        call_sid = required("CallSid")
        status = required("CallStatus").lower()
        if status in NOT_YET_OUTCOMES:
            return AdapterResult(ignored=(f"CallStatus={status}: the call has not connected or ended yet",))
        if status not in FINAL_OUTCOMES and status != "completed":
            raise WebhookRejected(422, "CallStatus", "unknown call status")
        direction = DIRECTIONS.get(required("Direction").lower())
        if direction is None:
            raise WebhookRejected(422, "Direction", "unknown call direction")
        duration = reported_duration(_non_negative_int(params, "CallDuration"), "CallDuration")
        outcome = _outcome(status, duration, params.get("AnsweredBy", "").strip().lower())
        sequence = _non_negative_int(params, "SequenceNumber") if params.get("SequenceNumber") else None
        event_at = (
            parse_rfc2822(params["Timestamp"], "Timestamp")
            if params.get("Timestamp")
            else request.received_at
        )
        parent = params.get("ParentCallSid", "").strip()
        if parent:
            # A <Dial> child leg: the parent call's own callbacks count the call, once.
            return AdapterResult(ignored=(f"ParentCallSid={parent}: a leg of that call, counted once as it",))
        parties = (
            _party(required("From"), ParticipantRole.CALLER, "From", config),
            _party(required("To"), ParticipantRole.CALLEE, "To", config),
        )
        participants = unique_participants(party.participant for party in parties)
        if not participants:
            return AdapterResult(
                ignored=("a call between two softphones: no number or address on either side",)
            )
        softphone_reps = [party.rep_id for party in parties if party.rep_id]
        activity = build_activity(
            "body",
            source=self.source,
            external_id=call_sid,
            kind=ActivityKind.CALL,
            direction=direction,
            outcome=outcome,
            # The callback's Timestamp is when this status happened; minus the talk time it is the
            # moment the call connected, the same for every callback of one call.
            occurred_at=event_at - timedelta(seconds=duration),
            duration_seconds=duration,
            participants=participants,
            revision=sequence if sequence is not None else STATUS_RANK[status],
            crm=CrmReferences(owner_rep_id=softphone_reps[0]) if softphone_reps else CrmReferences(),
        )
        return AdapterResult(activities=(activity,))


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
    """One side of a call: its participant (``None``: nothing to match it by), and the rep a
    softphone identity names through the tenant's ``rep_aliases``."""

    participant: Participant | None
    rep_id: str | None = None


#: URI schemes of a softphone's side: a Twilio Client (browser or mobile SDK) identity, a SIP URI.
_CLIENT, _SIP = "client:", ("sip:", "sips:")


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
    if lowered.startswith(_CLIENT):
        return _Party(None, config.rep_aliases.get(raw[len(_CLIENT) :].strip()))
    if not lowered.startswith(_SIP):
        return _Party(make_participant(role=role, field=field, region=region, phone=raw))
    # sip:user@host;transport=udp?headers: the address without its parameters and headers.
    address = raw.split(":", 1)[1].split(";", 1)[0].split("?", 1)[0].strip()
    user, _, host = address.rpartition("@")
    user = unquote(user or address)
    email = normalize_email(f"{user}@{host}") if host else None
    if email is not None and any(d in config.internal_domains for d in parent_domains(host.lower())):
        return _Party(make_participant(role=role, field=field, region=region, email=email))
    if user[:1] == "+" and isinstance(parse_phone(user, region), ParsedPhone):
        return _Party(make_participant(role=role, field=field, region=region, phone=user))
    aliases = config.rep_aliases
    return _Party(None, aliases.get(user) or (aliases.get(email) if email is not None else None))
