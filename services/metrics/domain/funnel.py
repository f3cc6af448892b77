"""The activity funnel: dials -> connects -> conversations -> meetings -> deals won.

Every ratio is None when its denominator is zero: a rep with no dials has no connect
rate, which is not the same as a connect rate of 0, and never infinity.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.metrics.domain.definitions import Counter, MetricCounts

FUNNEL_STEPS: tuple[Counter, ...] = (
    Counter.DIALS,
    Counter.CONNECTS,
    Counter.CONVERSATIONS,
    Counter.MEETINGS_BOOKED,
    Counter.MEETINGS_HELD,
    Counter.DEALS_WON,
)

#: Effort per result: "dials per deal won" = dials / deals_won.
EFFORT_RATIOS: tuple[tuple[str, Counter, Counter], ...] = (
    ("dials_per_connect", Counter.DIALS, Counter.CONNECTS),
    ("dials_per_conversation", Counter.DIALS, Counter.CONVERSATIONS),
    ("dials_per_meeting_booked", Counter.DIALS, Counter.MEETINGS_BOOKED),
    ("dials_per_deal_won", Counter.DIALS, Counter.DEALS_WON),
    ("emails_per_buyer_reply", Counter.EMAILS_SENT, Counter.BUYER_REPLIES),
    ("meetings_held_per_deal_won", Counter.MEETINGS_HELD, Counter.DEALS_WON),
)


def ratio(numerator: int, denominator: int) -> float | None:
    return None if denominator == 0 else numerator / denominator


@dataclass(frozen=True, slots=True)
class FunnelStep:
    counter: Counter
    count: int
    #: count / previous step's count; None for the first step or after a zero step.
    from_previous: float | None
    #: count / dials.
    from_first: float | None


@dataclass(frozen=True, slots=True)
class Funnel:
    steps: tuple[FunnelStep, ...]
    effort: dict[str, float | None]


def funnel_of(counts: MetricCounts) -> Funnel:
    """Steps and ratios of one rollup cell or period total.

    Steps are not strict subsets everywhere: a meeting may be booked by email, so
    meetings_booked / conversations can exceed 1. The ratios report what happened.
    """
    steps: list[FunnelStep] = []
    first = counts[FUNNEL_STEPS[0]]
    for index, counter in enumerate(FUNNEL_STEPS):
        count = counts[counter]
        previous = None if index == 0 else ratio(count, counts[FUNNEL_STEPS[index - 1]])
        steps.append(FunnelStep(counter, count, previous, ratio(count, first)))
    effort = {
        name: ratio(counts[numerator], counts[denominator]) for name, numerator, denominator in EFFORT_RATIOS
    }
    return Funnel(tuple(steps), effort)
