"""Scoring the production attribution path on a labelled world, next to the naive rule.

Every activity goes through what the consumer runs: ``resolve_references``, the pure
``snapshot_for`` over a ``ReferenceIndex`` (filled here from the generated world instead of
PostgreSQL), ``attribute_activity``, and ``next_version``; threads see the earlier decisions
through ``ReferenceIndex.remember`` as in a consumer batch.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from libs.common.contracts.activities import ActivityIngestedV1
from libs.common.contracts.attribution import AttributionStatus
from services.attribution.domain.decision import AttributionDecision
from services.attribution.domain.matching import attribute_activity, team_at
from services.attribution.domain.personal_domains import email_domain
from services.attribution.domain.reference import AmbiguityPolicy, Deal, TenantAttributionPolicy
from services.attribution.domain.reference_index import (
    ReferenceIndex,
    ThreadMember,
    resolve_references,
    snapshot_for,
)
from spm.evaluation.attribution.world import (
    ACTIVITIES_FROM,
    INTERNAL_DOMAIN,
    CrmWorld,
    Dataset,
    LabelledActivity,
    Trap,
    generate_dataset,
)


def world_index(world: CrmWorld, known_at: datetime | None = None) -> ReferenceIndex:
    """The world as a reference index; with ``known_at``, contacts created later are absent."""
    index = ReferenceIndex(internal_domains=frozenset({INTERNAL_DOMAIN}))
    for rep in world.reps:
        index.put_rep(rep)
    for membership in world.memberships:
        index.add_membership(membership)
    for account in world.accounts:
        index.put_account(account)
    for contact in world.contacts:
        if known_at is None or world.contact_created_at[contact.id] <= known_at:
            index.put_contact(contact)
    for deal in world.deals:
        index.put_deal(deal)
    return index


def decide(
    activity: ActivityIngestedV1, index: ReferenceIndex, policy: TenantAttributionPolicy
) -> AttributionDecision:
    """The consumer's path for one activity; the decision is remembered for its thread."""
    resolved = resolve_references(activity, index)
    decision = attribute_activity(resolved, snapshot_for(resolved, index), policy)
    if activity.thread_id is not None:
        index.remember(
            activity.thread_id,
            ThreadMember(
                activity.activity_id,
                activity.occurred_at,
                1,
                decision.status.value,
                decision.rep_id,
                decision.account_id,
                decision.deal_id,
                decision.secondary_deal_ids,
                decision.confidence,
            ),
        )
    return decision


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


def evaluate(dataset: Dataset, seed: int, policy: TenantAttributionPolicy | None = None) -> EvaluationReport:
    """Attribute every activity in time order (threads see their earlier decisions) and score."""
    policy = policy or TenantAttributionPolicy()
    index = world_index(dataset.world)
    strict_index = world_index(dataset.world)
    # Late contacts are each created after the one activity that introduces them: without them
    # the index is the CRM as the first pass saw it.
    first_pass_index = world_index(dataset.world, known_at=ACTIVITIES_FROM)
    memberships = dataset.world.memberships
    strict_policy = replace(policy, ambiguity_policy=AmbiguityPolicy.UNIQUE_ONLY)
    ours = strict = naive = naive_live = first_pass = Scorecard()
    by_trap: dict[Trap, tuple[Scorecard, Scorecard]] = {trap: (Scorecard(), Scorecard()) for trap in Trap}
    statuses: Counter[AttributionStatus] = Counter()
    ordered: Sequence[LabelledActivity] = sorted(
        dataset.activities, key=lambda item: (item.activity.occurred_at, item.activity.external_id)
    )
    for item in ordered:
        activity = item.activity
        decision = decide(activity, index, policy)
        statuses[decision.status] += 1
        strict_decision = decide(activity, strict_index, strict_policy)
        strict = strict.add(item, strict_decision.deal_id, strict_decision.rep_id, strict_decision.team_id)
        ours = ours.add(item, decision.deal_id, decision.rep_id, decision.team_id)
        current_deal = naive_deal(index, activity, as_of_activity_time=False)
        current_rep = naive_rep(index, activity, current_deal)
        current_team = team_at(current_rep, activity.occurred_at.date(), memberships)
        naive = naive.add(item, current_deal.id if current_deal else None, current_rep, current_team)
        live_deal = naive_deal(index, activity, as_of_activity_time=True)
        live_rep = naive_rep(index, activity, live_deal)
        live_team = team_at(live_rep, activity.occurred_at.date(), memberships)
        naive_live = naive_live.add(item, live_deal.id if live_deal else None, live_rep, live_team)
        trap_ours, trap_naive = by_trap[item.trap]
        by_trap[item.trap] = (
            trap_ours.add(item, decision.deal_id, decision.rep_id, decision.team_id),
            trap_naive.add(item, live_deal.id if live_deal else None, live_rep, live_team),
        )
        if item.trap is Trap.LATE_CRM:
            early = attribute_activity(activity, snapshot_for(activity, first_pass_index), policy)
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
