"""Meetings deleted at their source, through ingest's webhook route, the real broker, attribution,
metrics, PostgreSQL and the gateway: Google Calendar's incremental sync strips a deleted event to
its id and ``status: cancelled``, Graph's delta sends ``@removed``; the meeting counted before is
retracted (a new version that counts nothing), and stays so."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.contracts.activities import activity_id_for
from libs.common.settings import DatabaseSettings, KafkaSettings
from libs.common.testing.stack import in_process_stack
from tests.integration.attribution.test_attribution_real_crm import DEAL, TENANT, _sync_crm
from tests.integration.attribution.test_attribution_vendor_webhooks import _deliver
from tests.integration.ingest.ingest_integration_support import dumps, setup_tenant
from tests.integration.polling import poll_rows

CRM = (
    {"entity_type": "rep", "id": "rep-1", "emails": ["ana.seller@acme.example"]},
    {"entity_type": "account", "id": "acc-1", "domains": ["globex.example"]},
    {**DEAL, "created_at": "2026-10-01T00:00:00Z", "contacts": []},
)
GOOGLE_ID = activity_id_for(TENANT, "google-calendar", "mt-google")
GRAPH_ID = activity_id_for(TENANT, "microsoft-graph", "AAMkMtGraph=")


def _google_meeting(updated: str) -> dict[str, Any]:
    return {
        "kind": "calendar#event",
        "id": "mt-google",
        "status": "confirmed",
        "updated": updated,
        "organizer": {"email": "ana.seller@acme.example", "self": True},
        "start": {"dateTime": "2026-11-23T09:00:00Z"},
        "end": {"dateTime": "2026-11-23T10:00:00Z"},
        "iCalUID": "mt-google@google.com",
        "attendees": [
            {"email": "ana.seller@acme.example", "organizer": True, "responseStatus": "accepted"},
            {"email": "bo.buyer@globex.example", "responseStatus": "accepted"},
        ],
    }


GRAPH_MEETING = {
    "@odata.type": "#microsoft.graph.event",
    "id": "AAMkMtGraph=",
    "lastModifiedDateTime": "2026-11-22T09:30:00.0000000Z",
    "iCalUId": "040000008200E00074C5B7101A82E008000000001",
    "isCancelled": False,
    "isOrganizer": True,
    "type": "singleInstance",
    "start": {"dateTime": "2026-11-24T13:00:00.0000000", "timeZone": "UTC"},
    "end": {"dateTime": "2026-11-24T14:00:00.0000000", "timeZone": "UTC"},
    "organizer": {"emailAddress": {"name": "Ana Seller", "address": "ana.seller@acme.example"}},
    "attendees": [
        {
            "type": "required",
            "status": {"response": "accepted", "time": "2026-11-18T09:00:00Z"},
            "emailAddress": {"name": "Bo Buyer", "address": "bo.buyer@globex.example"},
        }
    ],
}


async def _versions(engine: AsyncEngine, done: Any) -> dict[uuid.UUID, tuple[Any, ...]]:
    """Each meeting's attribution in force and what metrics holds of it, once ``done`` holds."""
    rows = await poll_rows(
        engine,
        "SELECT a.activity_id, a.version, a.status, a.rep_id, a.explanation->>'rule_path', c.version, "
        "c.meetings_held FROM attributions a JOIN metric_contributions c USING (tenant_id, activity_id) "
        "WHERE a.tenant_id = :t ORDER BY a.activity_id",
        {"t": TENANT},
        done,
    )
    return {row[0]: row[1:] for row in rows}


async def _rep_meetings(engine: AsyncEngine, done: Any) -> list[tuple[Any, ...]]:
    """Ana's meetings held, per day, in her rollups."""
    rows: list[tuple[Any, ...]] = await poll_rows(
        engine,
        "SELECT period_start::text, meetings_held FROM metric_rollups WHERE tenant_id = :t "
        "AND level = 'rep' AND entity_id = 'rep-1' AND granularity = 'day' ORDER BY period_start",
        {"t": TENANT},
        done,
    )
    return rows


async def test_meetings_deleted_in_google_calendar_and_graph_are_retracted_and_stay_retracted(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    keys = await setup_tenant(db_engine)
    auth = {"Authorization": f"Bearer {keys['ingest']}"}
    read = {"Authorization": f"Bearer {keys['read']}"}
    google_page = {"kind": "calendar#events", "items": [_google_meeting("2026-11-20T12:00:00.000Z")]}
    async with in_process_stack(kafka_settings, database_settings) as stack:
        await _sync_crm(stack, db_engine, auth, *CRM)
        await _deliver(stack, "google-calendar", dumps(google_page))
        await _deliver(stack, "microsoft-graph", dumps({"value": [GRAPH_MEETING]}))
        counted = await _versions(db_engine, lambda rows: len(rows) == 2 and all(r[5] == 1 for r in rows))
        counted_days = await _rep_meetings(db_engine, lambda rows: sum(r[1] for r in rows) == 2)

        # The next sync: Google's event stripped to its id, and one Google never sent before;
        # Graph's delta entry removed (a message removed from a mailbox is not a deletion).
        stripped = {
            "kind": "calendar#events",
            "items": [
                {"kind": "calendar#event", "id": "mt-google", "status": "cancelled"},
                {"kind": "calendar#event", "id": "never-seen", "status": "cancelled"},
            ],
        }
        google_answer = await _deliver(stack, "google-calendar", dumps(stripped))
        removed = {
            "value": [
                {
                    "@odata.type": "#microsoft.graph.event",
                    "id": "AAMkMtGraph=",
                    "@removed": {"reason": "deleted"},
                }
            ]
        }
        graph_answer = await _deliver(stack, "microsoft-graph", dumps(removed))
        retracted = await _versions(db_engine, lambda rows: len(rows) == 2 and all(r[5] == 2 for r in rows))
        retracted_days = await _rep_meetings(db_engine, lambda rows: sum(r[1] for r in rows) == 0)
        shown = await stack.gateway.get(f"/v1/activities/{GOOGLE_ID}", headers=read)

        # A later revision of the deleted event (restored, or replayed by a resync) changes nothing:
        # it is stored, and no version follows it.
        later = {"kind": "calendar#events", "items": [_google_meeting("2026-11-25T12:00:00.000Z")]}
        await _deliver(stack, "google-calendar", dumps(later))
        stored = await poll_rows(
            db_engine,
            "SELECT revision FROM activities WHERE tenant_id = :t AND activity_id = :a",
            {"t": TENANT, "a": GOOGLE_ID},
            lambda rows: rows == [(1795608000000,)],
        )
        after = await _versions(db_engine, lambda rows: len(rows) == 2)
        never_seen = await poll_rows(
            db_engine,
            "SELECT count(*) FROM activities WHERE tenant_id = :t AND external_id = 'never-seen'",
            {"t": TENANT},
            lambda rows: True,
        )

    assert counted == {
        GOOGLE_ID: (1, "attributed", "rep-1", "owner_participates", 1, 1),
        GRAPH_ID: (1, "attributed", "rep-1", "owner_participates", 1, 1),
    }
    assert counted_days == [("2026-11-23", 1), ("2026-11-24", 1)]
    assert (google_answer["accepted"], google_answer["deleted"], google_answer["ignored"]) == (0, 2, [])
    assert (graph_answer["accepted"], graph_answer["deleted"], graph_answer["ignored"]) == (0, 1, [])
    assert retracted == {
        GOOGLE_ID: (2, "excluded", None, "deleted_at_source", 2, 0),
        GRAPH_ID: (2, "excluded", None, "deleted_at_source", 2, 0),
    }
    assert retracted_days == [("2026-11-23", 0), ("2026-11-24", 0)]
    assert shown.status_code == 200, shown.text
    attribution = shown.json()["attribution"]
    assert (attribution["status"], attribution["version"], attribution["rule_path"]) == (
        "excluded",
        2,
        "deleted_at_source",
    )
    assert attribution["explanation"]["deleted_by"] == "google-calendar/1"
    assert [v["status"] for v in shown.json()["history"]] == ["attributed", "excluded"]
    assert stored == [(1795608000000,)]
    assert after == retracted
    assert never_seen == [(0,)]


def _meeting(external_id: str) -> dict[str, Any]:
    return {
        "source": "calendar-export",
        "external_id": external_id,
        "kind": "meeting",
        "direction": "outbound",
        "outcome": "held",
        "occurred_at": "2026-11-25T15:00:00Z",
        "duration_seconds": 1800,
        "participants": [
            {"email": "ana.seller@acme.example", "role": "organizer"},
            {"email": "bo.buyer@globex.example", "role": "attendee"},
        ],
    }


async def test_a_canonical_meeting_deleted_through_the_api_is_retracted(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    keys = await setup_tenant(db_engine)
    auth = {"Authorization": f"Bearer {keys['ingest']}"}
    meeting_id = activity_id_for(TENANT, "calendar-export", "exp/42")
    async with in_process_stack(kafka_settings, database_settings) as stack:
        await _sync_crm(stack, db_engine, auth, *CRM)
        posted = await stack.ingest.post(
            "/v1/events", json={"activities": [_meeting("exp/42")]}, headers=auth
        )
        assert posted.status_code == 202, posted.text
        counted = await _versions(db_engine, lambda rows: len(rows) == 1 and rows[0][5] == 1)
        refused = await stack.ingest.delete("/v1/events/Calendar%20Export/exp%2F42", headers=auth)
        deleted = await stack.ingest.delete("/v1/events/calendar-export/exp/42", headers=auth)
        retracted = await _versions(db_engine, lambda rows: len(rows) == 1 and rows[0][5] == 2)

    assert counted == {meeting_id: (1, "attributed", "rep-1", "owner_participates", 1, 1)}
    assert refused.status_code == 422
    assert refused.json()["errors"] == [
        {"in": "path", "field": "source", "reason": "String should match pattern '^[a-z0-9][a-z0-9._-]*$'"}
    ]
    assert (deleted.status_code, deleted.json()) == (202, {"activity_id": str(meeting_id)})
    assert retracted == {meeting_id: (2, "excluded", None, "deleted_at_source", 2, 0)}
