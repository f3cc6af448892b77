"""A second attribution and metrics instance joins and later leaves mid-stream (two rebalances)."""

from __future__ import annotations

import asyncio
import signal

from .harness import CONSUMERS, COUNTED, FaultEngines, Pipeline

#: The consumers trail ingest by thousands of activities (measured: 6,000 counted of 15,000 when
#: the second instances were ready, 8,000 when they left), so both rebalances land mid-stream.
STREAM = 15_000


async def test_instances_joining_and_leaving_mid_stream_keep_totals_exact(
    engines_under_fault: FaultEngines,
) -> None:
    pipeline = Pipeline(engines_under_fault, "rebalance")
    await pipeline.prepare()
    try:
        stream = await pipeline.begin_stream(STREAM)
        leave_codes: list[int] = []
        counted_when_leaving: list[int] = []
        joined_ready = asyncio.Event()

        async def join() -> None:
            joined = [pipeline.add(name) for name in CONSUMERS]
            for process in joined:
                await process.wait_ready()
            joined_ready.set()

        async def leave() -> None:
            # The faults run beside the posting: when ingest accepts the stream faster than the
            # joiners start, 0.7 comes before they are ready. They leave once they have joined
            # (the consumers are still working through the stream then).
            await joined_ready.wait()
            counted_when_leaving.append(await pipeline.scalar(COUNTED))
            for name in CONSUMERS:
                second = pipeline.services[name][1]
                second.signal(signal.SIGTERM)
                leave_codes.append(await asyncio.to_thread(second.reap, 30))

        await pipeline.send(stream.planned, stream.stats, {0.3: join, 0.7: leave})
        await pipeline.settle(STREAM)
        await pipeline.assert_stream_exact("2nd consumer joins+leaves", stream)
        assert leave_codes == [0, 0]
        # Both rebalances began mid-stream: the second instances were up, and left, while part of
        # the stream was still to be counted (else the stream is too short to test them).
        assert counted_when_leaving[0] < STREAM, counted_when_leaving
        pipeline.assert_no_server_errors(stream.stats)
    finally:
        pipeline.stop_all()
