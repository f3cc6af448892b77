"""Privacy before capture: a Zoom delivery about an excluded or erased person leaves no trace of them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.erasures import IdentityKind, erasure_key, identity_hash, request_erasure
from libs.common.settings import DatabaseSettings, KafkaSettings
from libs.common.testing.stack import TEST_SECRET_KEY

from .ingest_integration_support import (
    SECRETS,
    TENANT_SETTINGS,
    activities_on_topic,
    dumps,
    fixture,
    fixture_json,
    ingest_client,
    raw_on_topic,
    setup_tenant,
    sign,
    url_for,
)

ZOOM_SECRET = SECRETS["zoom"][0]
TRACES = ("globex", "bo.buyer", "bo buyer")


def _host_joined() -> bytes:
    payload: dict[str, Any] = fixture_json("zoom", "meeting.participant_joined.json")
    payload["event_ts"] = 1795528810000
    payload["payload"]["object"]["participant"].update(
        id="z8yCxTTTTSiw02QgCAp8uQ",
        user_name="Ana Seller",
        participant_uuid="HOSTPARTICIPANTUUID",
        join_time="2026-11-24T14:00:10Z",
        email="Ana.Seller@acme.example",
    )
    return dumps(payload)


MEETING = [
    fixture("zoom", "meeting.started.json"),
    _host_joined(),
    fixture("zoom", "meeting.participant_joined.json"),
    fixture("zoom", "meeting.participant_left.json"),
    fixture("zoom", "meeting.ended.json"),
]


async def _zoom_state(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as conn:
        rows = await conn.execute(text("SELECT state::text FROM webhook_state WHERE source = 'zoom'"))
        return [row[0] for row in rows]


def _mentions(value: Any) -> list[str]:
    text_ = str(value).lower()
    return [t for t in TRACES if t in text_]


async def test_a_zoom_meeting_with_an_excluded_person_keeps_no_trace_of_them(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    await setup_tenant(db_engine, {**TENANT_SETTINGS, "privacy": {"excluded_domains": ["globex.example"]}})
    async with ingest_client(kafka_settings, database_settings) as client:
        answers = [
            await client.post(url_for("zoom"), content=body, headers=sign("zoom", body, ZOOM_SECRET))
            for body in MEETING
        ]
    assert [a.status_code for a in answers] == [200] * 5
    raw = await raw_on_topic(kafka_settings)
    # The join and leave of the excluded person are not captured; the others are, without the topic.
    assert len(raw) == 3
    assert _mentions(raw) == []
    assert all("Globex renewal review" not in r["body"] for r in raw)
    [state] = await _zoom_state(db_engine)
    assert _mentions(state) == []
    assert '"excluded": true' in state
    # The meeting is excluded, as its activity would have been.
    assert await activities_on_topic(kafka_settings) == []


async def test_a_zoom_meeting_with_an_erased_person_is_published_with_the_placeholder_only(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    await setup_tenant(db_engine)
    key = erasure_key(TEST_SECRET_KEY)
    async with db_engine.begin() as conn:
        hashed = identity_hash(key, IdentityKind.EMAIL, "bo.buyer@globex.example")
        await request_erasure(conn, "acme", IdentityKind.EMAIL, hashed, "test")
    async with ingest_client(kafka_settings, database_settings) as client:
        for body in MEETING:
            answer = await client.post(url_for("zoom"), content=body, headers=sign("zoom", body, ZOOM_SECRET))
            assert answer.status_code == 200
    raw = await raw_on_topic(kafka_settings)
    assert len(raw) == 3
    assert _mentions(raw) == []
    [state] = await _zoom_state(db_engine)
    assert _mentions(state) == []
    [meeting] = await activities_on_topic(kafka_settings)
    assert _mentions(meeting) == []
    assert [p["email"] for p in meeting["participants"]] == [
        "ana.seller@acme.example",
        "erased@erased.invalid",
    ]
