"""Ingest CPU per activity of ``POST /v1/events``, in process: ``python -m bench.ingest_cpu``.

The ingest app runs in this process (``httpx.ASGITransport``, the app ``spm run ingest`` serves)
on an embedded PostgreSQL, on uvloop, without a broker: its publisher builds the real record
batches (``send_in_batches`` into ``bench.attribution_cpu``'s producer, which builds each batch
and sends nothing). Each round creates a database with the bench tenant
(``bench.ingest_throughput.prepare_tenant``) and posts ``--activities`` new activities
(``bench.ingest_throughput.events_batch``) in sequential batches of 1,000, after one warm-up batch;
it checks that every activity was published once and recorded in the duplicate ledger.

Prints this process's CPU time per activity (ingest and the in-process client) and PostgreSQL's;
``--profile FILE`` writes a cProfile of the timed rounds, ``--callgrind-lib`` counts the timed round's instructions alone (see ``bench.attribution_cpu``'s
docstring for the library and the valgrind command line).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import uvloop

from bench import cpu_harness as harness
from bench.ingest_throughput import BATCH, TENANT, events_batch, prepare_tenant


async def _round(pg: Any, activities: int, callgrind: Any, profile: str | None) -> dict[str, Any]:
    import httpx
    from sqlalchemy import text

    from libs.common.collector import tune_garbage_collector
    from libs.common.db.engine import make_engine
    from libs.common.kafka.publisher import KafkaPublisher, OutgoingMessage, send_in_batches
    from libs.common.kafka.settings_events import SettingsChangeListener
    from libs.common.settings import DatabaseSettings

    producer = harness.BuildingProducer()

    async def publish(self: KafkaPublisher, messages: Sequence[OutgoingMessage]) -> None:
        await asyncio.gather(*await send_in_batches(producer, messages, self.batch_bytes))

    def no_listener(self: SettingsChangeListener) -> None:
        return None  # no broker: the settings-changed listener would retry in the background

    SettingsChangeListener.start = no_listener  # type: ignore[method-assign]
    name = await harness.migrated_database(pg, "r")
    url = pg.url(name)
    key = await prepare_tenant(url)
    app = harness.ingest_app_without_broker(url, "127.0.0.1:1", publish)
    batches = [events_batch(b) for b in range(activities // BATCH + 1)]
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://127.0.0.1", headers=headers
        ) as client:
            (await client.post("/v1/events", content=batches[0])).raise_for_status()  # warm-up
            tune_garbage_collector()  # as ``libs.common.serve`` once the app has started
            published0 = producer.records
            with harness.timed(pg, profile, callgrind) as clock:
                for body in batches[1:]:
                    (await client.post("/v1/events", content=body)).raise_for_status()
    engine = make_engine(DatabaseSettings(url=url), "bench")
    async with engine.connect() as conn:
        seen = (
            await conn.execute(
                text("SELECT count(*) FROM ingest_seen_events WHERE tenant_id = :t"), {"t": TENANT}
            )
        ).scalar_one()
    await engine.dispose()
    pg.psql(f'DROP DATABASE "{name}"')
    posted = len(batches) * BATCH - BATCH
    published = producer.records - published0
    assert published == posted, f"published {published} messages, expected exactly {posted}"
    assert seen == posted + BATCH, f"the ledger holds {seen} activities, expected exactly {posted + BATCH}"
    return {"activities": posted, **clock.figures(posted), "published": published}


def main(argv: list[str] | None = None) -> None:
    args = harness.parser(__doc__, activities_help="a multiple of 1,000").parse_args(argv)
    results: list[dict[str, Any]] = []
    with harness.embedded_postgres("spm-ingest-cpu-") as pg:
        callgrind = harness.callgrind_lib(args.callgrind_lib)
        for r in range(args.rounds):
            figures = uvloop.run(
                _round(pg, args.activities, callgrind, harness.round_profile(args.profile, r))
            )
            harness.report(results, {"round": r + 1, **figures})
    harness.print_summary(results)


if __name__ == "__main__":
    main()
