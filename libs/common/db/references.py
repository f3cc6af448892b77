"""Whether attribution already holds given CRM entities in its reference tables.

A CRM batch accepted by ingest reaches attribution's reference tables a moment later. Whoever
sends the activities that name those entities right after (the demo loader, the integration
tests) can wait for them here instead of sleeping, so the activities are decided with the CRM
data rather than parked first and re-matched when it lands.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.contracts.crm import ContactV1, RepV1

#: Where attribution keeps each CRM entity type: its reference table, id column and survivor
#: (teams and memberships are not merged).
REFERENCE_TABLES = {
    "rep": ("ref_reps", "rep_id", "merged_into"),
    "team": ("ref_teams", "team_id", "NULL"),
    "team_membership": ("ref_team_memberships", "membership_id", "NULL"),
    "account": ("ref_accounts", "account_id", "merged_into"),
    "contact": ("ref_contacts", "contact_id", "merged_into"),
    "deal": ("ref_deals", "deal_id", "merged_into"),
}


def _instant(value: str | datetime) -> datetime:
    at = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def _holds(row: Any, sent: Mapping[str, Any]) -> bool:
    """Whether the held ``row`` is ``sent`` (its ``updated_at`` or newer; ``deleted`` and
    ``merged_into`` as sent when ``sent`` names them, a blank one being none)."""
    if row is None:
        return False
    if "updated_at" in sent and row.updated_at < _instant(sent["updated_at"]):
        return False
    if "deleted" in sent and row.deleted != bool(sent["deleted"]):
        return False
    return "merged_into" not in sent or row.merged_into == (sent["merged_into"] or None)  # blank: none


async def references_missing(
    engine: AsyncEngine, tenant_id: str, entities: Iterable[Mapping[str, Any]]
) -> list[str]:
    """``"<entity_type> <id>"`` of each of ``entities`` (CRM entities as sent: a ``/v1/crm/sync``
    body's, or a vendor feed's ``entity_type`` and ``id`` as ingest maps them) that attribution
    does not hold yet: no row, an older ``updated_at``, or another ``deleted`` or ``merged_into``
    than sent. Entity types attribution keeps no table for are never missing."""
    wanted = [(e["entity_type"], str(e["id"]), e) for e in entities if e["entity_type"] in REFERENCE_TABLES]
    held: dict[tuple[str, str], Any] = {}
    async with engine.connect() as conn:
        for kind in {kind for kind, _, _ in wanted}:
            table, key, survivor = REFERENCE_TABLES[kind]
            ids = [i for k, i, _ in wanted if k == kind]
            rows = await conn.execute(
                text(
                    f"SELECT {key} AS id, updated_at, deleted, {survivor} AS merged_into FROM {table} "
                    f"WHERE tenant_id = :t AND {key} = ANY(:ids)"
                ),
                {"t": tenant_id, "ids": ids},
            )
            held.update(((kind, r.id), r) for r in rows)
    return [f"{kind} {i}" for kind, i, sent in wanted if not _holds(held.get((kind, i)), sent)]


def _held_person(held: Any) -> dict[str, Any]:
    """The name, addresses and phones a held rep or contact row (``held``, a row mapping)
    carries, as :class:`RepV1` and :class:`ContactV1` take them."""
    return {
        "name": held["name"],
        "emails": tuple(held["emails"]),
        "phones": tuple(held["phones"]),
        "raw_phones": tuple(held["raw_phones"]),
        "phone_extensions": tuple(held["phone_extensions"]),
        "unread_phones": tuple(held["unread_phones"]),
    }


def held_rep(row: Any) -> RepV1:
    """A rep as attribution holds it in ``ref_reps`` (a row of ``rep_id``, ``name``, ``emails``,
    ``phones``, ``raw_phones``, ``phone_extensions``, ``unread_phones``, ``active``,
    ``manager_id``, ``role``, ``updated_at``, ``deleted``, ``merged_into``): ingest's
    ``reread_phones`` job reads reps back so, and attribution a re-read's check."""
    held = row._mapping
    return RepV1(
        id=held["rep_id"],
        **_held_person(held),
        active=held["active"],
        manager_id=held["manager_id"],
        role=held["role"],
        updated_at=held["updated_at"],
        deleted=held["deleted"],
        merged_into=held["merged_into"],
    )


#: The columns of ``ref_reps`` :func:`held_rep` reads.
HELD_REP_COLUMNS = (
    "rep_id, name, emails, phones, raw_phones, phone_extensions, unread_phones, active, manager_id, "
    "role, updated_at, deleted, merged_into"
)


def held_contact(row: Any) -> ContactV1:
    """A contact as attribution holds it in ``ref_contacts`` (a row of ``contact_id``, ``name``,
    ``emails``, ``phones``, ``raw_phones``, ``phone_extensions``, ``unread_phones``,
    ``account_id``, ``updated_at``, and optionally ``country``, ``deleted``, ``merged_into``):
    ingest's phone jobs read contacts back so, and attribution a re-read's check."""
    held = row._mapping
    return ContactV1(
        id=held["contact_id"],
        **_held_person(held),
        account_id=held["account_id"],
        country=held.get("country"),
        updated_at=held["updated_at"],
        deleted=held.get("deleted", False),
        merged_into=held.get("merged_into"),
    )
