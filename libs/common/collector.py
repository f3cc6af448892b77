"""The cyclic garbage collector of a service process: when it runs, and when it waits.

Nearly everything a service allocates is freed by reference counting. What the collector costs is
its walks over live objects: the startup heap (frozen once the app has started), and a batch's own
objects, which stay alive until the batch is done and were walked by every young collection the
batch's allocations triggered, then again in the older generations they were promoted to.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

#: Collection thresholds of the cyclic garbage collector for a service process (CPython's
#: defaults are 700, 10, 10). Nearly everything a batch allocates is freed by reference
#: counting; with the defaults a consumer handling a thousand events ran a full (oldest
#: generation) collection every few hundred events, each walking every object of the heap:
#: 30-40 % of the attribution process's CPU in a 20,000-activity pipeline run. A young
#: generation of 20,000 allocations (a few megabytes at most) lets a batch's temporaries die
#: before they are scanned. Peak RSS was unchanged (bench: memory).
GC_THRESHOLDS = (20_000, 50, 20)


def tune_garbage_collector() -> None:
    """Move everything alive once the app has started (modules, schemas, the app's lifespan
    resources) out of the cyclic garbage collector's reach, and collect less often.

    The collector's oldest generation otherwise walks that whole heap each time it runs: in
    ingest 24 of 66 us of CPU per batched event went to collections, 4-8 us after the freeze.
    Frozen objects are still freed by reference counting; only a reference cycle among them
    would outlive its use. Cyclic garbage made later is still collected, in fewer, larger passes.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


class _Pauses:
    """How many pauses are open (consumers of one process share its collector), and whether the
    collector was enabled when the first one opened."""

    open = 0
    restore = False


@contextmanager
def collector_paused() -> Iterator[None]:
    """No automatic collection inside: for one step of a batch (decoding it, one call of its
    handler), whose objects are alive until the step ends.

    Young collections during a step walk the batch's messages, rows and decisions, all still
    alive, again and again (6-8 % of attribution's and metrics' CPU with ``GC_THRESHOLDS``);
    after it, they are freed by reference counting and the next collection finds the few that
    outlived it. Cyclic garbage made during the step waits until the step ends, so a step must
    be bounded (a retry's back-off sleeps outside it). Nested and concurrent pauses (two
    consumers in one process) re-enable the collector when the last one closes, and only when
    it was enabled before the first.
    """
    if _Pauses.open == 0:
        _Pauses.restore = gc.isenabled()
        gc.disable()
    _Pauses.open += 1
    try:
        yield
    finally:
        _Pauses.open -= 1
        if _Pauses.open == 0 and _Pauses.restore:
            gc.enable()
