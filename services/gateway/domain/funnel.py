"""The sales funnel from summed counters: pure arithmetic, no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: The funnel's steps, top to bottom. ``opportunities_created`` are CRM deals the rep (team)
#: owns created in the range.
FUNNEL_STEPS = (
    "dials",
    "connects",
    "conversations",
    "meetings_booked",
    "meetings_held",
    "opportunities_created",
    "deals_won",
)

#: Effort per result (name, numerator, denominator): "dials per deal won" = dials / deals_won.
EFFORT_RATIOS = (
    ("dials_per_connect", "dials", "connects"),
    ("dials_per_conversation", "dials", "conversations"),
    ("dials_per_meeting_booked", "dials", "meetings_booked"),
    ("dials_per_deal_won", "dials", "deals_won"),
    ("emails_per_buyer_reply", "emails_sent", "buyer_replies"),
    ("meetings_held_per_deal_won", "meetings_held", "deals_won"),
    ("meetings_held_per_opportunity", "meetings_held", "opportunities_created"),
    ("activities_per_deal_won", "activities", "deals_won"),
)


def ratio(numerator: int, denominator: int) -> float | None:
    """``numerator / denominator`` to 4 places, or None on a zero denominator."""
    return None if denominator == 0 else round(numerator / denominator, 4)


def funnel_steps(counts: Mapping[str, int]) -> tuple[list[dict[str, Any]], float | None]:
    """Each step with its ratio to the previous step, and the dials needed per deal won."""
    steps: list[dict[str, Any]] = []
    previous: int | None = None
    for step in FUNNEL_STEPS:
        count = counts.get(step, 0)
        steps.append(
            {
                "step": step,
                "count": count,
                "ratio_to_previous": None if previous is None else ratio(count, previous),
            }
        )
        previous = count
    return steps, ratio(counts.get("dials", 0), counts.get("deals_won", 0))


def effort_ratios(counts: Mapping[str, int]) -> dict[str, float | None]:
    """Every effort ratio of ``EFFORT_RATIOS``; None on a zero denominator."""
    return {name: ratio(counts.get(top, 0), counts.get(bottom, 0)) for name, top, bottom in EFFORT_RATIOS}
