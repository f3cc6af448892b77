"""The explanation's signal rows skip ``round`` for values of exactly 0 and 1: the same rows."""

from __future__ import annotations

import random

import orjson

from services.attribution.domain.matching import SIGNAL_WEIGHTS, Signal, _signal_rows


def _rounded(values: dict[Signal, float]) -> list[dict[str, object]]:
    """The rows as every value was rounded before."""
    return [
        {
            "signal": signal.value,
            "weight": SIGNAL_WEIGHTS[signal],
            "value": round(values[signal], 4),
            "contribution": round(SIGNAL_WEIGHTS[signal] * values[signal], 4),
        }
        for signal in Signal
    ]


def test_the_rows_are_the_rounded_rows_to_the_bit() -> None:
    rng = random.Random(3)
    special = [0.0, -0.0, 1.0, 0, 1, 0.5, 1 / 3, 0.99995, 0.00005, 0.8982123, 1e-9]
    compared = 0
    for _ in range(2_000):
        values = {s: rng.choice(special) if rng.random() < 0.7 else rng.random() for s in Signal}
        # As JSON, so that -0.0 against 0.0 and 1 against 1.0 differ.
        assert orjson.dumps(_signal_rows(values)) == orjson.dumps(_rounded(values))
        compared += 1
    assert compared == 2_000
