"""Fuzzing the whole path: ingest -> attribution -> metrics, on the real broker and PostgreSQL.

Hypothesis builds activities and CRM entities with hostile values (control characters and
lone surrogates in strings, times far outside 1970..2200 and at extreme offsets, integers past
PostgreSQL's types, NaN and infinities, booleans and strings where numbers belong). The
properties: no answer is a 5xx; every activity a 202 accepted is counted exactly once in
metrics; the consumers keep going (the pipeline drains, and a last activity is counted too).
"""

from __future__ import annotations

import asyncio
import json
import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.settings import DatabaseSettings, KafkaSettings
from libs.common.tenancy import create_tenant
from libs.common.testing.stack import TEST_SECRET_KEY, in_process_stack
from tests.integration.pipeline_support import CRM, call, drained

TENANT = "acme"
ACTIVITY_BATCHES = 40
CRM_BATCHES = 12

control_text = st.text(alphabet=st.characters(max_codepoint=0x1F), min_size=1, max_size=4)
texts = st.one_of(
    st.text(max_size=40),
    st.builds(lambda a, c, b: a + c + b, st.text(max_size=5), control_text, st.text(max_size=5)),
    st.sampled_from(["\x00", "a\x00b", "\ud800", "x\udfffy", "\u202e", "tab\there", "x" * 3_000, ""]),
)
extreme_offsets = st.sampled_from(
    [
        UTC,
        timezone(timedelta(hours=14)),
        timezone(timedelta(hours=-14)),
        timezone(timedelta(hours=23, minutes=59)),
    ]
)
times = st.one_of(
    st.datetimes(timezones=extreme_offsets).map(datetime.isoformat),
    st.datetimes(
        min_value=datetime(2026, 10, 1), max_value=datetime(2026, 11, 30), timezones=extreme_offsets
    ).map(datetime.isoformat),
    st.sampled_from(
        [
            "0001-01-01T00:00:00+14:00",
            "9999-12-31T23:59:59-14:00",
            "1969-12-31T23:59:59Z",
            "2200-01-01T00:00:00Z",
            "2026-11-02T10:00:00",
            "2026-13-40T00:00:00Z",
            "yesterday",
        ]
    ),
)
numbers: st.SearchStrategy[Any] = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([2**63 - 1, 2**63, 2**64, 2**31, -1, 0, 30, 86_400, 86_401]),
    st.sampled_from([math.nan, math.inf, -math.inf, 1e308, 30.5, -0.0, 30.0]),
    st.sampled_from([True, False, "30", "", None, [], {}]),
)

#: Where each kind of hostile value goes in a canonical call.
MUTATIONS: dict[str, st.SearchStrategy[Any]] = {
    "external_id": texts,
    "subject": texts,
    "thread_id": texts,
    "ical_uid": texts,
    "source": texts,
    "participant_name": texts,
    "participant_phone": texts,
    "occurred_at": times,
    "duration_seconds": numbers,
    "revision": numbers,
}


@st.composite
def hostile_call(draw: st.DrawFn) -> dict[str, Any]:
    body = call(
        "x",  # replaced below, unique per call
        occurred_at=draw(st.sampled_from(["2026-11-02T17:00:00Z", "2026-11-03T09:30:00+02:00"])),
        duration_seconds=draw(st.integers(0, 600)),
    )
    if draw(st.booleans()):
        body.update(
            kind="meeting",
            outcome="held",
            participants=[
                {"email": "ana@seller.example", "role": "organizer"},
                {"email": "bo@buyer.example", "role": "attendee"},
            ],
        )
    for field in draw(st.lists(st.sampled_from(sorted(MUTATIONS)), max_size=3, unique=True)):
        value = draw(MUTATIONS[field])
        if field.startswith("participant_"):
            body["participants"][0][field.removeprefix("participant_")] = value
        else:
            body[field] = value
    return body


hostile_batches = st.lists(hostile_call(), min_size=1, max_size=3)

crm_numbers = st.one_of(numbers, st.sampled_from(["NaN", "Infinity", "1e400", "1e-400", "12.50", "-0"]))
hostile_entities = st.one_of(
    st.fixed_dictionaries(
        {
            "entity_type": st.just("rep"),
            "name": texts,
            "phones": st.lists(texts, max_size=2),
            "updated_at": times,
        },
        optional={"deleted": numbers, "active": numbers},
    ),
    st.fixed_dictionaries(
        {"entity_type": st.just("deal"), "name": texts, "created_at": times, "updated_at": times},
        optional={"amount": crm_numbers, "closed_at": times, "stage": texts, "is_closed": numbers},
    ),
    st.fixed_dictionaries(
        {
            "entity_type": st.just("team_membership"),
            "rep_id": st.just("fz-rep"),
            "team_id": st.just("fz-team"),
            "valid_from": st.sampled_from(
                ["0001-01-01", "1970-01-01", "2026-01-01", "9999-12-31", "2026-02-30"]
            ),
            "updated_at": times,
        }
    ),
)


def generated() -> tuple[list[list[dict[str, Any]]], list[list[dict[str, Any]]]]:
    """Bounded, reproducible examples, drawn off the event loop."""
    activities: list[list[dict[str, Any]]] = []
    entities: list[list[dict[str, Any]]] = []
    common = settings(deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck))

    @settings(common, max_examples=ACTIVITY_BATCHES)
    @given(hostile_batches)
    def collect_activities(batch: list[dict[str, Any]]) -> None:
        activities.append(batch)

    @settings(common, max_examples=CRM_BATCHES)
    @given(st.lists(hostile_entities, min_size=1, max_size=3))
    def collect_entities(batch: list[dict[str, Any]]) -> None:
        entities.append(batch)

    collect_activities()
    collect_entities()
    return activities, entities


def encoded(document: Any) -> bytes:
    """JSON as a client may send it: lone surrogates escaped, NaN and Infinity as bare tokens."""
    return json.dumps(document).encode()


async def test_hostile_input_through_the_whole_path_never_5xx_and_counts_every_accepted_activity_once(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    async with db_engine.begin() as conn:
        tenant = await create_tenant(conn, TENANT, TEST_SECRET_KEY)
    keys: dict[str, str] = tenant["api_keys"]  # type: ignore[assignment]
    auth = {"Authorization": f"Bearer {keys['ingest']}", "content-type": "application/json"}
    activity_batches, entity_batches = await asyncio.to_thread(generated)
    statuses: dict[int, int] = {}
    accepted: set[str] = set()

    async def post(client: httpx.AsyncClient, path: str, document: Any) -> httpx.Response:
        response = await client.post(path, content=encoded(document), headers=auth)
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        assert response.status_code < 500, (path, document, response.text[:500])
        return response

    async with in_process_stack(
        kafka_settings, database_settings, services=("ingest", "attribution", "metrics")
    ) as stack:
        assert (await post(stack.ingest, "/v1/crm/sync", CRM)).status_code == 202
        for index, batch in enumerate(entity_batches):
            for number, entity in enumerate(batch):
                entity["id"] = f"fz-{index}-{number}"
            await post(stack.ingest, "/v1/crm/sync", {"source": "fuzz", "entities": batch})
        for index, batch in enumerate(activity_batches):
            for number, activity in enumerate(batch):
                # Unique per call, hostile suffix kept: equal ids would be revisions of one activity.
                activity["external_id"] = f"fz-{index}-{number}-{activity['external_id']}"
            response = await post(stack.ingest, "/v1/events", {"activities": batch})
            if response.status_code == 202:
                accepted.update(response.json()["activity_ids"])
        await drained(kafka_settings)
        # The consumers kept going: one more activity after all of that is counted too.
        last = await post(stack.ingest, "/v1/events", {"activities": [call("after-the-fuzz")]})
        accepted.update(last.json()["activity_ids"])
        await drained(kafka_settings)

    # Both outcomes were exercised: hostile values refused, and some valid ones accepted.
    assert statuses.get(422, 0) >= ACTIVITY_BATCHES // 4, statuses
    assert len(accepted) >= 10, statuses
    async with db_engine.connect() as conn:
        stored = {str(i) for i in (await conn.execute(text("SELECT activity_id FROM activities"))).scalars()}
        counted = (
            await conn.execute(text("SELECT activity_id, rep_id, activities FROM metric_contributions"))
        ).all()
        rolled_up = await conn.scalar(
            text("SELECT sum(activities) FROM metric_rollups WHERE level = 'rep' AND granularity = 'day'")
        )
    assert stored == accepted
    assert sorted(str(row.activity_id) for row in counted) == sorted(accepted)
    # Exactly once in the rollups as well: each counted activity of a rep adds one to one day.
    assert rolled_up == sum(row.activities for row in counted if row.rep_id is not None)
