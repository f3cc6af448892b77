"""``observe_all`` records what ``observe`` records, amount by amount, to the last bit of the sum."""

from __future__ import annotations

import math
import random

import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from libs.common.telemetry import observe_all

BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0)


def _exposition(registry: CollectorRegistry) -> list[str]:
    # The creation time is the histogram's own clock reading.
    return [line for line in generate_latest(registry).decode().splitlines() if "_created" not in line]


def _pair(labels: tuple[str, ...] = ()) -> tuple[CollectorRegistry, Histogram, CollectorRegistry, Histogram]:
    one, other = CollectorRegistry(), CollectorRegistry()
    return (
        one,
        Histogram("h", "h", labels, buckets=BUCKETS, registry=one),
        other,
        Histogram("h", "h", labels, buckets=BUCKETS, registry=other),
    )


def test_every_bucket_and_the_sum_are_observes() -> None:
    draw = random.Random(7)
    amounts = [draw.uniform(-1, 8) for _ in range(2_000)] + [0.1 / 3 * k for k in range(40)]
    amounts += [*BUCKETS, 0.0, -0.0, -5.0, 1e6, 0.1 + 0.2, 5.000000000000001]
    one, observed, other, batched = _pair()
    for amount in amounts:
        observed.observe(amount)
    observe_all(batched, amounts[:1_000])
    observe_all(batched, amounts[1_000:])
    assert _exposition(one) == _exposition(other)
    assert any('le="+Inf"' in line for line in _exposition(one))


def test_a_nan_counts_in_no_bucket_an_infinity_in_the_last_and_nothing_is_a_no_op() -> None:
    one, observed, other, batched = _pair()
    for amount in (math.nan, 0.3, math.inf):
        observed.observe(amount)
    observe_all(batched, [math.nan, 0.3, math.inf])
    observe_all(batched, [])
    assert _exposition(one) == _exposition(other)


def test_a_labelled_histogram_is_refused_as_observe_refuses_it() -> None:
    _, observed, _, batched = _pair(("service",))
    with pytest.raises(ValueError, match="missing label values") as by_observe:
        observed.observe(1.0)
    with pytest.raises(ValueError, match="missing label values") as by_batch:
        observe_all(batched, [1.0])
    assert str(by_batch.value) == str(by_observe.value)
    _, observed, other, batched = _pair(("service",))
    observe_all(batched.labels("metrics"), [0.2, 3.0])
    assert 'h_bucket{le="0.25",service="metrics"} 1.0' in _exposition(other)
