"""The reference data attribution reads, reduced to what one activity needs.

A repository fills an ``AttributionSnapshot`` with a handful of indexed queries:

1. reps whose emails or phones appear among the participants (plus ``crm.owner_rep_id``
   and the owners of the candidate deals), and their team memberships;
2. contacts whose emails or phones appear among the participants (plus ``crm.contact_ids``);
3. accounts holding a participant's email domain or one of its parent domains, the accounts
   of the contacts found, and ``crm.account_id``;
4. the deals of those accounts, the deals on which those contacts hold a role, and
   ``crm.deal_id``; closed deals may be filtered in SQL to those closed after
   ``occurred_at - grace_days_after_closed`` since older ones can never be chosen;
5. the thread's current attribution (the newest earlier activity of ``thread_id``) and a
   manual override of this activity, if any.

Extra rows are harmless: the rules only ever pick what the participants point at.
Identities are compared lower-cased (emails, domains) and as given (E.164 phones).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from operator import itemgetter

import msgspec

from libs.common.contracts.attribution import AttributionStatus

_FIRST = itemgetter(0)


@dataclass(frozen=True, slots=True)
class Rep:
    """A seller: the tenant's own person, known by the emails and dialer numbers they use."""

    id: str
    name: str = ""
    emails: tuple[str, ...] = ()
    phones: tuple[str, ...] = ()
    active: bool = True
    manager_id: str | None = None
    #: Lines of ``phones`` listed with an extension, keyed ``+14155550100;ext=12``.
    phone_extensions: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TeamMembership:
    """``rep_id`` belongs to ``team_id`` from ``valid_from`` (inclusive) to ``valid_to`` (exclusive)."""

    rep_id: str
    team_id: str
    valid_from: date
    valid_to: date | None = None

    def covers(self, day: date) -> bool:
        return self.valid_from <= day and (self.valid_to is None or day < self.valid_to)


@dataclass(frozen=True, slots=True)
class Account:
    id: str
    domains: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Contact:
    id: str
    emails: tuple[str, ...] = ()
    phones: tuple[str, ...] = ()
    account_id: str | None = None
    #: Lines of ``phones`` listed with an extension, keyed ``+14155550100;ext=12``.
    phone_extensions: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class FormerPhone:
    """A phone ``contact_id``'s record listed until ``until`` (a newer version dropped it, or the
    contact was deleted: ``ref_contact_former_phones``): hers for activities before then, with
    ``shared_with``, the other contacts that listed it then."""

    phone: str
    contact_id: str
    until: datetime
    account_id: str | None = None
    shared_with: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class FormerAccount:
    """The account ``contact_id``'s record named until ``until``, the ``updated_at`` of the newer
    version that named another (she moved: ``ref_contact_former_accounts``): her account for
    activities before then."""

    contact_id: str
    account_id: str
    until: datetime


@dataclass(frozen=True, slots=True)
class Deal:
    """A deal as the CRM reports it now; ``contacts`` holds ``(contact_id, role)`` pairs.

    A deal whose ``closed_at`` is unknown is treated as open-ended: a reopened deal has its
    close date cleared by the CRM, and refusing it would lose the conversation that reopened it.
    """

    id: str
    account_id: str | None
    owner_rep_id: str | None
    stage: str
    is_closed: bool
    is_won: bool
    created_at: datetime
    closed_at: datetime | None = None
    contacts: tuple[tuple[str, str], ...] = ()
    #: The deal's name in the CRM ("Acme - Analytics add-on"): a subject that names it points at it.
    name: str = ""
    #: Its account's name in the CRM ("ACME Corporation"): words of it in the deal's name name the
    #: account, not one of its deals (``matching.subject_names``).
    account_name: str = ""
    #: What its account is to the tenant (``AccountV1.relationship``: ``partner``, ``customer``...),
    #: ``None`` when the CRM states none: a partner's deal yields to a customer's
    #: (``matching._partner_yields``).
    account_relationship: str | None = None
    #: The names of the deals merged into it, as they were named at the activity's time
    #: (``ReferenceIndex.deal_at``, rules 2026.12.44): a subject naming one names the survivor.
    aliases: tuple[str, ...] = ()

    @property
    def contact_ids(self) -> frozenset[str]:
        # ``map`` and ``itemgetter`` in C: no generator frame (read for every candidate deal).
        return frozenset(map(_FIRST, self.contacts))


@dataclass(frozen=True, slots=True)
class DealOwnership:
    """``deal_id`` is owned by ``owner_rep_id`` from ``since`` (the ``updated_at`` of the CRM
    version that said so) until the next ownership of the deal."""

    deal_id: str
    owner_rep_id: str | None
    since: datetime


def owner_at(history: Sequence[DealOwnership], at: datetime) -> str | None:
    """The owner of a deal when an activity at ``at`` happened: the latest ownership of
    ``history`` (sorted by ``since``, not empty) that started at or before ``at``; before the
    first one, the earliest known owner (a deal's first version is not its birth)."""
    owner = history[0].owner_rep_id
    for ownership in history:
        if ownership.since > at:
            break
        owner = ownership.owner_rep_id
    return owner


@dataclass(frozen=True, slots=True)
class DealFormerName:
    """``deal_id`` was named ``name`` until ``until``: the ``updated_at`` of the first CRM version
    seen with its next name (``ref_deal_names``), or, for a deal merged into another, of the
    version that merged it (its names end there)."""

    deal_id: str
    name: str
    until: datetime


def name_at(current: str, former: Sequence[DealFormerName], at: datetime) -> str:
    """The name a deal had when an activity at ``at`` happened: that of the earliest rename of
    ``former`` (sorted by ``until``) after ``at``, else ``current`` (rules 2026.12.42). Mail
    about "Payroll Rollout kickoff" sent before "Acme - Payroll Rollout" became "Acme - HR Suite"
    names the deal by the name it had then."""
    for renamed in former:
        if renamed.until > at:
            return renamed.name
    return current


def merged_names_at(merged: Sequence[DealFormerName], at: datetime) -> tuple[str, ...]:
    """The names the deals of ``merged`` (sorted by ``until``), merged into one survivor, had at
    ``at``: each one's ``name_at`` while it was a deal of its own, and after its merge the name it
    had when merged (rules 2026.12.45: a merged deal is the survivor, and people go on calling it
    by the duplicate's name). Mail about "Acme Payroll Expansion" sent before or after it was
    merged into "Acme - Payroll" names the survivor."""
    names: dict[str, str] = {}
    for former in merged:
        if former.until > at:
            names.setdefault(former.deal_id, former.name)
    for former in reversed(merged):
        names.setdefault(former.deal_id, former.name)
    return tuple(sorted(set(names.values())))


class CurrentAttribution(msgspec.Struct, frozen=True):
    """The version of an activity's attribution that is in force (ours, or a thread's).

    A frozen msgspec struct (as ``AttributionDecision``): read per activity decided, for its
    stored version and its thread's, where a frozen dataclass set its ten fields through
    ``object.__setattr__``."""

    version: int
    status: AttributionStatus
    rep_id: str | None = None
    team_id: str | None = None
    account_id: str | None = None
    deal_id: str | None = None
    secondary_deal_ids: tuple[str, ...] = ()
    confidence: float = 0.0
    #: Set when the version came from a manual override: automatic decisions never replace it.
    overridden: bool = False
    #: The report of the same call this one duplicates (``domain.duplicates``), if any.
    duplicate_of: uuid.UUID | None = None


@dataclass(frozen=True, slots=True)
class ManualOverride:
    """A person's correction of one activity's attribution; it sticks through every re-match.

    ``None`` fields are filled from the rules where they follow from what was set: the team
    from the rep's membership at the activity time, the account from the deal.
    """

    rep_id: str | None = None
    team_id: str | None = None
    account_id: str | None = None
    deal_id: str | None = None
    #: Defaults to ``attributed`` with a deal, ``account_only`` with an account, else ``unmatched``.
    status: AttributionStatus | None = None
    set_by: str = ""
    reason: str = ""


@dataclass(frozen=True, slots=True)
class AttributionSnapshot:
    """Everything the rules may look at for one activity, loaded before the call."""

    internal_domains: frozenset[str]
    reps: tuple[Rep, ...] = ()
    memberships: tuple[TeamMembership, ...] = ()
    accounts: tuple[Account, ...] = ()
    contacts: tuple[Contact, ...] = ()
    deals: tuple[Deal, ...] = ()
    #: Current attribution of the newest earlier activity in the same thread, if any.
    thread_attribution: CurrentAttribution | None = None
    override: ManualOverride | None = None
    #: Addresses no rep lists that name a rep anyway (the tenant's mapping, a former address, a
    #: mailbox following the naming convention of exactly one rep's name: ``ana.lopez@`` for Ana
    #: Lopez), and emails and phones of a rep deleted by her CRM who held them when the activity
    #: happened, whoever holds them now -> that rep. Read before the reps' identities.
    rep_by_name_address: Mapping[str, str] = field(default_factory=dict)


class AmbiguityPolicy(StrEnum):
    #: Keep the best deal and list the close runners-up as secondaries.
    PRIMARY_WITH_SECONDARIES = "primary_with_secondaries"
    #: Assert a deal only when it is clearly the one; otherwise leave the deal empty.
    UNIQUE_ONLY = "unique_only"


#: The longest grace window or parking time a policy may set: ten years.
MAX_POLICY_DAYS = 3_650


@dataclass(frozen=True, slots=True)
class TenantAttributionPolicy:
    ambiguity_policy: AmbiguityPolicy = AmbiguityPolicy.PRIMARY_WITH_SECONDARIES
    #: An activity up to this many days before a deal's creation still counts (first calls).
    grace_days_before_created: int = 14
    #: An activity up to this many days after a deal's close still counts (paperwork, thanks).
    grace_days_after_closed: int = 14
    #: Tenant additions to the maintained list of free-mail and personal domains.
    extra_personal_domains: frozenset[str] = field(default_factory=frozenset)
    #: Below this confidence a deal is not asserted: the activity stays ``account_only``.
    min_confidence: float = 0.35
    #: How long an undecided activity waits for CRM data before it stops being re-matched.
    park_days: int = 30
    #: The tenant's IANA time zone: a rep's team is the membership valid on the activity's day
    #: there (``valid_from`` and ``valid_to`` are the CRM's calendar dates, in the tenant's time).
    time_zone: str = "UTC"

    def __post_init__(self) -> None:
        # Bounded above too: a window of a million days overflows every date it is subtracted
        # from, which failed each of the tenant's activities on its own instead of the setting.
        for name in ("grace_days_before_created", "grace_days_after_closed", "park_days"):
            days = getattr(self, name)
            if not 0 <= days <= MAX_POLICY_DAYS:
                raise ValueError(f"{name} must lie in 0..{MAX_POLICY_DAYS} days, got {days}")
        if not 0.0 <= self.min_confidence <= 1.0:
            raise ValueError("min_confidence must lie in [0, 1]")
