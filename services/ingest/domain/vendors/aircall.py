"""Aircall call webhooks (JSON), authenticated by the ``token`` field of the body."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from libs.common.contracts.activities import ActivityKind, Direction, Outcome, Participant, ParticipantRole
from services.ingest.domain.ignored import AIRCALL_CALL_NOT_ENDED, NOT_DONE, OTHER, Ignored
from services.ingest.domain.normalize import (
    JsonObject,
    build_activity,
    from_epoch_seconds,
    load_json_object,
    make_participant,
    not_ahead,
    part_field,
    reported_duration,
    unique_participants,
)
from services.ingest.domain.signatures import any_secret_matches, require_secrets
from services.ingest.domain.webhook_types import (
    AdapterResult,
    TenantWebhookConfig,
    WebhookRejected,
    WebhookRequest,
)

#: Later lifecycle events win over earlier ones whatever order they arrive in.
EVENT_RANK: dict[str, int] = {"call.created": 0, "call.answered": 1, "call.ended": 2}
#: Revision = rank * this + event timestamp in ms, so rank dominates and time breaks ties.
_RANK_WEIGHT = 10**13

DIRECTIONS: dict[str, Direction] = {"inbound": Direction.INBOUND, "outbound": Direction.OUTBOUND}


@dataclass(frozen=True, slots=True)
class AircallAdapter:
    """Call lifecycle events; later lifecycle events carry higher revisions."""

    source: str = "aircall"
    version: str = "aircall/1"

    def verify(self, request: WebhookRequest, secrets: Sequence[str], config: TenantWebhookConfig) -> None:
        require_secrets(secrets)
        token = load_json_object(request.body).data.get("token")
        if not isinstance(token, str) or not token:
            raise WebhookRejected(401, "token", "missing")
        if not any_secret_matches(secrets, [token], lambda s: s):
            raise WebhookRejected(401, "token", "does not match")

    def parse(
        self, request: WebhookRequest, config: TenantWebhookConfig, secrets: Sequence[str] = ()
    ) -> AdapterResult:
        envelope = load_json_object(request.body)
        event = envelope.req_str("event")
        if envelope.opt_str("resource") != "call" or event not in EVENT_RANK:
            return AdapterResult(ignored=(Ignored(f"{event}: not a call lifecycle event", OTHER),))
        if event == "call.created":
            return AdapterResult(ignored=(Ignored(f"call.created: {AIRCALL_CALL_NOT_ENDED}", NOT_DONE),))
        call = envelope.req_obj("data")
        # Aircall signs no time: the revision's clock and the call's start may not be ahead.
        sent_at = not_ahead(
            from_epoch_seconds(envelope.req_int("timestamp"), "timestamp"), request.received_at, "timestamp"
        )
        direction = DIRECTIONS.get(call.req_str("direction"))
        if direction is None:
            raise WebhookRejected(422, call.field("direction"), "expected inbound or outbound")
        started_at = not_ahead(
            from_epoch_seconds(call.req_int("started_at"), call.field("started_at")),
            request.received_at,
            call.field("started_at"),
        )
        # A call Aircall says was missed (``missed_call_reason``: ``abandoned_in_ivr``,
        # ``short_abandoned``, ``abandoned_in_classic``, ``no_available_agent``...) reached no
        # user, whatever ``answered_at`` says: the IVR's or the queue's answer is no person's.
        answered = call.opt_int("answered_at") is not None and call.opt_str("missed_call_reason") is None
        activity = build_activity(
            "data",
            source=self.source,
            external_id=call.req_str("id"),
            kind=ActivityKind.CALL,
            direction=direction,
            outcome=_outcome(event, call, answered),
            occurred_at=started_at,
            duration_seconds=reported_duration(call.opt_int("duration") or 0, call.field("duration"))
            if answered
            else 0,
            participants=_participants(call, direction, config.default_phone_region),
            revision=EVENT_RANK[event] * _RANK_WEIGHT + int(sent_at.timestamp() * 1000),
        )
        return AdapterResult(activities=(activity,))


def _outcome(event: str, call: JsonObject, answered: bool) -> Outcome:
    if answered:
        return Outcome.CONNECTED
    if event == "call.ended" and call.opt_str("voicemail"):
        return Outcome.VOICEMAIL
    return Outcome.NO_ANSWER


def _participants(call: JsonObject, direction: Direction, region: str) -> tuple[Participant, ...]:
    rep_role, other_role = (
        (ParticipantRole.CALLER, ParticipantRole.CALLEE)
        if direction is Direction.OUTBOUND
        else (ParticipantRole.CALLEE, ParticipantRole.CALLER)
    )
    user = call.opt_obj("user")
    number = call.opt_obj("number")
    contact = call.opt_obj("contact")
    contact_email = None
    contact_name = None
    contact_fields: dict[str, str] = {}
    if contact is not None:
        emails = contact.objs("emails")
        contact_email = emails[0].opt_str("value") if emails else None
        names = [n for n in (contact.opt_str("first_name"), contact.opt_str("last_name")) if n]
        contact_name = " ".join(names) or None
        contact_fields = {
            "email": emails[0].field("value") if emails else contact.field("emails"),
            "name": part_field(contact, ("first_name", "last_name")),
        }
    line = number.opt_str("digits") if number is not None else None
    rep = (
        make_participant(
            role=rep_role,
            field="data.user.email",
            region=region,
            email=user.opt_str("email"),
            name=user.opt_str("name"),
            # The Aircall line the rep used; dropped if unusable since the rep has an email.
            phone=line,
            named={"email": user.field("email"), "name": user.field("name")},
        )
        if user is not None
        else _line(line, rep_role, region)
    )
    counterpart = make_participant(
        role=other_role,
        field="data.raw_digits",
        region=region,
        phone=call.req_str("raw_digits"),
        email=contact_email,
        name=contact_name,
        named=contact_fields,
    )
    return unique_participants([rep, _transferred_to(call, rep_role, region), counterpart])


def _transferred_to(call: JsonObject, role: ParticipantRole, region: str) -> Participant | None:
    """The user a call was transferred to (``data.transferred_to``, a User; a Team has no
    address): on the tenant's side too, after the user who took it. A front desk that answers
    and transfers the buyer to a rep is no rep: the call is that rep's."""
    target = call.opt_obj("transferred_to")
    if target is None:
        return None
    try:
        return make_participant(
            role=role,
            field="data.transferred_to.email",
            region=region,
            email=target.opt_str("email"),
            name=target.opt_str("name"),
        )
    except WebhookRejected:
        return None


def _line(digits: str | None, role: ParticipantRole, region: str) -> Participant | None:
    """The Aircall line of a call nobody took (a missed or abandoned inbound call names no
    ``user``): still the tenant's side of the call, so a rep's direct line names her. A line
    that is no phone number is left out: the call keeps its other side, as before."""
    if not digits:
        return None
    try:
        return make_participant(role=role, field="data.number.digits", region=region, phone=digits)
    except WebhookRejected:
        return None
