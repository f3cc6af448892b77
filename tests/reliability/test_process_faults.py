"""Services killed with SIGKILL or stopped with SIGTERM mid-stream: nothing lost, nothing counted twice."""

from __future__ import annotations

import asyncio
import signal

from .harness import COUNTED, Fault, FaultEngines, Pipeline

#: The consumers trail ingest by 1,000 to 11,000 activities at every kill and SIGTERM (measured),
#: so each lands while they work, as at 50,000, in a third of the time.
STREAM = 15_000
#: Twenty batches: the nine kill milestones below fall on nine different batches (with 15 of
#: 1,000, 54 % and 58 % would both fire at the tenth and kill attribution and metrics together).
KILL_BATCH = 750


#: Each service is killed at about 20 %, 50 % and 80 % of the stream, a little apart, so every
#: kill lands while the other two run (a restart can still overlap the next service's kill).
KILLS = {
    "ingest": (0.20, 0.50, 0.80),
    "attribution": (0.24, 0.54, 0.84),
    "metrics": (0.28, 0.58, 0.88),
}


async def test_each_service_killed_three_times_mid_stream_loses_and_doubles_nothing(
    engines_under_fault: FaultEngines,
) -> None:
    # One stream carries all nine kills: every service's own proof (its exit codes, the
    # resent batches, exact totals) holds as in a stream per service, for a third of the CPU.
    pipeline = Pipeline(engines_under_fault, "kill")
    await pipeline.prepare()
    try:
        stream = await pipeline.begin_stream(STREAM)

        def kill(service: str) -> Fault:
            async def fault() -> None:
                await pipeline.kill9(service)

            return fault

        milestones = {at: kill(service) for service, ats in KILLS.items() for at in ats}
        # The load client resends every batch that got no 2xx (ingest dies mid-request).
        await pipeline.send(stream.planned, stream.stats, milestones, batch_size=KILL_BATCH)
        await pipeline.settle(STREAM)
        await pipeline.assert_stream_exact("kill -9 each service x3", stream)
        for service in KILLS:
            assert pipeline.one(service).exit_codes == [-signal.SIGKILL] * 3, service
        pipeline.assert_no_server_errors(stream.stats)
    finally:
        codes = pipeline.stop_all()
    assert all(code in (0, -signal.SIGKILL) for c in codes.values() for code in c), codes


async def test_sigterm_drains_commits_and_exits_zero_within_the_grace_period(
    engines_under_fault: FaultEngines,
) -> None:
    # Commits are never due on time here (every 10 minutes), so committed offsets can only
    # reach the end of the topics through the commit forced by the drain on SIGTERM.
    pipeline = Pipeline(engines_under_fault, "sigterm", {"CONSUMER_COMMIT_INTERVAL_MS": "600000"})
    await pipeline.prepare()
    try:
        stream = await pipeline.begin_stream(STREAM)
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
            stream.planned,
            stream.stats,
            {0.3: term("ingest"), 0.5: term("attribution"), 0.7: term("metrics")},
        )
        assert codes == {"ingest": 0, "attribution": 0, "metrics": 0}
        counted = await pipeline.wait_for(COUNTED, STREAM, 300)
        assert counted == STREAM
        lag_before = await pipeline.committed_lag()
        final = pipeline.stop_all()
        assert final == {"ingest": [0, 0], "attribution": [0, 0], "metrics": [0, 0]}
        # Nothing was left uncommitted by the drain.
        assert await pipeline.committed_lag() == {"attribution": 0, "metrics": 0}
        await pipeline.assert_stream_exact("SIGTERM each service", stream)
        pipeline.assert_no_server_errors(stream.stats)
        # Proves the timed commits never fired: both restarted consumers had work pending until
        # the drain, so the zero lag above is the drain's commit.
        assert lag_before["attribution"] > 0
        assert lag_before["metrics"] > 0
    finally:
        pipeline.stop_all()
