"""Set-based writes of contributions and rollup deltas: a few statements per batch, whatever its size."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from operator import attrgetter
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from libs.common.db.arrays import text_array_literal
from libs.common.db.statements import insert_unless_duplicate
from services.metrics.domain.definitions import Counter, buyer_answered
from services.metrics.domain.engagement import DealEngagementChange, Engagement

#: SQLSTATE of a lock not granted within ``lock_timeout``.
LOCK_NOT_AVAILABLE = "55P03"

#: Rollup columns: every counter of the domain but deals won (read from CRM deals), plus an activity
#: count; ``score`` is the weighted sum of the counters under the tenant's scoring model, kept
#: in step with them so periods aggregate by plain sums.
COUNTER_COLUMNS: tuple[str, ...] = ("activities", *(c.value for c in Counter if c is not Counter.DEALS_WON))
COLUMNS: tuple[str, ...] = (*COUNTER_COLUMNS, "score")
_TYPES = {"score": "float8"}


@dataclass(frozen=True, slots=True)
class StoredContribution:
    version: int
    rep_id: str | None
    team_id: str | None
    deal_id: str | None
    account_id: str | None
    status: str
    day: date | None
    counts: dict[str, float]
    #: The activity revision whose facts are counted (0 for rows written before it was kept).
    revision: int = 0
    #: What it gives the deals it engages (None when it engages none).
    engagement: Engagement | None = None

    @property
    def order(self) -> tuple[int, int]:
        """What a newer contribution must exceed: a higher revision, else a higher version."""
        return (self.revision, self.version)


#: What ``load_contributions`` reads of a stored contribution besides its id and counters.
_STORED_FIELDS = (
    "version",
    "revision",
    "rep_id",
    "team_id",
    "deal_id",
    "account_id",
    "status",
    "day",
    "occurred_at",
    "contact_ids",
    "engaged_deal_ids",
)


_LOAD_CONTRIBUTIONS = text(
    f"SELECT {', '.join(['activity_id', *_STORED_FIELDS, *COLUMNS])} "
    "FROM unnest(CAST(:ids AS uuid[])) AS i(id) CROSS JOIN LATERAL ("
    "SELECT * FROM metric_contributions WHERE tenant_id = :t AND activity_id = i.id OFFSET 0) c "
    "FOR UPDATE OF c"
)
_UUID_INT = attrgetter("int")


async def load_contributions(
    conn: AsyncConnection, tenant_id: str, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, StoredContribution]:
    """The contribution currently applied for each activity, locked until commit.

    Each id is looked up on its own (``LATERAL ... OFFSET 0``, the primary key), in id order so
    that concurrent batches lock in one order, as ``current_attributions`` reads attributions:
    with ``activity_id = ANY(...)`` and a table analysed while empty (a tenant's first backfill)
    the planner read every contribution of the tenant through ``metric_contributions_time`` and
    filtered them (25 against 4 ms for 1,000 ids at 50,000 contributions)."""
    result = await conn.execute(
        _LOAD_CONTRIBUTIONS,
        # A UUID sorts as PostgreSQL sorts it (bytes, big-endian): by its integer, without
        # ``UUID.__lt__`` (a Python call per comparison).
        {"t": tenant_id, "ids": sorted(ids, key=_UUID_INT)},
    )
    out = {}
    for row in result.mappings():
        out[row["activity_id"]] = StoredContribution(
            row["version"],
            row["rep_id"],
            row["team_id"],
            row["deal_id"],
            row["account_id"],
            row["status"],
            row["day"],
            {c: row[c] for c in COLUMNS},
            row["revision"],
            engagement_of(
                row["engaged_deal_ids"],
                row["occurred_at"],
                buyer_answered(
                    row["buyer_replies"],
                    row["conversations"],
                    row["meetings_held"],
                    row["talk_seconds"],
                    row["dials"],
                ),
                row["contact_ids"],
            ),
        )
    return out


def engagement_of(
    deal_ids: Sequence[str], occurred_at: datetime, answered: bool, contact_ids: Sequence[str]
) -> Engagement | None:
    """A contribution row's engagement (None when it engages no deal); ``answered``: it is a buyer
    answer (``definitions.buyer_answered``)."""
    if not deal_ids:
        return None
    return Engagement(tuple(deal_ids), occurred_at, answered, frozenset(contact_ids))


_RECORD_ENGAGEMENT_CHANGES = text(
    "INSERT INTO metric_deal_engagement_changes (tenant_id, deal_id, recompute, last_activity_at, "
    "last_buyer_reply_at, contact_ids) SELECT t, d, r, a, b, CAST(c AS text[]) FROM unnest("
    "CAST(:t AS varchar[]), CAST(:d AS varchar[]), CAST(:r AS boolean[]), CAST(:a AS timestamptz[]), "
    "CAST(:b AS timestamptz[]), CAST(:c AS varchar[])) AS u(t, d, r, a, b, c)"
)


async def record_engagement_changes(
    conn: AsyncConnection, changes: Sequence[tuple[str, DealEngagementChange]]
) -> None:
    """Append a batch's deal engagement changes, each with its tenant, for the refresher
    (``read_models.catch_up_engagement``): one statement for every tenant of the batch."""
    if not changes:
        return
    await conn.execute(
        _RECORD_ENGAGEMENT_CHANGES,
        {
            "t": [tenant_id for tenant_id, _ in changes],
            "d": [c.deal_id for _, c in changes],
            "r": [c.recompute for _, c in changes],
            "a": [c.last_activity_at for _, c in changes],
            "b": [c.last_buyer_reply_at for _, c in changes],
            "c": [text_array_literal(c.contact_ids) for _, c in changes],
        },
    )


#: Text-array columns of a contribution: each row's ids travel as one array literal
#: (unnest cannot take an array of arrays of different lengths), parsed by PostgreSQL's array input.
_ID_ARRAYS = ("contact_ids", "engaged_deal_ids")
_FIXED = (
    "tenant_id",
    "activity_id",
    "version",
    "revision",
    "rep_id",
    "team_id",
    "deal_id",
    "account_id",
    "status",
    "occurred_at",
    "day",
    "kind",
)
#: Strings travel as ``varchar[]`` (``libs/common/db/array_codecs.py`` encodes them in a few C calls,
#: where asyncpg's ``text[]`` asked two ``isinstance`` checks per element); PostgreSQL reads a
#: ``varchar`` into a ``text`` column as it is, and an id array's literal through the array input.
_CONTRIBUTION_TYPES = {
    "tenant_id": "varchar",
    "activity_id": "uuid",
    "version": "int",
    "revision": "bigint",
    "rep_id": "varchar",
    "team_id": "varchar",
    "deal_id": "varchar",
    "account_id": "varchar",
    "status": "varchar",
    "occurred_at": "timestamptz",
    "day": "date",
    "kind": "varchar",
    "contact_ids": "varchar",
    "engaged_deal_ids": "varchar",
    **_TYPES,
}


def _upsert_contributions_sql(*, upsert: bool = True) -> str:
    columns = [*_FIXED, *_ID_ARRAYS, *COLUMNS]
    casts = ", ".join(f"CAST(:{c} AS {_CONTRIBUTION_TYPES.get(c, 'bigint')}[])" for c in columns)
    selects = ", ".join(f"CAST(u.{c} AS text[])" if c in _ID_ARRAYS else f"u.{c}" for c in columns)
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in columns[2:])
    insert = (
        f"INSERT INTO metric_contributions ({', '.join(columns)}) SELECT {selects} "
        f"FROM unnest({casts}) AS u({', '.join(columns)})"
    )
    if not upsert:
        return insert
    return (
        f"{insert} ON CONFLICT (tenant_id, activity_id) DO UPDATE SET {updates} "
        # The same order as plan_batch: a lower revision never replaces a higher one's facts.
        "WHERE (metric_contributions.revision, metric_contributions.version) "
        "< (EXCLUDED.revision, EXCLUDED.version)"
    )


_UPSERT_CONTRIBUTIONS = text(_upsert_contributions_sql())
_INSERT_CONTRIBUTIONS = text(_upsert_contributions_sql(upsert=False))
#: The fields of a contribution row, in the order ``plan_batch`` builds it: a row is a tuple of
#: one value per field (a tuple, where a dict per row cost a tenth of the consumer's time to build
#: and take apart), the id arrays as sequences of strings.
CONTRIBUTION_FIELDS: tuple[str, ...] = (*_FIXED, *_ID_ARRAYS, *COLUMNS)
ContributionRow = tuple[Any, ...]


def _contribution_params(rows: Sequence[ContributionRow]) -> dict[str, Any]:
    params: dict[str, Any] = dict(zip(CONTRIBUTION_FIELDS, map(list, zip(*rows, strict=True)), strict=True))
    for array in _ID_ARRAYS:
        params[array] = list(map(text_array_literal, params[array]))
    return params


async def upsert_contributions(
    conn: AsyncConnection, rows: Sequence[ContributionRow], new: Sequence[ContributionRow] = ()
) -> None:
    """Insert or replace the contribution rows (``CONTRIBUTION_FIELDS``) in one statement.

    ``new`` holds rows of activities ``load_contributions`` found no contribution for: they are
    written by a plain insert, without the upsert's speculative insertion (one WAL record a row
    fewer, its confirmation, and about 2 us of PostgreSQL's CPU; ``performance.md``, sixteenth
    round). Another transaction may have inserted one meanwhile (two versions of an activity on
    two instances: the topic is keyed by rep); the insert then fails on the primary key, is rolled
    back to its savepoint, and the rows go through the upsert, as every row did before."""
    if new and not await insert_unless_duplicate(conn, _INSERT_CONTRIBUTIONS, _contribution_params(new)):
        rows = [*new, *rows]
    if rows:
        await conn.execute(_UPSERT_CONTRIBUTIONS, _contribution_params(rows))


RollupCell = tuple[str, str, str, str, date]  # tenant, level, entity, granularity, period_start


def _apply_rollup_deltas_sql() -> str:
    keys = ["tenant_id", "level", "entity_id", "granularity", "period_start"]
    types = {
        "tenant_id": "varchar",
        "level": "varchar",
        "entity_id": "varchar",
        "granularity": "varchar",
        "period_start": "date",
        **_TYPES,
    }
    casts = ", ".join(f"CAST(:{c} AS {types.get(c, 'bigint')}[])" for c in [*keys, *COLUMNS])
    updates = ", ".join(f"{c} = metric_rollups.{c} + EXCLUDED.{c}" for c in COLUMNS)
    return (
        f"INSERT INTO metric_rollups ({', '.join([*keys, *COLUMNS])}) SELECT * FROM unnest({casts}) "
        f"ON CONFLICT (tenant_id, level, granularity, period_start, entity_id) DO UPDATE SET {updates}"
    )


_APPLY_ROLLUP_DELTAS = text(_apply_rollup_deltas_sql())


async def apply_rollup_deltas(conn: AsyncConnection, deltas: Mapping[RollupCell, Sequence[float]]) -> int:
    """Add each cell's deltas (one per ``COLUMNS`` entry, in that order; negative for retractions)
    in one statement; sorted to avoid deadlocks."""
    # Primary-key order: neighbouring rows share index pages, and one order for all avoids deadlocks.
    cells = sorted((k for k, v in deltas.items() if any(v)), key=lambda c: (c[0], c[1], c[3], c[4], c[2]))
    if not cells:
        return 0
    params: dict[str, list[Any]] = {
        "tenant_id": [c[0] for c in cells],
        "level": [c[1] for c in cells],
        "entity_id": [c[2] for c in cells],
        "granularity": [c[3] for c in cells],
        "period_start": [c[4] for c in cells],
    }
    for column, values in zip(COLUMNS, zip(*(deltas[c] for c in cells), strict=True), strict=True):
        params[column] = list(values)
    await conn.execute(_APPLY_ROLLUP_DELTAS, params)
    return len(cells)


def _lock_key(tenant_id: str) -> str:
    return f"spm-rollups:{tenant_id}"


_TRY_SHARE_ROLLUPS = text(
    "SELECT u.t FROM unnest(CAST(:t AS text[]), CAST(:k AS text[])) WITH ORDINALITY AS u(t, k, n) "
    "WHERE pg_try_advisory_xact_lock_shared(hashtextextended(u.k, 0)) ORDER BY u.n"
)


async def try_share_rollups(conn: AsyncConnection, tenant_ids: Sequence[str]) -> set[str]:
    """The tenants whose rollup lock this transaction now shares, until it ends; never waits.

    A tenant's rollups are busy while a rebuild under a new calendar holds its lock exclusively
    (``rebuild_rollups``), or the drainer applying its set-aside versions does, or either queues
    for it: that tenant is left out, and the caller sets its versions aside rather than wait (one
    tenant's rebuild never delays the others' versions of a batch). A batch holding the lock is
    waited for by a rebuild, which is then seen by the next batches, so every contribution lands
    in rollups built under one calendar."""
    tenants = sorted(tenant_ids)
    if not tenants:
        return set()
    rows = await conn.execute(_TRY_SHARE_ROLLUPS, {"t": tenants, "k": [_lock_key(t) for t in tenants]})
    return set(rows.scalars())


async def lock_rollups(conn: AsyncConnection, tenant_id: str, wait_ms: int) -> bool:
    """Hold the tenant's rollup lock exclusively until the transaction ends, waiting up to
    ``wait_ms`` for it; False, holding nothing, when it is still held then (a rebuild running).

    While this waits in the lock's queue, batches do not take it (``try_share_rollups``): the wait
    is for the batches in flight, never for a stream of new ones."""
    before = await conn.scalar(text("SELECT current_setting('lock_timeout')"))
    try:
        # A savepoint: a lock not granted in time is an error, which must not end the transaction.
        async with conn.begin_nested():
            await conn.execute(text("SELECT set_config('lock_timeout', :ms, true)"), {"ms": f"{wait_ms}ms"})
            await conn.execute(
                text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"), {"k": _lock_key(tenant_id)}
            )
            await conn.execute(text("SELECT set_config('lock_timeout', :before, true)"), {"before": before})
    except DBAPIError as exc:
        if getattr(exc.orig, "sqlstate", None) != LOCK_NOT_AVAILABLE:
            raise
        return False
    return True


async def rollup_calendars(
    conn: AsyncConnection, wanted: Mapping[str, tuple[str, int]]
) -> dict[str, tuple[str, int]]:
    """The calendar (time zone, fiscal year start) each tenant's rollups are built in.

    Read after the tenants' rollup locks are held (``try_share_rollups`` or ``lock_rollups``, in an
    earlier statement: this one's snapshot is taken after they were granted), so no rebuild moves
    it until the caller commits. A tenant seen for the first time is recorded with ``wanted``
    (its current settings).
    """
    tenants = sorted(wanted)
    found = await _calendars(conn, tenants)
    missing = [t for t in tenants if t not in found]
    if missing:
        await conn.execute(
            text(
                "INSERT INTO metric_rollup_calendars (tenant_id, time_zone, fiscal_year_start_month) "
                "SELECT * FROM unnest(CAST(:t AS text[]), CAST(:z AS text[]), CAST(:f AS smallint[])) "
                "ON CONFLICT (tenant_id) DO NOTHING"
            ),
            {"t": missing, "z": [wanted[t][0] for t in missing], "f": [wanted[t][1] for t in missing]},
        )
        found.update(await _calendars(conn, missing))
    return found


async def _calendars(conn: AsyncConnection, tenants: Sequence[str]) -> dict[str, tuple[str, int]]:
    rows = await conn.execute(
        text(
            "SELECT tenant_id, time_zone, fiscal_year_start_month FROM metric_rollup_calendars "
            "WHERE tenant_id = ANY(:t)"
        ),
        {"t": list(tenants)},
    )
    return {r.tenant_id: (r.time_zone, r.fiscal_year_start_month) for r in rows}


#: Period start of a local day per grain, as PostgreSQL computes it: ISO weeks, calendar months,
#: quarters of the fiscal year starting in month ``:fy`` (the rules of ``domain/periods.py``).
_PERIOD_START = {
    "day": "day",
    "week": "date_trunc('week', day)::date",
    "month": "date_trunc('month', day)::date",
    "quarter": "(date_trunc('month', day) - make_interval(months => "
    "(extract(month FROM day)::int - CAST(:fy AS int) + 12) % 3))::date",
}
#: The entity id of each stored level (``definitions.STORED_LEVELS``) in a contribution row
#: (``team_rep``: team and rep joined by U+001F, ``definitions.team_rep_id``; null when either is).
_LEVELS = {
    "rep": "rep_id",
    "team": "team_id",
    "team_rep": "(team_id || chr(31) || rep_id)",
}


async def rebuild_rollups(
    conn: AsyncConnection,
    tenant_id: str,
    time_zone: str,
    fiscal_year_start_month: int,
    on_step: Callable[[int, int], Awaitable[None]],
) -> int:
    """Rebuild every period rollup of the tenant from its contributions under a new calendar.

    Runs in the caller's transaction, holding the tenant's rollup lock exclusively: consumer
    batches set the tenant's versions aside meanwhile (``try_share_rollups``) and the drainer
    applies them after the commit, under the new calendar. Returns the rollup rows written.
    """
    steps = 2 + len(_PERIOD_START)
    await conn.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"), {"k": _lock_key(tenant_id)}
    )
    await conn.execute(
        text(
            "UPDATE metric_contributions SET day = (occurred_at AT TIME ZONE :tz)::date "
            "WHERE tenant_id = :t AND day IS NOT NULL"
        ),
        {"t": tenant_id, "tz": time_zone},
    )
    await conn.execute(text("DELETE FROM metric_rollups WHERE tenant_id = :t"), {"t": tenant_id})
    await on_step(2, steps)
    sums = ", ".join(f"sum({c})" for c in COLUMNS)
    nonzero = " OR ".join(f"sum({c}) <> 0" for c in COUNTER_COLUMNS)
    written = 0
    for done, (grain, start) in enumerate(_PERIOD_START.items(), start=3):
        for level, column in _LEVELS.items():
            result = await conn.execute(
                text(
                    f"INSERT INTO metric_rollups (tenant_id, level, entity_id, granularity, period_start, "
                    f"{', '.join(COLUMNS)}) "
                    f"SELECT :t, :level, {column}, :grain, {start} AS period_start, {sums} "
                    f"FROM metric_contributions WHERE tenant_id = :t AND day IS NOT NULL AND {column} IS NOT NULL "
                    f"GROUP BY {column}, period_start HAVING {nonzero}"
                ),
                {"t": tenant_id, "level": level, "grain": grain, "fy": fiscal_year_start_month},
            )
            written += result.rowcount
        await on_step(done, steps)
    await conn.execute(
        text(
            "INSERT INTO metric_rollup_calendars (tenant_id, time_zone, fiscal_year_start_month) "
            "VALUES (:t, :tz, :fy) ON CONFLICT (tenant_id) DO UPDATE SET time_zone = :tz, "
            "fiscal_year_start_month = :fy, rebuilt_at = now()"
        ),
        {"t": tenant_id, "tz": time_zone, "fy": fiscal_year_start_month},
    )
    return written


def utc_now() -> datetime:
    from datetime import UTC

    return datetime.now(UTC)
