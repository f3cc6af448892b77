"""The SQL of a subject access export: what the tenant holds that names one identity."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from libs.common.erasures import (
    ErasedIdentities,
    meeting_removals,
    names_anyone,
    undated_deletion_calendars,
    webhook_states,
)

#: The tables an export reads that erasure deletes or rewrites (beside the erasures' own list,
#: ``privacy_erasures`` and ``privacy_erased_identities``), and those it leaves out with the reason.
#: ``tests/unit/gateway/test_privacy_export_reach.py`` checks that every table of erasure's lists
#: (``services.attribution.adapters.erasure``) is one or the other, so the two cannot drift.
EXPORTED = (
    "activities",
    "attributions",
    "ref_contacts",
    "ref_contact_identities",
    "ref_contact_former_phones",
    "ref_contact_former_accounts",
    "ref_deal_contacts",
    "privacy_erasures",
    # Matched as erasure matches them (``ErasedIdentities.names``, ``names_anyone``).
    "meeting_removals",
    "ingest_undated_deletions",
    "webhook_state",
)
NOT_EXPORTED = {
    "ref_deals": "a deal's list of its contacts' roles, exported as each contact's deal_roles",
    "metric_contributions": "an exported activity's counted figures, naming contacts by id alone",
    "metric_deal_engagement": "a deal's engagement summary, naming its contacts by id alone",
    "metric_deal_engagement_changes": "changes to a deal's engagement summary not merged yet, naming contacts by id alone",
    "metric_refresh_state": "when the tenant's read models were rebuilt; names nobody",
    "attribution_superseded": "earlier decisions of an exported activity; its current one is exported",
    "attribution_overrides": "an admin's correction: the current attribution exported is the overridden one",
    "ingest_seen_events": "delivery ids of an exported activity, kept to drop redeliveries",
    "ingest_meeting_keys": "the calendar keys of an exported meeting, kept to merge its copies",
    "ingest_time_blocks": "a calendar hold's key, kept to skip its redeliveries",
    "held_sweep_outbox": "a version of an exported activity's attribution not published yet",
    "metric_deferred_events": "a version of an exported activity's attribution not counted yet",
}

#: One page of the activities naming an identity (``activities_naming``).
ACTIVITIES_NAMING = """
SELECT a.activity_id, a.source, a.kind, a.direction, a.occurred_at,
       a.payload ->> 'subject' AS subject, a.payload -> 'participants' AS participants,
       at.rep_id, at.deal_id, at.status
FROM (
    -- read through ``activities_participants`` alone (OFFSET 0: the tenant and the
    -- cursor are checked on the rows found, not by reading ``activities_time``)
    SELECT * FROM activities
    WHERE activity_identities(tenant_id, payload -> 'participants') && CAST(:keys AS text[])
    OFFSET 0
) a
LEFT JOIN attributions at ON at.tenant_id = a.tenant_id AND at.activity_id = a.activity_id
WHERE a.tenant_id = :t
  AND (CAST(:after_at AS timestamptz) IS NULL
       OR (a.occurred_at, a.activity_id) > (CAST(:after_at AS timestamptz), CAST(:after_id AS uuid)))
ORDER BY a.occurred_at, a.activity_id LIMIT :limit
"""


async def contacts_naming(conn: AsyncConnection, tenant_id: str, identity: str) -> list[dict[str, Any]]:
    """The tenant's CRM contacts holding the identity (``ref_contact_identities``, or a phone the
    record dropped, ``ref_contact_former_phones``), as stored, with their account, their roles on
    deals and the phones and accounts their record held before."""
    rows = await conn.execute(
        text(
            """
            SELECT c.contact_id, c.name, c.account_id, a.name AS account_name, c.emails, c.phones,
                   c.raw_phones, c.deleted,
                   ARRAY(SELECT jsonb_build_object('deal_id', d.deal_id, 'role', d.role) FROM ref_deal_contacts d
                         WHERE d.tenant_id = c.tenant_id AND d.contact_id = c.contact_id ORDER BY d.deal_id) AS deal_roles,
                   ARRAY(SELECT jsonb_build_object('phone', f.phone, 'until', f.until) FROM ref_contact_former_phones f
                         WHERE f.tenant_id = c.tenant_id AND f.contact_id = c.contact_id ORDER BY f.until, f.phone)
                       AS former_phones,
                   ARRAY(SELECT jsonb_build_object('account_id', f.account_id, 'until', f.until)
                         FROM ref_contact_former_accounts f
                         WHERE f.tenant_id = c.tenant_id AND f.contact_id = c.contact_id ORDER BY f.until)
                       AS former_accounts
            FROM ref_contacts c LEFT JOIN ref_accounts a ON a.tenant_id = c.tenant_id AND a.account_id = c.account_id
            WHERE c.tenant_id = :t AND c.contact_id IN (
                SELECT contact_id FROM ref_contact_identities WHERE tenant_id = :t AND identity = :i
                UNION
                SELECT contact_id FROM ref_contact_former_phones WHERE tenant_id = :t AND phone = :i)
            ORDER BY c.contact_id
            """
        ),
        {"t": tenant_id, "i": identity},
    )
    return [dict(row._mapping) for row in rows]


async def activities_naming(
    conn: AsyncConnection,
    tenant_id: str,
    spellings: Iterable[str],
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[dict[str, Any]]:
    """The tenant's activities with a participant holding the identity (in any of its
    ``spellings``: an address composed or decomposed, ``address_spellings``), oldest first, at
    most ``limit``, past ``after`` (occurred_at, activity_id), each with its current attribution.
    Found through ``activities_participants`` (migration 0053) as ``windowed_activities`` reads
    it: the key ``"<tenant> <identity>"`` holds the tenant, so no other tenant's row is read."""
    rows = await conn.execute(
        text(ACTIVITIES_NAMING),
        {
            "t": tenant_id,
            "keys": sorted(f"{tenant_id} {spelling}" for spelling in spellings),
            "after_at": after[0] if after else None,
            "after_id": after[1] if after else None,
            "limit": limit,
        },
    )
    return [dict(row._mapping) for row in rows]


async def erasures_naming(
    conn: AsyncConnection, tenant_id: str, hashes: Sequence[str]
) -> list[dict[str, Any]]:
    """The tenant's erasure requests of the identity: requested under one of its hashes, or
    listing one (an address's mailbox goes on the list with it)."""
    rows = await conn.execute(
        text(
            """
            SELECT erasure_id, identity_kind, state, requested_by, requested_at, finished_at, counts
            FROM privacy_erasures WHERE tenant_id = :t AND (identity_hash = ANY(:h) OR erasure_id IN (
                SELECT erasure_id FROM privacy_erased_identities WHERE tenant_id = :t AND identity_hash = ANY(:h)))
            ORDER BY requested_at, erasure_id
            """
        ),
        {"t": tenant_id, "h": list(hashes)},
    )
    return [dict(row._mapping) for row in rows]


async def held_naming(
    conn: AsyncConnection, tenant_id: str, person: ErasedIdentities
) -> dict[str, list[Any]]:
    """What names the person outside activities' payloads, found as erasure finds it (the same
    readers and ``ErasedIdentities.names``, so an address also by its mailbox and in either Unicode
    form): ``meeting_removals`` (meetings she left, which no longer list her), the
    ``undated_deletions`` read in her calendar, and the ``webhook_states`` naming her."""
    removals = [
        dict(r._mapping) for r in await meeting_removals(conn, tenant_id) if person.names(r.address, None)
    ]
    calendars = [c for c in await undated_deletion_calendars(conn, tenant_id) if person.names(c, None)]
    deletions = await conn.execute(
        text(
            "SELECT activity_id, calendar, read_at FROM ingest_undated_deletions "
            "WHERE tenant_id = :t AND calendar = ANY(:c) ORDER BY read_at, activity_id, calendar"
        ),
        {"t": tenant_id, "c": calendars},
    )
    states = [
        {"source": source, "object_key": key, "state": state}
        for source, key, state in await webhook_states(conn, tenant_id)
        if names_anyone(state, person)
    ]
    return {
        "meeting_removals": removals,
        "undated_deletions": [dict(r._mapping) for r in deletions],
        "webhook_states": states,
    }
