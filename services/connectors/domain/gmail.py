"""Gmail: the headers requested, the message ids a page names, and what is forwarded to ingest.

Only ``format=metadata`` is ever requested, with an explicit header list and a ``fields`` mask,
so message bodies, attachments and snippets are never fetched.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from services.connectors.domain.policy import FetchPolicy

#: ``gmail.metadata`` grants headers and labels only, never bodies (and forbids ``q`` searches).
GMAIL_SCOPE = "https://www.googleapis.com/auth/gmail.metadata"
#: ``Bcc`` too: the sender's own copy carries it, and a customer or an excluded person copied
#: blind is a participant like any other (without it, a mail to a colleague blind-copying a
#: buyer read as internal, and an excluded address in it was not withheld).
ADDRESS_HEADERS = ("From", "To", "Cc", "Bcc", "Date", "Message-ID", "In-Reply-To", "References")
#: The ``fields`` mask of ``users.messages.get``: no snippet, no body, no sizes.
MESSAGE_FIELDS = "id,threadId,labelIds,internalDate,payload/headers"


def metadata_headers(policy: FetchPolicy) -> tuple[str, ...]:
    return (*ADDRESS_HEADERS, "Subject") if policy.subject_needed else ADDRESS_HEADERS


def added_message_ids(history_page: Mapping[str, Any]) -> list[str]:
    """Ids of the messages a ``users.history.list`` page says were added, first seen first."""
    seen: dict[str, None] = {}
    for record in history_page.get("history") or ():
        for added in record.get("messagesAdded") or ():
            message = added.get("message") or {}
            message_id = message.get("id")
            if isinstance(message_id, str):
                seen.setdefault(message_id, None)
    return list(seen)


def listed_message_ids(list_page: Mapping[str, Any]) -> list[str]:
    """Ids on a ``users.messages.list`` page."""
    return [m["id"] for m in list_page.get("messages") or () if isinstance(m.get("id"), str)]


def sent_at(message: Mapping[str, Any]) -> datetime | None:
    raw = message.get("internalDate")
    try:
        return datetime.fromtimestamp(int(raw) / 1000, UTC) if raw is not None else None
    except (TypeError, ValueError, OverflowError):
        return None


def for_ingest(message: Mapping[str, Any], headers: Sequence[str]) -> dict[str, Any]:
    """The message as forwarded: identity, labels, date and the requested headers only.

    Gmail returns what was asked, but this is the last gate before the data leaves us: a
    snippet or an extra header (a vendor change, a proxy) is dropped here.
    """
    wanted = {h.lower() for h in headers}
    payload = message.get("payload") or {}
    kept = [
        {"name": h.get("name"), "value": h.get("value")}
        for h in payload.get("headers") or ()
        if isinstance(h, Mapping) and str(h.get("name", "")).lower() in wanted
    ]
    forwarded: dict[str, Any] = {
        k: message[k] for k in ("id", "threadId", "labelIds", "internalDate") if k in message
    }
    forwarded["payload"] = {"headers": kept}
    return forwarded
