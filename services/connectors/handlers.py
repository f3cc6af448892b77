"""Connector use cases: connect mailboxes, sync the due ones, each isolated from the others.

Exactly-once effect comes from ingest: every activity id is deterministic per (tenant, source,
vendor object) and ingest drops an (activity, revision) it already published, so a cursor that
did not advance (a crash between a post and its save), a resync or a redelivered push re-posts
what is already counted and adds nothing. A cursor is saved only after ingest acknowledged.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from libs.common.tenancy import push_token
from services.connectors.adapters.google import (
    CalendarClient,
    GmailClient,
    GoogleSessions,
    millis_to_datetime,
)
from services.connectors.adapters.http import ApiError
from services.connectors.adapters.ingest import IngestPoster, IngestRefused
from services.connectors.adapters.microsoft import GraphClient, MicrosoftSessions
from services.connectors.adapters.store import LeaseLost, MailboxStore
from services.connectors.domain import calendar as calendar_rules
from services.connectors.domain import gmail as gmail_rules
from services.connectors.domain import graph as graph_rules
from services.connectors.domain.mailboxes import (
    INGEST_SOURCE,
    Mailbox,
    post_context,
    resync_since,
    subscription_due,
)
from services.connectors.domain.policy import FetchPolicy, fetch_policy
from services.connectors.domain.retry import backoff_seconds, failure_delay
from services.connectors.settings import ConnectorsOptions
from services.connectors.telemetry import (
    CONNECTOR_ERRORS,
    CONNECTOR_FETCHED,
    CONNECTOR_LAG,
    CONNECTOR_REFUSED,
)

log = logging.getLogger(__name__)

#: Message metadata fetched at once per mailbox (Gmail's per-user quota is the limit).
GET_CONCURRENCY = 8


@dataclass(frozen=True, slots=True)
class SyncDeps:
    store: MailboxStore
    ingest: IngestPoster
    google: GoogleSessions
    microsoft: MicrosoftSessions
    options: ConnectorsOptions
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class SyncResult:
    mailbox_id: int
    fetched: int
    error: str | None = None


# -- connecting -------------------------------------------------------------------------------


async def connect_mailboxes(
    store: MailboxStore,
    tenant_id: str,
    provider: str,
    *,
    vendor: str,
    credentials: str,
    options: dict[str, Any],
    addresses: Sequence[str],
    backfill_days: int,
    now: datetime,
) -> list[int]:
    """Store the credentials (encrypted) and the mailboxes, each due for a backfill of ``backfill_days``."""
    connection_id = await store.add_connection(tenant_id, vendor, credentials, options)
    since = now - timedelta(days=backfill_days)
    return await store.add_mailboxes(connection_id, tenant_id, provider, addresses, since)


# -- syncing ----------------------------------------------------------------------------------


async def sync_due(deps: SyncDeps) -> list[SyncResult]:
    """One pass: lease the due mailboxes of this shard and sync them concurrently."""
    options = deps.options
    mailboxes = await deps.store.claim_due(
        options.concurrency, options.lease_seconds, options.shard_index, options.shard_count
    )
    results = await asyncio.gather(*(sync_mailbox(m, deps) for m in mailboxes))
    return list(results)


async def sync_mailbox(mailbox: Mailbox, deps: SyncDeps) -> SyncResult:
    """Sync one mailbox; any failure is recorded on it alone and retried later with backoff."""
    syncer = SYNCERS.get(mailbox.provider)
    try:
        if syncer is None:
            raise ApiError(0, "provider", f"no connector for {mailbox.provider}")
        fetched = await syncer(mailbox, deps)
    except LeaseLost as exc:
        # This run outlived its lease and another run has the mailbox: it stops, writing nothing.
        _lease_lost(mailbox)
        return SyncResult(mailbox.mailbox_id, 0, str(exc))
    except Exception as exc:
        # Whatever went wrong with this mailbox (the vendor, its data, a bug on its path) is
        # recorded on it alone and retried with backoff; the other mailboxes carry on.
        if not isinstance(exc, ApiError | IngestRefused):
            log.exception("mailbox sync failed unexpectedly", extra={"provider": mailbox.provider})
        CONNECTOR_ERRORS.labels(mailbox.provider).inc()
        delay = failure_delay(
            mailbox.failures + 1, timedelta(seconds=deps.options.failure_backoff_max_seconds)
        )
        # The vendor's message may name the mailbox: it is kept in the mailbox's row (shown by
        # ``spm connectors list``); logs get the status and reason only, metrics the provider.
        log.warning(
            "mailbox sync failed",
            extra={"provider": mailbox.provider, "mailbox_id": mailbox.mailbox_id, "error": _error_code(exc)},
        )
        if not await deps.store.record_failure(mailbox, str(exc), delay.total_seconds()):
            _lease_lost(mailbox)
        return SyncResult(mailbox.mailbox_id, 0, str(exc))
    if not await deps.store.record_success(mailbox, deps.options.sync_interval_seconds):
        _lease_lost(mailbox)
        return SyncResult(mailbox.mailbox_id, fetched, "lease lost")
    return SyncResult(mailbox.mailbox_id, fetched)


def _lease_lost(mailbox: Mailbox) -> None:
    log.warning(
        "mailbox lease lost; result not recorded",
        extra={"provider": mailbox.provider, "mailbox_id": mailbox.mailbox_id},
    )


def _error_code(exc: Exception) -> str:
    if isinstance(exc, ApiError):
        return f"{exc.status} {exc.reason or ''}".strip()
    if isinstance(exc, IngestRefused):
        return f"ingest {exc.status}"
    return type(exc).__name__


async def update_lag(store: MailboxStore) -> None:
    for provider, lag in (await store.lag_by_provider()).items():
        CONNECTOR_LAG.labels(provider).set(lag)


#: The loop's own failures (the database unreachable) are retried this long, then the process exits.
LOOP_RETRY_DEADLINE_SECONDS = 120.0


async def sync_forever(deps: SyncDeps, stop: asyncio.Event) -> None:
    """Keep up to ``concurrency`` mailboxes syncing until ``stop``: a slot that frees is given to
    the next due mailbox at once, so one mailbox that takes hours (a provider that does not answer,
    a backfill of years of mail) holds one slot, never the others' turns. Looks for due mailboxes
    every ``poll_seconds`` while slots are free; on ``stop``, the syncs under way finish.

    A failure of the loop itself (not of one mailbox: those are recorded on the mailbox) is
    retried with backoff; past ``LOOP_RETRY_DEADLINE_SECONDS`` of failures it is raised, and the
    process exits for the orchestrator to restart it.
    """
    failing_since: float | None = None
    attempt = 0
    loop = asyncio.get_running_loop()
    running: dict[asyncio.Task[SyncResult], int] = {}  # task -> mailbox id
    try:
        while not stop.is_set():
            try:
                _reap(running)
                started = await _start_due(deps, running)
                await update_lag(deps.store)
            except Exception as exc:
                failing_since = failing_since if failing_since is not None else loop.time()
                if loop.time() - failing_since > LOOP_RETRY_DEADLINE_SECONDS:
                    raise
                attempt += 1
                log.warning("connector loop failed; retrying", extra={"error": repr(exc), "attempt": attempt})
                started = 0
                options = deps.options
                pause = backoff_seconds(attempt, options.backoff_initial_seconds, options.backoff_max_seconds)
            else:
                failing_since, attempt = None, 0
                pause = deps.options.poll_seconds
            if not started or len(running) >= deps.options.concurrency:
                await _pause(stop, running, pause)
    except BaseException:
        # Cancelled (a shutdown past its grace) or failing: the syncs under way stop too.
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        raise
    # Stopped: the syncs under way finish (cancelling this cancels them: gather passes it on).
    # One that raised (its mailbox's state could not be saved) is logged; the others still finish.
    outcomes = await asyncio.gather(*running, return_exceptions=True)
    for mailbox_id, outcome in zip(running.values(), outcomes, strict=True):
        if isinstance(outcome, Exception):
            log.error(
                "mailbox sync failed while stopping",
                exc_info=outcome,
                extra={"mailbox_id": mailbox_id, "error": repr(outcome)},
            )


def _reap(running: dict[asyncio.Task[SyncResult], int]) -> None:
    """Forget the finished syncs; one that raised (its mailbox's state could not be saved) fails the loop."""
    for task in [t for t in running if t.done()]:
        del running[task]
        task.result()


async def _start_due(deps: SyncDeps, running: dict[asyncio.Task[SyncResult], int]) -> int:
    """Lease as many due mailboxes of this shard as there are free slots and start syncing them."""
    options = deps.options
    free = options.concurrency - len(running)
    if free <= 0:
        return 0
    # Not the mailboxes this process is syncing: one may have outlived its lease (a slow vendor).
    mailboxes = await deps.store.claim_due(
        free, options.lease_seconds, options.shard_index, options.shard_count, running=list(running.values())
    )
    for mailbox in mailboxes:
        running[asyncio.create_task(sync_mailbox(mailbox, deps))] = mailbox.mailbox_id
    return len(mailboxes)


async def _pause(stop: asyncio.Event, running: dict[asyncio.Task[SyncResult], int], seconds: float) -> None:
    """Until ``stop``, a sync finishing (a slot frees) or ``seconds``, whichever comes first."""
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({stopping, *running}, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()


async def _post(deps: SyncDeps, mailbox: Mailbox, key: str, items: Sequence[Mapping[str, Any]]) -> None:
    size = deps.options.batch_size
    # Called as soon as the page is read: retries of its posts keep this time.
    context = post_context(mailbox, deps.clock())
    for start in range(0, len(items), size):
        posted = await deps.ingest.post(
            mailbox.tenant_id,
            INGEST_SOURCE[mailbox.provider],
            key,
            items[start : start + size],
            context,
        )
        if posted.refused:
            CONNECTOR_REFUSED.labels(mailbox.provider).inc(posted.refused)
            log.warning(
                "ingest refused resources; skipped",
                extra={
                    "provider": mailbox.provider,
                    "mailbox_id": mailbox.mailbox_id,
                    "refused": posted.refused,
                },
            )
    CONNECTOR_FETCHED.labels(mailbox.provider).inc(len(items))


# -- Gmail ------------------------------------------------------------------------------------


async def _gmail_messages(
    gmail: GmailClient, mailbox: Mailbox, ids: Sequence[str], headers: Sequence[str]
) -> list[dict[str, Any]]:
    """Metadata of ``ids`` in order, reduced to what ingest may see; deleted messages are skipped."""
    gate = asyncio.Semaphore(GET_CONCURRENCY)

    async def one(message_id: str) -> dict[str, Any] | None:
        async with gate:
            return await gmail.message(mailbox.address, message_id, headers, gmail_rules.MESSAGE_FIELDS)

    fetched = await asyncio.gather(*(one(i) for i in ids))
    return [gmail_rules.for_ingest(m, headers) for m in fetched if m is not None]


async def sync_gmail(mailbox: Mailbox, deps: SyncDeps) -> int:
    connection = mailbox.connection
    gmail = deps.google.gmail(connection.connection_id, connection.credentials, [gmail_rules.GMAIL_SCOPE])
    policy = fetch_policy(await deps.store.tenant_settings(mailbox.tenant_id))
    headers = gmail_rules.metadata_headers(policy)
    if mailbox.needs_full_sync:
        fetched = await _gmail_full_sync(gmail, mailbox, headers, deps)
    else:
        try:
            fetched = await _gmail_history_sync(gmail, mailbox, headers, deps)
        except ApiError as exc:
            if exc.status != 404:
                raise
            # The stored historyId is too old (Gmail keeps about a week): list again.
            since = resync_since(mailbox, deps.clock(), deps.options.resync_days)
            await deps.store.start_full_sync(mailbox, since)
            refreshed = await deps.store.mailbox(mailbox.mailbox_id)
            assert refreshed is not None
            fetched = await _gmail_full_sync(gmail, refreshed, headers, deps)
    await _gmail_watch(gmail, mailbox, deps)
    return fetched


async def _gmail_full_sync(
    gmail: GmailClient, mailbox: Mailbox, headers: Sequence[str], deps: SyncDeps
) -> int:
    """List messages newest first down to ``full_sync_since``; resumable at the saved page.

    The historyId is read before listing, so a message arriving during the listing is found
    by the next history sync (and posted twice at worst, which ingest drops).
    """
    since = mailbox.full_sync_since or deps.clock() - timedelta(days=deps.options.resync_days)
    cursor = mailbox.full_sync_cursor
    if cursor is None:
        cursor = str((await gmail.profile(mailbox.address))["historyId"])
    page_token = mailbox.full_sync_page_token
    total = 0
    while True:
        page = await gmail.list_messages(mailbox.address, page_token)
        messages = await _gmail_messages(gmail, mailbox, gmail_rules.listed_message_ids(page), headers)
        recent = [m for m in messages if (gmail_rules.sent_at(m) or since) >= since]
        await _post(deps, mailbox, "messages", recent)
        total += len(recent)
        page_token = page.get("nextPageToken")
        # messages.list is newest first: a page reaching past ``since`` is the last one needed.
        if not page_token or len(recent) < len(messages):
            await deps.store.finish_full_sync(mailbox, cursor, len(recent))
            return total
        await deps.store.save_full_sync(mailbox, page_token, cursor, len(recent), deps.options.lease_seconds)


async def _gmail_history_sync(
    gmail: GmailClient, mailbox: Mailbox, headers: Sequence[str], deps: SyncDeps
) -> int:
    """Messages added since the stored historyId, page by page; the cursor moves once all are in ingest."""
    assert mailbox.cursor is not None
    latest = mailbox.cursor
    page_token: str | None = None
    total = 0
    while True:
        page = await gmail.history(mailbox.address, mailbox.cursor, page_token)
        messages = await _gmail_messages(gmail, mailbox, gmail_rules.added_message_ids(page), headers)
        await _post(deps, mailbox, "messages", messages)
        total += len(messages)
        latest = str(page.get("historyId") or latest)
        page_token = page.get("nextPageToken")
        if not page_token:
            break
    await deps.store.advance_cursor(mailbox, latest, total)
    return total


async def _gmail_watch(gmail: GmailClient, mailbox: Mailbox, deps: SyncDeps) -> None:
    """(Re)make the Pub/Sub watch when the connection names a topic; Gmail's expire after 7 days."""
    topic = mailbox.connection.option("pubsub_topic")
    margin = timedelta(seconds=deps.options.renew_margin_seconds)
    if not topic or not subscription_due(mailbox, deps.clock(), margin):
        return
    answer = await gmail.watch(mailbox.address, str(topic))
    await deps.store.save_subscription(mailbox, str(topic), millis_to_datetime(answer.get("expiration")))


# -- Google Calendar --------------------------------------------------------------------------


async def sync_google_calendar(mailbox: Mailbox, deps: SyncDeps) -> int:
    connection = mailbox.connection
    calendar = deps.google.calendar(
        connection.connection_id, connection.credentials, [calendar_rules.CALENDAR_SCOPE]
    )
    policy = fetch_policy(await deps.store.tenant_settings(mailbox.tenant_id))
    try:
        fetched = await _calendar_list(calendar, mailbox, policy, deps)
    except ApiError as exc:
        if exc.status != 410 or mailbox.needs_full_sync:
            raise
        # The sync token expired (or the calendar's ACL changed): list the window again.
        since = resync_since(mailbox, deps.clock(), deps.options.resync_days)
        await deps.store.start_full_sync(mailbox, since)
        refreshed = await deps.store.mailbox(mailbox.mailbox_id)
        assert refreshed is not None
        fetched = await _calendar_list(calendar, refreshed, policy, deps)
    await _calendar_watch(calendar, mailbox, deps)
    return fetched


async def _calendar_list(
    calendar: CalendarClient, mailbox: Mailbox, policy: FetchPolicy, deps: SyncDeps
) -> int:
    """A full listing from ``full_sync_since`` (resumable by page) or the changes since the sync token."""
    full = mailbox.needs_full_sync
    since = mailbox.full_sync_since or deps.clock() - timedelta(days=deps.options.resync_days)
    page_token = mailbox.full_sync_page_token if full else None
    fields = calendar_rules.event_fields()
    total = 0
    while True:
        page = await calendar.events(
            mailbox.address,
            fields=fields,
            sync_token=None if full else mailbox.cursor,
            time_min=since if full else None,
            page_token=page_token,
        )
        events = [calendar_rules.for_ingest(e, policy) for e in page.get("items") or ()]
        await _post(deps, mailbox, "items", events)
        total += len(events)
        page_token = page.get("nextPageToken")
        if page_token:
            if full:
                await deps.store.save_full_sync(
                    mailbox, page_token, None, len(events), deps.options.lease_seconds
                )
            continue
        # nextSyncToken comes on the last page only.
        token = page.get("nextSyncToken")
        if full:
            await deps.store.finish_full_sync(mailbox, token, len(events))
        elif token:
            await deps.store.advance_cursor(mailbox, str(token), total)
        return total


async def _calendar_watch(calendar: CalendarClient, mailbox: Mailbox, deps: SyncDeps) -> None:
    """A watch channel to ingest's push route when a public ingest URL is configured."""
    base = deps.options.push_base_url
    margin = timedelta(seconds=deps.options.renew_margin_seconds)
    if not base or not subscription_due(mailbox, deps.clock(), margin):
        return
    secret = await deps.store.newest_secret(mailbox.tenant_id, "google-calendar")
    if secret is None:
        return
    channel_id = str(uuid.uuid4())
    address = f"{base.rstrip('/')}/v1/push/google-calendar/{mailbox.tenant_id}"
    answer = await calendar.watch(
        mailbox.address, channel_id, address, push_token(secret, mailbox.tenant_id, "google-calendar")
    )
    # The old channel simply expires; its notifications no longer match a stored channel id.
    await deps.store.save_subscription(mailbox, channel_id, millis_to_datetime(answer.get("expiration")))


# -- Microsoft Graph --------------------------------------------------------------------------


def _graph(mailbox: Mailbox, deps: SyncDeps) -> GraphClient:
    connection = mailbox.connection
    return deps.microsoft.graph(
        connection.connection_id,
        str(connection.option("directory_tenant_id")),
        str(connection.option("client_id")),
        connection.credentials,
    )


async def sync_microsoft(mailbox: Mailbox, deps: SyncDeps) -> int:
    """Mail (Inbox and Sent Items) or the calendar view of one mailbox, by delta queries."""
    graph = _graph(mailbox, deps)
    policy = fetch_policy(await deps.store.tenant_settings(mailbox.tenant_id))
    try:
        fetched = await _graph_delta(graph, mailbox, policy, deps)
    except ApiError as exc:
        if not graph_rules.delta_expired(exc.status, exc.reason) or mailbox.full_sync_since is not None:
            raise
        # The delta token expired (410 Gone, or 400 syncStateNotFound): list the window again.
        await deps.store.start_full_sync(
            mailbox, resync_since(mailbox, deps.clock(), deps.options.resync_days)
        )
        refreshed = await deps.store.mailbox(mailbox.mailbox_id)
        assert refreshed is not None
        fetched = await _graph_delta(graph, refreshed, policy, deps)
    await _graph_subscription(graph, mailbox, deps)
    return fetched


async def _graph_delta(graph: GraphClient, mailbox: Mailbox, policy: FetchPolicy, deps: SyncDeps) -> int:
    """Follow each collection's cursor (next link, then delta link) to its end, saving every page."""
    links = graph_rules.read_cursor(mailbox.cursor)
    since = mailbox.full_sync_since or deps.clock() - timedelta(days=deps.options.resync_days)
    total = 0
    for collection in graph_rules.collections(mailbox.provider):
        url = links.get(collection) or graph_rules.initial_url(
            graph.base_url, mailbox.provider, mailbox.address, collection, since, policy
        )
        while True:
            page = await graph.call("GET", url, mailbox.provider)
            items = [graph_rules.for_ingest(mailbox.provider, i, policy) for i in page.get("value") or ()]
            kept = [i for i in items if i is not None]
            await _post(deps, mailbox, "value", kept)
            total += len(kept)
            next_link = page.get("@odata.nextLink")
            links[collection] = str(next_link or page.get("@odata.deltaLink") or url)
            await deps.store.save_cursor_page(
                mailbox, graph_rules.write_cursor(links), len(kept), deps.options.lease_seconds
            )
            if not next_link:
                break
            url = str(next_link)
    if mailbox.full_sync_since is not None:
        await deps.store.finish_full_sync(mailbox, graph_rules.write_cursor(links), 0)
    return total


async def _graph_subscription(graph: GraphClient, mailbox: Mailbox, deps: SyncDeps) -> None:
    """Renew the subscription before it expires, or make one (none yet, or Graph removed it)."""
    base = deps.options.push_base_url
    now = deps.clock()
    if not base or not subscription_due(mailbox, now, timedelta(seconds=deps.options.renew_margin_seconds)):
        return
    if mailbox.subscription_id:
        try:
            answer = await graph.renew_subscription(
                mailbox.provider, mailbox.subscription_id, now + graph_rules.SUBSCRIPTION_LIFETIME
            )
        except ApiError as exc:
            if exc.status != 404:
                raise
            # Expired or deleted at Graph's end: a new one below.
        else:
            await deps.store.save_subscription(
                mailbox, mailbox.subscription_id, graph_time(answer.get("expirationDateTime"))
            )
            return
    secret = await deps.store.newest_secret(mailbox.tenant_id, "microsoft-graph")
    if secret is None:
        return
    request = graph_rules.subscription_request(
        mailbox.provider,
        mailbox.address,
        f"{base.rstrip('/')}/v1/push/microsoft-graph/{mailbox.tenant_id}",
        push_token(secret, mailbox.tenant_id, "microsoft-graph"),
        now,
    )
    answer = await graph.create_subscription(mailbox.provider, request)
    await deps.store.save_subscription(
        mailbox, str(answer["id"]), graph_time(answer.get("expirationDateTime"))
    )


def graph_time(raw: object) -> datetime | None:
    """Graph's ``2026-12-09T10:00:00.0000000Z`` (seven fraction digits) as aware UTC."""
    if not isinstance(raw, str):
        return None
    head, _, rest = raw.removesuffix("Z").partition(".")
    try:
        return datetime.fromisoformat(head + ("." + rest[:6] if rest else "")).replace(tzinfo=UTC)
    except ValueError:
        return None


SYNCERS: dict[str, Callable[[Mailbox, SyncDeps], Awaitable[int]]] = {
    "gmail": sync_gmail,
    "google-calendar": sync_google_calendar,
    "microsoft-mail": sync_microsoft,
    "microsoft-calendar": sync_microsoft,
}
