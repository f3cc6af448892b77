"""The SQL of an erasure job: claim it, page through the tenant's data, delete or redact, report."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Any

import msgspec
import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from libs.common.contracts.activities import ActivityIngestedV1
from libs.common.contracts.attribution_fast import (
    Attributed,
    AttributedEvent,
    decode_attributed,
    decode_encoded,
    encode_event,
)
from libs.common.db.deal_engagement import recompute_deals_of
from libs.common.db.webhook_state import webhook_state_lock

#: A running job whose heartbeat is older than this was abandoned (its process died): resume it.
STALE_AFTER_SECONDS = 120

#: Tables keyed by (tenant_id, activity_id) whose rows go with a deleted activity.
_ACTIVITY_TABLES = (
    "activities",
    "attributions",
    "attribution_superseded",
    "attribution_overrides",
    "ingest_seen_events",
    "ingest_meeting_keys",
    "ingest_undated_deletions",
    "ingest_time_blocks",
    "meeting_removals",
    # A held version queued by the sweep, not published yet (services.attribution.held_sweep).
    "held_sweep_outbox",
    # A version metrics set aside while the tenant's rollups were busy, not counted yet.
    "metric_deferred_events",
)

#: Tables keyed by (tenant_id, contact_id) whose rows go with a deleted contact (``ref_contacts`` last).
_CONTACT_TABLES = (
    "ref_contact_identities",
    "ref_contact_former_phones",
    "ref_contact_former_accounts",
    "ref_deal_contacts",
)

#: The deals' engagement summaries, and the log of what the refresher has not merged into them
#: yet, whose ``contact_ids`` lose a deleted contact.
_DEAL_SUMMARY_TABLES = ("metric_deal_engagement", "metric_deal_engagement_changes")

#: Versions kept as encoded bodies (``encode_event``) before they reach metrics' rows: the held
#: sweep's, not yet published, and those metrics set aside while the tenant's rollups were busy
#: (a rebuild or rescore), not yet counted. Each is read with the decoder of the code that takes
#: it back: the sweep's own struct (``decode_encoded``: it wrote them) and the drainer's
#: ``decode_attributed`` (msgspec, else the contract's pydantic model: metrics set aside what
#: either decoded, its offsets committed). (table, key column, body column, decoder)
_QUEUED_VERSIONS: tuple[tuple[str, str, str, Callable[[bytes], AttributedEvent]], ...] = (
    ("held_sweep_outbox", "outbox_id", "event", decode_encoded),
    ("metric_deferred_events", "seq", "body", decode_attributed),
)


#: Waiting: queued, or abandoned by a process that died (its heartbeat stale).
_WAITING = (
    "(state = 'queued' OR (state = 'running' AND heartbeat_at < now() - make_interval(secs => :stale)))"
)
#: The tenants with an erasure waiting, in turn: the one whose erasures were last worked on
#: longest ago (or never) first, then the one waiting longest. One look at each such tenant's.
_TURNS = f"""
SELECT w.tenant_id FROM (
    SELECT tenant_id, min(requested_at) AS oldest FROM privacy_erasures WHERE {_WAITING} GROUP BY tenant_id
) w
ORDER BY (SELECT max(p.heartbeat_at) FROM privacy_erasures p WHERE p.tenant_id = w.tenant_id)
    NULLS FIRST, w.oldest, w.tenant_id
"""
#: The tenant's oldest waiting erasure, unless another replica holds it.
_CLAIM = f"""
UPDATE privacy_erasures SET state = 'running', heartbeat_at = now()
WHERE (tenant_id, erasure_id) = (
    SELECT tenant_id, erasure_id FROM privacy_erasures WHERE tenant_id = :t AND {_WAITING}
    ORDER BY requested_at LIMIT 1 FOR UPDATE SKIP LOCKED)
RETURNING tenant_id, erasure_id
"""


async def claim_next(conn: AsyncConnection) -> tuple[str, uuid.UUID] | None:
    """Take one queued (or abandoned) erasure, marking it running; None when there is none.

    The tenants take turns: the one whose erasures were last worked on longest ago (or never,
    ``heartbeat_at``) first, each tenant's oldest request first. So a tenant requesting many (a
    bulk clean-up) delays another tenant's erasure by one of its own, not by all of them."""
    turns = await conn.execute(text(_TURNS), {"stale": STALE_AFTER_SECONDS})
    for tenant_id in list(turns.scalars()):
        row = (await conn.execute(text(_CLAIM), {"stale": STALE_AFTER_SECONDS, "t": tenant_id})).first()
        if row is not None:
            return row.tenant_id, row.erasure_id
    return None


async def load_erasure(conn: AsyncConnection, tenant_id: str, erasure_id: uuid.UUID) -> Any:
    return (
        await conn.execute(
            text(
                "SELECT identity_hash, state, counts FROM privacy_erasures WHERE tenant_id = :t AND erasure_id = :id"
            ),
            {"t": tenant_id, "id": erasure_id},
        )
    ).first()


async def listed_identities(conn: AsyncConnection, tenant_id: str, erasure_id: uuid.UUID) -> list[str]:
    rows = await conn.execute(
        text("SELECT identity_hash FROM privacy_erased_identities WHERE tenant_id = :t AND erasure_id = :id"),
        {"t": tenant_id, "id": erasure_id},
    )
    return [row.identity_hash for row in rows]


async def mark_running(conn: AsyncConnection, tenant_id: str, erasure_id: uuid.UUID, total: int) -> None:
    await conn.execute(
        text(
            "UPDATE privacy_erasures SET state = 'running', heartbeat_at = now(), total = :total, done = 0 "
            "WHERE tenant_id = :t AND erasure_id = :id"
        ),
        {"t": tenant_id, "id": erasure_id, "total": total},
    )


async def report_progress(
    conn: AsyncConnection, tenant_id: str, erasure_id: uuid.UUID, done: int, counts: dict[str, int]
) -> None:
    await conn.execute(
        text(
            "UPDATE privacy_erasures SET done = :done, counts = CAST(:counts AS jsonb), heartbeat_at = now() "
            "WHERE tenant_id = :t AND erasure_id = :id"
        ),
        {"t": tenant_id, "id": erasure_id, "done": done, "counts": orjson.dumps(counts).decode()},
    )


async def finish(
    conn: AsyncConnection,
    tenant_id: str,
    erasure_id: uuid.UUID,
    counts: dict[str, int],
    error: str | None = None,
) -> None:
    await conn.execute(
        text(
            "UPDATE privacy_erasures SET state = :state, finished_at = now(), counts = CAST(:counts AS jsonb), "
            "error = :error WHERE tenant_id = :t AND erasure_id = :id"
        ),
        {
            "t": tenant_id,
            "id": erasure_id,
            "state": "failed" if error else "done",
            "counts": orjson.dumps(counts).decode(),
            "error": error,
        },
    )


async def count_activities(conn: AsyncConnection, tenant_id: str) -> int:
    row = (
        await conn.execute(
            text("SELECT count(*) AS n FROM activities WHERE tenant_id = :t"), {"t": tenant_id}
        )
    ).one()
    return int(row.n)


async def activity_page(
    conn: AsyncConnection, tenant_id: str, after: uuid.UUID | None, limit: int
) -> list[ActivityIngestedV1]:
    """The next ``limit`` activities by id, locked for this transaction."""
    result = await conn.execute(
        text(
            "SELECT payload FROM activities WHERE tenant_id = :t "
            "AND (CAST(:after AS uuid) IS NULL OR activity_id > :after) ORDER BY activity_id LIMIT :limit FOR UPDATE"
        ),
        {"t": tenant_id, "after": after, "limit": limit},
    )
    return [ActivityIngestedV1.model_validate(row.payload) for row in result]


async def delete_activities(conn: AsyncConnection, tenant_id: str, ids: Sequence[uuid.UUID]) -> None:
    for table in _ACTIVITY_TABLES:
        await conn.execute(
            text(f"DELETE FROM {table} WHERE tenant_id = :t AND activity_id = ANY(:ids)"),
            {"t": tenant_id, "ids": list(ids)},
        )


async def replace_payloads(conn: AsyncConnection, activities: Sequence[ActivityIngestedV1]) -> None:
    """Store each activity as it now stands, its revision unchanged (an erased person redacted,
    an attendee who left a meeting); the ``outcome`` column follows (a meeting called off)."""
    for activity in activities:
        await conn.execute(
            text(
                "UPDATE activities SET payload = CAST(:p AS jsonb), outcome = :o "
                "WHERE tenant_id = :t AND activity_id = :id"
            ),
            {
                "t": activity.tenant_id,
                "id": activity.activity_id,
                "p": activity.model_dump_json(),
                "o": activity.outcome.value,
            },
        )


async def forget_removals(conn: AsyncConnection, tenant_id: str, rows: Sequence[Any]) -> None:
    """Delete these removals (an erased guest's)."""
    if rows:
        await conn.execute(
            text(
                "DELETE FROM meeting_removals m USING unnest(CAST(:a AS uuid[]), CAST(:d AS text[])) AS r(a, d) "
                "WHERE m.tenant_id = :t AND m.activity_id = r.a AND m.address = r.d"
            ),
            {"t": tenant_id, "a": [r.activity_id for r in rows], "d": [r.address for r in rows]},
        )


async def forget_undated_deletions_read_in(
    conn: AsyncConnection, tenant_id: str, calendars: Sequence[str]
) -> None:
    """Delete the undated deletions read in these calendars (an erased person's mailbox)."""
    if calendars:
        await conn.execute(
            text("DELETE FROM ingest_undated_deletions WHERE tenant_id = :t AND calendar = ANY(:c)"),
            {"t": tenant_id, "c": list(calendars)},
        )


async def contact_identities(conn: AsyncConnection, tenant_id: str) -> list[tuple[str, list[str], list[str]]]:
    """Every CRM contact of the tenant: (id, emails, phones), the phones its record dropped
    (``ref_contact_former_phones``: a deleted contact's tombstone lists none) included."""
    rows = await conn.execute(
        text(
            "SELECT c.contact_id, c.emails, c.phones || ARRAY(SELECT f.phone FROM ref_contact_former_phones f "
            "WHERE f.tenant_id = c.tenant_id AND f.contact_id = c.contact_id ORDER BY f.phone) AS phones "
            "FROM ref_contacts c WHERE c.tenant_id = :t"
        ),
        {"t": tenant_id},
    )
    return [(r.contact_id, list(r.emails), list(r.phones)) for r in rows]


async def delete_contacts(conn: AsyncConnection, tenant_id: str, contact_ids: Sequence[str]) -> int:
    """Remove the contacts, their identities and deal roles, and their entries in deals and explanations."""
    params = {"t": tenant_id, "ids": list(contact_ids)}
    for table in _CONTACT_TABLES:
        await conn.execute(
            text(f"DELETE FROM {table} WHERE tenant_id = :t AND contact_id = ANY(:ids)"), params
        )
    await conn.execute(
        text(
            "UPDATE ref_contact_former_phones SET shared_with = ARRAY(SELECT c FROM unnest(shared_with) c "
            "WHERE NOT (c = ANY(:ids))) WHERE tenant_id = :t AND shared_with && CAST(:ids AS text[])"
        ),
        params,
    )
    await conn.execute(
        text(
            """
            UPDATE ref_deals SET contacts = COALESCE(
                (SELECT jsonb_agg(c) FROM jsonb_array_elements(contacts) c WHERE NOT (c->>'contact_id' = ANY(:ids))),
                '[]'::jsonb)
            WHERE tenant_id = :t AND EXISTS (
                SELECT 1 FROM jsonb_array_elements(contacts) c WHERE c->>'contact_id' = ANY(:ids))
            """
        ),
        params,
    )
    for table in ("attributions", "attribution_superseded"):
        await conn.execute(
            text(
                f"""
                UPDATE {table} SET explanation = jsonb_set(explanation, '{{contacts}}', COALESCE(
                    (SELECT jsonb_agg(c) FROM jsonb_array_elements(explanation->'contacts') c
                     WHERE NOT (c->>'contact_id' = ANY(:ids))), '[]'::jsonb))
                WHERE tenant_id = :t AND jsonb_typeof(explanation->'contacts') = 'array' AND EXISTS (
                    SELECT 1 FROM jsonb_array_elements(explanation->'contacts') c WHERE c->>'contact_id' = ANY(:ids))
                """
            ),
            params,
        )
    await scrub_queued_contacts(conn, tenant_id, contact_ids)
    # The deals those contributions engage are recomputed at the next refresh; their kept rows
    # lose the contacts now.
    await conn.execute(
        text(
            "WITH scrubbed AS (UPDATE metric_contributions SET contact_ids = ARRAY(SELECT c FROM unnest(contact_ids) c "
            "WHERE NOT (c = ANY(:ids))) WHERE tenant_id = :t AND contact_ids && CAST(:ids AS text[]) "
            f"RETURNING tenant_id, engaged_deal_ids) {recompute_deals_of('scrubbed')}"
        ),
        params,
    )
    # The deals' summaries, and the log of what the refresher has not merged into them yet (before
    # 2026-12 the log kept the erased contact's id until the next refresh).
    for table in _DEAL_SUMMARY_TABLES:
        await conn.execute(
            text(
                f"UPDATE {table} SET contact_ids = ARRAY(SELECT c FROM unnest(contact_ids) c "
                "WHERE NOT (c = ANY(:ids))) WHERE tenant_id = :t AND contact_ids && CAST(:ids AS text[])"
            ),
            params,
        )
    result = await conn.execute(
        text("DELETE FROM ref_contacts WHERE tenant_id = :t AND contact_id = ANY(:ids)"), params
    )
    return int(result.rowcount)


async def scrub_queued_contacts(conn: AsyncConnection, tenant_id: str, contact_ids: Sequence[str]) -> int:
    """The versions kept before they reach metrics' rows (``_QUEUED_VERSIONS``: the held sweep's
    queue, metrics' versions set aside) lose the contacts as the stored versions do (their
    explanation's ``contacts``) and as metrics' rows do (the facts' ``external_contact_ids``,
    which metrics would store again once it counts them), rewritten as their writer encodes them.
    Only a kept row that its reader's own decoder refuses (never published or counted as it is)
    is deleted, when its bytes name one of them: a row the sweep or the drainer would take is
    scrubbed and kept, never dropped. Returns how many rows were rewritten or deleted."""
    erased = set(contact_ids)
    if not erased:
        return 0
    changed = 0
    for table, key, column, decode in _QUEUED_VERSIONS:
        changed += await _scrub_queued(conn, (table, key, column), decode, tenant_id, erased)
    return changed


async def _scrub_queued(
    conn: AsyncConnection,
    where: tuple[str, str, str],
    decode: Callable[[bytes], AttributedEvent],
    tenant_id: str,
    erased: set[str],
) -> int:
    table, key, column = where
    rows = await conn.execute(
        text(f"SELECT {key} AS id, {column} AS body FROM {table} WHERE tenant_id = :t FOR UPDATE"),
        {"t": tenant_id},
    )
    rewritten: dict[int, bytes] = {}
    dropped: list[int] = []
    for row in rows:
        body = bytes(row.body)
        try:
            event = decode(body)
        except Exception:
            if any(orjson.dumps(c)[1:-1] in body for c in erased):
                dropped.append(row.id)
            continue
        scrubbed = _without_contacts(event, erased)
        if scrubbed is not event:
            rewritten[row.id] = encode_event(scrubbed)
    for row_id, body in rewritten.items():
        await conn.execute(
            text(f"UPDATE {table} SET {column} = :e WHERE {key} = :id"), {"e": body, "id": row_id}
        )
    if dropped:
        await conn.execute(text(f"DELETE FROM {table} WHERE {key} = ANY(:ids)"), {"ids": dropped})
    return len(rewritten) + len(dropped)


def _without_contacts(event: AttributedEvent, erased: set[str]) -> AttributedEvent:
    """The version without the erased contacts (the same object when it names none), of the
    same type: the struct, or the contract's model (copied without validation, as decoded)."""
    ids = event.facts.external_contact_ids
    listed = event.explanation.get("contacts")
    contacts = listed if isinstance(listed, list) else []
    kept = [c for c in contacts if not (isinstance(c, dict) and c.get("contact_id") in erased)]
    if len(kept) == len(contacts) and erased.isdisjoint(ids):
        return event
    explanation = dict(event.explanation)
    if len(kept) < len(contacts):
        explanation["contacts"] = kept
    left = tuple(c for c in ids if c not in erased)
    if isinstance(event, Attributed):
        facts = msgspec.structs.replace(event.facts, external_contact_ids=left)
        return msgspec.structs.replace(event, facts=facts, explanation=explanation)
    model_facts = event.facts.model_copy(update={"external_contact_ids": left})
    return event.model_copy(update={"facts": model_facts, "explanation": explanation})


async def delete_webhook_states(
    conn: AsyncConnection, tenant_id: str, keys: Sequence[tuple[str, str]]
) -> None:
    """Each row deleted under its advisory lock (``webhook_state_lock``), held until the erasure
    commits: the duplicate ledger's shared statement skips the row meanwhile rather than wait."""
    for source, object_key in keys:
        await conn.execute(
            text(
                f"WITH held AS (SELECT count(pg_advisory_xact_lock({webhook_state_lock(':t', ':s', ':k')})) AS n) "
                "DELETE FROM webhook_state USING held "
                "WHERE tenant_id = :t AND source = :s AND object_key = :k"
            ),
            {"t": tenant_id, "s": source, "k": object_key},
        )


async def mark_metrics_dirty(conn: AsyncConnection, tenant_id: str) -> None:
    """Ask the metrics refresher to rebuild the tenant's read models (stats, insights)."""
    await conn.execute(
        text(
            "INSERT INTO metric_refresh_state (tenant_id, dirty_since) VALUES (:t, now()) "
            "ON CONFLICT (tenant_id) DO UPDATE SET dirty_since = COALESCE(metric_refresh_state.dirty_since, now())"
        ),
        {"t": tenant_id},
    )
