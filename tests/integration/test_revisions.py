"""The highest revision of an activity wins, in attribution and in metrics, whatever the order.

Through the real path (ingest -> broker -> attribution -> broker -> metrics -> PostgreSQL):
two revisions in one consumer batch, a lower revision in a later batch, and a property test
that posts random interleavings of revisions of a few activities and compares metrics with
the latest state of each.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.contracts.activities import activity_id_for
from libs.common.settings import DatabaseSettings, KafkaSettings
from libs.common.tenancy import create_tenant
from libs.common.testing.stack import TEST_SECRET_KEY, in_process_stack

from .pipeline_support import CRM, call, drained
from .polling import references_landed

TENANT = "acme"
DAY0 = date(2026, 11, 2)


async def _keys(db_engine: AsyncEngine) -> dict[str, str]:
    async with db_engine.begin() as conn:
        tenant = await create_tenant(conn, TENANT, TEST_SECRET_KEY)
    keys: dict[str, str] = tenant["api_keys"]  # type: ignore[assignment]
    return {"Authorization": f"Bearer {keys['ingest']}"}


async def _post(client: httpx.AsyncClient, auth: dict[str, str], *activities: dict[str, Any]) -> None:
    response = await client.post("/v1/events", json={"activities": list(activities)}, headers=auth)
    assert response.status_code == 202, response.text


async def _contributions(db_engine: AsyncEngine) -> dict[str, tuple[int, int, date]]:
    """external id -> (revision, talk seconds, day) that metrics counts for it."""
    async with db_engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT a.external_id, c.revision, c.talk_seconds, c.day FROM metric_contributions c "
                "JOIN activities a USING (tenant_id, activity_id) WHERE c.tenant_id = :t"
            ),
            {"t": TENANT},
        )
        return {r.external_id: (r.revision, r.talk_seconds, r.day) for r in rows}


async def _rep_days(db_engine: AsyncEngine) -> dict[date, tuple[int, int]]:
    """The rep's daily rollups: day -> (activities, talk seconds), empty days left out."""
    async with db_engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT period_start, activities, talk_seconds FROM metric_rollups WHERE tenant_id = :t "
                "AND level = 'rep' AND entity_id = 'rep-1' AND granularity = 'day' AND activities <> 0"
            ),
            {"t": TENANT},
        )
        return {r.period_start: (r.activities, r.talk_seconds) for r in rows}


async def test_revision_5_wins_over_4_in_one_batch_and_over_a_later_4(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    auth = await _keys(db_engine)
    # The reference data first: a call decided before it would be unmatched, then re-decided.
    async with in_process_stack(
        kafka_settings, database_settings, services=("ingest", "attribution")
    ) as stack:
        assert (await stack.ingest.post("/v1/crm/sync", json=CRM, headers=auth)).status_code == 202
        await references_landed(db_engine, TENANT, CRM["entities"])
    # Posted while no consumer runs, so that attribution reads 5 then 4 of "a" in one batch.
    async with in_process_stack(kafka_settings, database_settings, services=("ingest",)) as stack:
        await _post(stack.ingest, auth, call("a", revision=5, duration_seconds=50))
        await _post(stack.ingest, auth, call("a", revision=4, duration_seconds=40))
        await _post(stack.ingest, auth, call("b", revision=5, duration_seconds=50))
    async with in_process_stack(
        kafka_settings, database_settings, services=("ingest", "attribution", "metrics")
    ) as stack:
        await drained(kafka_settings)
        # "b" revision 4 arrives after revision 5 was applied: a later batch, ignored.
        await _post(stack.ingest, auth, call("b", revision=4, duration_seconds=40))
        await drained(kafka_settings)
    async with db_engine.connect() as conn:
        stored = await conn.execute(
            text("SELECT external_id, revision, duration_seconds FROM activities ORDER BY external_id")
        )
        assert [tuple(r) for r in stored] == [("a", 5, 50), ("b", 5, 50)]
        versions = await conn.execute(text("SELECT version FROM attributions ORDER BY activity_id"))
        assert [v for (v,) in versions] == [1, 1]
    assert await _contributions(db_engine) == {"a": (5, 50, DAY0), "b": (5, 50, DAY0)}
    assert await _rep_days(db_engine) == {DAY0: (2, 100)}


@dataclass(frozen=True)
class Posting:
    """One delivery of a revision of an activity: its facts are the duration and the day."""

    activity: int
    revision: int
    duration: int
    day: int

    def body(self, scenario: int) -> dict[str, Any]:
        return call(
            f"s{scenario}-{self.activity}",
            revision=self.revision,
            duration_seconds=self.duration,
            occurred_at=f"{DAY0 + timedelta(days=self.day)}T17:00:00Z",
        )


postings = st.builds(
    Posting,
    activity=st.integers(0, 2),
    revision=st.integers(0, 5),
    duration=st.integers(0, 600),
    day=st.integers(0, 2),
)
#: Up to three rounds; the pipeline drains between rounds, so an activity's revisions meet in
#: one consumer batch (same round) or in different batches (different rounds).
scenarios = st.lists(st.lists(postings, min_size=1, max_size=6), min_size=1, max_size=3)
SCENARIOS = 8


def generated_scenarios() -> list[list[list[Posting]]]:
    """Generated off the event loop (hypothesis drives a synchronous function)."""
    found: list[list[list[Posting]]] = []

    @settings(
        max_examples=SCENARIOS,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(scenarios)
    def collect(rounds: list[list[Posting]]) -> None:
        found.append(rounds)

    collect()
    return found


def latest_state(scenarios: list[list[list[Posting]]]) -> dict[str, Posting]:
    """Per activity, the first delivery of its highest revision (a repeat of a revision is a no-op)."""
    latest: dict[str, Posting] = {}
    for index, rounds in enumerate(scenarios):
        for posting in (p for postings_ in rounds for p in postings_):
            key = f"s{index}-{posting.activity}"
            if key not in latest or latest[key].revision < posting.revision:
                latest[key] = posting
    return latest


async def test_metrics_equal_the_latest_revision_of_every_activity_whatever_the_interleaving(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    auth = await _keys(db_engine)
    generated = await asyncio.to_thread(generated_scenarios)
    assert len(generated) == SCENARIOS
    async with in_process_stack(
        kafka_settings, database_settings, services=("ingest", "attribution", "metrics")
    ) as stack:
        assert (await stack.ingest.post("/v1/crm/sync", json=CRM, headers=auth)).status_code == 202
        await drained(kafka_settings)
        for round_ in range(3):
            # Back to back, one request each: attribution's 50 ms batches mix their revisions.
            for index, rounds in enumerate(generated):
                for posting in rounds[round_] if round_ < len(rounds) else ():
                    await _post(stack.ingest, auth, posting.body(index))
            await drained(kafka_settings)
    latest = latest_state(generated)
    expected = {
        key: (p.revision, p.duration, DAY0 + timedelta(days=p.day)) for key, p in sorted(latest.items())
    }
    assert await _contributions(db_engine) == expected, generated
    days: dict[date, tuple[int, int]] = {}
    for _, seconds, day in expected.values():
        count, total = days.get(day, (0, 0))
        days[day] = (count + 1, total + seconds)
    assert await _rep_days(db_engine) == days, generated
    async with db_engine.connect() as conn:
        stored = await conn.execute(
            text("SELECT activity_id, revision FROM activities WHERE tenant_id = :t"), {"t": TENANT}
        )
        assert {r.activity_id: r.revision for r in stored} == {
            activity_id_for(TENANT, "dialer", key): p.revision for key, p in latest.items()
        }
