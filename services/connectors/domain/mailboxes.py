"""A connected mailbox or calendar as the connectors see it, and the rules on its sync state."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

PROVIDERS = ("gmail", "google-calendar", "microsoft-mail", "microsoft-calendar")
#: The ingest webhook source each provider's resources are posted to.
INGEST_SOURCE = {
    "gmail": "gmail",
    "google-calendar": "google-calendar",
    "microsoft-mail": "microsoft-graph",
    "microsoft-calendar": "microsoft-graph",
}
#: Calendars: each post names the mailbox it was read from, since an event deleted from an
#: attendee's calendar is gone for her alone (only the organizer's calendar deletes a meeting).
CALENDAR_PROVIDERS = frozenset({"google-calendar", "microsoft-calendar"})


def post_context(mailbox: Mailbox, read_at: datetime) -> dict[str, str]:
    """What a post of ``mailbox``'s resources says besides them: a calendar's mailbox, and when
    the page was read (``observed_at``: ingest dates a deletion the calendar does not date by it,
    so retries of the post do not make the deletion newer than a restore made meanwhile)."""
    if mailbox.provider not in CALENDAR_PROVIDERS:
        return {}
    return {"mailbox": mailbox.address, "observed_at": read_at.astimezone(UTC).isoformat()}


@dataclass(frozen=True, slots=True)
class Connection:
    """The credentials a set of mailboxes is read with; ``credentials`` never appears in a repr."""

    connection_id: int
    tenant_id: str
    vendor: str
    credentials: str = ""
    options: dict[str, Any] | None = None

    def __repr__(self) -> str:
        return f"Connection({self.connection_id}, {self.tenant_id!r}, {self.vendor!r})"

    def option(self, name: str) -> Any:
        return (self.options or {}).get(name)


@dataclass(frozen=True, slots=True)
class Mailbox:
    mailbox_id: int
    tenant_id: str
    provider: str
    address: str
    connection: Connection
    cursor: str | None = None
    #: A full sync (backfill or resync) of what happened since then is in progress.
    full_sync_since: datetime | None = None
    full_sync_page_token: str | None = None
    #: Gmail: the historyId read before the full listing started, adopted when it ends.
    full_sync_cursor: str | None = None
    subscription_id: str | None = None
    subscription_expires_at: datetime | None = None
    failures: int = 0
    #: The start of the window connected (now - backfill days): nothing older is ever fetched.
    backfill_since: datetime | None = None
    last_success_at: datetime | None = None
    #: The database time the mailbox was claimed; a push after it keeps the mailbox due.
    claimed_at: datetime | None = None

    @property
    def needs_full_sync(self) -> bool:
        return self.full_sync_since is not None or self.cursor is None


def resync_since(mailbox: Mailbox, now: datetime, resync_days: int) -> datetime:
    """Where a full resync (expired cursor) starts listing again.

    From a day before the last successful sync (what the expired cursor would have returned,
    with a margin), else ``resync_days`` back; never before the window connected, so a resync
    re-posts only what was already counted plus what was missed.
    """
    if mailbox.last_success_at is not None:
        start = mailbox.last_success_at - timedelta(days=1)
    else:
        start = now - timedelta(days=resync_days)
    return max(start, mailbox.backfill_since) if mailbox.backfill_since is not None else start


def subscription_due(mailbox: Mailbox, now: datetime, margin: timedelta) -> bool:
    """A watch or subscription is (re)made when absent or expiring within ``margin``."""
    expires = mailbox.subscription_expires_at
    return expires is None or expires <= now + margin


def health(
    *,
    paused: bool,
    full_sync: bool,
    last_error_at: datetime | None,
    last_success_at: datetime | None,
    now: datetime,
    stale_after: timedelta,
) -> str:
    """``paused``, ``failing`` (the last attempt failed), ``backfilling``, ``stale``, ``pending`` or ``ok``."""
    if paused:
        return "paused"
    if last_error_at is not None and (last_success_at is None or last_error_at > last_success_at):
        return "failing"
    if full_sync:
        return "backfilling"
    if last_success_at is None:
        return "pending"
    if now - last_success_at > stale_after:
        return "stale"
    return "ok"
