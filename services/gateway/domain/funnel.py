"""The sales funnel from summed counters: pure arithmetic, no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: The funnel's steps, top to bottom.
FUNNEL_STEPS = ("dials", "connects", "conversations", "meetings_booked", "meetings_held", "deals_won")


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
