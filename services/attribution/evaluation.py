"""Accuracy harness: a labelled synthetic dataset with realistic traps, scored in memory.

``generate_dataset`` builds a CRM world (reps changing teams, accounts with several deals,
switchboard numbers, contacts on personal addresses, deals closed and reopened as new deals,
contacts created after the email that introduced them) and activities whose true rep and deal
are known. ``run_evaluation`` attributes every activity with ``attribute_activity`` against a
snapshot filled the way the repository fills it (indexed look-ups by participant identity,
domain, account and contact), and scores the result next to the naive rule "newest open deal
of the account found by the sender/recipient domain, credited to its owner".

Everything is scored on the final CRM state, i.e. the re-match that runs once late CRM data has
arrived; for the late-CRM trap the first pass (before the contact existed) is reported as well.

Run it: ``python -m services.attribution.evaluation --activities 20000 --seed 1``.
"""

from __future__ import annotations

import argparse
import random
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
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
from libs.common.contracts.attribution import AttributionStatus
from services.attribution.domain.decision import AttributionDecision
from services.attribution.domain.matching import attribute_activity, team_at
from services.attribution.domain.personal_domains import email_domain, parent_domains
from services.attribution.domain.reference import (
    Account,
    AmbiguityPolicy,
    AttributionSnapshot,
    Contact,
    CurrentAttribution,
    Deal,
    Rep,
    TeamMembership,
    TenantAttributionPolicy,
)

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
}


@dataclass(frozen=True, slots=True)
class LabelledActivity:
    activity: ActivityIngestedV1
    trap: Trap
    true_rep_id: str
    true_team_id: str | None
    true_deal_id: str | None


@dataclass(frozen=True, slots=True)
class CrmWorld:
    """The CRM as it stands once every late record has arrived."""

    reps: tuple[Rep, ...]
    memberships: tuple[TeamMembership, ...]
    accounts: tuple[Account, ...]
    contacts: tuple[Contact, ...]
    deals: tuple[Deal, ...]
    #: When each contact appeared in the CRM; only late contacts differ from the beginning of time.
    contact_created_at: Mapping[str, datetime]


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
    reps: list[Rep] = field(default_factory=list)
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
        draft.reps.append(
            Rep(
                id=rep_id,
                name=f"Rep {number}",
                emails=(f"rep{number}@{INTERNAL_DOMAIN}",),
                phones=(f"+1415{number:07d}",),
            )
        )
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
        switchboard = f"+1646{number:07d}" if rng.random() < 0.35 else None
        for _ in range(rng.randint(2, 5)):
            contact_number = draft.next_number()
            contact_id = f"con-{contact_number:06d}"
            if domain == "gmail.com" or rng.random() < 0.12:
                email = f"person{contact_number}@{rng.choice(PERSONAL_PROVIDERS)}"
            else:
                email = f"person{contact_number}@{domain}"
            phones = [f"+1212{contact_number:07d}"]
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
                draft.reopened_pairs.append((deal.id, twin.id))


def _add_deal(draft: _Draft, account_id: str, owner: str, created: datetime, closes: datetime) -> _DraftDeal:
    rng = draft.rng
    deal_id = f"deal-{draft.next_number():06d}"
    closed_at = closes if closes < CRM_STATE_AT else None
    people = draft.contacts_of_account[account_id]
    chosen = rng.sample(people, k=min(len(people), rng.randint(1, 2)))
    deal = _DraftDeal(
        id=deal_id,
        account_id=account_id,
        owner_rep_id=owner,
        created_at=created,
        closed_at=closed_at,
        is_won=closed_at is not None and rng.random() < 0.4,
        contacts=[(contact_id, rng.choice(DEAL_ROLES)) for contact_id in chosen],
    )
    draft.deals[deal_id] = deal
    draft.deals_of_account[account_id].append(deal_id)
    return deal


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


def _rep_email(rep_id: str) -> str:
    return f"rep{int(rep_id[-3:])}@{INTERNAL_DOMAIN}"


def _rep_phone(rep_id: str) -> str:
    return f"+1415{int(rep_id[-3:]):07d}"


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
        phones=[f"+1212{number:07d}"],
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
    """A rep writes from an alias the CRM does not list (``first.last@`` instead of ``first@``)."""
    found = _pick_deal(draft, lambda deal, _: _business_contact(draft, deal) is not None)
    if found is None:
        return []
    deal, moment = found
    contact = draft.contacts[_business_contact(draft, deal) or ""]
    rep_id = _doer(draft, deal.owner_rep_id, 0.6)
    scenario = _email(rep_id, contact.email, True, moment, deal.id)
    alias = Participant(email=f"r.{rep_id}@{INTERNAL_DOMAIN}", role=ParticipantRole.FROM)
    return [replace(scenario, participants=(alias, *scenario.participants[1:]))]


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
}


_OUTCOME = {
    (ActivityKind.EMAIL, Direction.OUTBOUND): Outcome.SENT,
    (ActivityKind.EMAIL, Direction.INBOUND): Outcome.RECEIVED,
}


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
        participants=scenario.participants,
        thread_id=scenario.thread_id,
        automated=scenario.automated,
        crm=CrmReferences(owner_rep_id=scenario.crm_owner_rep_id),
    )


def generate_dataset(n_activities: int, seed: int) -> Dataset:
    """A labelled dataset of exactly ``n_activities`` activities, the same for the same seed."""
    if n_activities < 1:
        raise ValueError("n_activities must be positive")
    draft = _Draft(rng=random.Random(seed))
    _build_world(draft, n_activities)
    traps = list(TRAP_WEIGHTS)
    weights = [TRAP_WEIGHTS[trap] for trap in traps]
    labelled: list[tuple[_Scenario, Trap]] = []
    while len(labelled) < n_activities:
        trap = draft.rng.choices(traps, weights=weights)[0]
        for scenario in SCENARIO_GENERATORS[trap](draft)[: n_activities - len(labelled)]:
            labelled.append((scenario, trap))
    memberships = tuple(draft.memberships)
    activities = tuple(
        LabelledActivity(
            activity=_to_activity(scenario, number),
            trap=trap,
            true_rep_id=scenario.true_rep_id,
            true_team_id=team_at(scenario.true_rep_id, scenario.occurred_at.date(), memberships),
            true_deal_id=scenario.true_deal_id,
        )
        for number, (scenario, trap) in enumerate(labelled, start=1)
    )
    world = CrmWorld(
        reps=tuple(draft.reps),
        memberships=memberships,
        accounts=tuple(draft.accounts),
        contacts=tuple(
            Contact(c.id, (c.email,), tuple(c.phones), c.account_id) for c in draft.contacts.values()
        ),
        deals=tuple(
            Deal(
                id=d.id,
                account_id=d.account_id,
                owner_rep_id=d.owner_rep_id,
                stage=("closed_won" if d.is_won else "closed_lost") if d.closed_at else "negotiation",
                is_closed=d.closed_at is not None,
                is_won=d.is_won,
                created_at=d.created_at,
                closed_at=d.closed_at,
                contacts=tuple(d.contacts),
            )
            for d in draft.deals.values()
        ),
        contact_created_at={c.id: c.created_at for c in draft.contacts.values()},
    )
    return Dataset(world=world, activities=activities)


# --------------------------------------------------------------------------- snapshots


class InMemoryReferenceStore:
    """Fills snapshots with the same indexed look-ups the PostgreSQL repository makes."""

    def __init__(self, world: CrmWorld, internal_domains: frozenset[str]) -> None:
        self.world = world
        self.internal_domains = internal_domains
        self.reps = {rep.id: rep for rep in world.reps}
        self.rep_by_identity: dict[str, list[str]] = defaultdict(list)
        for rep in world.reps:
            for identity in (*rep.emails, *rep.phones):
                self.rep_by_identity[identity].append(rep.id)
        self.memberships_of: dict[str, list[TeamMembership]] = defaultdict(list)
        for membership in world.memberships:
            self.memberships_of[membership.rep_id].append(membership)
        self.contacts = {contact.id: contact for contact in world.contacts}
        self.contact_by_identity: dict[str, list[str]] = defaultdict(list)
        for contact in world.contacts:
            for identity in (*contact.emails, *contact.phones):
                self.contact_by_identity[identity].append(contact.id)
        self.accounts = {account.id: account for account in world.accounts}
        self.account_by_domain: dict[str, list[str]] = defaultdict(list)
        for account in world.accounts:
            for domain in account.domains:
                self.account_by_domain[domain].append(account.id)
        self.deals = {deal.id: deal for deal in world.deals}
        self.deals_of_account: dict[str, list[str]] = defaultdict(list)
        self.deals_of_contact: dict[str, list[str]] = defaultdict(list)
        for deal in world.deals:
            if deal.account_id is not None:
                self.deals_of_account[deal.account_id].append(deal.id)
            for contact_id, _ in deal.contacts:
                self.deals_of_contact[contact_id].append(deal.id)

    def snapshot_for(
        self,
        activity: ActivityIngestedV1,
        thread: CurrentAttribution | None = None,
        known_at: datetime | None = None,
    ) -> AttributionSnapshot:
        """The snapshot for ``activity``; with ``known_at``, contacts created later are invisible."""
        identities = [i for p in activity.participants for i in (p.email, p.phone) if i is not None]
        rep_ids = {rep_id for i in identities for rep_id in self.rep_by_identity.get(i, [])}
        contact_ids = {
            contact_id
            for i in identities
            for contact_id in self.contact_by_identity.get(i, [])
            if known_at is None or self.world.contact_created_at[contact_id] <= known_at
        }
        domains = {
            parent
            for p in activity.participants
            if p.email
            for parent in parent_domains(p.email.split("@")[1])
        }
        account_ids = {a for d in domains for a in self.account_by_domain.get(d, [])}
        account_ids |= {acc for c in contact_ids if (acc := self.contacts[c].account_id) is not None}
        deal_ids = {d for a in account_ids for d in self.deals_of_account.get(a, [])}
        deal_ids |= {d for c in contact_ids for d in self.deals_of_contact.get(c, [])}
        if thread is not None and thread.deal_id in self.deals:
            deal_ids.add(thread.deal_id)
        rep_ids |= {owner for d in deal_ids if (owner := self.deals[d].owner_rep_id) is not None}
        return AttributionSnapshot(
            internal_domains=self.internal_domains,
            reps=tuple(self.reps[r] for r in sorted(rep_ids)),
            memberships=tuple(m for r in sorted(rep_ids) for m in self.memberships_of.get(r, [])),
            accounts=tuple(self.accounts[a] for a in sorted(account_ids)),
            contacts=tuple(self.contacts[c] for c in sorted(contact_ids)),
            deals=tuple(self.deals[d] for d in sorted(deal_ids)),
            thread_attribution=thread,
        )

    def naive_rep(self, activity: ActivityIngestedV1, deal: Deal | None) -> str | None:
        """The naive credit: the deal's owner, else the first participant who is a rep."""
        if deal is not None and deal.owner_rep_id is not None:
            return deal.owner_rep_id
        for participant in activity.participants:
            for identity in (participant.email, participant.phone):
                if identity is not None and self.rep_by_identity.get(identity):
                    return self.rep_by_identity[identity][0]
        return None

    def naive_deal(self, activity: ActivityIngestedV1, as_of_activity_time: bool) -> Deal | None:
        """Newest open deal of the account whose domain is the first external participant's.

        ``as_of_activity_time`` reads "open" at the activity time (a live system) instead of
        in the current CRM state (a backfill or re-match).
        """
        for participant in activity.participants:
            domain = email_domain(participant.email) if participant.email else None
            if domain is None or domain == INTERNAL_DOMAIN:
                continue
            for account_id in sorted(self.account_by_domain.get(domain, [])):
                open_deals = [
                    deal
                    for deal in (self.deals[d] for d in self.deals_of_account[account_id])
                    if (_open_at(deal, activity.occurred_at) if as_of_activity_time else not deal.is_closed)
                ]
                if open_deals:
                    return max(open_deals, key=lambda deal: (deal.created_at, deal.id))
            return None
        return None


def _open_at(deal: Deal, moment: datetime) -> bool:
    return deal.created_at <= moment and (deal.closed_at is None or moment <= deal.closed_at)


# --------------------------------------------------------------------------- scoring


def _percent(value: float | None, width: int = 7) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:{width}.1%}"


@dataclass(frozen=True, slots=True)
class Scorecard:
    """Counts behind the figures; a deal is "predicted" whenever a primary deal is given."""

    activities: int = 0
    deal_truths: int = 0
    deal_predictions: int = 0
    deal_correct: int = 0
    rep_correct: int = 0
    team_correct: int = 0

    @property
    def precision(self) -> float | None:
        """Share of given deals that are right; undefined when no deal was given."""
        return self.deal_correct / self.deal_predictions if self.deal_predictions else None

    @property
    def recall(self) -> float | None:
        """Share of activities with a true deal that got it; undefined when none has one."""
        return self.deal_correct / self.deal_truths if self.deal_truths else None

    @property
    def rep_accuracy(self) -> float:
        return self.rep_correct / self.activities if self.activities else 1.0

    @property
    def team_accuracy(self) -> float:
        return self.team_correct / self.activities if self.activities else 1.0

    def add(
        self, truth: LabelledActivity, deal_id: str | None, rep_id: str | None, team_id: str | None
    ) -> Scorecard:
        return Scorecard(
            activities=self.activities + 1,
            deal_truths=self.deal_truths + (truth.true_deal_id is not None),
            deal_predictions=self.deal_predictions + (deal_id is not None),
            deal_correct=self.deal_correct + (deal_id is not None and deal_id == truth.true_deal_id),
            rep_correct=self.rep_correct + (rep_id == truth.true_rep_id),
            team_correct=self.team_correct + (team_id == truth.true_team_id),
        )

    def line(self, label: str) -> str:
        return (
            f"{label:<22} n={self.activities:>6}  deal precision {_percent(self.precision)}  "
            f"recall {_percent(self.recall)}  rep {_percent(self.rep_accuracy)}  "
            f"team {_percent(self.team_accuracy)}"
        )


@dataclass(frozen=True, slots=True)
class EvaluationReport:
    n_activities: int
    seed: int
    ours: Scorecard
    #: The same rules under the ``unique_only`` ambiguity policy: no deal when it is a close call.
    ours_unique_only: Scorecard
    naive: Scorecard
    naive_live: Scorecard
    #: Per trap: ours, and the naive rule read at the event time (the fairer of the two readings).
    by_trap: Mapping[Trap, tuple[Scorecard, Scorecard]]
    late_crm_first_pass: Scorecard
    statuses: Mapping[AttributionStatus, int]

    def render(self) -> str:
        lines = [
            f"Attribution accuracy on {self.n_activities} synthetic activities (seed {self.seed})",
            "Scored on the final CRM state: the re-match after late CRM data arrived.",
            self.ours.line("ours"),
            self.ours_unique_only.line("ours (unique_only)"),
            self.naive.line("naive (current state)"),
            self.naive_live.line("naive (at event time)"),
            "",
            "Per trap, next to the naive rule read at the event time:",
            f"{'trap':<20} {'n':>6}  {'ours P':>7} {'ours R':>7} {'ours rep':>8}  "
            f"{'naive P':>7} {'naive R':>7} {'naive rep':>9}",
        ]
        for trap, (ours, naive) in self.by_trap.items():
            lines.append(
                f"{trap.value:<20} {ours.activities:>6}  {_percent(ours.precision)} {_percent(ours.recall)} "
                f"{_percent(ours.rep_accuracy, 8)}  {_percent(naive.precision)} {_percent(naive.recall)} "
                f"{_percent(naive.rep_accuracy, 9)}"
            )
        lines += [
            "",
            self.late_crm_first_pass.line("late_crm first pass"),
            "statuses: " + ", ".join(f"{s.value}={n}" for s, n in self.statuses.items()),
        ]
        return "\n".join(lines)


def _current(decision: AttributionDecision) -> CurrentAttribution:
    return CurrentAttribution(
        version=1,
        status=decision.status,
        rep_id=decision.rep_id,
        team_id=decision.team_id,
        account_id=decision.account_id,
        deal_id=decision.deal_id,
        secondary_deal_ids=decision.secondary_deal_ids,
        confidence=decision.confidence,
        overridden=decision.overridden,
    )


def evaluate(dataset: Dataset, seed: int, policy: TenantAttributionPolicy | None = None) -> EvaluationReport:
    """Attribute every activity in time order (threads see their earlier decisions) and score."""
    policy = policy or TenantAttributionPolicy()
    store = InMemoryReferenceStore(dataset.world, frozenset({INTERNAL_DOMAIN}))
    memberships = dataset.world.memberships
    strict_policy = replace(policy, ambiguity_policy=AmbiguityPolicy.UNIQUE_ONLY)
    ours = strict = naive = naive_live = first_pass = Scorecard()
    by_trap: dict[Trap, tuple[Scorecard, Scorecard]] = {trap: (Scorecard(), Scorecard()) for trap in Trap}
    statuses: Counter[AttributionStatus] = Counter()
    threads: dict[str, CurrentAttribution] = {}
    strict_threads: dict[str, CurrentAttribution] = {}
    ordered: Sequence[LabelledActivity] = sorted(
        dataset.activities, key=lambda item: (item.activity.occurred_at, item.activity.external_id)
    )
    for item in ordered:
        activity = item.activity
        thread = threads.get(activity.thread_id) if activity.thread_id else None
        decision = attribute_activity(activity, store.snapshot_for(activity, thread), policy)
        if activity.thread_id is not None:
            threads[activity.thread_id] = _current(decision)
        statuses[decision.status] += 1
        strict_thread = strict_threads.get(activity.thread_id) if activity.thread_id else None
        strict_decision = attribute_activity(
            activity, store.snapshot_for(activity, strict_thread), strict_policy
        )
        if activity.thread_id is not None:
            strict_threads[activity.thread_id] = _current(strict_decision)
        strict = strict.add(item, strict_decision.deal_id, strict_decision.rep_id, strict_decision.team_id)
        ours = ours.add(item, decision.deal_id, decision.rep_id, decision.team_id)
        naive_deal = store.naive_deal(activity, as_of_activity_time=False)
        naive_rep = store.naive_rep(activity, naive_deal)
        naive_team = team_at(naive_rep, activity.occurred_at.date(), memberships)
        naive = naive.add(item, naive_deal.id if naive_deal else None, naive_rep, naive_team)
        live_deal = store.naive_deal(activity, as_of_activity_time=True)
        live_rep = store.naive_rep(activity, live_deal)
        live_team = team_at(live_rep, activity.occurred_at.date(), memberships)
        naive_live = naive_live.add(item, live_deal.id if live_deal else None, live_rep, live_team)
        trap_ours, trap_naive = by_trap[item.trap]
        by_trap[item.trap] = (
            trap_ours.add(item, decision.deal_id, decision.rep_id, decision.team_id),
            trap_naive.add(item, live_deal.id if live_deal else None, live_rep, live_team),
        )
        if item.trap is Trap.LATE_CRM:
            early = attribute_activity(
                activity, store.snapshot_for(activity, thread, activity.occurred_at), policy
            )
            first_pass = first_pass.add(item, early.deal_id, early.rep_id, early.team_id)
    return EvaluationReport(
        n_activities=len(ordered),
        seed=seed,
        ours=ours,
        ours_unique_only=strict,
        naive=naive,
        naive_live=naive_live,
        by_trap={trap: cards for trap, cards in by_trap.items() if cards[0].activities},
        late_crm_first_pass=first_pass,
        statuses=dict(sorted(statuses.items())),
    )


def run_evaluation(
    n_activities: int, seed: int, policy: TenantAttributionPolicy | None = None
) -> EvaluationReport:
    """Generate ``n_activities`` with ``seed`` and score ours against the naive rule."""
    return evaluate(generate_dataset(n_activities, seed), seed, policy)


def main(argv: Iterable[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--activities", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=1)
    arguments = parser.parse_args(list(argv) if argv is not None else None)
    print(run_evaluation(arguments.activities, arguments.seed).render())


if __name__ == "__main__":
    main()
