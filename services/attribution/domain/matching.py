"""``attribute_activity``: who did an activity, for which team, account and deal.

The cascade (first step that decides wins):

1. a manual override of the activity (sticky, whatever the rules say);
2. ``excluded`` when the activity is automated, ``internal`` when nobody external took part
   (a call or meeting the source files with a CRM contact had that contact there, and a call
   listing one side only had an unknown party on the other, unless the source calls it internal);
3. an explicit ``crm.deal_id`` from the source;
4. contacts found by an external participant's exact email or phone (or ``crm.contact_ids``),
   their accounts and the deals on which they hold a role; accounts found by an external
   participant's business domain (never a free-mail one) or ``crm.account_id``;
5. candidate deals open at the activity time (with grace windows) ranked by a weighted score;
6. a thread reply for which no contact pointed at a deal: the thread's deal is ranked with the
   ``thread`` signal (in place of the missing contact), or the thread's attribution is inherited
   when its deal is not known; a reply whose contact-backed deals are a close call continues
   the deal its thread was attributed to, when that deal is one of the tied.

The primary deal is always the top-ranked candidate; ``rule_path`` names the signal that put
it ahead.

Everything is computed from the activity, the snapshot and the policy alone, with every
ordering made explicit, so the same input always gives the same decision.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from operator import attrgetter
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
from msgspec.structs import replace

from libs.common.contracts.activities import (
    ActivityKind,
    Direction,
    ParticipantRole,
    declined,
    extension_of,
    phone_key,
)
from libs.common.contracts.activities_fast import AnyParticipant, IngestedEvent
from libs.common.contracts.attribution import AttributionStatus
from libs.common.contracts.fields import isoformat
from libs.common.personal_domains import email_domain, is_personal_domain, mailbox_forms, parent_domains
from services.attribution.domain.decision import AttributionDecision, RunnerUp
from services.attribution.domain.reference import (
    Account,
    AmbiguityPolicy,
    AttributionSnapshot,
    Contact,
    CurrentAttribution,
    Deal,
    ManualOverride,
    Rep,
    TeamMembership,
    TenantAttributionPolicy,
)

#: Bumped whenever a rule or weight changes; recorded in every explanation.
RULE_VERSION = "attribution-rules/2026.12.45"


class Signal(StrEnum):
    """What speaks for a candidate deal; each is valued in [0, 1] and weighted."""

    CONTACT_ROLE = "contact_role"  # a participant is a contact with a role on the deal
    OWNER_PARTICIPATES = "owner_participates"  # the deal's owner took part
    CONTACT_COVERAGE = "contact_coverage"  # share of external participants who are its contacts
    ACCOUNT_MATCH = "account_match"  # how firmly the deal's account was found
    PROXIMITY = "proximity"  # 1 inside the deal's life, fading through the grace windows
    RECENCY = "recency"  # halves every RECENCY_HALF_LIFE_DAYS after the deal's creation; 0 before it
    THREAD = "thread"  # the deal (or a secondary) of the thread this reply continues
    SUBJECT = "subject"  # the activity's subject names the deal (the words that set it apart)


#: The weights of the first six sum to 1; with ``subject`` a score reaches at most 1.15 (not
#: capped: a cap would erase the subject's lead between two otherwise full-scoring deals). ``thread`` is only valued
#: for a reply none of whose candidates has a ``contact_role`` (it stands in for the contact the
#: reply lacks), or for the thread's attributed deal among contact-backed deals too close to call
#: (it settles the tie, never a contact's clear lead). Recency alone can never separate two deals (its weight
#: is below AMBIGUITY_MARGIN): it only orders deals that are otherwise tied. ``subject`` is
#: above the margin: a subject naming one of two otherwise equal deals decides between them, but
#: never outweighs a contact's role on another deal.
SIGNAL_WEIGHTS: Mapping[Signal, float] = {
    Signal.CONTACT_ROLE: 0.40,
    Signal.OWNER_PARTICIPATES: 0.20,
    Signal.CONTACT_COVERAGE: 0.15,
    Signal.ACCOUNT_MATCH: 0.10,
    Signal.PROXIMITY: 0.10,
    Signal.RECENCY: 0.05,
    Signal.THREAD: 0.40,
    Signal.SUBJECT: 0.15,
}

#: ``(signal, name, weight)`` in ``Signal`` order, read once per process: the explanation's
#: signal rows, the score's terms (summed in this order) and the deciding signal's gaps.
_SIGNAL_ROWS: tuple[tuple[Signal, str, float], ...] = tuple((s, s.value, SIGNAL_WEIGHTS[s]) for s in Signal)
#: The same with each weight rounded to four places (the contribution of a value of 1), and for
#: the signals whose values are few (an evidence's strength, a share of contacts or words; not
#: the times' proximity and recency) a memo of value -> the value and its contribution rounded.
_SIGNAL_ROWS_ROUNDED: tuple[
    tuple[Signal, str, float, float, dict[float, tuple[float, float]] | None], ...
] = tuple(
    (signal, name, weight, round(weight, 4), None if signal in (Signal.PROXIMITY, Signal.RECENCY) else {})
    for signal, name, weight in _SIGNAL_ROWS
)
#: How many values each memo holds at most (its first ones; then the rest are rounded each time).
_ROUNDED_MEMO_SIZE = 1_024
#: ``round(x, 4)`` of the positive floats the verdict rounds: a lead between two scores (kept to
#: four places, so leads recur), and a decision's confidence (a product of few strengths and
#: margins). ``round`` costs about 2,500 instructions a call (``dtoa``, ``snprintf`` and
#: ``strtod``), a lookup a tenth of it; 90 % of the confidences and 80 % of the leads of the
#: bench's round hit. Read inline, not through a wrapper (whose call cost what the hits saved,
#: fourteenth round). Only positive floats: a zero of either sign compares equal to the other.
_ROUNDED_4: dict[float, float] = {}
_ROUNDED_4_SIZE = 4_096

#: How much each deal-specific signal says about *this* deal (rather than the account): the
#: confidence of a deal found by its account alone is held down (see ``_confidence``).
DEAL_SIGNAL_STRENGTH: Mapping[Signal, float] = {
    Signal.CONTACT_ROLE: 1.0,
    Signal.THREAD: 1.0,
    Signal.SUBJECT: 0.8,
    Signal.OWNER_PARTICIPATES: 0.6,
    Signal.CONTACT_COVERAGE: 0.5,
}
#: Share of the confidence kept by a deal with no deal-specific signal at all; a deal signal of
#: DEAL_SIGNAL_FULL or more keeps all of it.
DEAL_SIGNAL_FLOOR = 0.6
DEAL_SIGNAL_FULL = 0.5
#: ``(position, signal, strength, weight)`` of the deal-specific signals, in their order above.
_DEAL_SIGNAL_ROWS: tuple[tuple[int, Signal, float, float], ...] = tuple(
    (i, s, strength, SIGNAL_WEIGHTS[s]) for i, (s, strength) in enumerate(DEAL_SIGNAL_STRENGTH.items())
)


class Evidence(StrEnum):
    """How a contact or an account was found."""

    CRM_ACCOUNT = "crm_account"
    CRM_CONTACT = "crm_contact"
    CONTACT_EMAIL = "contact_email"
    CONTACT_PHONE = "contact_phone"
    SHARED_PHONE = "shared_phone"  # a switchboard: one number, several contacts
    DOMAIN = "domain"


#: How sure each kind of evidence makes us of the account (and so caps the confidence).
EVIDENCE_STRENGTH: Mapping[Evidence, float] = {
    Evidence.CRM_ACCOUNT: 1.0,
    Evidence.CRM_CONTACT: 1.0,
    Evidence.CONTACT_EMAIL: 0.95,
    Evidence.CONTACT_PHONE: 0.9,
    Evidence.DOMAIN: 0.8,
    Evidence.SHARED_PHONE: 0.6,
}
_EVIDENCE_NAMES: Mapping[Evidence, str] = {e: e.value for e in Evidence}
_CONTACT_EVIDENCE = frozenset(
    {Evidence.CRM_CONTACT, Evidence.CONTACT_EMAIL, Evidence.CONTACT_PHONE, Evidence.SHARED_PHONE}
)

#: Two candidates whose scores differ by less than this are "too close to call".
AMBIGUITY_MARGIN = 0.10
#: A lead of this much over the runner-up leaves the confidence at the evidence strength.
DECISIVE_MARGIN = 0.30
RECENCY_HALF_LIFE_DAYS = 90.0
#: A proximity of 1 inside a deal's life; before a deal's creation it falls linearly to this (0)
#: at the far end of the creation window, so a deal not yet created is penalised by how far in
#: the future it starts. After a deal's close it is 0: the close grace window keeps a closed deal
#: a candidate (late paperwork, the thank-you), but an open deal with the same people and owner
#: (the renewal opened after a win, the deal reopened as a new one) leads it by the signal's
#: weight (rules 2026.12.7; it fell from 1 to 0.5 across the grace window, so such mail was a
#: close call for two weeks after every close).
PROXIMITY_AT_CREATION_EDGE = 0.0
#: An inherited thread attribution is a little less sure than the one it came from.
THREAD_CONFIDENCE_FACTOR = 0.9
_MAX_RUNNERS_UP = 5
_DAY_SECONDS = 86_400.0

#: Which participant roles identify the rep, best first, by kind and direction.
REP_ROLES: Mapping[tuple[ActivityKind, Direction], tuple[ParticipantRole, ...]] = {
    (ActivityKind.EMAIL, Direction.OUTBOUND): (ParticipantRole.FROM,),
    (ActivityKind.EMAIL, Direction.INBOUND): (ParticipantRole.TO, ParticipantRole.CC, ParticipantRole.BCC),
    (ActivityKind.EMAIL, Direction.INTERNAL): (ParticipantRole.FROM,),
    (ActivityKind.CALL, Direction.OUTBOUND): (ParticipantRole.CALLER,),
    (ActivityKind.CALL, Direction.INBOUND): (ParticipantRole.CALLEE,),
    (ActivityKind.CALL, Direction.INTERNAL): (ParticipantRole.CALLER,),
    (ActivityKind.MEETING, Direction.OUTBOUND): (ParticipantRole.ORGANIZER, ParticipantRole.ATTENDEE),
    (ActivityKind.MEETING, Direction.INBOUND): (ParticipantRole.ORGANIZER, ParticipantRole.ATTENDEE),
    (ActivityKind.MEETING, Direction.INTERNAL): (ParticipantRole.ORGANIZER, ParticipantRole.ATTENDEE),
}

#: Thread statuses worth inheriting.
_INHERITABLE = frozenset(
    {AttributionStatus.ATTRIBUTED, AttributionStatus.AMBIGUOUS, AttributionStatus.ACCOUNT_ONLY}
)


# --------------------------------------------------------------------------- helpers


def _as_utc(moment: datetime) -> datetime:
    # ``astimezone`` returns an instant already in ``UTC`` itself (the C code checks the tzinfo
    # by identity), after parsing its arguments with their keywords: the instants the services
    # hold are in ``UTC`` (msgspec's, asyncpg's), so the check is made here first.
    return moment if moment.tzinfo is UTC else moment.astimezone(UTC)


@lru_cache(maxsize=256)
def _days(days: int) -> timedelta:
    """``timedelta(days=days)``, built once per number (the policy's grace windows, per deal)."""
    return timedelta(days=days)


@lru_cache(maxsize=1_024)
def _zone(time_zone: str) -> ZoneInfo:
    return ZoneInfo(time_zone)


def local_day(moment: datetime, time_zone: str) -> date:
    """The calendar day of ``moment`` in ``time_zone`` (an IANA zone): the day a rep's team is
    read on, as the CRM dates memberships and metrics buckets days in the tenant's time."""
    if time_zone == "UTC":
        return _as_utc(moment).date()
    return moment.astimezone(_zone(time_zone)).date()


def deal_open_at(deal: Deal, moment: datetime, policy: TenantAttributionPolicy) -> bool:
    """Whether ``deal`` was open at ``moment``, widened by the policy's grace windows."""
    closed = _as_utc(deal.closed_at) if deal.closed_at is not None else None
    return _open_at(_as_utc(deal.created_at), closed, _as_utc(moment), policy)


def _open_at(
    created: datetime, closed: datetime | None, at: datetime, policy: TenantAttributionPolicy
) -> bool:
    """``deal_open_at`` with the deal's and the activity's times already in UTC."""
    if at < created - _days(policy.grace_days_before_created):
        return False
    return closed is None or at <= closed + _days(policy.grace_days_after_closed)


def _proximity(
    created: datetime, closed: datetime | None, at: datetime, policy: TenantAttributionPolicy
) -> float:
    if closed is not None and at > closed:
        return 0.0
    if at >= created:
        return 1.0
    days_out, grace = (created - at).total_seconds() / _DAY_SECONDS, policy.grace_days_before_created
    if grace == 0:
        return PROXIMITY_AT_CREATION_EDGE
    return 1.0 - (1.0 - PROXIMITY_AT_CREATION_EDGE) * min(1.0, days_out / grace)


def _recency(created: datetime, closed: datetime | None, at: datetime) -> float:
    """Halves every RECENCY_HALF_LIFE_DAYS of the deal's age; 0 for a deal not yet created, which
    must never win on recency (a negative age is not "brand new"), and for a deal closed by then
    (rules 2026.12.39): closed business is not recent, and its recency must not eat into the lead
    ``proximity`` gives an open deal of the same people (a deal won last week created after the
    one still open made their mail a close call)."""
    age_days = (at - created).total_seconds() / _DAY_SECONDS
    if age_days < 0 or (closed is not None and at > closed):
        return 0.0
    return float(0.5 ** (age_days / RECENCY_HALF_LIFE_DAYS))


def team_at(rep_id: str | None, day: date, memberships: Iterable[TeamMembership]) -> str | None:
    """The rep's team on ``day``; overlapping memberships resolve to the most recent one."""
    if rep_id is None:
        return None
    # A loop, not a comprehension: in Python 3.11 a comprehension makes the locals it reads cells,
    # created on every call of its function (``performance.md``, nineteenth round).
    covering: list[TeamMembership] = []
    for m in memberships:
        if m.rep_id == rep_id and m.covers(day):
            covering.append(m)
    if not covering:
        return None
    if len(covering) == 1:
        return covering[0].team_id
    return max(covering, key=lambda m: (m.valid_from, m.team_id)).team_id


# The private records of a decision are built for one activity and never changed afterwards, but
# are not frozen: a frozen dataclass's ``__init__`` sets each field through ``object.__setattr__``
# (about 1 us a record, a dozen records an activity). They are msgspec structs, whose constructor
# is C (a slots dataclass's ``__init__`` is Python, about 0.4 us with keywords).
class _ContactMatch(msgspec.Struct):
    contact_id: str
    account_id: str | None
    evidence: Evidence
    #: 1 for an exact identity; 1/k for a number shared by k contacts.
    certainty: float
    participant_index: int


class _Candidate(msgspec.Struct):
    deal: Deal
    score: float
    values: Mapping[Signal, float]
    strength: float

    def sort_key(self) -> tuple[float, float, float, str]:
        return (-self.score, -self.values[_SIGNAL_PROXIMITY], -self.deal.created_at.timestamp(), self.deal.id)


class _RepChoice(msgspec.Struct):
    rep_id: str | None
    via: str
    candidates: tuple[str, ...]


_by_id = attrgetter("id")


def _contacts_by_email(contacts: Iterable[Contact]) -> dict[str, list[str]]:
    """The contacts holding each email, by id, as ``ReferenceIndex.contacts_holding`` finds them:
    held as ``mailbox_forms`` holds a record's addresses, and one listing an address as written
    is its only holder, not also a contact holding it only as a mailbox (rules 2026.12.27)."""
    held: dict[str, list[str]] = {}
    listed: dict[str, list[str]] = {}
    for contact in sorted(contacts, key=_by_id):
        for email in sorted(set(mailbox_forms(contact.emails))):
            held.setdefault(email, []).append(contact.id)
        for email in sorted({e.lower() for e in contact.emails}):
            listed.setdefault(email, []).append(contact.id)
    return {email: (listed.get(email) or ids) if len(ids) > 1 else ids for email, ids in held.items()}


@lru_cache(maxsize=64)
def lowered_domains(domains: frozenset[str]) -> frozenset[str]:
    """A batch's internal domains lower-cased, once per batch (its activities share the set:
    each activity's slice asks again, and finds it here)."""
    return frozenset(d.lower() for d in domains)


def account_domains(account: Account) -> set[str]:
    """An account's domains as the rules compare them: lower-cased, without a trailing dot."""
    return {d.lower().rstrip(".") for d in account.domains}


def rep_holding(holders: Iterable[Rep]) -> tuple[str | None, bool]:
    """The rep an email or phone names among the people holding it, and whether it is a line
    several active reps share: the one active holder; with none active, the first by id (a
    departed rep's address); several active (a switchboard's number that each rep lists with
    their extension, a team mailbox) name none of them, yet are the seller's side."""
    active = sorted(rep.id for rep in holders if rep.active)
    if len(active) > 1:
        return None, True
    if active:
        return active[0], False
    return min((rep.id for rep in holders), default=None), False


class SliceIndex(msgspec.Struct, kw_only=True):
    """What the rules look up around one activity, with deterministic tie-breaking: reps and
    contacts by identity, accounts by domain, the candidate deals (by id) and team memberships.

    Filled from a batch's ``ReferenceIndex`` by ``reference_index.decide`` (the consumer's and
    the evaluation's path), or from a hand-built ``AttributionSnapshot`` by ``of_snapshot``; the
    lookups answer the same for every identity and domain of the activity's participants.

    A msgspec struct (built per activity: a Python ``__init__`` taking these eleven keywords was
    about 2 us); ``deal_by_id`` is built when asked, on the few paths that ask.
    """

    #: Lower-cased.
    internal_domains: frozenset[str]
    rep_by_email: Mapping[str, str]
    rep_by_phone: Mapping[str, str]
    rep_by_name_address: Mapping[str, str]
    #: Identity -> contact ids, sorted. The phone maps hold a line listed with an extension
    #: under its key too (``+14155550100;ext=12``, ``activities.phone_key``).
    contacts_by_email: Mapping[str, Sequence[str]]
    contacts_by_phone: Mapping[str, Sequence[str]]
    contact_account: Mapping[str, str | None]
    #: Business domain -> account ids, sorted; free-mail and personal domains absent.
    accounts_by_domain: Mapping[str, Sequence[str]]
    #: Sorted by id.
    deals: tuple[Deal, ...]
    #: Rep id -> its memberships.
    memberships: Mapping[str, Sequence[TeamMembership]]
    #: Emails (lower-cased) and phones several active reps hold: internal, nobody's (``rep_holding``).
    shared_rep_identities: frozenset[str] = frozenset()

    @property
    def deal_by_id(self) -> dict[str, Deal]:
        """The deals by id (the last of one id, as a dict of them)."""
        deals = self.deals
        return dict(zip(map(_by_id, deals), deals, strict=True))

    @classmethod
    def of_snapshot(cls, snapshot: AttributionSnapshot, policy: TenantAttributionPolicy) -> SliceIndex:
        holders: dict[tuple[str, bool], dict[str, Rep]] = {}
        for rep in snapshot.reps:
            # Held as the index holds them (``mailbox_forms``: a Gmail or ``+tagged`` address also
            # as its mailbox), so the two paths find the same people.
            for email in mailbox_forms(rep.emails):
                holders.setdefault((email, True), {})[rep.id] = rep
            for phone in (*rep.phones, *rep.phone_extensions):
                holders.setdefault((phone, False), {})[rep.id] = rep
        rep_by_email: dict[str, str] = {}
        rep_by_phone: dict[str, str] = {}
        shared: set[str] = set()
        for (identity, is_email), held in holders.items():
            named, is_shared = rep_holding(held.values())
            if named is not None:
                (rep_by_email if is_email else rep_by_phone)[identity] = named
            elif is_shared:
                shared.add(identity)
        contacts_by_phone: dict[str, list[str]] = {}
        contact_account: dict[str, str | None] = {}
        for contact in sorted(snapshot.contacts, key=_by_id):
            contact_account[contact.id] = contact.account_id
            for phone in sorted({*contact.phones, *contact.phone_extensions}):
                contacts_by_phone.setdefault(phone, []).append(contact.id)
        contacts_by_email = _contacts_by_email(snapshot.contacts)
        accounts_by_domain: dict[str, list[str]] = {}
        memberships: dict[str, list[TeamMembership]] = {}
        for membership in snapshot.memberships:
            memberships.setdefault(membership.rep_id, []).append(membership)
        for account in sorted(snapshot.accounts, key=_by_id):
            for domain in sorted(account_domains(account)):
                if not is_personal_domain(domain, policy.extra_personal_domains):
                    accounts_by_domain.setdefault(domain, []).append(account.id)
        return cls(
            internal_domains=lowered_domains(snapshot.internal_domains),
            rep_by_email=rep_by_email,
            rep_by_phone=rep_by_phone,
            rep_by_name_address=snapshot.rep_by_name_address,
            contacts_by_email=contacts_by_email,
            contacts_by_phone=contacts_by_phone,
            contact_account=contact_account,
            accounts_by_domain=accounts_by_domain,
            deals=tuple(sorted(snapshot.deals, key=_by_id)),
            memberships=memberships,
            shared_rep_identities=frozenset(shared),
        )

    def rep_of(self, email: str | None, phone: str | None, extension: str | None = None) -> str | None:
        # ``rep_by_name_address`` first: it names a listed address or a phone only for a rep
        # deleted by her CRM who held it when the activity happened (``ReferenceIndex.departed``),
        # over whoever holds it now; otherwise an alias no source lists.
        named = self.rep_by_name_address
        if email is not None:
            address = email.lower()
            if address in named:
                return named[address]
            if address in self.rep_by_email:
                return self.rep_by_email[address]
        if phone is not None:
            # The line with the extension dialled names the rep listing both (``phone_key``);
            # an extension nobody lists is the line's call.
            if extension is not None and (keyed := self.rep_by_phone.get(phone_key(phone, extension))):
                return keyed
            if phone in named:
                return named[phone]
            return self.rep_by_phone.get(phone)
        return None

    def is_shared_rep_line(self, participant: AnyParticipant) -> bool:
        """Whether the participant's address is one several reps share (internal, nobody's)."""
        shared = self.shared_rep_identities
        if not shared:
            return False
        email = participant.email.lower() if participant.email else None
        return email in shared or participant.phone in shared

    def at_internal_domain(self, email: str | None) -> bool:
        """Whether an address is at one of the tenant's domains (a rep's or not)."""
        domain = email_domain(email) if email else None
        # Whether any of its parent domains is internal: ``any`` over a generator made ``self`` a
        # cell (``team_at``).
        return domain is not None and not self.internal_domains.isdisjoint(parent_domains(domain))


# --------------------------------------------------------------------------- the rules


class _Verdict(msgspec.Struct):
    """What the cascade decided, before the rep and team are read and the decision assembled."""

    status: AttributionStatus
    rule_path: str
    confidence: float
    deal_id: str | None = None
    account_id: str | None = None
    secondary: tuple[str, ...] = ()
    runners_up: tuple[RunnerUp, ...] = ()
    #: Owner of the chosen deal: breaks ties between reps in the same role, last-resort rep.
    owner_hint: str | None = None
    #: Set by a manual override only.
    fixed_rep_id: str | None = None
    fixed_team_id: str | None = None
    overridden: bool = False


class _Facts(msgspec.Struct):
    """What the participants point at, computed once per call."""

    activity: IngestedEvent
    policy: TenantAttributionPolicy
    index: SliceIndex
    #: A manual override of the activity, and the attribution of the thread it replies in.
    override: ManualOverride | None
    thread: CurrentAttribution | None
    external: tuple[int, ...]
    participating_reps: frozenset[str]
    matches: tuple[_ContactMatch, ...]


def attribute_activity(
    activity: IngestedEvent, snapshot: AttributionSnapshot, policy: TenantAttributionPolicy
) -> AttributionDecision:
    """Decide the rep, team, account and deal of ``activity`` from ``snapshot`` under ``policy``."""
    return attribute_in_slice(
        activity,
        SliceIndex.of_snapshot(snapshot, policy),
        snapshot.override,
        snapshot.thread_attribution,
        policy,
    )


def attribute_in_slice(
    activity: IngestedEvent,
    index: SliceIndex,
    override: ManualOverride | None,
    thread: CurrentAttribution | None,
    policy: TenantAttributionPolicy,
) -> AttributionDecision:
    """``attribute_activity`` on the lookups of the activity's slice of reference data."""
    participants: Sequence[AnyParticipant] = activity.participants
    # One pass, without a generator per list (in Python 3.11 each is a function, a generator and
    # its frame, resumed per participant): each participant's rep; who declined the invitation (a
    # participant who declined did not take part: still on the seller's side or not, but neither
    # credited, a rep, nor evidence for an account or deal, a buyer); who is outside (internal: a
    # rep's identity, or an address at the tenant's domains).
    rep_list: list[str | None] = []
    refused_list: list[int] = []
    external_list: list[int] = []
    for position, p in enumerate(participants):
        rep = index.rep_of(p.email, p.phone, extension_of(p))
        rep_list.append(rep)
        if declined(p):
            refused_list.append(position)
        elif rep is None and not index.at_internal_domain(p.email) and not index.is_shared_rep_line(p):
            external_list.append(position)
    reps, refused, external = tuple(rep_list), tuple(refused_list), tuple(external_list)
    reps_present = _present(reps, refused) if refused else reps
    matches = _match_contacts(activity, index, external)
    unknown = _unknown_callers(activity, external, matches) if _callers_told_apart(activity) else ()
    if unknown:
        external = _besides(external, unknown)
    facts = _Facts(
        activity=activity,
        policy=policy,
        index=index,
        override=override,
        thread=thread,
        external=external,
        participating_reps=_participating_reps(activity, reps_present),
        matches=matches,
    )
    explanation: dict[str, Any] = {
        "rule_version": RULE_VERSION,
        "policy": {
            "ambiguity_policy": policy.ambiguity_policy._value_,
            "grace_days_before_created": policy.grace_days_before_created,
            "grace_days_after_closed": policy.grace_days_after_closed,
            "min_confidence": policy.min_confidence,
        },
        "steps": [],
    }
    if refused:
        # Positions only (the payload holds who they are; an explanation names no person).
        explanation["declined"] = list(refused)
        explanation["steps"].append(f"{len(refused)} declined the invitation: neither credited nor evidence")
    if unknown:
        # Positions only, as ``declined``; a contact later listing the number settles it
        # (``should_park``).
        explanation["unidentified_callers"] = list(unknown)
        explanation["steps"].append(
            f"{len(unknown)} dialled in from a number no contact or rep lists: nobody identified"
        )
    verdict = _decide(facts, explanation)

    day = local_day(activity.occurred_at, policy.time_zone)
    choice = _choose_rep(activity, reps_present, verdict.owner_hint)
    rep_id = verdict.fixed_rep_id if verdict.fixed_rep_id is not None else choice.rep_id
    team_id = (
        verdict.fixed_team_id
        if verdict.fixed_team_id is not None
        else team_at(rep_id, day, index.memberships.get(rep_id, ()) if rep_id is not None else ())
    )
    explanation["rule_path"] = verdict.rule_path
    explanation["rep"] = {
        "rep_id": rep_id,
        "via": "override" if verdict.fixed_rep_id is not None else choice.via,
        "candidates": list(choice.candidates),
        "team_id": team_id,
        "team_on": isoformat(day),
    }
    confidence = _at_most_one(_at_least_zero(verdict.confidence))
    rounded = _ROUNDED_4.get(confidence) if confidence > 0.0 else None
    if rounded is None:
        rounded = round(confidence, 4)
        if confidence > 0.0 and len(_ROUNDED_4) < _ROUNDED_4_SIZE:
            _ROUNDED_4[confidence] = rounded
    runners_up: list[dict[str, Any]] = []
    for r in verdict.runners_up:
        runners_up.append({"deal_id": r.deal_id, "score": r.score})
    explanation["runners_up"] = runners_up
    # The contacts matched for certain, by id (a set, sorted), without a comprehension (``team_at``).
    certain: set[str] = set()
    for m in facts.matches:
        if m.certainty == 1.0:
            certain.add(m.contact_id)
    return AttributionDecision(
        status=verdict.status,
        rep_id=rep_id,
        team_id=team_id,
        account_id=verdict.account_id,
        deal_id=verdict.deal_id,
        confidence=rounded,
        rule_path=verdict.rule_path,
        secondary_deal_ids=verdict.secondary,
        runners_up=verdict.runners_up,
        external_participants=len(external),
        external_contact_ids=tuple(sorted(certain) if len(certain) > 1 else certain),
        overridden=verdict.overridden,
        explanation=explanation,
    )


def _present(reps: tuple[str | None, ...], refused: tuple[int, ...]) -> tuple[str | None, ...]:
    """Each participant's rep, but those who declined (apart: ``team_at``)."""
    return tuple(None if position in refused else rep for position, rep in enumerate(reps))


def _besides(positions: tuple[int, ...], left_out: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(position for position in positions if position not in left_out)


def _unknown_callers(
    activity: IngestedEvent, external: tuple[int, ...], matches: tuple[_ContactMatch, ...]
) -> tuple[int, ...]:
    """The meeting's outside participants known by a number only that is no contact's (nor a
    rep's: those are not outside). Someone who dialled into a meeting (Zoom) from a number the
    CRM does not list is nobody identified, as likely a colleague on her mobile as a customer:
    she makes the meeting no customer meeting (a caller the CRM lists does)."""
    matched = {m.participant_index for m in matches}
    return tuple(
        position
        for position in external
        if position not in matched
        and activity.participants[position].email is None
        and activity.participants[position].phone is not None
    )


def _participating_reps(activity: IngestedEvent, reps: tuple[str | None, ...]) -> frozenset[str]:
    """The reps taking part: those among the participants; when none is (a shared inbox), the
    rep the source assigned the activity to (``crm.owner_rep_id``), who is credited with it."""
    found = set(reps)
    found.discard(None)
    present: frozenset[str] = frozenset(found)  # type: ignore[arg-type]  # None is gone
    if present or activity.crm.owner_rep_id is None:
        return present
    return frozenset({activity.crm.owner_rep_id})


def _filed_with_a_contact(activity: IngestedEvent) -> bool:
    """A call or meeting the source files with a CRM contact (``crm.contact_ids``) had that
    contact on the other side, whoever its participants list: a CRM's meeting or logged call
    names its owner, and the buyer only by the association (HubSpot meetings carry no attendee
    address; a Salesforce Event or Task only the fields a flow filled). An email lists every
    address, so one among colleagues stays internal wherever the CRM files it."""
    return bool(activity.crm.contact_ids) and activity.kind != _KIND_EMAIL


def _callers_told_apart(activity: IngestedEvent) -> bool:
    """Whether a caller no contact lists is told apart as nobody identified (``_unknown_callers``):
    in a meeting that names no deal nor account. One the source files under a deal or account
    (``crm.deal_id``, ``crm.account_id``) is decided by that reference with the caller outside,
    as before rules 2026.12.31 (rules 2026.12.33): an unidentified caller does not make it an
    internal meeting, nor a meeting among colleagues (metrics counts it as a customer meeting)."""
    return activity.kind == _KIND_MEETING and activity.crm.deal_id is None and activity.crm.account_id is None


def _one_sided_call(activity: IngestedEvent) -> bool:
    """A call listing one side only: the other withheld their number (or the source knew no
    number for them). Somebody was on the line whom nothing identifies: unmatched, not internal.
    Unless the source says the other side is a colleague (``direction`` internal: a phone
    system's call to another extension dialled by its short number, which is no phone)."""
    return (
        activity.kind == _KIND_CALL
        and activity.direction != _DIRECTION_INTERNAL
        and len(activity.participants) == 1
    )


def _decide(facts: _Facts, explanation: dict[str, Any]) -> _Verdict:
    """The cascade: the first step that decides wins."""
    activity, index, policy = facts.activity, facts.index, facts.policy
    steps: list[str] = explanation["steps"]

    override = facts.override
    if override is not None:
        steps.append(f"manual override by {override.set_by or 'unknown'}: {override.reason}".strip())
        if _rep_only(override):
            # A rep-only correction says who did the work, not what it was about: the rules
            # still decide the deal and account; the team follows the rep at the activity time.
            ruled = _decide(replace(facts, override=None), explanation)
            return replace(ruled, fixed_rep_id=override.rep_id, overridden=True)
        return _override_verdict(override, index)
    if activity.automated:
        steps.append("automated sender: kept and counted, never attributed")
        return _Verdict(_STATUS_EXCLUDED, "excluded", 1.0)
    if not facts.external and not _filed_with_a_contact(activity) and not _one_sided_call(activity):
        if "declined" in explanation:
            steps.append("every participant who did not decline is internal: an internal meeting")
        else:
            steps.append("every participant is internal (tenant domain or rep identity)")
        return _Verdict(_STATUS_INTERNAL, "internal", 1.0)
    if activity.crm.deal_id is not None:
        steps.append(f"explicit crm.deal_id {activity.crm.deal_id}")
        explicit = index.deal_by_id.get(activity.crm.deal_id)
        return _Verdict(
            _STATUS_ATTRIBUTED,
            "explicit_deal",
            1.0,
            deal_id=activity.crm.deal_id,
            account_id=(explicit.account_id if explicit else None) or activity.crm.account_id,
            owner_hint=explicit.owner_rep_id if explicit else None,
        )

    explanation["contacts"] = _contact_rows(facts.matches)
    account_evidence = _find_accounts(activity, index, facts.external, facts.matches, policy)
    explanation["accounts"] = _account_rows(account_evidence)
    candidates = _rank_deals(facts, account_evidence)
    by_contact = bool(candidates) and candidates[0].values[_SIGNAL_CONTACT_ROLE] > 0.0

    thread = facts.thread
    if not by_contact and thread is not None and _thread_usable(thread, facts, account_evidence):
        explanation["thread"] = {"deal_id": thread.deal_id, "account_id": thread.account_id}
        if thread.deal_id is not None and thread.deal_id in index.deal_by_id:
            steps.append("reply without a contact-backed deal: the thread's deals carry the thread signal")
            threaded = frozenset({thread.deal_id, *thread.secondary_deal_ids})
            ranked = _rank_deals(facts, account_evidence, threaded)
            return _rank_verdict(
                ranked, account_evidence, policy, explanation, thread.confidence * THREAD_CONFIDENCE_FACTOR
            )
        steps.append("reply without a contact-backed deal: inherits the thread's attribution")
        # The thread's deal is not known here (not synced yet, or none): nothing to rank it
        # against, so no runner-up is claimed either.
        return _Verdict(
            thread.status,
            "thread",
            thread.confidence * THREAD_CONFIDENCE_FACTOR,
            deal_id=thread.deal_id,
            account_id=thread.account_id,
            secondary=thread.secondary_deal_ids,
        )

    if by_contact and (continued := _continue_thread(facts, candidates, account_evidence, explanation)):
        return continued

    if not candidates:
        if not account_evidence:
            steps.append("no contact, account or deal found")
            return _Verdict(_STATUS_UNMATCHED, "none", 0.0)
        account_id, kinds = max(
            account_evidence.items(), key=lambda item: (_strength(item[1]), len(item[1]), item[0])
        )
        steps.append("account found, no deal open at the activity time")
        return _Verdict(_STATUS_ACCOUNT_ONLY, _path_of(kinds), _strength(kinds), account_id=account_id)

    if yielded := _partner_yields(candidates, account_evidence):
        return _yield_to_customer(facts, candidates, yielded, account_evidence, explanation)
    settled = by_contact and _people_settle(facts, candidates, by_addressed=True)
    if settled:
        steps.append(
            "every person on the close runners-up is on the best deal, and more: the people settle it"
        )
    return _rank_verdict(candidates, account_evidence, policy, explanation, settled=settled)


def _contact_rows(matches: tuple[_ContactMatch, ...]) -> list[dict[str, Any]]:
    """The explanation's row per contact matched. Loops, not comprehensions: each is a function
    object per call in Python 3.11 (``team_at``)."""
    rows: list[dict[str, Any]] = []
    for m in matches:
        rows.append(
            {
                "contact_id": m.contact_id,
                "evidence": _EVIDENCE_NAMES[m.evidence],
                # Most are exactly 1 (an address one contact holds), which rounds to itself.
                "certainty": m.certainty if m.certainty == 1.0 else round(m.certainty, 4),
            }
        )
    return rows


def _account_rows(account_evidence: Mapping[str, set[Evidence]]) -> list[dict[str, Any]]:
    """The explanation's row per account found, by id (``_contact_rows``)."""
    rows: list[dict[str, Any]] = []
    # ``sorted`` of one item is a list of it: not called then (most find one account, by one kind).
    items = account_evidence.items()
    for account_id, kinds in sorted(items) if len(items) > 1 else items:
        rows.append(
            {
                "account_id": account_id,
                "evidence": sorted(map(_EVIDENCE_NAMES.__getitem__, kinds))
                if len(kinds) > 1
                else list(map(_EVIDENCE_NAMES.__getitem__, kinds)),
                "strength": _strength(kinds),
            }
        )
    return rows


def _backers(facts: _Facts, deal: Deal, addressed_only: bool = False) -> frozenset[int]:
    """The participants who are contacts holding a role on ``deal`` (by their own email or
    phone; a switchboard names nobody); with ``addressed_only``, not those only copied on it."""
    ids = deal.contact_ids
    backers: set[int] = set()  # a loop, not a generator (``team_at``)
    for m in facts.matches:
        if (
            m.participant_index >= 0
            and m.evidence is not _EVIDENCE_SHARED_PHONE
            and m.contact_id in ids
            and (not addressed_only or _addressed(facts.activity, m) == 1.0)
        ):
            backers.add(m.participant_index)
    return frozenset(backers)


def _people_settle(facts: _Facts, candidates: list[_Candidate], by_addressed: bool = False) -> bool:
    """Whether a close call is settled by who took part (rules 2026.12.17): every participant
    holding a role on a close runner-up holds one on the best deal, and someone more does. A
    meeting with the customer's buyer and a reseller's person who is on the customer's deal (an
    influencer) and on the reseller's own deal is about the customer's deal, everyone there is on
    it; it led by the coverage alone (0.15 x 1/2), under the margin. With ``by_addressed``
    (rules 2026.12.39), someone the email is from or to must be on the best deal: a colleague
    copied tells between the deals of those written to, but alone (the addressee on no deal) he
    does not settle the sender's mail for another rep's deal he is on; those copied are kept
    informed."""
    top = candidates[0]
    close: list[_Candidate] = []  # loops, not comprehensions (``team_at``)
    for c in candidates[1:]:
        if _lead(top, c) < AMBIGUITY_MARGIN:
            close.append(c)
    if not close:
        return False
    if by_addressed and not _backers(facts, top.deal, addressed_only=True):
        return False
    ours = _backers(facts, top.deal)
    settled = True  # ``all`` of them, in order, stopping at the first that is not
    for c in close:
        if not _backers(facts, c.deal) < ours:
            settled = False
            break
    return settled


#: ``AccountV1.relationship`` of a reseller, distributor or systems integrator.
PARTNER = "partner"


def _partner_yields(
    candidates: list[_Candidate], account_evidence: Mapping[str, set[Evidence]]
) -> tuple[_Candidate, ...]:
    """The deals of partner accounts that yield to a customer's deal (rules 2026.12.28).

    A meeting or mail with a customer's people and a partner's (a reseller, an integrator), each
    with a role on a deal of their own account, is about the customer's deal: the partner's people
    are there for it. So when the candidates split between deals of accounts the CRM types
    ``partner`` and deals of other accounts, the partner's deals that lead or come within
    AMBIGUITY_MARGIN of the best other deal yield to it, unless the subject names a partner's deal
    (then it is about that one) or only partner people took part (no account but a partner's was
    found by the participants or the CRM's filing: a deal of the customer reached through a
    partner's role on it is no customer present). An untyped account is no partner.
    """
    # Loops, not comprehensions (``team_at``): most candidates are no partner's.
    partners: list[_Candidate] = []
    others: list[_Candidate] = []
    for c in candidates:
        (partners if c.deal.account_relationship == PARTNER else others).append(c)
    if not partners or not others:
        return ()
    for c in others:
        if c.deal.account_id in account_evidence:
            break
    else:
        return ()
    for c in partners:
        if c.values[_SIGNAL_SUBJECT] > 0.0:
            return ()
    best_other = others[0]
    yielding: list[_Candidate] = []
    for c in partners:
        if _lead(best_other, c) < AMBIGUITY_MARGIN:
            yielding.append(c)
    return tuple(yielding)


def _yield_to_customer(
    facts: _Facts,
    candidates: list[_Candidate],
    yielded: tuple[_Candidate, ...],
    account_evidence: Mapping[str, set[Evidence]],
    explanation: dict[str, Any],
) -> _Verdict:
    """The verdict among the deals that do not yield (``_partner_yields``), the partner's deals
    kept beside it: secondary deals of the primary under ``primary_with_secondaries`` (engaged,
    never credited), runners-up in any case. The confidence is a close call's: the best deal is
    measured against the best yielded one too (``rival``)."""
    gone = {c.deal.id for c in yielded}
    ranked = [c for c in candidates if c.deal.id not in gone]
    explanation["steps"].append(
        f"a partner's deals yield to the customer's (its people are there for it): {', '.join(sorted(gone))}"
    )
    explanation["yielded"] = [{"deal_id": c.deal.id, "score": c.score} for c in yielded]
    settled = ranked[0].values[_SIGNAL_CONTACT_ROLE] > 0.0 and _people_settle(facts, ranked)
    verdict = _rank_verdict(
        ranked, account_evidence, facts.policy, explanation, settled=settled, rival=yielded[0]
    )
    if verdict.deal_id is None:
        return verdict
    verdict.runners_up = _runners_up(candidates, verdict.deal_id)
    if verdict.status is _STATUS_ATTRIBUTED:
        verdict.rule_path = "partner_yields"
    if facts.policy.ambiguity_policy is _AMBIGUITY_PRIMARY_WITH_SECONDARIES:
        verdict.secondary = (*verdict.secondary, *(c.deal.id for c in yielded))
    return verdict


def _rep_only(override: ManualOverride) -> bool:
    return (
        override.rep_id is not None
        and override.team_id is None
        and override.account_id is None
        and override.deal_id is None
        and override.status is None
    )


def _override_verdict(override: ManualOverride, index: SliceIndex) -> _Verdict:
    override_deal = index.deal_by_id.get(override.deal_id) if override.deal_id else None
    account_id = override.account_id or (override_deal.account_id if override_deal else None)
    if override.status is not None:
        status = override.status
    elif override.deal_id is not None:
        status = _STATUS_ATTRIBUTED
    else:
        status = _STATUS_ACCOUNT_ONLY if account_id else _STATUS_UNMATCHED
    return _Verdict(
        status,
        "override",
        1.0,
        deal_id=override.deal_id,
        account_id=account_id,
        owner_hint=override_deal.owner_rep_id if override_deal else None,
        fixed_rep_id=override.rep_id,
        fixed_team_id=override.team_id,
        overridden=True,
    )


def _lead(top: _Candidate, other: _Candidate) -> float:
    """How far ``top`` leads ``other``, to the 4 places scores are kept: a lead of exactly the
    margin (a subject naming 2 of 3 words, 0.15 x 2/3) is not a close call by a float's error."""
    lead = top.score - other.score
    rounded = _ROUNDED_4.get(lead) if lead > 0.0 else None  # ``_ROUNDED_4``
    if rounded is None:
        rounded = round(lead, 4)
        if lead > 0.0 and len(_ROUNDED_4) < _ROUNDED_4_SIZE:
            _ROUNDED_4[lead] = rounded
    return rounded


def _confidence(top: _Candidate, runner_up: _Candidate | None) -> float:
    """Evidence strength x winning margin x strength of the deal's own signal.

    The margin: a lead of DECISIVE_MARGIN or more keeps the evidence strength, a tie half of it;
    a lone candidate leads by its own score. The deal signal: a deal found by its account alone
    (no contact role, thread or owner taking part) keeps DEAL_SIGNAL_FLOOR of it, so a lone weak
    candidate stays below ``min_confidence`` and waits for the deal that will settle it.
    """
    lead = top.score - runner_up.score if runner_up is not None else top.score
    margin = 0.5 + 0.5 * _at_most_one(_at_least_zero(lead) / DECISIVE_MARGIN)
    values = top.values
    deal_signal: float | None = None  # the greatest as ``max`` takes it, without its call
    for _, signal, strength, _ in _DEAL_SIGNAL_ROWS:
        weighted = strength * values[signal]
        if deal_signal is None or weighted > deal_signal:
            deal_signal = weighted
    assert deal_signal is not None  # ``_DEAL_SIGNAL_ROWS`` is not empty
    own = DEAL_SIGNAL_FLOOR + (1.0 - DEAL_SIGNAL_FLOOR) * _at_most_one(deal_signal / DEAL_SIGNAL_FULL)
    return top.strength * margin * own


def _deciding_signal(top: _Candidate, runner_up: _Candidate | None) -> str:
    """The signal that put ``top`` ahead: the largest weighted difference to the runner-up, or,
    for a lone candidate, its strongest deal-specific signal (else its account)."""
    # ``max`` of (weighted value, -position, signal) written out: the greatest value, the first
    # of equals (a later row has the smaller -position), without the list of tuples.
    if runner_up is None:
        values = top.values
        best: float | None = None
        best_signal = _SIGNAL_ACCOUNT_MATCH
        for _, s, _, weight in _DEAL_SIGNAL_ROWS:
            weighted = weight * values[s]
            if best is None or weighted > best:
                best, best_signal = weighted, s
        assert best is not None  # ``_DEAL_SIGNAL_ROWS`` is not empty
        return best_signal._value_ if best > 0 else _SIGNAL_ACCOUNT_MATCH._value_
    ours, theirs = top.values, runner_up.values
    gap: float | None = None
    signal = _SIGNAL_ACCOUNT_MATCH
    for s, _, weight in _SIGNAL_ROWS:
        weighted = weight * (ours[s] - theirs[s])
        if gap is None or weighted > gap:
            gap, signal = weighted, s
    assert gap is not None  # ``_SIGNAL_ROWS`` is not empty
    return signal._value_ if gap > 0 else "tie_break"


def _signal_rows(values: Mapping[Signal, float]) -> list[dict[str, Any]]:
    """The explanation's row per signal: its weight, value and contribution to four places.

    ``round(x, 4)`` is about 0.2 us a call, two per signal of every ranked deal, and most values
    are exactly 0 or 1, whose rounding is known: a zero (of either sign) and its contribution
    round to themselves, and a one contributes its weight, rounded once per process. Of the
    others, an evidence's strength (0.95 for a contact's email) and a share (half the contacts)
    recur: rounded once, then read from the signal's memo (a NaN, never a signal's value, would
    miss it and be rounded, to itself).
    """
    rows = []
    for signal, name, weight, weight_rounded, memo in _SIGNAL_ROWS_ROUNDED:
        value = values[signal]
        if value == 0.0:
            contribution = weight * value
        elif value == 1.0:
            contribution = weight_rounded
        elif memo is None:
            value, contribution = round(value, 4), round(weight * value, 4)
        else:
            rounded = memo.get(value)
            if rounded is None:
                rounded = (round(value, 4), round(weight * value, 4))
                if len(memo) < _ROUNDED_MEMO_SIZE:
                    memo[value] = rounded
            value, contribution = rounded
        rows.append({"signal": name, "weight": weight, "value": value, "contribution": contribution})
    return rows


def _rank_verdict(
    candidates: list[_Candidate],
    account_evidence: Mapping[str, set[Evidence]],
    policy: TenantAttributionPolicy,
    explanation: dict[str, Any],
    ceiling: float = 1.0,
    *,
    settled: bool = False,
    rival: _Candidate | None = None,
) -> _Verdict:
    """Status from the ranked candidates: a clear leader, a close call, or too unsure.

    The primary deal is always ``candidates[0]``; ``ceiling`` caps the confidence (a thread's
    deal is never surer than the thread it continues); ``settled`` says a close call is none
    (``_people_settle``); ``rival``, a deal ranked apart (``_yield_to_customer``), is measured
    against for the confidence when it scores above the runner-up.
    """
    steps: list[str] = explanation["steps"]
    top = candidates[0]
    runner_up = candidates[1] if len(candidates) > 1 else None
    # A subject naming a runner-up outright while naming nothing of the best deal (rules
    # 2026.12.39): the best leads by a role or the people, the subject says what the mail is about;
    # which is stale cannot be told, so it is a close call, both surfaced.
    # The people settle a close score (``settled``), not what the subject says.
    named_elsewhere = top.values[_SIGNAL_SUBJECT] == 0.0
    # A close call only the subject makes is measured as a tie (the subject's deal may be the one):
    # ``forced``. One loop, no generator (see ``attribute_in_slice``), each lead rounded once.
    close_list: list[_Candidate] = []
    forced = False
    for c in candidates[1:]:
        lead: float | None = None
        if not settled:
            lead = _lead(top, c)
            if lead < AMBIGUITY_MARGIN:
                close_list.append(c)
                continue
        if named_elsewhere and c.values[_SIGNAL_SUBJECT] >= 1.0:
            close_list.append(c)
            if (lead if lead is not None else _lead(top, c)) >= AMBIGUITY_MARGIN:
                forced = True
    close = tuple(close_list)
    measured = (
        rival if rival is not None and (runner_up is None or rival.score > runner_up.score) else runner_up
    )
    confidence = _confidence(top, top if forced else measured)
    confidence = confidence if confidence < ceiling else ceiling  # ``min(ceiling, confidence)``
    explanation["signals"] = _signal_rows(top.values)
    explanation["deal_score"] = top.score
    account_id = top.deal.account_id
    if close:
        steps.append(f"{len(close) + 1} deals within {AMBIGUITY_MARGIN} of each other")
        rule_path = _deciding_signal(top, runner_up)
        if policy.ambiguity_policy is _AMBIGUITY_PRIMARY_WITH_SECONDARIES:
            return _Verdict(
                _STATUS_AMBIGUOUS,
                rule_path,
                confidence,
                deal_id=top.deal.id,
                account_id=account_id,
                secondary=tuple(c.deal.id for c in close),
                runners_up=_runners_up(candidates, top.deal.id),
                owner_hint=top.deal.owner_rep_id,
            )
        return _Verdict(
            _STATUS_AMBIGUOUS,
            rule_path,
            confidence,
            account_id=account_id,
            runners_up=_runners_up(candidates, None),
        )
    if confidence < policy.min_confidence:
        steps.append(f"best deal below min_confidence {policy.min_confidence}: not asserted")
        return _Verdict(
            _STATUS_ACCOUNT_ONLY,
            _path_of(account_evidence.get(account_id or "", set())),
            confidence,
            account_id=account_id,
            runners_up=_runners_up(candidates, None),
        )
    lead = top.score - runner_up.score if runner_up is not None else top.score
    rounded = _ROUNDED_4.get(lead) if lead > 0.0 else None  # ``_ROUNDED_4``
    if rounded is None:
        rounded = round(lead, 4)
        if lead > 0.0 and len(_ROUNDED_4) < _ROUNDED_4_SIZE:
            _ROUNDED_4[lead] = rounded
    steps.append(f"deal {top.deal.id} leads by {rounded}")
    return _Verdict(
        _STATUS_ATTRIBUTED,
        _deciding_signal(top, runner_up),
        confidence,
        deal_id=top.deal.id,
        account_id=account_id,
        runners_up=_runners_up(candidates, top.deal.id),
        owner_hint=top.deal.owner_rep_id,
    )


def _match_contacts(
    activity: IngestedEvent, index: SliceIndex, external: tuple[int, ...]
) -> tuple[_ContactMatch, ...]:
    matches: list[_ContactMatch] = []
    for position in external:
        participant = activity.participants[position]
        found: Sequence[str] = ()
        evidence = _EVIDENCE_CONTACT_EMAIL
        if participant.email is not None:
            found = index.contacts_by_email.get(participant.email.lower(), ())
        if not found and participant.phone is not None:
            # The line with the extension dialled, when a contact lists both; else the line.
            if (extension := extension_of(participant)) is not None:
                found = index.contacts_by_phone.get(phone_key(participant.phone, extension), ())
            if not found:
                found = index.contacts_by_phone.get(participant.phone, ())
            evidence = _EVIDENCE_CONTACT_PHONE if len(found) == 1 else _EVIDENCE_SHARED_PHONE
        for contact_id in found:
            matches.append(
                _ContactMatch(
                    contact_id, index.contact_account[contact_id], evidence, 1.0 / len(found), position
                )
            )
    for contact_id in sorted(set(activity.crm.contact_ids)) if activity.crm.contact_ids else ():
        if contact_id in index.contact_account:
            matches.append(
                _ContactMatch(contact_id, index.contact_account[contact_id], _EVIDENCE_CRM_CONTACT, 1.0, -1)
            )
    return tuple(matches)


def _find_accounts(
    activity: IngestedEvent,
    index: SliceIndex,
    external: tuple[int, ...],
    matches: tuple[_ContactMatch, ...],
    policy: TenantAttributionPolicy,
) -> dict[str, set[Evidence]]:
    evidence: dict[str, set[Evidence]] = defaultdict(set)
    # What the CRM says beats a domain, the weakest evidence: a participant the CRM files under an
    # account is that account's, and an activity it files under an account (``crm.account_id``)
    # is about that one. The domain may be another account's too (a parent and its subsidiary,
    # a duplicate account, a partner copied in): counting it tied that account with the CRM's.
    filed: set[int] = set()
    for match in matches:
        if match.account_id is not None:
            evidence[match.account_id].add(match.evidence)
            filed.add(match.participant_index)
    explicit = activity.crm.account_id
    for position in external:
        if position in filed:
            continue
        address = activity.participants[position].email
        domain = email_domain(address) if address else None
        if domain is None or is_personal_domain(domain, policy.extra_personal_domains):
            continue
        # The most specific domain an account holds is the one the address stands for: mail from
        # ``eu.buyer.example`` is the account on that domain's (a subsidiary's), not also its
        # parent's on ``buyer.example``, which an address at no account's subdomain still finds.
        for candidate in parent_domains(domain):
            held = False  # a loop, not a comprehension (``team_at``)
            for account_id in index.accounts_by_domain.get(candidate, ()):
                if explicit is None or account_id == explicit:
                    evidence[account_id].add(_EVIDENCE_DOMAIN)
                    held = True
            if held:
                break
    if explicit is not None:
        evidence[explicit].add(_EVIDENCE_CRM_ACCOUNT)
    return dict(evidence)


#: ``min`` and ``max`` parse their keywords on every call in Python 3.11 (``PyArg_ParseTupleAndKeywords``,
#: about 500 instructions, whether given any or not): the per-candidate clamps are written out.
def _at_least_zero(value: float) -> float:
    """``max(0.0, value)``: the same float."""
    return value if value > 0.0 else 0.0


def _at_most_one(value: float) -> float:
    """``min(1.0, value)``: the same float."""
    return value if value < 1.0 else 1.0


_NO_EVIDENCE: frozenset[Evidence] = frozenset()


def _strength(kinds: Collection[Evidence]) -> float:
    # ``max(map(...), default=0.0)``, without ``default``: the strongest of one kind is its own.
    if len(kinds) == 1:
        for kind in kinds:
            return EVIDENCE_STRENGTH[kind]
    return max(map(EVIDENCE_STRENGTH.__getitem__, kinds)) if kinds else 0.0


def _path_of(kinds: Iterable[Evidence]) -> str:
    return "contact" if any(kind in _CONTACT_EVIDENCE for kind in kinds) else "domain"


def _rank_deals(
    facts: _Facts, account_evidence: Mapping[str, set[Evidence]], threaded: frozenset[str] = frozenset()
) -> list[_Candidate]:
    """Candidate deals open at the activity time, best first, with their signal values.

    ``threaded`` are the deals of the thread a reply continues: candidates even when this reply
    found neither their account nor a contact of theirs, and valued on the ``thread`` signal.
    """
    activity = facts.activity
    # A switchboard number reaches the account, not one of the contacts listing it: guessing
    # which of them answered would credit the deal of whoever happens to list the number.
    # Loops, not comprehensions (``team_at``: this function's six locals were cells).
    kept: list[_ContactMatch] = []
    matched_contacts: set[str] = set()
    for m in facts.matches:
        if m.evidence is not _EVIDENCE_SHARED_PHONE:
            kept.append(m)
            matched_contacts.add(m.contact_id)
    matches = tuple(kept)
    at = _as_utc(activity.occurred_at)
    open_deals = _open_deals(facts, account_evidence, threaded, matched_contacts, at)
    subject = activity.subject
    named: dict[str, float] = {}
    if subject:  # ``subject_names`` names nothing without one
        deals: list[Deal] = []
        for open_deal in open_deals:
            deals.append(open_deal.deal)
        named = subject_names(subject, deals)
    candidates: list[_Candidate] = []
    for open_deal in open_deals:
        candidates.append(
            _candidate(
                facts, open_deal, matches, account_evidence, threaded, named.get(open_deal.deal.id, 0.0), at
            )
        )
    if len(candidates) > 1:  # one needs no key (``sort_key`` reads a timestamp)
        candidates.sort(key=_Candidate.sort_key)
    return candidates


class _OpenDeal(msgspec.Struct):
    """A deal open at the activity time, with its times in UTC and its contacts read once."""

    deal: Deal
    created: datetime
    closed: datetime | None
    contact_ids: frozenset[str]


def _open_deals(
    facts: _Facts,
    account_evidence: Mapping[str, set[Evidence]],
    threaded: frozenset[str],
    matched_contacts: set[str],
    at: datetime,
) -> list[_OpenDeal]:
    found: list[_OpenDeal] = []
    for deal in facts.index.deals:
        contact_ids = deal.contact_ids
        if not (
            (deal.account_id is not None and deal.account_id in account_evidence)
            or contact_ids & matched_contacts
            or deal.id in threaded
        ):
            continue
        created = _as_utc(deal.created_at)
        closed = _as_utc(deal.closed_at) if deal.closed_at is not None else None
        if _open_at(created, closed, at, facts.policy):
            found.append(_OpenDeal(deal, created, closed, contact_ids))
    return found


#: Enum members the hot paths read, as module constants: in Python 3.11 a member read from its
#: class goes through ``EnumType.__getattr__``'s slot (``type.__getattribute__`` called as a
#: wrapper), about 1,300 instructions a read; a module constant is one dictionary lookup. And a
#: member's ``value`` is ``enum.property``, two Python-level calls: the hot paths read the same
#: object from the member itself, ``_value_`` (one attribute lookup in C).
_AMBIGUITY_PRIMARY_WITH_SECONDARIES = AmbiguityPolicy.PRIMARY_WITH_SECONDARIES
_DIRECTION_INTERNAL = Direction.INTERNAL
_EVIDENCE_CONTACT_EMAIL = Evidence.CONTACT_EMAIL
_EVIDENCE_CONTACT_PHONE = Evidence.CONTACT_PHONE
_EVIDENCE_CRM_ACCOUNT = Evidence.CRM_ACCOUNT
_EVIDENCE_CRM_CONTACT = Evidence.CRM_CONTACT
_EVIDENCE_DOMAIN = Evidence.DOMAIN
_EVIDENCE_SHARED_PHONE = Evidence.SHARED_PHONE
_KIND_CALL = ActivityKind.CALL
_KIND_MEETING = ActivityKind.MEETING
_KIND_EMAIL = ActivityKind.EMAIL
_SIGNAL_ACCOUNT_MATCH = Signal.ACCOUNT_MATCH
_SIGNAL_CONTACT_COVERAGE = Signal.CONTACT_COVERAGE
_SIGNAL_CONTACT_ROLE = Signal.CONTACT_ROLE
_SIGNAL_OWNER_PARTICIPATES = Signal.OWNER_PARTICIPATES
_SIGNAL_PROXIMITY = Signal.PROXIMITY
_SIGNAL_RECENCY = Signal.RECENCY
_SIGNAL_SUBJECT = Signal.SUBJECT
_SIGNAL_THREAD = Signal.THREAD
_STATUS_ACCOUNT_ONLY = AttributionStatus.ACCOUNT_ONLY
_STATUS_AMBIGUOUS = AttributionStatus.AMBIGUOUS
_STATUS_ATTRIBUTED = AttributionStatus.ATTRIBUTED
_STATUS_EXCLUDED = AttributionStatus.EXCLUDED
_STATUS_INTERNAL = AttributionStatus.INTERNAL
_STATUS_UNMATCHED = AttributionStatus.UNMATCHED

_W_CONTACT_ROLE, _W_OWNER, _W_COVERAGE, _W_ACCOUNT, _W_PROXIMITY, _W_RECENCY, _W_THREAD, _W_SUBJECT = (
    SIGNAL_WEIGHTS[s] for s in Signal
)


def _candidate(
    facts: _Facts,
    open_deal: _OpenDeal,
    matches: tuple[_ContactMatch, ...],
    account_evidence: Mapping[str, set[Evidence]],
    threaded: frozenset[str],
    subject: float,
    at: datetime,
) -> _Candidate:
    deal, contact_ids = open_deal.deal, open_deal.contact_ids
    account_strength = _strength(account_evidence.get(deal.account_id or "", _NO_EVIDENCE))
    # A thread's deal is as sure as the thread itself: the verdict's ceiling says how sure.
    thread = 1.0 if deal.id in threaded else 0.0
    # One pass over the contacts on the deal: each participant's best certainty, the best role
    # and the evidence's strength, each the greatest as ``max`` takes it (the first of equals),
    # without its call (``min`` and ``max`` parse their keywords on every call).
    best_per_participant: dict[int, float] = {}
    contact_role: float | None = None
    strength = thread if thread > account_strength else account_strength
    for match in matches:
        if match.contact_id not in contact_ids:  # the contacts on the deal (no comprehension)
            continue
        # A contact only copied counts half for the coverage as for the role (rules 2026.12.39):
        # mail is about whom it is from or to (a colleague copied on another deal no longer
        # outweighs a subject naming this one).
        role = match.certainty * _addressed(facts.activity, match)
        held = best_per_participant.get(match.participant_index, 0.0)
        best_per_participant[match.participant_index] = role if role > held else held
        if contact_role is None or role > contact_role:
            contact_role = role
        evidence = EVIDENCE_STRENGTH[match.evidence]
        if evidence > strength:
            strength = evidence
    if contact_role is None:
        contact_role = 0.0
    # Contacts named only by crm.contact_ids (index -1) are not participants to cover.
    external = len(facts.external)
    # ``sum`` of those values, in their order (a loop, not a generator: see ``attribute_in_slice``).
    covered: float = 0  # ``sum``'s start
    for k, v in best_per_participant.items():
        if k >= 0:
            covered += v
    coverage = covered / (external if external > 1 else 1)
    owner = 1.0 if deal.owner_rep_id in facts.participating_reps else 0.0
    coverage = _at_most_one(coverage)
    proximity = _proximity(open_deal.created, open_deal.closed, at, facts.policy)
    recency = _recency(open_deal.created, open_deal.closed, at)
    values: dict[Signal, float] = {
        _SIGNAL_CONTACT_ROLE: contact_role,
        _SIGNAL_OWNER_PARTICIPATES: owner,
        _SIGNAL_CONTACT_COVERAGE: coverage,
        _SIGNAL_ACCOUNT_MATCH: account_strength,
        _SIGNAL_PROXIMITY: proximity,
        _SIGNAL_RECENCY: recency,
        _SIGNAL_THREAD: thread,
        _SIGNAL_SUBJECT: subject,
    }
    # The weighted sum in ``Signal`` order, term by term as ``sum`` would add them.
    score = round(
        _W_CONTACT_ROLE * contact_role
        + _W_OWNER * owner
        + _W_COVERAGE * coverage
        + _W_ACCOUNT * account_strength
        + _W_PROXIMITY * proximity
        + _W_RECENCY * recency
        + _W_THREAD * thread
        + _W_SUBJECT * subject,
        4,
    )
    return _Candidate(deal, score, values, strength)


#: What a contact's role is worth when the contact is only copied on an email (``cc``, ``bcc``):
#: mail is about the people it is sent by or to; those copied are kept informed (a partner, a
#: colleague of the buyer's on another deal).
COPIED_CONTACT_FACTOR = 0.5
_COPIED = frozenset({ParticipantRole.CC, ParticipantRole.BCC})


def _addressed(activity: IngestedEvent, match: _ContactMatch) -> float:
    """1 for a contact the email is from or to (or any participant of a call or meeting, or one
    named by ``crm.contact_ids``); ``COPIED_CONTACT_FACTOR`` for one only copied on it."""
    if match.participant_index < 0 or activity.participants[match.participant_index].role not in _COPIED:
        return 1.0
    return COPIED_CONTACT_FACTOR


#: Scripts written without spaces between words: Han, Hiragana, Katakana (with their prolonged
#: sound and iteration marks; not the middle dot that separates words), Hangul (spaced between
#: phrases, each with its particle written on: "확장을"), Thai, Lao, Myanmar, Khmer. A run of
#: them is one "word" matched inside another (rules 2026.12.23): "東京オフィス拡張" is named in
#: "東京オフィス拡張の見積もり".
_UNSPACED = (
    "\u0e00-\u0eff\u1000-\u109f\u1100-\u11ff\u1780-\u17ff\u3005-\u3007\u3040-\u30fa"
    "\u30fc-\u30ff\u3130-\u318f\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\ua960-\ua97f"
    "\uac00-\ud7ff\uf900-\ufaff\U00020000-\U0003134f"
)
#: A run of unspaced script (group 1), or a word of any other: letters and digits.
_TOKEN = re.compile(f"([{_UNSPACED}]+)|[^\\W_{_UNSPACED}]+")
_UNSPACED_START = re.compile(f"[{_UNSPACED}]")
#: The shortest run of unspaced script that names anything: two characters ("東京", "서울"), so a
#: single one ("の", "拡") found in every other subject names nothing.
MIN_UNSPACED_RUN = 2
#: The shortest run named wherever it is written inside another (rules 2026.12.27): a shorter one
#: is written inside compounds that mean something else ("京都", Kyoto, in "東京都庁", the Tokyo
#: Metropolitan Government; "海南", Hainan, across "上海南京路"), so it is named only where it
#: stands apart (:func:`_stands_apart`).
MIN_INNER_RUN = 3
#: The scripts of :data:`_UNSPACED`, to tell where one gives way to another ("京都の件": the
#: hiragana after "京都" ends the word). Hangul apart: its words start a spaced phrase.
_SCRIPTS = tuple(
    re.compile(f"[{chars}]")
    for chars in (
        "\u3005-\u3007\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f",
        "\u3040-\u309f",
        "\u30a0-\u30ff\u31f0-\u31ff",
        "\u0e00-\u0e7f",
        "\u0e80-\u0eff",
        "\u1000-\u109f",
        "\u1780-\u17ff",
    )
)
_HANGUL = re.compile("[\u1100-\u11ff\u3130-\u318f\ua960-\ua97f\uac00-\ud7ff]")
#: The diacritics people type or leave out in Latin, Greek and Cyrillic (the combining
#: diacritical marks, as a decomposed "é" or "İ" carries them), Hebrew points and Arabic vowel
#: signs. Not the marks that make another letter of their own script: Japanese dakuten and
#: handakuten ("ガ" is not "カ", "パ" not "ハ"), Thai vowels and tones, Indic vowel signs.
_OPTIONAL_DIACRITICS = re.compile(
    "[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f"
    "\u0591-\u05bd\u05bf\u05c1\u05c2\u05c4\u05c5\u05c7\u064b-\u065f\u0670]"
)
#: Words of a deal name that name no particular deal: fillers, and the legal forms an account's
#: name is written with or without ("Acme Corp", "ACME Corporation", "Acme, Inc.", "Müller GmbH";
#: two-letter forms, "AG", "BV", "SA", are no words here anyway).
_NAME_STOPWORDS = frozenset(
    {"the", "and", "for", "with", "deal", "opportunity", "new"}
    | {"inc", "incorporated", "ltd", "limited", "llc", "llp", "plc", "corp", "corporation", "gmbh"}
    | {"sarl", "srl", "pty", "ltda"}
)


@lru_cache(maxsize=16_384)
def _words(text: str) -> frozenset[str]:
    """The words of a name or subject, compared as a reader does: case folded (``STRASSE`` is
    ``Straße``), accents dropped however typed or encoded (``Donnees`` and a decomposed ``Données``
    are ``Données``, ``ISTANBUL`` is ``İstanbul``; rules 2026.12.17) but not the marks that make
    another letter (``ガ`` stays ``ガ``, half-width ``ｶﾞ`` is ``ガ``; rules 2026.12.23), a plural
    read as its singular ("Data connector pricing" names "Acme - Data connectors"; rules
    2026.12.12). A run of a script written without spaces is one word of at least
    ``MIN_UNSPACED_RUN`` characters (:func:`_said` finds it inside another). Pure in ``text``
    and asked for each candidate deal's name in every activity: cached."""
    folded = unicodedata.normalize("NFKD", text.casefold())
    if not folded.isascii():
        folded = unicodedata.normalize("NFC", _OPTIONAL_DIACRITICS.sub("", folded))
    words: set[str] = set()
    for token in _TOKEN.finditer(folded):
        word = token.group(0)
        if token.group(1) is not None:
            if len(word) >= MIN_UNSPACED_RUN:
                words.add(word)
        elif (len(word) >= 3 or word.isdigit()) and word not in _NAME_STOPWORDS:
            words.add(_singular(word))
    return frozenset(words)


def _unspaced(word: str) -> bool:
    """Whether ``word`` is a run of a script written without spaces (:data:`_UNSPACED`)."""
    return _UNSPACED_START.match(word) is not None


#: Where a word is said: the subject's word or run it is found in, and where in it it starts and ends.
_Spot = tuple[str, int, int]


def _said(words: frozenset[str], said: frozenset[str], runs: Sequence[str]) -> dict[str, frozenset[_Spot]]:
    """Those of ``words`` the ``said`` words hold, each with where: as words, or, a run of a script
    written without spaces, inside one of ``runs``, those of ``said`` (the subject's
    "東京オフィス拡張の見積もり" holds the name's "東京オフィス拡張"), where it stands apart
    (:func:`_stands_apart`)."""
    found: dict[str, frozenset[_Spot]] = {}
    for word in words:
        if _unspaced(word):
            if spots := frozenset(_spots(word, runs)):
                found[word] = spots
        elif word in said:
            found[word] = frozenset({(word, 0, len(word))})
    return found


def _spots(word: str, runs: Sequence[str]) -> Iterator[_Spot]:
    """Where ``word``, a run of a script written without spaces, stands apart inside ``runs``."""
    for run in runs:
        start = run.find(word)
        while start >= 0:
            if _stands_apart(run, start, start + len(word)):
                yield run, start, start + len(word)
            start = run.find(word, start + 1)


def _stands_apart(run: str, start: int, end: int) -> bool:
    """Whether ``run[start:end]`` is a word of ``run`` (rules 2026.12.27): one of at least
    ``MIN_INNER_RUN`` characters wherever it is; a shorter one of Hangul where its phrase starts
    (a particle is written onto it: "서울을"); any other shorter one where each of its ends is the
    run's or a change of script ("京都の件", not "東京都庁"; Chinese changes no script: "北京"
    is named in "北京 - 会议纪要", not in "关于北京的报价", where no reader of characters alone
    could tell it from a compound)."""
    if end - start >= MIN_INNER_RUN:
        return True
    if _HANGUL.match(run[start]):
        return start == 0
    return (start == 0 or _script(run[start - 1]) != _script(run[start])) and (
        end == len(run) or _script(run[end]) != _script(run[end - 1])
    )


def _script(char: str) -> int:
    """Which of :data:`_SCRIPTS` ``char`` is written in (``len(_SCRIPTS)``: none of them)."""
    return next((i for i, script in enumerate(_SCRIPTS) if script.match(char)), len(_SCRIPTS))


def _unshadowed(spots: Mapping[str, Mapping[str, frozenset[_Spot]]], deal_id: str) -> frozenset[str]:
    """The words found of ``deal_id``'s name but those found only inside another candidate's longer
    word at the same place: "東京オフィスの件" names "東京オフィス", not "東京" (rules 2026.12.27)."""
    longer = [
        spot
        for other, found in spots.items()
        if other != deal_id
        for word, places in found.items()
        if _unspaced(word)
        for spot in places
    ]
    return frozenset(
        word
        for word, places in spots[deal_id].items()
        if not longer or any(not _within(place, longer) for place in places)
    )


def _within(place: _Spot, longer: Sequence[_Spot]) -> bool:
    run, start, end = place
    return any(r == run and s <= start and end <= e and e - s > end - start for r, s, e in longer)


def _without(words: frozenset[str], removed: frozenset[str]) -> frozenset[str]:
    """``words`` but ``removed``; a run of a script written without spaces loses the runs of
    ``removed`` written inside it, the pieces left of at least ``MIN_UNSPACED_RUN`` characters
    kept ("トヨタ東京オフィス拡張" without the account's "トヨタ" is "東京オフィス拡張")."""
    kept = words - removed
    runs = [r for r in removed if _unspaced(r)]
    if not runs:
        return kept
    pieces: set[str] = set()
    for word in kept:
        parts = [word]
        if _unspaced(word):
            for run in runs:
                parts = [part for whole in parts for part in whole.split(run)]
            parts = [part for part in parts if len(part) >= MIN_UNSPACED_RUN]
        pieces.update(parts)
    return frozenset(pieces)


def _singular(word: str) -> str:
    """``word`` without a plural's final ``s`` (``connectors``, ``seats``; not ``access``, ``bus``)."""
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss") and not word[-2].isdigit():
        return word[:-1]
    return word


def _name_words(deals: Iterable[Deal]) -> dict[str, tuple[frozenset[str], ...]]:
    """The words of each named deal's names (its own, then those of the deals merged into it:
    rules 2026.12.44); of a deal whose account has another candidate deal, without the words of
    the account's name (rules 2026.12.17): "Northwind Traders" in "Northwind Traders - Renewal"
    tells that account from another, not the renewal from the account's "Expansion 2027" (a rep
    left the account's name out of it)."""
    named = [deal for deal in deals if deal.name or deal.aliases]
    accounts = Counter(deal.account_id for deal in named if deal.account_name)

    def words(deal: Deal, name: str) -> frozenset[str]:
        if deal.account_name and accounts[deal.account_id] > 1:
            return _without(_words(name), _words(deal.account_name))
        return _words(name)

    return {
        deal.id: tuple(words(deal, name) for name in (deal.name, *deal.aliases) if name) for deal in named
    }


def _name_score(own: frozenset[str], found_words: frozenset[str]) -> tuple[float, int]:
    """How strongly the words ``found_words`` of a subject name a deal's name whose words setting
    it apart are ``own``, and how many of them hold no digit (``subject_names``)."""
    hits = own & found_words
    if not hits:
        return 0.0, 0
    core = _without_qualifiers(own)
    core_hits = len(core & hits)
    return max(len(hits) / len(own), core_hits / len(core) if core else 0.0), core_hits


def subject_names(subject: str | None, deals: Iterable[Deal]) -> dict[str, float]:
    """How strongly ``subject`` names each of ``deals``: the share of the words that set a deal's
    name apart from the other candidates' names (the account name they all share, or the deal's
    account's name among deals of that account, does not count) found in the subject. Deals
    without a name, or a subject naming none, are absent.

    Words holding a digit (``2027``, ``FY27``, ``Q3``) qualify a name rather than say what the
    deal is: people write "RE: FW: Acme Expansion" about "Acme - Expansion 2027". A subject naming
    every other word that sets the deal apart names it fully; one naming only a qualifier still
    counts its share of all the words (rules 2026.12.12), unless it names another deal by a word
    that is no qualifier: "2027 renewal terms" names "Renewal", the year qualifying it, not
    "Expansion 2027" (rules 2026.12.17)."""
    if not subject:
        return {}
    said = _words(subject)
    runs = [word for word in said if _unspaced(word)]
    names = _name_words(deals)
    # A deal's words are those of all its names: a merged deal's words shared with every other
    # candidate's set none apart (rules 2026.12.44).
    every = {
        deal_id: each[0] if len(each) == 1 else frozenset().union(*each) for deal_id, each in names.items()
    }
    shared = frozenset.intersection(*every.values()) if len(every) > 1 else frozenset()
    spots = {deal_id: _said(words - shared, said, runs) for deal_id, words in every.items()}
    found: dict[str, float] = {}
    by_qualifier: list[str] = []
    for deal_id, each in names.items():
        if not (found_words := _unshadowed(spots, deal_id)):
            continue
        # Its best-named name: a subject naming a deal merged into it names it as well.
        score, core_hits = max(_name_score(words - shared, found_words) for words in each)
        if score:
            found[deal_id] = score
            if not core_hits:
                by_qualifier.append(deal_id)
    if len(by_qualifier) < len(found):
        for deal_id in by_qualifier:
            del found[deal_id]
    # One candidate alone named, by a word that is no qualifier (rules 2026.12.41): the subject
    # names it, as a reader takes "Rollout plan" for "Acme - Payroll Rollout" beside "Acme -
    # Analytics", or "Payroll workshop" for Acme's payroll deal in a meeting with Globex's buyer
    # too. Its share of the words (1/2) was a close call with the deal the subject says nothing of.
    if len(found) == 1 and len(names) > 1 and not by_qualifier:
        found = dict.fromkeys(found, 1.0)
    return found


def _without_qualifiers(words: frozenset[str]) -> frozenset[str]:
    """``words`` without those holding a digit (a year, a fiscal quarter, a quantity)."""
    return frozenset(w for w in words if not any(c.isdigit() for c in w))


def _runners_up(candidates: list[_Candidate], chosen: str | None) -> tuple[RunnerUp, ...]:
    others: list[RunnerUp] = []  # a loop, not a comprehension (``team_at``)
    for c in candidates:
        if c.deal.id != chosen:
            others.append(RunnerUp(c.deal.id, c.score))
            if len(others) == _MAX_RUNNERS_UP:
                break
    return tuple(others)


def _thread_usable(
    thread: CurrentAttribution, facts: _Facts, account_evidence: Mapping[str, set[Evidence]]
) -> bool:
    if facts.activity.thread_id is None or thread.status not in _INHERITABLE:
        return False
    if thread.deal_id is None:
        # An account alone is inherited only when this reply found nothing by itself.
        return thread.account_id is not None and not account_evidence
    known = facts.index.deal_by_id.get(thread.deal_id)
    # A thread revived long after its deal closed must not flow into that dead deal.
    return known is None or deal_open_at(known, facts.activity.occurred_at, facts.policy)


def _continue_thread(
    facts: _Facts,
    candidates: list[_Candidate],
    account_evidence: Mapping[str, set[Evidence]],
    explanation: dict[str, Any],
) -> _Verdict | None:
    """A reply whose contact-backed deals are too close to call continues its thread's deal.

    Only a thread that was ``attributed`` (an ambiguous thread decided nothing) and only when
    its deal is one of the tied candidates, so still open at the reply's time: the thread is
    the one fact the reply adds to a contact who is on several deals (a buying group's
    procurement lead answering "Re: Quick question"). A contact's role on another deal that
    leads by the margin is never overridden.
    """
    thread = facts.thread
    if facts.activity.thread_id is None or thread is None or thread.deal_id is None:
        return None
    if thread.status is not _STATUS_ATTRIBUTED or len(candidates) < 2:
        return None
    tied = _tied(candidates)
    if len(tied) < 2 or thread.deal_id not in tied:
        return None
    explanation["thread"] = {"deal_id": thread.deal_id, "account_id": thread.account_id}
    explanation["steps"].append(
        "close call between contact-backed deals: the reply continues its thread's deal"
    )
    ranked = _rank_deals(facts, account_evidence, frozenset({thread.deal_id}))
    return _rank_verdict(
        ranked, account_evidence, facts.policy, explanation, thread.confidence * THREAD_CONFIDENCE_FACTOR
    )


def _tied(candidates: list[_Candidate]) -> set[str]:
    """The deals within the margin of the best (apart from ``_continue_thread``: ``team_at``)."""
    return {c.deal.id for c in candidates if _lead(candidates[0], c) < AMBIGUITY_MARGIN}


def _choose_rep(
    activity: IngestedEvent, reps_of: tuple[str | None, ...], owner_hint: str | None
) -> _RepChoice:
    """The rep who did the activity: by role for its kind and direction, then any rep present,
    then ``crm.owner_rep_id``, then the chosen deal's owner. Several reps in the same role (attendees, recipients) resolve to
    the owner of the chosen deal when present, else to the first listed. ``reps_of`` holds each
    participant's rep (or None)."""
    roles = REP_ROLES[(activity.kind, activity.direction)]
    participants: Sequence[AnyParticipant] = activity.participants
    for role in roles:
        # A loop, not a generator (see ``attribute_in_slice``); ``dict.fromkeys`` as ``_unique``.
        in_role: dict[str, None] = {}
        for p, rep in zip(participants, reps_of, strict=True):
            if rep is not None and p.role is role:
                in_role[rep] = None
        if in_role:
            return _pick(tuple(in_role), owner_hint, role._value_)
    anyone = _unique(rep for rep in reps_of if rep is not None)
    if anyone:
        return _pick(anyone, owner_hint, "participant")
    if activity.crm.owner_rep_id is not None:
        return _RepChoice(activity.crm.owner_rep_id, "crm_owner", (activity.crm.owner_rep_id,))
    if owner_hint is not None:
        # Nobody on the seller's side is known (a shared inbox, an alias): the deal's owner
        # holds the relationship, and an activity credited to nobody is lost to metrics.
        return _RepChoice(owner_hint, "deal_owner", (owner_hint,))
    return _RepChoice(None, "none", ())


def _unique(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def _pick(reps: tuple[str, ...], owner_hint: str | None, via: str) -> _RepChoice:
    if len(reps) > 1 and owner_hint in reps:
        return _RepChoice(owner_hint, f"{via}:deal_owner", reps)
    return _RepChoice(reps[0], via, reps)
