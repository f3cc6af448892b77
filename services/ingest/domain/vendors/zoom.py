"""Zoom meeting webhooks, signed with x-zm-signature, and the reducer that merges them.

``meeting.ended`` carries no participant list, so join and leave events are folded into a
per-meeting state (persisted by the caller, keyed by tenant, "zoom" and meeting uuid) and the
held meeting is emitted from that state.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from libs.common.contracts.activities import (
    ActivityIn,
    ActivityKind,
    Direction,
    Outcome,
    Participant,
    ParticipantRole,
)
from libs.common.contracts.fields import SafeStr, SafeText, UtcDatetime
from libs.common.phones import ParsedPhone, parse_phone
from services.ingest.domain.ignored import OTHER, Ignored
from services.ingest.domain.normalize import (
    JsonObject,
    check_timestamp_window,
    duration_between,
    is_withheld_number,
    load_json_object,
    meeting_direction,
    normalize_email,
    not_ahead,
    parse_iso_datetime,
    unique_participants,
    validation_to_rejection,
)
from services.ingest.domain.signatures import (
    any_secret_matches,
    constant_time_equal,
    hmac_sha256,
    parse_unix_seconds,
    require_header,
    require_secrets,
    signed_time,
)
from services.ingest.domain.stored_state import StoredState
from services.ingest.domain.webhook_types import (
    AdapterResult,
    HandshakeResponse,
    TenantWebhookConfig,
    WebhookRejected,
    WebhookRequest,
)

ZoomEventType = Literal[
    "meeting.started", "meeting.ended", "meeting.participant_joined", "meeting.participant_left"
]
MEETING_EVENTS: frozenset[str] = frozenset(
    {"meeting.started", "meeting.ended", "meeting.participant_joined", "meeting.participant_left"}
)
URL_VALIDATION = "endpoint.url_validation"


class ZoomParticipant(StoredState):
    """One person seen in the meeting; ``key`` identifies them across join and leave events."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: SafeStr
    name: SafeStr | None = None
    email: SafeStr | None = None
    #: The number a participant dialled in from (Zoom's ``phone_number``), E.164 in the tenant's
    #: default region; None when Zoom gives none, masks it or it is no phone number.
    phone: SafeStr | None = None
    user_id: SafeStr | None = None
    joined_at: UtcDatetime | None = None
    left_at: UtcDatetime | None = None

    #: A meeting state stored by this version stays readable by the one before it (no ``phone``)
    #: while a deploy rolls or after a rollback, unless somebody dialled in.
    written_when_set = ("phone",)


class ZoomEvent(BaseModel):
    """A verified, parsed Zoom meeting event: the reducer's input."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_type: ZoomEventType
    event_ts: int = Field(ge=0, le=10**15)
    #: Keys the stored meeting state: a control character here would reach PostgreSQL.
    meeting_uuid: SafeStr = Field(min_length=1, max_length=256)
    meeting_id: SafeStr | None = None
    topic: SafeText | None = None
    host_id: SafeStr | None = None
    start_time: UtcDatetime | None = None
    end_time: UtcDatetime | None = None
    participant: ZoomParticipant | None = None
    #: The participant was an excluded person, removed before anything was written.
    excluded_participant: bool = False
    #: The tenant's domains at parse time, so the reducer needs nothing but (state, event).
    internal_domains: tuple[str, ...] = ()


class ZoomMeetingState(BaseModel):
    """Everything known about one meeting so far; stored as JSON between deliveries."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    meeting_uuid: str
    meeting_id: str | None = None
    topic: str | None = None
    host_id: str | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    participants: tuple[ZoomParticipant, ...] = ()
    ended: bool = False
    #: Revision of the last activity emitted; a re-emission always goes higher.
    emitted_revision: int = 0
    internal_domains: tuple[str, ...] = ()
    #: An excluded person took part (who is not kept): the meeting is never emitted.
    excluded: bool = False


def zoom_signature(secret: str, timestamp: str, body: bytes) -> str:
    message = b"v0:" + timestamp.encode("utf-8") + b":" + body
    return "v0=" + hmac_sha256(secret.encode("utf-8"), message).hex()


def zoom_encrypted_token(secret: str, plain_token: str) -> str:
    return hmac_sha256(secret.encode("utf-8"), plain_token.encode("utf-8")).hex()


@dataclass(frozen=True, slots=True)
class ZoomAdapter:
    """Meeting events for ``fold_zoom_meeting``, and the endpoint URL validation."""

    source: str = "zoom"
    version: str = "zoom/1"

    def verify(self, request: WebhookRequest, secrets: Sequence[str], config: TenantWebhookConfig) -> None:
        require_secrets(secrets)
        signature = require_header(request, "x-zm-signature")
        timestamp = require_header(request, "x-zm-request-timestamp")
        sent_at = signed_time(
            parse_unix_seconds(timestamp, "x-zm-request-timestamp"), "x-zm-request-timestamp"
        )
        check_timestamp_window(
            sent_at, request.received_at, config.signature_window_seconds, "x-zm-request-timestamp"
        )
        if not any_secret_matches(secrets, [signature], lambda s: zoom_signature(s, timestamp, request.body)):
            raise WebhookRejected(401, "x-zm-signature", "does not match")

    def parse(
        self, request: WebhookRequest, config: TenantWebhookConfig, secrets: Sequence[str] = ()
    ) -> AdapterResult:
        envelope = load_json_object(request.body)
        event_type = envelope.req_str("event")
        if event_type == URL_VALIDATION:
            return AdapterResult(handshake=self._url_validation(request, envelope, secrets))
        if event_type not in MEETING_EVENTS:
            return AdapterResult(ignored=(Ignored(f"{event_type}: not a meeting lifecycle event", OTHER),))
        return AdapterResult(
            zoom_events=(_parse_meeting_event(envelope, event_type, config, request.received_at),)
        )

    def _url_validation(
        self, request: WebhookRequest, envelope: JsonObject, secrets: Sequence[str]
    ) -> HandshakeResponse:
        plain_token = envelope.req_obj("payload").req_str("plainToken")
        usable = [s for s in secrets if s]
        if not usable:
            raise WebhookRejected(401, "secret", "no webhook secret is configured for this tenant and source")
        # Answer with the secret that signed this request, so a rotation in progress validates.
        presented = request.headers.get("x-zm-signature", "")
        timestamp = request.headers.get("x-zm-request-timestamp", "")
        secret = next(
            (s for s in usable if constant_time_equal(zoom_signature(s, timestamp, request.body), presented)),
            usable[0],
        )
        body = {"plainToken": plain_token, "encryptedToken": zoom_encrypted_token(secret, plain_token)}
        return HandshakeResponse(200, "application/json", json.dumps(body).encode("utf-8"))


def _parse_meeting_event(
    envelope: JsonObject, event_type: str, config: TenantWebhookConfig, received_at: datetime
) -> ZoomEvent:
    meeting = envelope.req_obj("payload").req_obj("object")
    participant = None
    if event_type in {"meeting.participant_joined", "meeting.participant_left"}:
        participant = _participant(meeting.req_obj("participant"), config.default_phone_region)
    try:
        event = ZoomEvent(
            event_type=event_type,  # checked against MEETING_EVENTS above
            event_ts=envelope.req_int("event_ts"),
            meeting_uuid=meeting.req_str("uuid"),
            meeting_id=meeting.opt_str("id"),
            topic=meeting.opt_str("topic"),
            host_id=meeting.opt_str("host_id"),
            start_time=_opt_time(meeting, "start_time"),
            end_time=_opt_time(meeting, "end_time"),
            participant=participant,
            internal_domains=tuple(sorted(config.internal_domains)),
        )
    except ValidationError as error:
        named = {
            "meeting_uuid": meeting.field("uuid"),
            "meeting_id": meeting.field("id"),
            "topic": meeting.field("topic"),
            "host_id": meeting.field("host_id"),
        }
        raise validation_to_rejection("payload.object", error, named) from None
    # ``event_ts`` (epoch ms) is the folded meeting's revision clock: it may not be ahead (a
    # value past year 9999 is read as then, well ahead too).
    not_ahead(datetime.fromtimestamp(min(event.event_ts, _YEAR_9999_MS) / 1000, UTC), received_at, "event_ts")
    return event


_YEAR_9999_MS = 253_402_300_799_000


def _participant(data: JsonObject, region: str) -> ZoomParticipant:
    email = normalize_email(data.opt_str("email"))
    phone = dialled_in_from(data.opt_str("phone_number"), region)
    user_id = data.opt_str("id")
    name = data.opt_str("user_name")
    # Zoom's participant_uuid is stable per person per meeting; email, number and names are fallbacks.
    key = data.opt_str("participant_uuid") or email or phone or user_id or name
    if key is None:
        raise WebhookRejected(422, data.field("participant_uuid"), "participant cannot be identified")
    try:
        return ZoomParticipant(
            key=key,
            name=name[:256] if name else None,
            email=email,
            phone=phone,
            user_id=user_id,
            joined_at=_opt_time(data, "join_time"),
            left_at=_opt_time(data, "leave_time"),
        )
    except ValidationError as error:
        # The key is the first of these the participant has.
        key_field = next(
            data.field(k) for k in ("participant_uuid", "email", "id", "user_name") if data.opt_str(k)
        )
        named = {
            "key": key_field,
            "name": data.field("user_name"),
            "email": data.field("email"),
            "user_id": data.field("id"),
        }
        raise validation_to_rejection(data.path, error, named) from None


#: How Zoom masks a dial-in number when the account hides them ("Mask phone number in the
#: participant list": ``1415****100``): digits are missing, so no number is guessed from it.
MASK = "*"


def dialled_in_from(raw: str | None, region: str) -> str | None:
    """The E.164 number a participant dialled in from (``phone_number`` of Zoom's join and leave
    events, read in the tenant's default ``region`` when it has no ``+``), or None: absent, masked,
    withheld, or no phone number. Never a 422: the participant is still someone who joined."""
    if not raw or MASK in raw or is_withheld_number(raw):
        return None
    parsed = parse_phone(raw, region)
    return parsed.e164 if isinstance(parsed, ParsedPhone) else None


def _opt_time(data: JsonObject, key: str) -> datetime | None:
    raw = data.opt_str(key)
    return parse_iso_datetime(raw, data.field(key)) if raw else None


# --- the reducer ------------------------------------------------------------------------------


def fold_zoom_meeting(
    state: ZoomMeetingState | None, event: ZoomEvent
) -> tuple[ZoomMeetingState, ActivityIn | None]:
    """Merge one event into the meeting state; emit the held meeting once it has ended.

    Replaying an event already folded changes nothing and emits nothing, so redelivery is safe.
    A join or leave arriving after the end re-emits the meeting with a higher revision.
    """
    current = state or ZoomMeetingState(meeting_uuid=event.meeting_uuid)
    merged = current.model_copy(
        update={
            "meeting_id": current.meeting_id or event.meeting_id,
            "topic": event.topic or current.topic,
            "host_id": current.host_id or event.host_id,
            "start_time": _earliest(current.start_time, event.start_time),
            "end_time": _latest(current.end_time, event.end_time),
            "participants": _merge_participant(current.participants, event.participant),
            "ended": current.ended or event.event_type == "meeting.ended",
            "internal_domains": current.internal_domains or event.internal_domains,
            "excluded": current.excluded or event.excluded_participant,
        }
    )
    if not merged.ended or merged == current:
        return merged, None
    revision = max(current.emitted_revision + 1, event.event_ts)
    activity = held_meeting(merged, revision)
    if activity is None:
        return merged, None
    return merged.model_copy(update={"emitted_revision": revision}), activity


#: Fewer people than this in an ended meeting (those with an address, and each join record
#: without one, a guest Zoom gives no email for): a host alone in her room (nobody came, or a
#: test), no meeting; as a calendar event nobody but its organizer attends.
MEETING_MIN_PEOPLE = 2


def held_meeting(state: ZoomMeetingState, revision: int) -> ActivityIn | None:
    """The ended meeting as a canonical activity, or None when fewer than two people were in it
    (a host alone: nobody came; a guest without an email or number counts, though only those
    with one are listed), nobody in it has an email or a number, or an excluded person took part
    (the privacy policy excludes the whole meeting). A join arriving later emits it then. Who
    dialled in is listed by the number she called from (``dialled_in_from``), which attribution
    matches to a CRM contact's phone as any call's."""
    if state.excluded:
        return None
    participants = unique_participants(
        Participant(
            email=p.email,
            phone=p.phone,
            name=p.name,
            role=ParticipantRole.ORGANIZER
            if state.host_id is not None and p.user_id == state.host_id
            else ParticipantRole.ATTENDEE,
        )
        if p.email or p.phone
        else None
        for p in sorted(state.participants, key=lambda p: (p.user_id != state.host_id, p.key))
    )
    start = state.start_time or _earliest_join(state)
    people = len(participants) + sum(1 for p in state.participants if not p.email and not p.phone)
    if not participants or people < MEETING_MIN_PEOPLE or start is None:
        return None
    return ActivityIn(
        source="zoom",
        external_id=state.meeting_uuid[:256],
        kind=ActivityKind.MEETING,
        direction=_direction(participants, state.internal_domains),
        outcome=Outcome.HELD,
        occurred_at=start,
        duration_seconds=duration_between(start, state.end_time),
        participants=participants[:500],
        subject=state.topic[:2000] if state.topic else None,
        revision=revision,
    )


def _direction(participants: tuple[Participant, ...], internal_domains: tuple[str, ...]) -> Direction:
    """``meeting_direction`` of the people with an address; someone who dialled in (a number, no
    email) is someone the domains do not place, so a host with her colleagues and a caller is
    outbound, not internal (attribution tells a rep's own number from a customer's)."""
    direction = meeting_direction(participants, internal_domains)
    dialled_in = any(p.phone is not None and p.email is None for p in participants)
    return Direction.OUTBOUND if direction is Direction.INTERNAL and dialled_in else direction


def _merge_participant(
    seen: tuple[ZoomParticipant, ...], incoming: ZoomParticipant | None
) -> tuple[ZoomParticipant, ...]:
    if incoming is None:
        return seen
    by_key = {p.key: p for p in seen}
    previous = by_key.get(incoming.key)
    if previous is None:
        by_key[incoming.key] = incoming
    else:
        # A person may leave and rejoin: keep the first join and the last leave.
        by_key[incoming.key] = previous.model_copy(
            update={
                "name": previous.name or incoming.name,
                "email": previous.email or incoming.email,
                "phone": previous.phone or incoming.phone,
                "user_id": previous.user_id or incoming.user_id,
                "joined_at": _earliest(previous.joined_at, incoming.joined_at),
                "left_at": _latest(previous.left_at, incoming.left_at),
            }
        )
    return tuple(sorted(by_key.values(), key=lambda p: p.key))


def _earliest_join(state: ZoomMeetingState) -> datetime | None:
    joins = [p.joined_at for p in state.participants if p.joined_at is not None]
    return min(joins) if joins else None


def _earliest(a: datetime | None, b: datetime | None) -> datetime | None:
    return min(a, b) if a is not None and b is not None else a or b


def _latest(a: datetime | None, b: datetime | None) -> datetime | None:
    return max(a, b) if a is not None and b is not None else a or b


__all__ = [
    "ZoomAdapter",
    "ZoomEvent",
    "ZoomMeetingState",
    "ZoomParticipant",
    "fold_zoom_meeting",
    "held_meeting",
    "zoom_encrypted_token",
    "zoom_signature",
]
