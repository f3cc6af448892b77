"""GDPR Art. 15, right of access: everything the tenant holds that names one person, audited.

One handler for the gateway's ``GET /v1/privacy/subjects/export`` and ``spm privacy export``.
The identity is read as activities store it (an address lower-cased, a phone in E.164 read in
the tenant's region by ingest's rule, ``libs.common.phones``); the audit row names it by its
keyed hash alone, as an erasure's does, written in the transaction that read the data.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from libs.common import audit
from libs.common.erasures import (
    ErasedIdentities,
    IdentityKind,
    address_spellings,
    erasure_key,
    identity_hash,
    identity_hashes,
    normalise_identity,
)
from libs.common.phones import e164_or_none
from libs.common.tenant_settings_store import load_tenant_settings
from services.gateway.adapters import privacy as store
from services.gateway.routers._pages import activity_rows_page
from services.gateway.schemas import (
    SubjectActivity,
    SubjectAttribution,
    SubjectContact,
    SubjectErasure,
    SubjectExport,
    SubjectIdentity,
    SubjectMeetingRemoval,
    SubjectUndatedDeletion,
    SubjectWebhookState,
)

DEFAULT_LIMIT = 500
MAX_LIMIT = 5_000


def read_identity(value: str, region: str) -> tuple[IdentityKind, str]:
    """An email (holding ``@``) lower-cased, else a phone in E.164 read in ``region``;
    ValueError naming what it must be otherwise."""
    if "@" in value:
        return IdentityKind.EMAIL, normalise_identity(IdentityKind.EMAIL, value)
    phone = e164_or_none(value.strip(), region)
    if phone is None:
        raise ValueError("must be an email address or a phone number (e.g. +14155550100)")
    return IdentityKind.PHONE, phone


async def export_subject(
    conn: AsyncConnection,
    tenant_id: str,
    raw_identity: str,
    *,
    secret_key: str,
    actor: audit.Actor,
    limit: int = DEFAULT_LIMIT,
    after: tuple[datetime, uuid.UUID] | None = None,
) -> SubjectExport:
    """The export (one page of activities), audited as ``privacy.exported`` in ``conn``'s
    transaction (the caller commits). LookupError: no such tenant; ValueError: not an identity
    (``InvalidTenantSettings``, a ValueError: the tenant's stored settings do not validate)."""
    settings = await load_tenant_settings(conn, tenant_id)
    if settings is None:
        raise LookupError(f"no tenant {tenant_id!r}")
    kind, identity = read_identity(raw_identity, settings.phone_region)
    key = erasure_key(secret_key)
    hashed = identity_hash(key, kind, identity)
    # An erasure of pia+crm@ listed pia@ too: its record is hers.
    hashes = sorted({hashed, *(identity_hashes(key, [identity]) if kind is IdentityKind.EMAIL else ())})
    # Stored composed or decomposed, as erasure reads an address (``ErasedIdentities.names``).
    spellings = address_spellings(identity) if kind is IdentityKind.EMAIL else {identity}
    contacts = [SubjectContact(**row) for row in await store.contacts_naming(conn, tenant_id, identity)]
    rows, next_cursor = activity_rows_page(
        await store.activities_naming(conn, tenant_id, spellings, after, limit + 1), limit
    )
    activities = [
        SubjectActivity(
            **{k: row[k] for k in ("activity_id", "source", "kind", "direction", "occurred_at", "subject")},
            participants=list(row["participants"] or []),
            attribution=None
            if row["status"] is None
            else SubjectAttribution(rep_id=row["rep_id"], deal_id=row["deal_id"], status=row["status"]),
        )
        for row in rows
    ]
    erasures = [
        SubjectErasure(**{**row, "counts": dict(row["counts"] or {})})
        for row in await store.erasures_naming(conn, tenant_id, hashes)
    ]
    held = await store.held_naming(conn, tenant_id, ErasedIdentities(key, frozenset(hashes)))
    await audit.record_admin_action(
        conn,
        tenant_id,
        actor,
        audit.AuditAction.PRIVACY_EXPORTED,
        f"subject:{hashed}",
        after={
            "identity_kind": kind.value,
            "identity_hash": hashed,
            "contacts": len(contacts),
            "activities": len(activities),
            "erasures": len(erasures),
            **{name: len(rows) for name, rows in held.items()},
            "page": after is not None,
        },
    )
    return SubjectExport(
        identity=SubjectIdentity(kind=kind.value, value=identity),
        contacts=contacts,
        activities=activities,
        erasures=erasures,
        meeting_removals=[SubjectMeetingRemoval(**row) for row in held["meeting_removals"]],
        undated_deletions=[SubjectUndatedDeletion(**row) for row in held["undated_deletions"]],
        webhook_states=[SubjectWebhookState(**row) for row in held["webhook_states"]],
        next_cursor=next_cursor,
    )
