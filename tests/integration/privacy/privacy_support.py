"""Data for the privacy tests: a tenant's CRM and activities, with and without one person (Bo)."""

from __future__ import annotations

import copy
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from libs.common.kafka.clients import connection_options
from libs.common.kafka.clients import end_offsets as true_end_offsets
from libs.common.settings import KafkaSettings
from tests.integration.crm_support import ana_on_team_a, buyer_account, buyer_deal, email_from_ana

T0 = "2026-11-02T15:00:00Z"
BO_EMAIL = "bo.person@buyer.example"
BO_PHONE = "+12125550100"
BO_NAME = "Bo Person"
#: What must appear nowhere once Bo is erased.
BO_TRACES = (BO_EMAIL, BO_PHONE, BO_NAME, "bo.person")


def crm(*, with_bo: bool = True) -> dict[str, Any]:
    contacts = [{"contact_id": "con-cy", "role": "economic_buyer"}]
    entities: list[dict[str, Any]] = [
        *ana_on_team_a(),
        buyer_account(),
        {
            "entity_type": "contact",
            "id": "con-cy",
            "name": "Cy Other",
            "emails": ["cy@buyer.example"],
            "account_id": "acc-1",
            "updated_at": T0,
        },
    ]
    if with_bo:
        entities.append(
            {
                "entity_type": "contact",
                "id": "con-bo",
                "name": BO_NAME,
                "emails": [BO_EMAIL],
                "phones": [BO_PHONE],
                "account_id": "acc-1",
                "updated_at": T0,
            }
        )
        contacts = [{"contact_id": "con-bo", "role": "champion"}, *contacts]
    entities.append(buyer_deal(contacts))
    return {"source": "test", "entities": entities}


def _email(external_id: str, at: str, to: list[str]) -> dict[str, Any]:
    return {
        "source": "mail",
        "external_id": external_id,
        "kind": "email",
        "direction": "outbound",
        "outcome": "sent",
        "occurred_at": at,
        "participants": [
            {"email": "ana@seller.example", "role": "from"},
            *(
                {"email": address, "role": "to", "name": BO_NAME if address == BO_EMAIL else None}
                for address in to
            ),
        ],
    }


def mails_from_ana(*sent: tuple[str, str, list[str]]) -> list[dict[str, Any]]:
    """Ana's mail, one a ``(external_id, occurred_at, recipients)``, each recipient ``to``."""
    return [
        email_from_ana(
            external_id,
            occurred_at=at,
            participants=[
                {"email": "ana@seller.example", "role": "from"},
                *({"email": a, "role": "to"} for a in to),
            ],
        )
        for external_id, at, to in sent
    ]


def activities(*, with_bo: bool = True) -> list[dict[str, Any]]:
    """Bo alone (deleted), Bo and Cy (Cy stays), Cy alone (untouched), a call to Bo's phone (deleted)."""
    found = [
        _email("m-bo", "2026-11-02T16:00:00Z", [BO_EMAIL]),
        _email("m-bo-cy", "2026-11-03T16:00:00Z", [BO_EMAIL, "cy@buyer.example"]),
        _email("m-cy", "2026-11-04T16:00:00Z", ["cy@buyer.example"]),
        {
            "source": "dialer",
            "external_id": "c-bo",
            "kind": "call",
            "direction": "outbound",
            "outcome": "connected",
            "occurred_at": "2026-11-05T17:00:00Z",
            "duration_seconds": 180,
            "participants": [
                {"phone": "+14155550001", "role": "caller"},
                {"phone": BO_PHONE, "role": "callee"},
            ],
        },
        {
            "source": "dialer",
            "external_id": "c-cy",
            "kind": "call",
            "direction": "outbound",
            "outcome": "no_answer",
            "occurred_at": "2026-11-05T18:00:00Z",
            "participants": [
                {"phone": "+14155550001", "role": "caller"},
                {"phone": "+12125550199", "role": "callee"},
            ],
        },
    ]
    if with_bo:
        return found
    without: list[dict[str, Any]] = []
    for activity in copy.deepcopy(found):
        activity["participants"] = [
            p for p in activity["participants"] if p.get("email") != BO_EMAIL and p.get("phone") != BO_PHONE
        ]
        if len(activity["participants"]) > 1:
            without.append(activity)
    return without


async def rollups(conn: AsyncConnection, tenant_id: str) -> list[tuple[Any, ...]]:
    """Every non-zero rollup cell of the tenant (an emptied cell reads as no cell)."""
    rows = await conn.execute(
        text(
            "SELECT level, entity_id, granularity, period_start, activities, dials, connects, conversations, "
            "talk_seconds, emails_sent, emails_received, buyer_replies, meetings_booked, meetings_held, score "
            "FROM metric_rollups WHERE tenant_id = :t AND (activities <> 0 OR score <> 0 OR dials <> 0 "
            "OR emails_sent <> 0 OR talk_seconds <> 0) ORDER BY level, entity_id, granularity, period_start"
        ),
        {"t": tenant_id},
    )
    return [tuple(r) for r in rows]


async def tables_mentioning(engine: AsyncEngine, needles: tuple[str, ...]) -> list[str]:
    """``table.column`` of every text, jsonb or array column anywhere that holds one of ``needles``."""
    found = []
    async with engine.connect() as conn:
        columns = (
            await conn.execute(
                text(
                    "SELECT table_name, column_name FROM information_schema.columns "
                    "WHERE table_schema = 'public' AND data_type IN ('text', 'jsonb', 'ARRAY', 'character varying')"
                )
            )
        ).all()
        for table, column in columns:
            for needle in needles:
                hit = (
                    await conn.execute(
                        text(f'SELECT count(*) FROM "{table}" WHERE strpos(lower("{column}"::text), :n) > 0'),
                        {"n": needle.lower()},
                    )
                ).scalar_one()
                if hit:
                    found.append(f"{table}.{column}: {needle}")
    return found


async def end_offsets(kafka: KafkaSettings, topics: list[str]) -> dict[TopicPartition, int]:
    """True end offsets (the embedded broker's ListOffsets alone can fall short of the end)."""
    return await true_end_offsets(kafka, [TopicPartition(t, p) for t in topics for p in range(2)])


async def messages_since(kafka: KafkaSettings, start: dict[TopicPartition, int]) -> list[bytes]:
    """Every message value (and header) produced on those partitions since ``start``."""
    end = await end_offsets(kafka, sorted({tp.topic for tp in start}))
    consumer = AIOKafkaConsumer(enable_auto_commit=False, **connection_options(kafka))
    await consumer.start()
    out: list[bytes] = []
    try:
        consumer.assign(list(start))
        for tp, offset in start.items():
            consumer.seek(tp, offset)
        while any([await consumer.position(tp) < end[tp] for tp in start]):
            for records in (await consumer.getmany(timeout_ms=1_000)).values():
                for record in records:
                    out.append(
                        (record.value or b"") + orjson.dumps([list(h) for h in record.headers], default=str)
                    )
    finally:
        await consumer.stop()
    return out
