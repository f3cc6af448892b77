"""Re-matching and overrides across the whole in-process stack (ingest -> attribution -> metrics
-> gateway) with the real broker and PostgreSQL: metrics follow each new version exactly once."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.contracts.activities import activity_id_for
from libs.common.contracts.commands import AttributionOverriddenV1
from libs.common.contracts.envelope import Envelope, encode_body
from libs.common.kafka.clients import make_producer
from libs.common.settings import DatabaseSettings, KafkaSettings
from libs.common.tenancy import create_tenant
from libs.common.testing.stack import TEST_SECRET_KEY, in_process_stack
from libs.common.topics import ATTRIBUTION_OVERRIDDEN
from tests.integration.polling import poll_json, poll_rows, references_landed

T0 = "2026-11-01T00:00:00Z"
REP_AND_ACCOUNT: list[dict[str, Any]] = [
    {"entity_type": "team", "id": "team-a", "updated_at": T0},
    {"entity_type": "rep", "id": "rep-1", "emails": ["ana@seller.example"], "updated_at": T0},
    {
        "entity_type": "team_membership",
        "id": "m1",
        "rep_id": "rep-1",
        "team_id": "team-a",
        "valid_from": "2026-01-01",
        "updated_at": T0,
    },
    {"entity_type": "account", "id": "acc-1", "domains": ["buyer.example"], "updated_at": T0},
]


def _deal(deal_id: str, created: str, contacts: list[str], **fields: Any) -> dict[str, Any]:
    return {
        "entity_type": "deal",
        "id": deal_id,
        "account_id": "acc-1",
        "owner_rep_id": "rep-1",
        "created_at": created,
        "contacts": [{"contact_id": c, "role": "champion"} for c in contacts],
        "updated_at": fields.pop("updated_at", T0),
        **fields,
    }


def _email(external_id: str, to: str, at: str) -> dict[str, Any]:
    return {
        "source": "mail",
        "external_id": external_id,
        "kind": "email",
        "direction": "outbound",
        "outcome": "sent",
        "occurred_at": at,
        "participants": [{"email": "ana@seller.example", "role": "from"}, {"email": to, "role": "to"}],
    }


async def _post(client: httpx.AsyncClient, path: str, key: str, body: dict[str, Any]) -> None:
    response = await client.post(path, json=body, headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 202, response.text


def _rollups(level: str) -> str:
    """Day figures per entity: a rep's from its rollups; a deal's or an account's, credited on the
    contributions but kept as no rollup (``definitions.STORED_LEVELS``), summed from those."""
    if level == "rep":
        return (
            "SELECT entity_id, period_start, activities, emails_sent FROM metric_rollups "
            "WHERE tenant_id = 'acme' AND level = 'rep' AND granularity = 'day' ORDER BY entity_id, period_start"
        )
    return (
        f"SELECT {level}_id, day, sum(activities), sum(emails_sent) FROM metric_contributions "
        f"WHERE tenant_id = 'acme' AND {level}_id IS NOT NULL GROUP BY 1, 2 HAVING sum(activities) <> 0 "
        "ORDER BY 1, 2"
    )


async def test_an_email_that_arrives_before_its_contact_and_deal_is_rematched_and_metrics_follow(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    async with db_engine.begin() as conn:
        tenant = await create_tenant(conn, "acme", TEST_SECRET_KEY)
    keys: dict[str, str] = tenant["api_keys"]  # type: ignore[assignment]
    email_id = activity_id_for("acme", "mail", "m-early")
    contributions = (
        "SELECT version, status, rep_id, deal_id, emails_sent FROM metric_contributions "
        f"WHERE tenant_id = 'acme' AND activity_id = '{email_id}'"
    )
    async with in_process_stack(kafka_settings, database_settings) as stack:
        await _post(
            stack.ingest, "/v1/crm/sync", keys["ingest"], {"source": "test", "entities": REP_AND_ACCOUNT}
        )
        await references_landed(db_engine, "acme", REP_AND_ACCOUNT)
        await _post(
            stack.ingest,
            "/v1/events",
            keys["ingest"],
            {"activities": [_email("m-early", "bo@buyer.example", "2026-11-02T16:00:00Z")]},
        )
        [first] = await poll_rows(db_engine, contributions, {}, lambda rows: len(rows) == 1)
        assert tuple(first) == (1, "account_only", "rep-1", None, 1)

        contact = {
            "entity_type": "contact",
            "id": "con-1",
            "emails": ["bo@buyer.example"],
            "account_id": "acc-1",
            "updated_at": "2026-11-03T00:00:00Z",
        }
        # A second deal on the account keeps the domain alone from deciding: only the contact's role does.
        deals = [
            _deal("deal-1", "2026-10-01T00:00:00Z", ["con-1"], updated_at="2026-11-03T00:00:00Z"),
            _deal("deal-2", "2026-10-05T00:00:00Z", [], updated_at="2026-11-03T00:00:00Z"),
        ]
        await _post(
            stack.ingest, "/v1/crm/sync", keys["ingest"], {"source": "test", "entities": [contact, *deals]}
        )
        [second] = await poll_rows(db_engine, contributions, {}, lambda rows: bool(rows) and rows[0][0] == 2)
        assert tuple(second) == (2, "attributed", "rep-1", "deal-1", 1)
        body = await _poll_gateway(stack.gateway, keys["read"])

    async with db_engine.connect() as conn:
        versions = list(
            await conn.execute(
                text(
                    "SELECT version, status, deal_id FROM attribution_history WHERE activity_id = :a ORDER BY version"
                ),
                {"a": email_id},
            )
        )
        deal_rows = list(await conn.execute(text(_rollups("deal"))))
        rep_rows = list(await conn.execute(text(_rollups("rep"))))
        account_rows = list(await conn.execute(text(_rollups("account"))))
    assert [tuple(v) for v in versions] == [(1, "account_only", None), (2, "attributed", "deal-1")]
    day = datetime(2026, 11, 2, tzinfo=UTC).date()
    assert [tuple(r) for r in deal_rows] == [("deal-1", day, 1, 1)]
    assert [tuple(r) for r in rep_rows] == [("rep-1", day, 1, 1)]
    assert [tuple(r) for r in account_rows] == [("acc-1", day, 1, 1)]
    assert body["periods"][0]["counts"]["emails_sent"] == 1
    assert body["periods"][0]["counts"]["activities"] == 1


async def _poll_gateway(gateway: httpx.AsyncClient, key: str) -> Any:
    """Rep-1's day scores once they have a period."""
    return await poll_json(
        gateway,
        "/v1/reps/rep-1/scores?granularity=day",
        {"Authorization": f"Bearer {key}"},
        lambda body: bool(body["periods"]),
    )


async def _produce_override(kafka: KafkaSettings, command: AttributionOverriddenV1) -> None:
    producer = make_producer(kafka, "override-test")
    await producer.start()
    try:
        envelope = Envelope(
            id=str(uuid.uuid4()),
            source="/tests/admin",
            type=ATTRIBUTION_OVERRIDDEN.event_type,
            subject=str(command.activity_id),
            tenant=command.tenant_id,
        )
        await producer.send_and_wait(
            ATTRIBUTION_OVERRIDDEN.physical(kafka.topic_prefix),
            value=encode_body(command),
            key=str(command.activity_id).encode(),
            headers=envelope.to_headers(),
        )
    finally:
        await producer.stop()


async def test_a_manual_override_survives_crm_changes_that_rematch_its_neighbours(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    async with db_engine.begin() as conn:
        tenant = await create_tenant(conn, "acme", TEST_SECRET_KEY)
    keys: dict[str, str] = tenant["api_keys"]  # type: ignore[assignment]
    overridden = activity_id_for("acme", "mail", "m-over")
    neighbour = activity_id_for("acme", "mail", "m-next")
    current = (
        "SELECT activity_id, version, status, deal_id, is_override FROM attributions "
        "WHERE tenant_id = 'acme' ORDER BY occurred_at"
    )
    crm = [
        *REP_AND_ACCOUNT,
        _deal("deal-1", "2026-10-01T00:00:00Z", []),
        _deal("deal-2", "2026-10-05T00:00:00Z", []),
    ]
    async with in_process_stack(kafka_settings, database_settings) as stack:
        await _post(stack.ingest, "/v1/crm/sync", keys["ingest"], {"source": "test", "entities": crm})
        await references_landed(db_engine, "acme", crm)
        emails = [
            _email("m-over", "dee@buyer.example", "2026-11-02T10:00:00Z"),
            _email("m-next", "dee@buyer.example", "2026-11-02T11:00:00Z"),
        ]
        await _post(stack.ingest, "/v1/events", keys["ingest"], {"activities": emails})
        rows = await poll_rows(db_engine, current, {}, lambda rows: len(rows) == 2)
        assert [tuple(r)[1:] for r in rows] == [
            (1, "ambiguous", "deal-2", False),
            (1, "ambiguous", "deal-2", False),
        ]

        await _produce_override(
            kafka_settings,
            AttributionOverriddenV1(
                tenant_id="acme",
                activity_id=overridden,
                deal_id="deal-1",
                set_by="manager@seller.example",
                set_at=datetime(2026, 11, 21, tzinfo=UTC),
                reason="renewal kick-off",
            ),
        )
        await poll_rows(db_engine, current, {}, lambda rows: rows[0][1] == 2)
        # deal-1 is tombstoned: the neighbour (ambiguous, deal-1 among its secondaries) is re-matched.
        tombstone = _deal(
            "deal-1", "2026-10-01T00:00:00Z", [], deleted=True, updated_at="2026-11-06T00:00:00Z"
        )
        await _post(stack.ingest, "/v1/crm/sync", keys["ingest"], {"source": "test", "entities": [tombstone]})
        rows = await poll_rows(db_engine, current, {}, lambda rows: rows[1][1] == 2)
        contributions = await poll_rows(
            db_engine,
            "SELECT activity_id, version, deal_id FROM metric_contributions WHERE tenant_id = 'acme' ORDER BY version",
            {},
            lambda rows: len(rows) == 2 and all(r[1] == 2 for r in rows),
        )
    assert [tuple(r) for r in rows] == [
        (overridden, 2, "attributed", "deal-1", True),
        (neighbour, 2, "attributed", "deal-2", False),
    ]
    assert sorted(tuple(r) for r in contributions) == sorted(
        [(overridden, 2, "deal-1"), (neighbour, 2, "deal-2")]
    )
    async with db_engine.connect() as conn:
        deal_rows = list(await conn.execute(text(_rollups("deal"))))
    day = datetime(2026, 11, 2, tzinfo=UTC).date()
    assert [tuple(r) for r in deal_rows] == [("deal-1", day, 1, 1), ("deal-2", day, 1, 1)]
