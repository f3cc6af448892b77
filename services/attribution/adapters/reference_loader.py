"""Loads, for a whole batch of activities, the reference data their attribution may need.

A fixed handful of indexed queries per batch (not per activity): identities -> reps and
contacts, domains -> accounts, accounts and contacts -> deals (closed ones only while still
inside the grace window), explicit and thread deals whatever their state, owners of every
deal loaded, reps -> memberships, threads -> the attributions of their activities, activity
ids -> manual overrides (and their deals). Tombstoned and merged entities never match; an explicit reference to
a merged entity is followed to its survivor (``survivors``).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from libs.common.contracts.activities import ActivityIngestedV1
from libs.common.kafka.failures import TenantSettingsInvalid
from services.attribution.domain.personal_domains import parent_domains

#: A merge chain longer than this is a CRM loop, not a history: we stop following it.
_MAX_MERGE_HOPS = 8


@dataclass(frozen=True, slots=True)
class ThreadMember:
    """The attribution in force of one activity of a thread, ordered by ``occurred_at``."""

    activity_id: uuid.UUID
    occurred_at: datetime
    version: int
    status: str
    rep_id: str | None
    account_id: str | None
    deal_id: str | None
    secondary_deal_ids: tuple[str, ...]
    confidence: float


@dataclass
class ReferenceRows:
    """Raw rows keyed for lookup; mapped to the domain's snapshot by the handler."""

    internal_domains: set[str] = field(default_factory=set)
    tenant_settings: dict[str, Any] = field(default_factory=dict)
    reps: dict[str, Any] = field(default_factory=dict)
    rep_ids_by_identity: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    memberships: dict[str, list[Any]] = field(default_factory=lambda: defaultdict(list))
    memberships_loaded: set[str] = field(default_factory=set)
    contacts: dict[str, Any] = field(default_factory=dict)
    contact_ids_by_identity: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    accounts: dict[str, Any] = field(default_factory=dict)
    account_ids_by_domain: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    deals: dict[str, Any] = field(default_factory=dict)
    deal_ids_by_account: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    #: Deal -> (contact, role), with merged contacts replaced by their survivors.
    deal_roles: dict[str, list[tuple[str, str]]] = field(default_factory=lambda: defaultdict(list))
    deal_ids_by_contact: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    #: Thread id -> the attributions of its activities, oldest first.
    thread_members: dict[str, list[ThreadMember]] = field(default_factory=lambda: defaultdict(list))
    overrides: dict[uuid.UUID, Any] = field(default_factory=dict)
    #: ``(entity_type, id)`` of an explicitly referenced entity that was merged or deleted ->
    #: its survivor, or ``None`` when it is gone for good.
    survivors: dict[tuple[str, str], str | None] = field(default_factory=dict)
    #: Domain objects built from these rows by the handler, once per batch: ``(kind, id)`` -> object.
    domain_objects: dict[tuple[str, str], Any] = field(default_factory=dict)

    def survivor(self, entity_type: str, entity_id: str) -> str | None:
        """The id to use for an explicit reference: itself, its survivor, or ``None`` if deleted."""
        return self.survivors.get((entity_type, entity_id), entity_id)

    def remember(self, thread_id: str, member: ThreadMember) -> None:
        """Record a decision taken in this batch so later replies of the thread see it."""
        members = [m for m in self.thread_members[thread_id] if m.activity_id != member.activity_id]
        members.append(member)
        members.sort(key=lambda m: (m.occurred_at, str(m.activity_id)))
        self.thread_members[thread_id] = members


def _domain(email: str) -> str:
    return email.rsplit("@", 1)[-1].lower()


async def load_tenant_settings(conn: AsyncConnection, tenant_id: str) -> dict[str, Any]:
    row = (
        await conn.execute(text("SELECT settings FROM tenants WHERE tenant_id = :t"), {"t": tenant_id})
    ).first()
    stored = row.settings if row else None
    if stored is not None and not isinstance(stored, dict):
        raise TenantSettingsInvalid(tenant_id, "settings", f"expected an object, got {type(stored).__name__}")
    return dict(stored or {})


_ENTITY_TABLES = {
    "rep": ("ref_reps", "rep_id"),
    "contact": ("ref_contacts", "contact_id"),
    "account": ("ref_accounts", "account_id"),
    "deal": ("ref_deals", "deal_id"),
}


async def _resolve_merges(
    conn: AsyncConnection, tenant_id: str, entity_type: str, ids: Iterable[str]
) -> dict[str, str | None]:
    """Merged or deleted entities among ``ids`` -> survivor (``None`` when deleted or a loop).

    Entities the CRM has not sent yet are left out: an explicit reference to them stands.
    """
    table, column = _ENTITY_TABLES[entity_type]
    pending = sorted(set(ids))
    state: dict[str, tuple[bool, str | None]] = {}
    for _ in range(_MAX_MERGE_HOPS):
        pending = [i for i in pending if i not in state]
        if not pending:
            break
        rows = await conn.execute(
            text(
                f"SELECT {column} AS id, deleted, merged_into FROM {table} "
                f"WHERE tenant_id = :t AND {column} = ANY(:ids)"
            ),
            {"t": tenant_id, "ids": pending},
        )
        found = {row.id: (row.deleted, row.merged_into) for row in rows}
        state.update(found)
        pending = [m for deleted, m in found.values() if not deleted and m is not None]
    resolved: dict[str, str | None] = {}
    for entity_id in set(ids):
        current: str | None = entity_id
        for _ in range(_MAX_MERGE_HOPS + 1):
            if current is None or current not in state:
                break
            deleted, merged_into = state[current]
            if deleted:
                current = None
            elif merged_into is None:
                break
            else:
                current = merged_into
        else:
            current = None
        if current != entity_id:
            resolved[entity_id] = current
    return resolved


async def load_reference_rows(  # noqa: C901 - shrink when next touched
    conn: AsyncConnection,
    tenant_id: str,
    activities: Sequence[ActivityIngestedV1],
    grace_days_after_closed: int,
    tenant_settings: dict[str, Any] | None = None,
) -> ReferenceRows:
    refs = ReferenceRows()
    if not activities:
        return refs
    t = {"t": tenant_id}
    identities: set[str] = set()
    domains: set[str] = set()
    threads: set[str] = set()
    explicit: dict[str, set[str]] = {kind: set() for kind in _ENTITY_TABLES}
    for a in activities:
        for p in a.participants:
            if p.email:
                identities.add(p.email)
                domains.update(parent_domains(_domain(p.email)))
            if p.phone:
                identities.add(p.phone)
        if a.crm.deal_id:
            explicit["deal"].add(a.crm.deal_id)
        if a.crm.account_id:
            explicit["account"].add(a.crm.account_id)
        explicit["contact"].update(a.crm.contact_ids)
        if a.crm.owner_rep_id:
            explicit["rep"].add(a.crm.owner_rep_id)
        if a.thread_id:
            threads.add(a.thread_id)
    for kind, ids in explicit.items():
        for entity_id, survivor in (await _resolve_merges(conn, tenant_id, kind, ids)).items():
            refs.survivors[(kind, entity_id)] = survivor
        explicit[kind] = {s for i in ids if (s := refs.survivor(kind, i)) is not None}

    refs.tenant_settings = (
        tenant_settings if tenant_settings is not None else await load_tenant_settings(conn, tenant_id)
    )
    configured = refs.tenant_settings.get("internal_domains")
    if configured:
        refs.internal_domains = {d.lower() for d in configured}
    else:
        rows = await conn.execute(
            text(
                "SELECT DISTINCT lower(split_part(e, '@', 2)) AS d FROM ref_reps, unnest(emails) e "
                "WHERE tenant_id = :t AND NOT deleted AND merged_into IS NULL"
            ),
            t,
        )
        refs.internal_domains = {r.d for r in rows if r.d}

    ident_list = sorted(identities)
    for row in await conn.execute(
        text(
            "SELECT ri.identity, r.* FROM ref_rep_identities ri JOIN ref_reps r USING (tenant_id, rep_id) "
            "WHERE ri.tenant_id = :t AND ri.identity = ANY(:i) AND NOT r.deleted AND r.merged_into IS NULL"
        ),
        {**t, "i": ident_list},
    ):
        refs.reps[row.rep_id] = row
        refs.rep_ids_by_identity[row.identity].add(row.rep_id)
    await _load_memberships(conn, refs, tenant_id, set(refs.reps))
    await _load_reps(conn, refs, tenant_id, explicit["rep"] - set(refs.reps))

    for row in await conn.execute(
        text(
            "SELECT ci.identity, c.* FROM ref_contact_identities ci JOIN ref_contacts c USING (tenant_id, contact_id) "
            "WHERE ci.tenant_id = :t AND ci.identity = ANY(:i) AND NOT c.deleted AND c.merged_into IS NULL"
        ),
        {**t, "i": ident_list},
    ):
        refs.contacts[row.contact_id] = row
        refs.contact_ids_by_identity[row.identity].add(row.contact_id)
    missing_contacts = explicit["contact"] - set(refs.contacts)
    if missing_contacts:
        for row in await conn.execute(
            text(
                "SELECT * FROM ref_contacts WHERE tenant_id = :t AND contact_id = ANY(:c) AND NOT deleted "
                "AND merged_into IS NULL"
            ),
            {**t, "c": sorted(missing_contacts)},
        ):
            refs.contacts[row.contact_id] = row
    # A deal may still name a contact that was merged into one we found: its role counts for the survivor.
    absorbed: dict[str, str] = {}
    if refs.contacts:
        for row in await conn.execute(
            text(
                "SELECT contact_id, merged_into FROM ref_contacts WHERE tenant_id = :t AND merged_into = ANY(:c) "
                "AND NOT deleted"
            ),
            {**t, "c": sorted(refs.contacts)},
        ):
            absorbed[row.contact_id] = row.merged_into

    account_ids = set(explicit["account"]) | {c.account_id for c in refs.contacts.values() if c.account_id}
    for row in await conn.execute(
        text("SELECT domain, account_id FROM ref_account_domains WHERE tenant_id = :t AND domain = ANY(:d)"),
        {**t, "d": sorted(domains - refs.internal_domains)},
    ):
        refs.account_ids_by_domain[row.domain].add(row.account_id)
        account_ids.add(row.account_id)
    if account_ids:
        for row in await conn.execute(
            text(
                "SELECT * FROM ref_accounts WHERE tenant_id = :t AND account_id = ANY(:a) AND NOT deleted "
                "AND merged_into IS NULL"
            ),
            {**t, "a": sorted(account_ids)},
        ):
            refs.accounts[row.account_id] = row

    if threads:
        for row in await conn.execute(
            text(
                """
                SELECT ac.thread_id, ac.activity_id, ac.occurred_at, at.version, at.status, at.rep_id,
                       at.account_id, at.deal_id, at.secondary_deal_ids, at.confidence
                FROM activities ac JOIN attributions at USING (tenant_id, activity_id)
                WHERE ac.tenant_id = :t AND ac.thread_id = ANY(:th)
                ORDER BY ac.thread_id, ac.occurred_at, ac.activity_id
                """
            ),
            {**t, "th": sorted(threads)},
        ):
            refs.thread_members[row.thread_id].append(
                ThreadMember(
                    row.activity_id,
                    row.occurred_at,
                    row.version,
                    row.status,
                    row.rep_id,
                    row.account_id,
                    row.deal_id,
                    tuple(row.secondary_deal_ids),
                    row.confidence,
                )
            )
    for row in await conn.execute(
        text("SELECT * FROM attribution_overrides WHERE tenant_id = :t AND activity_id = ANY(:ids)"),
        {**t, "ids": [a.activity_id for a in activities]},
    ):
        refs.overrides[row.activity_id] = row
    # The thread's deals are loaded whatever their state, so that the rules can refuse to let a
    # reply flow into a deal closed long ago (an unknown deal would be inherited blindly).
    pinned_deals = (
        explicit["deal"]
        | {m.deal_id for members in refs.thread_members.values() for m in members if m.deal_id}
        | {o.deal_id for o in refs.overrides.values() if o.deal_id}
    )
    earliest = min(a.occurred_at for a in activities) - timedelta(days=grace_days_after_closed)
    contact_ids = sorted(set(refs.contacts) | set(absorbed))
    deal_rows = []
    if refs.accounts or pinned_deals or contact_ids:
        deal_rows = list(
            await conn.execute(
                text(
                    """
                    SELECT * FROM ref_deals WHERE tenant_id = :t AND NOT deleted AND merged_into IS NULL AND (
                        deal_id = ANY(:d)
                        OR ((closed_at IS NULL OR closed_at >= :earliest) AND (
                            account_id = ANY(:a)
                            OR deal_id IN (SELECT deal_id FROM ref_deal_contacts
                                           WHERE tenant_id = :t AND contact_id = ANY(:c)))))
                    """
                ),
                {
                    **t,
                    "a": sorted(refs.accounts),
                    "d": sorted(pinned_deals),
                    "c": contact_ids,
                    "earliest": earliest,
                },
            )
        )
    for row in deal_rows:
        refs.deals[row.deal_id] = row
        if row.account_id:
            refs.deal_ids_by_account[row.account_id].add(row.deal_id)
        seen: set[str] = set()
        for c in row.contacts or []:
            contact_id = absorbed.get(c["contact_id"], c["contact_id"])
            if contact_id in seen:
                continue
            seen.add(contact_id)
            refs.deal_roles[row.deal_id].append((contact_id, c.get("role", "")))
            refs.deal_ids_by_contact[contact_id].add(row.deal_id)

    owners = {row.owner_rep_id for row in deal_rows if row.owner_rep_id} - set(refs.reps)
    await _load_reps(conn, refs, tenant_id, owners)

    return refs


async def _load_reps(conn: AsyncConnection, refs: ReferenceRows, tenant_id: str, rep_ids: set[str]) -> None:
    """Reps by id (explicit owners, deal owners) and their team memberships."""
    if not rep_ids:
        return
    for row in await conn.execute(
        text(
            "SELECT * FROM ref_reps WHERE tenant_id = :t AND rep_id = ANY(:r) AND NOT deleted "
            "AND merged_into IS NULL"
        ),
        {"t": tenant_id, "r": sorted(rep_ids)},
    ):
        refs.reps[row.rep_id] = row
    # Memberships are loaded for every id asked for, even one whose rep row has not arrived yet:
    # the team of an activity does not depend on the rep's name or addresses.
    await _load_memberships(conn, refs, tenant_id, rep_ids)


async def _load_memberships(
    conn: AsyncConnection, refs: ReferenceRows, tenant_id: str, rep_ids: set[str]
) -> None:
    wanted = sorted(rep_ids - refs.memberships_loaded)
    if not wanted:
        return
    refs.memberships_loaded.update(wanted)
    for row in await conn.execute(
        text(
            "SELECT * FROM ref_team_memberships WHERE tenant_id = :t AND rep_id = ANY(:r) AND NOT deleted "
            "ORDER BY valid_from, membership_id"
        ),
        {"t": tenant_id, "r": wanted},
    ):
        refs.memberships[row.rep_id].append(row)
