"""Prometheus instruments shared by every service (plumbing only; business figures live in PostgreSQL).

Labels never carry rep, team, deal, tenant-user or event ids.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter as Occurrences
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from time import perf_counter
from typing import Any

from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.values import MutexValue

HTTP_REQUESTS = Counter(
    "spm_http_requests_total",
    "HTTP requests answered",
    ["service", "method", "route", "status"],
)
HTTP_DURATION = Histogram(
    "spm_http_request_duration_seconds",
    "HTTP request latency",
    ["service", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
CONSUMER_MESSAGES = Counter(
    "spm_consumer_messages_total",
    "Messages handled by a consumer, by outcome (processed, dlq, retried)",
    ["service", "topic", "outcome"],
)
CONSUMER_LAG = Gauge(
    "spm_consumer_lag_messages",
    "Messages between the consumer position and the partition high watermark",
    ["service", "topic", "partition"],
)
CONSUMER_OLDEST_AGE = Gauge(
    "spm_consumer_oldest_unprocessed_age_seconds",
    "Age (from its Kafka timestamp) of the oldest message of the partition not processed yet; 0 when caught up",
    ["service", "topic", "partition"],
)
CONSUMER_RETRYING_SECONDS = Gauge(
    "spm_consumer_retrying_seconds",
    "How long the consumer has been retrying a transient failure; 0 when it is not failing",
    ["service"],
)
CONSUMER_ISOLATION_CALLS = Counter(
    "spm_consumer_isolation_calls_total",
    "Extra handler calls made to isolate poison messages by splitting a failed batch",
    ["service"],
)
CONSUMER_BATCH_SECONDS = Histogram(
    "spm_consumer_batch_seconds",
    "Time to process one batch, side effects included",
    ["service"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
CONSUMER_PHASE_SECONDS = Histogram(
    "spm_consumer_phase_seconds",
    "Where a consumer's wall time goes, per batch: waiting for the fetch (fetch), decoding (decode), "
    "the handler call (handler) and, inside it, PostgreSQL statements' round trips (statements), "
    "COMMIT (commit) and awaiting the broker's acknowledgements (publish); offset commits (offsets)",
    ["service", "phase"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
CONSUMER_ROUND_TRIPS = Histogram(
    "spm_consumer_round_trips",
    "PostgreSQL statements executed per batch (each a round trip), COMMIT excluded",
    ["service"],
    buckets=(1, 2, 5, 10, 15, 20, 25, 30, 40, 50, 75, 100, 250, 1000),
)
DLQ_MESSAGES = Counter(
    "spm_dlq_messages_total",
    "Messages sent to a dead-letter topic",
    ["service", "topic"],
)
READY = Gauge("spm_ready", "1 when the service's dependencies are reachable", ["service"])


def observe_all(histogram: Histogram, amounts: Sequence[float]) -> None:
    """``histogram.observe(amount)`` for each amount, in order, with the buckets counted first.

    ``observe`` walks the bounds in Python for every amount (11,000 instructions an amount past
    the last bound): here each amount's bucket is found by ``bisect`` and each bucket reached is
    incremented once by its count. The sum still takes each amount in turn, so its float is the
    one ``observe`` gives; a NaN reaches no bucket, as with ``observe``. A histogram without
    these internals (another ``prometheus_client``) is fed by ``observe``.
    """
    bounds = getattr(histogram, "_upper_bounds", None)
    buckets = getattr(histogram, "_buckets", None)
    total = getattr(histogram, "_sum", None)
    if not (type(bounds) is list and type(buckets) is list and len(bounds) == len(buckets) and total):
        for amount in amounts:
            histogram.observe(amount)
        return
    histogram._raise_if_not_observable()  # type: ignore[no-untyped-call]
    _add_in_turn(total, amounts)
    counts = [0] * len(bounds)
    last = len(bounds)
    # Each distinct amount's bucket once (a batch's ages repeat: its versions share a request).
    for amount, times in Occurrences(amounts).items():
        index = bisect_left(bounds, amount)
        if index < last and amount <= bounds[index]:
            counts[index] += times
    for bucket, count in zip(buckets, counts, strict=True):
        if count:
            bucket.inc(count)


def _add_in_turn(total: Any, amounts: Sequence[float]) -> None:
    """``total.inc(amount)`` for each amount in turn: under the value's lock once, where ``inc``
    took it per amount (a Python-level call each); the same additions in the same order."""
    if type(total) is not MutexValue:
        for amount in amounts:
            total.inc(amount)
        return
    with total._lock:
        value = total._value
        for amount in amounts:
            value += amount
        total._value = value


class BatchTally:
    """Seconds and counts of what one batch waited on, by phase (``statements``, ``commit``,
    ``publish``): set by the consumer runner around each handler call (:func:`tallying`), added
    to by the engine's statement events and the handlers, read back once per batch."""

    __slots__ = ("counts", "seconds")

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.counts: dict[str, int] = {}

    def add(self, phase: str, seconds: float, count: int = 1) -> None:
        self.seconds[phase] = self.seconds.get(phase, 0.0) + seconds
        self.counts[phase] = self.counts.get(phase, 0) + count


#: The tally of the batch the current task handles; None outside a consumer's handler call.
_TALLY: ContextVar[BatchTally | None] = ContextVar("spm_batch_tally", default=None)


@contextmanager
def tallying() -> Iterator[BatchTally]:
    """A fresh :class:`BatchTally` for the code run inside (this task and those it starts)."""
    tally = BatchTally()
    token = _TALLY.set(tally)
    try:
        yield tally
    finally:
        _TALLY.reset(token)


def current_tally() -> BatchTally | None:
    """The tally of the batch the current task handles, None outside a consumer's handler call."""
    return _TALLY.get()


def tally(phase: str, seconds: float) -> None:
    """Add ``seconds`` of ``phase`` to the current batch's tally, if any (nothing outside one)."""
    current = _TALLY.get()
    if current is not None:
        current.add(phase, seconds)


@contextmanager
def timed(phase: str) -> Iterator[None]:
    """The time of the block added to the current batch's tally as ``phase``."""
    started = perf_counter()
    try:
        yield
    finally:
        tally(phase, perf_counter() - started)
