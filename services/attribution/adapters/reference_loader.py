"""Loads, for a whole batch of activities, the reference data their attribution may need.

A fixed handful of indexed queries per batch (not per activity): identities -> reps and
contacts, domains -> accounts, accounts and contacts -> deals (closed ones only while still
inside the grace window), explicit and thread deals whatever their state, owners of every
deal loaded (and who owned it when, ``ref_deal_owners``, and what it and the deals merged into it were named, ``ref_deal_names``), reps -> memberships, threads -> the attributions of their activities, activity
ids -> manual overrides (and their deals). Tombstoned and merged entities never match; an
explicit reference to a merged entity is followed to its survivor (``survivors``).

The rows become domain objects in a typed ``ReferenceIndex``; deciding each activity from it
is the pure ``domain.reference_index.attribute_from_index``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from libs.common.contracts.activities_fast import IngestedEvent
from libs.common.contracts.tenant_settings import (
    DEFAULT_TENANT_SETTINGS,
    InvalidTenantSettings,
    TenantSettings,
)
from libs.common.db.statements import statement
from libs.common.kafka.failures import TenantSettingsInvalid
from libs.common.personal_domains import (
    company_domains,
    email_domain,
    held_address,
    mailbox_address,
    parent_domains,
)
from libs.common.tenant_settings_store import load_tenant_settings as stored_tenant_settings
from services.attribution.domain.reference import (
    Account,
    Contact,
    Deal,
    DealFormerName,
    DealOwnership,
    FormerAccount,
    FormerPhone,
    ManualOverride,
    Rep,
    TeamMembership,
)
from services.attribution.domain.reference_index import EntityKind, ReferenceIndex, ThreadMember
from services.attribution.domain.reps import Absence, mapped_addresses

#: A merge chain longer than this is a CRM loop, not a history: we stop following it.
_MAX_MERGE_HOPS = 8


async def load_tenant_settings(conn: AsyncConnection, tenant_id: str) -> TenantSettings:
    """The tenant's settings read now (the defaults for a tenant not in ``tenants``); a stored
    document that does not validate fails with ``TenantSettingsInvalid`` naming the setting."""
    try:
        return await stored_tenant_settings(conn, tenant_id) or DEFAULT_TENANT_SETTINGS
    except InvalidTenantSettings as exc:
        raise TenantSettingsInvalid(tenant_id, ", ".join(exc.settings), "; ".join(exc.reasons)) from exc


async def tenant_internal_domains(
    conn: AsyncConnection, tenant_id: str, tenant_settings: TenantSettings
) -> frozenset[str]:
    """The tenant's own domains (lower-cased): its ``internal_domains`` setting, else its live
    reps' email domains less personal ones (``company_domains``)."""
    configured = tenant_settings.internal_domains
    if configured:
        return frozenset(d.lower() for d in configured)
    found = await conn.execute(
        statement(
            "SELECT DISTINCT lower(split_part(e, '@', 2)) AS d FROM ref_reps, unnest(emails) e "
            "WHERE tenant_id = :t AND NOT deleted AND merged_into IS NULL"
        ),
        {"t": tenant_id},
    )
    return company_domains((r.d for r in found), tenant_settings.attribution.extra_personal_domains)


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
            statement(
                f"SELECT {column} AS id, deleted, merged_into FROM {table} "
                f"WHERE tenant_id = :t AND {column} = ANY(CAST(:ids AS varchar[]))"
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


# ---------------------------------------------------------------------- rows -> domain objects


def _rep(row: Any) -> Rep:
    # A rep the CRM deactivated has left: her emails and phones name her only for what happened
    # before (``ReferenceIndex.departed``, from ``ref_rep_former_identities``), as a deleted rep's.
    if not row.active:
        return Rep(row.rep_id, row.name, (), (), False, row.manager_id)
    return Rep(
        row.rep_id,
        row.name,
        tuple(row.emails),
        tuple(row.phones),
        row.active,
        row.manager_id,
        tuple(row.phone_extensions),
    )


def _contact(row: Any) -> Contact:
    return Contact(
        row.contact_id, tuple(row.emails), tuple(row.phones), row.account_id, tuple(row.phone_extensions)
    )


def _account(row: Any) -> Account:
    return Account(row.account_id, tuple(row.domains))


def _membership(row: Any) -> TeamMembership:
    return TeamMembership(row.rep_id, row.team_id, row.valid_from, row.valid_to)


def _override(row: Any) -> ManualOverride:
    return ManualOverride(
        rep_id=row.rep_id,
        account_id=row.account_id,
        deal_id=row.deal_id,
        set_by=row.set_by,
        reason=row.reason or "",
    )


def _thread_member(row: Any) -> ThreadMember:
    return ThreadMember(
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


def deal_from_row(row: Any, absorbed: dict[str, str] | None = None) -> Deal:
    """A ``ref_deals`` row; a role held by a contact merged into one in ``absorbed`` counts for the survivor."""
    absorbed = absorbed or {}
    roles: dict[str, str] = {}
    for held in row.contacts or []:
        roles.setdefault(absorbed.get(held["contact_id"], held["contact_id"]), held.get("role", ""))
    return Deal(
        id=row.deal_id,
        account_id=row.account_id,
        owner_rep_id=row.owner_rep_id,
        stage=row.stage,
        is_closed=row.is_closed,
        is_won=row.is_won,
        created_at=row.created_at,
        closed_at=row.closed_at,
        contacts=tuple(roles.items()),
        name=row.name or "",
        # The loader's rows carry the name of the account the deal was filed under (a merged
        # account's deal keeps the name it was written with); a ``ref_deals`` row alone, none.
        account_name=getattr(row, "account_name", None) or "",
        # And what that account is to the tenant (``ref_accounts.relationship``): a partner's
        # deal yields to its customer's (``matching``).
        account_relationship=getattr(row, "account_relationship", None),
    )


# ---------------------------------------------------------------------- what a batch asks for


@dataclass(frozen=True, slots=True)
class _Wanted:
    """What the batch's participants and explicit references point at."""

    identities: frozenset[str]
    domains: frozenset[str]
    threads: frozenset[str]
    explicit: dict[EntityKind, set[str]]
    activity_ids: tuple[uuid.UUID, ...]
    earliest: datetime


def _wanted(activities: Sequence[IngestedEvent], index: ReferenceIndex) -> _Wanted:
    """What the activities point at; the rep each names is the one its source's ids of its rep
    name through the tenant's mapping (``ReferenceIndex.owner_named``)."""
    identities: set[str] = set()
    domains: set[str] = set()
    reps: set[str] = set()
    contacts: set[str] = set()
    accounts: set[str] = set()
    deals: set[str] = set()
    explicit: dict[EntityKind, set[str]] = {
        "rep": reps,
        "contact": contacts,
        "account": accounts,
        "deal": deals,
    }
    for a in activities:
        for p in a.participants:
            if email := p.email:
                identities.add(email)
                identities.add(email.lower())
                # As the addresses of reps and contacts are held (composed: ``held_address``).
                held = held_address(email)
                identities.add(held)
                if mailbox := mailbox_address(held):
                    identities.add(mailbox)
                domains.update(parent_domains(email_domain(email) or ""))
            if p.phone:
                identities.add(p.phone)
        crm = a.crm
        if crm.deal_id:
            deals.add(crm.deal_id)
        if crm.account_id:
            accounts.add(crm.account_id)
        if owner := index.owner_named(crm):
            reps.add(owner)
        if crm.contact_ids:
            contacts.update(crm.contact_ids)
    return _Wanted(
        identities=frozenset(identities),
        domains=frozenset(domains),
        threads=frozenset(a.thread_id for a in activities if a.thread_id),
        explicit=explicit,
        activity_ids=tuple(a.activity_id for a in activities),
        earliest=min(a.occurred_at for a in activities),
    )


@dataclass
class _Loader:
    """One batch's loading: each step is one or two indexed queries filling ``index``."""

    conn: AsyncConnection
    tenant_id: str
    index: ReferenceIndex = field(default_factory=ReferenceIndex)
    memberships_loaded: set[str] = field(default_factory=set)
    aliases_checked: set[str] = field(default_factory=set)
    #: Contact merged into one we found -> that survivor (deal roles follow it).
    absorbed: dict[str, str] = field(default_factory=dict)

    # Lists of strings are bound as ``CAST(:x AS varchar[])``: ``array_codecs`` encodes them in a
    # few C calls, where asyncpg's ``text[]`` checks each element twice with ``isinstance``.
    # ``text_column = ANY(varchar[])`` is PostgreSQL's same text comparison (the array relabelled
    # as ``text[]``): the same index scans and rows.
    async def rows(self, sql: str, **params: Any) -> list[Any]:
        return list(await self.conn.execute(statement(sql), {"t": self.tenant_id, **params}))

    async def resolve_explicit(self, explicit: dict[EntityKind, set[str]]) -> dict[EntityKind, set[str]]:
        resolved: dict[EntityKind, set[str]] = {}
        for kind, ids in explicit.items():
            for entity_id, survivor in (await _resolve_merges(self.conn, self.tenant_id, kind, ids)).items():
                self.index.survivors[(kind, entity_id)] = survivor
            resolved[kind] = {s for i in ids if (s := self.index.survivor(kind, i)) is not None}
        return resolved

    async def internal_domains(self, tenant_settings: TenantSettings) -> None:
        self.index.internal_domains = await tenant_internal_domains(
            self.conn, self.tenant_id, tenant_settings
        )

    async def reps_by_identity(self, identities: Iterable[str]) -> None:
        """Reps holding a participant's email or phone; an alias files its identities under the
        canonical rep of its person (``ref_reps.alias_of``)."""
        found = await self.rows(
            "SELECT * FROM ref_reps WHERE tenant_id = :t AND rep_id = ANY(ARRAY("
            "SELECT rep_id FROM ref_rep_identities WHERE tenant_id = :t AND identity = ANY(CAST(:i AS varchar[])))) "
            "AND NOT deleted AND merged_into IS NULL",
            i=sorted(identities),
        )
        for row in found:
            if row.alias_of is not None:
                self.index.rep_aliases[row.rep_id] = row.alias_of
        for row in found:
            self.index.put_rep(_rep(row))
        await self.reps({row.rep_id for row in found})

    async def reps_by_name(self, identities: Iterable[str]) -> None:
        """When an address is no rep's: the rep the tenant maps it to (``rep_aliases``), the rep
        that held it before its record dropped it (``ref_rep_former_identities``), or, at an internal
        domain, the tenant's named reps (a handful of rows; a deleted one by her name only): its
        mailbox may follow one rep's name (``ana.lopez@``); either names her only in her active
        spells (``departures``). The same rows give the emails and phones of deleted reps, theirs for what
        happened before they left whoever holds them now, and the addresses a live rep dropped that
        another holds now (re-issued), hers for what happened before she dropped them (their
        memberships are loaded too)."""
        listed = self.index.rep_ids_by_identity
        emails = sorted(i for i in identities if "@" in i and i not in listed)
        departed: set[str] = set()
        unheld: dict[str, list[tuple[str, datetime]]] = {}
        # A deleted or deactivated rep's emails and phones, listed by someone now or not
        # (``departed``); and, in the same query, the spells a rep who came back was away
        # (``ref_rep_absences``: ``returned_at`` set), whoever holds the identity now.
        for row in await self.rows(
            "SELECT f.identity, f.rep_id, f.until, NULL::timestamptz AS returned_at, "
            "r.deleted OR NOT r.active AS left FROM ref_rep_former_identities f "
            "LEFT JOIN ref_reps r ON r.tenant_id = f.tenant_id AND r.rep_id = f.rep_id "
            "WHERE f.tenant_id = :t AND f.identity = ANY(CAST(:e AS varchar[])) "
            "UNION ALL SELECT identity, rep_id, left_at, returned_at, NULL FROM ref_rep_absences "
            "WHERE tenant_id = :t AND identity = ANY(CAST(:e AS varchar[])) ORDER BY until",
            e=sorted(identities),
        ):
            if row.returned_at is not None:
                absence = Absence(row.rep_id, row.until, row.returned_at)
                self.index.absences.setdefault(row.identity, []).append(absence)
            elif row.left or listed.get(row.identity):
                # Hers for what happened before she left, or before her record dropped it when
                # another rep holds it now (re-issued: rules 2026.12.40); each holding of an
                # address held by several in turn (rules 2026.12.43).
                self.index.departed_addresses.setdefault(row.identity, []).append((row.rep_id, row.until))
                departed.add(row.rep_id)
            else:
                unheld.setdefault(row.identity, []).append((row.rep_id, row.until))
        for identity, holdings in unheld.items():
            # No rep holds it now: its latest former holder's (``former_addresses``); a holder
            # before her keeps it for her own spell, as a re-issued address does.
            self.index.former_addresses[identity] = holdings[-1][0]
            if earlier := holdings[:-1]:
                self.index.departed_addresses.setdefault(identity, []).extend(earlier)
                departed.update(rep_id for rep_id, _ in earlier)
        if departed:
            await self.reps(departed)
        mapped = self.index.mapped_addresses.keys() | self.index.former_addresses.keys()
        unlisted = [
            i
            for i in emails
            if i in mapped
            or any(d in self.index.internal_domains for d in parent_domains(i.rpartition("@")[2]))
        ]
        if not unlisted:
            return
        if any(i not in mapped for i in unlisted):
            found = await self.rows(
                # A live rep is put whole (``_rep``); a deleted one only by her name.
                "SELECT rep_id, name, alias_of, deleted, active, emails, phones, phone_extensions, "
                "manager_id FROM ref_reps WHERE tenant_id = :t AND name <> '' AND merged_into IS NULL"
            )
            live = [row for row in found if not row.deleted]
            for row in live:
                if row.alias_of is not None:
                    self.index.rep_aliases[row.rep_id] = row.alias_of
            for row in live:
                self.index.put_rep(_rep(row))
            # A deleted rep's name is hers for what happened before she left (``departures``).
            for row in found:
                if row.deleted:
                    self.index.put_departed_name(row.alias_of or row.rep_id, row.name)
        named = {r for i in unlisted for r in self.index.reps_by_name_address(i)}
        await self.reps(named)
        await self.departures({self.index.canonical(r) for r in named})

    async def departures(self, people: set[str]) -> None:
        """When each of ``people`` left (deleted or deactivated and not back: when her emails and
        phones stopped naming her, ``ref_rep_former_identities.until``, else her record's
        ``updated_at``) and the spells she was away (``ref_rep_absences``, one per identity she
        held, the same for each): an address that names her though no source lists it follows them
        (``ReferenceIndex.active_at``). One query, none without such an address."""
        if not people:
            return
        for row in await self.rows(
            "SELECT r.rep_id, coalesce(max(f.until), r.updated_at) AS left_at, NULL::timestamptz AS returned_at "
            "FROM ref_reps r LEFT JOIN ref_rep_former_identities f ON f.tenant_id = r.tenant_id "
            "AND f.rep_id = r.rep_id WHERE r.tenant_id = :t AND r.rep_id = ANY(CAST(:r AS varchar[])) "
            "AND (r.deleted OR NOT r.active) AND r.merged_into IS NULL GROUP BY r.rep_id, r.updated_at "
            "UNION SELECT rep_id, left_at, returned_at FROM ref_rep_absences "
            "WHERE tenant_id = :t AND rep_id = ANY(CAST(:r AS varchar[]))",
            r=sorted(people),
        ):
            if row.returned_at is None:
                self.index.rep_left[row.rep_id] = row.left_at
            else:
                self.index.rep_absences.setdefault(row.rep_id, []).append(
                    Absence(row.rep_id, row.left_at, row.returned_at)
                )

    async def follow_aliases(self, rep_ids: set[str]) -> set[str]:
        """The canonical ids of ``rep_ids`` (aliases recorded in the index on the way)."""
        unknown = sorted(rep_ids - set(self.index.rep_aliases) - set(self.index.reps) - self.aliases_checked)
        self.aliases_checked.update(unknown)
        if unknown:
            for row in await self.rows(
                "SELECT rep_id, alias_of FROM ref_reps WHERE tenant_id = :t AND rep_id = ANY(CAST(:r AS varchar[])) "
                "AND alias_of IS NOT NULL",
                r=unknown,
            ):
                self.index.rep_aliases[row.rep_id] = row.alias_of
        return {self.index.canonical(r) for r in rep_ids}

    async def reps(self, rep_ids: set[str]) -> None:
        """Reps by id (explicit owners, deal owners, overriding reps, the people of aliases) and
        their memberships, under their canonical ids."""
        canonical = await self.follow_aliases(rep_ids)
        missing = sorted(canonical - set(self.index.reps))
        if missing:
            for row in await self.rows(
                "SELECT * FROM ref_reps WHERE tenant_id = :t AND rep_id = ANY(CAST(:r AS varchar[])) AND NOT deleted "
                "AND merged_into IS NULL",
                r=missing,
            ):
                self.index.put_rep(_rep(row))
        # Memberships are loaded for every id asked for, even one whose rep row has not arrived
        # yet: the team of an activity does not depend on the rep's name or addresses.
        await self.memberships(canonical)

    async def memberships(self, rep_ids: set[str]) -> None:
        wanted = rep_ids - self.memberships_loaded
        if not wanted:
            return
        self.memberships_loaded.update(wanted)
        aliases = {alias for alias, person in self.index.rep_aliases.items() if person in wanted}
        for row in await self.rows(
            "SELECT * FROM ref_team_memberships WHERE tenant_id = :t AND rep_id = ANY(CAST(:r AS varchar[])) AND NOT deleted "
            "ORDER BY valid_from, membership_id",
            r=sorted(wanted | aliases),
        ):
            self.index.add_membership(_membership(row))

    async def former_phones(self, identities: Iterable[str], earliest: datetime) -> None:
        """Contacts whose records listed a participant's phone until after the batch's earliest
        activity (``ref_contact_former_phones``), and their records: a live one as it is now, a
        deleted one with the account she was at then (her tombstone names none) and sharing the
        number with the same person's live record (``same_person``), one merged since as the
        contact it was merged into (the survivor is that person now). One query, and more
        when such a contact was not loaded yet."""
        formers = await self.rows(
            "SELECT phone, contact_id, until, account_id, shared_with FROM ref_contact_former_phones "
            "WHERE tenant_id = :t AND phone = ANY(CAST(:i AS varchar[])) AND until > :earliest",
            i=sorted(i for i in identities if i.startswith("+")),
            earliest=earliest,
        )
        if not formers:
            return
        held = await self.contacts_by_id(
            sorted({row.contact_id for row in formers} - set(self.index.contacts))
        )
        survivors: dict[str, str | None] = {}
        if merged := [c for c, row in held.items() if row.merged_into is not None and not row.deleted]:
            survivors = await _resolve_merges(self.conn, self.tenant_id, "contact", merged)
            held |= await self.contacts_by_id(
                sorted({s for s in survivors.values() if s} - set(self.index.contacts) - set(held))
            )
        holders = [(row, survivors.get(row.contact_id, row.contact_id)) for row in formers]
        for row, contact_id in holders:
            found = held.get(contact_id) if contact_id is not None else None
            if found is not None and found.merged_into is None and contact_id not in self.index.contacts:
                live = not found.deleted
                self.index.put_contact(
                    _contact(found) if live else Contact(found.contact_id, account_id=row.account_id)
                )
        for row, contact_id in holders:
            if contact_id is None:
                continue
            shared = set(row.shared_with)
            if (found := held.get(contact_id)) is not None and found.deleted:
                shared |= self.same_person(found, row.phone)
            self.index.add_former_phone(
                FormerPhone(row.phone, contact_id, row.until, row.account_id, tuple(sorted(shared)))
            )

    async def former_accounts(self, earliest: datetime) -> None:
        """The accounts the contacts found were at before a move after the batch's earliest
        activity (``ref_contact_former_accounts``): their account at each activity's time
        (``ReferenceIndex.account_at``). One query, none without contacts."""
        if not self.index.contacts:
            return
        for row in await self.rows(
            "SELECT contact_id, account_id, until FROM ref_contact_former_accounts "
            "WHERE tenant_id = :t AND contact_id = ANY(CAST(:c AS varchar[])) AND until > :earliest",
            c=sorted(self.index.contacts),
            earliest=earliest,
        ):
            self.index.add_former_account(FormerAccount(row.contact_id, row.account_id, row.until))

    def same_person(self, deleted: Any, phone: str) -> set[str]:
        """The live contacts listing ``phone`` now with an email of the ``deleted`` contact's last
        version: the same person under another record (a Salesforce Lead converted into a Contact
        without the Contact's id, deleted), who held the number with it, whichever arrived first."""
        emails = {e.lower() for e in deleted.emails}
        if not emails:
            return set()
        return {
            c.id
            for c in self.index.contacts.values()
            if c.id != deleted.contact_id and phone in c.phones and emails & {e.lower() for e in c.emails}
        }

    async def contacts_by_id(self, contact_ids: list[str]) -> dict[str, Any]:
        """The ``ref_contacts`` rows of ``contact_ids`` (deleted and merged ones too), by id."""
        if not contact_ids:
            return {}
        rows = await self.rows(
            "SELECT * FROM ref_contacts WHERE tenant_id = :t AND contact_id = ANY(CAST(:c AS varchar[]))",
            c=contact_ids,
        )
        return {row.contact_id: row for row in rows}

    async def contacts(self, identities: Iterable[str], explicit: set[str]) -> None:
        # Identities first, then contacts by key: as a join, a planner that has not yet seen the
        # contacts of a fresh CRM sync (no ANALYZE) walked every contact, probing the identity
        # index with the whole array for each: 100+ ms per batch at 1,200 contacts.
        for row in await self.rows(
            "SELECT * FROM ref_contacts WHERE tenant_id = :t AND contact_id = ANY(ARRAY("
            "SELECT contact_id FROM ref_contact_identities WHERE tenant_id = :t AND identity = ANY(CAST(:i AS varchar[])))) "
            "AND NOT deleted AND merged_into IS NULL",
            i=sorted(identities),
        ):
            self.index.put_contact(_contact(row))
        missing = sorted(explicit - set(self.index.contacts))
        if missing:
            for row in await self.rows(
                "SELECT * FROM ref_contacts WHERE tenant_id = :t AND contact_id = ANY(CAST(:c AS varchar[])) AND NOT deleted "
                "AND merged_into IS NULL",
                c=missing,
            ):
                self.index.put_contact(_contact(row))
        if self.index.contacts:
            for row in await self.rows(
                "SELECT contact_id, merged_into FROM ref_contacts WHERE tenant_id = :t "
                "AND merged_into = ANY(CAST(:c AS varchar[])) AND NOT deleted",
                c=sorted(self.index.contacts),
            ):
                self.absorbed[row.contact_id] = row.merged_into

    async def accounts(self, domains: Iterable[str], explicit: set[str]) -> None:
        """Accounts referenced, of the contacts found, and holding a participant's domain; one
        merged into another (its domains are kept for this) is put as merged, after its survivor
        at the end of its chain (``ReferenceIndex.put_merged_account``)."""
        account_ids = set(explicit) | {c.account_id for c in self.index.contacts.values() if c.account_id}
        # The accounts former holders of a participant's phone were at then (``account_at``).
        account_ids |= {
            f.account_id for held in self.index.former_phones.values() for f in held if f.account_id
        }
        # And the accounts contacts found were at before they moved (``account_at``).
        account_ids |= {m.account_id for moves in self.index.former_accounts.values() for m in moves}
        for row in await self.rows(
            "SELECT account_id FROM ref_account_domains WHERE tenant_id = :t AND domain = ANY(CAST(:d AS varchar[]))",
            d=sorted(domains),
        ):
            account_ids.add(row.account_id)
        if not account_ids:
            return
        found = await self.rows(
            "SELECT * FROM ref_accounts WHERE tenant_id = :t AND account_id = ANY(CAST(:a AS varchar[])) AND NOT deleted",
            a=sorted(account_ids),
        )
        merged = [row for row in found if row.merged_into is not None]
        for row in found:
            if row.merged_into is None:
                self.index.put_account(_account(row))
        if not merged:
            return
        survivors = await _resolve_merges(
            self.conn, self.tenant_id, "account", [row.account_id for row in merged]
        )
        if missing := sorted({s for s in survivors.values() if s is not None} - set(self.index.accounts)):
            for row in await self.rows(
                "SELECT * FROM ref_accounts WHERE tenant_id = :t AND account_id = ANY(CAST(:a AS varchar[])) AND NOT deleted "
                "AND merged_into IS NULL",
                a=missing,
            ):
                self.index.put_account(_account(row))
        for row in merged:
            self.index.put_merged_account(_account(row), survivors.get(row.account_id))

    async def threads(self, threads: Iterable[str]) -> None:
        if not threads:
            return
        for row in await self.rows(
            """
            SELECT ac.thread_id, ac.activity_id, ac.occurred_at, at.version, at.status, at.rep_id,
                   at.account_id, at.deal_id, at.secondary_deal_ids, at.confidence
            FROM activities ac
            -- Each member's attribution by its key (OFFSET 0: a probe of ``attributions_pkey`` a
            -- member). Joined plainly, the planner read the tenant's every attribution and hashed
            -- them for each batch (14,000 rows for 175 members; performance.md, eighteenth round).
            CROSS JOIN LATERAL (
                SELECT at.version, at.status, at.rep_id, at.account_id, at.deal_id, at.secondary_deal_ids,
                       at.confidence
                FROM attributions at WHERE at.tenant_id = ac.tenant_id AND at.activity_id = ac.activity_id
                OFFSET 0
            ) at
            WHERE ac.tenant_id = :t AND ac.thread_id = ANY(CAST(:th AS varchar[]))
            ORDER BY ac.thread_id, ac.occurred_at, ac.activity_id
            """,
            th=sorted(threads),
        ):
            self.index.thread_members[row.thread_id].append(_thread_member(row))

    async def overrides(self, activity_ids: Sequence[uuid.UUID]) -> None:
        for row in await self.rows(
            "SELECT * FROM attribution_overrides WHERE tenant_id = :t AND activity_id = ANY(:ids)",
            ids=list(activity_ids),
        ):
            self.index.overrides[row.activity_id] = _override(row)

    async def deals(self, explicit: set[str], earliest: datetime) -> None:
        """Deals of the accounts and contacts found, open or closed after ``earliest``; the explicit,
        thread and override deals whatever their state, so that the rules can refuse to let a reply
        flow into a deal closed long ago (an unknown deal would be inherited blindly)."""
        pinned = (
            explicit
            | {m.deal_id for members in self.index.thread_members.values() for m in members if m.deal_id}
            | {o.deal_id for o in self.index.overrides.values() if o.deal_id}
        )
        contact_ids = sorted(set(self.index.contacts) | set(self.absorbed))
        if not (self.index.accounts or pinned or contact_ids):
            return
        # The deals of an account merged into one found are the survivor's (``put_merged_account``).
        accounts = set(self.index.accounts) | {
            merged
            for merged in self.index.merged_accounts
            if self.index.survivor("account", merged) in self.index.accounts
        }
        found = await self.rows(
            """
            SELECT d.*, a.name AS account_name, a.relationship AS account_relationship FROM ref_deals d
            LEFT JOIN ref_accounts a ON a.tenant_id = d.tenant_id AND a.account_id = d.account_id
            WHERE d.tenant_id = :t AND NOT d.deleted AND d.merged_into IS NULL AND (
                d.deal_id = ANY(CAST(:d AS varchar[]))
                OR ((d.closed_at IS NULL OR d.closed_at >= :earliest) AND (
                    d.account_id = ANY(CAST(:a AS varchar[]))
                    OR d.deal_id IN (SELECT deal_id FROM ref_deal_contacts
                                     WHERE tenant_id = :t AND contact_id = ANY(CAST(:c AS varchar[]))))))
            """,
            a=sorted(accounts),
            d=sorted(pinned),
            c=contact_ids,
            earliest=earliest,
        )
        # The owners of deals whose owner changed, by time (``ReferenceIndex.deal_at``).
        owned = await self.rows(
            "SELECT deal_id, owner_rep_id, since FROM ref_deal_owners WHERE tenant_id = :t AND deal_id = ANY(CAST(:d AS varchar[])) "
            "ORDER BY deal_id, since",
            d=sorted({row.deal_id for row in found}),
        )
        # The names of deals renamed, by time (``ReferenceIndex.deal_at``; rules 2026.12.42), and
        # those of the deals merged into them (rules 2026.12.44).
        renamed = await self.rows(_DEAL_NAMES, d=sorted({row.deal_id for row in found}))
        # Owners are filed under their person, and the survivors of the accounts merged since the
        # deals named them recorded, before the deals are indexed.
        await self.follow_aliases({row.owner_rep_id for row in (*found, *owned) if row.owner_rep_id})
        await self.account_survivors({row.account_id for row in found if row.account_id})
        for row in found:
            self.index.put_deal(deal_from_row(row, self.absorbed))
        for row in owned:
            self.index.add_deal_owner(DealOwnership(row.deal_id, row.owner_rep_id, row.since))
        for row in renamed:
            if row.survivor is None:
                self.index.add_deal_former_name(DealFormerName(row.deal_id, row.name, row.until))
            else:
                self.index.add_deal_merged_name(
                    row.survivor, DealFormerName(row.deal_id, row.name, row.until)
                )

    async def account_survivors(self, account_ids: set[str]) -> None:
        """Record the survivors of the merged ones among ``account_ids`` not yet known (a pinned
        deal's or a contact's deal's account that no participant points at): their deals count
        on the survivor's account. One query, none when all are known."""
        known = self.index.accounts.keys() | self.index.merged_accounts.keys()
        unknown = {a for a in account_ids if a not in known and ("account", a) not in self.index.survivors}
        if not unknown:
            return
        for account_id, survivor in (
            await _resolve_merges(self.conn, self.tenant_id, "account", unknown)
        ).items():
            self.index.survivors[("account", account_id)] = survivor


#: The names of the deals ``:d``, and of the deals merged into them (chains followed), from the
#: versions seen (``ref_deal_names``): each name until the first version seen with the next one
#: (``survivor`` NULL), or, for a merged deal (``survivor`` the deal of ``:d`` it ended in), each
#: of its names until the next one and its last until its merge. A deal never renamed nor merged
#: into has no row.
_DEAL_NAMES = """
WITH RECURSIVE merged AS (
    SELECT deal_id, merged_into AS survivor, updated_at AS merged_at FROM ref_deals
    WHERE tenant_id = :t AND merged_into = ANY(CAST(:d AS varchar[])) AND NOT deleted
    UNION
    SELECT r.deal_id, m.survivor, r.updated_at FROM ref_deals r JOIN merged m ON r.merged_into = m.deal_id
    WHERE r.tenant_id = :t AND NOT r.deleted
), deals AS (
    SELECT d AS deal_id, NULL::text AS survivor, NULL::timestamptz AS merged_at
    FROM unnest(CAST(:d AS varchar[])) AS d
    UNION ALL SELECT deal_id, survivor, merged_at FROM merged
), seen AS (
    SELECT n.deal_id, x.survivor, n.name, x.merged_at,
           lead(n.name) OVER w AS next_name, lead(n.seen) OVER w AS next_seen
    FROM ref_deal_names n JOIN deals x ON x.deal_id = n.deal_id
    WHERE n.tenant_id = :t AND n.deal_id = ANY(CAST(:d AS varchar[]) || ARRAY(SELECT deal_id FROM merged))
    WINDOW w AS (PARTITION BY n.deal_id ORDER BY n.seen)
)
SELECT deal_id, survivor, name, coalesce(next_seen, merged_at) AS until FROM seen
WHERE next_name <> name OR (next_name IS NULL AND survivor IS NOT NULL)
ORDER BY deal_id, until
"""


async def load_reference_index(
    conn: AsyncConnection,
    tenant_id: str,
    activities: Sequence[IngestedEvent],
    grace_days_after_closed: int,
    tenant_settings: TenantSettings | None = None,
) -> ReferenceIndex:
    """The reference data every activity of the batch may point at, as one typed index."""
    loader = _Loader(conn, tenant_id)
    if not activities:
        return loader.index
    settings = tenant_settings if tenant_settings is not None else await load_tenant_settings(conn, tenant_id)
    loader.index.mapped_addresses = mapped_addresses(settings.rep_aliases)
    loader.index.identity_reps = settings.rep_aliases
    wanted = _wanted(activities, loader.index)
    explicit = await loader.resolve_explicit(wanted.explicit)
    await loader.internal_domains(settings)
    await loader.reps_by_identity(wanted.identities)
    await loader.reps_by_name(wanted.identities)
    await loader.reps(explicit["rep"])
    await loader.contacts(wanted.identities, explicit["contact"])
    await loader.former_phones(wanted.identities, wanted.earliest)
    await loader.former_accounts(wanted.earliest)
    await loader.accounts(wanted.domains - loader.index.internal_domains, explicit["account"])
    await loader.threads(wanted.threads)
    await loader.overrides(wanted.activity_ids)
    await loader.deals(explicit["deal"], wanted.earliest - timedelta(days=grace_days_after_closed))
    owners = {d.owner_rep_id for d in loader.index.deals.values() if d.owner_rep_id} | {
        o.owner_rep_id for held in loader.index.deal_owners.values() for o in held if o.owner_rep_id
    }
    overriding = {o.rep_id for o in loader.index.overrides.values() if o.rep_id}
    await loader.reps(owners | overriding)
    return loader.index
