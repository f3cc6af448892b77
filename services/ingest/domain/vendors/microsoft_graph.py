"""Microsoft Graph: message and event resources posted by a connector, and Graph's own deliveries.

Three kinds of request reach this endpoint:

* the subscription validation: ``?validationToken=...``, answered by echoing the token as text;
* Graph change notifications (``{"value": [{"subscriptionId", "clientState", ...}]}``), which
  Graph cannot sign: each ``clientState`` must equal one of the secrets. They name a changed
  resource without its data, so they are acknowledged and listed as ignored;
* message / event resources posted by the tenant's connector, signed with Standard Webhooks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from libs.common.contracts.activities import (
    ActivityIn,
    ActivityKind,
    Outcome,
    Participant,
    ParticipantRole,
    ResponseStatus,
)
from services.ingest.domain.ignored import DRAFT_NEVER_SENT, NOT_DONE, OTHER, Ignored
from services.ingest.domain.normalize import (
    ALL_DAY_TIME,
    BLOCKED_TIME,
    FREE_TIME,
    JsonObject,
    a_customer_attends,
    build_activity,
    calendar_people,
    convert_each,
    deletion_on_receipt,
    direction_for,
    duration_between,
    email_outcome,
    epoch_millis,
    held_for_a_meeting,
    load_json_object,
    make_participant,
    meeting_direction,
    meeting_outcome,
    normalize_email,
    not_ahead,
    observed_at,
    one_or_page,
    parse_iso_datetime,
    seen_in_calendar,
    unique_participants,
)
from services.ingest.domain.signatures import any_secret_matches, require_secrets, verify_standard_webhook
from services.ingest.domain.webhook_types import (
    AdapterResult,
    HandshakeResponse,
    SourceDeletion,
    TenantWebhookConfig,
    TimeBlock,
    WebhookRejected,
    WebhookRequest,
)

SOURCE = "microsoft-graph"
MAX_RESOURCES = 1_000
MAX_VALIDATION_TOKEN = 1_024
MESSAGE_TYPE = "#microsoft.graph.message"
EVENT_TYPE = "#microsoft.graph.event"
#: An invitee's (or, on the event, the calendar owner's) answer that says no.
DECLINED = "declined"
#: A recurring series' master event: its occurrences (and exceptions) are the meetings, each
#: posted on its own (the calendar view expands them); the master's start is the first's.
SERIES_MASTER = "seriesMaster"
#: ``showAs`` of time out of office (Outlook's "Out of office", often sent to the team so it
#: shows on their calendars): time away, not a meeting.
OUT_OF_OFFICE = "oof"
#: ``showAs`` of an event that blocks no time.
FREE = "free"
#: Windows zone names Graph may use when a Prefer: outlook.timezone header asked for one.
WINDOWS_ZONES: dict[str, str] = {
    "UTC": "UTC",
    "GMT Standard Time": "Europe/London",
    "W. Europe Standard Time": "Europe/Berlin",
    "Romance Standard Time": "Europe/Paris",
    "Central Europe Standard Time": "Europe/Budapest",
    "Eastern Standard Time": "America/New_York",
    "Central Standard Time": "America/Chicago",
    "Mountain Standard Time": "America/Denver",
    "Pacific Standard Time": "America/Los_Angeles",
    "India Standard Time": "Asia/Kolkata",
    "Tokyo Standard Time": "Asia/Tokyo",
    "AUS Eastern Standard Time": "Australia/Sydney",
}


def validation_token(url: str) -> str | None:
    values = parse_qs(urlsplit(url).query).get("validationToken")
    return values[0] if values else None


def _is_change_notification(body: JsonObject) -> bool:
    items = body.data.get("value")
    return isinstance(items, list) and any(
        isinstance(item, dict) and "subscriptionId" in item for item in items
    )


@dataclass(frozen=True, slots=True)
class MicrosoftGraphAdapter:
    """Graph validation, change notifications, and connector-posted resources."""

    source: str = SOURCE
    version: str = "microsoft-graph/1"

    def verify(self, request: WebhookRequest, secrets: Sequence[str], config: TenantWebhookConfig) -> None:
        # The validation request comes from Graph unsigned and carries nothing but the token to echo.
        if validation_token(request.url) is not None and not request.body.strip():
            return
        body = load_json_object(request.body)
        if _is_change_notification(body):
            require_secrets(secrets)
            for notification in body.objs("value"):
                state = notification.data.get("clientState")
                if not isinstance(state, str) or not state:
                    raise WebhookRejected(401, f"{notification.path}.clientState", "missing")
                if not any_secret_matches(secrets, [state], lambda s: s):
                    raise WebhookRejected(401, f"{notification.path}.clientState", "does not match")
            return
        verify_standard_webhook(request, secrets, config)

    def parse(
        self, request: WebhookRequest, config: TenantWebhookConfig, secrets: Sequence[str] = ()
    ) -> AdapterResult:
        token = validation_token(request.url)
        if token is not None and not request.body.strip():
            if len(token) > MAX_VALIDATION_TOKEN:
                raise WebhookRejected(
                    422, "validationToken", f"longer than {MAX_VALIDATION_TOKEN} characters"
                )
            return AdapterResult(handshake=HandshakeResponse(200, "text/plain", token.encode("utf-8")))
        body = load_json_object(request.body)
        if _is_change_notification(body):
            return AdapterResult(
                ignored=tuple(
                    Ignored(
                        f"{n.path} {n.opt_str('changeType')} {n.opt_str('resource')}: "
                        "change notification without resource data",
                        OTHER,
                    )
                    for n in body.objs("value")
                )
            )
        resources = one_or_page(body, "value", MAX_RESOURCES)
        read_at = observed_at(body, request.received_at)
        result = convert_each(
            resources, lambda resource: _resource(resource, config, request.received_at, read_at)
        )
        # The connector names the mailbox it synced: only the organizer's deletes the meeting.
        return seen_in_calendar(result, body, read_at)


def _resource(
    resource: JsonObject, config: TenantWebhookConfig, received_at: datetime, read_at: datetime
) -> tuple[ActivityIn | SourceDeletion | TimeBlock | None, str]:
    odata_type = resource.opt_str("@odata.type")
    if resource.has("@removed"):
        return _removed(resource, odata_type, read_at)
    if odata_type == MESSAGE_TYPE or (odata_type is None and resource.has("internetMessageId")):
        return _message(resource, config, received_at)
    if odata_type == EVENT_TYPE or (odata_type is None and resource.has("start")):
        return _event(resource, config, received_at)
    return None, f"{odata_type}: not a message or an event"


def _removed(
    resource: JsonObject, odata_type: str | None, read_at: datetime
) -> tuple[SourceDeletion | None, str]:
    """A delta's ``@removed`` entry (an id, and why it left the delta): a deleted event is
    retracted; a message deleted from a mailbox was still sent or received, and an event that
    left the delta for another reason (``changed``: moved out of the view) may still exist.

    The entry gives no time: the deletion is placed right after the newest revision of the event
    ingest published (``lastModifiedDateTime`` in ms), in Graph's own order, not ours; see
    ``deletion_on_receipt``."""
    removed = resource.opt_obj("@removed")
    reason = removed.opt_str("reason") if removed is not None else None
    if odata_type != EVENT_TYPE:
        return None, f"{odata_type} removed ({reason}): a deleted message was still sent or received"
    if reason != "deleted":
        return None, f"event removed from the delta ({reason}), not deleted"
    return deletion_on_receipt(SOURCE, resource.req_str("id"), resource.field("id"), read_at), ""


def _address(holder: JsonObject | None) -> tuple[str | None, str | None]:
    """(address, name) of a Graph recipient ({"emailAddress": {"address", "name"}})."""
    if holder is None:
        return None, None
    email_address = holder.opt_obj("emailAddress")
    if email_address is None:
        return None, None
    return email_address.opt_str("address"), email_address.opt_str("name")


def _address_fields(holder: JsonObject | None) -> dict[str, str]:
    """Where a Graph recipient's address and name are (a refusal names them there)."""
    email_address = holder.opt_obj("emailAddress") if holder is not None else None
    if email_address is None:
        return {}
    return {"email": email_address.field("address"), "name": email_address.field("name")}


def _recipients(
    resource: JsonObject, key: str, role: ParticipantRole, region: str
) -> list[Participant | None]:
    found: list[Participant | None] = []
    for recipient in resource.objs(key):
        address, name = _address(recipient)
        found.append(
            make_participant(
                role=role,
                field=recipient.field("emailAddress"),
                region=region,
                email=address,
                name=name,
                named=_address_fields(recipient),
            )
        )
    return found


def _modified(resource: JsonObject, received_at: datetime) -> int:
    raw = resource.opt_str("lastModifiedDateTime")
    if not raw:
        return 0
    field = resource.field("lastModifiedDateTime")
    return epoch_millis(not_ahead(parse_iso_datetime(raw, field), received_at, field))


def _message(
    resource: JsonObject, config: TenantWebhookConfig, received_at: datetime
) -> tuple[ActivityIn | None, str]:
    if resource.opt_bool("isDraft"):
        return None, Ignored(DRAFT_NEVER_SENT, NOT_DONE)
    region = config.default_phone_region
    sender_holder = resource.opt_obj("from") or resource.opt_obj("sender")
    sender_address, sender_name = _address(sender_holder)
    participants = unique_participants(
        [
            make_participant(
                role=ParticipantRole.FROM,
                field=resource.field("from"),
                region=region,
                email=sender_address,
                name=sender_name,
                named=_address_fields(sender_holder),
            ),
            *_recipients(resource, "toRecipients", ParticipantRole.TO, region),
            *_recipients(resource, "ccRecipients", ParticipantRole.CC, region),
            *_recipients(resource, "bccRecipients", ParticipantRole.BCC, region),
        ]
    )
    # When it was sent, else received: a bad one is named where it was read. A received mail's
    # sentDateTime is its sender's Date header (anyone's clock), so it is never later than
    # receivedDateTime, Exchange's own: a sender dated next year is read as received.
    sent_key = "sentDateTime" if resource.opt_str("sentDateTime") else "receivedDateTime"
    sent_at = parse_iso_datetime(resource.req_str(sent_key), resource.field(sent_key))
    if sent_key == "sentDateTime" and resource.opt_str("receivedDateTime"):
        arrived_at = parse_iso_datetime(
            resource.req_str("receivedDateTime"), resource.field("receivedDateTime")
        )
        if arrived_at < sent_at:
            sent_key, sent_at = "receivedDateTime", arrived_at
    sent_at = not_ahead(sent_at, received_at, resource.field(sent_key))
    sender = next((p.email for p in participants if p.role is ParticipantRole.FROM), None)
    recipients = [p.email for p in participants if p.role is not ParticipantRole.FROM and p.email]
    direction = direction_for(sender, recipients, config.internal_domains)
    return build_activity(
        resource.path or "body",
        {
            "external_id": resource.field("internetMessageId"),
            "thread_id": resource.field("conversationId"),
            "subject": resource.field("subject"),
        },
        source="microsoft-graph",
        external_id=resource.req_str("internetMessageId"),
        kind=ActivityKind.EMAIL,
        direction=direction,
        outcome=email_outcome(direction),
        occurred_at=sent_at,
        participants=participants,
        thread_id=resource.opt_str("conversationId"),
        subject=resource.opt_str("subject"),
        revision=_modified(resource, received_at),
    ), ""


def _graph_time(resource: JsonObject, key: str) -> datetime | None:
    """A dateTimeTimeZone: a local time without offset plus a zone name (UTC unless asked otherwise)."""
    moment = resource.opt_obj(key)
    if moment is None:
        return None
    local = parse_iso_datetime(moment.req_str("dateTime"), moment.field("dateTime"), assume_utc=True)
    zone_name = moment.opt_str("timeZone") or "UTC"
    if zone_name == "UTC":
        return local
    try:
        zone = ZoneInfo(WINDOWS_ZONES.get(zone_name, zone_name))
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise WebhookRejected(422, moment.field("timeZone"), "unknown time zone") from None
    return parse_iso_datetime(local.replace(tzinfo=zone).isoformat(), moment.field("dateTime"))


def _declined(status: JsonObject | None) -> bool:
    """A responseStatus (``{"response": "declined", "time": ...}``) that says no."""
    return status is not None and status.opt_str("response") == DECLINED


def _event_people(
    resource: JsonObject, config: TenantWebhookConfig
) -> tuple[tuple[Participant, ...], bool] | None:
    """The event's participants and whether its answers called it off (``calendar_people``).

    The organizer's own answer is the event's ``responseStatus`` when the calendar is hers
    (``isOrganizer``), or her entry among the attendees when one lists her address: one who
    declined her own event did not attend it. Rooms never attend.
    """
    region = config.default_phone_region
    organizer_address, organizer_name = _address(resource.opt_obj("organizer"))
    organizer_email = normalize_email(organizer_address)
    host_declined = bool(resource.opt_bool("isOrganizer")) and _declined(resource.opt_obj("responseStatus"))
    attending: list[Participant | None] = []
    declining: list[Participant | None] = []
    for attendee in resource.objs("attendees"):
        if attendee.opt_str("type") == "resource":
            continue
        address, name = _address(attendee)
        said_no = _declined(attendee.opt_obj("status"))
        if organizer_email is not None and normalize_email(address) == organizer_email:
            host_declined = host_declined or said_no
            continue
        (declining if said_no else attending).append(
            make_participant(
                role=ParticipantRole.ATTENDEE,
                field=attendee.field("emailAddress"),
                region=region,
                email=address,
                name=name,
                response_status=ResponseStatus.DECLINED if said_no else None,
                named=_address_fields(attendee),
            )
        )
    organizer = make_participant(
        role=ParticipantRole.ORGANIZER,
        field=resource.field("organizer"),
        region=region,
        email=organizer_address,
        name=organizer_name,
        response_status=ResponseStatus.DECLINED if host_declined else None,
        named=_address_fields(resource.opt_obj("organizer")),
    )
    return calendar_people(organizer, attending, declining, config.internal_domains)


def _time_not_blocked(resource: JsonObject) -> str | None:
    """Why the event, with colleagues only, would be no meeting: time out of office (``showAs``
    ``oof``), an all-day entry (``isAllDay``, one day or several), one shown as free or a hold
    (its ``subject`` labels it one: "HOLD: Acme demo")."""
    show_as = resource.opt_str("showAs")
    if show_as == OUT_OF_OFFICE:
        return "showAs oof: time out of office, not a meeting"
    if resource.opt_bool("isAllDay"):
        return ALL_DAY_TIME
    if show_as == FREE:
        return FREE_TIME
    return held_for_a_meeting(resource.opt_str("subject"))


def _event(
    resource: JsonObject, config: TenantWebhookConfig, received_at: datetime
) -> tuple[ActivityIn | TimeBlock | None, str]:
    if resource.opt_str("type") == SERIES_MASTER:
        return None, "a series master: its occurrences are the meetings"
    start = _graph_time(resource, "start")
    if start is None:
        raise WebhookRejected(422, resource.field("start"), "required")
    end = _graph_time(resource, "end")
    called = _event_people(resource, config)
    if called is None:
        return TimeBlock(SOURCE, resource.req_str("id"), _modified(resource, received_at), BLOCKED_TIME), ""
    participants, called_off = called
    away = _time_not_blocked(resource)
    if away is not None and not a_customer_attends(participants, config.internal_domains):
        return TimeBlock(SOURCE, resource.req_str("id"), _modified(resource, received_at), away), ""
    cancelled = bool(resource.opt_bool("isCancelled"))
    return build_activity(
        resource.path or "body",
        {
            "external_id": resource.field("id"),
            "thread_id": resource.field("seriesMasterId"),
            "ical_uid": resource.field("iCalUId"),
            "subject": resource.field("subject"),
        },
        source="microsoft-graph",
        external_id=resource.req_str("id"),
        kind=ActivityKind.MEETING,
        direction=meeting_direction(participants, config.internal_domains),
        outcome=Outcome.CANCELLED if cancelled or called_off else meeting_outcome(start, end, received_at),
        occurred_at=start,
        duration_seconds=duration_between(start, end),
        participants=participants,
        thread_id=resource.opt_str("seriesMasterId"),
        ical_uid=resource.opt_str("iCalUId"),
        subject=resource.opt_str("subject"),
        revision=_modified(resource, received_at),
    ), ""
