"""Poison values sent through the public entry points: a 4xx naming the field, or processed for
the sender alone, while another tenant's activities, posted at the same time, count exactly.

Each test runs the real services (ingest, attribution, metrics, and the gateway where the
poison goes through it) against the real broker and PostgreSQL. Tenant ``evil`` sends the poison
while ``acme`` posts its calls; once the pipeline drained, acme's day holds exactly its calls
and evil's accepted activities are all stored.
"""

from __future__ import annotations

import asyncio
import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.contracts.goals import MIN_GOAL_TARGET
from libs.common.kafka.dlq import inspect_dead_letters
from libs.common.settings import DatabaseSettings, KafkaSettings
from libs.common.tenancy import create_tenant
from libs.common.testing.stack import TEST_SECRET_KEY, InProcessStack, in_process_stack
from libs.common.topics import ACTIVITY_ATTRIBUTED, ACTIVITY_INGESTED, CRM_ENTITY_CHANGED
from services.metrics.refresher import refresh_tenant
from tests.integration.pipeline_support import CRM, REP_PHONE, call, drained
from tests.integration.polling import references_landed

T0 = "2026-11-02T15:00:00Z"
ACME_CALLS = 20
#: acme's day once its calls are counted: rep-1's activities, dials, connects and talk seconds.
ACME_DAY = [("acme", "rep-1", ACME_CALLS, ACME_CALLS, ACME_CALLS, ACME_CALLS * 40)]


def four_byte_text(length: int, seed: int) -> str:
    """``length`` characters of CJK Extension B (4 bytes each in UTF-8), drawn at random so that
    PostgreSQL cannot compress them below the size of a B-tree entry."""
    draw = random.Random(seed)
    return "".join(chr(0x20000 + draw.randrange(40_000)) for _ in range(length))


def meeting(source: str, external_id: str, ical_uid: str) -> dict[str, Any]:
    return {
        "source": source,
        "external_id": external_id,
        "kind": "meeting",
        "direction": "outbound",
        "outcome": "held",
        "occurred_at": "2026-11-02T18:00:00Z",
        "duration_seconds": 1800,
        "ical_uid": ical_uid,
        "participants": [
            {"phone": REP_PHONE, "role": "organizer"},
            {"email": "bo@buyer.example", "role": "attendee"},
        ],
    }


class Tenants:
    def __init__(self, keys: dict[str, dict[str, str]]) -> None:
        self.keys = keys

    def auth(self, tenant: str, scope: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[tenant][scope]}"}


async def two_tenants(engine: AsyncEngine) -> Tenants:
    async with engine.begin() as conn:
        keys = {
            tenant: (await create_tenant(conn, tenant, TEST_SECRET_KEY))["api_keys"]
            for tenant in ("acme", "evil")
        }
    return Tenants(keys)  # type: ignore[arg-type]


async def sync_crm(stack: InProcessStack, tenants: Tenants, tenant: str, body: dict[str, Any]) -> None:
    """``body`` sent to ``POST /v1/crm/sync`` as ``tenant``, accepted."""
    synced = await stack.ingest.post("/v1/crm/sync", json=body, headers=tenants.auth(tenant, "ingest"))
    assert synced.status_code == 202, synced.text


async def with_acme_streaming(
    stack: InProcessStack, tenants: Tenants, engine: AsyncEngine, poison: Any
) -> Any:
    """acme's CRM landed, then acme's calls posted one by one while ``poison()`` runs; its result."""
    for tenant in ("acme", "evil"):
        await sync_crm(stack, tenants, tenant, CRM)
    await references_landed(engine, "acme", CRM["entities"])
    await references_landed(engine, "evil", CRM["entities"])

    async def acme_calls() -> list[int]:
        codes = []
        for i in range(ACME_CALLS):
            posted = await stack.ingest.post(
                "/v1/events", json={"activities": [call(f"a-{i}")]}, headers=tenants.auth("acme", "ingest")
            )
            codes.append(posted.status_code)
        return codes

    codes, result = await asyncio.gather(acme_calls(), poison())
    assert codes == [202] * ACME_CALLS
    return result


async def settled_exactly(kafka: KafkaSettings, engine: AsyncEngine, evil_activities: int) -> None:
    """The pipeline drained: acme's day is exact, evil holds ``evil_activities``, no dead letter."""
    await drained(kafka, 90)
    async with engine.connect() as conn:
        day = (
            await conn.execute(
                text(
                    "SELECT tenant_id, entity_id, activities, dials, connects, talk_seconds FROM metric_rollups "
                    "WHERE tenant_id = 'acme' AND level = 'rep' AND granularity = 'day'"
                )
            )
        ).all()
        stored: dict[str, int] = dict(
            (await conn.execute(text("SELECT tenant_id, count(*) FROM activities GROUP BY tenant_id"))).all()
        )
    assert [tuple(row) for row in day] == ACME_DAY
    assert stored == {"acme": ACME_CALLS, **({"evil": evil_activities} if evil_activities else {})}
    for topic in (ACTIVITY_INGESTED, CRM_ENTITY_CHANGED, ACTIVITY_ATTRIBUTED):
        assert await inspect_dead_letters(kafka, topic, limit=10) == [], topic.name


async def test_a_meeting_uid_of_four_byte_characters_is_accepted_and_joins_its_other_sightings(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """1,024 characters of a 4-byte script (4,096 bytes, within the contract's 1,024 characters)
    as a meeting's ``ical_uid`` made its key too long for ``ingest_meeting_keys``' index: the whole
    request was a 500, and a connector or vendor retrying it never got it in."""
    tenants = await two_tenants(db_engine)
    uid = four_byte_text(1024, seed=1)
    async with in_process_stack(
        kafka_settings, database_settings, services=("ingest", "attribution", "metrics")
    ) as stack:

        async def poison() -> tuple[httpx.Response, httpx.Response]:
            first = await stack.ingest.post(
                "/v1/events",
                json={"activities": [meeting("google-calendar", "ev-1", uid), call("e-1")]},
                headers=tenants.auth("evil", "ingest"),
            )
            # The same meeting from another source: one activity, the second sighting a duplicate.
            second = await stack.ingest.post(
                "/v1/events",
                json={"activities": [meeting("zoom", "z-1", uid)]},
                headers=tenants.auth("evil", "ingest"),
            )
            return first, second

        first, second = await with_acme_streaming(stack, tenants, db_engine, poison)
        assert first.status_code == 202, first.text
        assert (first.json()["accepted"], first.json()["duplicates"]) == (2, 0)
        assert second.status_code == 202, second.text
        assert (second.json()["accepted"], second.json()["duplicates"]) == (1, 1)
        assert second.json()["activity_ids"] in ([], first.json()["activity_ids"][:1])
        await settled_exactly(kafka_settings, db_engine, evil_activities=2)


async def test_a_goal_target_too_small_to_divide_by_is_refused_and_the_smallest_measures_finitely(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """A target of 5e-324 (> 0, as documented before) made each rep's attainment infinite: stored
    as ``Infinity`` and served as null in the scores and the leaderboard."""
    tenants = await two_tenants(db_engine)
    now = datetime.now(UTC).replace(microsecond=0)
    just_now = (now - timedelta(minutes=1)).isoformat()
    admin = tenants.auth("evil", "admin")
    async with in_process_stack(kafka_settings, database_settings) as stack:

        async def poison() -> list[httpx.Response]:
            answers = [
                await stack.gateway.put(
                    "/v1/goals/tiny",
                    json={"scope": "tenant", "period": "week", "metric": "dials", "target": target},
                    headers=admin,
                )
                for target in (5e-324, 1e-300, 0.000999, MIN_GOAL_TARGET)
            ]
            posted = await stack.ingest.post(
                "/v1/events",
                json={"activities": [call(f"e-{i}", occurred_at=just_now) for i in range(3)]},
                headers=tenants.auth("evil", "ingest"),
            )
            assert posted.status_code == 202, posted.text
            return answers

        answers = await with_acme_streaming(stack, tenants, db_engine, poison)
        for refused in answers[:3]:
            assert refused.status_code == 422, refused.text
            assert refused.json()["errors"] == [
                {"in": "body", "field": "target", "reason": "Input should be greater than or equal to 0.001"}
            ]
        assert answers[3].status_code == 200, answers[3].text
        await settled_exactly(kafka_settings, db_engine, evil_activities=3)
        async with db_engine.begin() as conn:
            await refresh_tenant(conn, "evil", now)
            measured = (
                await conn.execute(
                    text(
                        "SELECT tenant_id, rep_id, goal_id, target, actual, attainment FROM goal_attainment "
                        "WHERE actual > 0"
                    )
                )
            ).all()
        # 3 dials of a goal of a thousandth: 3,000 times it, a number.
        assert [tuple(row) for row in measured] == [("evil", "rep-1", "tiny", 0.001, 3.0, 3000.0)]


async def test_a_deal_or_an_activity_naming_too_many_contacts_is_a_422_and_never_holds_another_tenant(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """One deal listing 150,000 contact roles held the attribution consumer, and acme's calls
    behind it, for 9 s (and ingest's event loop for 4 s); one call naming 150,000
    ``crm.contact_ids``, for 6 s. A message is handled whole: nothing else ran meanwhile."""
    tenants = await two_tenants(db_engine)
    deal = next(e for e in CRM["entities"] if e["entity_type"] == "deal")
    evil = tenants.auth("evil", "ingest")
    async with in_process_stack(
        kafka_settings, database_settings, services=("ingest", "attribution", "metrics")
    ) as stack:

        async def poison() -> list[httpx.Response]:
            answers = []
            for contacts in (150_000, 501, 500):
                roles = [{"contact_id": f"c-{i}"} for i in range(contacts)]
                answers.append(
                    await stack.ingest.post(
                        "/v1/crm/sync",
                        json={"source": "test", "entities": [{**deal, "contacts": roles}]},
                        headers=evil,
                    )
                )
            for contacts in (150_000, 501, 500):
                named = call(f"e-{contacts}", crm={"contact_ids": [f"c-{i}" for i in range(contacts)]})
                answers.append(
                    await stack.ingest.post("/v1/events", json={"activities": [named]}, headers=evil)
                )
            return answers

        answers = await with_acme_streaming(stack, tenants, db_engine, poison)
        crm_too_many, crm_501, crm_500, calls_too_many, calls_501, calls_500 = answers
        for refused, count in ((crm_too_many, 150_000), (crm_501, 501)):
            assert refused.status_code == 422, refused.text
            assert refused.json()["errors"] == [
                {
                    "in": "body",
                    "field": "entities.0.deal.contacts",
                    "reason": f"lists {count} contact roles; at most 500 are accepted",
                }
            ]
        for refused, count in ((calls_too_many, 150_000), (calls_501, 501)):
            assert refused.status_code == 422, refused.text
            assert refused.json()["errors"] == [
                {
                    "in": "body",
                    "field": "activities.0.crm.contact_ids",
                    "reason": f"lists {count} contact ids; at most 500 are accepted",
                }
            ]
        assert (crm_500.status_code, crm_500.json()["accepted"]) == (202, 1)
        assert (calls_500.status_code, calls_500.json()["accepted"]) == (202, 1)
        await settled_exactly(kafka_settings, db_engine, evil_activities=1)
        async with db_engine.connect() as conn:
            held = await conn.scalar(
                text("SELECT count(*) FROM ref_deal_contacts WHERE tenant_id = 'evil' AND deal_id = 'deal-1'")
            )
        assert held == 500


DEPTH = 1_000
DEEP_REPS = 100


async def test_a_team_tree_a_thousand_deep_is_refreshed_in_seconds_so_no_tenant_waits_behind_it(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """A chain of 1,000 teams with 100 reps in its lowest team and 8 goals took the metrics
    refresher 15 s for that tenant (0.4 s now): the chain was walked per rep, period and grain with
    a list for its cycle check (quadratic), then per metric. The refresher does one tenant after
    another, so every tenant's insights and goals waited behind it at each tick."""
    tenants = await two_tenants(db_engine)
    teams = [
        {
            "entity_type": "team",
            "id": f"t-{i}",
            **({"parent_id": f"t-{i - 1}"} if i else {}),
            "updated_at": T0,
        }
        for i in range(DEPTH)
    ]
    people: list[dict[str, Any]] = []
    for i in range(DEEP_REPS):
        people.append({"entity_type": "rep", "id": f"r-{i}", "updated_at": T0})
        people.append(
            {
                "entity_type": "team_membership",
                "id": f"m-{i}",
                "rep_id": f"r-{i}",
                "team_id": f"t-{DEPTH - 1}",
                "valid_from": "2026-01-01",
                "updated_at": T0,
            }
        )
    now = datetime.now(UTC).replace(microsecond=0)
    just_now = (now - timedelta(minutes=1)).isoformat()
    async with in_process_stack(
        kafka_settings, database_settings, services=("ingest", "attribution", "metrics", "gateway")
    ) as stack:

        async def poison() -> None:
            for batch in (teams, people):
                await sync_crm(stack, tenants, "evil", {"source": "test", "entities": batch})
            await references_landed(db_engine, "evil", [teams[0], teams[-1], people[-1]])

        await with_acme_streaming(stack, tenants, db_engine, poison)
        # The goals of the root team reach the reps 1,000 teams below it, and evil's reps' score
        # goal is the tenant's (no team of the 1,000 holds one); acme's is the tenant's.
        goals = [("acme", "dials", {"scope": "tenant", "period": "week", "metric": "dials"})]
        for period in ("day", "week", "month", "quarter"):
            goals.append(
                (
                    "evil",
                    f"root-{period}",
                    {"scope": "team", "subject_id": "t-0", "period": period, "metric": "dials"},
                )
            )
            goals.append(("evil", f"all-{period}", {"scope": "tenant", "period": period, "metric": "score"}))
        for tenant, goal_id, goal in goals:
            saved = await stack.gateway.put(
                f"/v1/goals/{goal_id}", json={**goal, "target": 50}, headers=tenants.auth(tenant, "admin")
            )
            assert saved.status_code == 200, saved.text
        today = await stack.ingest.post(
            "/v1/events",
            json={"activities": [call(f"today-{i}", occurred_at=just_now) for i in range(5)]},
            headers=tenants.auth("acme", "ingest"),
        )
        assert today.status_code == 202, today.text
        await drained(kafka_settings, 90)

    started = time.monotonic()
    async with db_engine.begin() as conn:
        await refresh_tenant(conn, "evil", now)
    took = time.monotonic() - started
    async with db_engine.begin() as conn:
        await refresh_tenant(conn, "acme", now)
        measured = (
            await conn.execute(
                text(
                    "SELECT tenant_id, goal_id, count(*), sum(actual) FROM goal_attainment "
                    "GROUP BY tenant_id, goal_id ORDER BY tenant_id, goal_id"
                )
            )
        ).all()
    # Each rep against each goal in the current and the last complete period; acme's rep with
    # the 5 dials of today.
    assert [tuple(row) for row in measured] == [
        ("acme", "dials", 2, 5.0),
        # The tenant's goals measure rep-1 of the CRM both tenants synced too.
        *[
            ("evil", f"all-{period}", 2 * (DEEP_REPS + 1), 0.0)
            for period in ("day", "month", "quarter", "week")
        ],
        *[("evil", f"root-{period}", 2 * DEEP_REPS, 0.0) for period in ("day", "month", "quarter", "week")],
    ]
    assert took < 8, f"the refresh of a tenant with a tree {DEPTH} teams deep took {took:.1f} s"


CHAIN = 500


async def test_a_management_chain_five_hundred_deep_is_digested_in_seconds_twenty_levels_down(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """500 reps, each the manager of the next, took 75 s of one refresh (a recursive query per
    manager and statement, each of its 500 steps reading every rep of the tenant), every tenant
    refreshed after it waiting: each manager's digest listed every rep below them, 125,000 rows.
    A digest now reads 20 levels of management down; acme's digest is exact."""
    tenants = await two_tenants(db_engine)
    chain = [
        {
            "entity_type": "rep",
            "id": f"r-{i:03}",
            **({"manager_id": f"r-{i - 1:03}"} if i else {}),
            "updated_at": T0,
        }
        for i in range(CHAIN)
    ]
    acme_crm = [{"entity_type": "rep", "id": "boss", "name": "Bea", "updated_at": T0}] + [
        {**e, "manager_id": "boss"} if e["entity_type"] == "rep" else e for e in CRM["entities"]
    ]
    async with in_process_stack(
        kafka_settings, database_settings, services=("ingest", "attribution", "metrics")
    ) as stack:

        async def poison() -> None:
            for tenant, entities in (("evil", chain), ("acme", acme_crm)):
                await sync_crm(stack, tenants, tenant, {"source": "test", "entities": entities})
            await references_landed(db_engine, "evil", chain[-1:])
            await references_landed(db_engine, "acme", acme_crm[:1])

        await with_acme_streaming(stack, tenants, db_engine, poison)
        await settled_exactly(kafka_settings, db_engine, evil_activities=0)

    tuesday = datetime(2026, 11, 10, 9, tzinfo=UTC)  # the week of acme's calls is complete
    started = time.monotonic()
    async with db_engine.begin() as conn:
        await refresh_tenant(conn, "evil", tuesday)
    took = time.monotonic() - started
    async with db_engine.begin() as conn:
        await refresh_tenant(conn, "acme", tuesday)
        stored = {
            (row.tenant_id, row.manager_id): row.digest
            for row in await conn.execute(text("SELECT tenant_id, manager_id, digest FROM manager_digests"))
        }
    assert len(stored) == CHAIN - 1 + 1
    assert [r["rep_id"] for r in stored[("evil", "r-000")]["reps"]] == [f"r-{i:03}" for i in range(1, 21)]
    assert [r["rep_id"] for r in stored[("evil", "r-490")]["reps"]] == [
        f"r-{i:03}" for i in range(491, CHAIN)
    ]
    assert [
        (r["rep_id"], r["team_id"], r["score"], r["activities"]) for r in stored[("acme", "boss")]["reps"]
    ] == [("rep-1", "team-a", 3.0 * ACME_CALLS, ACME_CALLS)]
    assert took < 20, f"the refresh of a tenant with a management chain {CHAIN} deep took {took:.1f} s"
