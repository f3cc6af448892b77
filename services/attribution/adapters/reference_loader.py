"""Loads, for a whole batch of activities, the reference data their attribution may need.

A fixed handful of indexed queries per batch (not per activity): identities -> reps and
contacts, domains -> accounts, accounts and contacts -> deals, reps -> memberships,
threads -> their current attribution, activity ids -> manual overrides.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from libs.common.contracts.activities import ActivityIngestedV1
from services.attribution.domain.personal_domains import parent_domains


@dataclass
class ReferenceRows:
    """Raw rows keyed for lookup; mapped to the domain's snapshot by the handler."""

    internal_domains: set[str] = field(default_factory=set)
    tenant_settings: dict[str, Any] = field(default_factory=dict)
    reps: dict[str, Any] = field(default_factory=dict)
    rep_ids_by_identity: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    memberships: dict[str, list[Any]] = field(default_factory=lambda: defaultdict(list))
    contacts: dict[str, Any] = field(default_factory=dict)
    contact_ids_by_identity: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    accounts: dict[str, Any] = field(default_factory=dict)
    account_ids_by_domain: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    deals: dict[str, Any] = field(default_factory=dict)
    deal_ids_by_account: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    deal_roles: dict[str, list[tuple[str, str]]] = field(default_factory=lambda: defaultdict(list))
    deal_ids_by_contact: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    thread_attributions: dict[str, Any] = field(default_factory=dict)
    overrides: dict[uuid.UUID, Any] = field(default_factory=dict)


def _domain(email: str) -> str:
    return email.rsplit("@", 1)[-1]


async def load_reference_rows(
    conn: AsyncConnection, tenant_id: str, activities: Sequence[ActivityIngestedV1]
) -> ReferenceRows:
    refs = ReferenceRows()
    t = {"t": tenant_id}
    identities: set[str] = set()
    domains: set[str] = set()
    explicit_deals: set[str] = set()
    explicit_accounts: set[str] = set()
    explicit_contacts: set[str] = set()
    explicit_reps: set[str] = set()
    threads: set[str] = set()
    for a in activities:
        for p in a.participants:
            if p.email:
                identities.add(p.email)
                domains.update(parent_domains(_domain(p.email)))
            if p.phone:
                identities.add(p.phone)
        if a.crm.deal_id:
            explicit_deals.add(a.crm.deal_id)
        if a.crm.account_id:
            explicit_accounts.add(a.crm.account_id)
        explicit_contacts.update(a.crm.contact_ids)
        if a.crm.owner_rep_id:
            explicit_reps.add(a.crm.owner_rep_id)
        if a.thread_id:
            threads.add(a.thread_id)

    settings_row = (await conn.execute(text("SELECT settings FROM tenants WHERE tenant_id = :t"), t)).first()
    refs.tenant_settings = dict(settings_row.settings or {}) if settings_row else {}
    configured = refs.tenant_settings.get("internal_domains")
    if configured:
        refs.internal_domains = {d.lower() for d in configured}
    else:
        rows = await conn.execute(
            text(
                "SELECT DISTINCT split_part(e, '@', 2) AS d FROM ref_reps, unnest(emails) e "
                "WHERE tenant_id = :t AND NOT deleted"
            ),
            t,
        )
        refs.internal_domains = {r.d for r in rows}

    ident_list = sorted(identities)
    for row in await conn.execute(
        text(
            "SELECT ri.identity, r.* FROM ref_rep_identities ri JOIN ref_reps r USING (tenant_id, rep_id) "
            "WHERE ri.tenant_id = :t AND ri.identity = ANY(:i) AND NOT r.deleted"
        ),
        {**t, "i": ident_list},
    ):
        refs.reps[row.rep_id] = row
        refs.rep_ids_by_identity[row.identity].add(row.rep_id)
    missing_reps = explicit_reps - set(refs.reps)
    if missing_reps:
        for row in await conn.execute(
            text("SELECT * FROM ref_reps WHERE tenant_id = :t AND rep_id = ANY(:r) AND NOT deleted"),
            {**t, "r": sorted(missing_reps)},
        ):
            refs.reps[row.rep_id] = row
    if refs.reps:
        for row in await conn.execute(
            text(
                "SELECT * FROM ref_team_memberships WHERE tenant_id = :t AND rep_id = ANY(:r) AND NOT deleted "
                "ORDER BY valid_from"
            ),
            {**t, "r": sorted(refs.reps)},
        ):
            refs.memberships[row.rep_id].append(row)

    for row in await conn.execute(
        text(
            "SELECT ci.identity, c.* FROM ref_contact_identities ci JOIN ref_contacts c USING (tenant_id, contact_id) "
            "WHERE ci.tenant_id = :t AND ci.identity = ANY(:i) AND NOT c.deleted"
        ),
        {**t, "i": ident_list},
    ):
        refs.contacts[row.contact_id] = row
        refs.contact_ids_by_identity[row.identity].add(row.contact_id)
    missing_contacts = explicit_contacts - set(refs.contacts)
    if missing_contacts:
        for row in await conn.execute(
            text("SELECT * FROM ref_contacts WHERE tenant_id = :t AND contact_id = ANY(:c) AND NOT deleted"),
            {**t, "c": sorted(missing_contacts)},
        ):
            refs.contacts[row.contact_id] = row

    account_ids = set(explicit_accounts) | {c.account_id for c in refs.contacts.values() if c.account_id}
    for row in await conn.execute(
        text("SELECT domain, account_id FROM ref_account_domains WHERE tenant_id = :t AND domain = ANY(:d)"),
        {**t, "d": sorted(domains - refs.internal_domains)},
    ):
        refs.account_ids_by_domain[row.domain].add(row.account_id)
        account_ids.add(row.account_id)
    if account_ids:
        for row in await conn.execute(
            text("SELECT * FROM ref_accounts WHERE tenant_id = :t AND account_id = ANY(:a) AND NOT deleted"),
            {**t, "a": sorted(account_ids)},
        ):
            refs.accounts[row.account_id] = row

    deal_rows = []
    if refs.accounts or explicit_deals or refs.contacts:
        deal_rows = list(
            await conn.execute(
                text(
                    """
                    SELECT * FROM ref_deals WHERE tenant_id = :t AND NOT deleted AND merged_into IS NULL AND (
                        account_id = ANY(:a) OR deal_id = ANY(:d)
                        OR deal_id IN (SELECT deal_id FROM ref_deal_contacts WHERE tenant_id = :t AND contact_id = ANY(:c)))
                    """
                ),
                {**t, "a": sorted(refs.accounts), "d": sorted(explicit_deals), "c": sorted(refs.contacts)},
            )
        )
    for row in deal_rows:
        refs.deals[row.deal_id] = row
        if row.account_id:
            refs.deal_ids_by_account[row.account_id].add(row.deal_id)
        for c in row.contacts or []:
            refs.deal_roles[row.deal_id].append((c["contact_id"], c.get("role", "")))
            refs.deal_ids_by_contact[c["contact_id"]].add(row.deal_id)

    owners = {row.owner_rep_id for row in deal_rows if row.owner_rep_id} - set(refs.reps)
    if owners:
        for row in await conn.execute(
            text("SELECT * FROM ref_reps WHERE tenant_id = :t AND rep_id = ANY(:r) AND NOT deleted"),
            {**t, "r": sorted(owners)},
        ):
            refs.reps[row.rep_id] = row
        for row in await conn.execute(
            text(
                "SELECT * FROM ref_team_memberships WHERE tenant_id = :t AND rep_id = ANY(:r) AND NOT deleted "
                "ORDER BY valid_from"
            ),
            {**t, "r": sorted(owners)},
        ):
            refs.memberships[row.rep_id].append(row)

    if threads:
        for row in await conn.execute(
            text(
                """
                SELECT DISTINCT ON (ac.thread_id) ac.thread_id, ac.activity_id, at.status, at.deal_id, at.account_id,
                       at.rep_id, at.confidence
                FROM activities ac JOIN attributions at USING (tenant_id, activity_id)
                WHERE ac.tenant_id = :t AND ac.thread_id = ANY(:th) AND at.deal_id IS NOT NULL
                ORDER BY ac.thread_id, at.confidence DESC, ac.occurred_at
                """
            ),
            {**t, "th": sorted(threads)},
        ):
            refs.thread_attributions[row.thread_id] = row

    for row in await conn.execute(
        text("SELECT * FROM attribution_overrides WHERE tenant_id = :t AND activity_id = ANY(:ids)"),
        {**t, "ids": [a.activity_id for a in activities]},
    ):
        refs.overrides[row.activity_id] = row
    return refs
