"""The reference data of a batch of activities, indexed, and the one way to decide from it.

The consumer fills a ``ReferenceIndex`` from PostgreSQL (``adapters/reference_loader.py``) for a
batch; the accuracy harness fills one from its generated world. Both then call the same pure
function, ``attribute_from_index``, for every activity, which:

1. ``resolve_references``: explicit CRM references follow merges, deleted ones are dropped; a
   ``+tagged`` address nobody holds is read as its mailbox;
2. slices the index: the reps, contacts, accounts and deals the participants point at;
3. runs ``matching.attribute_in_slice`` on the slice's lookups, read straight from the index.

So the figures the harness reports are the production path's. ``snapshot_for`` gives the same
slice as a value (``AttributionSnapshot``), on which ``attribute_activity`` decides the same.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Literal

import msgspec

from libs.common.contracts.activities import extension_of, line_of, phone_key
from libs.common.contracts.activities_fast import AnyCrmReferences, AnyParticipant, IngestedEvent, with_crm
from libs.common.contracts.copying import with_changes
from libs.common.contracts.tenant_settings import twilio_sip_identity
from libs.common.personal_domains import (
    email_domain,
    held_address,
    is_personal_domain,
    mailbox_address,
    mailbox_forms,
    parent_domains,
)
from services.attribution.domain.decision import AttributionDecision, status_of
from services.attribution.domain.matching import (
    SliceIndex,
    account_domains,
    attribute_in_slice,
    lowered_domains,
    rep_holding,
)
from services.attribution.domain.reference import (
    Account,
    AttributionSnapshot,
    Contact,
    CurrentAttribution,
    Deal,
    DealFormerName,
    DealOwnership,
    FormerAccount,
    FormerPhone,
    ManualOverride,
    Rep,
    TeamMembership,
    TenantAttributionPolicy,
    merged_names_at,
    name_at,
    owner_at,
)
from services.attribution.domain.reps import Absence, in_spell, name_aliases, name_spellings

EntityKind = Literal["rep", "contact", "account", "deal"]


class ThreadMember(msgspec.Struct, frozen=True):
    """The attribution in force of one activity of a thread, ordered by ``occurred_at`` (a frozen
    msgspec struct, as ``AttributionDecision``: one per activity of a thread decided)."""

    activity_id: uuid.UUID
    occurred_at: datetime
    version: int
    status: str
    rep_id: str | None
    account_id: str | None
    deal_id: str | None
    secondary_deal_ids: tuple[str, ...]
    confidence: float

    @classmethod
    def of_decision(
        cls, activity: IngestedEvent, decision: AttributionDecision, version: int = 1
    ) -> ThreadMember:
        """What later replies of the thread see of ``decision`` on ``activity``."""
        return cls(
            activity.activity_id,
            activity.occurred_at,
            version,
            decision.status._value_,
            decision.rep_id,
            decision.account_id,
            decision.deal_id,
            decision.secondary_deal_ids,
            decision.confidence,
        )


def _index_add(index: dict[str, set[str]], keys: Iterable[str], value: str) -> None:
    for key in keys:
        index[key].add(value)


def _index_drop(index: dict[str, set[str]], keys: Iterable[str], value: str) -> None:
    for key in keys:
        index[key].discard(value)


@dataclass
class ReferenceIndex:
    """Reps, contacts, accounts and deals keyed by what an activity can point at.

    ``put_*`` replaces an entity and its index entries, so an index can follow a CRM over time
    (the harness replays late data into it). Identities are stored as given: emails lower-cased,
    phones in E.164.
    """

    internal_domains: frozenset[str] = frozenset()
    #: Alias id -> canonical id (``domain.reps.resolve_rep_aliases``): set before reps, deals
    #: and memberships are put, which are then filed under the canonical rep.
    rep_aliases: dict[str, str] = field(default_factory=dict)
    reps: dict[str, Rep] = field(default_factory=dict)
    #: Canonical id -> the reps of its aliases (their emails and phones are the person's too).
    alias_reps: dict[str, dict[str, Rep]] = field(default_factory=lambda: defaultdict(dict))
    rep_ids_by_identity: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    #: Mailbox names derived from each rep's name (``domain.reps.name_aliases``) -> the people.
    rep_ids_by_name_alias: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    #: The same of reps deleted by their CRM (``put_departed_name``): each mailbox -> (her
    #: person, her name's mailboxes by spelling: ``domain.reps.name_spellings``).
    departed_by_name_alias: dict[str, set[tuple[str, frozenset[frozenset[str]]]]] = field(
        default_factory=lambda: defaultdict(set)
    )
    #: Addresses the tenant maps to a rep (``rep_aliases`` keys holding an ``@``, lower-cased)
    #: -> the rep id it names: ``ana-emea@`` that no source lists is Ana's.
    mapped_addresses: dict[str, str] = field(default_factory=dict)
    #: The tenant's ``rep_aliases`` as written: the rep a source's id of an activity's rep side
    #: (``crm.owner_identities``: a RingCentral extension id, a Twilio softphone identity) names.
    identity_reps: Mapping[str, str] = field(default_factory=dict)
    #: Addresses a rep held before its record dropped them (a rename, a new domain; lower-cased)
    #: -> that rep's id: mail from them is still the rep's while no rep holds them now.
    former_addresses: dict[str, str] = field(default_factory=dict)
    #: Emails (lower-cased) and phones of a rep deleted by her CRM (not merged) -> (her id, when
    #: she left): hers for activities before then, whoever holds them now (``departed``). Also an
    #: address a live rep's record dropped that another rep holds now (re-issued: ``sales-emea@``
    #: moved from Kim to Bo) -> (her id, when her record dropped it; rules 2026.12.40). Every
    #: holding, each former holder's for what happened before her ``until`` and after the
    #: previous one's (Kim until the 10th, Bo until the 12th, Cy now; rules 2026.12.43).
    departed_addresses: dict[str, list[tuple[str, datetime]]] = field(default_factory=dict)
    #: Emails (lower-cased) and phones -> the spells a rep who held them was away (she left and
    #: came back, ``ref_rep_absences``): they name her only outside them (``away``).
    absences: dict[str, list[Absence]] = field(default_factory=dict)
    #: Person -> when she left (deleted or deactivated by her CRM, not back since), and person ->
    #: the spells she was away (she left and came back): the addresses that name her without
    #: being hers in any source (``mapped_addresses``, her name's mailboxes) name her only in her
    #: active spells, as her own emails and phones do (``active_at``).
    rep_left: dict[str, datetime] = field(default_factory=dict)
    rep_absences: dict[str, list[Absence]] = field(default_factory=dict)
    #: Rep -> memberships; present for a rep asked for even before the rep row itself arrives.
    memberships: dict[str, list[TeamMembership]] = field(default_factory=lambda: defaultdict(list))
    contacts: dict[str, Contact] = field(default_factory=dict)
    contact_ids_by_identity: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    #: Phone -> the contacts whose records listed it before dropping it (``FormerPhone``): the
    #: holders of the number for activities before then (``contacts_holding_at``).
    former_phones: dict[str, list[FormerPhone]] = field(default_factory=dict)
    #: Contact -> the accounts her record named before a newer version moved her (``FormerAccount``,
    #: by ``until``): her account for activities before each move (``account_at``).
    former_accounts: dict[str, list[FormerAccount]] = field(default_factory=dict)
    accounts: dict[str, Account] = field(default_factory=dict)
    account_ids_by_domain: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    deals: dict[str, Deal] = field(default_factory=dict)
    deal_ids_by_account: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    deal_ids_by_contact: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    #: Deal -> its owners over time, by ``since`` (``ref_deal_owners``): present for a deal
    #: whose owner changed, read at each activity's time (``deal_at``).
    deal_owners: dict[str, list[DealOwnership]] = field(default_factory=dict)
    #: Deal -> the names it had before renames, by ``until`` (``ref_deal_names``): present for a
    #: deal renamed, its name read at each activity's time (``deal_at``).
    deal_former_names: dict[str, list[DealFormerName]] = field(default_factory=dict)
    #: Survivor deal -> the names of the deals merged into it, by ``until`` (each ending with its
    #: merge): present for a deal others were merged into (``deal_at``, rules 2026.12.44).
    deal_merged_names: dict[str, list[DealFormerName]] = field(default_factory=dict)
    #: Thread id -> the attributions of its activities, oldest first.
    thread_members: dict[str, list[ThreadMember]] = field(default_factory=lambda: defaultdict(list))
    overrides: dict[uuid.UUID, ManualOverride] = field(default_factory=dict)
    #: ``(kind, id)`` of an explicitly referenced entity that was merged or deleted -> its
    #: survivor, or ``None`` when it is gone for good. An account's survivor also holds what the
    #: merged account held (``put_merged_account``): its contacts, its deals, its domains.
    survivors: dict[tuple[EntityKind, str], str | None] = field(default_factory=dict)
    #: Accounts their CRM merged into another (``merged_into``), as they were last sent: their
    #: domains are their survivor's, but where a live account holds the domain itself.
    merged_accounts: dict[str, Account] = field(default_factory=dict)
    #: ``person`` of each rep asked for since the last ``put_rep``: built once per batch, not
    #: once per activity that points at the rep.
    _people: dict[str, Rep | None] = field(default_factory=dict, init=False, repr=False, compare=False)
    #: What the rules read per participant identity, built once per batch (like ``_people``):
    #: ``(identity, is_email)`` -> the rep it names, and -> the contacts holding it (sorted);
    #: an account domain as the rules compare it -> the accounts holding it (sorted).
    _rep_named: dict[tuple[str, bool], tuple[str | None, bool]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    _contacts_holding: dict[tuple[str, bool], list[str]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    _accounts_holding: dict[str, list[str]] | None = field(
        default=None, init=False, repr=False, compare=False
    )
    #: The domains accounts hold through the merged accounts (``merged_accounts``) they survive,
    #: built once per batch: domain -> its survivors, and survivor -> those domains (sorted).
    _inherited: tuple[dict[str, set[str]], dict[str, tuple[str, ...]]] | None = field(
        default=None, init=False, repr=False, compare=False
    )
    #: ``reps_by_name_address`` of each participant address asked for since the last ``put_rep``.
    _named: dict[str, tuple[str, ...]] = field(default_factory=dict, init=False, repr=False, compare=False)

    # ------------------------------------------------------------------ filling

    def canonical(self, rep_id: str) -> str:
        """The rep an id credits: itself, or the canonical rep of the person it is an alias of."""
        return self.rep_aliases.get(rep_id, rep_id)

    def put_rep(self, rep: Rep) -> None:
        person = self.canonical(rep.id)
        held = self.alias_reps[person] if person != rep.id else self.reps
        old = held.get(rep.id)
        if old is not None:
            _index_drop(self.rep_ids_by_identity, _identities(old.emails, old.phones), person)
            _index_drop(self.rep_ids_by_name_alias, name_aliases(old.name), person)
        held[rep.id] = rep
        self._people.clear()
        self._rep_named.clear()
        self._named.clear()
        _index_add(self.rep_ids_by_identity, _identities(rep.emails, rep.phones), person)
        _index_add(self.rep_ids_by_name_alias, name_aliases(rep.name), person)

    def put_departed_name(self, rep_id: str, name: str) -> None:
        """A rep deleted by her CRM (not merged): only her name's mailboxes (``name_aliases``),
        which name her for what happened before she left (``rep_left``, ``active_at``); none of
        her addresses, and she is no rep of the batch otherwise (``reps``).

        A live rep of the same name (the same person re-added under a new id, a namesake; her
        own person through an alias or a merge) holds the name whatever the time: the departed
        rep's is then not read (``_reps_by_name``), so a re-added Ana Lopez keeps ``ana.lopez@``
        for what happened before her old record was archived. A departed rep's name that only
        shares a mailbox with a live rep's (Ana and Alvaro Lopez's ``a.lopez@``) still names her
        before she left."""
        spellings = name_spellings(name)
        for mailbox in name_aliases(name):
            self.departed_by_name_alias[mailbox].add((self.canonical(rep_id), spellings))
        self._named.clear()

    def rep_by_name_address(self, email: str, at: datetime | None = None) -> str | None:
        """The rep of an address (lower-cased) no source lists: the one the tenant maps it to
        (``rep_aliases``, at any domain), else the rep that held it before its record dropped it
        (``former_addresses``), else the one rep whose name the mailbox of an address at an
        internal domain follows (``ana.lopez@`` for Ana Lopez); ``None`` for a listed address, an
        external one, or a name two reps share. For an activity at ``at``, only a rep active then
        (``active_at``): mail to Ana's alias after she left names nobody, as mail to her own
        address does; a name one rep held before she left and another holds now is his."""
        people = self.reps_by_name_address(email)
        if at is not None and (self.rep_left or self.rep_absences):
            people = self._active_people(people, at)
        return people[0] if len(people) == 1 else None

    def _active_people(self, people: tuple[str, ...], at: datetime) -> tuple[str, ...]:
        # Apart from ``rep_by_name_address``, as the other comprehensions of the per-participant
        # lookups: in Python 3.11 a comprehension makes the locals it reads cells, created on
        # every call of its function whether it runs or not (``performance.md``, nineteenth round).
        return tuple(p for p in people if self.active_at(p, at))

    def reps_by_name_address(self, email: str) -> tuple[str, ...]:
        """The people an address no source lists may name, whatever the time (``rep_by_name_address``
        picks among them): the one mapped (or former holder), else those whose name it follows."""
        address = email.lower()
        mapped = self.mapped_addresses.get(address) if self.mapped_addresses else None
        if mapped is None and self.former_addresses:
            mapped = self.former_addresses.get(address)
        if mapped is not None and address not in self.rep_ids_by_identity:
            # Not cached: the rep's person may be learnt later in the batch (``canonical``).
            return (self.canonical(mapped),)
        try:
            return self._named[email]
        except KeyError:
            named = self._named[email] = self._reps_by_name(email)
            return named

    def active_at(self, person: str, at: datetime) -> bool:
        """Whether ``person`` was active when an activity at ``at`` happened, for an address that
        names her though no source lists it as hers: before she left (``rep_left``) and outside
        the spells she was away (``rep_absences``), the rule of her own identities (``in_spell``)."""
        return in_spell(at, self.rep_left.get(person), self.rep_absences.get(person, ()))

    def departed(self, identity: str, at: datetime) -> str | None:
        """The rep deleted by her CRM who held ``identity`` (an email lower-cased, or a phone) when
        an activity at ``at`` happened, i.e. before she left, or the live rep who held an address
        re-issued since to another (before her record dropped it); ``None`` afterwards (an address
        re-issued to a new hire is his) or for an identity no such rep held. Of several holders,
        the one whose spell covers ``at``: the earliest ``until`` after it, as ``name_at`` reads a
        deal's former names (rules 2026.12.43: before, only the latest holder was kept)."""
        holdings = self.departed_addresses.get(identity, ())
        held = min((h for h in holdings if at < h[1]), key=lambda h: h[1], default=None)
        if held is None:
            return None
        person = self.canonical(held[0])
        # Before she left for good, but maybe in a spell she was away before (she left and
        # came back, then left again).
        return person if in_spell(at, held[1], self._absences(identity, person)) else None

    def away(self, identity: str, person: str, at: datetime) -> bool:
        """Whether ``person`` was away (she left and came back: ``absences``) when an activity
        at ``at`` happened, for ``identity``, an email (lower-cased) or phone she held when she
        left: it names her only in her active spells."""
        if identity not in self.absences:
            return False
        return not in_spell(at, None, self._absences(identity, person))

    def _absences(self, identity: str, person: str) -> list[Absence]:
        return [a for a in self.absences.get(identity, ()) if self.canonical(a.rep_id) == person]

    def _reps_by_name(self, email: str) -> tuple[str, ...]:
        address = email.lower()
        local, _, domain = address.rpartition("@")
        if not local or address in self.rep_ids_by_identity:
            return ()
        if not any(d in self.internal_domains for d in parent_domains(domain)):
            return ()
        live = self.rep_ids_by_name_alias.get(local, set())
        departed = {
            person
            for person, spellings in self.departed_by_name_alias.get(local, ())
            if not self._live_name(spellings)
        }
        return tuple(sorted(live | departed))

    def _live_name(self, spellings: frozenset[frozenset[str]]) -> bool:
        """Whether a live rep's name is the name giving ``spellings`` (one live rep holds every
        mailbox of one of its spellings: a re-added "Jurgen Muller" takes over a departed "Jürgen
        Müller", whose name also gives ``juergen.mueller@``; rules 2026.12.37)."""
        for mailboxes in spellings:
            holders = [self.rep_ids_by_name_alias.get(mailbox, set()) for mailbox in mailboxes]
            if holders and set.intersection(*holders):
                return True
        return False

    def person(self, rep_id: str) -> Rep | None:
        """The canonical rep with the emails and phones of all its aliases."""
        try:
            return self._people[rep_id]
        except KeyError:
            built = self._people[rep_id] = self._person(rep_id)
            return built

    def _person(self, rep_id: str) -> Rep | None:
        rep = self.reps.get(rep_id)
        aliases = self.alias_reps.get(rep_id)
        if rep is None or not aliases:
            return rep
        emails = dict.fromkeys((*rep.emails, *(e for a in aliases.values() for e in a.emails)))
        phones = dict.fromkeys((*rep.phones, *(p for a in aliases.values() for p in a.phones)))
        keyed = dict.fromkeys(
            (*rep.phone_extensions, *(k for a in aliases.values() for k in a.phone_extensions))
        )
        return replace(rep, emails=tuple(emails), phones=tuple(phones), phone_extensions=tuple(keyed))

    def person_at(self, rep_id: str, at: datetime) -> Rep | None:
        """``person`` without the emails and phones that did not name her at ``at`` (``away``)."""
        person = self.person(rep_id)
        if person is None or not self.absences:
            return person
        emails = tuple(e for e in person.emails if not self.away(e.lower(), person.id, at))
        phones = tuple(p for p in person.phones if not self.away(p, person.id, at))
        if len(emails) == len(person.emails) and len(phones) == len(person.phones):
            return person
        keyed = tuple(k for k in person.phone_extensions if line_of(k) in phones)
        return replace(person, emails=emails, phones=phones, phone_extensions=keyed)

    def rep_of_extension_at(self, line: str, key: str, at: datetime) -> str | None:
        """The rep listing ``line`` with the extension of ``key`` (``activities.phone_key``) at
        ``at``, as ``rep_named_at`` names a line's rep: the one active holder, else none."""
        holders = [
            person
            for rep_id in self.rep_ids_by_identity.get(line, _NOTHING)
            if (person := self.person_at(rep_id, at)) is not None and key in person.phone_extensions
        ]
        return rep_holding(holders)[0] if holders else None

    def contacts_holding_extension(self, line: str, key: str) -> list[str]:
        """The contacts listing ``line`` with the extension of ``key``, by id."""
        contacts = self.contacts
        return [c for c in self.contacts_holding(line, False) if key in contacts[c].phone_extensions]

    def rep_named_at(self, identity: str, is_email: bool, at: datetime) -> tuple[str | None, bool]:
        """``rep_named`` for an activity at ``at``: a holder away then (``away``) is no holder."""
        if identity not in self.absences:
            return self.rep_named(identity, is_email)
        return self._rep_named_away(identity, is_email, at)

    def _rep_named_away(self, identity: str, is_email: bool, at: datetime) -> tuple[str | None, bool]:
        holders = [
            person
            for rep_id in self.rep_ids_by_identity.get(identity, _NOTHING)
            if (person := self.person(rep_id)) is not None
            and identity in _held(person.emails, person.phones, is_email)
            and not self.away(identity, person.id, at)
        ]
        return rep_holding(holders)

    def rep_named(self, identity: str, is_email: bool) -> tuple[str | None, bool]:
        """The rep a participant's email (lower-cased) or phone names among the people holding
        it, and whether several active reps share it (``matching.rep_holding``)."""
        key = (identity, is_email)
        try:
            return self._rep_named[key]
        except KeyError:
            named = self._rep_named[key] = self._rep_named_now(identity, is_email)
            return named

    def _rep_named_now(self, identity: str, is_email: bool) -> tuple[str | None, bool]:
        holders = [
            person
            for rep_id in self.rep_ids_by_identity.get(identity, _NOTHING)
            if (person := self.person(rep_id)) is not None
            and identity in _held(person.emails, person.phones, is_email)
        ]
        return rep_holding(holders)

    def contacts_holding(self, identity: str, is_email: bool) -> list[str]:
        """The contacts holding a participant's email (lower-cased) or phone, by id. An email a
        contact lists as written is that contact's, not also that of another holding it only as
        the mailbox of its ``+tagged`` or Gmail address (``mailbox_forms``: a web form's copy of
        the person listing ``pia+crm@``; rules 2026.12.27): both at half each made a tie of the
        copy's deal with the record's, which the mail named."""
        key = (identity, is_email)
        try:
            return self._contacts_holding[key]
        except KeyError:
            found = self._contacts_holding[key] = self._contacts_holding_now(identity, is_email)
            return found

    def _contacts_holding_now(self, identity: str, is_email: bool) -> list[str]:
        contacts = self.contacts
        found = sorted(
            c
            for c in self.contact_ids_by_identity.get(identity, _NOTHING)
            if c in contacts and identity in _held(contacts[c].emails, contacts[c].phones, is_email)
        )
        if is_email and len(found) > 1:
            listed = [c for c in found if identity in (e.lower() for e in contacts[c].emails)]
            found = listed or found
        return found

    def contacts_holding_at(self, phone: str, at: datetime) -> list[str]:
        """The contacts holding ``phone`` when an activity at ``at`` happened, by id: the contacts
        whose records dropped it after ``at`` (her number changed, she left), with those that
        listed it beside them then (a shared switchboard); a contact who lists it now but did not
        then (the number re-issued to him) is not one. Without such a record, the contacts
        listing it now (``contacts_holding``)."""
        current = self.contacts_holding(phone, False)
        if phone not in self.former_phones:
            return current
        return self._contacts_held_then(phone, at, current)

    def _contacts_held_then(self, phone: str, at: datetime, current: list[str]) -> list[str]:
        formers = [
            f for f in self.former_phones.get(phone, ()) if at < f.until and f.contact_id in self.contacts
        ]
        if not formers:
            return current
        shared = {c for f in formers for c in f.shared_with}
        return sorted({f.contact_id for f in formers} | {c for c in current if c in shared})

    def contact_ids_at(self, identity: str, at: datetime) -> set[str] | frozenset[str]:
        """The contacts an email or phone points at for an activity at ``at``: as
        ``contacts_holding_at`` for a phone some contact dropped, else every contact listing it."""
        if identity in self.former_phones:
            return set(self.contacts_holding_at(identity, at))
        return self.contact_ids_by_identity.get(identity, _NOTHING)

    def account_at(self, contact_id: str, activity: IngestedEvent) -> str | None:
        """The account ``contact_id`` was at when ``activity`` happened: the one her record named
        when it dropped a participant's phone after then (``FormerPhone.account_id``; the earliest
        such drop, her account at the time of the activity), else the one it named before the
        earliest move after then (``FormerAccount``; an account merged since as its survivor), else
        her account now."""
        contact = self.contacts[contact_id]
        if self.former_phones and (then := self._phones_dropped_after(contact_id, activity)):
            return min(then, key=lambda f: f.until).account_id
        for moved in self.former_accounts.get(contact_id, ()):
            if activity.occurred_at < moved.until:
                return self._former_account(moved.account_id)
        return contact.account_id

    def _phones_dropped_after(self, contact_id: str, activity: IngestedEvent) -> list[FormerPhone]:
        """The drops of a participant's phone by ``contact_id``'s record after ``activity``."""
        return [
            f
            for p in activity.participants
            if p.phone is not None
            for f in self.former_phones.get(p.phone, ())
            if f.contact_id == contact_id and activity.occurred_at < f.until
        ]

    def _former_account(self, account_id: str) -> str | None:
        """A contact's former account as the CRM holds it now: merged since, its survivor (a
        contact re-parented to the survivor of her account's merge did not move); deleted since
        (the loader reads live accounts only), none: the company she was at is gone, and her
        account now is not where she was then."""
        if (survivor := self._account_survivor(account_id)) is not None:
            return survivor
        return account_id if account_id in self.accounts or account_id in self.merged_accounts else None

    def joined_after(self, contact_id: str, activity: IngestedEvent) -> frozenset[str]:
        """The accounts ``contact_id`` moved to after ``activity`` (``FormerAccount``; her account
        now among them), but the one she was at then: her roles on their deals came with a job she
        did not hold then."""
        moves = self.former_accounts.get(contact_id)
        if not moves or activity.occurred_at >= moves[-1].until:
            return frozenset()
        then = self.account_at(contact_id, activity)
        later = {self._former_account(m.account_id) for m in moves if activity.occurred_at < m.until}
        later.add(self.contacts[contact_id].account_id)
        return frozenset(a for a in later if a and a != then)

    def add_former_account(self, former: FormerAccount) -> None:
        moves = self.former_accounts.setdefault(former.contact_id, [])
        moves.append(former)
        moves.sort(key=lambda m: m.until)

    def add_former_phone(self, former: FormerPhone) -> None:
        self.former_phones.setdefault(former.phone, []).append(former)

    def accounts_holding(self, domain: str) -> list[str]:
        """The accounts one of whose domains, as the rules compare them, is ``domain``, by id
        (the domains of the accounts merged into it included: ``account``)."""
        if self._accounts_holding is None:
            holding: dict[str, list[str]] = {}
            for account_id in sorted(self.accounts):
                for d in account_domains(self.account(account_id)):
                    holding.setdefault(d, []).append(account_id)
            self._accounts_holding = holding
        return self._accounts_holding.get(domain, [])

    def account(self, account_id: str) -> Account:
        """The live account ``account_id`` with the domains it holds through the accounts merged
        into it (``inherited_domains``) after its own."""
        account = self.accounts[account_id]
        inherited = self.inherited_domains()[1].get(account_id)
        if not inherited:
            return account
        return replace(account, domains=(*account.domains, *inherited))

    def inherited_domains(self) -> tuple[dict[str, set[str]], dict[str, tuple[str, ...]]]:
        """Domains of the merged accounts (``merged_accounts``) that no live account holds itself,
        as domain -> the survivors holding it, and survivor -> those domains (sorted): what a
        merge in the CRM makes of them, whether or not the survivor was re-sent with them. A
        merged account whose chain ends in a deletion leaves its domains to nobody."""
        if self._inherited is None:
            by_domain: dict[str, set[str]] = {}
            by_survivor: dict[str, set[str]] = {}
            for merged_id, merged in self.merged_accounts.items():
                survivor = self.survivor("account", merged_id)
                if survivor is None or survivor == merged_id:
                    continue
                for domain in _domains(merged):
                    if not self.account_ids_by_domain.get(domain):
                        by_domain.setdefault(domain, set()).add(survivor)
                        by_survivor.setdefault(survivor, set()).add(domain)
            self._inherited = (by_domain, {s: tuple(sorted(d)) for s, d in by_survivor.items()})
        return self._inherited

    def add_membership(self, membership: TeamMembership) -> None:
        person = self.canonical(membership.rep_id)
        self.memberships[person].append(replace(membership, rep_id=person))

    def put_contact(self, contact: Contact) -> None:
        if contact.account_id is not None and (survivor := self._account_survivor(contact.account_id)):
            contact = replace(contact, account_id=survivor)
        old = self.contacts.get(contact.id)
        if old is not None:
            _index_drop(self.contact_ids_by_identity, _identities(old.emails, old.phones), old.id)
        self.contacts[contact.id] = contact
        self._contacts_holding.clear()
        _index_add(self.contact_ids_by_identity, _identities(contact.emails, contact.phones), contact.id)

    def put_account(self, account: Account) -> None:
        old = self.accounts.get(account.id)
        if old is not None:
            _index_drop(self.account_ids_by_domain, _domains(old), old.id)
        self.accounts[account.id] = account
        self._accounts_holding = None
        self._inherited = None
        _index_add(self.account_ids_by_domain, _domains(account), account.id)

    def put_merged_account(self, account: Account, survivor: str | None) -> None:
        """An account its CRM merged into ``survivor`` (the end of its merge chain; ``None`` when
        that was deleted), as last sent: whatever it held is the survivor's, as the CRM shows it
        after a merge even when it re-sends neither the survivor nor the merged account's deals
        and contacts. Its contacts and deals, put before or after, count on the survivor's
        account; its domains are the survivor's where no live account holds them itself
        (``inherited_domains``); an explicit reference to it is followed (``survivor``)."""
        self.survivors[("account", account.id)] = survivor
        self.merged_accounts[account.id] = account
        self._accounts_holding = None
        self._inherited = None
        if survivor is None:
            return
        for contact in [c for c in self.contacts.values() if c.account_id == account.id]:
            self.put_contact(contact)
        for deal in [d for d in self.deals.values() if d.account_id == account.id]:
            self.put_deal(deal)

    def _account_survivor(self, account_id: str) -> str | None:
        """The survivor of a merged account (``None`` for any other, a deleted one included)."""
        survivors = self.survivors
        if not survivors:
            return None
        survivor = survivors.get(("account", account_id))
        return survivor if survivor != account_id else None

    def put_deal(self, deal: Deal) -> None:
        if deal.owner_rep_id is not None and deal.owner_rep_id in self.rep_aliases:
            deal = replace(deal, owner_rep_id=self.canonical(deal.owner_rep_id))
        if deal.account_id is not None and (survivor := self._account_survivor(deal.account_id)):
            deal = replace(deal, account_id=survivor)
        old = self.deals.get(deal.id)
        if old is not None:
            _index_drop(self.deal_ids_by_account, {old.account_id} if old.account_id else set(), old.id)
            _index_drop(self.deal_ids_by_contact, set(old.contact_ids), old.id)
        self.deals[deal.id] = deal
        _index_add(self.deal_ids_by_account, {deal.account_id} if deal.account_id else set(), deal.id)
        _index_add(self.deal_ids_by_contact, set(deal.contact_ids), deal.id)

    def add_deal_owner(self, ownership: DealOwnership) -> None:
        """Record who owned a deal from when; put in ``since`` order (``owner_at``)."""
        owner = ownership.owner_rep_id
        if owner is not None and owner in self.rep_aliases:
            ownership = replace(ownership, owner_rep_id=self.canonical(owner))
        self.deal_owners.setdefault(ownership.deal_id, []).append(ownership)

    def add_deal_former_name(self, former: DealFormerName) -> None:
        """Record a name a deal had until a rename; put in ``until`` order (``name_at``)."""
        names = self.deal_former_names.setdefault(former.deal_id, [])
        names.append(former)
        names.sort(key=lambda n: n.until)

    def add_deal_merged_name(self, survivor: str, former: DealFormerName) -> None:
        """Record a name a deal merged into ``survivor`` had until its next name or its merge;
        put in ``until`` order (``merged_names_at``)."""
        names = self.deal_merged_names.setdefault(survivor, [])
        names.append(former)
        names.sort(key=lambda n: n.until)

    def deal_at(self, deal: Deal, at: datetime) -> Deal:
        """``deal`` with the owner it had when an activity at ``at`` happened, and the name
        (rules 2026.12.42: a subject names a deal by the name it had then), and the names the
        deals merged into it had then (rules 2026.12.44)."""
        history = self.deal_owners.get(deal.id)
        owner = owner_at(history, at) if history and len(history) > 1 else deal.owner_rep_id
        former = self.deal_former_names.get(deal.id)
        name = name_at(deal.name, former, at) if former else deal.name
        merged = self.deal_merged_names.get(deal.id)
        aliases = _other_names(merged_names_at(merged, at), name) if merged else ()
        if owner == deal.owner_rep_id and name == deal.name and aliases == deal.aliases:
            return deal
        return replace(deal, owner_rep_id=owner, name=name, aliases=aliases)

    def owner_named(self, crm: AnyCrmReferences) -> str | None:
        """The rep the source assigned the activity to: the one the tenant's ``rep_aliases``
        maps the first of its ``owner_identities`` it maps to (none when it maps none of them,
        whatever ingest found when the activity arrived), else ``owner_rep_id``. A Twilio
        softphone's address kept with an edge location's host (``ana@acme.sip.us1.twilio.com``,
        as ingest kept it before rules 2026.12.36) is mapped by its SIP Domain's too
        (``ana@acme.sip.twilio.com``)."""
        if not crm.owner_identities:
            return crm.owner_rep_id
        reps = self.identity_reps
        # The first mapped, as ``next`` over a generator gave it (a loop: no cells, see above).
        for i in crm.owner_identities:
            if rep := reps.get(i) or reps.get(twilio_sip_identity(i)):
                return rep
        return None

    def survivor(self, kind: EntityKind, entity_id: str) -> str | None:
        """The id to use for an explicit reference: itself, its survivor, or ``None`` if deleted."""
        return self.survivors.get((kind, entity_id), entity_id)

    def remember(self, thread_id: str, member: ThreadMember) -> None:
        """Record a decision so later replies of the thread see it (same batch, or a replay)."""
        members = _without(self.thread_members[thread_id], member.activity_id)
        members.append(member)
        # A UUID orders as its text does (fixed-width hex).
        members.sort(key=_thread_order)
        self.thread_members[thread_id] = members


def _without(members: list[ThreadMember], activity_id: uuid.UUID) -> list[ThreadMember]:
    return [m for m in members if m.activity_id != activity_id]


def _thread_order(member: ThreadMember) -> tuple[datetime, uuid.UUID]:
    return (member.occurred_at, member.activity_id)


def _other_names(names: Iterable[str], name: str) -> tuple[str, ...]:
    return tuple(n for n in names if n != name)


def _held(emails: tuple[str, ...], phones: tuple[str, ...], is_email: bool) -> Iterable[str]:
    return mailbox_forms(emails) if is_email else phones


def _identities(emails: tuple[str, ...], phones: tuple[str, ...]) -> set[str]:
    """A record's emails as held (``mailbox_forms``: a Gmail address also as its mailbox) and phones."""
    return {*mailbox_forms(emails), *phones}


def _domains(account: Account) -> set[str]:
    return {d.lower().strip().rstrip(".") for d in account.domains}


# ---------------------------------------------------------------------- the snapshot path


def resolve_references(activity: IngestedEvent, index: ReferenceIndex) -> IngestedEvent:
    """The activity with its explicit CRM references following merges (deleted ones dropped),
    and its participants' addresses as the index knows them (``resolve_addresses``)."""
    activity = resolve_addresses(activity, index)
    crm = activity.crm
    deal_id = index.survivor("deal", crm.deal_id) if crm.deal_id else None
    account_id = index.survivor("account", crm.account_id) if crm.account_id else None
    named = index.owner_named(crm)
    survivor = index.survivor("rep", named) if named else None
    owner = index.canonical(survivor) if survivor else None
    # Most activities name no contact: no generator then (see ``matching.attribute_in_slice``).
    contacts = _surviving_contacts(crm.contact_ids, index) if crm.contact_ids else ()
    if (deal_id, account_id, owner, contacts) == (
        crm.deal_id,
        crm.account_id,
        crm.owner_rep_id,
        crm.contact_ids,
    ):
        return activity
    return with_crm(activity, deal_id, account_id, contacts, owner)


def _surviving_contacts(contact_ids: Iterable[str], index: ReferenceIndex) -> tuple[str, ...]:
    return tuple(dict.fromkeys(s for c in contact_ids if (s := index.survivor("contact", c)) is not None))


def resolve_addresses(activity: IngestedEvent, index: ReferenceIndex) -> IngestedEvent:
    """The activity with each participant's address as reps' and contacts' are held
    (``held_address``: ``josé@`` typed decomposed is the composed one; rules 2026.12.40), and its
    ``+tagged`` or Gmail address that no rep or contact holds read as its mailbox, when a rep or
    contact holds that (``lee+deals@`` is ``lee@``'s mail; ``jodoe@googlemail.com`` is the contact
    listing ``jo.doe@gmail.com``)."""
    mailboxes: dict[int, str] = {}
    participants: Sequence[AnyParticipant] = activity.participants
    for position, p in enumerate(participants):
        email = p.email
        if email is None:
            continue
        composed = email if email.isascii() else held_address(email)
        if _may_be_another_form(composed) and (mailbox := _known_mailbox(composed.lower(), index)):
            mailboxes[position] = mailbox
        elif composed is not email and composed != email.lower():
            mailboxes[position] = composed
    if not mailboxes:
        return activity
    return _with_mailboxes(activity, participants, mailboxes)


def _with_mailboxes(
    activity: IngestedEvent, participants: Sequence[AnyParticipant], mailboxes: dict[int, str]
) -> IngestedEvent:
    # In the activity's own form: the fast path's struct, or the contract's model.
    changed = tuple(
        with_changes(p, {"email": mailboxes[i]}) if i in mailboxes else p for i, p in enumerate(participants)
    )
    return with_changes(activity, {"participants": changed})


def _may_be_another_form(email: str) -> bool:
    """Whether ``email`` may be another way of writing a mailbox (``mailbox_address``): a ``+tag``,
    or Gmail. Checked first: it runs for every participant of every activity."""
    return "+" in email or email.lower().endswith(("@gmail.com", "@googlemail.com"))


def _known_mailbox(address: str, index: ReferenceIndex) -> str | None:
    """The untagged mailbox of ``address`` when nobody holds ``address`` itself and someone holds it."""
    held = (index.contact_ids_by_identity, index.rep_ids_by_identity)
    if any(held_by.get(address) for held_by in held):
        return None
    mailbox = mailbox_address(address)
    if mailbox is None or not any(held_by.get(mailbox) for held_by in held):
        return None
    return mailbox


def thread_attribution_for(activity: IngestedEvent, index: ReferenceIndex) -> ThreadMember | None:
    """The attribution of the newest activity of the thread that happened before this one."""
    if activity.thread_id is None:
        return None
    # ``max`` by (time, id) of the members before it, the first of equals, written out: no
    # comprehension (its cells) nor ``max``'s keyword parsing.
    activity_id, at = activity.activity_id, activity.occurred_at
    newest: ThreadMember | None = None
    newest_key: tuple[datetime, uuid.UUID] | None = None
    for m in index.thread_members.get(activity.thread_id, ()):
        if m.activity_id != activity_id and m.occurred_at < at:
            key = (m.occurred_at, m.activity_id)
            if newest_key is None or key > newest_key:
                newest, newest_key = m, key
    return newest


def _current(member: ThreadMember) -> CurrentAttribution:
    return CurrentAttribution(
        version=member.version,
        status=status_of(member.status),
        rep_id=member.rep_id,
        account_id=member.account_id,
        deal_id=member.deal_id,
        secondary_deal_ids=member.secondary_deal_ids,
        confidence=member.confidence,
    )


_NOTHING: frozenset[str] = frozenset()


class _PointedAt(msgspec.Struct):
    """Contacts, reps and accounts the participants and explicit references point at, and the
    reps whose names unlisted internal addresses follow (address -> rep)."""

    contact_ids: set[str]
    rep_ids: set[str]
    account_ids: set[str]
    named: dict[str, str]


def _pointed_at(activity: IngestedEvent, index: ReferenceIndex) -> _PointedAt:
    crm = activity.crm
    found = _PointedAt(
        set(crm.contact_ids),
        {crm.owner_rep_id} if crm.owner_rep_id else set(),
        {crm.account_id} if crm.account_id else set(),
        {},
    )
    departures = index.departed_addresses
    by_domain = index.account_ids_by_domain
    inherited = index.inherited_domains()[0] if index.merged_accounts else None
    for p in activity.participants:
        email = p.email.lower() if p.email else None
        for identity in (email, p.phone):
            if identity:
                found.contact_ids |= index.contact_ids_at(identity, activity.occurred_at)
                found.rep_ids |= index.rep_ids_by_identity.get(identity, _NOTHING)
                if departures and (gone := index.departed(identity, activity.occurred_at)) is not None:
                    found.rep_ids.add(gone)
                    found.named[identity] = gone
        if email is None:
            continue
        if (
            email not in found.named
            and (named := index.rep_by_name_address(email, activity.occurred_at)) is not None
            and not index.away(email, named, activity.occurred_at)
        ):
            found.rep_ids.add(named)
            found.named[email] = named
        domain = email_domain(email)
        if domain:
            for parent in parent_domains(domain):
                if held := by_domain.get(parent):
                    found.account_ids |= held
                elif inherited and (survivors := inherited.get(parent)):
                    found.account_ids |= survivors
    contacts = index.contacts
    # Each contact's account then, as a set comprehension gave them (a loop: no cells).
    accounts: set[str] = set()
    for c in found.contact_ids:
        if c in contacts and (account_id := index.account_at(c, activity)):
            accounts.add(account_id)
    found.account_ids |= accounts
    return found


class _Slice(msgspec.Struct):
    """What one activity's participants and references point at, and the deals they reach."""

    pointed: _PointedAt
    thread: ThreadMember | None
    override: ManualOverride | None
    #: Sorted by id.
    deals: tuple[Deal, ...]


def _slice(activity: IngestedEvent, index: ReferenceIndex) -> _Slice:
    pointed = _pointed_at(activity, index)
    thread = thread_attribution_for(activity, index)
    override = index.overrides.get(activity.activity_id)
    if override is not None and override.rep_id is not None and override.rep_id in index.rep_aliases:
        # A rep pinned by an id that became another rep's alias since (her HubSpot owner, before
        # her canonical record arrived) is that person (rules 2026.12.35).
        override = replace(override, rep_id=index.canonical(override.rep_id))
    deal_ids: set[str] = {activity.crm.deal_id} if activity.crm.deal_id else set()
    if thread is not None and thread.deal_id:
        deal_ids.add(thread.deal_id)
    if override is not None and override.deal_id:
        deal_ids.add(override.deal_id)
    for account_id in pointed.account_ids:
        deal_ids |= index.deal_ids_by_account.get(account_id, _NOTHING)
    for contact_id in pointed.contact_ids:
        deal_ids |= index.deal_ids_by_contact.get(contact_id, _NOTHING)
    held = index.deals
    # Loops, not comprehensions (their cells: see ``ReferenceIndex.rep_by_name_address``).
    found: list[Deal] = []
    for d in sorted(deal_ids) if len(deal_ids) > 1 else deal_ids:  # one needs no sorting
        if d in held:
            found.append(held[d])
    if index.deal_owners or index.deal_former_names or index.deal_merged_names:
        at = activity.occurred_at
        for i, deal in enumerate(found):
            found[i] = index.deal_at(deal, at)
    deals = tuple(found)
    if index.former_accounts:
        deals = _roles_then(deals, activity, index, pointed.contact_ids)
    return _Slice(pointed, thread, override, deals)


def _roles_then(
    deals: tuple[Deal, ...], activity: IngestedEvent, index: ReferenceIndex, contact_ids: Iterable[str]
) -> tuple[Deal, ...]:
    """``deals`` without the roles of the contacts of ``contact_ids`` on deals of an account they
    moved to after ``activity`` (``joined_after``): a champion who moved from Old Co to New Co is
    no contact of New Co's deal for her calls while she was at Old Co."""
    later = {
        c: joined for c in contact_ids if c in index.contacts and (joined := index.joined_after(c, activity))
    }
    if not later:
        return deals
    kept: list[Deal] = []
    for deal in deals:
        roles = tuple(
            (c, role)
            for c, role in deal.contacts
            if deal.account_id is None or deal.account_id not in later.get(c, ())
        )
        kept.append(deal if roles == deal.contacts else replace(deal, contacts=roles))
    return tuple(kept)


def snapshot_for(activity: IngestedEvent, index: ReferenceIndex) -> AttributionSnapshot:
    """The slice of ``index`` that this activity's participants and references point at.

    What ``attribute_from_index`` decides on, as a value: ``attribute_activity`` on it gives the
    same decision (``test_attribution_slice.py``)."""
    sliced = _slice(activity, index)
    pointed, deals, override = sliced.pointed, sliced.deals, sliced.override
    rep_ids = pointed.rep_ids | {d.owner_rep_id for d in deals if d.owner_rep_id}
    if override is not None and override.rep_id:
        rep_ids.add(override.rep_id)
    ordered_reps = sorted(rep_ids)
    return AttributionSnapshot(
        internal_domains=index.internal_domains,
        reps=tuple(
            person for r in ordered_reps if (person := index.person_at(r, activity.occurred_at)) is not None
        ),
        memberships=tuple(m for r in ordered_reps for m in index.memberships.get(r, ())),
        accounts=tuple(index.account(a) for a in sorted(pointed.account_ids) if a in index.accounts),
        contacts=tuple(
            _held_at(index.contacts[c], activity, index)
            for c in sorted(pointed.contact_ids)
            if c in index.contacts
        ),
        deals=deals,
        thread_attribution=None if sliced.thread is None else _current(sliced.thread),
        override=override,
        rep_by_name_address=pointed.named,
    )


def _held_at(contact: Contact, activity: IngestedEvent, index: ReferenceIndex) -> Contact:
    """``contact`` with the participants' phones it held when ``activity`` happened
    (``contacts_holding_at``: a number its record dropped since is listed, one it gained since,
    re-issued to it, is not) and the account it was at then (``account_at``), as the slice reads
    them."""
    if not index.former_phones and not index.former_accounts:
        return contact
    account_id = index.account_at(contact.id, activity)
    phones = list(contact.phones)
    for p in activity.participants:
        if p.phone is None or p.phone not in index.former_phones:
            continue
        held = contact.id in index.contacts_holding_at(p.phone, activity.occurred_at)
        if held and p.phone not in phones:
            phones.append(p.phone)
        elif not held and p.phone in phones:
            phones.remove(p.phone)
    if tuple(phones) == contact.phones and account_id == contact.account_id:
        return contact
    return replace(contact, phones=tuple(phones), account_id=account_id)


def _slice_index(
    activity: IngestedEvent, sliced: _Slice, index: ReferenceIndex, policy: TenantAttributionPolicy
) -> SliceIndex:
    """The rules' lookups for ``activity``, read from ``index`` for its participants' identities
    and domains: what ``SliceIndex.of_snapshot(snapshot_for(activity, index))`` answers for them,
    without building the snapshot. Every rep and contact holding a participant's identity is in
    the slice (``_pointed_at`` put it there), so the identity maps of ``index`` find the same ones."""
    rep_by_email: dict[str, str] = {}
    rep_by_phone: dict[str, str] = {}
    shared_reps: set[str] = set()
    contacts_by_email: dict[str, list[str]] = {}
    contacts_by_phone: dict[str, list[str]] = {}
    accounts_by_domain: dict[str, list[str]] = {}
    pointed = sliced.pointed
    for p in activity.participants:
        if p.email is not None:
            email = p.email.lower()
            rep, shared = index.rep_named_at(email, True, activity.occurred_at)
            if rep is not None:
                rep_by_email[email] = rep
            elif shared:
                shared_reps.add(email)
            if found := index.contacts_holding(email, True):
                contacts_by_email[email] = found
            domain = email_domain(email)
            for candidate in parent_domains(domain) if domain else ():
                if is_personal_domain(candidate, policy.extra_personal_domains):
                    continue
                if held := _among(index.accounts_holding(candidate), pointed.account_ids):
                    accounts_by_domain[candidate] = held
        if p.phone is not None:
            rep, shared = index.rep_named_at(p.phone, False, activity.occurred_at)
            if rep is not None:
                rep_by_phone[p.phone] = rep
            elif shared:
                shared_reps.add(p.phone)
            if found := index.contacts_holding_at(p.phone, activity.occurred_at):
                contacts_by_phone[p.phone] = found
            if (extension := extension_of(p)) is not None:
                _extension_lookups(p.phone, extension, activity, index, rep_by_phone, contacts_by_phone)
    return SliceIndex(
        internal_domains=lowered_domains(index.internal_domains),
        rep_by_email=rep_by_email,
        rep_by_phone=rep_by_phone,
        rep_by_name_address=pointed.named,
        contacts_by_email=contacts_by_email,
        contacts_by_phone=contacts_by_phone,
        contact_account=_contact_accounts(pointed.contact_ids, activity, index),
        accounts_by_domain=accounts_by_domain,
        deals=sliced.deals,
        memberships=index.memberships,
        shared_rep_identities=frozenset(shared_reps),
    )


def _among(ids: list[str], wanted: set[str]) -> list[str]:
    """``ids`` that are ``wanted``, in order (apart from ``_slice_index``, and a loop: a
    comprehension made its locals cells, see ``ReferenceIndex.rep_by_name_address``)."""
    found: list[str] = []
    for i in ids:
        if i in wanted:
            found.append(i)
    return found


def _contact_accounts(
    contact_ids: set[str], activity: IngestedEvent, index: ReferenceIndex
) -> dict[str, str | None]:
    """Each contact's account when ``activity`` happened (``account_at``), in ``contact_ids``' order."""
    contacts = index.contacts
    found: dict[str, str | None] = {}
    for c in contact_ids:
        if c in contacts:
            found[c] = index.account_at(c, activity)
    return found


def _extension_lookups(
    line: str,
    extension: str,
    activity: IngestedEvent,
    index: ReferenceIndex,
    rep_by_phone: dict[str, str],
    contacts_by_phone: dict[str, list[str]],
) -> None:
    """The rep and contacts listing ``line`` with ``extension``, under its key (``phone_key``)."""
    key = phone_key(line, extension)
    if (rep := index.rep_of_extension_at(line, key, activity.occurred_at)) is not None:
        rep_by_phone[key] = rep
    if found := index.contacts_holding_extension(line, key):
        contacts_by_phone[key] = found


def attribute_from_index(
    activity: IngestedEvent, index: ReferenceIndex, policy: TenantAttributionPolicy
) -> AttributionDecision:
    """The decision for one activity of a batch: its references resolved, then the rules on the
    slice of ``index`` it points at. The consumer, erasure's re-decisions and the evaluation all
    decide through here."""
    resolved = resolve_references(activity, index)
    sliced = _slice(resolved, index)
    thread = None if sliced.thread is None else _current(sliced.thread)
    return attribute_in_slice(
        resolved, _slice_index(resolved, sliced, index, policy), sliced.override, thread, policy
    )
