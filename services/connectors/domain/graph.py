"""Microsoft Graph: delta queries, what is selected and forwarded, and subscriptions.

A delta cursor is simply the next URL to GET: an ``@odata.nextLink`` while a round is under way,
then the ``@odata.deltaLink`` that returns the changes since. The cursor of a mailbox is a JSON
object of such links, one per delta collection (Inbox and Sent Items for mail, the calendar
view for events), saved after every page, so a stopped backfill resumes where it was.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

import orjson

from services.connectors.domain.policy import FetchPolicy, forwarded_title

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
MAIL_FOLDERS = ("inbox", "sentitems")
CALENDAR_COLLECTION = "calendarview"
#: How far ahead the calendar view reaches (upcoming meetings are activities too).
CALENDAR_AHEAD = timedelta(days=365)
#: Outlook message and event subscriptions live at most 10,080 minutes; renewed a day before.
SUBSCRIPTION_LIFETIME = timedelta(days=7) - timedelta(hours=1)
_MESSAGE_FIELDS = (
    "internetMessageId",
    "conversationId",
    "from",
    "sender",
    "toRecipients",
    "ccRecipients",
    # A blind copy is a participant (Sent Items keeps it): see ``gmail.ADDRESS_HEADERS``.
    "bccRecipients",
    "sentDateTime",
    "receivedDateTime",
    "lastModifiedDateTime",
    "isDraft",
)
#: The calendar's mail in a mailbox, Graph's types derived from ``message`` (given as
#: ``@odata.type`` whatever ``$select`` names): invitations and cancellations
#: (``eventMessageRequest``, ``eventMessage``) and answers (``eventMessageResponse``).
EVENT_MESSAGE_TYPE = "#microsoft.graph.eventMessage"
_EVENT_FIELDS = (
    "id",
    "start",
    "end",
    "organizer",
    "attendees",
    "isCancelled",
    # The calendar owner's own answer, and whether she organised it: an organizer who declined
    # her own event did not attend it.
    "isOrganizer",
    "responseStatus",
    "seriesMasterId",
    "iCalUId",
    "lastModifiedDateTime",
    "type",
    # Time out of office ("oof"), an all-day entry and one shown as free ("free") are no
    # meeting when only colleagues are invited.
    "showAs",
    "isAllDay",
)
SUBSCRIBED_RESOURCE = {"microsoft-mail": "users/{user}/messages", "microsoft-calendar": "users/{user}/events"}


#: Graph's answers to a delta link it no longer honours (Outlook: 410 Gone; directory: 400).
EXPIRED_DELTA_REASONS = frozenset(
    {"syncStateNotFound", "SyncStateNotFound", "resyncRequired", "syncStateInvalid"}
)


def delta_expired(status: int, reason: str | None) -> bool:
    return status == 410 or (status == 400 and reason in EXPIRED_DELTA_REASONS)


def collections(provider: str) -> tuple[str, ...]:
    return MAIL_FOLDERS if provider == "microsoft-mail" else (CALENDAR_COLLECTION,)


def read_cursor(raw: str | None) -> dict[str, str]:
    if not raw:
        return {}
    try:
        links = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return {}
    return {k: v for k, v in links.items() if isinstance(v, str)} if isinstance(links, dict) else {}


def write_cursor(links: Mapping[str, str]) -> str:
    return orjson.dumps(dict(sorted(links.items()))).decode()


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def initial_url(
    base_url: str, provider: str, user: str, collection: str, since: datetime, policy: FetchPolicy
) -> str:
    """The first delta request of a full sync of ``collection`` from ``since``."""
    root = f"{base_url.rstrip('/')}/v1.0/users/{quote(user, safe='@')}"
    if provider == "microsoft-mail":
        fields = (*_MESSAGE_FIELDS, "subject") if policy.subject_needed else _MESSAGE_FIELDS
        query = {"$select": ",".join(fields), "$filter": f"receivedDateTime ge {_utc(since)}"}
        return f"{root}/mailFolders/{collection}/messages/delta?{urlencode(query)}"
    # calendarView delta accepts no $select: the fields are reduced by ``for_ingest`` instead.
    query = {"startDateTime": _utc(since), "endDateTime": _utc(since + CALENDAR_AHEAD)}
    return f"{root}/calendarView/delta?{urlencode(query)}"


def for_ingest(provider: str, item: Mapping[str, Any], policy: FetchPolicy) -> dict[str, Any] | None:
    """The resource as forwarded to ingest, or None for a message's deletion or a non-activity.

    Bodies, previews, locations and online-meeting details are dropped here whatever Graph
    returned (calendarView delta returns whole events). The calendar's mail (``_calendar_mail``)
    is not forwarded. An event's deletion (``@removed``: an
    id and a reason) is forwarded as it came, for ingest to retract the meeting; a message
    deleted from the mailbox was still sent or received, and is not.
    """
    if "@removed" in item:
        if provider == "microsoft-mail" or not item.get("id"):
            return None
        return {"@odata.type": "#microsoft.graph.event", "id": item["id"], "@removed": item["@removed"]}
    if provider == "microsoft-mail":
        keys: tuple[str, ...] = (*_MESSAGE_FIELDS, "subject") if policy.subject_needed else _MESSAGE_FIELDS
        if not item.get("internetMessageId") or _calendar_mail(item):
            return None
        kept = {k: item[k] for k in keys if k in item}
        return {"@odata.type": "#microsoft.graph.message", **kept}
    if item.get("type") == "seriesMaster":
        # The series is expanded into its occurrences by the calendar view; the master is not a meeting.
        return None
    kept = {k: item[k] for k in _EVENT_FIELDS if k in item}
    # The subject whole when the policy needs it, else only the word of a hold ("HOLD: Acme demo").
    title = forwarded_title(item.get("subject"), policy)
    if title is not None:
        kept["subject"] = title
    return {"@odata.type": "#microsoft.graph.event", **kept}


def _calendar_mail(item: Mapping[str, Any]) -> bool:
    """The calendar's own mail (an invitation, an update, a cancellation, an answer): the meeting
    counts from the calendar, so it is no one's email, as ingest reads Gmail's and a posted
    email carrying the event's UID. An answer "with a comment" is one too: the comment is in
    the body, which ``Mail.ReadBasic.All`` does not grant (nor its preview)."""
    odata_type = item.get("@odata.type")
    return isinstance(odata_type, str) and odata_type.startswith(EVENT_MESSAGE_TYPE)


def subscription_request(
    provider: str, user: str, notification_url: str, client_state: str, now: datetime
) -> dict[str, Any]:
    """A Graph subscription for the mailbox's messages or events, with lifecycle notifications."""
    return {
        "changeType": "created,updated,deleted",
        "notificationUrl": notification_url,
        "lifecycleNotificationUrl": notification_url,
        "resource": SUBSCRIBED_RESOURCE[provider].format(user=user),
        "expirationDateTime": _utc(now + SUBSCRIPTION_LIFETIME),
        "clientState": client_state,
    }
