"""Ingest's SQL: tenant configuration (read-only, cached briefly), duplicate and meeting bookkeeping,
and the Zoom meeting state. Writes that other deliveries depend on (Zoom state, meeting keys) run
on the caller's connection, inside the transaction committed only after the broker acknowledged;
the duplicate bookkeeping of a delivery without shared state goes through :class:`SeenLedger`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import operator
import time
import uuid
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import orjson
from sqlalchemy import Row, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from libs.common.caching import LoadingCache
from libs.common.contracts.crm import ContactV1, RepV1
from libs.common.contracts.fields import INT8_MAX, check_line
from libs.common.contracts.tenant_settings import TenantSettings
from libs.common.db.references import HELD_REP_COLUMNS, held_contact, held_rep
from libs.common.db.webhook_state import webhook_state_lock
from libs.common.erasures import NO_ERASURES, ErasedIdentities, load_erased_hashes
from libs.common.tenant_settings_store import TenantSettingsCache
from libs.common.web import database_unavailable
from services.ingest.domain.meetings import (
    OBJECT_KEY_PREFIX,
    MeetingSighting,
    RecordedKey,
    choose_canonical_meetings,
)
from services.ingest.domain.privacy import PrivacyPolicy
from services.ingest.domain.tenant_config import domains_of, privacy_policy, webhook_config
from services.ingest.domain.webhook_types import TenantWebhookConfig


@dataclass(frozen=True, slots=True)
class TenantContext:
    """What ingest needs to know about a tenant to parse, filter and dedupe its activities."""

    tenant_id: str
    settings: TenantSettings
    webhook: TenantWebhookConfig
    privacy: PrivacyPolicy
    #: People erased from this tenant (keyed hashes): deliveries naming them are masked.
    erased: ErasedIdentities = NO_ERASURES
    #: The domains of the reps' addresses ``webhook`` was built from (no internal domains configured).
    rep_domains: frozenset[str] = frozenset()


class TenantDirectory:
    """A tenant's context: its settings (the shared :class:`TenantSettingsCache`) and, when it
    configures no internal domains, its reps' domains (cached ``ttl_seconds``).

    Both are read on every request and change rarely; a settings change applies as soon as the
    ``settings-changed`` event invalidates the settings cache. An invalid stored document raises
    :class:`InvalidTenantSettings` for that tenant only.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        ttl_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        settings: TenantSettingsCache | None = None,
        *,
        erasure_key: bytes = b"",
    ) -> None:
        self.engine = engine
        self.ttl = ttl_seconds
        self.settings = settings or TenantSettingsCache(engine, ttl_seconds, clock)
        self._rep_domains: LoadingCache[str, frozenset[str]] = LoadingCache(self._load_rep_domains, clock)
        #: The erasure list, re-read every ``ttl_seconds``: a new erasure applies within that bound.
        self.erasure_key = erasure_key
        self._erased: LoadingCache[str, ErasedIdentities] = LoadingCache(self._load_erased, clock)
        #: The context built from the settings object last seen: rebuilt only when it changes.
        self._built: dict[str, TenantContext] = {}

    async def context(self, tenant_id: str, *, fresh: bool = False) -> TenantContext | None:
        """The tenant's context, or None when the tenant does not exist (``fresh``: its settings
        read again, not from the cache)."""
        settings = await self.settings.get(tenant_id, fresh=fresh)
        if settings is None:
            return None
        rep_domains = (
            await self._rep_domains.get(tenant_id) if settings.internal_domains is None else frozenset()
        )
        erased = await self._erased.get(tenant_id)
        built = self._built.get(tenant_id)
        if (
            built is None
            or built.settings is not settings
            or built.erased is not erased
            or (settings.internal_domains is None and built.rep_domains != rep_domains)
        ):
            webhook = webhook_config(tenant_id, settings, rep_domains)
            built = TenantContext(
                tenant_id=tenant_id,
                settings=settings,
                webhook=webhook,
                privacy=privacy_policy(settings, webhook.internal_domains),
                erased=erased,
                rep_domains=rep_domains,
            )
            if len(self._built) >= 10_000:
                self._built.clear()
            self._built[tenant_id] = built
        return built

    def invalidate(self, tenant_id: str | None = None) -> None:
        self.settings.invalidate(tenant_id)
        self._rep_domains.invalidate(tenant_id)
        self._erased.invalidate(tenant_id)

    async def _load_erased(self, tenant_id: str) -> tuple[ErasedIdentities, float]:
        async with self.engine.connect() as conn:
            hashes = await load_erased_hashes(conn, tenant_id)
        return (ErasedIdentities(self.erasure_key, hashes) if hashes else NO_ERASURES), self.ttl

    async def _load_rep_domains(self, tenant_id: str) -> tuple[frozenset[str], float]:
        async with self.engine.connect() as conn:
            return await rep_domains_of(conn, tenant_id), self.ttl


async def rep_domains_of(conn: AsyncConnection, tenant_id: str) -> frozenset[str]:
    emails = await conn.execute(
        text(
            "SELECT DISTINCT lower(email) AS email FROM ref_reps, unnest(emails) AS email "
            "WHERE tenant_id = :t AND NOT deleted"
        ),
        {"t": tenant_id},
    )
    return domains_of(r.email for r in emails)


async def account_countries(
    engine: AsyncEngine, tenant_id: str, account_ids: Iterable[str]
) -> dict[str, str]:
    """The country held for each of ``account_ids`` that states one (alpha-2): where the
    national-format phones of a contact synced without a country of its own are read."""
    rows = await _account_rows(
        engine, tenant_id, account_ids, "country", " AND country IS NOT NULL AND NOT deleted"
    )
    return {r.account_id: r.country for r in rows}


async def _account_rows(
    engine: AsyncEngine, tenant_id: str, account_ids: Iterable[str], columns: str, also: str = ""
) -> list[Row[Any]]:
    """``account_id`` and ``columns`` of the held accounts among ``account_ids`` (with the
    further condition ``also``), in one query; none asked, no query."""
    ids = sorted(account_ids)
    if not ids:
        return []
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                f"SELECT account_id, {columns} FROM ref_accounts "
                f"WHERE tenant_id = :t AND account_id = ANY(:a){also}"
            ),
            {"t": tenant_id, "a": ids},
        )
        return list(rows)


async def crm_people(
    engine: AsyncEngine, tenant_id: str, keys: Iterable[str]
) -> dict[str, tuple[str | None, str | None]]:
    """The first email and phone held for each of ``keys`` (``owners/{rep id}``,
    ``contacts/{contact id}``) that holds one, not deleted: the people a vendor's engagement
    names without carrying them (``AdapterResult.people_to_look_up``)."""
    reps = sorted({k.removeprefix("owners/") for k in keys if k.startswith("owners/")})
    contacts = sorted({k.removeprefix("contacts/") for k in keys if k.startswith("contacts/")})
    if not (reps or contacts):
        return {}
    query = text(
        "SELECT 'owners/' || rep_id AS key, emails[1] AS email, phones[1] AS phone FROM ref_reps "
        "WHERE tenant_id = :t AND rep_id = ANY(:r) AND NOT deleted "
        "UNION ALL "
        "SELECT 'contacts/' || contact_id, emails[1], phones[1] FROM ref_contacts "
        "WHERE tenant_id = :t AND contact_id = ANY(:c) AND NOT deleted"
    )
    async with engine.connect() as conn:
        rows = await conn.execute(query, {"t": tenant_id, "r": reps, "c": contacts})
        return {r.key: (r.email, r.phone) for r in rows if r.email or r.phone}


async def held_account_countries(
    engine: AsyncEngine, tenant_id: str, account_ids: Iterable[str]
) -> dict[str, tuple[str | None, datetime]]:
    """The country (``None`` when it states none) and ``updated_at`` of each of ``account_ids``
    held: what a sync of the account compares its country with."""
    rows = await _account_rows(engine, tenant_id, account_ids, "country, updated_at")
    return {r.account_id: (r.country, r.updated_at) for r in rows}


#: How many contacts :func:`contacts_without_country` returns at most at once: an account's
#: country change re-reads its contacts a page at a time (a bounded query and memory per page).
CONTACTS_PAGE = 500

#: The live contacts stating no country of their own (the partial index
#: ``ref_contacts_without_country_by_account``, migration 0026, holds exactly these).
_WITHOUT_COUNTRY = "country IS NULL AND NOT deleted AND merged_into IS NULL"


async def accounts_with_contacts_without_country(
    engine: AsyncEngine, tenant_id: str, account_ids: Iterable[str]
) -> list[str]:
    """Those of ``account_ids`` (sorted) holding a live contact that states no country of its
    own: one index probe each (migration 0026), in one query."""
    ids = sorted(account_ids)
    if not ids:
        return []
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT a.id FROM unnest(CAST(:a AS text[])) WITH ORDINALITY AS a(id, n) "
                "CROSS JOIN LATERAL (SELECT 1 FROM ref_contacts WHERE tenant_id = :t AND account_id = a.id "
                f"AND {_WITHOUT_COUNTRY} LIMIT 1) c ORDER BY a.n"
            ),
            {"t": tenant_id, "a": ids},
        )
        return [r.id for r in rows]


async def contacts_without_country(
    engine: AsyncEngine,
    tenant_id: str,
    account_id: str,
    after: str | None = None,
    limit: int = CONTACTS_PAGE,
) -> list[ContactV1]:
    """The live contacts of ``account_id`` that state no country of their own, as held: their
    national-format phones were read in their account's country (or the tenant's region). At
    most ``limit``, in ``contact_id`` order after ``after`` (the last of the previous page): one
    range of the partial index ``ref_contacts_without_country_by_account`` (migration 0026)."""
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT contact_id, name, emails, phones, raw_phones, phone_extensions, unread_phones, "
                "account_id, updated_at FROM ref_contacts WHERE tenant_id = :t AND account_id = :a "
                f"AND {_WITHOUT_COUNTRY} AND contact_id > :after ORDER BY contact_id LIMIT :n"
            ),
            {"t": tenant_id, "a": account_id, "after": after or "", "n": limit},
        )
        return [held_contact(r) for r in rows]


async def contacts_keeping_unread_phones(
    engine: AsyncEngine, tenant_id: str, after: str | None = None, limit: int = CONTACTS_PAGE
) -> tuple[list[ContactV1], dict[str, str | None]]:
    """The tenant's live contacts keeping values no region read (``unread_phones``), as held, at
    most ``limit`` in ``contact_id`` order after ``after``; and their accounts' countries."""
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT c.contact_id, c.name, c.emails, c.phones, c.raw_phones, c.phone_extensions, "
                    "c.unread_phones, c.account_id, c.country, c.updated_at, a.country AS account_country "
                    "FROM ref_contacts c LEFT JOIN ref_accounts a ON a.tenant_id = c.tenant_id "
                    "AND a.account_id = c.account_id AND NOT a.deleted "
                    "WHERE c.tenant_id = :t AND NOT c.deleted AND c.merged_into IS NULL "
                    "AND cardinality(c.unread_phones) > 0 AND c.contact_id > :after "
                    "ORDER BY c.contact_id LIMIT :n"
                ),
                {"t": tenant_id, "after": after or "", "n": limit},
            )
        ).all()
    contacts = [held_contact(r) for r in rows]
    return contacts, {r.account_id: r.account_country for r in rows if r.account_id is not None}


async def reps_keeping_unread_phones(
    engine: AsyncEngine, tenant_id: str, after: str | None = None, limit: int = CONTACTS_PAGE
) -> list[RepV1]:
    """The tenant's live reps keeping values no region read (``unread_phones``), as held, at most
    ``limit`` in ``rep_id`` order after ``after``."""
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                f"SELECT {HELD_REP_COLUMNS} FROM ref_reps WHERE tenant_id = :t AND NOT deleted "
                "AND merged_into IS NULL AND cardinality(unread_phones) > 0 AND rep_id > :after "
                "ORDER BY rep_id LIMIT :n"
            ),
            {"t": tenant_id, "after": after or "", "n": limit},
        )
        return [held_rep(r) for r in rows]


log = logging.getLogger(__name__)

SeenPair = tuple[uuid.UUID, int]


@dataclass(frozen=True, slots=True)
class CallParent:
    """The final callback of a Twilio call between two numbers, kept for its ``<Dial>`` legs."""

    source: str
    #: The call's SID: the ``webhook_state`` row its legs fold into.
    object_key: str
    #: The parent leg, JSON (``TwilioLeg``).
    leg: str
    revision: int


#: A queued request: tenant, its pairs, the parent it keeps, and the future its caller awaits
#: (the pairs recorded before; whether the parent's legs are kept, or being folded, already).
_Lookup = tuple[str, Sequence[SeenPair], CallParent | None, asyncio.Future[tuple[set[SeenPair], bool]]]
_Record = tuple[str, Sequence[SeenPair], asyncio.Future[None]]


class _KeptConnection:
    """A single flusher sharing one statement among the requests in flight, on one connection
    of the pool kept for it in autocommit (checking one out per statement cost a pre-ping and a
    transaction: five round trips more); dropped when the database is unavailable.

    ``synchronous_commit`` False commits the connection's statements without waiting for the WAL
    to reach the disk (PostgreSQL's ``synchronous_commit = off``): for bookkeeping whose loss in
    a database crash costs nothing a redelivery does not already cost. Its commits are visible at
    once, as any; only their durability waits (``wal_writer_delay``, 200 ms by default).
    """

    def __init__(
        self,
        engine: AsyncEngine,
        flush: Callable[[], Coroutine[Any, Any, None]],
        *,
        synchronous_commit: bool = True,
    ) -> None:
        self.engine = engine
        self.synchronous_commit = synchronous_commit
        self._flush = flush
        self._flusher: asyncio.Task[None] | None = None
        self._conn: AsyncConnection | None = None

    async def close(self) -> None:
        if self._flusher is not None:
            await asyncio.gather(self._flusher, return_exceptions=True)
        await self.release()

    def start_flusher(self) -> None:
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())

    async def connection(self) -> AsyncConnection:
        """The kept connection, in autocommit: no BEGIN/COMMIT round trips around a statement."""
        if self._conn is None:
            conn = self.engine.connect()
            await conn.start()
            try:
                kept = await conn.execution_options(isolation_level="AUTOCOMMIT")
                if not self.synchronous_commit:
                    await kept.exec_driver_sql("SET synchronous_commit TO off")
            except BaseException:
                # Never back to the pool: the SET may have reached the server, and a pooled
                # connection without the WAL flush would weaken every later transaction on it.
                with contextlib.suppress(Exception):
                    await conn.invalidate()
                await conn.close()
                raise
            self._conn = kept
        return self._conn

    async def release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.invalidate()
            with contextlib.suppress(Exception):
                await conn.close()


class SeenLedger:
    """Duplicate bookkeeping for deliveries that share no state with other deliveries.

    Such a delivery (a call, an email: no Zoom state, no meeting keys) holds no transaction
    across the broker round trip: it asks which (activity, revision) pairs were acknowledged
    before, publishes the others, and records them once the broker acknowledged. Requests in
    flight together share one statement: a single flusher takes everything queued while its
    previous statement ran. Lookups and records go through two flushers, each keeping one
    connection of the pool for itself, in autocommit (checking one out per statement cost a
    pre-ping and a transaction: five round trips more), dropped when the database is
    unavailable. A callback waits for both, one before its publish and one after, and neither
    waits behind the other's statement. Records are committed without waiting for the WAL's
    flush to disk (``synchronous_commit = off`` on their connection): one lost in a database
    crash costs a redelivery a second publish, as a crash between the acknowledgement and the
    record already does (below). Lookups that keep a parent write it durably.

    No shared fate: values are checked before they are queued (:func:`check_seen_pairs`), and
    if the database still refuses a shared statement for a value, each request of that flush
    runs alone, so only the culprit gets the error, whatever its tenant.

    A lookup may also keep a Twilio call's parent for its ``<Dial>`` legs (:meth:`look_up_keeping`),
    in the same statement: that is the rendezvous with the legs' locked fold. The statement never
    waits for a fold: a parent whose row a fold holds (its advisory lock, taken by
    :func:`lock_webhook_state`) is not written, and the answer sends the caller to the locked fold.

    A record is committed before its delivery is answered, so a redelivery sent after that
    answer is found. Two concurrent deliveries of one new pair may both be published, and a
    crash between the acknowledgement and the record lets a redelivery publish the pair again.
    Attribution and metrics apply each (activity, revision) once, so either costs a message,
    never a double count.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._lookups: list[_Lookup] = []
        self._records: list[_Record] = []
        self._lookup_lane = _KeptConnection(engine, self._flush_lookups)
        self._record_lane = _KeptConnection(engine, self._flush_records, synchronous_commit=False)

    async def close(self) -> None:
        await asyncio.gather(self._lookup_lane.close(), self._record_lane.close())

    async def already_seen(self, tenant_id: str, pairs: Sequence[SeenPair]) -> set[SeenPair]:
        """The pairs recorded before (published and acknowledged by an earlier delivery).

        Raises ``ValueError`` for a value the shared statement could not hold, before queueing it.
        """
        if not pairs:
            return set()
        check_seen_pairs(tenant_id, pairs)
        seen, _ = await self._look_up(tenant_id, pairs, None)
        return seen

    async def look_up_keeping(
        self, tenant_id: str, pairs: Sequence[SeenPair], parent: CallParent
    ) -> tuple[set[SeenPair], bool]:
        """:meth:`already_seen`, keeping ``parent`` unless its legs are kept; whether they may be.

        True when a leg is stored, or a fold holds the call's row now (so the statement shared
        with other tenants' requests does not wait for it): the caller then folds the parent
        under the row lock, which waits for that fold and sees its leg. False: the parent is
        kept (or a newer callback of it is), and a leg folding later finds it.
        """
        check_seen_pairs(tenant_id, pairs)
        for value in (parent.source, parent.object_key):
            check_line(value)
        if isinstance(parent.revision, bool) or not 0 <= parent.revision <= INT8_MAX:
            raise ValueError(f"revision {parent.revision} is outside 0..{INT8_MAX}")
        return await self._look_up(tenant_id, pairs, parent)

    async def record(self, tenant_id: str, pairs: Sequence[SeenPair]) -> None:
        """Record pairs the broker acknowledged; recording one twice is a no-op."""
        if not pairs:
            return
        check_seen_pairs(tenant_id, pairs)
        await self._record(tenant_id, pairs)

    async def _look_up(
        self, tenant_id: str, pairs: Sequence[SeenPair], parent: CallParent | None = None
    ) -> tuple[set[SeenPair], bool]:
        future: asyncio.Future[tuple[set[SeenPair], bool]] = asyncio.get_running_loop().create_future()
        self._lookups.append((tenant_id, pairs, parent, future))
        self._lookup_lane.start_flusher()
        return await future

    async def _record(self, tenant_id: str, pairs: Sequence[SeenPair]) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._records.append((tenant_id, pairs, future))
        self._record_lane.start_flusher()
        await future

    async def _flush_lookups(self) -> None:
        await self._flush(self._lookup_lane, records=False)

    async def _flush_records(self) -> None:
        await self._flush(self._record_lane, records=True)

    async def _flush(self, lane: _KeptConnection, *, records: bool) -> None:
        """Send what is queued for ``lane`` (the records, or the lookups) until nothing is."""
        lookups: list[_Lookup] = []
        recorded: list[_Record] = []
        try:
            while self._records if records else self._lookups:
                if records:
                    recorded, self._records = self._records, []
                else:
                    lookups, self._lookups = self._lookups, []
                conn = await lane.connection()
                try:
                    found = await _record_and_look_up(
                        conn,
                        [(t, p) for t, pairs, _ in recorded for p in pairs],
                        [(t, p) for t, pairs, _, _ in lookups for p in pairs],
                        [(t, parent) for t, _, parent, _ in lookups if parent is not None],
                    )
                except DBAPIError as exc:
                    if database_unavailable(exc):
                        raise
                    # The statement is fixed, so the database refused a value: one request's.
                    # Each request then runs alone, and only the culprit gets the error.
                    await self._one_by_one(conn, lookups, recorded)
                else:
                    _answer(lookups, recorded, found)
                lookups, recorded = [], []
        except BaseException as exc:
            # Everyone waiting on this lane gets the error (a 503 for the client); its next flush
            # reconnects.
            await lane.release()
            futures: list[asyncio.Future[Any]]
            if records:
                recorded, self._records = recorded + self._records, []
                futures = [f for _, _, f in recorded]
            else:
                lookups, self._lookups = lookups + self._lookups, []
                futures = [f for *_, f in lookups]
            for future in futures:
                if not future.done():
                    future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise

    async def _one_by_one(
        self, conn: AsyncConnection, lookups: list[_Lookup], records: list[_Record]
    ) -> None:
        """Each request in its own statement (autocommit: a refused one leaves the connection usable)."""
        # Lookups first: like the shared statement, they read what was recorded before this flush.
        queued: list[tuple[bool, str, Sequence[SeenPair], CallParent | None, asyncio.Future[Any]]] = [
            *((False, t, pairs, parent, f) for t, pairs, parent, f in lookups),
            *((True, t, pairs, None, f) for t, pairs, f in records),
        ]
        for is_record, tenant_id, pairs, parent, future in queued:
            mine = [(tenant_id, p) for p in pairs]
            kept = [(tenant_id, parent)] if parent is not None else []
            try:
                found = await _record_and_look_up(
                    conn, mine if is_record else [], [] if is_record else mine, kept
                )
            except DBAPIError as exc:
                if database_unavailable(exc):
                    raise
                log.warning(
                    "duplicate ledger refused one request's values",
                    extra={"tenant_id": tenant_id, "error": type(exc.orig).__name__},
                )
                if not future.done():
                    future.set_exception(exc)
                continue
            if not future.done():
                future.set_result(None if is_record else _answer_lookup(tenant_id, pairs, parent, found))


def _answer(lookups: Sequence[_Lookup], records: Sequence[_Record], found: _Found) -> None:
    for _, _, done in records:
        if not done.done():
            done.set_result(None)
    for tenant_id, pairs, parent, seen in lookups:
        if not seen.done():
            seen.set_result(_answer_lookup(tenant_id, pairs, parent, found))


def _answer_lookup(
    tenant_id: str, pairs: Sequence[SeenPair], parent: CallParent | None, found: _Found
) -> tuple[set[SeenPair], bool]:
    seen_pairs, parents = found
    # A parent the statement did not return was not written: a fold holds its row.
    legs = parent is not None and parents.get((tenant_id, parent.source, parent.object_key), True)
    return {p for p in pairs if (tenant_id, p) in seen_pairs}, legs


def check_seen_pairs(tenant_id: str, pairs: Sequence[SeenPair]) -> None:
    """Refuse, for this caller alone, what the shared statement could not hold.

    The contracts bound revisions already; this keeps one request's value from ever reaching a
    statement that other requests (of any tenant) share.
    """
    check_line(tenant_id)
    for _, revision in pairs:
        if isinstance(revision, bool) or not 0 <= revision <= INT8_MAX:
            raise ValueError(f"revision {revision} is outside 0..{INT8_MAX}")


_RECORDED = """
WITH recorded AS (
    INSERT INTO ingest_seen_events (tenant_id, activity_id, revision)
    SELECT * FROM unnest($1::text[], $2::uuid[], $3::bigint[])
    ON CONFLICT DO NOTHING
)"""
_LOOKED_UP = """
FROM unnest($4::text[], $5::uuid[], $6::bigint[]) AS l(t, id, rev)
WHERE EXISTS (
    SELECT 1 FROM ingest_seen_events e
    WHERE e.tenant_id = l.t AND e.activity_id = l.id AND e.revision = l.rev
)"""
_RECORD_AND_LOOK_UP = f"{_RECORDED}\nSELECT l.t, l.id, l.rev{_LOOKED_UP}"

#: Whether a stored call state holds any ``<Dial>`` leg (``TwilioCallState.legs`` not empty).
_HAS_LEGS = "COALESCE(jsonb_typeof({0} -> 'legs') = 'object' AND {0} -> 'legs' <> '{{}}'::jsonb, false)"

#: As ``_RECORD_AND_LOOK_UP``, also keeping each call's parent unless a newer one is kept or its
#: legs are, and saying whether they are. A parent whose row a fold holds is skipped (not
#: returned), never waited for: the statement is shared by every request in flight.
_RECORD_LOOK_UP_AND_KEEP = f"""{_RECORDED}, free AS MATERIALIZED (
    SELECT t, s, k, p FROM unnest($7::text[], $8::text[], $9::text[], $10::text[]) AS n(t, s, k, p)
    WHERE pg_try_advisory_xact_lock({webhook_state_lock("t", "s", "k")})
), kept AS (
    INSERT INTO webhook_state AS w (tenant_id, source, object_key, state)
    SELECT t, s, k, jsonb_build_object('parent', CAST(p AS jsonb)) FROM free
    ON CONFLICT (tenant_id, source, object_key) DO UPDATE SET
        state = CASE
            WHEN {_HAS_LEGS.format("w.state")} THEN w.state
            WHEN (w.state -> 'parent' ->> 'revision')::bigint
                >= (EXCLUDED.state -> 'parent' ->> 'revision')::bigint THEN w.state
            ELSE COALESCE(NULLIF(w.state, 'null'::jsonb), '{{}}'::jsonb) || EXCLUDED.state
        END,
        updated_at = now()
    RETURNING w.tenant_id, w.source, w.object_key, {_HAS_LEGS.format("w.state")} AS legs
)
SELECT l.t, l.id, l.rev, NULL::text, NULL::text, NULL::boolean{_LOOKED_UP}
UNION ALL
SELECT tenant_id, NULL::uuid, NULL::bigint, source, object_key, legs FROM kept
"""

_ParentKey = tuple[str, str, str]
#: The pairs recorded before, and each parent written: whether its legs are kept.
_Found = tuple[set[tuple[str, SeenPair]], dict[_ParentKey, bool]]


async def _record_and_look_up(
    conn: AsyncConnection,
    records: Sequence[tuple[str, SeenPair]],
    lookups: Sequence[tuple[str, SeenPair]],
    parents: Sequence[tuple[str, CallParent]] = (),
) -> _Found:
    """Insert ``records``, keep ``parents`` and return which ``lookups`` were recorded before,
    in one statement.

    The lookup reads the snapshot from before the insert: a pair recorded and looked up in the
    same flush belongs to two concurrent deliveries, and both publish it (see :class:`SeenLedger`).
    """
    params: tuple[list[Any], ...] = (
        [t for t, _ in records],
        [p[0] for _, p in records],
        [p[1] for _, p in records],
        [t for t, _ in lookups],
        [p[0] for _, p in lookups],
        [p[1] for _, p in lookups],
    )
    if not parents:
        rows = await _rows(conn, _RECORD_AND_LOOK_UP, params)
        found = cast("Iterable[tuple[str, uuid.UUID, int]]", rows)
        return {(tenant_id, (activity_id, int(revision))) for tenant_id, activity_id, revision in found}, {}
    # One row per call: ON CONFLICT cannot update a row twice in one statement; the newest wins.
    newest: dict[_ParentKey, CallParent] = {}
    for tenant_id, parent in parents:
        key = (tenant_id, parent.source, parent.object_key)
        if key not in newest or parent.revision > newest[key].revision:
            newest[key] = parent
    keys = list(newest)
    params += (
        [k[0] for k in keys],
        [k[1] for k in keys],
        [k[2] for k in keys],
        [p.leg for p in newest.values()],
    )
    seen: set[tuple[str, SeenPair]] = set()
    legs: dict[_ParentKey, bool] = {}
    for t, activity_id, revision, source, object_key, has_legs in cast(
        "Iterable[tuple[str, uuid.UUID | None, int | None, str | None, str | None, bool | None]]",
        await _rows(conn, _RECORD_LOOK_UP_AND_KEEP, params),
    ):
        if object_key is None:
            seen.add((t, (cast("uuid.UUID", activity_id), int(cast("int", revision)))))
        else:
            legs[(t, cast("str", source), object_key)] = bool(has_legs)
    return seen, legs


async def _rows(
    conn: AsyncConnection, statement: str, params: tuple[list[Any], ...]
) -> Iterable[Sequence[Any]]:
    """The rows of ``conn.exec_driver_sql(statement, params)``, sent by the driver itself: the
    shared statement of the callbacks in flight, where SQLAlchemy's execution (a greenlet
    switch, a cursor and an execution context per statement) cost more than asyncpg's own.

    A statement that fails is sent again through SQLAlchemy, which raises what it always raised
    (its wrapped and classified error, the connection invalidated when it is gone) or answers:
    each of the ledger's statements is one autocommit statement that writes nothing when it
    fails, so sending it again changes nothing but the error's type.
    """
    sync = conn.sync_connection
    if sync is not None and not sync.closed and not sync.invalidated:
        driver = sync.connection.driver_connection
        if driver is not None:
            try:
                return cast("Iterable[Sequence[Any]]", await driver.fetch(statement, *params))
            except Exception as exc:
                log.debug(
                    "duplicate ledger statement sent again through SQLAlchemy", extra={"error": repr(exc)}
                )
    return cast("Iterable[Sequence[Any]]", await conn.exec_driver_sql(statement, params))


_RECORD_SEEN = text(
    "WITH s AS (SELECT id, rev FROM unnest(CAST(:ids AS uuid[]), CAST(:revs AS bigint[])) AS s(id, rev)), "
    "recorded AS (INSERT INTO ingest_seen_events (tenant_id, activity_id, revision) "
    "SELECT :t, id, rev FROM s ON CONFLICT DO NOTHING RETURNING activity_id, revision) "
    "SELECT id, rev FROM s EXCEPT SELECT activity_id, revision FROM recorded"
)


async def record_seen(
    conn: AsyncConnection, tenant_id: str, seen: Sequence[tuple[uuid.UUID, int]]
) -> set[tuple[uuid.UUID, int]]:
    """Record (activity id, revision) pairs in one statement; returns the pairs recorded before.

    The pairs already recorded come back, not the new ones: a request of new activities (the
    usual one) reads no rows back, where returning the inserted pairs decoded a row per event.
    """
    if not seen:
        return set()
    rows = await conn.execute(
        _RECORD_SEEN, {"t": tenant_id, "ids": [s[0] for s in seen], "revs": [s[1] for s in seen]}
    )
    return {(activity_id, int(revision)) for activity_id, revision in rows}


_UUID_INT = operator.attrgetter("int")


async def canonical_meetings(
    conn: AsyncConnection, tenant_id: str, sightings: Sequence[MeetingSighting]
) -> dict[uuid.UUID, uuid.UUID]:
    """Map each sighting's activity id to its canonical meeting (``choose_canonical_meetings``).

    One read and one set-based write per request; keys not yet known are recorded for the
    canonical activity so that later sightings by another key still find it.
    """
    wanted = sorted({k for s in sightings for k in s.keys})
    if not wanted:
        return {}
    # Two deliveries of one meeting at once (two mailboxes' syncs, two sources' webhooks) would
    # each read no key and each publish its own meeting: the second waits here, on a lock per
    # key held until the first's transaction ends (after the broker's ack), and then reads its
    # keys. Taken in one order, so two deliveries sharing several keys cannot deadlock.
    await conn.execute(
        text(
            "SELECT count(pg_advisory_xact_lock(h)) FROM (SELECT DISTINCT "
            "hashtextextended(:t || '/' || k, 0) AS h FROM unnest(CAST(:keys AS varchar[])) AS k ORDER BY h) AS o"
        ),
        {"t": tenant_id, "keys": wanted},
    )
    rows = await conn.execute(
        text(
            "SELECT meeting_key, activity_id, source, sighting_id FROM ingest_meeting_keys "
            "WHERE tenant_id = :t AND (meeting_key = ANY(CAST(:keys AS varchar[])) "
            "OR sighting_id = ANY(CAST(:owns AS uuid[]))) ORDER BY created_at, meeting_key"
        ),
        # Sorted by the integer, as UUIDs sort, without a Python comparison per pair of them.
        {"t": tenant_id, "keys": wanted, "owns": sorted({s.activity_id for s in sightings}, key=_UUID_INT)},
    )
    recorded = [(r.meeting_key, RecordedKey(r.activity_id, r.source, r.sighting_id)) for r in rows]
    canonical, new_keys = choose_canonical_meetings(sightings, recorded)
    if new_keys:
        await conn.execute(
            text(
                "INSERT INTO ingest_meeting_keys (tenant_id, meeting_key, activity_id, source, sighting_id) "
                "SELECT :t, k, id, s, own FROM unnest(CAST(:keys AS varchar[]), CAST(:ids AS uuid[]), "
                "CAST(:sources AS varchar[]), CAST(:owns AS uuid[])) AS n(k, id, s, own) ON CONFLICT DO NOTHING"
            ),
            {
                "t": tenant_id,
                "keys": list(new_keys),
                "ids": [v.activity_id for v in new_keys.values()],
                "sources": [v.source for v in new_keys.values()],
                "owns": [v.sighting_id for v in new_keys.values()],
            },
        )
    return canonical


async def meetings_published_as(
    engine: AsyncEngine, tenant_id: str, own_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, uuid.UUID]:
    """The canonical meeting each of ``own_ids`` was published as, where it is a meeting that
    joined another sighting's (another source's, or another mailbox's copy of one UID)."""
    if not own_ids:
        return {}
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT sighting_id, activity_id FROM ingest_meeting_keys "
                "WHERE tenant_id = :t AND meeting_key = ANY(CAST(:keys AS text[]))"
            ),
            {"t": tenant_id, "keys": sorted({f"{OBJECT_KEY_PREFIX}{own}" for own in own_ids})},
        )
        return {r.sighting_id: r.activity_id for r in rows if r.sighting_id != r.activity_id}


async def highest_revisions_published(
    engine: AsyncEngine, tenant_id: str, activity_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, int]:
    """The highest revision of each activity the seen ledger holds (published and acknowledged;
    absent when none is, or when the ledger's retention pruned them)."""
    return await _revisions_of(
        engine,
        "SELECT activity_id, max(revision) AS revision FROM ingest_seen_events "
        "WHERE tenant_id = :t AND activity_id = ANY(CAST(:ids AS uuid[])) GROUP BY activity_id",
        tenant_id,
        activity_ids,
    )


async def _revisions_of(
    engine: AsyncEngine, query: str, tenant_id: str, activity_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, int]:
    """``query``'s ``(activity_id, revision)`` rows for the tenant's ``activity_ids`` (bound as
    ``:t`` and ``:ids``), by activity."""
    if not activity_ids:
        return {}
    async with engine.connect() as conn:
        rows = await conn.execute(text(query), {"t": tenant_id, "ids": sorted(set(activity_ids))})
        return {r.activity_id: int(r.revision) for r in rows}


async def record_undated_deletions(
    engine: AsyncEngine, tenant_id: str, read: Mapping[tuple[uuid.UUID, str], datetime]
) -> None:
    """When each object was last read deleted by a source that dates no deletion (Graph's
    ``@removed``, Google's stripped event), under its own activity id and the calendar it was read
    in (the mailbox a connector named, ``''`` when none): a revision of it read before then and
    delivered after is an older state (``deletions_read_after``)."""
    if not read:
        return
    keys = sorted(read)
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO ingest_undated_deletions (tenant_id, activity_id, calendar, read_at) "
                "SELECT :t, d.id, d.calendar, d.read_at FROM unnest(CAST(:ids AS uuid[]), "
                "CAST(:calendars AS text[]), CAST(:at AS timestamptz[])) AS d(id, calendar, read_at) "
                "ON CONFLICT (tenant_id, activity_id, calendar) DO UPDATE "
                "SET read_at = greatest(ingest_undated_deletions.read_at, EXCLUDED.read_at)"
            ),
            {
                "t": tenant_id,
                "ids": [i for i, _ in keys],
                "calendars": [c for _, c in keys],
                "at": [read[k] for k in keys],
            },
        )


async def deletions_read_after(
    engine: AsyncEngine, tenant_id: str, activity_ids: Sequence[uuid.UUID], read_at: datetime
) -> dict[uuid.UUID, set[str]]:
    """Those of ``activity_ids`` (own ids) that a deletion undated by its source was read for
    after ``read_at`` (``record_undated_deletions``), with the calendars it was read in."""
    if not activity_ids:
        return {}
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT activity_id, calendar FROM ingest_undated_deletions WHERE tenant_id = :t "
                "AND activity_id = ANY(CAST(:ids AS uuid[])) AND read_at > :at"
            ),
            {"t": tenant_id, "ids": sorted(set(activity_ids)), "at": read_at},
        )
        found: dict[uuid.UUID, set[str]] = {}
        for row in rows:
            found.setdefault(row.activity_id, set()).add(row.calendar)
        return found


async def record_time_blocks(engine: AsyncEngine, tenant_id: str, revisions: Mapping[uuid.UUID, int]) -> None:
    """The revision at which each object (its own activity id) was read as no meeting (a hold
    only colleagues attend, time away), the highest kept: a meeting older than it, delivered
    after it, is an older state (``time_block_revisions``)."""
    if not revisions:
        return
    ids = sorted(revisions)
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO ingest_time_blocks (tenant_id, activity_id, revision) "
                "SELECT :t, b.id, b.revision FROM unnest(CAST(:ids AS uuid[]), CAST(:revs AS bigint[])) "
                "AS b(id, revision) "
                "ON CONFLICT (tenant_id, activity_id) DO UPDATE "
                "SET revision = greatest(ingest_time_blocks.revision, EXCLUDED.revision), read_at = now()"
            ),
            {"t": tenant_id, "ids": ids, "revs": [revisions[i] for i in ids]},
        )


async def time_block_revisions(
    engine: AsyncEngine, tenant_id: str, activity_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, int]:
    """The revision at which each of ``activity_ids`` (own ids) was last read as no meeting
    (``record_time_blocks``); absent for most."""
    return await _revisions_of(
        engine,
        "SELECT activity_id, revision FROM ingest_time_blocks WHERE tenant_id = :t "
        "AND activity_id = ANY(CAST(:ids AS uuid[]))",
        tenant_id,
        activity_ids,
    )


async def lock_webhook_state(
    conn: AsyncConnection, tenant_id: str, source: str, object_key: str
) -> dict[str, Any] | None:
    """The stored state, row-locked until the transaction ends (None when first seen).

    The fold also holds the row's advisory lock until then: the duplicate ledger, keeping a
    Twilio call's parent in a statement other requests share, skips a row held so rather than
    wait for the fold (:meth:`SeenLedger.look_up_keeping`).
    """
    # Insert a placeholder first so that two first deliveries of one meeting serialise on the row.
    await conn.execute(
        text(
            f"WITH held AS (SELECT count(pg_advisory_xact_lock({webhook_state_lock(':t', ':s', ':k')})) AS n) "
            "INSERT INTO webhook_state (tenant_id, source, object_key, state) "
            "SELECT :t, :s, :k, 'null'::jsonb FROM held ON CONFLICT DO NOTHING"
        ),
        {"t": tenant_id, "s": source, "k": object_key},
    )
    row = (
        await conn.execute(
            text(
                "SELECT state::text AS state FROM webhook_state "
                "WHERE tenant_id = :t AND source = :s AND object_key = :k FOR UPDATE"
            ),
            {"t": tenant_id, "s": source, "k": object_key},
        )
    ).one()
    state: dict[str, Any] | None = orjson.loads(row.state)
    return state


async def save_webhook_state(
    conn: AsyncConnection, tenant_id: str, source: str, object_key: str, state: str
) -> None:
    await conn.execute(
        text(
            "UPDATE webhook_state SET state = CAST(:state AS jsonb), updated_at = now() "
            "WHERE tenant_id = :t AND source = :s AND object_key = :k"
        ),
        {"t": tenant_id, "s": source, "k": object_key, "state": state},
    )
