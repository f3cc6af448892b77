"""A second attribution and metrics instance joins and later leaves mid-stream (two rebalances)."""

from __future__ import annotations

import asyncio
import signal
from datetime import UTC, datetime

from .harness import CONSUMERS, FaultEngines, LoadStats, Pipeline, plan_stream, reference

STREAM = 50_000


async def test_instances_joining_and_leaving_mid_stream_keep_totals_exact(
    engines_under_fault: FaultEngines,
) -> None:
    pipeline = Pipeline(engines_under_fault, "rebalance")
    await pipeline.prepare()
    try:
        await pipeline.start_all()
        now = datetime.now(UTC)
        await pipeline.sync_crm(now)
        planned = plan_stream(STREAM, now.date(), pipeline.run_id)
        expected = reference(planned)
        stats = LoadStats()
        leave_codes: list[int] = []

        async def join() -> None:
            joined = [pipeline.add(name) for name in CONSUMERS]
            for process in joined:
                await process.wait_ready()

        async def leave() -> None:
            for name in CONSUMERS:
                second = pipeline.services[name][1]
                second.signal(signal.SIGTERM)
                leave_codes.append(await asyncio.to_thread(second.reap, 30))

        await pipeline.send(planned, stats, {0.3: join, 0.7: leave})
        await pipeline.settle(STREAM)
        record = await pipeline.record("2nd consumer joins+leaves", stats, expected)
        await pipeline.assert_exact(expected, STREAM)
        assert leave_codes == [0, 0]
        pipeline.assert_no_server_errors(stats)
        assert (record.accepted, record.counted, record.lost, record.duplicated) == (STREAM, STREAM, 0, 0)
    finally:
        pipeline.stop_all()
