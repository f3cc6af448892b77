"""A labelled synthetic CRM world with realistic traps, for the attribution accuracy harness.

``generate_dataset`` builds a CRM world (reps changing teams, accounts with several deals,
switchboard numbers, contacts on personal addresses, deals closed and reopened as new deals,
contacts created after the email that introduced them) and activities whose true rep and deal
are known. ``scoring`` runs them through the production path.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum

from libs.common.contracts.activities import (
    ActivityIngestedV1,
    ActivityKind,
    CrmReferences,
    Direction,
    Outcome,
    Participant,
    ParticipantRole,
    activity_id_for,
)
from libs.common.personal_domains import email_domain
from services.attribution.domain.matching import team_at
from services.attribution.domain.reference import (
    Account,
    Contact,
    Deal,
    Rep,
    TeamMembership,
)
from spm.evaluation.attribution.ties import DealFacts, Observation, Seen, tied_deals

TENANT_ID = "eval-tenant"
INTERNAL_DOMAIN = "seller.example"
#: Activities happen in [ACTIVITIES_FROM, ACTIVITIES_FROM + ACTIVITY_SPAN_DAYS).
ACTIVITIES_FROM = datetime(2026, 1, 1, tzinfo=UTC)
ACTIVITY_SPAN_DAYS = 300
#: The moment the CRM state is read: deals closing after it are still open.
CRM_STATE_AT = datetime(2026, 11, 15, tzinfo=UTC)
DEALS_FROM = datetime(2025, 9, 1, tzinfo=UTC)
PERSONAL_PROVIDERS = ("gmail.com", "yahoo.com", "hotmail.co.uk", "outlook.com", "icloud.com", "gmx.de")
DEAL_ROLES = ("decision_maker", "champion", "economic_buyer", "technical_evaluator")
_FIRST_NAMES = (
    "Ana", "Bo", "Carla", "Dev", "Elif", "Femi", "Gus", "Hana", "Ivan", "Jade", "Kofi", "Lena",
    "Mateo", "Nora", "Omar", "Priya", "Quinn", "Rosa", "Sami", "Tara", "Uma", "Vik", "Wen", "Yara",
)  # fmt: skip
_LAST_NAMES = (
    "Lopez", "Okafor", "Schmidt", "Tanaka", "Rossi", "Nguyen", "Kowalski", "Haddad", "Silva",
    "Moreau", "Ivanova", "Patel", "Berg", "Costa", "Fischer", "Ahmed", "Murphy", "Novak",
)  # fmt: skip
#: How an alias the CRM does not list is usually made: by the mail system's naming convention
#: from the person's name (``ana.lopez@``, ``alopez@``); the rest are free-form (``ana-emea@``).
ALIAS_FOLLOWS_NAME = 0.8
#: Share of deals whose people are drawn from the whole account, even when some of them are
#: already on another deal open at the same time; the others are drawn from the rest.
SHARED_CONTACT_SHARE = 0.25
#: What a deal sells; a deal is named "<account> - <product>" as CRMs name them, and two deals of
#: one account are about different products (else they would be one deal).
PRODUCTS = (
    "Analytics add-on", "Platform renewal", "Data connectors", "Premium support", "Security suite",
    "Mobile rollout", "Training package", "Enterprise licence", "Integration services", "Forecasting pilot",
)  # fmt: skip
#: How often a subject names the deal's product, when the activity has a true deal: meeting titles
#: usually carry the topic ("Acme <> Seller: Security suite review"), email subjects less often
#: ("Quick question", "Following up"). The evaluated tenant keeps subjects (``keep_subjects``).
SUBJECT_NAMES_PRODUCT = {ActivityKind.MEETING: 0.6, ActivityKind.EMAIL: 0.4}
_TOPICS = ("pricing", "next steps", "proposal", "review", "questions", "timeline", "contract draft")
#: Traps whose email between a rep and a customer may start a reply chain, as real mail does.
REPLY_CHAIN_TRAPS = frozenset(
    {"single_open_deal", "several_open_deals", "personal_domain", "closed_reopened"}
)
#: Share of those emails answered in the same thread (the other side replies within days).
REPLY_CHAIN_SHARE = 0.3
#: Share of a chain's first messages that copy (cc) another person of the deal's buying group...
CC_COLLEAGUE_SHARE = 0.4
#: ...and share of the replies then written by that colleague rather than the addressee;
COLLEAGUE_REPLIES_SHARE = 0.5
#: a reply keeps everyone on the thread ("reply all") this often, else it answers the sender only.
REPLY_ALL_SHARE = 0.6
_GENERIC_SUBJECTS = (
    "Quick question", "Following up", "Catching up", "Checking in", "Call tomorrow?", "Intro", "Notes",
)  # fmt: skip


class Trap(StrEnum):
    SINGLE_OPEN_DEAL = "single_open_deal"
    SEVERAL_OPEN_DEALS = "several_open_deals"
    PERSONAL_DOMAIN = "personal_domain"
    SHARED_PHONE = "shared_phone"
    PHONE_ONLY_CALL = "phone_only_call"
    INTERNAL_MEETING = "internal_meeting"
    CLOSED_REOPENED = "closed_reopened"
    LATE_CRM = "late_crm"
    THREAD_REPLY = "thread_reply"
    AUTOMATED = "automated"
    CUSTOMER_MEETING = "customer_meeting"
    UNKNOWN_PROSPECT = "unknown_prospect"
    SHARED_INBOX = "shared_inbox"
    UNKNOWN_ALIAS = "unknown_alias"
    LATE_DEAL = "late_deal"
    REP_SEVERAL_SOURCES = "rep_several_sources"
    NO_CONTACT_ROLE = "no_contact_role"


#: Share of generated scenarios per trap (a thread scenario yields two activities).
TRAP_WEIGHTS: Mapping[Trap, int] = {
    Trap.SINGLE_OPEN_DEAL: 20,
    Trap.SEVERAL_OPEN_DEALS: 16,
    Trap.PERSONAL_DOMAIN: 7,
    Trap.SHARED_PHONE: 7,
    Trap.PHONE_ONLY_CALL: 8,
    Trap.INTERNAL_MEETING: 6,
    Trap.CLOSED_REOPENED: 7,
    Trap.LATE_CRM: 6,
    Trap.THREAD_REPLY: 5,
    Trap.AUTOMATED: 5,
    Trap.CUSTOMER_MEETING: 8,
    Trap.UNKNOWN_PROSPECT: 5,
    Trap.SHARED_INBOX: 4,
    Trap.UNKNOWN_ALIAS: 3,
    Trap.LATE_DEAL: 6,
    Trap.REP_SEVERAL_SOURCES: 5,
    Trap.NO_CONTACT_ROLE: 6,
}


@dataclass(frozen=True, slots=True)
class LabelledActivity:
    activity: ActivityIngestedV1
    trap: Trap
    true_rep_id: str
    true_team_id: str | None
    true_deal_id: str | None
    #: Other deals this activity and the CRM cannot tell from the true one (``ties``): the world
    #: drew the true deal among them at random. Empty: the activity is decidable.
    tied_with: frozenset[str] = frozenset()

    @property
    def decidable(self) -> bool:
        return not self.tied_with


@dataclass(frozen=True, slots=True)
class CrmWorld:
    """The CRM as it stands once every late record has arrived."""

    #: Every rep id any feed sent, canonical or not; ``rep_sources`` names each one's feed.
    reps: tuple[Rep, ...]
    rep_sources: Mapping[str, str]
    memberships: tuple[TeamMembership, ...]
    accounts: tuple[Account, ...]
    contacts: tuple[Contact, ...]
    deals: tuple[Deal, ...]
    #: When each contact appeared in the CRM; only late contacts differ from the beginning of time.
    contact_created_at: Mapping[str, datetime]
    #: When each deal reached the CRM feed; only late deals differ from the beginning of time.
    deal_known_at: Mapping[str, datetime]


@dataclass(frozen=True, slots=True)
class Dataset:
    world: CrmWorld
    activities: tuple[LabelledActivity, ...]


# --------------------------------------------------------------------------- generation


@dataclass(slots=True)
class _DraftDeal:
    id: str
    account_id: str
    owner_rep_id: str
    created_at: datetime
    closed_at: datetime | None
    is_won: bool
    contacts: list[tuple[str, str]]
    known_at: datetime = datetime(2000, 1, 1, tzinfo=UTC)
    #: The owner's id in the feed the deal came from (a HubSpot owner id), when not canonical.
    owner_as_sent: str | None = None
    product: str = ""


@dataclass(slots=True)
class _DraftContact:
    id: str
    account_id: str
    email: str
    phones: list[str]
    created_at: datetime = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass(slots=True)
class _Draft:
    rng: random.Random
    #: Draws deal products and subjects; separate from ``rng`` so that naming deals and writing
    #: subjects leaves the rest of the world as it was for the same seed.
    words_rng: random.Random
    #: Draws reps' names and the aliases made from them, likewise apart.
    names_rng: random.Random
    #: Draws reply chains (who is copied, who answers, when), likewise apart: the scenarios drawn
    #: from ``rng`` are the same with and without them.
    threads_rng: random.Random
    #: Canonical reps (the truth is told in their ids); ``source_reps`` are the same people as
    #: other feeds know them.
    reps: list[Rep] = field(default_factory=list)
    source_reps: list[Rep] = field(default_factory=list)
    rep_sources: dict[str, str] = field(default_factory=dict)
    hubspot_id: dict[str, str] = field(default_factory=dict)
    memberships: list[TeamMembership] = field(default_factory=list)
    accounts: list[Account] = field(default_factory=list)
    contacts: dict[str, _DraftContact] = field(default_factory=dict)
    contacts_of_account: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    deals: dict[str, _DraftDeal] = field(default_factory=dict)
    deals_of_account: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    switchboard_of_account: dict[str, str] = field(default_factory=dict)
    domain_of_account: dict[str, str] = field(default_factory=dict)
    reopened_pairs: list[tuple[str, str]] = field(default_factory=list)
    counter: int = 0
    chains: int = 0

    def next_number(self) -> int:
        self.counter += 1
        return self.counter


def _day(days: float) -> timedelta:
    return timedelta(days=days)


def _build_world(draft: _Draft, n_activities: int) -> None:
    rng = draft.rng
    n_reps = max(6, min(60, n_activities // 300))
    n_teams = max(2, n_reps // 6)
    for number in range(1, n_reps + 1):
        rep_id = f"rep-{number:03d}"
        _add_rep_and_its_sources(draft, number, rep_id)
        team = f"team-{rng.randrange(n_teams) + 1:02d}"
        if rng.random() < 0.25:
            # Moves to another team during the year: the team must be the one on the activity day.
            moved_on = date(2026, 2, 1) + timedelta(days=rng.randrange(210))
            other = f"team-{(int(team[-2:]) % n_teams) + 1:02d}"
            draft.memberships.append(TeamMembership(rep_id, team, date(2025, 1, 1), moved_on))
            draft.memberships.append(TeamMembership(rep_id, other, moved_on, None))
        else:
            draft.memberships.append(TeamMembership(rep_id, team, date(2025, 1, 1), None))
    rep_ids = [rep.id for rep in draft.reps]

    n_accounts = max(8, n_activities // 10)
    sole_traders = {rng.randrange(n_accounts) for _ in range(2)}
    for number in range(1, n_accounts + 1):
        account_id = f"acc-{number:05d}"
        # A couple of sole traders have "gmail.com" typed in as their domain: a classic CRM wart.
        domain = "gmail.com" if number - 1 in sole_traders else f"acct{number}.example"
        draft.accounts.append(Account(account_id, (domain,)))
        draft.domain_of_account[account_id] = domain
        switchboard = _number("646", number) if rng.random() < 0.35 else None
        for _ in range(rng.randint(2, 5)):
            contact_number = draft.next_number()
            contact_id = f"con-{contact_number:06d}"
            if domain == "gmail.com" or rng.random() < 0.12:
                email = f"person{contact_number}@{rng.choice(PERSONAL_PROVIDERS)}"
            else:
                email = f"person{contact_number}@{domain}"
            phones = [_number("212", contact_number)]
            if switchboard is not None and len(draft.contacts_of_account[account_id]) < 3:
                phones.append(switchboard)
            draft.contacts[contact_id] = _DraftContact(contact_id, account_id, email, phones)
            draft.contacts_of_account[account_id].append(contact_id)
        if switchboard is not None and len(draft.contacts_of_account[account_id]) >= 2:
            draft.switchboard_of_account[account_id] = switchboard
        account_owner = rng.choice(rep_ids)
        for _ in range(rng.randint(1, 4)):
            owner = account_owner if rng.random() < 0.7 else rng.choice(rep_ids)
            created = DEALS_FROM + _day(rng.uniform(0, 400))
            closes = created + _day(rng.uniform(20, 200))
            deal = _add_deal(draft, account_id, owner, created, closes)
            if deal.closed_at is not None and not deal.is_won and rng.random() < 0.3:
                # Closed lost, then reopened as a new deal with the same people a month or two later.
                reopened = deal.closed_at + _day(rng.uniform(30, 60))
                twin = _add_deal(draft, account_id, owner, reopened, reopened + _day(rng.uniform(40, 160)))
                twin.contacts = list(deal.contacts)
                twin.product = deal.product
                draft.reopened_pairs.append((deal.id, twin.id))


def _add_rep_and_its_sources(draft: _Draft, number: int, rep_id: str) -> None:
    """A seller known to the canonical sync, and often also as a HubSpot owner, a Salesforce
    User and a dialer user, each with its own id and the same sign-in email (case may differ).
    When a dialer user exists, only the dialer knows the seller's number."""
    rng = draft.rng
    email = f"rep{number}@{INTERNAL_DOMAIN}"
    dialer = rng.random() < 0.5
    phones = () if dialer else (_rep_phone(rep_id),)
    name = f"{draft.names_rng.choice(_FIRST_NAMES)} {draft.names_rng.choice(_LAST_NAMES)}"
    draft.reps.append(Rep(id=rep_id, name=name, emails=(email,), phones=phones))
    draft.rep_sources[rep_id] = "api"
    if dialer:
        draft.source_reps.append(Rep(f"u-{number}", name, (email,), (_rep_phone(rep_id),)))
        draft.rep_sources[f"u-{number}"] = "aircall"
    if rng.random() < 0.6:
        owner_id = f"77{number:02d}"
        draft.source_reps.append(Rep(owner_id, name, (email,)))
        draft.rep_sources[owner_id] = "hubspot"
        draft.hubspot_id[rep_id] = owner_id
    if rng.random() < 0.4:
        user_id = f"0055j{number:08d}AAC"
        draft.source_reps.append(Rep(user_id, name, (email.capitalize(),)))
        draft.rep_sources[user_id] = "salesforce"


def _add_deal(draft: _Draft, account_id: str, owner: str, created: datetime, closes: datetime) -> _DraftDeal:
    rng = draft.rng
    deal_id = f"deal-{draft.next_number():06d}"
    closed_at = closes if closes < CRM_STATE_AT else None
    people = draft.contacts_of_account[account_id]
    k = rng.randint(1, 2)
    # Concurrent deals of one account sell different products to different buying groups; a
    # person on two of them at once (procurement, an executive sponsor) is the minority.
    busy = {
        contact_id
        for other in draft.deals_of_account[account_id]
        if _lives_overlap(draft.deals[other], created, closes)
        for contact_id, _ in draft.deals[other].contacts
    }
    free = [c for c in people if c not in busy]
    pool = people if not free or rng.random() < SHARED_CONTACT_SHARE else free
    chosen = rng.sample(pool, k=min(len(pool), k))
    deal = _DraftDeal(
        id=deal_id,
        account_id=account_id,
        owner_rep_id=owner,
        created_at=created,
        closed_at=closed_at,
        is_won=closed_at is not None and rng.random() < 0.4,
        contacts=[(contact_id, rng.choice(DEAL_ROLES)) for contact_id in chosen],
    )
    deal.product = _new_product(draft, account_id)
    if owner in draft.hubspot_id and rng.random() < 0.5:
        # Synced from HubSpot: the deal names its owner by the HubSpot owner id.
        deal.owner_as_sent = draft.hubspot_id[owner]
    draft.deals[deal_id] = deal
    draft.deals_of_account[account_id].append(deal_id)
    return deal


def _lives_overlap(deal: _DraftDeal, created: datetime, closes: datetime) -> bool:
    return deal.created_at <= closes and (deal.closed_at is None or created <= deal.closed_at)


def _new_product(draft: _Draft, account_id: str) -> str:
    """A product the account has no deal for yet (any when it has them all)."""
    taken = {draft.deals[d].product for d in draft.deals_of_account[account_id]}
    fresh = [p for p in PRODUCTS if p not in taken]
    return draft.words_rng.choice(fresh or list(PRODUCTS))


def _strictly_open(deal: _DraftDeal, moment: datetime) -> bool:
    return deal.created_at <= moment and (deal.closed_at is None or moment <= deal.closed_at)


def _moment_in_life(draft: _Draft, deal: _DraftDeal) -> datetime | None:
    start = max(deal.created_at, ACTIVITIES_FROM)
    end = min(deal.closed_at or CRM_STATE_AT, ACTIVITIES_FROM + _day(ACTIVITY_SPAN_DAYS))
    if end <= start:
        return None
    return start + (end - start) * draft.rng.random()


def _open_deals(draft: _Draft, account_id: str, moment: datetime) -> list[str]:
    return [d for d in draft.deals_of_account[account_id] if _strictly_open(draft.deals[d], moment)]


@dataclass(frozen=True, slots=True)
class _Scenario:
    kind: ActivityKind
    direction: Direction
    occurred_at: datetime
    participants: tuple[Participant, ...]
    true_rep_id: str
    true_deal_id: str | None
    thread_id: str | None = None
    automated: bool = False
    crm_owner_rep_id: str | None = None
    subject: str | None = None


def _rep_email(rep_id: str) -> str:
    return f"rep{int(rep_id[-3:])}@{INTERNAL_DOMAIN}"


def _number(area: str, n: int) -> str:
    """A valid North American number in E.164 (exchange 200 and up), unique per ``n``."""
    return f"+1{area}{200 + n // 10_000:03d}{n % 10_000:04d}"


def _rep_phone(rep_id: str) -> str:
    return _number("415", int(rep_id[-3:]))


#: How people type a North American number into a CRM: the dialer sends E.164, the CRM holds these.
_TYPED_FORMATS: tuple[Callable[[str, str, str], str], ...] = (
    lambda a, x, n: f"({a}) {x}-{n}",
    lambda a, x, n: f"{a}.{x}.{n}",
    lambda a, x, n: f"1-{a}-{x}-{n}",
    lambda a, x, n: f"{a} {x} {n}",
    lambda a, x, n: f"+1 {a} {x} {n}",
    lambda a, x, n: f"+1{a}{x}{n}",
)


def as_typed(e164: str, rng: random.Random) -> str:
    """``+12122000001`` as someone might have typed it: ``(212) 200-0001``, ``212.200.0001``..."""
    area, exchange, line = e164[2:5], e164[5:8], e164[8:]
    return rng.choice(_TYPED_FORMATS)(area, exchange, line)


def _email(
    rep_id: str,
    other: str,
    outbound: bool,
    moment: datetime,
    deal_id: str | None,
    *,
    thread_id: str | None = None,
    automated: bool = False,
) -> _Scenario:
    rep = Participant(email=_rep_email(rep_id), role=ParticipantRole.FROM if outbound else ParticipantRole.TO)
    them = Participant(email=other, role=ParticipantRole.TO if outbound else ParticipantRole.FROM)
    return _Scenario(
        kind=ActivityKind.EMAIL,
        direction=Direction.OUTBOUND if outbound else Direction.INBOUND,
        occurred_at=moment,
        participants=(rep, them) if outbound else (them, rep),
        true_rep_id=rep_id,
        true_deal_id=deal_id,
        thread_id=thread_id,
        automated=automated,
    )


def _pick_deal(
    draft: _Draft, accept: Callable[[_DraftDeal, datetime], bool] | None = None, tries: int = 40
) -> tuple[_DraftDeal, datetime] | None:
    """A random deal and a moment strictly inside its life, satisfying ``accept``."""
    deal_ids = list(draft.deals)
    for _ in range(tries):
        deal = draft.deals[draft.rng.choice(deal_ids)]
        moment = _moment_in_life(draft, deal)
        if moment is not None and (accept is None or accept(deal, moment)):
            return deal, moment
    return None


def _doer(draft: _Draft, owner: str, owner_share: float) -> str:
    """The rep doing the activity: usually the deal's owner, sometimes a colleague covering."""
    if draft.rng.random() < owner_share:
        return owner
    return draft.rng.choice([rep.id for rep in draft.reps])


def _business_contact(draft: _Draft, deal: _DraftDeal) -> str | None:
    """The deal's first contact writing from a company address, if any."""
    for contact_id, _ in deal.contacts:
        if email_domain(draft.contacts[contact_id].email) not in PERSONAL_PROVIDERS:
            return contact_id
    return None


def _personal_contact(draft: _Draft, deal: _DraftDeal) -> str | None:
    for contact_id, _ in deal.contacts:
        if email_domain(draft.contacts[contact_id].email) in PERSONAL_PROVIDERS:
            return contact_id
    return None


def _contact_email(
    draft: _Draft, accept: Callable[[_DraftDeal, datetime], bool], personal: bool = False
) -> list[_Scenario]:
    """An email between a rep and a contact of a deal picked with ``accept``."""
    choose = _personal_contact if personal else _business_contact
    found = _pick_deal(draft, lambda deal, moment: choose(draft, deal) is not None and accept(deal, moment))
    if found is None:
        return []
    deal, moment = found
    contact_id = choose(draft, deal)
    assert contact_id is not None
    rep_id = _doer(draft, deal.owner_rep_id, 0.85)
    return [_email(rep_id, draft.contacts[contact_id].email, draft.rng.random() < 0.5, moment, deal.id)]


def _single_open_deal(draft: _Draft) -> list[_Scenario]:
    return _contact_email(draft, lambda deal, moment: len(_open_deals(draft, deal.account_id, moment)) == 1)


def _several_open_deals(draft: _Draft) -> list[_Scenario]:
    return _contact_email(draft, lambda deal, moment: len(_open_deals(draft, deal.account_id, moment)) >= 2)


def _personal_domain(draft: _Draft) -> list[_Scenario]:
    return _contact_email(draft, lambda deal, moment: True, personal=True)


def _closed_reopened(draft: _Draft) -> list[_Scenario]:
    # Either side of the pair: the lost deal while it lived, or its reopened twin.
    twins = {deal_id for pair in draft.reopened_pairs for deal_id in pair}
    return _contact_email(draft, lambda deal, moment: deal.id in twins)


def _call(draft: _Draft, deal: _DraftDeal, moment: datetime, rep_id: str, number: str) -> _Scenario:
    outbound = draft.rng.random() < 0.7
    rep = Participant(
        phone=_rep_phone(rep_id), role=ParticipantRole.CALLER if outbound else ParticipantRole.CALLEE
    )
    them = Participant(phone=number, role=ParticipantRole.CALLEE if outbound else ParticipantRole.CALLER)
    return _Scenario(
        kind=ActivityKind.CALL,
        direction=Direction.OUTBOUND if outbound else Direction.INBOUND,
        occurred_at=moment,
        participants=(rep, them) if outbound else (them, rep),
        true_rep_id=rep_id,
        true_deal_id=deal.id,
    )


def _shared_phone(draft: _Draft) -> list[_Scenario]:
    """The owner calls the account's switchboard: one number for several contacts."""
    found = _pick_deal(draft, lambda deal, _: deal.account_id in draft.switchboard_of_account)
    if found is None:
        return []
    deal, moment = found
    return [_call(draft, deal, moment, deal.owner_rep_id, draft.switchboard_of_account[deal.account_id])]


def _phone_only_call(draft: _Draft) -> list[_Scenario]:
    """A dialer call known only by the contact's direct number."""
    found = _pick_deal(draft)
    if found is None:
        return []
    deal, moment = found
    direct_line = draft.contacts[deal.contacts[0][0]].phones[0]
    return [_call(draft, deal, moment, _doer(draft, deal.owner_rep_id, 0.8), direct_line)]


def _internal_meeting(draft: _Draft) -> list[_Scenario]:
    people = draft.rng.sample([rep.id for rep in draft.reps], k=draft.rng.randint(2, 5))
    moment = ACTIVITIES_FROM + _day(draft.rng.uniform(0, ACTIVITY_SPAN_DAYS))
    participants = (
        Participant(email=_rep_email(people[0]), role=ParticipantRole.ORGANIZER),
        *(Participant(email=_rep_email(rep_id), role=ParticipantRole.ATTENDEE) for rep_id in people[1:]),
    )
    return [_Scenario(ActivityKind.MEETING, Direction.INTERNAL, moment, participants, people[0], None)]


def _late_crm(draft: _Draft) -> list[_Scenario]:
    """A newcomer emails about one of several open deals; the CRM learns of them days later."""
    found = _pick_deal(
        draft,
        lambda deal, moment: (
            draft.domain_of_account[deal.account_id] not in PERSONAL_PROVIDERS
            and len(_open_deals(draft, deal.account_id, moment)) >= 2
        ),
    )
    if found is None:
        return []
    deal, moment = found
    number = draft.next_number()
    newcomer = _DraftContact(
        id=f"con-{number:06d}",
        account_id=deal.account_id,
        email=f"person{number}@{draft.domain_of_account[deal.account_id]}",
        phones=[_number("212", number)],
        created_at=moment + _day(draft.rng.uniform(1, 20)),
    )
    draft.contacts[newcomer.id] = newcomer
    draft.contacts_of_account[deal.account_id].append(newcomer.id)
    deal.contacts.append((newcomer.id, draft.rng.choice(DEAL_ROLES)))
    rep_id = _doer(draft, deal.owner_rep_id, 0.6)
    return [_email(rep_id, newcomer.email, draft.rng.random() < 0.5, moment, deal.id)]


def _thread_reply(draft: _Draft) -> list[_Scenario]:
    """The owner writes to a contact; a colleague the CRM does not know replies in the thread."""

    def accept(deal: _DraftDeal, moment: datetime) -> bool:
        room_for_reply = deal.closed_at is None or moment + _day(6) < deal.closed_at
        several = len(_open_deals(draft, deal.account_id, moment)) >= 2
        return room_for_reply and several and _business_contact(draft, deal) is not None

    found = _pick_deal(draft, accept)
    if found is None:
        return []
    deal, moment = found
    contact = draft.contacts[_business_contact(draft, deal) or ""]
    thread_id = f"thread-{draft.next_number()}"
    colleague = f"colleague{draft.next_number()}@{email_domain(contact.email)}"
    replied_at = moment + _day(draft.rng.uniform(0.2, 5))
    return [
        _email(deal.owner_rep_id, contact.email, True, moment, deal.id, thread_id=thread_id),
        _email(deal.owner_rep_id, colleague, False, replied_at, deal.id, thread_id=thread_id),
    ]


def _automated(draft: _Draft) -> list[_Scenario]:
    """A no-reply notification from a customer's domain: counted, never attributed."""
    account = draft.rng.choice(draft.accounts)
    if account.domains[0] in PERSONAL_PROVIDERS:
        return []
    moment = ACTIVITIES_FROM + _day(draft.rng.uniform(0, ACTIVITY_SPAN_DAYS))
    rep_id = draft.rng.choice(draft.reps).id
    return [_email(rep_id, f"noreply@{account.domains[0]}", False, moment, None, automated=True)]


def _customer_meeting(draft: _Draft) -> list[_Scenario]:
    """The owner and a sales engineer meet a contact; the organizer is either side."""
    found = _pick_deal(draft)
    if found is None:
        return []
    deal, moment = found
    owner = deal.owner_rep_id
    engineer = draft.rng.choice([rep.id for rep in draft.reps if rep.id != owner])
    guest = draft.contacts[deal.contacts[0][0]].email
    if draft.rng.random() < 0.5:
        participants = (
            Participant(email=guest, role=ParticipantRole.ORGANIZER),
            Participant(email=_rep_email(engineer), role=ParticipantRole.ATTENDEE),
            Participant(email=_rep_email(owner), role=ParticipantRole.ATTENDEE),
        )
    else:
        participants = (
            Participant(email=_rep_email(owner), role=ParticipantRole.ORGANIZER),
            Participant(email=_rep_email(engineer), role=ParticipantRole.ATTENDEE),
            Participant(email=guest, role=ParticipantRole.ATTENDEE),
        )
    return [_Scenario(ActivityKind.MEETING, Direction.OUTBOUND, moment, participants, owner, deal.id)]


def _unknown_prospect(draft: _Draft) -> list[_Scenario]:
    """Cold outreach to a company the CRM has never heard of."""
    moment = ACTIVITIES_FROM + _day(draft.rng.uniform(0, ACTIVITY_SPAN_DAYS))
    prospect = f"buyer@prospect{draft.next_number()}.example"
    return [_email(draft.rng.choice(draft.reps).id, prospect, True, moment, None)]


def _shared_inbox(draft: _Draft) -> list[_Scenario]:
    """A contact writes to the team's shared inbox; the help desk sometimes assigns an owner."""
    found = _pick_deal(draft, lambda deal, _: _business_contact(draft, deal) is not None)
    if found is None:
        return []
    deal, moment = found
    contact = draft.contacts[_business_contact(draft, deal) or ""]
    assigned = deal.owner_rep_id if draft.rng.random() < 0.6 else None
    return [
        _Scenario(
            kind=ActivityKind.EMAIL,
            direction=Direction.INBOUND,
            occurred_at=moment,
            participants=(
                Participant(email=contact.email, role=ParticipantRole.FROM),
                Participant(email=f"sales@{INTERNAL_DOMAIN}", role=ParticipantRole.TO),
            ),
            true_rep_id=deal.owner_rep_id,
            true_deal_id=deal.id,
            crm_owner_rep_id=assigned,
        )
    ]


def _unknown_alias(draft: _Draft) -> list[_Scenario]:
    """A rep writes from an alias the CRM does not list: usually made from the rep's name by the
    mail system's convention (``ana.lopez@``, ``a.lopez@``, ``alopez@`` beside ``rep3@``), else
    free-form (``ana-emea@``)."""
    found = _pick_deal(draft, lambda deal, _: _business_contact(draft, deal) is not None)
    if found is None:
        return []
    deal, moment = found
    contact = draft.contacts[_business_contact(draft, deal) or ""]
    rep_id = _doer(draft, deal.owner_rep_id, 0.6)
    scenario = _email(rep_id, contact.email, True, moment, deal.id)
    alias = Participant(email=f"{_alias_of(draft, rep_id)}@{INTERNAL_DOMAIN}", role=ParticipantRole.FROM)
    return [replace(scenario, participants=(alias, *scenario.participants[1:]))]


def _alias_of(draft: _Draft, rep_id: str) -> str:
    first, last = next(r.name for r in draft.reps if r.id == rep_id).lower().split()
    rng = draft.names_rng
    if rng.random() < ALIAS_FOLLOWS_NAME:
        return rng.choice((f"{first}.{last}", f"{first[0]}.{last}", f"{first[0]}{last}"))
    return f"{first}-{rng.choice(('emea', 'sales', 'deals', 'work'))}"


def _late_deal(draft: _Draft) -> list[_Scenario]:
    """A contact of an account with another open deal writes about a new deal, which reaches
    the CRM days later (created around the email, a few days before or after it)."""
    found = _pick_deal(
        draft, lambda deal, _: draft.domain_of_account[deal.account_id] not in PERSONAL_PROVIDERS
    )
    if found is None:
        return []
    other, moment = found
    account_id = other.account_id
    busy = {c for d in _open_deals(draft, account_id, moment) for c, _ in draft.deals[d].contacts}
    free = [
        c
        for c in draft.contacts_of_account[account_id]
        if c not in busy and draft.contacts[c].created_at <= moment
    ]
    rng = draft.rng
    if free:
        contact_id = rng.choice(free)
    else:
        number = draft.next_number()
        contact_id = f"con-{number:06d}"
        draft.contacts[contact_id] = _DraftContact(
            contact_id, account_id, f"person{number}@{draft.domain_of_account[account_id]}",
            [_number("212", number)],
        )  # fmt: skip
        draft.contacts_of_account[account_id].append(contact_id)
    owner = other.owner_rep_id if rng.random() < 0.5 else rng.choice([rep.id for rep in draft.reps])
    created = moment + _day(rng.uniform(-10, 5))
    deal_id = f"deal-{draft.next_number():06d}"
    draft.deals[deal_id] = _DraftDeal(
        id=deal_id,
        account_id=account_id,
        owner_rep_id=owner,
        created_at=created,
        closed_at=None,
        is_won=False,
        contacts=[(contact_id, rng.choice(DEAL_ROLES))],
        known_at=moment + _day(rng.uniform(1, 20)),
        product=_new_product(draft, account_id),
    )
    draft.deals_of_account[account_id].append(deal_id)
    rep_id = _doer(draft, owner, 0.8)
    return [_email(rep_id, draft.contacts[contact_id].email, rng.random() < 0.5, moment, deal_id)]


def _rep_several_sources(draft: _Draft) -> list[_Scenario]:
    """A HubSpot call engagement: the rep's HubSpot owner id as ``crm.owner_rep_id``, the rep's
    number as only the dialer knows it, the contact's direct line."""
    found = _pick_deal(draft, lambda deal, _: deal.owner_rep_id in draft.hubspot_id)
    if found is None:
        return []
    deal, moment = found
    scenario = _call(draft, deal, moment, deal.owner_rep_id, draft.contacts[deal.contacts[0][0]].phones[0])
    return [replace(scenario, crm_owner_rep_id=draft.hubspot_id[deal.owner_rep_id])]


def _no_contact_role(draft: _Draft) -> list[_Scenario]:
    """Someone at the account who holds no role on any deal (contact roles are optional in every
    CRM, and often left empty) writes while the account has one open deal: that deal is the one."""

    def accept(deal: _DraftDeal, moment: datetime) -> bool:
        business = draft.domain_of_account[deal.account_id] not in PERSONAL_PROVIDERS
        return business and len(_open_deals(draft, deal.account_id, moment)) == 1

    found = _pick_deal(draft, accept)
    if found is None:
        return []
    deal, moment = found
    on_deals = {c for d in draft.deals_of_account[deal.account_id] for c, _ in draft.deals[d].contacts}
    domain = draft.domain_of_account[deal.account_id]
    roleless = [
        c
        for c in draft.contacts_of_account[deal.account_id]
        if c not in on_deals
        and draft.contacts[c].created_at <= moment
        and email_domain(draft.contacts[c].email) == domain
    ]
    address = (
        draft.contacts[draft.rng.choice(roleless)].email
        if roleless
        else f"office{draft.next_number()}@{domain}"
    )
    return [_email(_doer(draft, deal.owner_rep_id, 0.85), address, draft.rng.random() < 0.5, moment, deal.id)]


def _with_reply_chain(draft: _Draft, scenario: _Scenario, trap: Trap) -> list[_Scenario]:
    """The email, and sometimes the reply that answers it in the same thread.

    The first message may copy another person of the deal's buying group; the reply comes from
    the other side (the customer who was written to, or that colleague; the rep when the
    customer wrote first), to everyone ("reply all") or to the sender only. A colleague who
    answers only the rep may be on several deals of the account: the thread is then what says
    which one.
    """
    rng = draft.threads_rng
    deal = draft.deals.get(scenario.true_deal_id or "")
    if trap.value not in REPLY_CHAIN_TRAPS or deal is None or scenario.kind is not ActivityKind.EMAIL:
        return [scenario]
    if rng.random() >= REPLY_CHAIN_SHARE:
        return [scenario]
    rep, customer = (
        scenario.participants if scenario.direction is Direction.OUTBOUND else scenario.participants[::-1]
    )
    emails = {p.email for p in scenario.participants}
    others = [draft.contacts[c].email for c, _ in deal.contacts if draft.contacts[c].email not in emails]
    colleague = rng.choice(others) if others and rng.random() < CC_COLLEAGUE_SHARE else None
    draft.chains += 1
    thread_id = f"chain-{draft.chains}"
    cc = (Participant(email=colleague, role=ParticipantRole.CC),) if colleague else ()
    first = replace(scenario, participants=(*scenario.participants, *cc), thread_id=thread_id)
    reply_all = rng.random() < REPLY_ALL_SHARE
    at = scenario.occurred_at + _day(rng.uniform(0.2, 5))
    if scenario.direction is Direction.OUTBOUND:
        writer = colleague if colleague and rng.random() < COLLEAGUE_REPLIES_SHARE else customer.email
        copied = [e for e in (customer.email, colleague) if e and e != writer] if reply_all else []
        parts = (
            Participant(email=writer, role=ParticipantRole.FROM),
            Participant(email=rep.email, role=ParticipantRole.TO),
            *(Participant(email=e, role=ParticipantRole.CC) for e in copied),
        )
        direction = Direction.INBOUND
    else:
        parts = (
            Participant(email=rep.email, role=ParticipantRole.FROM),
            Participant(email=customer.email, role=ParticipantRole.TO),
            *((Participant(email=colleague, role=ParticipantRole.CC),) if colleague and reply_all else ()),
        )
        direction = Direction.OUTBOUND
    reply = replace(first, direction=direction, occurred_at=at, participants=parts)
    return [first, reply]


#: One generator per trap; each returns [] when the world offers no fitting case this time.
SCENARIO_GENERATORS: Mapping[Trap, Callable[[_Draft], list[_Scenario]]] = {
    Trap.SINGLE_OPEN_DEAL: _single_open_deal,
    Trap.SEVERAL_OPEN_DEALS: _several_open_deals,
    Trap.PERSONAL_DOMAIN: _personal_domain,
    Trap.SHARED_PHONE: _shared_phone,
    Trap.PHONE_ONLY_CALL: _phone_only_call,
    Trap.INTERNAL_MEETING: _internal_meeting,
    Trap.CLOSED_REOPENED: _closed_reopened,
    Trap.LATE_CRM: _late_crm,
    Trap.THREAD_REPLY: _thread_reply,
    Trap.AUTOMATED: _automated,
    Trap.CUSTOMER_MEETING: _customer_meeting,
    Trap.UNKNOWN_PROSPECT: _unknown_prospect,
    Trap.SHARED_INBOX: _shared_inbox,
    Trap.UNKNOWN_ALIAS: _unknown_alias,
    Trap.LATE_DEAL: _late_deal,
    Trap.REP_SEVERAL_SOURCES: _rep_several_sources,
    Trap.NO_CONTACT_ROLE: _no_contact_role,
}


_OUTCOME = {
    (ActivityKind.EMAIL, Direction.OUTBOUND): Outcome.SENT,
    (ActivityKind.EMAIL, Direction.INBOUND): Outcome.RECEIVED,
}


def _with_subjects(draft: _Draft, scenarios: list[tuple[_Scenario, Trap]]) -> list[tuple[_Scenario, Trap]]:
    """Emails and meetings get a subject: sometimes naming the true deal's product, else generic;
    a reply keeps its thread's subject ("Re: ..."). Calls have none."""
    rng = draft.words_rng
    of_thread: dict[str, str] = {}
    written: list[tuple[_Scenario, Trap]] = []
    for scenario, trap in scenarios:
        subject: str | None = None
        if scenario.thread_id is not None and scenario.thread_id in of_thread:
            subject = f"Re: {of_thread[scenario.thread_id]}"
        elif scenario.kind in SUBJECT_NAMES_PRODUCT:
            deal = draft.deals.get(scenario.true_deal_id or "")
            if deal is not None and rng.random() < SUBJECT_NAMES_PRODUCT[scenario.kind]:
                subject = f"{deal.product} - {rng.choice(_TOPICS)}"
            else:
                subject = rng.choice(_GENERIC_SUBJECTS)
            if scenario.thread_id is not None:
                of_thread[scenario.thread_id] = subject
        written.append((replace(scenario, subject=subject), trap))
    return written


def _deal_name(deal: _DraftDeal) -> str:
    return f"Acct{int(deal.account_id[4:])} - {deal.product}"


def _to_activity(scenario: _Scenario, number: int) -> ActivityIngestedV1:
    external_id = f"eval-{number:07d}"
    outcome = _OUTCOME.get(
        (scenario.kind, scenario.direction),
        Outcome.CONNECTED if scenario.kind is ActivityKind.CALL else Outcome.HELD,
    )
    return ActivityIngestedV1(
        tenant_id=TENANT_ID,
        activity_id=activity_id_for(TENANT_ID, "eval", external_id),
        ingested_at=scenario.occurred_at + timedelta(minutes=1),
        source="eval",
        external_id=external_id,
        kind=scenario.kind,
        direction=scenario.direction,
        outcome=outcome,
        occurred_at=scenario.occurred_at,
        duration_seconds=300 if scenario.kind is not ActivityKind.EMAIL else 0,
        subject=scenario.subject,
        participants=scenario.participants,
        thread_id=scenario.thread_id,
        automated=scenario.automated,
        crm=CrmReferences(owner_rep_id=scenario.crm_owner_rep_id),
    )


def _ties(draft: _Draft, scenarios: list[_Scenario]) -> tuple[frozenset[str], ...]:
    """The oracle's ties (``ties.tied_deals``) over the world as it stands once every late
    record arrived, from the world's own draws: no matcher is consulted."""
    by_email: dict[str, set[str]] = defaultdict(set)
    by_phone: dict[str, set[str]] = defaultdict(set)
    for contact in draft.contacts.values():
        by_email[contact.email.lower()].add(contact.id)
        for phone in contact.phones:
            by_phone[phone].add(contact.id)
    rep_by_email = {_rep_email(rep.id): rep.id for rep in draft.reps}
    rep_by_phone = {_rep_phone(rep.id): rep.id for rep in draft.reps}
    hubspot = {owner_id: rep_id for rep_id, owner_id in draft.hubspot_id.items()}

    def seen(participant: Participant, scenario: _Scenario) -> Seen:
        role = participant.role.value
        if participant.email is not None:
            email = participant.email.lower()
            if email_domain(email) == INTERNAL_DOMAIN:
                # An alias the CRM does not list is read as its rep (the generous reading: the
                # owner signal counts), the shared inbox as nobody.
                shared = email == f"sales@{INTERNAL_DOMAIN}"
                rep_id = None if shared else rep_by_email.get(email, scenario.true_rep_id)
                return Seen(role, rep_id=rep_id, is_rep=True)
            return Seen(role, contact_ids=frozenset(by_email.get(email, ())))
        phone = participant.phone or ""
        if phone in rep_by_phone:
            return Seen(role, rep_id=rep_by_phone[phone], is_rep=True)
        return Seen(role, contact_ids=frozenset(by_phone.get(phone, ())))

    observations = [
        Observation(
            occurred_at=s.occurred_at,
            true_deal_id=s.true_deal_id,
            participants=tuple(seen(p, s) for p in s.participants),
            subject=s.subject,
            thread_id=s.thread_id,
            crm_owner_rep_id=hubspot.get(s.crm_owner_rep_id or "", s.crm_owner_rep_id),
        )
        for s in scenarios
    ]
    deals = {
        d.id: DealFacts(
            id=d.id,
            account_id=d.account_id,
            owner_rep_id=d.owner_rep_id,
            created_at=d.created_at,
            closed_at=d.closed_at,
            product=d.product,
            contact_ids=frozenset(c for c, _ in d.contacts),
        )
        for d in draft.deals.values()
    }
    return tied_deals(observations, deals)


def generate_dataset(n_activities: int, seed: int) -> Dataset:
    """A labelled dataset of exactly ``n_activities`` activities, the same for the same seed."""
    if n_activities < 1:
        raise ValueError("n_activities must be positive")
    draft = _Draft(
        rng=random.Random(seed),
        words_rng=random.Random(f"words-{seed}"),
        names_rng=random.Random(f"names-{seed}"),
        threads_rng=random.Random(f"threads-{seed}"),
    )
    _build_world(draft, n_activities)
    traps = list(TRAP_WEIGHTS)
    weights = [TRAP_WEIGHTS[trap] for trap in traps]
    labelled: list[tuple[_Scenario, Trap]] = []
    while len(labelled) < n_activities:
        trap = draft.rng.choices(traps, weights=weights)[0]
        for drawn in SCENARIO_GENERATORS[trap](draft):
            for scenario in _with_reply_chain(draft, drawn, trap)[: n_activities - len(labelled)]:
                labelled.append((scenario, trap))
    labelled = _with_subjects(draft, labelled)
    memberships = tuple(draft.memberships)
    ties = _ties(draft, [scenario for scenario, _ in labelled])
    activities = tuple(
        LabelledActivity(
            activity=_to_activity(scenario, number),
            trap=trap,
            true_rep_id=scenario.true_rep_id,
            true_team_id=team_at(scenario.true_rep_id, scenario.occurred_at.date(), memberships),
            true_deal_id=scenario.true_deal_id,
            tied_with=tied,
        )
        for number, ((scenario, trap), tied) in enumerate(zip(labelled, ties, strict=True), start=1)
    )
    world = CrmWorld(
        reps=tuple(
            replace(r, phones=tuple(as_typed(p, draft.rng) for p in r.phones))
            for r in (*draft.reps, *draft.source_reps)
        ),
        rep_sources=dict(draft.rep_sources),
        memberships=memberships,
        accounts=tuple(draft.accounts),
        # The CRM holds phones as people typed them; ingest reads them (``scoring.world_index``).
        contacts=tuple(
            Contact(c.id, (c.email,), tuple(as_typed(p, draft.rng) for p in c.phones), c.account_id)
            for c in draft.contacts.values()
        ),
        deals=tuple(
            Deal(
                id=d.id,
                account_id=d.account_id,
                owner_rep_id=d.owner_as_sent or d.owner_rep_id,
                stage=("closed_won" if d.is_won else "closed_lost") if d.closed_at else "negotiation",
                is_closed=d.closed_at is not None,
                is_won=d.is_won,
                created_at=d.created_at,
                closed_at=d.closed_at,
                contacts=tuple(d.contacts),
                name=_deal_name(d),
            )
            for d in draft.deals.values()
        ),
        contact_created_at={c.id: c.created_at for c in draft.contacts.values()},
        deal_known_at={d.id: d.known_at for d in draft.deals.values()},
    )
    return Dataset(world=world, activities=activities)
