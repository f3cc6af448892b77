"""Google Calendar API Event resources, posted by a sync connector signed with Standard Webhooks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time

from libs.common.contracts.activities import (
    RESPONSE_STATUS_SPELLINGS,
    ActivityIn,
    ActivityKind,
    Outcome,
    Participant,
    ParticipantRole,
    ResponseStatus,
)
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
    duration_between,
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
    source_deletion,
)
from services.ingest.domain.signatures import verify_standard_webhook
from services.ingest.domain.webhook_types import (
    AdapterResult,
    SourceDeletion,
    TenantWebhookConfig,
    TimeBlock,
    WebhookRejected,
    WebhookRequest,
)

SOURCE = "google-calendar"
MAX_EVENTS = 1_000
#: Attendees who said no did not attend (the organizer too, when she declined her own event);
#: everyone else is kept (needsAction, tentative, accepted).
DECLINED = "declined"
#: The ``eventType`` of a meeting (also what an event without one is). ``events.list`` without
#: ``eventTypes`` returns every type: working location (an entry each working day), out of
#: office, focus time, birthdays and Gmail's reservations (flights, restaurants) are not meetings.
MEETING_EVENT_TYPE = "default"
#: ``transparency`` of an event that blocks no time ("Show as: free"; Google's default for an
#: all-day event, ``opaque`` for one with hours).
TRANSPARENT = "transparent"


@dataclass(frozen=True, slots=True)
class GoogleCalendarAdapter:
    """Calendar Event resources posted by the sync connector."""

    source: str = SOURCE
    version: str = "google-calendar/1"

    def verify(self, request: WebhookRequest, secrets: Sequence[str], config: TenantWebhookConfig) -> None:
        verify_standard_webhook(request, secrets, config)

    def parse(
        self, request: WebhookRequest, config: TenantWebhookConfig, secrets: Sequence[str] = ()
    ) -> AdapterResult:
        body = load_json_object(request.body)
        # One Event resource, or a page of the Events list ({"kind": "calendar#events", "items": [...]}).
        events = one_or_page(body, "items", MAX_EVENTS)
        read_at = observed_at(body, request.received_at)
        result = convert_each(events, lambda event: _event(event, config, request.received_at, read_at))
        # The connector names the calendar it synced: only the organizer's deletes the meeting.
        return seen_in_calendar(result, body, read_at)


def _when(event: JsonObject, key: str) -> datetime | None:
    """``dateTime`` (RFC 3339), or ``date`` for all-day events, read as midnight UTC."""
    moment = event.opt_obj(key)
    if moment is None:
        return None
    if moment.has("dateTime"):
        return parse_iso_datetime(moment.req_str("dateTime"), moment.field("dateTime"))
    raw = moment.opt_str("date")
    if raw is None:
        return None
    try:
        return datetime.combine(date.fromisoformat(raw), time(), tzinfo=UTC)
    except ValueError:
        raise WebhookRejected(422, moment.field("date"), "not an ISO 8601 date") from None


def _time_not_blocked(event: JsonObject) -> str | None:
    """Why the event, with colleagues only, would be no meeting: an all-day entry (a ``date``
    start, one day or several), one shown as free (``transparency`` ``transparent``) or a hold
    (its ``summary`` labels it one: "HOLD: Acme demo")."""
    start = event.opt_obj("start")
    if start is not None and not start.has("dateTime") and start.has("date"):
        return ALL_DAY_TIME
    if event.opt_str("transparency") == TRANSPARENT:
        return FREE_TIME
    return held_for_a_meeting(event.opt_str("summary"))


def _people(event: JsonObject, config: TenantWebhookConfig) -> tuple[tuple[Participant, ...], bool] | None:
    """The event's participants and whether its answers called it off (``calendar_people``).

    Google lists the organizer among the attendees too (``organizer: true``), with her own
    answer: one who declined her own event did not attend it. Rooms never attend.
    """
    region = config.default_phone_region
    organizer = event.opt_obj("organizer")
    organizer_email = normalize_email(organizer.opt_str("email")) if organizer is not None else None
    own_entry: JsonObject | None = None
    attending: list[Participant | None] = []
    declining: list[Participant | None] = []
    for attendee in event.objs("attendees"):
        if attendee.opt_bool("resource"):
            continue
        email = attendee.opt_str("email")
        if attendee.opt_bool("organizer") or (
            organizer_email is not None and normalize_email(email) == organizer_email
        ):
            own_entry = own_entry or attendee
            continue
        answer = attendee.opt_str("responseStatus")
        (declining if answer == DECLINED else attending).append(
            make_participant(
                role=ParticipantRole.ATTENDEE,
                field=attendee.field("email"),
                region=region,
                email=email,
                name=attendee.opt_str("displayName"),
                # Every answer as the event lists it: a guest who removed the meeting from her
                # calendar stays out while the organizer's copy lists her with the answer she
                # had then (docs/attribution.md, "Removed from one calendar").
                response_status=RESPONSE_STATUS_SPELLINGS.get((answer or "").lower()),
                named={"email": attendee.field("email"), "name": attendee.field("displayName")},
            )
        )
    host = organizer if organizer is not None and organizer.has("email") else own_entry
    host_declined = own_entry is not None and own_entry.opt_str("responseStatus") == DECLINED
    organizer_participant = (
        make_participant(
            role=ParticipantRole.ORGANIZER,
            field=host.field("email"),
            region=region,
            email=host.opt_str("email"),
            name=host.opt_str("displayName"),
            response_status=ResponseStatus.DECLINED if host_declined else None,
            named={"email": host.field("email"), "name": host.field("displayName")},
        )
        if host is not None
        else None
    )
    return calendar_people(organizer_participant, attending, declining, config.internal_domains)


def _event(
    event: JsonObject, config: TenantWebhookConfig, received_at: datetime, read_at: datetime
) -> tuple[ActivityIn | SourceDeletion | TimeBlock | None, str]:
    event_id = event.req_str("id")
    event_type = event.opt_str("eventType") or MEETING_EVENT_TYPE
    if event_type != MEETING_EVENT_TYPE:
        return None, f"eventType {event_type}: a calendar status or a Gmail reservation, not a meeting"
    status = event.opt_str("status") or "confirmed"
    start = _when(event, "start")
    updated_raw = event.opt_str("updated")
    # The revision clock: never more than a day ahead of receipt (the start may be months ahead).
    updated = (
        not_ahead(
            parse_iso_datetime(updated_raw, event.field("updated")), received_at, event.field("updated")
        )
        if updated_raw
        else None
    )
    if start is None:
        # Incremental sync sends a deleted event (or a deleted occurrence of a recurring one)
        # stripped to its id and status (``updated`` too, at times: the deletion's revision;
        # without it, right after the newest revision published, ``deletion_on_receipt``):
        # the meeting published under that id is retracted.
        if status == "cancelled":
            if updated is None:
                return deletion_on_receipt(SOURCE, event_id, event.field("id"), read_at), ""
            return source_deletion(SOURCE, event_id, event.field("id"), epoch_millis(updated)), ""
        raise WebhookRejected(422, event.field("start"), "required")
    end = _when(event, "end")
    revision = epoch_millis(updated) if updated else 0
    called = _people(event, config)
    if called is None:
        return TimeBlock(SOURCE, event_id, revision, BLOCKED_TIME), ""
    participants, called_off = called
    away = _time_not_blocked(event)
    if away is not None and not a_customer_attends(participants, config.internal_domains):
        return TimeBlock(SOURCE, event_id, revision, away), ""
    return build_activity(
        event.path or "body",
        {
            "external_id": event.field("id"),
            "thread_id": event.field("recurringEventId"),
            "ical_uid": event.field("iCalUID"),
            "subject": event.field("summary"),
        },
        source=SOURCE,
        # Instances of a recurring event have their own id (base id + original start), so each
        # occurrence is its own activity; recurringEventId links them as a thread.
        external_id=event_id,
        kind=ActivityKind.MEETING,
        direction=meeting_direction(participants, config.internal_domains),
        outcome=Outcome.CANCELLED
        if status == "cancelled" or called_off
        else meeting_outcome(start, end, received_at),
        occurred_at=start,
        duration_seconds=duration_between(start, end),
        participants=participants,
        thread_id=event.opt_str("recurringEventId"),
        ical_uid=event.opt_str("iCalUID"),
        subject=event.opt_str("summary"),
        revision=revision,
    ), ""
