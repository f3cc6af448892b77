"""Services killed with SIGKILL or stopped with SIGTERM mid-stream: nothing lost, nothing counted twice."""

from __future__ import annotations

import asyncio
import signal
from datetime import UTC, datetime

import pytest

from .harness import Fault, FaultEngines, LoadStats, Pipeline, plan_stream, reference

STREAM = 50_000


@pytest.mark.parametrize("service", ["ingest", "attribution", "metrics"])
async def test_service_killed_three_times_mid_stream_loses_and_doubles_nothing(
    engines_under_fault: FaultEngines, service: str
) -> None:
    pipeline = Pipeline(engines_under_fault, f"kill-{service}")
    await pipeline.prepare()
    try:
        await pipeline.start_all()
        now = datetime.now(UTC)
        await pipeline.sync_crm(now)
        planned = plan_stream(STREAM, now.date(), pipeline.run_id)
        expected = reference(planned)
        stats = LoadStats()

        async def kill() -> None:
            await pipeline.kill9(service)

        # The load client resends every batch that got no 2xx (ingest dies mid-request).
        await pipeline.send(planned, stats, {0.2: kill, 0.5: kill, 0.8: kill})
        await pipeline.settle(STREAM)
        record = await pipeline.record(f"kill -9 {service} x3", stats, expected)
        await pipeline.assert_exact(expected, STREAM)
        assert (record.accepted, record.counted, record.lost, record.duplicated) == (STREAM, STREAM, 0, 0)
        assert pipeline.one(service).exit_codes == [-signal.SIGKILL] * 3
        assert stats.server_errors == {}
    finally:
        codes = pipeline.stop_all()
    assert all(code in (0, -signal.SIGKILL) for c in codes.values() for code in c), codes


async def test_sigterm_drains_commits_and_exits_zero_within_the_grace_period(
    engines_under_fault: FaultEngines,
) -> None:
    # Commits are due only once a minute here, so committed offsets can only reach the end
    # of the topics through the commit forced by the drain on SIGTERM.
    pipeline = Pipeline(engines_under_fault, "sigterm", {"CONSUMER_COMMIT_INTERVAL_MS": "60000"})
    await pipeline.prepare()
    try:
        await pipeline.start_all()
        now = datetime.now(UTC)
        await pipeline.sync_crm(now)
        planned = plan_stream(10_000, now.date(), pipeline.run_id)
        expected = reference(planned)
        stats = LoadStats()
        codes: dict[str, int] = {}

        def term(name: str) -> Fault:
            async def fault() -> None:
                process = pipeline.one(name)
                process.signal(signal.SIGTERM)
                # uvicorn's grace period is 25 s; the consumer drain is bounded below it.
                codes[name] = await asyncio.to_thread(process.reap, 30)
                await pipeline.restart(process)

            return fault

        await pipeline.send(
            planned,
            stats,
            {0.3: term("ingest"), 0.5: term("attribution"), 0.7: term("metrics")},
        )
        assert codes == {"ingest": 0, "attribution": 0, "metrics": 0}
        counted = await pipeline.wait_for(
            "SELECT sum(activities) FROM metric_rollups WHERE level = 'rep' AND granularity = 'day'",
            len(planned),
            150,
        )
        assert counted == len(planned)
        lag_before = await pipeline.committed_lag()
        final = pipeline.stop_all()
        assert final == {"ingest": [0, 0], "attribution": [0, 0], "metrics": [0, 0]}
        # Nothing was left uncommitted by the drain.
        assert await pipeline.committed_lag() == {"attribution": 0, "metrics": 0}
        record = await pipeline.record("SIGTERM each service", stats, expected)
        await pipeline.assert_exact(expected, len(planned))
        assert (record.lost, record.duplicated) == (0, 0)
        # Proves the 60 s commit interval held: something was pending until the drain.
        assert lag_before["metrics"] > 0
    finally:
        pipeline.stop_all()
