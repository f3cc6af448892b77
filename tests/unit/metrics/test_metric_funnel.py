from __future__ import annotations

from services.metrics.domain.definitions import Counter, MetricCounts
from services.metrics.domain.funnel import FunnelStep, funnel_of


def test_funnel_steps_and_ratios() -> None:
    counts = MetricCounts(
        dials=200,
        connects=40,
        conversations=20,
        meetings_booked=10,
        meetings_held=8,
        deals_won=2,
        emails_sent=90,
    )

    funnel = funnel_of(counts)

    assert funnel.steps == (
        FunnelStep(Counter.DIALS, 200, None, 1.0),
        FunnelStep(Counter.CONNECTS, 40, 0.2, 0.2),
        FunnelStep(Counter.CONVERSATIONS, 20, 0.5, 0.1),
        FunnelStep(Counter.MEETINGS_BOOKED, 10, 0.5, 0.05),
        FunnelStep(Counter.MEETINGS_HELD, 8, 0.8, 0.04),
        FunnelStep(Counter.DEALS_WON, 2, 0.25, 0.01),
    )
    assert funnel.effort == {
        "dials_per_connect": 5.0,
        "dials_per_conversation": 10.0,
        "dials_per_meeting_booked": 20.0,
        "dials_per_deal_won": 100.0,
        "emails_per_buyer_reply": None,
        "meetings_held_per_deal_won": 4.0,
    }


def test_empty_funnel_has_no_ratios_rather_than_zeros_or_infinity() -> None:
    funnel = funnel_of(MetricCounts())

    assert [(step.count, step.from_previous, step.from_first) for step in funnel.steps] == [
        (0, None, None)
    ] * 6
    assert set(funnel.effort.values()) == {None}


def test_a_zero_step_stops_the_next_ratio_only() -> None:
    counts = MetricCounts(dials=10, connects=0, conversations=0, meetings_booked=2, meetings_held=1)

    funnel = funnel_of(counts)

    assert [step.from_previous for step in funnel.steps] == [None, 0.0, None, None, 0.5, 0.0]
    assert funnel.effort["dials_per_meeting_booked"] == 5.0
    assert funnel.effort["dials_per_deal_won"] is None


def test_meetings_booked_by_email_can_exceed_conversations() -> None:
    funnel = funnel_of(MetricCounts(dials=4, connects=2, conversations=1, meetings_booked=3))

    assert funnel.steps[3].from_previous == 3.0
