"""The SQL of a subject access export: what the tenant holds that names one identity."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

#: The tables an export reads, beside the keyed-hash list of erasures (``privacy_erasures``,
#: ``privacy_erased_identities``). ``tests/unit/gateway/test_privacy_export_reach.py`` checks
#: every table erasure deletes or rewrites is either here or in ``NOT_EXPORTED`` with its reason.
EXPORTED = (
    "activities",
    "attributions",
    "ref_contacts",
    "ref_contact_identities",
    "ref_contact_former_phones",
)


async def contacts_naming(conn: AsyncConnection, tenant_id: str, identity: str) -> list[dict[str, Any]]:
    """The tenant's CRM contacts holding the identity (``ref_contact_identities``, or a phone the
    record dropped, ``ref_contact_former_phones``), with their account, as stored."""
    rows = await conn.execute(
        text(
            """
            SELECT c.contact_id, c.name, c.account_id, a.name AS account_name, c.emails, c.phones,
                   c.raw_phones, c.deleted
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
    identity: str,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[dict[str, Any]]:
    """The tenant's activities with a participant holding the identity, oldest first, at most
    ``limit``, past ``after`` (occurred_at, activity_id), each with its current attribution.
    Found through ``activities_participants`` (migration 0053) as ``windowed_activities`` reads
    it: the key ``"<tenant> <identity>"`` holds the tenant, so no other tenant's row is read."""
    rows = await conn.execute(
        text(
            """
            SELECT a.activity_id, a.source, a.kind, a.direction, a.occurred_at,
                   a.payload ->> 'subject' AS subject, a.payload -> 'participants' AS participants,
                   at.rep_id, at.deal_id, at.status
            FROM (
                -- read through ``activities_participants`` alone (OFFSET 0: the tenant and the
                -- cursor are checked on the rows found, not by reading ``activities_time``)
                SELECT * FROM activities
                WHERE activity_identities(tenant_id, payload -> 'participants') && ARRAY[CAST(:key AS text)]
                OFFSET 0
            ) a
            LEFT JOIN attributions at ON at.tenant_id = a.tenant_id AND at.activity_id = a.activity_id
            WHERE a.tenant_id = :t
              AND (CAST(:after_at AS timestamptz) IS NULL
                   OR (a.occurred_at, a.activity_id) > (CAST(:after_at AS timestamptz), CAST(:after_id AS uuid)))
            ORDER BY a.occurred_at, a.activity_id LIMIT :limit
            """
        ),
        {
            "t": tenant_id,
            "key": f"{tenant_id} {identity}",
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
