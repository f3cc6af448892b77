"""Scoring the production attribution path on a labelled world, next to the naive rule.

Every activity goes through what the consumer runs: the pure ``attribute_from_index`` over a
``ReferenceIndex`` (filled here from the generated world instead of PostgreSQL), and
``next_version``; threads see the earlier decisions through ``ReferenceIndex.remember`` as in a
consumer batch.
"""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum

from libs.common.contracts.activities import ActivityIngestedV1
from libs.common.contracts.attribution import AttributionStatus
from libs.common.contracts.crm import AccountV1, ContactV1, RepV1
from libs.common.personal_domains import email_domain
from services.attribution.domain.decision import AttributionDecision, next_version, should_park
from services.attribution.domain.matching import team_at
from services.attribution.domain.reference import (
    Account,
    AmbiguityPolicy,
    Contact,
    CurrentAttribution,
    Deal,
    Rep,
    TenantAttributionPolicy,
)
from services.attribution.domain.reference_index import (
    ReferenceIndex,
    ThreadMember,
    attribute_from_index,
)
from services.attribution.domain.rematch import (
    RematchWindow,
    deal_rematch_window,
    identity_rematch_window,
)
from services.attribution.domain.reps import RepRecord, resolve_rep_aliases
from services.ingest.domain.crm_sync import read_entities
from spm.evaluation.attribution.world import (
    ACTIVITIES_FROM,
    CRM_STATE_AT,
    INTERNAL_DOMAIN,
    CrmWorld,
    Dataset,
    LabelledActivity,
    Trap,
    generate_dataset,
)

#: The tenant's default phone region: CRM phones typed without ``+`` are read in it.
PHONE_REGION = "US"


def ingested_rep(rep: Rep) -> Rep:
    """A rep as ingest publishes it: phones and emails read by ingest's rules (``read_entities``)."""
    sent = RepV1(id=rep.id, updated_at=CRM_STATE_AT, name=rep.name, emails=rep.emails, phones=rep.phones)
    (read,), _ = read_entities((sent,), PHONE_REGION)
    assert isinstance(read, RepV1)
    return replace(rep, emails=tuple(read.emails), phones=tuple(read.phones))


def ingested_contact(contact: Contact) -> Contact:
    """A contact as ingest publishes it: phones typed in national formats become E.164, emails bare."""
    sent = ContactV1(
        id=contact.id,
        updated_at=CRM_STATE_AT,
        emails=contact.emails,
        phones=contact.phones,
        account_id=contact.account_id,
    )
    (read,), _ = read_entities((sent,), PHONE_REGION)
    assert isinstance(read, ContactV1)
    return replace(contact, emails=tuple(read.emails), phones=tuple(read.phones))


def ingested_account(account: Account) -> Account:
    """An account as ingest publishes it: domains read as host names (``read_entities``)."""
    sent = AccountV1(id=account.id, updated_at=CRM_STATE_AT, domains=account.domains)
    (read,), _ = read_entities((sent,), PHONE_REGION)
    assert isinstance(read, AccountV1)
    return replace(account, domains=tuple(read.domains))


def world_index(world: CrmWorld, known_at: datetime | None = None) -> ReferenceIndex:
    """The world as a reference index (through ingest's phone rule); with ``known_at``, the
    contacts and deals that reach the CRM later are absent."""
    records = [RepRecord(rep.id, world.rep_sources[rep.id], rep.emails) for rep in world.reps]
    index = ReferenceIndex(
        internal_domains=frozenset({INTERNAL_DOMAIN}), rep_aliases=resolve_rep_aliases(records)
    )
    for rep in world.reps:
        index.put_rep(ingested_rep(rep))
    for membership in world.memberships:
        index.add_membership(membership)
    for account in world.accounts:
        index.put_account(ingested_account(account))
    for contact in world.contacts:
        if known_at is None or world.contact_created_at[contact.id] <= known_at:
            index.put_contact(ingested_contact(contact))
    for deal in world.deals:
        if known_at is None or world.deal_known_at[deal.id] <= known_at:
            index.put_deal(deal)
    return index


def decide(
    activity: ActivityIngestedV1, index: ReferenceIndex, policy: TenantAttributionPolicy
) -> AttributionDecision:
    """The consumer's path for one activity; the decision is remembered for its thread."""
    decision = attribute_from_index(activity, index, policy)
    if activity.thread_id is not None:
        index.remember(activity.thread_id, ThreadMember.of_decision(activity, decision))
    return decision


def _current(decision: AttributionDecision, version: int) -> CurrentAttribution:
    return CurrentAttribution(
        version=version,
        status=decision.status,
        rep_id=decision.rep_id,
        team_id=decision.team_id,
        account_id=decision.account_id,
        deal_id=decision.deal_id,
        secondary_deal_ids=decision.secondary_deal_ids,
        confidence=decision.confidence,
        overridden=decision.overridden,
    )


@dataclass
class Replay:
    """The consumer over time: activities arrive, late CRM records arrive, re-matches follow.

    Decisions go through the production path (``decide``, ``next_version``); which activities a
    CRM change re-decides follows the repository's two selections, held here as in-memory
    indexes: parked activities the changed contact or account points at
    (``activities_to_rematch``), and every automatic attribution inside a changed deal's
    window or with a contact's new email or phone (``domain.rematch.deal_rematch_window``,
    ``identity_rematch_window`` + ``activities_in_windows``).
    """

    index: ReferenceIndex
    policy: TenantAttributionPolicy
    activities: dict[uuid.UUID, ActivityIngestedV1] = field(default_factory=dict)
    current: dict[uuid.UUID, CurrentAttribution] = field(default_factory=dict)
    first: dict[uuid.UUID, AttributionDecision] = field(default_factory=dict)
    parked_until: dict[uuid.UUID, datetime] = field(default_factory=dict)
    by_identity: dict[str, set[uuid.UUID]] = field(default_factory=lambda: defaultdict(set))
    by_account: dict[str, set[uuid.UUID]] = field(default_factory=lambda: defaultdict(set))
    rematched: int = 0

    def _keep(self, activity: ActivityIngestedV1, decision: AttributionDecision, now: datetime) -> None:
        held = self.current.get(activity.activity_id)
        version = next_version(held, decision)
        if version is None:
            return
        self.current[activity.activity_id] = _current(decision, version)
        if should_park(decision, self.policy):
            self.parked_until[activity.activity_id] = now + timedelta(days=self.policy.park_days)
        else:
            self.parked_until.pop(activity.activity_id, None)
        if decision.account_id:
            self.by_account[decision.account_id].add(activity.activity_id)

    def activity_arrives(self, activity: ActivityIngestedV1, now: datetime) -> None:
        self.activities[activity.activity_id] = activity
        for p in activity.participants:
            for identity in (p.email.lower() if p.email else None, p.phone):
                if identity:
                    self.by_identity[identity].add(activity.activity_id)
        if activity.crm.account_id:
            self.by_account[activity.crm.account_id].add(activity.activity_id)
        decision = decide(activity, self.index, self.policy)
        self.first[activity.activity_id] = decision
        self._keep(activity, decision, now)

    def _identities(self, contact_ids: Iterable[str]) -> set[str]:
        found: set[str] = set()
        for contact_id in contact_ids:
            contact = self.index.contacts.get(contact_id)
            if contact is not None:
                found |= {e.lower() for e in contact.emails} | set(contact.phones)
        return found

    def _pointing_at(self, accounts: Iterable[str], identities: Iterable[str]) -> set[uuid.UUID]:
        """Activities of these accounts (their attribution's, or ``crm.account_id``) or with a
        participant holding one of these identities."""
        ids: set[uuid.UUID] = set()
        for account_id in accounts:
            ids |= {i for i in self.by_account.get(account_id, ()) if self._of_account(i, account_id)}
        for identity in identities:
            ids |= self.by_identity.get(identity, set())
        return ids

    def _of_account(self, activity_id: uuid.UUID, account_id: str) -> bool:
        held = self.current.get(activity_id)
        if held is not None and held.account_id == account_id:
            return True
        return self.activities[activity_id].crm.account_id == account_id

    def _parked(self, ids: Iterable[uuid.UUID], now: datetime) -> set[uuid.UUID]:
        return {i for i in ids if self.parked_until.get(i, now) > now}

    def contact_arrives(self, contact: Contact, now: datetime) -> None:
        had = self._identities([contact.id])
        self.index.put_contact(contact)
        accounts = [contact.account_id] if contact.account_id else []
        held = self._identities([contact.id])
        wanted = self._parked(self._pointing_at(accounts, held), now)
        # Her new emails and phones: every automatic attribution of the last 400 days with them.
        wanted |= self._in_window(identity_rematch_window(held - had, now))
        self._decide_again(wanted, now)

    def deal_arrives(self, deal: Deal, now: datetime) -> None:
        before = self.index.deals.get(deal.id)
        self.index.put_deal(deal)
        accounts = [deal.account_id] if deal.account_id else []
        wanted = self._parked(self._pointing_at(accounts, self._identities(deal.contact_ids)), now)
        wanted |= self._in_window(deal_rematch_window(before, deal, self.policy, now))
        self._decide_again(wanted, now)

    def _in_window(self, window: RematchWindow | None) -> set[uuid.UUID]:
        """As ``windowed_activities``: the automatic attributions inside ``window`` on its accounts,
        or with a participant holding an identity of its contacts, of every contact of its accounts
        (whichever account their activities were decided on) or one of its ``identities``."""
        if window is None:
            return set()
        people = set(window.contact_ids) | {
            c.id for c in self.index.contacts.values() if c.account_id in window.account_ids
        }
        inside = self._pointing_at(window.account_ids, self._identities(people) | window.identities)
        return {
            i
            for i in inside
            if window.since <= self.activities[i].occurred_at
            and (window.until is None or self.activities[i].occurred_at <= window.until)
            and not self.current[i].overridden
        }

    def _decide_again(self, ids: Iterable[uuid.UUID], now: datetime) -> None:
        ordered = sorted(ids, key=lambda i: (self.activities[i].occurred_at, str(i)))
        self.rematched += len(ordered)
        for activity_id in ordered:
            activity = self.activities[activity_id]
            self._keep(activity, decide(activity, self.index, self.policy), now)


def replay(dataset: Dataset, policy: TenantAttributionPolicy) -> Replay:
    """Every activity and every late CRM record in the order they reach the consumer."""
    world = dataset.world
    run = Replay(world_index(world, known_at=ACTIVITIES_FROM), policy)
    events: list[tuple[datetime, int, str, Contact | Deal | ActivityIngestedV1]] = []
    for contact in world.contacts:
        if world.contact_created_at[contact.id] > ACTIVITIES_FROM:
            events.append((world.contact_created_at[contact.id], 0, contact.id, ingested_contact(contact)))
    for deal in world.deals:
        if world.deal_known_at[deal.id] > ACTIVITIES_FROM:
            events.append((world.deal_known_at[deal.id], 0, deal.id, deal))
    for item in dataset.activities:
        events.append((item.activity.ingested_at, 1, item.activity.external_id, item.activity))
    for moment, _, _, event in sorted(events, key=lambda e: (e[0], e[1], e[2])):
        if isinstance(event, Contact):
            run.contact_arrives(event, moment)
        elif isinstance(event, Deal):
            run.deal_arrives(event, moment)
        else:
            run.activity_arrives(event, moment)
    return run


# --------------------------------------------------------------------------- the naive rule


def naive_rep(index: ReferenceIndex, activity: ActivityIngestedV1, deal: Deal | None) -> str | None:
    """The naive credit: the deal's owner, else the first participant who is a rep."""
    if deal is not None and deal.owner_rep_id is not None:
        return deal.owner_rep_id
    for participant in activity.participants:
        for identity in (participant.email, participant.phone):
            if identity is not None and index.rep_ids_by_identity.get(identity):
                return min(index.rep_ids_by_identity[identity])
    return None


def naive_deal(index: ReferenceIndex, activity: ActivityIngestedV1, as_of_activity_time: bool) -> Deal | None:
    """Newest open deal of the account whose domain is the first external participant's.

    ``as_of_activity_time`` reads "open" at the activity time (a live system) instead of
    in the current CRM state (a backfill or re-match).
    """
    for participant in activity.participants:
        domain = email_domain(participant.email) if participant.email else None
        if domain is None or domain == INTERNAL_DOMAIN:
            continue
        for account_id in sorted(index.account_ids_by_domain.get(domain, ())):
            open_deals = [
                deal
                for deal in (index.deals[d] for d in sorted(index.deal_ids_by_account[account_id]))
                if (_open_at(deal, activity.occurred_at) if as_of_activity_time else not deal.is_closed)
            ]
            if open_deals:
                return max(open_deals, key=lambda deal: (deal.created_at, deal.id))
        return None
    return None


def _open_at(deal: Deal, moment: datetime) -> bool:
    return deal.created_at <= moment and (deal.closed_at is None or moment <= deal.closed_at)


# --------------------------------------------------------------------------- scoring


class MissCause(StrEnum):
    """Why an activity's true deal was not credited (read on its final attribution)."""

    #: ``ambiguous`` whose primary is the true deal: right in the ``deal_id`` reading, not credited.
    TIE_PRIMARY_RIGHT = "tie:primary_right"
    #: ``ambiguous`` whose primary is another deal and the true one a secondary.
    TIE_TRUTH_SECONDARY = "tie:truth_secondary"
    #: ``ambiguous`` without the true deal among its deals.
    TIE_TRUTH_ABSENT = "tie:truth_absent"
    #: ``attributed`` to another deal: wrong in both readings.
    WRONG_DEAL = "wrong_deal"
    #: No deal given (``account_only``, ``unmatched``...) although the activity had one.
    NO_DEAL = "no_deal"
    #: A deal given for an activity about none.
    DEAL_WITHOUT_TRUTH = "deal_without_truth"


def miss_cause(truth: str | None, decided: CurrentAttribution) -> MissCause | None:
    """The cause of a miss in the credited reading, or ``None`` when the activity is right."""
    if truth is None:
        return MissCause.DEAL_WITHOUT_TRUTH if decided.deal_id is not None else None
    if decided.status is AttributionStatus.AMBIGUOUS:
        if decided.deal_id == truth:
            return MissCause.TIE_PRIMARY_RIGHT
        if truth in decided.secondary_deal_ids:
            return MissCause.TIE_TRUTH_SECONDARY
        return MissCause.TIE_TRUTH_ABSENT
    if decided.deal_id is None:
        return MissCause.NO_DEAL
    return None if decided.deal_id == truth else MissCause.WRONG_DEAL


class TieAnswer(StrEnum):
    """What ours answered on an activity the world's oracle calls tied."""

    #: ``ambiguous`` with the true deal as primary or secondary: the right answer for a tie.
    AMBIGUOUS_WITH_TRUTH = "ambiguous, true deal among primary and secondaries"
    #: ``ambiguous`` without the true deal.
    AMBIGUOUS_WITHOUT_TRUTH = "ambiguous, true deal absent"
    #: ``attributed`` to the true deal: a coin flip won.
    ASSERTED_TRUTH = "attributed to the true deal (a coin flip won)"
    #: ``attributed`` to another deal: one wrong deal asserted with confidence.
    ASSERTED_WRONG = "attributed to one wrong deal"
    #: No deal at all.
    NO_DEAL = "no deal"


def tie_answer(truth: str, decided: CurrentAttribution) -> TieAnswer:
    if decided.status is AttributionStatus.AMBIGUOUS:
        if truth in (decided.deal_id, *decided.secondary_deal_ids):
            return TieAnswer.AMBIGUOUS_WITH_TRUTH
        return TieAnswer.AMBIGUOUS_WITHOUT_TRUTH
    if decided.deal_id is None:
        return TieAnswer.NO_DEAL
    return TieAnswer.ASSERTED_TRUTH if decided.deal_id == truth else TieAnswer.ASSERTED_WRONG


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

    def line(self, label: str, width: int = 22) -> str:
        return (
            f"{label:<{width}} n={self.activities:>6}  deal precision {_percent(self.precision)}  "
            f"recall {_percent(self.recall)}  rep {_percent(self.rep_accuracy)}  "
            f"team {_percent(self.team_accuracy)}"
        )


@dataclass(frozen=True, slots=True)
class EvaluationReport:
    n_activities: int
    seed: int
    #: The deal each activity carries (``deal_id``, as the API returns it): the primary of an
    #: ``ambiguous`` activity counts as given.
    ours: Scorecard
    #: The deals metrics credits: only ``attributed`` activities count as given (an ambiguous
    #: activity feeds no deal rollup, see ``metrics.domain.definitions.LEVELS_BY_STATUS``).
    ours_credited: Scorecard
    #: Activities whose true deal was given or listed among the secondaries of a close call.
    surfaced: int
    #: The same rules under the ``unique_only`` ambiguity policy: no deal when it is a close call.
    ours_unique_only: Scorecard
    naive: Scorecard
    naive_live: Scorecard
    #: Per trap: ours (``deal_id`` reading), and the naive rule read at the event time (the
    #: fairer of the two readings).
    by_trap: Mapping[Trap, tuple[Scorecard, Scorecard]]
    #: Per trap: ours in the credited reading (only ``attributed`` activities give a deal).
    by_trap_credited: Mapping[Trap, Scorecard]
    #: Misses of the credited reading by trap and cause (``miss_cause``).
    misses: Mapping[tuple[Trap, MissCause], int]
    #: Late traps scored on the decision taken when the activity arrived, before the re-match.
    first_pass: Mapping[Trap, Scorecard]
    #: Re-decisions the late CRM records triggered (each may or may not change the result).
    rematched: int
    #: Misses of ours that are close calls: ``ambiguous`` with the true deal among the secondaries.
    close_call_misses: int
    statuses: Mapping[AttributionStatus, int]
    #: Both readings on the activities the world's oracle calls decidable (``ties``): no other
    #: deal the activity and the CRM cannot tell from the true one.
    decidable_credited: Scorecard = Scorecard()
    decidable: Scorecard = Scorecard()
    #: Misses of the credited reading on decidable activities, by trap and cause.
    decidable_misses: Mapping[tuple[Trap, MissCause], int] = field(default_factory=dict)
    #: What ours answered on the tied activities (``TieAnswer``).
    tie_answers: Mapping[TieAnswer, int] = field(default_factory=dict)

    def render(self) -> str:
        lines = [
            f"Attribution accuracy on {self.n_activities} synthetic activities (seed {self.seed})",
            "Replayed in arrival order through the consumer's path; scored after late CRM data arrived "
            "and its re-matches ran.",
            self.ours.line("ours (deal_id)"),
            self.ours_credited.line("ours (credited)"),
            self.ours_unique_only.line("ours (unique_only)"),
            self.naive.line("naive (current state)"),
            self.naive_live.line("naive (at event time)"),
            "",
            "Per trap, both readings of ours next to the naive rule read at the event time:",
            f"{'':<27} {'credited':^15}  {'deal_id':^15}",
            f"{'trap':<20} {'n':>6}  {'P':>7} {'R':>7}  {'P':>7} {'R':>7} {'rep':>8}  "
            f"{'naive P':>7} {'naive R':>7} {'naive rep':>9}",
        ]
        for trap, (ours, naive) in self.by_trap.items():
            credited = self.by_trap_credited[trap]
            lines.append(
                f"{trap.value:<20} {ours.activities:>6}  {_percent(credited.precision)} "
                f"{_percent(credited.recall)}  {_percent(ours.precision)} {_percent(ours.recall)} "
                f"{_percent(ours.rep_accuracy, 8)}  {_percent(naive.precision)} {_percent(naive.recall)} "
                f"{_percent(naive.rep_accuracy, 9)}"
            )
        lines += ["", *self._render_misses(), ""]
        lines += [
            *(card.line(f"{trap.value} first pass") for trap, card in self.first_pass.items()),
            f"re-decisions after late CRM data: {self.rematched}",
            f"true deal given or among the secondaries: {self.surfaced} of {self.ours.deal_truths}",
            f"misses that are close calls (true deal among the secondaries): {self.close_call_misses} "
            f"of {self.ours.deal_truths - self.ours.deal_correct}",
            "statuses: " + ", ".join(f"{s.value}={n}" for s, n in self.statuses.items()),
        ]
        return "\n".join([*lines, "", *self._render_decidable()])

    def _render_decidable(self) -> list[str]:
        """The figures on the activities the world's oracle calls decidable, and the tied ones."""
        tied = sum(self.tie_answers.values())
        return [
            "Decidable only: the world's oracle (ties.py) sets aside the ties, activities whose true deal "
            "it drew among deals that they and the CRM cannot tell apart:",
            self.decidable_credited.line("ours (credited), decidable only", 32),
            self.decidable.line("ours (deal_id), decidable only", 32),
            f"tied activities: {tied}",
            *(f"  {answer.value}: {self.tie_answers.get(answer, 0)}" for answer in TieAnswer),
            "",
            *self._render_misses(
                self.decidable_misses, "Misses of the credited reading on decidable activities"
            ),
        ]

    def _render_misses(
        self,
        misses: Mapping[tuple[Trap, MissCause], int] | None = None,
        title: str = "Misses of the credited reading",
    ) -> list[str]:
        """The credited reading's misses, one row per trap with any, one column per cause."""
        misses = self.misses if misses is None else misses
        causes = [c for c in MissCause if any(n for (_, cause), n in misses.items() if cause is c)]
        width = max((len(c.value) for c in causes), default=0)
        lines = [
            f"{title} by trap and cause:",
            f"{'trap':<20} " + " ".join(f"{c.value:>{width}}" for c in causes) + f" {'all':>6}",
        ]
        for trap in self.by_trap:
            row = [misses.get((trap, c), 0) for c in causes]
            if any(row):
                lines.append(
                    f"{trap.value:<20} " + " ".join(f"{n:>{width}}" for n in row) + f" {sum(row):>6}"
                )
        totals = [sum(n for (_, cause), n in misses.items() if cause is c) for c in causes]
        lines.append(f"{'all':<20} " + " ".join(f"{n:>{width}}" for n in totals) + f" {sum(totals):>6}")
        return lines


#: Traps whose CRM records arrive after the activities: their first pass is reported too.
LATE_TRAPS = (Trap.LATE_CRM, Trap.LATE_DEAL)


def evaluate(dataset: Dataset, seed: int, policy: TenantAttributionPolicy | None = None) -> EvaluationReport:
    """Replay the world through the consumer's path and score the final attributions."""
    policy = policy or TenantAttributionPolicy()
    ours_run = replay(dataset, policy)
    strict_run = replay(dataset, replace(policy, ambiguity_policy=AmbiguityPolicy.UNIQUE_ONLY))
    final = world_index(dataset.world)
    memberships = dataset.world.memberships
    ours = credited = strict = naive = naive_live = decidable = decidable_credited = Scorecard()
    decidable_misses: Counter[tuple[Trap, MissCause]] = Counter()
    tie_answers: Counter[TieAnswer] = Counter()
    surfaced = 0
    first_pass = {trap: Scorecard() for trap in LATE_TRAPS}
    by_trap: dict[Trap, tuple[Scorecard, Scorecard]] = {trap: (Scorecard(), Scorecard()) for trap in Trap}
    by_trap_credited: dict[Trap, Scorecard] = {trap: Scorecard() for trap in Trap}
    misses: Counter[tuple[Trap, MissCause]] = Counter()
    statuses: Counter[AttributionStatus] = Counter()
    close_calls = 0
    for item in dataset.activities:
        activity = item.activity
        decided = ours_run.current[activity.activity_id]
        statuses[decided.status] += 1
        close_calls += (
            decided.deal_id != item.true_deal_id and item.true_deal_id in decided.secondary_deal_ids
        )
        ours = ours.add(item, decided.deal_id, decided.rep_id, decided.team_id)
        asserted = decided.deal_id if decided.status is AttributionStatus.ATTRIBUTED else None
        credited = credited.add(item, asserted, decided.rep_id, decided.team_id)
        by_trap_credited[item.trap] = by_trap_credited[item.trap].add(
            item, asserted, decided.rep_id, decided.team_id
        )
        if (cause := miss_cause(item.true_deal_id, decided)) is not None:
            misses[(item.trap, cause)] += 1
        if item.decidable:
            decidable_credited = decidable_credited.add(item, asserted, decided.rep_id, decided.team_id)
            decidable = decidable.add(item, decided.deal_id, decided.rep_id, decided.team_id)
            if cause is not None:
                decidable_misses[(item.trap, cause)] += 1
        elif item.true_deal_id is not None:
            tie_answers[tie_answer(item.true_deal_id, decided)] += 1
        surfaced += item.true_deal_id is not None and item.true_deal_id in (
            decided.deal_id,
            *decided.secondary_deal_ids,
        )
        held = strict_run.current[activity.activity_id]
        strict = strict.add(item, held.deal_id, held.rep_id, held.team_id)
        current_deal = naive_deal(final, activity, as_of_activity_time=False)
        current_rep = naive_rep(final, activity, current_deal)
        current_team = team_at(current_rep, activity.occurred_at.date(), memberships)
        naive = naive.add(item, current_deal.id if current_deal else None, current_rep, current_team)
        live_deal = naive_deal(final, activity, as_of_activity_time=True)
        live_rep = naive_rep(final, activity, live_deal)
        live_team = team_at(live_rep, activity.occurred_at.date(), memberships)
        naive_live = naive_live.add(item, live_deal.id if live_deal else None, live_rep, live_team)
        trap_ours, trap_naive = by_trap[item.trap]
        by_trap[item.trap] = (
            trap_ours.add(item, decided.deal_id, decided.rep_id, decided.team_id),
            trap_naive.add(item, live_deal.id if live_deal else None, live_rep, live_team),
        )
        if item.trap in first_pass:
            early = ours_run.first[activity.activity_id]
            first_pass[item.trap] = first_pass[item.trap].add(
                item, early.deal_id, early.rep_id, early.team_id
            )
    return EvaluationReport(
        n_activities=len(dataset.activities),
        seed=seed,
        ours=ours,
        ours_credited=credited,
        surfaced=surfaced,
        ours_unique_only=strict,
        naive=naive,
        naive_live=naive_live,
        by_trap={trap: cards for trap, cards in by_trap.items() if cards[0].activities},
        by_trap_credited={trap: card for trap, card in by_trap_credited.items() if card.activities},
        misses=dict(misses),
        first_pass=first_pass,
        rematched=ours_run.rematched,
        close_call_misses=close_calls,
        statuses=dict(sorted(statuses.items())),
        decidable_credited=decidable_credited,
        decidable=decidable,
        decidable_misses=dict(decidable_misses),
        tie_answers=dict(tie_answers),
    )


def run_evaluation(
    n_activities: int, seed: int, policy: TenantAttributionPolicy | None = None
) -> EvaluationReport:
    """Generate ``n_activities`` with ``seed`` and score ours against the naive rule."""
    return evaluate(generate_dataset(n_activities, seed), seed, policy)
