"""PostgreSQL access for attribution: reference data, stored activities and attribution versions.

Every statement is scoped by tenant. Reference data is last-writer-wins by ``updated_at``:
an older version delivered late changes nothing; a version under the same ``updated_at`` whose
content differs replaces what we hold (an integrator correcting a record without touching its
``updated_at``: the last received wins), and an identical re-send changes nothing.
"""

from __future__ import annotations

import logging
import operator
import uuid
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any, cast

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from libs.common.contracts.activities import ActivityKind, ResponseStatus
from libs.common.contracts.activities_fast import IngestedEvent, decode_ingested, encode_ingested
from libs.common.contracts.attribution_fast import Attributed, encode_attributed
from libs.common.contracts.commands import AttributionOverriddenV1
from libs.common.contracts.crm import (
    PHONE_REREAD_SOURCE,
    AccountV1,
    ContactV1,
    CrmEntity,
    CrmEntityChangedV1,
    DealV1,
    RepV1,
    TeamMembershipV1,
    TeamV1,
)
from libs.common.db.array_codecs import Utf8Texts
from libs.common.db.arrays import text_array_literal
from libs.common.db.references import HELD_REP_COLUMNS, held_contact, held_rep
from libs.common.db.statements import insert_unless_duplicate, statement
from libs.common.jobs import REMATCH, REMATCH_JOBS_KEPT, queue_job
from libs.common.personal_domains import held_address, linking_keys, mailbox_forms, parent_domains
from services.attribution.adapters.reference_loader import (
    deal_from_row,
    load_tenant_settings,
    tenant_internal_domains,
)
from services.attribution.domain.attendance import Removal
from services.attribution.domain.duplicates import SourceReport, counterparts, subject_key
from services.attribution.domain.matching import local_day
from services.attribution.domain.memberships import (
    MembershipVersion,
    former_spell,
    former_spell_id,
    starts_after_spells,
)
from services.attribution.domain.phone_rereads import reread_of, supersedes
from services.attribution.domain.reference import Deal
from services.attribution.domain.rematch import (
    DEFAULT_REMATCH_WINDOW_DAYS,
    RematchWindow,
    day_start,
    narrowing_domains,
)
from services.attribution.domain.reps import (
    RepRecord,
    absences_on_return,
    departure_marker,
    is_rename,
    mapped_addresses,
    name_aliases,
    resolve_rep_aliases,
)
from services.attribution.domain.source_deals import (
    SourceDeals,
    decode_source_deals,
    encode_source_deals,
    record_sighting,
    tracks_source_deals,
    with_source_deals,
)
from services.attribution.telemetry import PHONE_REREADS_DROPPED

log = logging.getLogger(__name__)


@dataclass
class ChangedReferences:
    """What a batch of CRM changes touched, to find the activities worth re-matching."""

    #: Emails and phones of reps and contacts that were added, changed or removed.
    identities: set[str] = field(default_factory=set)
    #: Emails and phones a rep holds that it did not before: an activity decided without its rep
    #: (the rep's record came later, as when a CRM load and the first activities race) gets it.
    rep_identities: set[str] = field(default_factory=set)
    #: Emails and phones a contact holds that it did not before (a new contact, an address or
    #: number added): the activities of the last 400 days with a participant holding one are
    #: re-decided, attributed ones included (``rematch.identity_rematch_window``).
    contact_identities: set[str] = field(default_factory=set)
    #: Account domains that were added or removed.
    domains: set[str] = field(default_factory=set)
    #: Domains an account gained under another domain an account holds (a subsidiary's
    #: ``eu.buyer.example`` under ``buyer.example``): their mail is re-decided, parked or not.
    narrowing_domains: set[str] = field(default_factory=set)
    #: Accounts whose deals or contacts changed.
    account_ids: set[str] = field(default_factory=set)
    #: Contacts whose deal roles changed.
    contact_ids: set[str] = field(default_factory=set)
    #: Deals and accounts deleted or merged: whatever points at them is re-matched, parked or not.
    gone_deal_ids: set[str] = field(default_factory=set)
    gone_account_ids: set[str] = field(default_factory=set)
    #: Accounts that became or stopped being a partner (``relationship``): the activities on their
    #: deals, or beside them, are re-decided, parked or not (a partner's deal yields; rules 2026.12.28).
    partner_changed: set[str] = field(default_factory=set)
    #: Rep -> earliest day whose team may have changed (membership added, moved or removed).
    rep_team_since: dict[str, date] = field(default_factory=dict)
    #: Deals written, as (what we held before or ``None``, what we hold now): a new or reopened
    #: deal, a new role, another account or other dates may be a better candidate.
    deal_changes: list[tuple[Deal | None, Deal]] = field(default_factory=list)
    #: Rep ids whose person changed (became or stopped being an alias, or a new canonical):
    #: their history is re-credited.
    people_changed: set[str] = field(default_factory=set)
    #: Emails and phones of a rep who came back (reactivated) -> when: what they took part in
    #: from then on may be hers again; what happened while she was away stays as it was.
    returned_identities: dict[str, datetime] = field(default_factory=dict)
    #: Mailbox names (local parts) of such a rep's name (``domain.reps.name_aliases``) -> when:
    #: an address no source lists that follows her name may be hers again from then on too.
    returned_mailboxes: dict[str, datetime] = field(default_factory=dict)

    def empty(self) -> bool:
        return not (
            self.identities
            or self.rep_identities
            or self.contact_identities
            or self.domains
            or self.narrowing_domains
            or self.account_ids
            or self.contact_ids
            or self.gone_deal_ids
            or self.gone_account_ids
            or self.partner_changed
            or self.rep_team_since
            or self.deal_changes
            or self.people_changed
            or self.returned_identities
            or self.returned_mailboxes
        )

    def team_changed(self, rep_id: str, since: date) -> None:
        current = self.rep_team_since.get(rep_id)
        self.rep_team_since[rep_id] = since if current is None else min(current, since)


#: The rep upsert (last writer wins); it returns the state of the version held before it, or
#: ``NULL`` when none was: ``live``, ``away`` (deleted or deactivated), ``merged``. The ``held``
#: CTE reads the statement's snapshot, taken before the row is written.
_UPSERT_REP = """
    WITH held AS (
        SELECT CASE WHEN merged_into IS NOT NULL THEN 'merged' WHEN deleted OR NOT active THEN 'away'
                    ELSE 'live' END AS state, name
        FROM ref_reps WHERE tenant_id = :t AND rep_id = :id
    )
    INSERT INTO ref_reps (tenant_id, rep_id, name, emails, phones, raw_phones, phone_extensions,
                          active, manager_id, role, updated_at, deleted, merged_into, source, mailboxes,
                          unread_phones)
    VALUES (:t, :id, :name, :emails, :phones, :raw, :ext, :active, :manager, :role, :u, :d, :m, :src,
            :mailboxes, :unread)
    ON CONFLICT (tenant_id, rep_id) DO UPDATE SET name = EXCLUDED.name, emails = EXCLUDED.emails,
        mailboxes = CASE WHEN EXCLUDED.deleted AND cardinality(EXCLUDED.emails) = 0 THEN ref_reps.mailboxes
                         ELSE EXCLUDED.mailboxes END,
        phones = EXCLUDED.phones, raw_phones = EXCLUDED.raw_phones,
        phone_extensions = EXCLUDED.phone_extensions, active = EXCLUDED.active,
        manager_id = EXCLUDED.manager_id, role = EXCLUDED.role, updated_at = EXCLUDED.updated_at,
        deleted = EXCLUDED.deleted, merged_into = EXCLUDED.merged_into,
        -- A phone re-read (``reread_phones``) is the version held read again: its source stays.
        source = CASE WHEN EXCLUDED.source = :reread THEN ref_reps.source ELSE EXCLUDED.source END,
        unread_phones = EXCLUDED.unread_phones
    WHERE ref_reps.updated_at < EXCLUDED.updated_at
       OR (ref_reps.updated_at = EXCLUDED.updated_at
           AND ((ref_reps.name, ref_reps.emails, ref_reps.phones, ref_reps.raw_phones,
                 ref_reps.phone_extensions, ref_reps.active, ref_reps.manager_id, ref_reps.role,
                 ref_reps.deleted, ref_reps.merged_into, ref_reps.unread_phones)
                IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.emails, EXCLUDED.phones, EXCLUDED.raw_phones,
                 EXCLUDED.phone_extensions, EXCLUDED.active, EXCLUDED.manager_id, EXCLUDED.role,
                 EXCLUDED.deleted, EXCLUDED.merged_into, EXCLUDED.unread_phones)
                OR (EXCLUDED.source <> :reread AND ref_reps.source IS DISTINCT FROM EXCLUDED.source)))
    RETURNING rep_id, (SELECT state FROM held) AS held_state, (SELECT name FROM held) AS held_name
"""


async def _upsert(conn: AsyncConnection, sql: str, params: dict[str, Any]) -> bool:
    """Run one last-writer-wins upsert; whether a row was written (newer than what we held)."""
    return (await conn.execute(text(sql), params)).first() is not None


async def _apply_rep(
    conn: AsyncConnection, t: str, e: RepV1, changed: ChangedReferences, source: str = ""
) -> bool:
    # A departure (a tombstone, or the CRM deactivating her: ``active: false``) keeps what the rep
    # held (``_keep_departed``): whether she was live and active before it. A rep first received
    # inactive (a HubSpot archived owner) held what she lists until then. A rep live and active
    # again after a departure came back (``_keep_absence``).
    leaves = (e.deleted or not e.active) and not e.merged_into
    upserted = (
        await conn.execute(
            text(_UPSERT_REP),
            {
                **_common(t, e),
                "name": e.name,
                "emails": list(e.emails),
                "mailboxes": linking_keys(e.emails),
                "phones": list(e.phones),
                "raw": list(e.raw_phones),
                "ext": list(e.phone_extensions),
                "unread": list(e.unread_phones),
                "active": e.active,
                "manager": e.manager_id,
                "role": e.role,
                "m": e.merged_into,
                "src": source,
                "reread": PHONE_REREAD_SOURCE,
            },
        )
    ).first()
    written = upserted is not None
    if upserted is not None:
        held_state = upserted.held_state
        was_live = leaves and (held_state == "live" if held_state is not None else not e.deleted)
        if held_state == "away" and not (leaves or e.merged_into):
            await _keep_absence(conn, t, e, changed)
        listed = sorted({*(held_address(m) for m in e.emails), *e.phones})
        # A rep who left (deleted or inactive) or was merged names nobody by her emails and phones
        # any more: what she did before she left stays hers through ``ref_rep_former_identities``.
        identities = [] if (leaves or e.merged_into) else listed
        held = await conn.execute(
            text("SELECT identity FROM ref_rep_identities WHERE tenant_id = :t AND rep_id = :id"),
            {"t": t, "id": e.id},
        )
        held_identities = {row.identity for row in held}
        changed.rep_identities.update(set(identities) - held_identities - changed.returned_identities.keys())
        dropped = held_identities - set(identities)
        if was_live:
            dropped |= set(listed)
            # A departure synced late: what was credited to her since (a buyer's mail to her
            # address) is re-decided; what came before stays hers. From the day before, so that
            # the tenant's midnight of that day (``day_start``) is never after she left.
            changed.team_changed(e.id, (e.updated_at - timedelta(days=1)).date())
        added = set(identities) - held_identities
        dropped, renamed = _read_dropped(e, upserted.held_name, added, dropped, changed)
        await _keep_former_identities(conn, t, e, dropped, identities, was_live, renamed)
        await _replace_children(
            conn,
            "ref_rep_identities",
            "rep_id",
            t,
            [e.id],
            {"identity": identities, "rep_id": [e.id] * len(identities)},
        )
        changed.identities.update([*e.emails, *e.phones])
        await _redecide_shared_drops(conn, t, e.id, dropped, changed)
        await resolve_people(conn, t, e.id, changed)
    return written


async def _redecide_shared_drops(
    conn: AsyncConnection, t: str, rep_id: str, dropped: set[str], changed: ChangedReferences
) -> None:
    """An address she dropped that another rep lists now (the versions of one sync read in any
    order: Kim's listing ``support@`` again before Bo's dropping it): its mail decided while both
    listed it named no one, and is decided again now that one holds it."""
    emails = sorted(i for i in dropped if "@" in i)
    if not emails:
        return
    rows = await conn.execute(
        text(
            "SELECT DISTINCT identity FROM ref_rep_identities WHERE tenant_id = :t "
            "AND identity = ANY(:i) AND rep_id <> :id"
        ),
        {"t": t, "i": emails, "id": rep_id},
    )
    changed.rep_identities.update(row.identity for row in rows)


def _read_dropped(
    e: RepV1, held_name: str | None, added: set[str], dropped: set[str], changed: ChangedReferences
) -> tuple[set[str], bool]:
    """The identities a live rep's version dropped that stay hers (``ref_rep_former_identities``),
    and whether they are a rename. A new address in place of a dropped one is a rename
    (``_RENAMED_FROM``) when the source says so (``email_change``) or her name changed too, else a
    correction that keeps her history but links nobody (``domain.reps.is_rename``). Sent as a
    ``correction``, the addresses dropped were never hers: none stays hers, and what they took
    part in is re-decided (rules 2026.12.40)."""
    if e.email_change == "correction" and e.active and not (e.deleted or e.merged_into):
        wrong = {i for i in dropped if "@" in i}
        changed.rep_identities.update(wrong)
        return dropped - wrong, False
    return dropped, any("@" in i for i in added) and is_rename(e.email_change, held_name, e.name)


async def _keep_absence(conn: AsyncConnection, t: str, e: RepV1, changed: ChangedReferences) -> None:
    """A rep who left comes back (live and active again from ``e.updated_at``): each email and
    phone she held when she left (her ``ref_rep_former_identities``, ``until`` = when she left)
    did not name her in between (``ref_rep_absences``, ``domain.reps.absences_on_return``), so a
    re-match leaves what happened while she was away as it was decided then. What her addresses
    took part in since her return is re-decided (a return synced late)."""
    held = {
        row.identity: row.until
        for row in await conn.execute(
            text(
                "SELECT identity, until FROM ref_rep_former_identities WHERE tenant_id = :t AND rep_id = :id "
                "ORDER BY until"  # her latest holding of each
            ),
            {"t": t, "id": e.id},
        )
    }
    listed = {*(held_address(m) for m in e.emails), *e.phones}
    gaps = absences_on_return(e.id, held, e.updated_at, sorted(listed))
    if gaps:
        await conn.execute(
            text(
                "INSERT INTO ref_rep_absences (tenant_id, identity, rep_id, left_at, returned_at) "
                "SELECT :t, g.identity, :id, g.left_at, :r "
                "FROM unnest(CAST(:identities AS text[]), CAST(:left AS timestamptz[])) AS g(identity, left_at) "
                "ON CONFLICT (tenant_id, identity, rep_id, left_at) DO UPDATE SET returned_at = EXCLUDED.returned_at"
            ),
            {
                "t": t,
                "id": e.id,
                "r": e.updated_at,
                "identities": list(gaps),
                "left": [gap.left_at for gap in gaps.values()],
            },
        )
    for identity in gaps.keys() & listed:
        changed.returned_identities[identity] = e.updated_at
    if gaps:
        # The addresses that name her though no source lists them (the tenant's mapping, her
        # name's mailboxes) are hers again from her return too (``ReferenceIndex.active_at``).
        settings = await load_tenant_settings(conn, t)
        for address, rep_id in mapped_addresses(settings.rep_aliases).items():
            if rep_id == e.id:
                changed.returned_identities.setdefault(address, e.updated_at)
        for mailbox in name_aliases(e.name):
            changed.returned_mailboxes[mailbox] = e.updated_at


async def _keep_former_identities(
    conn: AsyncConnection,
    t: str,
    e: RepV1,
    dropped: set[str],
    held_now: list[str],
    was_live: bool = False,
    renamed: bool = False,
) -> None:
    """Addresses the rep's new version no longer lists stay the rep's (``ref_rep_former_identities``)
    for mail from them that arrives or is re-matched later; an address it lists again is current
    again. A rep merged takes its former addresses with it (the survivor takes over); a rep
    deleted or deactivated keeps every address she held, phones included, for what happened
    before she left (``_keep_departed``). An address another rep of her person lists (her HubSpot
    owner not yet synced with her new name, re-sent) stays her former one, so the rename still
    links them (rules 2026.12.38; before, any re-send of the lagging source deleted it, and her
    history went to the other id and back)."""
    if e.merged_into:
        await conn.execute(
            text("DELETE FROM ref_rep_former_identities WHERE tenant_id = :t AND rep_id = :id"),
            {"t": t, "id": e.id},
        )
        return
    if e.deleted or not e.active:
        if was_live:
            await _keep_departed(conn, t, e, dropped)
        return
    if held_now:
        # An address she lists again is hers now, not a former one; unless another rep held it
        # after her (Kim's, Bo's, Kim's again): her first spell stays hers (rules 2026.12.43).
        # Another person listing it still counts (his version dropping it not read yet: the
        # versions of one sync arrive in any order).
        await conn.execute(
            text(
                "DELETE FROM ref_rep_former_identities f WHERE f.tenant_id = :t AND f.rep_id = :id "
                "AND f.identity = ANY(:emails) AND NOT EXISTS (SELECT 1 FROM ref_rep_former_identities o "
                "WHERE o.tenant_id = :t AND o.identity = f.identity AND o.until > f.until AND o.rep_id <> :id) "
                "AND NOT EXISTS (SELECT 1 FROM ref_rep_identities i JOIN ref_reps r ON r.tenant_id = i.tenant_id "
                "AND r.rep_id = i.rep_id JOIN ref_reps me ON me.tenant_id = i.tenant_id AND me.rep_id = :id "
                "WHERE i.tenant_id = :t AND i.identity = f.identity AND i.rep_id <> :id AND NOT r.deleted "
                "AND r.merged_into IS NULL AND coalesce(r.alias_of, r.rep_id) <> coalesce(me.alias_of, me.rep_id))"
            ),
            {"t": t, "id": e.id, "emails": held_now},
        )
        # An address re-issued to someone else stays its former holder's for what happened
        # before she dropped it (``ReferenceIndex.departed``; rules 2026.12.40: before, an active
        # former holder lost it, and her history went to the new holder). A renamed rep's links
        # her person while another id of her person, or a rep of a source that holds no record of
        # her person yet (hers, not synced with her new name), lists it; re-issued by her own
        # source, or by one holding her under another record, it links nobody any more.
        await conn.execute(
            text(
                "UPDATE ref_rep_former_identities f SET renamed = false WHERE f.tenant_id = :t "
                "AND f.identity = ANY(:emails) AND f.renamed "
                "AND (NOT EXISTS (SELECT 1 FROM ref_reps r WHERE r.tenant_id = :t "
                "AND r.rep_id = f.rep_id AND (((r.deleted OR NOT r.active) AND r.merged_into IS NULL) "
                "OR EXISTS (SELECT 1 FROM ref_reps me WHERE me.tenant_id = :t AND me.rep_id = :id "
                "AND (coalesce(me.alias_of, me.rep_id) = coalesce(r.alias_of, r.rep_id) "
                "OR (f.renamed AND lower(me.source) <> lower(r.source) AND NOT EXISTS (SELECT 1 FROM ref_reps o "
                "WHERE o.tenant_id = :t AND o.rep_id <> me.rep_id AND NOT o.deleted AND o.merged_into IS NULL "
                "AND lower(o.source) = lower(me.source) "
                "AND coalesce(o.alias_of, o.rep_id) = coalesce(r.alias_of, r.rep_id))))))))"
            ),
            {"t": t, "id": e.id, "emails": held_now},
        )
    emails = sorted(i for i in dropped if "@" in i)
    if emails:
        await _hold_former(conn, t, e, emails, renamed)


async def _hold_former(
    conn: AsyncConnection, t: str, e: RepV1, identities: Sequence[str], renamed: bool = False
) -> None:
    """``identities`` were ``e``'s until ``e.updated_at``, each holding kept beside the other
    holders' (rules 2026.12.43: before, the latest holder's replaced the earlier ones'); ``renamed``:
    replaced by a new address on her record (``_RENAMED_FROM``)."""
    await conn.execute(
        text(
            "INSERT INTO ref_rep_former_identities (tenant_id, identity, rep_id, until, renamed) "
            "SELECT :t, e, :id, :u, :renamed FROM unnest(CAST(:emails AS text[])) e "
            "ON CONFLICT (tenant_id, identity, until) DO UPDATE SET rep_id = EXCLUDED.rep_id, "
            "renamed = EXCLUDED.renamed"
        ),
        {"t": t, "id": e.id, "u": e.updated_at, "emails": list(identities), "renamed": renamed},
    )


async def _keep_departed(conn: AsyncConnection, t: str, e: RepV1, held: set[str]) -> None:
    """A rep deleted or deactivated (not merged) leaves on ``e.updated_at``: the emails and phones she held, and
    her former addresses, stay hers for activities before then (``ReferenceIndex.departed``).
    An identity another live rep holds too (the same person from another source) is left to
    that rep. Only the departure itself counts: a tombstone or an inactive version re-sent later
    moves nothing."""
    others = {
        row.identity
        for row in await conn.execute(
            text(
                "SELECT identity FROM ref_rep_identities WHERE tenant_id = :t AND identity = ANY(:i) "
                "AND rep_id <> :id"
            ),
            {"t": t, "i": sorted(held), "id": e.id},
        )
    }
    await conn.execute(
        # Her holdings no other rep's followed: an address she dropped that named her since (late
        # mail from an old address) names her until she left. One re-issued since, whether its
        # new holder dropped it too or lists it now, keeps her spell: before, one another rep
        # lists was stretched over his holding, and his mail went to her.
        text(
            "UPDATE ref_rep_former_identities f SET until = :u WHERE f.tenant_id = :t AND f.rep_id = :id "
            "AND NOT EXISTS (SELECT 1 FROM ref_rep_former_identities o WHERE o.tenant_id = :t "
            "AND o.identity = f.identity AND o.until >= f.until AND o.rep_id <> :id) "
            "AND NOT EXISTS (SELECT 1 FROM ref_rep_identities i WHERE i.tenant_id = :t "
            "AND i.identity = f.identity AND i.rep_id <> :id)"
        ),
        {"t": t, "id": e.id, "u": e.updated_at},
    )
    # Held nothing of her own: her departure is kept all the same (``departure_marker``), so
    # her return records her gap (rules 2026.12.18; before, no gap, and an address mapped to her
    # or her name's mailbox named her while she was away).
    kept = sorted(held - others) or [departure_marker(e.id)]
    await _hold_former(conn, t, e, kept)


#: The addresses an active rep's record replaced (a new name: ``gia.moreno@`` in place of
#: ``gia.lopez@``; ``ref_rep_former_identities.renamed``) still link her person: the source that
#: has not synced the new name yet is still hers (rules 2026.12.35; before, the person split until
#: every source sent the new address, and her history went to the other source's id and back).
#: An address only removed from her record (a correction: ``sales@`` taken off Ana's) links
#: nobody, nor does one another rep of her own source lists (a shared inbox), nor any once she left
#: (rules 2026.12.38; before, every address an active rep ever dropped linked her for good).
_RENAMED_FROM = """(CASE WHEN active THEN ARRAY(SELECT f.identity FROM ref_rep_former_identities f
    WHERE f.tenant_id = ref_reps.tenant_id AND f.rep_id = ref_reps.rep_id AND f.renamed
    AND f.identity LIKE '%@%' AND NOT EXISTS (SELECT 1 FROM ref_reps o WHERE o.tenant_id = ref_reps.tenant_id
        AND o.source = ref_reps.source AND o.rep_id <> ref_reps.rep_id AND o.merged_into IS NULL
        AND o.mailboxes @> ARRAY[f.identity])
    ORDER BY f.identity) ELSE CAST(ARRAY[] AS text[]) END)"""


async def resolve_people(conn: AsyncConnection, t: str, rep_id: str, changed: ChangedReferences) -> None:
    """Re-resolve the person ``rep_id`` belongs to: every live rep linked to it by a shared
    verified email or the tenant's ``rep_aliases`` mapping, then ``alias_of`` of each set by
    ``domain.reps.resolve_rep_aliases``. Reps whose person changed are re-credited; the aliases
    of a rep that was deleted or merged by its CRM find a new person among themselves."""
    # Validated by the TenantSettings contract (a bad stored one fails as TenantSettingsInvalid).
    mapping = dict((await load_tenant_settings(conn, t)).rep_aliases)
    records: dict[str, Any] = {}
    frontier = {rep_id} | _mapped(mapping, {rep_id})
    # A mapped address links the reps that list it (``resolve_rep_aliases``). Reps are found by
    # ``ref_reps.mailboxes``, written by the same ``linking_keys`` (case, Unicode form, Gmail's dots
    # and ``+tags`` aside), so the reps found do not depend on the order they arrived in.
    emails = set(_keys(i for i in frontier if "@" in i))
    for _ in range(_MAX_PERSON_HOPS):
        rows = await conn.execute(
            text(
                f"SELECT rep_id, source, emails || {_RENAMED_FROM} AS emails, alias_of FROM ref_reps "
                "WHERE tenant_id = :t AND NOT deleted "
                "AND merged_into IS NULL AND (rep_id = ANY(:ids) OR alias_of = ANY(:ids) "
                "OR mailboxes && CAST(:emails AS text[]) "
                "OR (active AND rep_id IN (SELECT f.rep_id FROM ref_rep_former_identities f "
                "WHERE f.tenant_id = :t AND f.renamed AND f.identity = ANY(:emails))))"
            ),
            {"t": t, "ids": sorted(frontier), "emails": sorted(emails)},
        )
        fresh = [row for row in rows if row.rep_id not in records]
        if not fresh:
            break
        records.update((row.rep_id, row) for row in fresh)
        listed = {m.lower() for row in fresh for m in row.emails}
        found = {row.rep_id for row in fresh}
        # The person a rep found was an alias of too: she is re-resolved with it.
        persons = {row.alias_of for row in fresh if row.alias_of is not None}
        frontier = (
            found
            | persons
            | _mapped(mapping, found)
            | {t for a, t in mapped_addresses(mapping).items() if a in listed}
        )
        # A mailbox's other spellings (``dan+hubspot@`` is ``dan@``'s) link too (``linking_keys``).
        emails |= set(_keys(listed | {i for i in frontier if "@" in i}))
    people = [RepRecord(r.rep_id, r.source, tuple(r.emails)) for r in records.values()]
    aliases = resolve_rep_aliases([*people, *await _left_holding(conn, t, emails)], mapping)
    moved = {r.rep_id for r in records.values() if aliases.get(r.rep_id) != r.alias_of}
    if not moved:
        return
    await conn.execute(
        text(
            "UPDATE ref_reps SET alias_of = m.alias_of FROM unnest(CAST(:ids AS text[]), CAST(:to AS text[])) "
            "AS m(rep_id, alias_of) WHERE ref_reps.tenant_id = :t AND ref_reps.rep_id = m.rep_id"
        ),
        {"t": t, "ids": sorted(moved), "to": [aliases.get(r) for r in sorted(moved)]},
    )
    # The persons they leave too: an alias that stops being one (a mapping removed) takes its
    # history back from the rep it was credited to.
    left = {alias_of for r in moved if (alias_of := records[r].alias_of) is not None}
    changed.people_changed.update({rep_id} | moved | {aliases[r] for r in moved if r in aliases} | left)


def _keys(addresses: Iterable[str]) -> list[str]:
    """An address's ``linking_keys`` and its lower-cased spelling (``ref_rep_former_identities``)."""
    listed = list(addresses)
    return sorted({*linking_keys(listed), *(a.strip().lower() for a in listed)})


async def _left_holding(conn: AsyncConnection, t: str, keys: set[str]) -> list[RepRecord]:
    """The reps deleted by their source that held one of ``keys`` (listed, or kept as theirs when
    they left; a tombstone listing none keeps the ``mailboxes`` of the version before it): their
    addresses count in the one-source check of a mailbox, so a leaver's address
    on his successor's record links nobody once he is deleted too (rules 2026.12.38; before, a
    deleted leaver was not read, and his HubSpot owner became his successor's alias)."""
    rows = await conn.execute(
        text(
            "SELECT rep_id, source, emails || mailboxes || ARRAY(SELECT f.identity FROM ref_rep_former_identities f "
            "WHERE f.tenant_id = ref_reps.tenant_id AND f.rep_id = ref_reps.rep_id AND f.identity LIKE '%@%' "
            "ORDER BY f.identity) AS emails FROM ref_reps WHERE tenant_id = :t AND deleted AND merged_into IS NULL "
            "AND (mailboxes && CAST(:keys AS text[]) OR rep_id IN (SELECT f.rep_id FROM ref_rep_former_identities f "
            "WHERE f.tenant_id = :t AND f.identity = ANY(:keys)))"
        ),
        {"t": t, "keys": sorted(keys)},
    )
    return [RepRecord(r.rep_id, r.source, tuple(r.emails), left=True) for r in rows]


#: Columns written for each entity type (after ``tenant_id``), the first being the key, with the
#: SQL type of each; ``text[]`` columns travel as one array literal per row (arrays of arrays must
#: be rectangular: ``libs.common.db.arrays``). Every column is replaced when the incoming version
#: is newer.
_COLUMNS: dict[str, dict[str, str]] = {
    "ref_teams": {
        "team_id": "text",
        "name": "text",
        "parent_id": "text",
        "updated_at": "timestamptz",
        "deleted": "boolean",
    },
    "ref_team_memberships": {
        "membership_id": "text",
        "rep_id": "text",
        "team_id": "text",
        "valid_from": "date",
        "valid_to": "date",
        "updated_at": "timestamptz",
        "deleted": "boolean",
    },
    "ref_accounts": {
        "account_id": "text",
        "name": "text",
        "domains": "text[]",
        "country": "text",
        "account_type": "text",
        "relationship": "text",
        "updated_at": "timestamptz",
        "deleted": "boolean",
        "merged_into": "text",
    },
    "ref_contacts": {
        "contact_id": "text",
        "name": "text",
        "emails": "text[]",
        "phones": "text[]",
        "raw_phones": "text[]",
        "phone_extensions": "text[]",
        "unread_phones": "text[]",
        "account_id": "text",
        "country": "text",
        "updated_at": "timestamptz",
        "deleted": "boolean",
        "merged_into": "text",
    },
    "ref_deals": {
        "deal_id": "text",
        "name": "text",
        "account_id": "text",
        "owner_rep_id": "text",
        "stage": "text",
        "amount": "numeric",
        "is_closed": "boolean",
        "is_won": "boolean",
        "created_at": "timestamptz",
        "closed_at": "timestamptz",
        "contacts": "jsonb",
        "updated_at": "timestamptz",
        "deleted": "boolean",
        "merged_into": "text",
    },
}


def _upsert_many_statement(table: str) -> str:
    """One last-writer-wins upsert of many rows (one per key) from arrays: a row is written when
    it is newer than what we hold, or as new and different in content (a correction sent under
    the same ``updated_at``), and its key returned. An identical re-send writes nothing."""
    columns = _COLUMNS[table]
    key = next(iter(columns))
    casts = ", ".join(f"CAST(:{c} AS {'text' if t == 'text[]' else t}[])" for c, t in columns.items())
    selects = ", ".join(f"CAST(u.{c} AS text[])" if t == "text[]" else f"u.{c}" for c, t in columns.items())
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in list(columns)[1:])
    content = [c for c in list(columns)[1:] if c != "updated_at"]
    held = ", ".join(f"{table}.{c}" for c in content)
    sent = ", ".join(f"EXCLUDED.{c}" for c in content)
    return (
        f"INSERT INTO {table} (tenant_id, {', '.join(columns)}) "
        f"SELECT :t, {selects} FROM unnest({casts}) AS u({', '.join(columns)}) "
        f"ON CONFLICT (tenant_id, {key}) DO UPDATE SET {updates} "
        f"WHERE {table}.updated_at < EXCLUDED.updated_at OR ({table}.updated_at = EXCLUDED.updated_at "
        f"AND ({held}) IS DISTINCT FROM ({sent})) RETURNING {key}"
    )


_UPSERT_MANY = {table: _upsert_many_statement(table) for table in _COLUMNS}


async def _upsert_many(conn: AsyncConnection, t: str, table: str, rows: Sequence[dict[str, Any]]) -> set[str]:
    """Write ``rows`` (one per key) newer than what we hold; the keys written."""
    columns = _COLUMNS[table]
    arrays: dict[str, list[Any]] = {}
    for column, sql_type in columns.items():
        values = [row[column] for row in rows]
        if sql_type == "text[]":
            values = [text_array_literal(v) for v in values]
        elif sql_type == "jsonb":
            values = [orjson.dumps(v).decode() for v in values]
        arrays[column] = values
    result = await conn.execute(text(_UPSERT_MANY[table]), {"t": t, **arrays})
    return {row[0] for row in result}


async def _account_domains(conn: AsyncConnection, t: str, account_ids: Sequence[str]) -> dict[str, set[str]]:
    """The domains held now by each of ``account_ids``."""
    rows = await conn.execute(
        text(
            "SELECT account_id, domain FROM ref_account_domains WHERE tenant_id = :t AND account_id = ANY(:a)"
        ),
        {"t": t, "a": list(account_ids)},
    )
    held: dict[str, set[str]] = {}
    for row in rows:
        held.setdefault(row.account_id, set()).add(row.domain)
    return held


async def _replace_children(
    conn: AsyncConnection,
    table: str,
    owner: str,
    t: str,
    owners: Sequence[str],
    children: dict[str, list[str]],
) -> None:
    """Replace the child rows of the rewritten ``owners`` with ``children``: one list of values per
    column, aligned (the owner's column among them)."""
    await conn.execute(
        text(f"DELETE FROM {table} WHERE tenant_id = :t AND {owner} = ANY(:o)"), {"t": t, "o": list(owners)}
    )
    if not children[owner]:
        return
    names = list(children)
    casts = ", ".join(f"CAST(:{c} AS text[])" for c in names)
    await conn.execute(
        text(
            f"INSERT INTO {table} (tenant_id, {', '.join(names)}) SELECT :t, * FROM unnest({casts}) "
            "ON CONFLICT DO NOTHING"
        ),
        {"t": t, **children},
    )


async def _held(conn: AsyncConnection, t: str, sql: str, ids: Sequence[str]) -> dict[str, Any]:
    """What we hold of these entities before they are written, by id (the first column)."""
    result = await conn.execute(text(sql), {"t": t, "ids": list(ids)})
    return {row[0]: row for row in result}


def _live(e: AccountV1 | ContactV1 | DealV1) -> bool:
    return not e.deleted and e.merged_into is None


async def _apply_teams(
    conn: AsyncConnection, t: str, es: Sequence[TeamV1], changed: ChangedReferences
) -> None:
    """Last writer wins; a team deleted stays where it was in the tree (a tombstone naming no
    parent keeps the one held), so its history still counts for the teams above it."""
    bare = [e.id for e in es if e.deleted and e.parent_id is None]
    held = (
        await _held(
            conn,
            t,
            "SELECT team_id, parent_id FROM ref_teams WHERE tenant_id = :t AND team_id = ANY(:ids)",
            bare,
        )
        if bare
        else {}
    )
    rows = [
        {
            "team_id": e.id,
            "name": e.name,
            "parent_id": e.parent_id if e.parent_id is not None or e.id not in held else held[e.id].parent_id,
            "updated_at": e.updated_at,
            "deleted": e.deleted,
        }
        for e in es
    ]
    await _upsert_many(conn, t, "ref_teams", rows)


async def _apply_memberships(
    conn: AsyncConnection, t: str, es: Sequence[TeamMembershipV1], changed: ChangedReferences
) -> None:
    """Last writer wins, and a membership edited in place to another team (or deleted) keeps the
    spell it ends as a membership of its own (``domain/memberships.py``, rules 2026.12.30); one
    re-assigned to another rep keeps the held rep's spell as hers (rules 2026.12.32)."""
    before = await _held(
        conn,
        t,
        "SELECT membership_id, rep_id, team_id, valid_from, valid_to, updated_at, deleted "
        "FROM ref_team_memberships WHERE tenant_id = :t AND membership_id = ANY(:ids)",
        [e.id for e in es],
    )
    ended, spells_end = await _ended_spells(conn, t, before, es)
    rows = [
        {
            "membership_id": e.id,
            "rep_id": e.rep_id,
            "team_id": e.team_id,
            "valid_from": starts_after_spells(e.valid_from, e.valid_to, spells_end.get(e.id)),
            "valid_to": e.valid_to,
            "updated_at": e.updated_at,
            "deleted": e.deleted,
        }
        for e in es
    ]
    written = await _upsert_many(conn, t, "ref_team_memberships", rows)
    kept = [
        {
            "membership_id": former_spell_id(e.id, start),
            "rep_id": before[e.id].rep_id,
            "team_id": before[e.id].team_id,
            "valid_from": start,
            "valid_to": end,
            "updated_at": e.updated_at,
            "deleted": False,
        }
        for e in es
        if e.id in written and e.id in ended
        for start, end in (ended[e.id],)
    ]
    if kept:
        await _upsert_many(conn, t, "ref_team_memberships", kept)
    for e in es:
        if e.id in written:
            changed.team_changed(e.rep_id, e.valid_from)
            if (held := before.get(e.id)) is not None:
                # The membership may have moved to another rep or day: the old span changes too.
                changed.team_changed(held.rep_id, held.valid_from)


async def _ended_spells(
    conn: AsyncConnection, t: str, before: Mapping[str, Any], es: Sequence[TeamMembershipV1]
) -> tuple[dict[str, tuple[date, date]], dict[str, date]]:
    """The spell each version ends (membership id -> ``[start, end)`` of the held team: the
    version moves the rep to another team or deletes the membership), and the last day of the
    earlier teams' spells kept of each membership (those held and those ended now)."""
    if not before:
        return {}, {}
    time_zone = (
        await conn.execute(text("SELECT timezone FROM tenants WHERE tenant_id = :t"), {"t": t})
    ).scalar_one_or_none() or "UTC"
    ended: dict[str, tuple[date, date]] = {}
    for e in es:
        held = before.get(e.id)
        spell = former_spell(
            held
            and MembershipVersion(
                held.rep_id, held.team_id, held.valid_from, held.valid_to, held.updated_at, held.deleted
            ),
            MembershipVersion(e.rep_id, e.team_id, e.valid_from, e.valid_to, e.updated_at, e.deleted),
            local_day(e.updated_at, time_zone),
        )
        if spell is not None:
            ended[e.id] = spell
    # Only the spells the same rep holds of the membership bound its start: a record reused for
    # another rep starts as sent (the spells kept are the other rep's).
    result = await conn.execute(
        text(
            "SELECT split_part(membership_id, chr(31), 1) AS base, rep_id, max(valid_to) AS until "
            "FROM ref_team_memberships WHERE tenant_id = :t AND strpos(membership_id, chr(31)) > 0 "
            "AND split_part(membership_id, chr(31), 1) = ANY(:ids) GROUP BY 1, 2"
        ),
        {"t": t, "ids": list(before)},
    )
    reps = {e.id: e.rep_id for e in es}
    spells_end = {row.base: row.until for row in result if reps.get(row.base) == row.rep_id}
    for mid, (_, end) in ended.items():
        if before[mid].rep_id == reps[mid]:
            spells_end[mid] = max(end, spells_end.get(mid, end))
    return ended, spells_end


async def _apply_accounts(
    conn: AsyncConnection, t: str, es: Sequence[AccountV1], changed: ChangedReferences
) -> None:
    domains = {e.id: sorted({d.lower().strip() for d in e.domains}) for e in es}
    rows = [
        {
            "account_id": e.id,
            "name": e.name,
            "domains": domains[e.id],
            "country": e.country,
            "account_type": e.account_type,
            "relationship": e.relationship,
            "updated_at": e.updated_at,
            "deleted": e.deleted,
            "merged_into": e.merged_into,
        }
        for e in es
    ]
    partners = await _held(
        conn,
        t,
        "SELECT account_id FROM ref_accounts WHERE tenant_id = :t AND account_id = ANY(:ids) "
        "AND relationship = 'partner'",
        [e.id for e in es],
    )
    kept = await _upsert_many(conn, t, "ref_accounts", rows)
    written = [e for e in es if e.id in kept]
    if not written:
        return
    changed.partner_changed.update(
        e.id for e in written if (e.id in partners) != (e.relationship == "partner" and _live(e))
    )
    children: dict[str, list[str]] = {"domain": [], "account_id": []}
    for e in written:
        # A merged account's domains stay filed under it: they lead to its survivor (the
        # reference loader follows its merge), whether or not the CRM re-sends the survivor.
        if not e.deleted:
            children["domain"] += domains[e.id]
            children["account_id"] += [e.id] * len(domains[e.id])
    held = await _account_domains(conn, t, [e.id for e in written])
    await _replace_children(conn, "ref_account_domains", "account_id", t, [e.id for e in written], children)
    gained = {d for e in written if _live(e) for d in domains[e.id] if d not in held.get(e.id, ())}
    if parents := sorted({parent for d in gained for parent in parent_domains(d)[1:]}):
        found = await conn.execute(
            text("SELECT DISTINCT domain FROM ref_account_domains WHERE tenant_id = :t AND domain = ANY(:d)"),
            {"t": t, "d": parents},
        )
        changed.narrowing_domains.update(narrowing_domains(gained, {row.domain for row in found}))
    for e in written:
        changed.domains.update(domains[e.id])
        changed.account_ids.add(e.id)
        if e.deleted or e.merged_into:
            changed.gone_account_ids.add(e.id)
        if e.merged_into:
            changed.account_ids.add(e.merged_into)


async def _apply_contacts(
    conn: AsyncConnection, t: str, es: Sequence[ContactV1], changed: ChangedReferences
) -> None:
    rows = [
        {
            "contact_id": e.id,
            "name": e.name,
            "emails": e.emails,
            "phones": e.phones,
            "raw_phones": e.raw_phones,
            "phone_extensions": e.phone_extensions,
            "unread_phones": e.unread_phones,
            "account_id": e.account_id,
            "country": e.country,
            "updated_at": e.updated_at,
            "deleted": e.deleted,
            "merged_into": e.merged_into,
        }
        for e in es
    ]
    before = await _held(
        conn,
        t,
        "SELECT contact_id, emails, phones, account_id, deleted, merged_into, updated_at FROM ref_contacts "
        "WHERE tenant_id = :t AND contact_id = ANY(:ids)",
        [e.id for e in es],
    )
    kept = await _upsert_many(conn, t, "ref_contacts", rows)
    written = [e for e in es if e.id in kept]
    if not written:
        return
    await _keep_former_phones(conn, t, written, before)
    await _keep_former_accounts(conn, t, written, before)
    children: dict[str, list[str]] = {"identity": [], "contact_id": []}
    for e in written:
        if _live(e):
            # A Gmail address also as its mailbox (``jodoe@gmail.com`` for ``jo.doe@gmail.com``).
            identities = sorted({*mailbox_forms(e.emails), *e.phones})
            children["identity"] += identities
            children["contact_id"] += [e.id] * len(identities)
    await _replace_children(
        conn, "ref_contact_identities", "contact_id", t, [e.id for e in written], children
    )
    for e in written:
        changed.identities.update([*mailbox_forms(e.emails), *e.phones])
        changed.contact_identities.update(_gained_identities(e, before.get(e.id)))
        changed.contact_ids.add(e.id)
        if e.account_id:
            changed.account_ids.add(e.account_id)


def _gained_identities(e: ContactV1, held: Any | None) -> set[str]:
    """The emails and phones (as held, ``mailbox_forms``) the contact's new version lists that the
    version held did not (all of them for a new contact, or one held deleted or merged)."""
    if not _live(e):
        return set()
    had: set[str] = set()
    if held is not None and not held.deleted and held.merged_into is None:
        had = {*mailbox_forms(held.emails or ()), *(held.phones or ())}
    return {*mailbox_forms(e.emails), *e.phones} - had


async def _keep_former_phones(
    conn: AsyncConnection, t: str, written: Sequence[ContactV1], before: dict[str, Any]
) -> None:
    """Phones a contact's new version no longer lists (a number changed; every phone of a contact
    deleted: she left) stay hers for activities before that version's ``updated_at``
    (``ref_contact_former_phones``), with the account she was at and the other contacts listing
    the number then (a switchboard they shared: they held it too); a phone she lists again is
    current again. Called before the identities are replaced, so a contact arriving in the same
    batch with the number (it was re-issued to him) is not one who shared it. A merge is no
    departure: the survivor takes over. A version no newer than the one held (ingest reading her
    phones again under the same ``updated_at``: a correction) changes no number. One statement
    for the rows dropped."""
    dropped: list[tuple[str, str]] = []
    for e in written:
        held = before.get(e.id)
        if (
            held is None
            or held.deleted
            or held.merged_into
            or e.merged_into
            or e.updated_at <= held.updated_at
        ):
            continue
        listed = set() if e.deleted else set(e.phones)
        dropped += [(e.id, phone) for phone in sorted(set(held.phones) - listed)]
    relisted = [(e.id, phone) for e in written if _live(e) for phone in e.phones]
    if relisted:
        await conn.execute(
            text(
                "DELETE FROM ref_contact_former_phones f USING unnest(CAST(:c AS text[]), CAST(:p AS text[])) "
                "AS l(contact_id, phone) WHERE f.tenant_id = :t AND f.contact_id = l.contact_id "
                "AND f.phone = l.phone"
            ),
            {"t": t, "c": [c for c, _ in relisted], "p": [p for _, p in relisted]},
        )
    if not dropped:
        return
    updated = {e.id: e.updated_at for e in written}
    await conn.execute(
        text(
            "INSERT INTO ref_contact_former_phones (tenant_id, phone, contact_id, until, account_id, shared_with) "
            "SELECT :t, l.phone, l.contact_id, l.until, l.account_id, ARRAY("
            "SELECT i.contact_id FROM ref_contact_identities i WHERE i.tenant_id = :t AND i.identity = l.phone "
            "AND i.contact_id <> l.contact_id ORDER BY i.contact_id) "
            "FROM unnest(CAST(:p AS text[]), CAST(:c AS text[]), CAST(:u AS timestamptz[]), CAST(:a AS text[])) "
            "AS l(phone, contact_id, until, account_id) "
            "ON CONFLICT (tenant_id, phone, contact_id) DO UPDATE SET until = EXCLUDED.until, "
            "account_id = EXCLUDED.account_id, shared_with = EXCLUDED.shared_with "
            "WHERE ref_contact_former_phones.until <= EXCLUDED.until"
        ),
        {
            "t": t,
            "p": [phone for _, phone in dropped],
            "c": [c for c, _ in dropped],
            "u": [updated[c] for c, _ in dropped],
            "a": [before[c].account_id for c, _ in dropped],
        },
    )


async def _keep_former_accounts(
    conn: AsyncConnection, t: str, written: Sequence[ContactV1], before: dict[str, Any]
) -> None:
    """The account a live contact's newer version no longer names (she moved: a new job, the CRM
    re-parenting her) stays hers for activities before that version's ``updated_at``
    (``ref_contact_former_accounts``): the CRM sends its current state, and without this a
    re-match of her earlier activities read her new account. Only a move we saw: a contact first
    received with her new account (her old one never sent), one held without an account, a
    deletion or a merge records none, and a version no newer than the one held (a correction
    under the same ``updated_at``) moves nothing. One statement for the moves."""
    moved = [
        (e.id, held.account_id, e.updated_at)
        for e in written
        if (held := before.get(e.id)) is not None
        and held.account_id is not None
        and _live_and_newer(held, e)
        and e.account_id != held.account_id
    ]
    await _keep_formers(conn, t, "ref_contact_former_accounts", "contact_id", "account_id", moved)


def _live_and_newer(held: Any, e: ContactV1 | DealV1) -> bool:
    """Whether ``e`` is a newer version of the live row ``held``: neither side deleted or
    merged, and ``e`` sent after ``held`` (a correction under the same ``updated_at`` is no
    newer)."""
    return (
        not (held.deleted or held.merged_into or e.deleted or e.merged_into)
        and e.updated_at > held.updated_at
    )


async def _keep_formers(
    conn: AsyncConnection,
    t: str,
    table: str,
    key: str,
    value: str,
    formers: Sequence[tuple[str, str, datetime]],
) -> None:
    """Record each ``(id, former value, until)`` of ``formers`` in ``table`` (keyed by ``key``
    and ``until``, the former value in ``value``), a newer record under the same ``until``
    replacing the value. One statement; nothing when there is none."""
    if not formers:
        return
    await conn.execute(
        text(
            f"INSERT INTO {table} (tenant_id, {key}, until, {value}) "
            f"SELECT :t, f.{key}, f.until, f.{value} "
            "FROM unnest(CAST(:k AS text[]), CAST(:u AS timestamptz[]), CAST(:v AS text[])) "
            f"AS f({key}, until, {value}) "
            f"ON CONFLICT (tenant_id, {key}, until) DO UPDATE SET {value} = EXCLUDED.{value}"
        ),
        {
            "t": t,
            "k": [k for k, _, _ in formers],
            "u": [u for _, _, u in formers],
            "v": [v for _, v, _ in formers],
        },
    )


def _sent_deal(e: DealV1) -> Deal:
    return Deal(
        id=e.id,
        account_id=e.account_id,
        owner_rep_id=e.owner_rep_id,
        stage=e.stage,
        is_closed=e.is_closed,
        is_won=e.is_won,
        created_at=e.created_at,
        closed_at=e.closed_at,
        contacts=tuple((c.contact_id, c.role) for c in e.contacts),
        name=e.name or "",
    )


async def _apply_deals(
    conn: AsyncConnection, t: str, es: Sequence[DealV1], changed: ChangedReferences
) -> None:
    before = await _held(
        conn,
        t,
        "SELECT deal_id, name, account_id, owner_rep_id, stage, is_closed, is_won, created_at, closed_at, "
        "contacts, deleted, merged_into, updated_at FROM ref_deals WHERE tenant_id = :t AND deal_id = ANY(:ids)",
        [e.id for e in es],
    )
    rows = [
        {
            "deal_id": e.id,
            "name": e.name,
            "account_id": e.account_id,
            "owner_rep_id": e.owner_rep_id,
            "stage": e.stage,
            "amount": e.amount,
            "is_closed": e.is_closed,
            "is_won": e.is_won,
            "created_at": e.created_at,
            "closed_at": e.closed_at,
            "contacts": [{"contact_id": c.contact_id, "role": c.role} for c in e.contacts],
            "updated_at": e.updated_at,
            "deleted": e.deleted,
            "merged_into": e.merged_into,
        }
        for e in es
    ]
    kept = await _upsert_many(conn, t, "ref_deals", rows)
    await _see_names(conn, t, es, before)
    _late_names(es, kept, before, changed)
    written = [e for e in es if e.id in kept]
    if not written:
        return
    children: dict[str, list[str]] = {"deal_id": [], "contact_id": [], "role": []}
    for e in written:
        if _live(e):
            children["deal_id"] += [e.id] * len(e.contacts)
            children["contact_id"] += [c.contact_id for c in e.contacts]
            children["role"] += [c.role for c in e.contacts]
    await _replace_children(conn, "ref_deal_contacts", "deal_id", t, [e.id for e in written], children)
    await _record_owners(conn, t, written, before)
    for e in written:
        if e.account_id:
            changed.account_ids.add(e.account_id)
        changed.contact_ids.update(c.contact_id for c in e.contacts)
        if e.deleted or e.merged_into:
            changed.gone_deal_ids.add(e.id)
        else:
            held = before.get(e.id)
            gone_before = held is None or held.deleted or held.merged_into is not None
            changed.deal_changes.append((None if gone_before else deal_from_row(held), _sent_deal(e)))


async def _record_owners(
    conn: AsyncConnection, t: str, written: Sequence[DealV1], before: dict[str, Any]
) -> None:
    """A deal's owner from the ``updated_at`` of the version that named it (``ref_deal_owners``):
    its first version, and each newer one that changes the owner. A version older than the one
    held is not written (last writer wins) and records nothing either; a correction under the
    same ``updated_at`` replaces what that version recorded."""
    named = [e for e in written if (held := before.get(e.id)) is None or held.owner_rep_id != e.owner_rep_id]
    if not named:
        return
    await conn.execute(
        text(
            "INSERT INTO ref_deal_owners (tenant_id, deal_id, since, owner_rep_id) "
            "SELECT :t, u.deal_id, u.since, u.owner_rep_id "
            "FROM unnest(CAST(:d AS text[]), CAST(:s AS timestamptz[]), CAST(:o AS text[])) AS u(deal_id, since, owner_rep_id) "
            "ON CONFLICT (tenant_id, deal_id, since) DO UPDATE SET owner_rep_id = EXCLUDED.owner_rep_id"
        ),
        {
            "t": t,
            "d": [e.id for e in named],
            "s": [e.updated_at for e in named],
            "o": [e.owner_rep_id for e in named],
        },
    )


async def _see_names(conn: AsyncConnection, t: str, es: Sequence[DealV1], before: dict[str, Any]) -> None:
    """The name each live version of ``es`` carries, seen at its ``updated_at``
    (``ref_deal_names``, rules 2026.12.44), whether it is written or older than the version held (a
    sync replay delivering the older name after the newer one): a deal's name at an activity's
    time is that of the latest version seen at or before it, so a late version takes its place
    in the history without changing the name held. The version held is seen too (a deal held
    before the table: its history starts with it); a correction under the same ``updated_at``
    replaces the name seen then. A tombstone's name is not seen; a merge's is, when it carries
    one (a HubSpot merge names none): the merged deal's names end with its merge (the loader's
    ``_DEAL_NAMES``). Only the first and last version of each run of one name are kept. A few
    statements for the batch; none without a named version."""
    held = [
        (i, h.updated_at, h.name) for i, h in before.items() if h.name and not (h.deleted or h.merged_into)
    ]
    sent = [(e.id, e.updated_at, e.name) for e in es if e.name and not e.deleted]
    if not sent and not held:
        return
    for seen, on_conflict in ((held, "NOTHING"), (sent, "UPDATE SET name = EXCLUDED.name")):
        if seen:
            await conn.execute(
                text(
                    "INSERT INTO ref_deal_names (tenant_id, deal_id, seen, name) "
                    "SELECT :t, s.deal_id, s.seen, s.name FROM unnest(CAST(:d AS text[]), "
                    "CAST(:s AS timestamptz[]), CAST(:n AS text[])) AS s(deal_id, seen, name) "
                    f"ON CONFLICT (tenant_id, deal_id, seen) DO {on_conflict}"
                ),
                {
                    "t": t,
                    "d": [d for d, _, _ in seen],
                    "s": [u for _, u, _ in seen],
                    "n": [n for _, _, n in seen],
                },
            )
    await conn.execute(
        # A version between two of the same name, that name too, tells nothing more.
        text(
            "DELETE FROM ref_deal_names n USING (SELECT deal_id, seen, name, lag(name) OVER w AS before, "
            "lead(name) OVER w AS after FROM ref_deal_names WHERE tenant_id = :t AND deal_id = ANY(:d) "
            "WINDOW w AS (PARTITION BY deal_id ORDER BY seen)) x WHERE n.tenant_id = :t "
            "AND n.deal_id = x.deal_id AND n.seen = x.seen AND x.before = x.name AND x.after = x.name"
        ),
        {"t": t, "d": sorted({d for d, _, _ in (*held, *sent)})},
    )


async def see_deal_names(conn: AsyncConnection, t: str, versions: Sequence[DealV1]) -> None:
    """Record the names ``versions`` of the tenant's deals carry, as if each had just been
    received (``_see_names``), in chunks, one version per deal and ``updated_at`` (the last
    given); nothing else is written or re-decided (``spm backfill-deal-names``)."""
    unique = list({(e.id, e.updated_at): e for e in versions}.values())
    for start in range(0, len(unique), _SEEN_CHUNK):
        chunk = unique[start : start + _SEEN_CHUNK]
        before = await _held(
            conn,
            t,
            "SELECT deal_id, name, deleted, merged_into, updated_at FROM ref_deals "
            "WHERE tenant_id = :t AND deal_id = ANY(:ids)",
            sorted({e.id for e in chunk}),
        )
        await _see_names(conn, t, chunk, before)


#: Deal versions recorded per statement by ``see_deal_names``.
_SEEN_CHUNK = 5_000


def _late_names(
    es: Sequence[DealV1], kept: set[str], before: dict[str, Any], changed: ChangedReferences
) -> None:
    """A live version older than the live one held (not written) naming the deal otherwise
    re-decides its window as a rename does: mail of its time naming that name is the deal's."""
    for e in es:
        held = before.get(e.id)
        if e.id in kept or held is None or not _live(e) or held.deleted or held.merged_into:
            continue
        if e.name and e.name != held.name and e.updated_at < held.updated_at:
            now = deal_from_row(held)
            changed.deal_changes.append((replace(now, name=e.name), now))


def _common(t: str, e: CrmEntity) -> dict[str, Any]:
    return {"t": t, "id": e.id, "u": e.updated_at, "d": e.deleted}


def _mapped(mapping: dict[str, str], ids: set[str]) -> set[str]:
    """Ids the tenant's explicit mapping links to ``ids``, either way."""
    return {mapping[i] for i in ids if i in mapping} | {a for a, target in mapping.items() if target in ids}


#: How far a person is followed through shared emails and mappings (a CRM loop is not a person).
_MAX_PERSON_HOPS = 4

#: One last-writer-wins upsert of many entities per type (a correction under the same
#: ``updated_at`` included); each records what it changed for
#: re-matching. Reps are applied apart (``apply_crm_entities``): one by one, as each may move
#: the person of the ones before it.
_UPSERTS: dict[type[Any], Callable[[AsyncConnection, str, Any, ChangedReferences], Awaitable[None]]] = {
    TeamV1: _apply_teams,
    TeamMembershipV1: _apply_memberships,
    AccountV1: _apply_accounts,
    ContactV1: _apply_contacts,
    DealV1: _apply_deals,
}


def write_rounds(entities: Sequence[CrmEntity]) -> list[list[CrmEntity]]:
    """The versions of a batch that one-by-one application would write, as rounds of at most one
    version per entity: an entity's later version in the batch is written when newer than the
    last one kept, or as new and different from it (a correction under the same ``updated_at``:
    the last received wins; an identical re-send is dropped), so round ``k`` holds the ``k``-th
    such version of each entity, in arrival order. What we hold is left to the database: a
    version older than it, or the same as it, is not written, in any round."""
    chains: dict[str, list[CrmEntity]] = {}
    for e in entities:
        chain = chains.setdefault(e.id, [])
        if (
            not chain
            or chain[-1].updated_at < e.updated_at
            or (chain[-1].updated_at == e.updated_at and chain[-1] != e)
        ):
            chain.append(e)
    depth = max((len(chain) for chain in chains.values()), default=0)
    return [[chain[k] for chain in chains.values() if k < len(chain)] for k in range(depth)]


async def apply_crm_entities(
    conn: AsyncConnection, tenant_id: str, events: Sequence[CrmEntityChangedV1], changed: ChangedReferences
) -> None:
    """Upsert one tenant's entities, each where newer than what we hold, recording what changed:
    a statement or a few per entity type (and per repeated version), reps one by one."""
    by_type: dict[type[Any], list[CrmEntityChangedV1]] = {}
    for event in await _without_stale_rereads(conn, tenant_id, events):
        by_type.setdefault(type(event.entity), []).append(event)
    for kind, group in by_type.items():
        if kind is RepV1:
            for event in group:
                # Which feed a rep came from ranks its id among the ids of the same person.
                await _apply_rep(conn, tenant_id, cast(RepV1, event.entity), changed, event.source)
            continue
        upsert = _UPSERTS.get(kind)
        if upsert is None:
            raise TypeError(f"unknown entity {kind.__name__}")
        for entities in write_rounds([event.entity for event in group]):
            await upsert(conn, tenant_id, entities, changed)


async def _without_stale_rereads(
    conn: AsyncConnection, tenant_id: str, events: Sequence[CrmEntityChangedV1]
) -> Sequence[CrmEntityChangedV1]:
    """``events`` without the contacts and reps a ``reread_phones`` job published
    (``PHONE_REREAD_SOURCE``) that are not the version held with numbers added
    (``domain.phone_rereads.reread_of``): a CRM correction under the same ``updated_at`` held since
    the job read it, or in the same batch, stays. One lookup per kind, only for a batch holding
    such records."""
    rereads = [
        e for e in events if e.source == PHONE_REREAD_SOURCE and isinstance(e.entity, ContactV1 | RepV1)
    ]
    if not rereads:
        return events
    held = await _held_phone_holders(conn, tenant_id, rereads)
    # Another version of the record in the batch newer than what the job read, or a correction
    # under its updated_at (an older one, or a replay of it, is ignored by newest-wins).
    superseded = {
        (type(e.entity), e.entity.id)
        for e in events
        if e.source != PHONE_REREAD_SOURCE
        and isinstance(e.entity, ContactV1 | RepV1)
        and supersedes(e.entity, held.get((type(e.entity), e.entity.id)))
    }
    kept = [
        e
        for e in events
        if e.source != PHONE_REREAD_SOURCE
        or not isinstance(e.entity, ContactV1 | RepV1)
        or (
            (type(e.entity), e.entity.id) not in superseded
            and reread_of(held.get((type(e.entity), e.entity.id)), e.entity)
        )
    ]
    if dropped := len(events) - len(kept):
        PHONE_REREADS_DROPPED.inc(dropped)
        log.info(
            "phone re-reads not written: the record changed since the job read it",
            extra={"tenant_id": tenant_id, "dropped": dropped, "rereads": len(rereads)},
        )
    return kept


async def _held_phone_holders(
    conn: AsyncConnection, tenant_id: str, rereads: Sequence[CrmEntityChangedV1]
) -> dict[tuple[type, str], ContactV1 | RepV1]:
    """The versions held of the contacts and reps re-read: ``(type, id)`` -> the record."""
    held: dict[tuple[type, str], ContactV1 | RepV1] = {}
    contacts = [e.entity.id for e in rereads if isinstance(e.entity, ContactV1)]
    if contacts:
        rows = await conn.execute(
            text(
                "SELECT contact_id, name, emails, phones, raw_phones, phone_extensions, unread_phones, "
                "account_id, country, updated_at, deleted, merged_into FROM ref_contacts "
                "WHERE tenant_id = :t AND contact_id = ANY(:ids)"
            ),
            {"t": tenant_id, "ids": contacts},
        )
        held.update(((ContactV1, r.contact_id), held_contact(r)) for r in rows)
    reps = [e.entity.id for e in rereads if isinstance(e.entity, RepV1)]
    if reps:
        rows = await conn.execute(
            text(f"SELECT {HELD_REP_COLUMNS} FROM ref_reps WHERE tenant_id = :t AND rep_id = ANY(:ids)"),
            {"t": tenant_id, "ids": reps},
        )
        held.update(((RepV1, r.rep_id), held_rep(r)) for r in rows)
    return held


#: The parameters of ``store_activities``' statement, in the order of its rows' tuples.
_ACTIVITY_PARAMETERS = ("t", "id", "src", "ext", "kind", "dir", "out", "at", "dur", "rev", "thread", "ical", "auto", "payload", "ing", "deals")  # fmt: skip


async def store_activities(
    conn: AsyncConnection,
    activities: Sequence[IngestedEvent],
    held_deals: dict[tuple[str, uuid.UUID], SourceDeals] | None = None,
) -> dict[uuid.UUID, bool]:
    """Insert or advance each activity by revision; returns the ids that are new or newer (to
    attribute), each with whether its row was inserted now. ``held_deals``, when given, gets the
    other sources' deals a newer one's row holds (``domain.source_deals``; read in the same
    statement).

    A newer revision clears ``retracted`` (a restore: ``mark_retracted``).

    An inserted activity has no attribution to read: its attribution is written in the same
    transaction as its row and erased, or purged, with it (``services.metrics.adapters.retention``),
    and the row inserted here, uncommitted, holds off any other instance storing it. ``xmax = 0``
    tells the inserted rows from the updated ones (an update's new row carries this transaction's
    lock in ``xmax``).
    """
    if not activities:
        return {}
    newest: dict[tuple[str, uuid.UUID], IngestedEvent] = {}
    for a in activities:
        key = (a.tenant_id, a.activity_id)
        if key not in newest or newest[key].revision < a.revision:
            newest[key] = a
    # A tuple per row, turned into one list per column by ``zip``: no dict per row to transpose.
    # Strings travel as ``varchar[]``, through ``array_codecs`` (asyncpg's ``text[]`` checks every
    # element twice with ``isinstance``); the columns are ``text``, which reads a ``varchar`` as is.
    # The payload's JSON text too, read as ``jsonb`` row by row in SQL (``jsonb_in``, instead of
    # SQLAlchemy's Python encoder per element). Not as a ``jsonb[]`` cast of the whole array, which
    # built a second array of every parsed payload for ``unnest``: 10.7 against 5.0 us of
    # PostgreSQL's CPU a row (``performance.md``, sixteenth round).
    # Enum members' values as ``_value_``, the object ``value`` returns (``domain.matching``).
    # A meeting's sources' deals as ``record_source_deals`` would record them on a row inserted
    # now (from none, every sighting of the batch in order), written by the insert itself: the
    # row is not updated right after (a new heap tuple and index entries). Ignored on a conflict.
    sighted: dict[tuple[str, uuid.UUID], SourceDeals] = {}
    for a in activities:
        if tracks_source_deals(a):
            key = (a.tenant_id, a.activity_id)
            recorded = record_sighting(sighted.get(key, {}), a.source, a.revision, a.crm.deal_id)
            if recorded is not None:
                sighted[key] = recorded
    rows = [
        (
            a.tenant_id,
            a.activity_id,
            a.source,
            a.external_id,
            a.kind._value_,
            a.direction._value_,
            a.outcome._value_,
            a.occurred_at,
            a.duration_seconds,
            a.revision,
            a.thread_id,
            a.ical_uid,
            a.automated,
            # The decoder's struct encoded by msgspec: the text pydantic gave, in a fifth of the
            # time; sent as its UTF-8 (``Utf8Texts``), not decoded to a ``str`` and encoded back.
            encode_ingested(a),
            a.ingested_at,
            orjson.dumps(encode_source_deals(sighted[key])) if key in sighted else None,
        )
        for key, a in newest.items()
    ]
    columns = dict(zip(_ACTIVITY_PARAMETERS, map(list, zip(*rows, strict=True)), strict=True))
    columns["payload"] = Utf8Texts(columns["payload"])
    columns["deals"] = Utf8Texts(columns["deals"])
    result = await conn.execute(
        statement(
            """
            INSERT INTO activities (tenant_id, activity_id, source, external_id, kind, direction, outcome,
                                    occurred_at, duration_seconds, revision, thread_id, ical_uid, automated,
                                    payload, ingested_at, source_deals)
            SELECT u.t, u.id, u.src, u.ext, u.kind, u.dir, u.out, u.at, u.dur, u.rev, u.thread, u.ical, u.auto,
                   CAST(u.payload AS jsonb), u.ing, CAST(u.deals AS jsonb)
            FROM unnest(CAST(:t AS varchar[]), CAST(:id AS uuid[]), CAST(:src AS varchar[]), CAST(:ext AS varchar[]),
                        CAST(:kind AS varchar[]), CAST(:dir AS varchar[]), CAST(:out AS varchar[]),
                        CAST(:at AS timestamptz[]), CAST(:dur AS int[]), CAST(:rev AS bigint[]),
                        CAST(:thread AS varchar[]), CAST(:ical AS varchar[]), CAST(:auto AS boolean[]),
                        CAST(:payload AS varchar[]), CAST(:ing AS timestamptz[]), CAST(:deals AS varchar[]))
                 AS u(t, id, src, ext, kind, dir, out, at, dur, rev, thread, ical, auto, payload, ing, deals)
            ON CONFLICT (tenant_id, activity_id) DO UPDATE SET kind = EXCLUDED.kind, direction = EXCLUDED.direction,
                outcome = EXCLUDED.outcome, occurred_at = EXCLUDED.occurred_at,
                duration_seconds = EXCLUDED.duration_seconds, revision = EXCLUDED.revision,
                thread_id = EXCLUDED.thread_id, ical_uid = EXCLUDED.ical_uid, automated = EXCLUDED.automated,
                payload = EXCLUDED.payload, ingested_at = EXCLUDED.ingested_at, retracted = false
            WHERE activities.revision < EXCLUDED.revision
            RETURNING tenant_id, activity_id, xmax = 0 AS inserted, source_deals
            """
        ),
        columns,
    )
    fresh: dict[uuid.UUID, bool] = {}
    # Unpacked, not read by name: a ``Row`` attribute is an ordinary lookup that fails first
    # (SQLAlchemy's ``Row`` inherits a ``__getattr__``), about 2,600 instructions a read.
    for tenant_id, activity_id, inserted, source_deals in result:
        fresh[activity_id] = inserted
        if held_deals is not None and source_deals:
            held_deals[(tenant_id, activity_id)] = decode_source_deals(source_deals)
    return fresh


#: One source's word on an activity's deal: (tenant, activity, source, revision, deal or None).
Sighting = tuple[str, uuid.UUID, str, int, str | None]


async def record_source_deals(
    conn: AsyncConnection, activities: Sequence[IngestedEvent]
) -> tuple[dict[tuple[str, uuid.UUID], SourceDeals], set[tuple[str, uuid.UUID]]]:
    """Each source's latest word on a stored meeting's deal (``domain.source_deals``), whatever
    the order its sources' revisions come in: ``(held, changed)``, the deals held per meeting of
    ``activities`` and the meetings whose deals changed now (to decide again, an older
    revision's included). Run after ``store_activities`` (the rows exist; a row it inserted
    holds the batch's sightings already, so nothing is news for it); one or two statements for
    a batch holding a meeting, none otherwise."""
    return await record_sightings(
        conn,
        [
            (a.tenant_id, a.activity_id, a.source, a.revision, a.crm.deal_id)
            for a in activities
            if tracks_source_deals(a)
        ],
    )


async def record_sightings(
    conn: AsyncConnection, sightings: Sequence[Sighting]
) -> tuple[dict[tuple[str, uuid.UUID], SourceDeals], set[tuple[str, uuid.UUID]]]:
    """``sightings`` recorded in ``activities.source_deals`` (in order; ``domain.record_sighting``
    drops what is not news): the deals held per activity named, and those changed now."""
    if not sightings:
        return {}, set()
    keys = sorted({(t, i) for t, i, *_ in sightings})
    result = await conn.execute(
        statement(
            "SELECT a.tenant_id, a.activity_id, a.source_deals FROM activities a "
            "JOIN unnest(CAST(:t AS varchar[]), CAST(:ids AS uuid[])) AS k(t, id) "
            "ON a.tenant_id = k.t AND a.activity_id = k.id WHERE a.source_deals IS NOT NULL"
        ),
        {"t": [t for t, _ in keys], "ids": [i for _, i in keys]},
    )
    held: dict[tuple[str, uuid.UUID], SourceDeals] = {
        (row.tenant_id, row.activity_id): decode_source_deals(row.source_deals) for row in result
    }
    changed: set[tuple[str, uuid.UUID]] = set()
    for tenant_id, activity_id, source, revision, deal_id in sightings:
        key = (tenant_id, activity_id)
        recorded = record_sighting(held.get(key, {}), source, revision, deal_id)
        if recorded is not None:
            held[key] = recorded
            changed.add(key)
    if changed:
        ordered = sorted(changed)
        await conn.execute(
            statement(
                "UPDATE activities a SET source_deals = CAST(d.deals AS jsonb) FROM unnest(CAST(:t AS varchar[]), "
                "CAST(:ids AS uuid[]), CAST(:deals AS varchar[])) AS d(t, id, deals) "
                "WHERE a.tenant_id = d.t AND a.activity_id = d.id"
            ),
            {
                "t": [t for t, _ in ordered],
                "ids": [i for _, i in ordered],
                "deals": [orjson.dumps(encode_source_deals(held[k])).decode() for k in ordered],
            },
        )
    return held, changed


async def advance_to_deletions(
    conn: AsyncConnection, tenant_id: str, revisions: Mapping[uuid.UUID, int | None]
) -> set[uuid.UUID]:
    """The activities a deletion applies to: each deletion without a revision, and each one whose
    revision is no older than the activity's, whose ``revision`` column it now holds.

    The column is then the activity's highest revision, its deletion's included, so that
    ``store_activities`` takes a revision as newer, a restore, only when it follows the deletion
    (a stale copy of what was deleted changes nothing); the payload keeps the revision it was.
    A deletion older than the revision held (an undelete already read) changes nothing.
    """
    numbered = {i: r for i, r in revisions.items() if r is not None}
    applied = {i for i, r in revisions.items() if r is None}
    if numbered:
        ids = sorted(numbered)
        result = await conn.execute(
            text(
                "UPDATE activities a SET revision = d.rev FROM unnest(CAST(:ids AS uuid[]), CAST(:revs AS bigint[])) "
                "AS d(id, rev) WHERE a.tenant_id = :t AND a.activity_id = d.id AND a.revision <= d.rev "
                "RETURNING a.activity_id"
            ),
            {"t": tenant_id, "ids": ids, "revs": [numbered[i] for i in ids]},
        )
        applied |= {row.activity_id for row in result}
    return applied


async def mark_retracted(conn: AsyncConnection, tenant_id: str, ids: Sequence[uuid.UUID]) -> None:
    """The stored activities retracted as deleted at their source (``DELETED_AT_SOURCE``) or as no
    meeting (``NOT_A_MEETING``), in the
    transaction saving the retraction: ``retracted`` takes a meeting out of the held sweep's index
    (migration 0035) while its outcome stays as its source last stated it. Only a newer revision
    clears it (``store_activities``)."""
    if not ids:
        return
    await conn.execute(
        text(
            "UPDATE activities SET retracted = true WHERE tenant_id = :t "
            "AND activity_id = ANY(CAST(:ids AS uuid[])) AND NOT retracted"
        ),
        {"t": tenant_id, "ids": sorted(ids)},
    )


async def record_removals(
    conn: AsyncConnection, tenant_id: str, removals: Sequence[tuple[uuid.UUID, Removal]]
) -> None:
    """Remember the guests who removed a meeting from their calendar (``meeting_removals``), one
    statement: a newer revision still listing one with the answer she had then leaves her out
    (``domain.attendance.removals_in_force``)."""
    if not removals:
        return
    await conn.execute(
        text(
            "INSERT INTO meeting_removals (tenant_id, activity_id, address, answer, revision) "
            "SELECT :t, r.a, r.address, r.answer, r.revision FROM unnest(CAST(:a AS uuid[]), "
            "CAST(:address AS text[]), CAST(:answer AS text[]), CAST(:revision AS bigint[])) "
            "AS r(a, address, answer, revision) ON CONFLICT (tenant_id, activity_id, address) DO UPDATE "
            "SET answer = EXCLUDED.answer, revision = EXCLUDED.revision"
        ),
        {
            "t": tenant_id,
            "a": [a for a, _ in removals],
            "address": [r.address for _, r in removals],
            "answer": [None if r.answer is None else r.answer.value for _, r in removals],
            "revision": [r.revision for _, r in removals],
        },
    )


async def removals_of(
    conn: AsyncConnection, keys: Iterable[tuple[str, uuid.UUID]]
) -> dict[tuple[str, uuid.UUID], list[Removal]]:
    """The removals remembered for these (tenant, meeting) pairs; none for most (one query)."""
    wanted = sorted(set(keys))
    if not wanted:
        return {}
    result = await conn.execute(
        statement(
            "SELECT m.tenant_id, m.activity_id, m.address, m.answer, m.revision FROM meeting_removals m "
            "JOIN unnest(CAST(:t AS varchar[]), CAST(:a AS uuid[])) AS k(t, a) "
            "ON m.tenant_id = k.t AND m.activity_id = k.a ORDER BY m.address"
        ),
        {"t": [t for t, _ in wanted], "a": [a for _, a in wanted]},
    )
    found: dict[tuple[str, uuid.UUID], list[Removal]] = {}
    for row in result:
        answer = None if row.answer is None else ResponseStatus(row.answer)
        found.setdefault((row.tenant_id, row.activity_id), []).append(
            Removal(row.address, answer, row.revision)
        )
    return found


async def settle_removals(
    conn: AsyncConnection,
    tenant_id: str,
    activity_id: uuid.UUID,
    ended: Sequence[str],
    kept: Sequence[str],
    revision: int,
) -> None:
    """Forget the removals a newer revision ended (``ended``); those it kept in force are kept
    from ``revision`` on, so a revision older than it delivered later changes none of them."""
    params = {"t": tenant_id, "a": activity_id, "r": revision}
    if ended:
        await conn.execute(
            text(
                "DELETE FROM meeting_removals WHERE tenant_id = :t AND activity_id = :a "
                "AND address = ANY(:ended) AND revision < :r"
            ),
            {**params, "ended": list(ended)},
        )
    if kept:
        await conn.execute(
            text(
                "UPDATE meeting_removals SET revision = :r WHERE tenant_id = :t AND activity_id = :a "
                "AND address = ANY(:kept) AND revision < :r"
            ),
            {**params, "kept": list(kept)},
        )


async def people_of_addresses(
    conn: AsyncConnection, tenant_id: str, addresses: Iterable[str]
) -> dict[str, str]:
    """``address -> person`` for the addresses a rep holds (her person: the rep she is an alias of,
    else herself); addresses no rep holds are absent."""
    wanted = sorted({a.lower() for a in addresses})
    if not wanted:
        return {}
    result = await conn.execute(
        text(
            "SELECT i.identity, coalesce(r.alias_of, r.rep_id) AS person FROM ref_rep_identities i "
            "JOIN ref_reps r ON r.tenant_id = i.tenant_id AND r.rep_id = i.rep_id "
            "WHERE i.tenant_id = :t AND i.identity = ANY(:ids)"
        ),
        {"t": tenant_id, "ids": wanted},
    )
    return {row.identity: row.person for row in result}


async def load_activities(
    conn: AsyncConnection, tenant_id: str, ids: Sequence[uuid.UUID]
) -> list[IngestedEvent]:
    """The stored activities, decoded as the consumer decodes a message (msgspec first, the contract always).

    The payload is read as text: the driver's ``json.loads`` into dicts and pydantic's validation of
    them cost several times the decoder's one pass. A meeting two sources reported carries the
    deal a CRM user filed it on when its newest revision names none (``domain.source_deals``).
    """
    if not ids:
        return []
    result = await conn.execute(
        text(
            "SELECT payload::text AS payload, source_deals FROM activities "
            "WHERE tenant_id = :t AND activity_id = ANY(:ids)"
        ),
        {"t": tenant_id, "ids": list(ids)},
    )
    return [
        with_source_deals(activity, decode_source_deals(row.source_deals)) if row.source_deals else activity
        for row in result
        for activity in (decode_ingested(row.payload.encode()),)
    ]


#: A stored meeting still ``scheduled`` and not retracted: the rows of the held sweep's partial
#: index ``activities_scheduled_by_tenant`` (migrations 0032, 0035, 0036): a meeting deleted at its
#: source keeps the outcome its source last stated but leaves the index (``retracted``).
_SCHEDULED = "a.kind = 'meeting' AND a.outcome = 'scheduled' AND NOT a.retracted"
#: One whose end is past the cutoff (``domain.held``); its start bounds it in the index.
_ENDED_SCHEDULED = (
    f"{_SCHEDULED} AND a.occurred_at <= :cutoff "
    "AND a.occurred_at + a.duration_seconds * interval '1 second' <= :cutoff"
)
#: The partial index the held sweep reads through, by tenant then start (migration 0036); without
#: it each look is a sequential scan of every tenant's activities.
SCHEDULED_MEETINGS_INDEX = "activities_scheduled_by_tenant"


async def has_scheduled_meetings_index(conn: AsyncConnection) -> bool:
    """Whether migration 0036's index exists and is valid (an index built ``CONCURRENTLY`` that
    failed stays under its name, invalid: the planner never uses it)."""
    found = await conn.execute(
        text(
            "SELECT 1 FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
            "JOIN pg_namespace n ON n.oid = i.relnamespace "
            "WHERE n.nspname = current_schema() AND i.relname = :i AND x.indisvalid"
        ),
        {"i": SCHEDULED_MEETINGS_INDEX},
    )
    return found.first() is not None


def _started(started_after: datetime | None, started_by: datetime | None) -> tuple[str, dict[str, Any]]:
    """The SQL and parameters bounding a meeting's start (the sweep's recent window, its backlog)."""
    bounds, window = "", {}
    if started_after is not None:
        bounds, window["after"] = bounds + "AND a.occurred_at > :after ", started_after
    if started_by is not None:
        bounds, window["by"] = bounds + "AND a.occurred_at <= :by ", started_by
    return bounds, window


async def tenants_with_ended_meetings(
    conn: AsyncConnection,
    cutoff: datetime,
    *,
    started_after: datetime | None = None,
    started_by: datetime | None = None,
    tenants_out: Collection[str] = (),
) -> list[str]:
    """The tenants with a meeting still ``scheduled`` that ended by ``cutoff`` (started after
    ``started_after`` and by ``started_by`` when given), the tenant whose earliest such meeting
    started first first; never those of ``tenants_out`` (quarantined by the sweep).

    No meeting of a tenant left out is read, however many it has: the tenants are found by
    skipping through the index (the first entry of each tenant with a scheduled meeting, one
    descent each), a tenant left out is dropped there, and each other's earliest ended meeting is
    one more descent into its own range of the index."""
    bounds, window = _started(started_after, started_by)
    result = await conn.execute(
        text(
            "WITH RECURSIVE found(tenant_id) AS ("
            f"(SELECT a.tenant_id FROM activities a WHERE {_SCHEDULED} ORDER BY a.tenant_id LIMIT 1) "
            "UNION ALL "
            f"SELECT (SELECT a.tenant_id FROM activities a WHERE {_SCHEDULED} AND a.tenant_id > f.tenant_id "
            "ORDER BY a.tenant_id LIMIT 1) FROM found f WHERE f.tenant_id IS NOT NULL) "
            "SELECT f.tenant_id FROM found f CROSS JOIN LATERAL ("
            f"SELECT a.occurred_at FROM activities a WHERE a.tenant_id = f.tenant_id AND {_ENDED_SCHEDULED} "
            f"{bounds}ORDER BY a.occurred_at LIMIT 1) e "
            "WHERE f.tenant_id IS NOT NULL AND f.tenant_id <> ALL(CAST(:out AS text[])) "
            "ORDER BY e.occurred_at, f.tenant_id"
        ),
        {"cutoff": cutoff, **window, "out": sorted(tenants_out)},
    )
    return [row.tenant_id for row in result]


async def lock_ended_scheduled_meetings(
    conn: AsyncConnection,
    cutoff: datetime,
    limit: int,
    tenants: Sequence[str],
    *,
    started_after: datetime | None = None,
    started_by: datetime | None = None,
    skipped: Collection[tuple[str, uuid.UUID]] = (),
) -> list[tuple[str, uuid.UUID]]:
    """Up to ``limit`` meetings of ``tenants`` still ``scheduled`` that ended by ``cutoff``, tenant
    by tenant in the order given, each tenant's earliest first, locked ``FOR UPDATE SKIP LOCKED``
    until the transaction ends: another replica's sweep (or a consumer storing a newer revision)
    holding one skips it and takes the next, so replicas take different batches.
    ``(tenant, activity)``.

    Only those started after ``started_after`` and by ``started_by`` when given (the sweep's
    recent window and its backlog); never the meetings of ``skipped`` (quarantined by the sweep),
    nor a meeting deleted at its source (its version in force retracted it,
    ``activities.retracted``: nothing is published for it, so it is not held). Each tenant's
    meetings are read in its own range of the index, and only as far as the batch needs: a row
    is locked as it is taken (the outer ``LIMIT`` stops the nested loop, which keeps the order of
    ``tenants``), so no more than ``limit`` rows are locked."""
    if not tenants:
        return []
    bounds, window = _started(started_after, started_by)
    ordered = sorted(skipped)
    result = await conn.execute(
        text(
            "SELECT m.tenant_id, m.activity_id FROM unnest(CAST(:tenants AS text[])) AS t(tenant_id) "
            "CROSS JOIN LATERAL (SELECT a.tenant_id, a.activity_id FROM activities a "
            f"WHERE a.tenant_id = t.tenant_id AND {_ENDED_SCHEDULED} {bounds}"
            "AND NOT EXISTS (SELECT 1 FROM unnest(CAST(:st AS text[]), CAST(:sid AS uuid[])) "
            "AS q(tenant_id, activity_id) "
            "WHERE q.tenant_id = a.tenant_id AND q.activity_id = a.activity_id) "
            "ORDER BY a.occurred_at LIMIT :limit FOR UPDATE OF a SKIP LOCKED) m "
            "LIMIT :limit"
        ),
        {
            "cutoff": cutoff,
            "limit": limit,
            "tenants": list(tenants),
            **window,
            "st": [t for t, _ in ordered],
            "sid": [i for _, i in ordered],
        },
    )
    return [(row.tenant_id, row.activity_id) for row in result]


async def queue_held(conn: AsyncConnection, events: Sequence[Attributed]) -> None:
    """Queue the held sweep's versions to publish once their transaction commits
    (``held_sweep_outbox``, migration 0037), as ``encode_attributed`` writes them."""
    if not events:
        return
    await conn.execute(
        text(
            "INSERT INTO held_sweep_outbox (tenant_id, activity_id, version, event) "
            "SELECT * FROM unnest(CAST(:t AS text[]), CAST(:a AS uuid[]), CAST(:v AS int[]), CAST(:e AS bytea[]))"
        ),
        {
            "t": [e.tenant_id for e in events],
            "a": [e.activity_id for e in events],
            "v": [e.version for e in events],
            "e": [encode_attributed(e) for e in events],
        },
    )


@dataclass(frozen=True, slots=True)
class QueuedHeld:
    """A queued version as stored: ``event`` is its body (``encode_attributed``), decoded by the
    sweep (``decode_encoded``) so that a row that cannot be is set aside on its own."""

    outbox_id: int
    tenant_id: str
    activity_id: uuid.UUID
    version: int
    event: bytes


async def lock_queued_held(
    conn: AsyncConnection, limit: int, skipped: Collection[int] = ()
) -> list[QueuedHeld]:
    """Up to ``limit`` queued versions, the first queued first, locked ``FOR UPDATE SKIP LOCKED``
    (two processes never publish the same one at once); never those of ``skipped`` (set aside by
    the sweep as failing)."""
    result = await conn.execute(
        text(
            "SELECT outbox_id, tenant_id, activity_id, version, event FROM held_sweep_outbox "
            "WHERE outbox_id <> ALL(CAST(:skipped AS bigint[])) ORDER BY outbox_id LIMIT :limit "
            "FOR UPDATE SKIP LOCKED"
        ),
        {"limit": limit, "skipped": sorted(skipped)},
    )
    return [QueuedHeld(r.outbox_id, r.tenant_id, r.activity_id, r.version, bytes(r.event)) for r in result]


async def clear_queued_held(conn: AsyncConnection, outbox_ids: Sequence[int]) -> None:
    """Delete the queued versions published (acknowledged)."""
    if outbox_ids:
        await conn.execute(
            text("DELETE FROM held_sweep_outbox WHERE outbox_id = ANY(:ids)"), {"ids": list(outbox_ids)}
        )


async def mark_meetings_held(conn: AsyncConnection, tenant_id: str, ids: Sequence[uuid.UUID]) -> None:
    """The stored meetings' outcome (column and payload) becomes ``held``; revision unchanged, so
    any newer revision from the source replaces it as usual (``store_activities``)."""
    if not ids:
        return
    await conn.execute(
        text(
            "UPDATE activities SET outcome = 'held', payload = jsonb_set(payload, '{outcome}', '\"held\"') "
            "WHERE tenant_id = :t AND activity_id = ANY(:ids) AND outcome = 'scheduled'"
        ),
        {"t": tenant_id, "ids": sorted(ids)},
    )


#: An attribution whose deal the rules decide: automatic, or overridden by a **rep-only** override
#: (``{"rep_id": ...}``: who did the work, not what it was about; docs/attribution.md, the
#: cascade's step 1). The deal-driven re-matches (a deal's window, a deal or account gone, a
#: partner typed) select both: the override's rep stays, the deal follows the CRM. ``{a}`` is the
#: attributions alias.
_DEAL_IS_AUTOMATIC = (
    "(NOT {a}.is_override OR EXISTS (SELECT 1 FROM attribution_overrides o WHERE o.tenant_id = {a}.tenant_id "
    "AND o.activity_id = {a}.activity_id AND o.deal_id IS NULL AND o.account_id IS NULL))"
)


async def activities_to_rematch(
    conn: AsyncConnection,
    tenant_id: str,
    changed: ChangedReferences,
    now: datetime,
    limit: int = 5_000,
    time_zone: str = "UTC",
) -> list[uuid.UUID]:
    """Activities the CRM changes may settle or move, oldest first, at most ``limit``.

    * parked ones (unmatched, account-only, ambiguous, unsure; ``parked_until`` still ahead)
      whose participants carry a changed identity or domain (or a parent domain of it), whose
      participants are contacts whose deal roles changed, or whose account or explicit
      references changed;
    * parked internal meetings (parked for a caller no contact listed, ``unidentified_callers``)
      only when a phone changed and one of their participants holds it: the only change that
      settles them, so a batch changing no phone reads none of their participants;
    * any one pointing at a deal or account that was deleted or merged (its survivor takes over);
    * any one of the last ``DEFAULT_REMATCH_WINDOW_DAYS`` whose participants carry an email or
      phone a rep just gained: it may be that rep's (the rep's record arrived after the activity,
      as when a CRM load races the first activities, or a new hire's record after their first
      week); parked or not, internal and excluded ones included;
    * any one on a deal written now whose account it lacks, or credited to nobody: an activity
      naming the deal (``crm.deal_id``) before the deal was synced got neither its account nor
      its owner;
    * any one of the last ``DEFAULT_REMATCH_WINDOW_DAYS`` with a participant at a domain an
      account gained under another domain an account holds (``narrowing_domains``: a subsidiary's
      ``eu.buyer.example`` arriving after mail from there went to the parent on ``buyer.example``);
    * any one from a rep's return (reactivated after she left) whose participants carry an email
      or phone she held when she left (``returned_identities``), an address the tenant maps to
      her, or an address at the tenant's own domains whose mailbox follows her name
      (``returned_mailboxes``): decided while her record said she was away, it may be hers
      again; from the earliest return of the batch, inside the last
      ``DEFAULT_REMATCH_WINDOW_DAYS``; what happened while she was away is not selected (of
      another rep returning in the same batch, re-decided as it was: she was away);
    * any one of the last ``DEFAULT_REMATCH_WINDOW_DAYS`` on an account that became or stopped
      being a partner (``partner_changed``), on one of its deals, listing one as a secondary, or
      whose explanation names one (``yielded``, ``runners_up``: under ``unique_only`` no
      secondary is stored, so a deal the partner's yielded to, or a tie filed under the
      customer's account, is found only there): a partner's deal yields to its customer's (rules
      2026.12.28), so mail decided for the reseller's deal before the CRM typed it a partner is
      the customer's now, and back;
    * any one of a rep whose team membership changed, from the first day it may have changed,
      that day starting at midnight in the tenant's ``time_zone`` (memberships are dated, and
      teams read, on the tenant's calendar).

    Overrides are never selected (a person's correction is final), but for a rep-only override
    in the deal-driven selections (a deal or account gone, a partner typed): its deal is the
    rules' (``_DEAL_IS_AUTOMATIC``).
    """
    reps = sorted(changed.rep_team_since)
    # From the earliest return of the batch (re-deciding an activity of another identity's gap
    # changes nothing: it is decided as while she was away), inside the re-match window; a
    # mailbox following her name only at the tenant's own domains (``ana.lopez@buyer.example``
    # is someone else).
    returned = {**changed.returned_mailboxes, **changed.returned_identities}
    internal: frozenset[str] = frozenset()
    if changed.returned_mailboxes:
        internal = await tenant_internal_domains(conn, tenant_id, await load_tenant_settings(conn, tenant_id))
    partner_deals: list[str] = []
    if changed.partner_changed:
        found = await conn.execute(
            text(
                "SELECT deal_id FROM ref_deals WHERE tenant_id = :t AND account_id = ANY(:a) ORDER BY deal_id"
            ),
            {"t": tenant_id, "a": sorted(changed.partner_changed)},
        )
        partner_deals = [row.deal_id for row in found]
    result = await conn.execute(
        text(
            """
            WITH wanted AS (
                SELECT at.activity_id, at.occurred_at FROM attributions at
                JOIN activities ac USING (tenant_id, activity_id)
                WHERE at.tenant_id = :t AND at.parked_until > :now AND NOT at.is_override
                  AND at.status <> 'internal'
                  AND (
                    at.account_id = ANY(:accounts)
                    OR ac.payload -> 'crm' ->> 'account_id' = ANY(:accounts)
                    OR EXISTS (
                        SELECT 1 FROM jsonb_array_elements(ac.payload -> 'participants') p
                        WHERE p ->> 'email' = ANY(:identities) OR p ->> 'phone' = ANY(:identities)
                           OR p ->> 'email' IN (SELECT identity FROM ref_contact_identities
                                                WHERE tenant_id = :t AND contact_id = ANY(:contacts))
                           OR p ->> 'phone' IN (SELECT identity FROM ref_contact_identities
                                                WHERE tenant_id = :t AND contact_id = ANY(:contacts))
                           OR EXISTS (SELECT 1 FROM unnest(CAST(:domains AS text[])) d
                                      WHERE split_part(p ->> 'email', '@', 2) = d
                                         OR split_part(p ->> 'email', '@', 2) LIKE '%.' || d))
                  )
                UNION
                -- An internal meeting parked for a caller no contact listed: a number listed now.
                SELECT at.activity_id, at.occurred_at FROM attributions at
                JOIN activities ac USING (tenant_id, activity_id)
                WHERE at.tenant_id = :t AND at.parked_until > :now AND NOT at.is_override
                  AND at.status = 'internal' AND cardinality(CAST(:phones AS text[])) > 0
                  AND EXISTS (
                    SELECT 1 FROM jsonb_array_elements(ac.payload -> 'participants') p
                    WHERE p ->> 'phone' = ANY(:phones)
                  )
                UNION
                SELECT activity_id, occurred_at FROM attributions auto
                WHERE tenant_id = :t AND {gone_automatic}
                  AND (deal_id = ANY(:gone_deals) OR secondary_deal_ids && CAST(:gone_deals AS text[])
                       OR account_id = ANY(:gone_accounts))
                UNION
                SELECT activity_id, occurred_at FROM attributions auto
                WHERE tenant_id = :t AND {gone_automatic}
                  AND cardinality(CAST(:partner_accounts AS text[])) > 0 AND occurred_at >= :rep_since
                  AND (account_id = ANY(:partner_accounts)
                       OR deal_id = ANY(:partner_deals)
                       OR secondary_deal_ids && CAST(:partner_deals AS text[])
                       OR EXISTS (
                           SELECT 1 FROM jsonb_array_elements(
                               CASE WHEN jsonb_typeof(explanation -> 'yielded') = 'array'
                                    THEN explanation -> 'yielded' ELSE '[]'::jsonb END
                               || CASE WHEN jsonb_typeof(explanation -> 'runners_up') = 'array'
                                       THEN explanation -> 'runners_up' ELSE '[]'::jsonb END) n
                           WHERE n ->> 'deal_id' = ANY(:partner_deals)))
                UNION
                SELECT at.activity_id, at.occurred_at FROM attributions at
                JOIN activities ac USING (tenant_id, activity_id)
                WHERE at.tenant_id = :t AND NOT at.is_override
                  AND cardinality(CAST(:rep_identities AS text[])) > 0 AND at.occurred_at >= :rep_since
                  AND EXISTS (
                    SELECT 1 FROM jsonb_array_elements(ac.payload -> 'participants') p
                    WHERE p ->> 'email' = ANY(:rep_identities) OR p ->> 'phone' = ANY(:rep_identities)
                  )
                UNION
                SELECT at.activity_id, at.occurred_at FROM attributions at
                JOIN unnest(CAST(:deals AS text[]), CAST(:deal_accounts AS text[])) AS d(deal_id, account_id)
                  ON at.deal_id = d.deal_id
                WHERE at.tenant_id = :t AND NOT at.is_override
                  AND (at.account_id IS DISTINCT FROM d.account_id OR at.rep_id IS NULL)
                UNION
                SELECT at.activity_id, at.occurred_at FROM attributions at
                JOIN activities ac USING (tenant_id, activity_id)
                WHERE at.tenant_id = :t AND NOT at.is_override
                  AND cardinality(CAST(:narrowing AS text[])) > 0 AND at.occurred_at >= :rep_since
                  AND EXISTS (
                    SELECT 1 FROM jsonb_array_elements(ac.payload -> 'participants') p,
                                  unnest(CAST(:narrowing AS text[])) d
                    WHERE split_part(p ->> 'email', '@', 2) = d OR split_part(p ->> 'email', '@', 2) LIKE '%.' || d
                  )
                UNION
                SELECT at.activity_id, at.occurred_at FROM attributions at
                JOIN activities ac USING (tenant_id, activity_id)
                WHERE at.tenant_id = :t AND NOT at.is_override
                  AND cardinality(CAST(:returned AS text[])) + cardinality(CAST(:returned_mailboxes AS text[])) > 0
                  AND at.occurred_at >= :returned_since AND at.occurred_at >= :rep_since
                  AND EXISTS (
                    SELECT 1 FROM jsonb_array_elements(ac.payload -> 'participants') p
                    WHERE lower(p ->> 'email') = ANY(:returned) OR p ->> 'phone' = ANY(:returned)
                       OR (split_part(lower(p ->> 'email'), '@', 1) = ANY(:returned_mailboxes)
                           AND EXISTS (SELECT 1 FROM unnest(CAST(:internal AS text[])) d
                                       WHERE split_part(lower(p ->> 'email'), '@', 2) = d
                                          OR split_part(lower(p ->> 'email'), '@', 2) LIKE '%.' || d))
                  )
                UNION
                SELECT at.activity_id, at.occurred_at FROM attributions at
                JOIN unnest(CAST(:reps AS text[]), CAST(:since AS timestamptz[])) AS r(rep_id, since)
                  ON at.rep_id = r.rep_id AND at.occurred_at >= r.since
                WHERE at.tenant_id = :t AND NOT at.is_override
            )
            SELECT activity_id FROM wanted ORDER BY occurred_at, activity_id LIMIT :limit
            """.replace("{gone_automatic}", _DEAL_IS_AUTOMATIC.format(a="auto"))
        ),
        {
            "t": tenant_id,
            "now": now,
            "identities": sorted(changed.identities),
            # Phones only (an email holds an @): what settles an internal meeting's caller.
            "phones": sorted(i for i in changed.identities if "@" not in i),
            "rep_identities": sorted(changed.rep_identities),
            "rep_since": now - timedelta(days=DEFAULT_REMATCH_WINDOW_DAYS),
            "domains": sorted(changed.domains),
            "narrowing": sorted(changed.narrowing_domains),
            "deals": [after.id for _, after in changed.deal_changes],
            "deal_accounts": [after.account_id for _, after in changed.deal_changes],
            "accounts": sorted(changed.account_ids),
            "contacts": sorted(changed.contact_ids),
            "gone_deals": sorted(changed.gone_deal_ids),
            "gone_accounts": sorted(changed.gone_account_ids),
            "partner_accounts": sorted(changed.partner_changed),
            "partner_deals": partner_deals,
            "returned": sorted(changed.returned_identities),
            "returned_mailboxes": sorted(changed.returned_mailboxes),
            "returned_since": min(returned.values(), default=now),
            "internal": sorted(internal),
            "reps": reps,
            "since": [day_start(changed.rep_team_since[r], time_zone) for r in reps],
            "limit": limit,
        },
    )
    return [row.activity_id for row in result]


async def contacts_elsewhere(
    conn: AsyncConnection, tenant_id: str, deal_changes: Sequence[tuple[Deal | None, Deal]]
) -> dict[str, set[str]]:
    """Deal -> the contacts who lost their role on it and are now of another account than the
    deal's (a new job): the role went with them (``rematch.deal_rematch_window``'s ``left``)."""
    deals: list[str] = []
    contacts: list[str] = []
    accounts: list[str | None] = []
    for before, after in deal_changes:
        for contact_id in sorted(before.contact_ids - after.contact_ids) if before else ():
            deals.append(after.id)
            contacts.append(contact_id)
            accounts.append(after.account_id)
    if not deals:
        return {}
    result = await conn.execute(
        text(
            "SELECT l.deal_id, l.contact_id FROM unnest(CAST(:d AS text[]), CAST(:c AS text[]), "
            "CAST(:a AS text[])) AS l(deal_id, contact_id, account_id) "
            "JOIN ref_contacts c ON c.tenant_id = :t AND c.contact_id = l.contact_id "
            "WHERE c.account_id IS NOT NULL AND c.account_id IS DISTINCT FROM l.account_id"
        ),
        {"t": tenant_id, "d": deals, "c": contacts, "a": accounts},
    )
    left: dict[str, set[str]] = {}
    for row in result:
        left.setdefault(row.deal_id, set()).add(row.contact_id)
    return left


async def activities_in_windows(
    conn: AsyncConnection, tenant_id: str, windows: Sequence[RematchWindow], limit: int
) -> list[uuid.UUID]:
    """The ids of ``windowed_activities``."""
    return [activity_id for activity_id, _ in await windowed_activities(conn, tenant_id, windows, limit)]


async def windowed_activities(
    conn: AsyncConnection,
    tenant_id: str,
    windows: Sequence[RematchWindow],
    limit: int,
    after: tuple[datetime, uuid.UUID] | None = None,
) -> list[tuple[uuid.UUID, datetime]]:
    """Automatic attributions inside each window, attributed or not, oldest first, at most ``limit``:
    those on the window's accounts (``attributions_account`` index), and those with a participant
    holding an identity of the window's contacts or of any contact of its accounts, whichever
    account they were decided on (rules unchanged; issue #14): a meeting with buyers of two
    accounts decided while only one account's deal was known is on that account, and is re-decided
    when the other's deal (or a role on it) arrives; so is mail to one person recorded in two
    accounts, or to a contact who was of another account before. The contacts' activities are found
    through ``activities_participants`` (migration 0053: the tenant's participants' addresses and
    numbers, ``activity_identities``), one index read for each identity and window naming her, and
    the window's time is checked on the rows found: the tenant's other activities in the window are
    never read, and no row's participants are parsed (before, each row the index found was matched
    against the identities one at a time, ``activity_identities`` called for each: 16 million calls
    and 185 s for an account of 800 contacts and 20,000 activities, 93 ms now). A window's ``identities`` (a contact's new emails and phones,
    ``rematch.identity_rematch_window``) are read the same way, beside her other identities'
    windows. An explicit ``crm.account_id`` or
    ``crm.contact_ids`` puts the activity on that account too. An activity overridden for its rep
    alone is selected (its deal is the rules'); other overrides are not. ``after``: only those
    past this (occurred_at, activity_id), where a retried ``rematch`` job's committed batches
    ended. (activity_id, occurred_at) pairs."""
    keys: dict[str, list[Any]] = {"kind": [], "key": [], "since": [], "until": []}
    for window in windows:
        for kind, ids in (
            ("account", window.account_ids),
            ("contact", window.contact_ids),
            ("identity", window.identities),
        ):
            for key in sorted(ids):
                keys["kind"].append(kind)
                keys["key"].append(key)
                keys["since"].append(window.since)
                keys["until"].append(window.until)
    if not keys["key"] or limit <= 0:
        return []
    result = await conn.execute(
        text(
            """
            WITH w AS (
                SELECT * FROM unnest(CAST(:kind AS text[]), CAST(:key AS text[]), CAST(:since AS timestamptz[]),
                                     CAST(:until AS timestamptz[])) AS w(kind, key, since, until)
            ), accounts AS (
                SELECT key AS account_id, since, until FROM w WHERE kind = 'account'
            ), people AS (
                SELECT key AS contact_id, since, until FROM w WHERE kind = 'contact'
                UNION
                SELECT c.contact_id, a.since, a.until FROM accounts a
                JOIN ref_contacts c ON c.tenant_id = :t AND c.account_id = a.account_id
            ), identities AS MATERIALIZED (
                -- as ``activities_participants`` holds them: "<tenant> <identity>"
                SELECT CAST(:t AS text) || ' ' || i.identity AS key, i.since, i.until FROM (
                    SELECT ci.identity, p.since, p.until FROM people p
                    JOIN ref_contact_identities ci ON ci.tenant_id = :t AND ci.contact_id = p.contact_id
                    UNION
                    -- a contact's new emails and phones (``rematch.identity_rematch_window``)
                    SELECT key, since, until FROM w WHERE kind = 'identity'
                ) i
            ), theirs AS MATERIALIZED (
                -- their activities: each identity's own, read through ``activities_participants``
                -- (a few index pages a key, which holds the tenant; no row's participants
                -- parsed), then the tenant and the window's time checked on them (OFFSET 0: not as
                -- index conditions, which would read the tenant's whole window from
                -- ``activities_time`` again for each identity)
                SELECT DISTINCT ac.activity_id, ac.occurred_at FROM identities o
                CROSS JOIN LATERAL (
                    SELECT a.tenant_id, a.activity_id, a.occurred_at FROM activities a
                    WHERE activity_identities(a.tenant_id, a.payload -> 'participants') && ARRAY[o.key]
                    OFFSET 0
                ) ac
                WHERE ac.tenant_id = :t
                  AND ac.occurred_at >= o.since AND (o.until IS NULL OR ac.occurred_at <= o.until)
            )
            SELECT * FROM (
            SELECT at.activity_id, at.occurred_at FROM accounts a
            JOIN attributions at ON at.tenant_id = :t AND at.account_id = a.account_id
             AND at.occurred_at >= a.since AND (a.until IS NULL OR at.occurred_at <= a.until)
            WHERE {automatic}
            UNION
            SELECT at.activity_id, at.occurred_at FROM theirs ac
            JOIN attributions at ON at.tenant_id = :t AND at.activity_id = ac.activity_id
            WHERE {automatic}
            ) chosen
            WHERE CAST(:after_at AS timestamptz) IS NULL
               OR (occurred_at, activity_id) > (CAST(:after_at AS timestamptz), CAST(:after_id AS uuid))
            ORDER BY occurred_at, activity_id LIMIT :limit
            """.format(automatic=_DEAL_IS_AUTOMATIC.format(a="at"))
        ),
        {
            "t": tenant_id,
            **keys,
            "limit": limit,
            "after_at": after[0] if after else None,
            "after_id": after[1] if after else None,
        },
    )
    return [(row.activity_id, row.occurred_at) for row in result]


#: Finished ``rematch`` jobs (done or failed) are deleted this long after they ended.
async def queue_rematch(conn: AsyncConnection, tenant_id: str, parameters: dict[str, Any]) -> uuid.UUID:
    """Merge these windows into the tenant's queued ``rematch`` job not yet tried, in the caller's
    transaction, or queue one: twenty batches of close-date pushes on one account queue one job,
    whose windows it re-decides once (``domain.rematch.merged_windows``). The job stays locked
    until the batch commits, so no worker claims it meanwhile; one a worker claimed first is
    left as it is (a new one is queued), and so is one put back with a checkpoint by a stopping
    worker (it resumes past the checkpoint: merged windows' earlier activities would be skipped). Finished ``rematch`` jobs older than
    ``REMATCH_JOBS_KEPT`` are deleted here too. (No unique index: a previous release's consumer
    queues with a plain insert during a rolling deploy; two batches of another replica racing
    queue two jobs at worst, the next merges into the oldest.)"""
    await conn.execute(
        text(
            "DELETE FROM settings_jobs WHERE tenant_id = :t AND kind = 'rematch' "
            "AND state IN ('done', 'failed') AND finished_at < now() - CAST(:kept AS interval)"
        ),
        {"t": tenant_id, "kept": REMATCH_JOBS_KEPT},
    )
    windows = orjson.dumps(parameters["windows"]).decode()
    merged = await conn.execute(
        text(
            """
            UPDATE settings_jobs SET parameters = jsonb_build_object('windows', (
                SELECT jsonb_agg(DISTINCT w)
                FROM jsonb_array_elements((parameters -> 'windows') || CAST(:w AS jsonb)) w))
            WHERE job_id = (
                SELECT job_id FROM settings_jobs
                WHERE tenant_id = :t AND kind = 'rematch' AND state = 'queued' AND attempts = 0
                AND checkpoint IS NULL
                ORDER BY created_at LIMIT 1 FOR UPDATE
            ) RETURNING job_id
            """
        ),
        {"t": tenant_id, "w": windows},
    )
    job_id = merged.scalar_one_or_none()
    if job_id is not None:
        return cast(uuid.UUID, job_id)
    return await queue_job(conn, tenant_id, REMATCH, "attribution", parameters=parameters)


async def people_of(conn: AsyncConnection, tenant_id: str, rep_ids: Iterable[str]) -> dict[str, str]:
    """``alias id -> canonical id`` for those of ``rep_ids`` that are another rep's person."""
    wanted = sorted(set(rep_ids))
    if not wanted:
        return {}
    result = await conn.execute(
        text(
            "SELECT rep_id, alias_of FROM ref_reps WHERE tenant_id = :t AND rep_id = ANY(:r) "
            "AND alias_of IS NOT NULL"
        ),
        {"t": tenant_id, "r": wanted},
    )
    return {row.rep_id: row.alias_of for row in result}


async def activities_in_range(
    conn: AsyncConnection, tenant_id: str, since: datetime, until: datetime | None, limit: int | None
) -> list[uuid.UUID]:
    """The tenant's activities with ``since <= occurred_at < until`` whose decision the rules make,
    oldest first (``spm reattribute``): never decided yet, automatic, or overridden by a rep-only
    override (its deal is the rules'). One an admin pinned on a deal or an account is left out: the
    override stays as set (docs/attribution.md, Manual overrides), so re-applying it cannot re-derive
    what it filled in (the account of its deal, moved since)."""
    result = await conn.execute(
        text(
            "SELECT ac.activity_id FROM activities ac LEFT JOIN attributions at "
            "ON at.tenant_id = ac.tenant_id AND at.activity_id = ac.activity_id "
            "WHERE ac.tenant_id = :t AND ac.occurred_at >= :since "
            "AND (CAST(:until AS timestamptz) IS NULL OR ac.occurred_at < :until) "
            f"AND (at.activity_id IS NULL OR {_DEAL_IS_AUTOMATIC.format(a='at')}) "
            "ORDER BY ac.occurred_at, ac.activity_id LIMIT :limit"
        ),
        {"t": tenant_id, "since": since, "until": until, "limit": limit},
    )
    return [row.activity_id for row in result]


async def activities_of_reps(
    conn: AsyncConnection, tenant_id: str, rep_ids: Iterable[str], limit: int
) -> list[uuid.UUID]:
    """Automatic attributions credited to these reps or on deals they own, oldest first: their
    person changed (an owner's person decides between several reps of a meeting); and the
    activities an admin pinned on one of them (the override stays, credited to her person now)."""
    wanted = sorted(set(rep_ids))
    if not wanted or limit <= 0:
        return []
    result = await conn.execute(
        text(
            "SELECT activity_id, occurred_at FROM attributions WHERE tenant_id = :t AND rep_id = ANY(:r) "
            "AND NOT is_override "
            "UNION SELECT at.activity_id, at.occurred_at FROM ref_deals d "
            "JOIN attributions at ON at.tenant_id = d.tenant_id AND at.deal_id = d.deal_id "
            "WHERE d.tenant_id = :t AND d.owner_rep_id = ANY(:r) AND NOT at.is_override "
            "UNION SELECT at.activity_id, at.occurred_at FROM attribution_overrides o "
            "JOIN attributions at ON at.tenant_id = o.tenant_id AND at.activity_id = o.activity_id "
            "WHERE o.tenant_id = :t AND o.rep_id = ANY(:r) "
            "ORDER BY occurred_at, activity_id LIMIT :limit"
        ),
        {"t": tenant_id, "r": wanted, "limit": limit},
    )
    return [row.activity_id for row in result]


#: A Twilio SIP Domain's host at an edge location, at the end of a softphone's address
#: (``ana@acme.sip.us1.twilio.com``): read as the domain's (``tenant_settings.twilio_sip_domain``).
_TWILIO_EDGE = r"\.sip\.[a-z0-9-]+\.twilio\.com$"


async def activities_naming(
    conn: AsyncConnection,
    tenant_id: str,
    addresses: Iterable[str],
    identities: Iterable[str],
    limit: int,
) -> list[uuid.UUID]:
    """Automatic attributions of activities with a participant at one of ``addresses`` (compared
    lower-cased), or whose source knows their rep by one of ``identities``
    (``crm.owner_identities``: a RingCentral extension id, a Twilio softphone identity), oldest
    first: the tenant mapped (or unmapped) them to a rep. One pass over the tenant's activities."""
    emails = sorted({a.strip().lower() for a in addresses})
    ids = sorted(set(identities))
    if not (emails or ids) or limit <= 0:
        return []
    result = await conn.execute(
        text(
            "SELECT at.activity_id FROM attributions at JOIN activities ac USING (tenant_id, activity_id) "
            "WHERE at.tenant_id = :t AND NOT at.is_override AND (EXISTS ("
            "SELECT 1 FROM jsonb_array_elements(ac.payload -> 'participants') p "
            "WHERE lower(p ->> 'email') = ANY(:a)) OR EXISTS ("
            "SELECT 1 FROM jsonb_array_elements_text(ac.payload -> 'crm' -> 'owner_identities') i "
            # A Twilio softphone's address kept with an edge location's host names its SIP
            # Domain's key too (tenant_settings.twilio_sip_identity).
            "WHERE i = ANY(:i) OR regexp_replace(i, :edge, :domain, 'i') = ANY(:i))) "
            "ORDER BY at.occurred_at, at.activity_id LIMIT :limit"
        ),
        {
            "t": tenant_id,
            "a": emails,
            "i": ids,
            "limit": limit,
            "edge": _TWILIO_EDGE,
            "domain": ".sip.twilio.com",
        },
    )
    return [row.activity_id for row in result]


async def parked_replies(
    conn: AsyncConnection,
    tenant_id: str,
    earliest_by_thread: dict[str, datetime],
    exclude: Iterable[uuid.UUID],
    now: datetime,
    limit: int,
) -> list[uuid.UUID]:
    """Parked activities of these threads later than the given moment: a reply inherits from the
    message before it, so when that message is re-attributed its replies may follow.

    Each thread is looked up on its own (``activities_thread``; ``OFFSET 0`` keeps the subquery
    from being flattened into a join): as a join, a planner whose statistics lag a load (the
    first minutes of a tenant, every bench round) scanned every activity of the tenant and
    hashed them against the threads."""
    if not earliest_by_thread:
        return []
    threads = sorted(earliest_by_thread)
    result = await conn.execute(
        statement(
            """
            SELECT ac.activity_id FROM unnest(CAST(:threads AS varchar[]), CAST(:after AS timestamptz[]))
                AS th(thread_id, after)
            CROSS JOIN LATERAL (
                SELECT activity_id, occurred_at FROM activities
                WHERE tenant_id = :t AND thread_id = th.thread_id AND occurred_at > th.after OFFSET 0
            ) ac
            JOIN attributions at ON at.tenant_id = :t AND at.activity_id = ac.activity_id
            WHERE at.parked_until > :now AND NOT at.is_override AND ac.activity_id <> ALL(:exclude)
            ORDER BY ac.occurred_at, ac.activity_id LIMIT :limit
            """
        ),
        {
            "t": tenant_id,
            "threads": threads,
            "after": [earliest_by_thread[t] for t in threads],
            "exclude": sorted(exclude),
            "now": now,
            "limit": limit,
        },
    )
    return [row.activity_id for row in result]


@dataclass(frozen=True, slots=True)
class StoredAttribution:
    activity_id: uuid.UUID
    version: int
    status: str
    rep_id: str | None
    team_id: str | None
    account_id: str | None
    deal_id: str | None
    secondary_deal_ids: tuple[str, ...]
    confidence: float
    is_override: bool
    #: ``explanation.duplicate_of``: the report of the same call or email this one duplicates.
    duplicate_of: uuid.UUID | None = None
    #: The version in force retracted it as deleted at its source (``DELETED_AT_SOURCE``) or as
    #: no meeting (``NOT_A_MEETING``): only a newer revision (a restore) re-decides it.
    deleted: bool = False


#: The ``rule_path`` of the version that retracts an activity its source deleted.
DELETED_AT_SOURCE = "deleted_at_source"
#: The ``rule_path`` of the version that retracts a meeting whose newer revision at its source is
#: no meeting (``ActivityDeletedV1.not_a_meeting``: a hold only colleagues attend, time away); it
#: was not deleted, and is held as one that was until a newer revision.
NOT_A_MEETING = "not_a_meeting"
#: Every ``rule_path`` of a retraction only a newer revision undoes.
RETRACTED_AT_SOURCE = (DELETED_AT_SOURCE, NOT_A_MEETING)


async def current_attributions(
    conn: AsyncConnection, tenant_id: str, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, StoredAttribution]:
    """The current version of each activity's attribution, locked until the transaction ends.

    Without its explanation: nothing decides on it, and reading it back costs a JSON decode per row.
    Each id is looked up on its own (``LATERAL ... OFFSET 0``, the primary key), in id order so
    that concurrent batches lock in one order: with ``activity_id = ANY(...)`` and the statistics
    a first backfill leaves (the table analysed while empty), PostgreSQL 18 read the ids through
    ``attributions_account``, a skip scan over every attribution of the tenant, 6-19 ms for 20-30
    ids in the pipeline bench (docs/performance.md, "seventh round")."""
    if not ids:
        return {}
    result = await conn.execute(
        statement(
            "SELECT a.activity_id, a.version, a.status, a.rep_id, a.team_id, a.account_id, a.deal_id, "
            # Read for calls and emails only: a meeting's explanation is not decompressed for it.
            "a.secondary_deal_ids, a.confidence, a.is_override, "
            "CASE WHEN a.kind IN ('call', 'email') THEN CAST(a.explanation->>'duplicate_of' AS uuid) END "
            "AS duplicate_of, "
            # Only an excluded activity's explanation is read for it (CASE: evaluated in order).
            "CASE WHEN a.status = 'excluded' THEN COALESCE(a.explanation->>'rule_path' = ANY(CAST(:deleted AS text[])), false) "
            "ELSE false END AS deleted "
            "FROM unnest(CAST(:ids AS uuid[])) AS i(id) CROSS JOIN LATERAL ("
            "SELECT * FROM attributions WHERE tenant_id = :t AND activity_id = i.id OFFSET 0) a "
            "FOR UPDATE OF a"
        ),
        # A UUID sorts as PostgreSQL sorts it (bytes, big-endian).
        {"t": tenant_id, "ids": sorted(ids), "deleted": list(RETRACTED_AT_SOURCE)},
    )
    return {
        row.activity_id: StoredAttribution(
            row.activity_id,
            row.version,
            row.status,
            row.rep_id,
            row.team_id,
            row.account_id,
            row.deal_id,
            tuple(row.secondary_deal_ids),
            row.confidence,
            row.is_override,
            row.duplicate_of,
            row.deleted,
        )
        for row in result
    }


async def lock_reps_reports(conn: AsyncConnection, tenant_id: str, rep_ids: Iterable[str]) -> None:
    """Hold, until the transaction ends, the right to decide these reps' calls and emails: two
    reports of one call decided by two consumers at once would each find no other and both count.
    The second waits, then sees the first's committed attribution.

    The keys of one call are taken sorted, and a batch takes its tenants in sorted order
    (``handlers.handle_batch``), so two batches' first passes never wait on each other crosswise.
    The later passes of ``handlers.decide_and_follow`` (linked keepers, parked replies) take more
    thread and rep locks and ``FOR UPDATE`` rows while holding the first pass's, in an order only
    known once the first pass has decided: two lanes may still deadlock there. PostgreSQL then
    aborts one batch and the runner retries it whole (a deadlock is transient,
    ``failures.is_transient``): a retry's cost, not a wrong decision."""
    await _advisory_xact_locks(conn, {f"call-duplicates:{tenant_id}:{rep_id}" for rep_id in rep_ids})


async def lock_threads(conn: AsyncConnection, tenant_id: str, thread_ids: Iterable[str]) -> None:
    """Hold, until the transaction ends, the right to decide these threads' activities: a reply
    decided beside the message it answers (two partitions, two instances) would find no parent
    and be parked, and the parent's pass over its thread's parked replies would not see it yet.
    The second waits, then reads the first's committed versions (``load_reference_index``)."""
    await _advisory_xact_locks(conn, {f"thread:{tenant_id}:{thread_id}" for thread_id in thread_ids})


async def _advisory_xact_locks(conn: AsyncConnection, keys: Collection[str]) -> None:
    """Transaction-level advisory locks on ``keys``, taken in sorted order (one statement)."""
    if keys:
        await conn.execute(
            statement(
                "SELECT count(pg_advisory_xact_lock(hashtextextended(k, 0))) "
                "FROM unnest(CAST(:keys AS varchar[])) AS k"
            ),
            {"keys": sorted(keys)},
        )


async def reports_near(
    conn: AsyncConnection,
    tenant_id: str,
    windows: Sequence[tuple[str, str, datetime, datetime]],
    exclude: Sequence[uuid.UUID],
) -> list[SourceReport]:
    """The attributed calls and emails, but ``exclude``, credited to each ``(rep, counterpart,
    first, last)`` window's rep, in it, with that number or address among their participants': as
    source reports with the ``duplicate_of`` they hold. One range of ``attributions_rep`` per window."""
    if not windows:
        return []
    result = await conn.execute(
        statement(
            """
            SELECT DISTINCT a.activity_id, act.source, a.rep_id, act.occurred_at, act.kind, act.direction,
                   act.payload -> 'participants' AS participants, act.payload ->> 'subject' AS subject,
                   a.duplicate_of
            FROM unnest(CAST(:rep AS varchar[]), CAST(:phone AS varchar[]), CAST(:lo AS timestamptz[]),
                        CAST(:hi AS timestamptz[])) AS w(rep_id, phone, lo, hi)
            CROSS JOIN LATERAL (
                SELECT a.activity_id, a.rep_id, CAST(a.explanation->>'duplicate_of' AS uuid) AS duplicate_of
                FROM attributions a
                WHERE a.tenant_id = :t AND a.rep_id = w.rep_id AND a.occurred_at >= w.lo
                  AND a.occurred_at <= w.hi AND a.kind IN ('call', 'email')
                -- Kept a subquery run per window (an index range each): flattened, the planner
                -- hashed every call of the tenant against the windows (11 ms at 20,000 rows).
                OFFSET 0
            ) a
            -- Each one's activity by its key (OFFSET 0: a probe of ``activities_pkey`` a row found).
            -- Joined plainly, the planner, expecting 17 rows a window where there are none or one,
            -- read the tenant's every activity and hashed them for each batch (16,000 rows, 6.5 MB
            -- spilled to disk, for 99 found; performance.md, eighteenth round).
            CROSS JOIN LATERAL (
                SELECT act.source, act.occurred_at, act.kind, act.direction, act.payload FROM activities act
                WHERE act.tenant_id = :t AND act.activity_id = a.activity_id
                OFFSET 0
            ) act
            WHERE NOT (a.activity_id = ANY(:exclude))
              AND EXISTS (
                  SELECT 1 FROM jsonb_array_elements(act.payload -> 'participants') p
                  WHERE p ->> 'phone' = w.phone OR lower(p ->> 'email') = w.phone
              )
            """
        ),
        {
            "t": tenant_id,
            "rep": [w[0] for w in windows],
            "phone": [w[1] for w in windows],
            "lo": [w[2] for w in windows],
            "hi": [w[3] for w in windows],
            "exclude": list(exclude),
        },
    )
    reports = []
    for row in result:
        participants = (
            row.participants if isinstance(row.participants, list) else orjson.loads(row.participants)
        )
        found = counterparts(row.kind, row.direction, participants)
        if found:
            kind = ActivityKind(row.kind)
            subject = subject_key(row.subject) if kind is ActivityKind.EMAIL else None
            reports.append(
                SourceReport(
                    row.activity_id,
                    row.source,
                    row.rep_id,
                    found,
                    row.occurred_at,
                    row.duplicate_of,
                    subject,
                    kind,
                )
            )
    return sorted(reports, key=lambda r: r.activity_id)


#: Columns of ``attributions`` and their SQL types, as one array per column for ``unnest``.
_ATTRIBUTION_COLUMNS: dict[str, str] = {
    "tenant_id": "text",
    "activity_id": "uuid",
    "version": "integer",
    "status": "text",
    "rep_id": "text",
    "team_id": "text",
    "account_id": "text",
    "deal_id": "text",
    "secondary_deal_ids": "text",
    "confidence": "double precision",
    "explanation": "jsonb",
    "is_override": "boolean",
    "decided_at": "timestamptz",
    "parked_until": "timestamptz",
    "occurred_at": "timestamptz",
    "kind": "text",
}
_ATTRIBUTION_VALUES = operator.itemgetter(*_ATTRIBUTION_COLUMNS)
#: Columns of a superseded version (``attribution_superseded``; ``attribution_history`` is the view
#: of the current and the superseded versions).
_HISTORY_COLUMNS = [
    c for c in _ATTRIBUTION_COLUMNS if c not in {"secondary_deal_ids", "parked_until", "occurred_at", "kind"}
]


def _save_statement(*, history: bool, keep_stored: bool = False) -> str:
    """One statement: the batch's newest version of each activity replaces the current row, and
    whatever it replaces goes to ``attribution_superseded`` (the current row when older, the
    batch's older versions, a stale version that arrives after a newer one). Arrays are unnested
    in SQL: a row per statement would cost PostgreSQL a parse, plan and execute for every
    activity; each row's deal ids are one array literal (``libs.common.db.arrays``). A row marked
    ``inserted`` (its activity was stored in this transaction, see ``store_activities``) has no
    current row: it is not looked up.

    Without ``history`` the statement is a plain insert, for a batch that can supersede nothing:
    one version per activity, every one a first decision (``inserted``). The history CTE would
    find nothing to keep and costs PostgreSQL about 3.5 us a row to find it. ``keep_stored``
    leaves a row already there as it is (``save_attributions``' second try)."""
    columns = list(_ATTRIBUTION_COLUMNS)
    # Strings as ``varchar[]``: encoded by ``array_codecs`` (see ``store_activities``), the
    # explanation's JSON text too, read as ``jsonb`` row by row (``store_activities``).
    casts = ", ".join(
        f"CAST(:{c} AS {'varchar' if t in ('text', 'jsonb') else t}[])"
        for c, t in _ATTRIBUTION_COLUMNS.items()
    )
    selects = ", ".join(
        "CAST(u.secondary_deal_ids AS text[]) AS secondary_deal_ids"
        if c == "secondary_deal_ids"
        else f"CAST(u.{c} AS jsonb) AS {c}"
        if _ATTRIBUTION_COLUMNS[c] == "jsonb"
        else f"u.{c}"
        for c in columns
    )
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in columns[2:])
    upsert = (
        f"ON CONFLICT (tenant_id, activity_id) DO UPDATE SET {updates} "
        "WHERE attributions.version < EXCLUDED.version"
    )
    if not history:
        # A plain insert: no speculative insertion, whose confirmation is one more WAL record per
        # row. No other transaction can insert these keys meanwhile (this one inserted their
        # activities, whose keys it holds until it commits). A row already there could only be
        # an attribution left without its activity (none is: they are deleted together); the
        # second try leaves it as it is rather than failing the batch, looked up id by id
        # (``OFFSET 0``: not an anti-join the planner may hash over the tenant's rows).
        insert = (
            f"INSERT INTO attributions ({', '.join(columns)}) SELECT {selects} "
            f"FROM unnest({casts}) AS u({', '.join(columns)})"
        )
        if not keep_stored:
            return insert
        return (
            f"{insert} WHERE NOT EXISTS (SELECT 1 FROM attributions a "
            "WHERE a.tenant_id = u.tenant_id AND a.activity_id = u.activity_id OFFSET 0)"
        )
    history_columns = ", ".join(_HISTORY_COLUMNS)
    from_cur = ", ".join(f"a.{c}" for c in _HISTORY_COLUMNS)
    from_batch = ", ".join(f"u.{c}" for c in _HISTORY_COLUMNS)
    return (
        f"WITH u AS MATERIALIZED (SELECT {selects}, u.newest, u.inserted "
        f"FROM unnest({casts}, CAST(:newest AS boolean[]), CAST(:inserted AS boolean[])) "
        f"AS u({', '.join(columns)}, newest, inserted)), "
        "cur AS (SELECT a.*, u.version AS incoming FROM attributions a JOIN u ON u.newest AND NOT u.inserted "
        "AND a.tenant_id = u.tenant_id AND a.activity_id = u.activity_id), "
        f"superseded AS (INSERT INTO attribution_superseded ({history_columns}) "
        f"SELECT {from_cur} FROM cur a WHERE a.version < a.incoming "
        f"UNION ALL SELECT {from_batch} FROM u LEFT JOIN cur ON cur.tenant_id = u.tenant_id "
        "AND cur.activity_id = u.activity_id WHERE NOT u.newest OR u.version < cur.version "
        "ON CONFLICT DO NOTHING) "
        f"INSERT INTO attributions ({', '.join(columns)}) SELECT {', '.join(columns)} FROM u WHERE u.newest "
        f"{upsert}"
    )


_SAVE = _save_statement(history=True)
_SAVE_FIRST = _save_statement(history=False)
_SAVE_FIRST_KEEPING = _save_statement(history=False, keep_stored=True)


async def save_attributions(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    """Write new versions: the current row is replaced and the version it replaces is kept.

    The caller holds the current rows locked (``current_attributions``), so the row the
    statement copies to ``attribution_superseded`` is the one its upsert replaces.
    """
    if not rows:
        return
    # One statement cannot update a row twice: the current table gets each activity's newest version.
    newest: dict[tuple[str, uuid.UUID], int] = {}
    for i, r in enumerate(rows):
        key = (r["tenant_id"], r["activity_id"])
        held = newest.get(key)
        if held is None or rows[held]["version"] < r["version"]:
            newest[key] = i
    # The rows' values per column: ``itemgetter`` and ``zip`` in C, not a comprehension per column.
    arrays: dict[str, list[Any]] = {
        column: list(values)
        for column, values in zip(
            _ATTRIBUTION_COLUMNS, zip(*map(_ATTRIBUTION_VALUES, rows), strict=True), strict=True
        )
    }
    # Arrays of arrays must be rectangular: deal ids travel as one array literal per row.
    arrays["secondary_deal_ids"] = [text_array_literal(d) for d in arrays["secondary_deal_ids"]]
    # Sent as orjson wrote it (``Utf8Texts``), not decoded to a ``str`` and encoded back.
    arrays["explanation"] = Utf8Texts(map(orjson.dumps, arrays["explanation"]))
    inserted = [r.get("inserted", False) for r in rows]
    if len(newest) == len(rows) and all(inserted):
        # Nothing to supersede: no current row, no older version in the batch. Tried as a plain
        # insert under a savepoint: the primary key's own check finds a row already there, where
        # looking each id up first cost PostgreSQL about 6 us a row (``performance.md``,
        # sixteenth round). Only then is the batch written again, leaving that row as it is.
        if not await insert_unless_duplicate(conn, statement(_SAVE_FIRST), arrays):
            await conn.execute(statement(_SAVE_FIRST_KEEPING), arrays)
        return
    chosen = set(newest.values())
    params = {**arrays, "newest": [i in chosen for i in range(len(rows))], "inserted": inserted}
    await conn.execute(statement(_SAVE), params)


async def save_override(conn: AsyncConnection, command: AttributionOverriddenV1) -> bool:
    """Keep the newest override by ``set_at``; returns whether this one is now in force."""
    result = await conn.execute(
        text(
            """
            INSERT INTO attribution_overrides (tenant_id, activity_id, deal_id, rep_id, account_id, set_by, set_at,
                                               reason)
            VALUES (:t, :a, :deal, :rep, :acc, :by, :at, :reason)
            ON CONFLICT (tenant_id, activity_id) DO UPDATE SET deal_id = EXCLUDED.deal_id, rep_id = EXCLUDED.rep_id,
                account_id = EXCLUDED.account_id, set_by = EXCLUDED.set_by, set_at = EXCLUDED.set_at,
                reason = EXCLUDED.reason
            WHERE attribution_overrides.set_at <= EXCLUDED.set_at
            RETURNING activity_id
            """
        ),
        {
            "t": command.tenant_id,
            "a": command.activity_id,
            "deal": command.deal_id,
            "rep": command.rep_id,
            "acc": command.account_id,
            "by": command.set_by,
            "at": command.set_at,
            "reason": command.reason,
        },
    )
    return result.first() is not None
