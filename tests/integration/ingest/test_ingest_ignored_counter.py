"""``spm_ingest_ignored_total{source, reason}``: the items an accepted delivery leaves out (its
``ignored``), counted under a bounded reason, through the real broker and PostgreSQL."""

from __future__ import annotations

from typing import Any

from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.settings import DatabaseSettings, KafkaSettings
from services.ingest.domain.ignored import REASONS

from .ingest_integration_support import (
    SECRETS,
    dumps,
    fixture,
    fixture_json,
    ingest_client,
    setup_tenant,
    sign,
    url_for,
)


def _counts(source: str) -> dict[str, float]:
    return {
        reason: REGISTRY.get_sample_value("spm_ingest_ignored_total", {"source": source, "reason": reason})
        or 0.0
        for reason in REASONS
    }


def _grown(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {reason: after[reason] - before[reason] for reason in before if after[reason] != before[reason]}


def _hold(external_id: str) -> dict[str, Any]:
    """A hold only colleagues attend: time blocked for a meeting, not one (ignored)."""
    return {
        "source": "calendar",
        "external_id": external_id,
        "kind": "meeting",
        "direction": "internal",
        "outcome": "held",
        "occurred_at": "2026-11-24T10:00:00Z",
        "duration_seconds": 1800,
        "subject": "HOLD: Globex demo",
        "participants": [
            {"email": "ana.seller@acme.example", "role": "organizer"},
            {"email": "sam.se@acme.example", "role": "attendee"},
        ],
    }


async def test_items_left_out_of_accepted_deliveries_are_counted_by_source_and_reason(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    keys = await setup_tenant(db_engine)
    emails = fixture_json("hubspot", "emails.json")
    sent = emails[0]
    scheduled = {
        **sent,
        "id": "40130002",
        "properties": {**sent["properties"], "hs_email_status": "SCHEDULED"},
    }
    dated_2099 = {
        **sent,
        "id": "40130003",
        "properties": {**sent["properties"], "hs_timestamp": "2099-01-01T00:00:00Z"},
    }
    hubspot = dumps([sent, scheduled, dated_2099])
    ringing = fixture("twilio", "ringing.txt")
    before = {source: _counts(source) for source in ("hubspot", "twilio", "api")}
    async with ingest_client(kafka_settings, database_settings) as client:
        batch = await client.post(
            url_for("hubspot"), content=hubspot, headers=sign("hubspot", hubspot, SECRETS["hubspot"][0])
        )
        call = await client.post(
            url_for("twilio"), content=ringing, headers=sign("twilio", ringing, SECRETS["twilio"][0])
        )
        events = await client.post(
            "/v1/events",
            json={"activities": [_hold("hold-1")]},
            headers={"Authorization": f"Bearer {keys['ingest']}"},
        )
    assert batch.status_code == 200, batch.text
    assert (batch.json()["accepted"], len(batch.json()["ignored"])) == (1, 2)
    assert call.status_code == 200, call.text
    assert len(call.json()["ignored"]) == 1
    assert events.status_code == 202, events.text
    assert (events.json()["accepted"], len(events.json()["ignored"])) == (0, 1)
    after = {source: _counts(source) for source in before}
    assert {source: _grown(before[source], after[source]) for source in before} == {
        "hubspot": {"not_done": 1, "time_ahead": 1},
        "twilio": {"not_done": 1},
        "api": {"time_block": 1},
    }
