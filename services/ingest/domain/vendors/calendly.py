"""Calendly invitee webhooks, signed with Calendly-Webhook-Signature (t=...,v1=...).

Each event's ``payload`` is the Invitee, its Scheduled Event embedded: ``invitee.created``
(booked), ``invitee.canceled``, and ``invitee_no_show.created`` / ``invitee_no_show.deleted``
(the host marked the invitee a no-show, then took it back; the Invitee's ``no_show`` holds the
mark's ``uri`` and ``created_at``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from libs.common.contracts.activities import ActivityKind, Outcome, Participant, ParticipantRole
from services.ingest.domain.ignored import OTHER, Ignored
from services.ingest.domain.normalize import (
    JsonObject,
    build_activity,
    check_timestamp_window,
    duration_between,
    epoch_millis,
    load_json_object,
    make_participant,
    meeting_direction,
    meeting_outcome,
    not_ahead,
    parse_iso_datetime,
    unique_participants,
)
from services.ingest.domain.signatures import (
    any_secret_matches,
    hmac_sha256,
    parse_unix_seconds,
    require_header,
    require_secrets,
    signed_time,
)
from services.ingest.domain.webhook_types import (
    AdapterResult,
    TenantWebhookConfig,
    WebhookRejected,
    WebhookRequest,
)

SIGNATURE_HEADER = "calendly-webhook-signature"

#: invitee event -> outcome of the scheduled event it belongs to (``invitee_no_show.deleted``:
#: held once it has ended, else scheduled; ``normalize.meeting_outcome``).
OUTCOMES: dict[str, Outcome] = {
    "invitee.created": Outcome.SCHEDULED,
    "invitee.canceled": Outcome.CANCELLED,
    "invitee_no_show.created": Outcome.NO_SHOW,
    "invitee_no_show.deleted": Outcome.SCHEDULED,
}
NO_SHOW_EVENTS = ("invitee_no_show.created", "invitee_no_show.deleted")
#: Why an invitee's no-show mark on a group event (more than one invitee) changes nothing.
GROUP_NO_SHOW = "one invitee's no-show on a group event: the others may have attended"


def calendly_signature(secret: str, timestamp: str, body: bytes) -> str:
    return hmac_sha256(secret.encode("utf-8"), timestamp.encode("utf-8") + b"." + body).hex()


def _signature_parts(header: str) -> tuple[str, list[str]]:
    timestamp = ""
    signatures: list[str] = []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t":
            timestamp = value
        elif name == "v1":
            signatures.append(value)
    if not timestamp or not signatures:
        raise WebhookRejected(401, SIGNATURE_HEADER, "expected t=<timestamp>,v1=<signature>")
    return timestamp, signatures


@dataclass(frozen=True, slots=True)
class CalendlyAdapter:
    """Invitee bookings and cancellations, one activity per scheduled event."""

    source: str = "calendly"
    version: str = "calendly/1"

    def verify(self, request: WebhookRequest, secrets: Sequence[str], config: TenantWebhookConfig) -> None:
        require_secrets(secrets)
        timestamp, signatures = _signature_parts(require_header(request, SIGNATURE_HEADER))
        sent_at = signed_time(parse_unix_seconds(timestamp, SIGNATURE_HEADER), SIGNATURE_HEADER)
        check_timestamp_window(
            sent_at, request.received_at, config.signature_window_seconds, SIGNATURE_HEADER
        )
        if not any_secret_matches(
            secrets, signatures, lambda s: calendly_signature(s, timestamp, request.body)
        ):
            raise WebhookRejected(401, SIGNATURE_HEADER, "does not match")

    def parse(
        self, request: WebhookRequest, config: TenantWebhookConfig, secrets: Sequence[str] = ()
    ) -> AdapterResult:
        envelope = load_json_object(request.body)
        event = envelope.req_str("event")
        outcome = OUTCOMES.get(event)
        if outcome is None:
            return AdapterResult(
                ignored=(Ignored(f"{event}: not an invitee booking, cancellation or no-show", OTHER),)
            )
        invitee = envelope.req_obj("payload")
        scheduled = invitee.req_obj("scheduled_event")
        # The scheduled event, not the invitee, is the meeting: a reschedule cancels the old
        # event and creates a new one, each keeping its own id.
        id_field = scheduled.field("uri") if scheduled.opt_str("uri") else invitee.field("event")
        external_id = scheduled.opt_str("uri") or invitee.req_str("event")
        start = parse_iso_datetime(scheduled.req_str("start_time"), scheduled.field("start_time"))
        end = parse_iso_datetime(scheduled.req_str("end_time"), scheduled.field("end_time"))
        # The invitee's last change, else the webhook's: a bad one is named where it was read.
        changed = invitee if invitee.opt_str("updated_at") else envelope
        key = "updated_at" if changed is invitee else "created_at"
        # The revision's clock may not be ahead (the meeting's start may be months ahead).
        modified_at = not_ahead(
            parse_iso_datetime(changed.req_str(key), changed.field(key)),
            request.received_at,
            changed.field(key),
        )
        if event in NO_SHOW_EVENTS:
            counter = scheduled.opt_obj("invitees_counter")
            if counter is not None and (counter.opt_int("active") or 0) > 1:
                return AdapterResult(ignored=(Ignored(f"{event}: {GROUP_NO_SHOW}", OTHER),))
            modified_at = max(modified_at, _marked_at(envelope, invitee))
            if event == "invitee_no_show.deleted":
                outcome = meeting_outcome(start, end, request.received_at)
        participants = unique_participants(
            [
                *_organizers(scheduled, config.default_phone_region),
                _invitee(invitee, config.default_phone_region),
            ]
        )
        activity = build_activity(
            "payload",
            {"external_id": id_field, "subject": scheduled.field("name")},
            source=self.source,
            external_id=external_id,
            kind=ActivityKind.MEETING,
            direction=meeting_direction(participants, config.internal_domains),
            outcome=outcome,
            occurred_at=start,
            duration_seconds=duration_between(start, end),
            participants=participants,
            subject=scheduled.opt_str("name"),
            revision=epoch_millis(modified_at),
        )
        return AdapterResult(activities=(activity,))


def _marked_at(envelope: JsonObject, invitee: JsonObject) -> datetime:
    """When the no-show was marked (its ``created_at``) or unmarked (the webhook's ``created_at``):
    after the booking, so its revision is newer than the booking's."""
    mark = invitee.opt_obj("no_show")
    if mark is not None and mark.opt_str("created_at"):
        return parse_iso_datetime(mark.req_str("created_at"), mark.field("created_at"))
    return parse_iso_datetime(envelope.req_str("created_at"), "created_at")


def _organizers(scheduled: JsonObject, region: str) -> list[Participant | None]:
    return [
        make_participant(
            role=ParticipantRole.ORGANIZER,
            field=member.field("user_email"),
            region=region,
            email=member.opt_str("user_email"),
            name=member.opt_str("user_name"),
            named={"email": member.field("user_email"), "name": member.field("user_name")},
        )
        for member in scheduled.objs("event_memberships")
    ]


def _invitee(invitee: JsonObject, region: str) -> Participant | None:
    return make_participant(
        role=ParticipantRole.ATTENDEE,
        field="payload.text_reminder_number",
        region=region,
        email=invitee.opt_str("email"),
        phone=invitee.opt_str("text_reminder_number"),
        name=invitee.opt_str("name"),
        named={"email": invitee.field("email"), "name": invitee.field("name")},
    )
