"""Meetings deleted at their source, through ingest's webhook route, the real broker, attribution,
metrics, PostgreSQL and the gateway: Google Calendar's incremental sync strips a deleted event to
its id and ``status: cancelled``, Graph's delta sends ``@removed``; the meeting counted before is
retracted (a new version that counts nothing), and stays so."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.contracts.activities import activity_id_for
from libs.common.settings import DatabaseSettings, KafkaSettings
from libs.common.testing.stack import in_process_stack
from tests.integration.attribution.attribution_support import rows
from tests.integration.attribution.test_attribution_real_crm import DEAL, TENANT, _sync_crm
from tests.integration.attribution.test_attribution_vendor_leftovers import (
    ANA,
    OPPORTUNITY,
    SALESFORCE_CRM,
    _email_task,
)
from tests.integration.attribution.test_attribution_vendor_webhooks import (
    HUBSPOT_CRM,
    HUBSPOT_ENTITIES,
    _deliver,
    _hubspot_email,
    _mapped,
)
from tests.integration.ingest.ingest_integration_support import dumps, setup_tenant
from tests.integration.pipeline_support import drained
from tests.integration.polling import poll_rows, references_landed

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


async def test_meetings_deleted_in_google_calendar_and_graph_are_retracted_until_restored(
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

        # The next sync: Google's event stripped to its id (and the time it was deleted, which
        # Google sometimes keeps), and one Google never sent before; Graph's delta entry removed
        # (a message removed from a mailbox is not a deletion).
        stripped = {
            "kind": "calendar#events",
            "items": [
                {
                    "kind": "calendar#event",
                    "id": "mt-google",
                    "status": "cancelled",
                    "updated": "2026-11-22T12:00:00.000Z",
                },
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
        # Saved with each retraction: out of the held sweep's index (migration 0035).
        retracted_flags = dict(
            await rows(
                db_engine,
                "SELECT activity_id, retracted FROM activities WHERE tenant_id = :t AND kind = 'meeting'",
                {"t": TENANT},
            )
        )

        # A revision older than the deletion, delivered after it (a resync's stale copy, edited on
        # 11-21, deleted on 11-22), does not bring the meeting back: stored, nothing published.
        stale = {"kind": "calendar#events", "items": [_google_meeting("2026-11-21T12:00:00.000Z")]}
        stale_answer = await _deliver(stack, "google-calendar", dumps(stale))
        # Restored in the calendar on 11-25: a newer revision, decided again and counted again.
        restored = {"kind": "calendar#events", "items": [_google_meeting("2026-11-25T12:00:00.000Z")]}
        await _deliver(stack, "google-calendar", dumps(restored))
        # The restore stored (11-25 12:00 UTC in ms, in the row and its payload): its version was
        # saved in the same transaction, after whatever the stale copy did.
        stored = await poll_rows(
            db_engine,
            "SELECT revision, payload->>'revision' FROM activities WHERE tenant_id = :t AND activity_id = :a",
            {"t": TENANT, "a": GOOGLE_ID},
            lambda rows: rows == [(1795608000000, "1795608000000")],
        )
        after = await _versions(
            db_engine, lambda rows: len(rows) == 2 and sorted(r[5] for r in rows) == [2, 3]
        )
        after_days = await _rep_meetings(db_engine, lambda rows: sum(r[1] for r in rows) == 1)
        history = await stack.gateway.get(f"/v1/activities/{GOOGLE_ID}", headers=read)
        # The restore, stored, clears it; Graph's meeting is still deleted.
        after_flags = dict(
            await rows(
                db_engine,
                "SELECT activity_id, retracted FROM activities WHERE tenant_id = :t AND kind = 'meeting'",
                {"t": TENANT},
            )
        )
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
    assert retracted_flags == {GOOGLE_ID: True, GRAPH_ID: True}
    assert shown.status_code == 200, shown.text
    attribution = shown.json()["attribution"]
    assert (attribution["status"], attribution["version"], attribution["rule_path"]) == (
        "excluded",
        2,
        "deleted_at_source",
    )
    assert attribution["explanation"]["deleted_by"] == "google-calendar/1"
    assert [v["status"] for v in shown.json()["history"]] == ["attributed", "excluded"]
    # Ingest published the stale copy (it keeps no copy of activities); attribution refused it.
    assert stale_answer["accepted"] == 1
    # Version 3, not 4: the stale copy published nothing; the Graph meeting stays retracted.
    assert after == {
        GOOGLE_ID: (3, "attributed", "rep-1", "owner_participates", 3, 1),
        GRAPH_ID: (2, "excluded", None, "deleted_at_source", 2, 0),
    }
    assert after_days == [("2026-11-23", 1), ("2026-11-24", 0)]
    assert after_flags == {GOOGLE_ID: False, GRAPH_ID: True}
    assert stored == [(1795608000000, "1795608000000")]
    assert [v["status"] for v in history.json()["history"]] == ["attributed", "excluded", "attributed"]
    assert never_seen == [(0,)]


BOB = {"entity_type": "rep", "id": "rep-2", "emails": ["bob.seller@acme.example"]}
BOBS_ID = activity_id_for(TENANT, "google-calendar", "mt-bob")


def _bobs_meeting() -> dict[str, Any]:
    """Bob's meeting with the buyer, Ana invited: it is in both calendars under one id."""
    return {
        "kind": "calendar#event",
        "id": "mt-bob",
        "status": "confirmed",
        "updated": "2026-11-20T12:00:00.000Z",
        "organizer": {"email": "bob.seller@acme.example"},
        "start": {"dateTime": "2026-11-23T09:00:00Z"},
        "end": {"dateTime": "2026-11-23T10:00:00Z"},
        "iCalUID": "mt-bob@google.com",
        "attendees": [
            {"email": "bob.seller@acme.example", "organizer": True, "responseStatus": "accepted"},
            {"email": "ana.seller@acme.example", "responseStatus": "accepted"},
            {"email": "bo.buyer@globex.example", "responseStatus": "accepted"},
        ],
    }


async def _held_by(engine: AsyncEngine, done: Any) -> list[tuple[Any, ...]]:
    """Meetings held per rep in the rollups (every day summed)."""
    rows: list[tuple[Any, ...]] = await poll_rows(
        engine,
        "SELECT entity_id, sum(meetings_held)::int FROM metric_rollups WHERE tenant_id = :t "
        "AND level = 'rep' AND granularity = 'day' GROUP BY entity_id ORDER BY entity_id",
        {"t": TENANT},
        done,
    )
    return rows


async def test_a_meeting_an_attendee_removed_from_her_calendar_stays_the_organizer_s(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """Ana removes Bob's meeting from her calendar: her calendar's sync sees it deleted, and she
    no longer attends it, but Bob and the buyer still meet. Only Bob's calendar deletes it."""
    keys = await setup_tenant(db_engine)
    auth = {"Authorization": f"Bearer {keys['ingest']}"}
    async with in_process_stack(kafka_settings, database_settings) as stack:
        await _sync_crm(stack, db_engine, auth, *CRM, BOB)
        await _deliver(stack, "google-calendar", dumps({"items": [_bobs_meeting()]}))
        counted = await _versions(db_engine, lambda rows: len(rows) == 1 and rows[0][5] == 1)
        counted_held = await _held_by(db_engine, lambda rows: sum(r[1] for r in rows) == 1)

        # Ana's calendar's incremental sync: the event stripped to its id, seen in her mailbox.
        stripped = {"kind": "calendar#event", "id": "mt-bob", "status": "cancelled"}
        hers = await _deliver(
            stack, "google-calendar", dumps({"mailbox": "ana.seller@acme.example", "items": [stripped]})
        )
        left = await _versions(db_engine, lambda rows: len(rows) == 1 and rows[0][5] == 2)
        left_held = await _held_by(db_engine, lambda rows: dict(rows).get("rep-2") == 1)
        people = await poll_rows(
            db_engine,
            "SELECT p->>'email', p->>'role' FROM activities, jsonb_array_elements(payload->'participants') p "
            "WHERE tenant_id = :t AND activity_id = :a",
            {"t": TENANT, "a": BOBS_ID},
            lambda rows: True,
        )

        # Bob's calendar's: the meeting itself is deleted.
        his = await _deliver(
            stack, "google-calendar", dumps({"mailbox": "bob.seller@acme.example", "items": [stripped]})
        )
        deleted = await _versions(db_engine, lambda rows: len(rows) == 1 and rows[0][5] == 3)
        deleted_held = await _held_by(db_engine, lambda rows: sum(r[1] for r in rows) == 0)

    assert counted == {BOBS_ID: (1, "attributed", "rep-2", "owner_participates", 1, 1)}
    assert counted_held == [("rep-2", 1)]
    assert (hers["deleted"], his["deleted"]) == (1, 1)
    # Ana no longer attends; Bob, who held it, keeps it (before, Ana's calendar retracted it for
    # everyone). Without Ana, the owner of Globex's deal, the deal is no longer evidenced by its
    # owner: the account decides.
    assert left == {BOBS_ID: (2, "attributed", "rep-2", "account_match", 2, 1)}
    assert left_held == [("rep-2", 1)]
    assert people == [("bob.seller@acme.example", "organizer"), ("bo.buyer@globex.example", "attendee")]
    assert deleted == {BOBS_ID: (3, "excluded", None, "deleted_at_source", 3, 0)}
    assert deleted_held == [("rep-2", 0)]


async def _people_of(engine: AsyncEngine, activity_id: uuid.UUID, revision: int) -> list[tuple[Any, ...]]:
    """The stored meeting's participants (email, role, answer) once it holds ``revision``."""
    rows: list[tuple[Any, ...]] = await poll_rows(
        engine,
        "SELECT p->>'email', p->>'role', p->>'response_status' FROM activities, "
        "jsonb_array_elements(payload->'participants') p WHERE tenant_id = :t AND activity_id = :a "
        "AND revision = :r",
        {"t": TENANT, "a": activity_id, "r": revision},
        lambda rows: bool(rows),
    )
    return rows


async def test_the_organizers_edit_leaves_out_a_guest_who_removed_the_meeting_until_she_is_invited_again(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """Ana (accepted) removes Bob's meeting from her calendar: she leaves it. Bob moves it half an
    hour on the 21st: his copy still lists Ana as accepted (Google does not say whether it
    records her removal), nothing newer of her: she stays out, and Bob keeps the meeting on the
    account alone. On the 22nd Bob invites her again (Google lists her ``needsAction``): she is
    back, and the meeting is the deal of its owner, Ana, who attends. Before, Bob's edit of the
    21st brought her back."""
    keys = await setup_tenant(db_engine)
    auth = {"Authorization": f"Bearer {keys['ingest']}"}
    edited = {
        **_bobs_meeting(),
        "updated": "2026-11-21T09:00:00.000Z",
        "start": {"dateTime": "2026-11-23T09:30:00Z"},
        "end": {"dateTime": "2026-11-23T10:30:00Z"},
    }
    again = {
        **edited,
        "updated": "2026-11-22T09:00:00.000Z",
        "attendees": [
            {"email": "bob.seller@acme.example", "organizer": True, "responseStatus": "accepted"},
            {"email": "ana.seller@acme.example", "responseStatus": "needsAction"},
            {"email": "bo.buyer@globex.example", "responseStatus": "accepted"},
        ],
    }
    stripped = {"kind": "calendar#event", "id": "mt-bob", "status": "cancelled"}
    async with in_process_stack(kafka_settings, database_settings) as stack:
        await _sync_crm(stack, db_engine, auth, *CRM, BOB)
        await _deliver(stack, "google-calendar", dumps({"items": [_bobs_meeting()]}))
        await _versions(db_engine, lambda rows: len(rows) == 1 and rows[0][5] == 1)
        await _deliver(
            stack, "google-calendar", dumps({"mailbox": "ana.seller@acme.example", "items": [stripped]})
        )
        left = await _versions(db_engine, lambda rows: len(rows) == 1 and rows[0][5] == 2)
        bobs = {"mailbox": "bob.seller@acme.example"}
        await _deliver(stack, "google-calendar", dumps({**bobs, "items": [edited]}))
        moved = await _versions(db_engine, lambda rows: len(rows) == 1 and rows[0][5] == 3)
        moved_people = await _people_of(db_engine, BOBS_ID, 1795251600000)
        await _deliver(stack, "google-calendar", dumps({**bobs, "items": [again]}))
        back = await _versions(db_engine, lambda rows: len(rows) == 1 and rows[0][5] == 4)
        back_people = await _people_of(db_engine, BOBS_ID, 1795338000000)
        remembered = await poll_rows(
            db_engine,
            "SELECT count(*) FROM meeting_removals WHERE tenant_id = :t",
            {"t": TENANT},
            lambda rows: True,
        )

    assert left == {BOBS_ID: (2, "attributed", "rep-2", "account_match", 2, 1)}
    assert moved == {BOBS_ID: (3, "attributed", "rep-2", "account_match", 3, 1)}
    assert moved_people == [
        ("bob.seller@acme.example", "organizer", None),
        ("bo.buyer@globex.example", "attendee", "accepted"),
    ]
    assert back == {BOBS_ID: (4, "attributed", "rep-2", "owner_participates", 4, 1)}
    assert back_people == [
        ("bob.seller@acme.example", "organizer", None),
        ("ana.seller@acme.example", "attendee", "needs_action"),
        ("bo.buyer@globex.example", "attendee", "accepted"),
    ]
    assert remembered == [(0,)]


async def test_erasing_a_guest_who_removed_a_meeting_forgets_her_removal(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """Ana removed Bob's meeting from her calendar: her address and answer are remembered, and
    her calendar as where the undated deletion was read; once she asks to be forgotten, they are
    not."""
    keys = await setup_tenant(db_engine)
    auth = {"Authorization": f"Bearer {keys['ingest']}"}
    admin = {"Authorization": f"Bearer {keys['admin']}"}
    stripped = {"kind": "calendar#event", "id": "mt-bob", "status": "cancelled"}
    removals = "SELECT address, answer FROM meeting_removals WHERE tenant_id = :t"
    calendars = "SELECT calendar FROM ingest_undated_deletions WHERE tenant_id = 'acme'"
    async with in_process_stack(kafka_settings, database_settings) as stack:
        await _sync_crm(stack, db_engine, auth, *CRM, BOB)
        await _deliver(stack, "google-calendar", dumps({"items": [_bobs_meeting()]}))
        await _versions(db_engine, lambda rows: len(rows) == 1 and rows[0][5] == 1)
        await _deliver(
            stack, "google-calendar", dumps({"mailbox": "ana.seller@acme.example", "items": [stripped]})
        )
        remembered = await poll_rows(db_engine, removals, {"t": TENANT}, lambda rows: bool(rows))
        read_in = await rows(db_engine, calendars)
        requested = await stack.gateway.post(
            "/v1/privacy/erasures", json={"email": "ana.seller@acme.example"}, headers=admin
        )
        assert requested.status_code == 202, requested.text
        forgotten = await poll_rows(db_engine, removals, {"t": TENANT}, lambda rows: not rows)
        undated = await rows(db_engine, calendars)

    assert remembered == [("ana.seller@acme.example", "accepted")]
    assert read_in == [("ana.seller@acme.example",)]
    assert forgotten == []
    assert undated == []


def _meeting(external_id: str, revision: int = 0) -> dict[str, Any]:
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
        "revision": revision,
    }


async def test_a_canonical_meeting_deleted_through_the_api_comes_back_with_a_newer_revision(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """Deleted at revision 5: a copy of revision 1 or 3 posted after it changes nothing; revision
    6 restores it, and the manual override made before the deletion applies again."""
    keys = await setup_tenant(db_engine)
    auth = {"Authorization": f"Bearer {keys['ingest']}"}
    admin = {"Authorization": f"Bearer {keys['admin']}"}
    meeting_id = activity_id_for(TENANT, "calendar-export", "exp/42")
    bea = {"entity_type": "rep", "id": "rep-2", "emails": ["bea.seller@acme.example"]}
    async with in_process_stack(kafka_settings, database_settings) as stack:
        await _sync_crm(stack, db_engine, auth, *CRM, bea)
        posted = await stack.ingest.post(
            "/v1/events", json={"activities": [_meeting("exp/42", 1)]}, headers=auth
        )
        assert posted.status_code == 202, posted.text
        counted = await _versions(db_engine, lambda rows: len(rows) == 1 and rows[0][5] == 1)
        overridden = await stack.gateway.put(
            f"/v1/activities/{meeting_id}/attribution",
            json={"rep_id": "rep-2", "reason": "Bea ran it"},
            headers=admin,
        )
        assert overridden.status_code == 202, overridden.text
        moved = await _versions(db_engine, lambda rows: len(rows) == 1 and rows[0][5] == 2)
        refused = await stack.ingest.delete("/v1/events/Calendar%20Export/exp%2F42", headers=auth)
        deleted = await stack.ingest.delete("/v1/events/calendar-export/exp/42?revision=5", headers=auth)
        retracted = await _versions(db_engine, lambda rows: len(rows) == 1 and rows[0][5] == 3)

        again = await stack.ingest.post(
            "/v1/events", json={"activities": [_meeting("exp/42", 1)]}, headers=auth
        )
        stale = await stack.ingest.post(
            "/v1/events", json={"activities": [_meeting("exp/42", 3)]}, headers=auth
        )
        restored = await stack.ingest.post(
            "/v1/events", json={"activities": [_meeting("exp/42", 6)]}, headers=auth
        )
        stored = await poll_rows(
            db_engine,
            "SELECT revision FROM activities WHERE tenant_id = :t AND activity_id = :a",
            {"t": TENANT, "a": meeting_id},
            lambda rows: rows == [(6,)],
        )
        back = await _versions(db_engine, lambda rows: len(rows) == 1 and rows[0][5] == 4)
        overrides = await poll_rows(
            db_engine,
            "SELECT version, is_override FROM attribution_history WHERE tenant_id = :t AND activity_id = :a "
            "AND version > 1 ORDER BY version",
            {"t": TENANT, "a": meeting_id},
            lambda rows: True,
        )

    assert counted == {meeting_id: (1, "attributed", "rep-1", "owner_participates", 1, 1)}
    assert moved == {meeting_id: (2, "attributed", "rep-2", "owner_participates", 2, 1)}
    assert refused.status_code == 422
    assert refused.json()["errors"] == [
        {"in": "path", "field": "source", "reason": "String should match pattern '^[a-z0-9][a-z0-9._-]*$'"}
    ]
    assert (deleted.status_code, deleted.json()) == (202, {"activity_id": str(meeting_id)})
    assert retracted == {meeting_id: (3, "excluded", None, "deleted_at_source", 3, 0)}
    # Revision 1 again is a redelivery to ingest; revision 3 is published, and older than the deletion.
    assert (again.json()["accepted"], again.json()["duplicates"]) == (1, 1)
    assert (stale.json()["accepted"], stale.json()["duplicates"]) == (1, 0)
    assert restored.status_code == 202, restored.text
    assert stored == [(6,)]
    # Version 4, not 5: nothing came of revision 3; the override in force before the deletion is back.
    assert back == {meeting_id: (4, "attributed", "rep-2", "owner_participates", 4, 1)}
    assert overrides == [(2, True), (3, False), (4, True)]


async def test_a_deletion_revision_the_api_refuses_is_a_422_naming_it(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    keys = await setup_tenant(db_engine)
    auth = {"Authorization": f"Bearer {keys['ingest']}"}
    async with in_process_stack(kafka_settings, database_settings, services=("ingest",)) as stack:
        negative = await stack.ingest.delete("/v1/events/calendar-export/exp/42?revision=-1", headers=auth)
    assert negative.status_code == 422
    assert [(e["in"], e["field"]) for e in negative.json()["errors"]] == [("query", "revision")]


async def test_a_hubspot_engagement_archived_then_restored_counts_again(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """Archived on 11-21 (a sync job reads it back ``archived``), restored on 11-22 (read back live
    with a later modification time): counted, not counted, counted. A copy of the engagement as
    it was on 11-20 16:00, read after the archival, is older than it: nothing."""
    await setup_tenant(db_engine)
    email_id = activity_id_for(TENANT, "hubspot", "e-1")
    sent = _hubspot_email("e-1", "2026-11-20T15:00:00.000Z")

    def revised(at: str, **changes: Any) -> dict[str, Any]:
        return {
            **sent,
            "updatedAt": at,
            "properties": {**sent["properties"], "hs_lastmodifieddate": at},
            **changes,
        }

    async def counted(version: int) -> list[tuple[Any, ...]]:
        rows: list[tuple[Any, ...]] = await poll_rows(
            db_engine,
            "SELECT a.version, a.status, a.rep_id, c.version, c.emails_sent FROM attributions a "
            "JOIN metric_contributions c USING (tenant_id, activity_id) WHERE a.tenant_id = :t AND a.activity_id = :a",
            {"t": TENANT, "a": email_id},
            lambda rows: bool(rows) and rows[0][0] == rows[0][3] == version,
        )
        return rows

    async with in_process_stack(kafka_settings, database_settings) as stack:
        await _deliver(stack, "hubspot", dumps(HUBSPOT_CRM))
        await references_landed(db_engine, TENANT, HUBSPOT_ENTITIES)
        await _deliver(stack, "hubspot", dumps([sent]))
        first = await counted(1)
        archived = await _deliver(
            stack, "hubspot", dumps([revised("2026-11-21T09:00:00.000Z", archived=True)])
        )
        second = await counted(2)
        await _deliver(stack, "hubspot", dumps([revised("2026-11-20T16:00:00.000Z")]))
        await _deliver(stack, "hubspot", dumps([revised("2026-11-22T09:00:00.000Z")]))
        # The restore stored (11-22 09:00 UTC in ms): its version was saved with it.
        stored = await poll_rows(
            db_engine,
            "SELECT revision FROM activities WHERE tenant_id = :t AND activity_id = :a",
            {"t": TENANT, "a": email_id},
            lambda rows: rows == [(1795338000000,)],
        )
        third = await counted(3)

    assert first == [(1, "attributed", "7701", 1, 1)]
    assert archived["deleted"] == 1
    assert second == [(2, "excluded", None, 2, 0)]
    # Version 3 is the restore (11-22), not the copy of 11-20 16:00 (a version 4 would follow it).
    assert stored == [(1795338000000,)]
    assert third == [(3, "attributed", "7701", 3, 1)]


def _graph_meeting(modified: str) -> dict[str, Any]:
    return {**GRAPH_MEETING, "lastModifiedDateTime": modified}


async def test_a_calendar_page_read_before_an_undated_deletion_and_delivered_after_it_stays_deleted(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """Graph's ``@removed`` and Google's stripped event give no time. Both meetings are edited at
    10:00, that page read at 10:00:30 (``observed_at``) but its post held up; both are deleted,
    the deletions read at 10:05; the 10:00 pages are delivered at 10:06: read before the
    deletions, an older state, not published (listed as ignored), and the meetings stay deleted
    (held 0). Edited at 10:07 (a restore at the source, read and delivered at 10:08): read after,
    both count again (held 1 each). The deletions are published right after the revisions held
    (11-20 12:00 / 11-22 09:30, + 1 ms), in each source's order: read times are compared with read
    times, the sources' times with theirs."""
    keys = await setup_tenant(db_engine)
    auth = {"Authorization": f"Bearer {keys['ingest']}"}
    day = datetime(2026, 11, 25, tzinfo=UTC)
    async with in_process_stack(kafka_settings, database_settings) as stack:
        await _sync_crm(stack, db_engine, auth, *CRM)
        await _deliver(
            stack,
            "google-calendar",
            dumps({"items": [_google_meeting("2026-11-20T12:00:00.000Z")]}),
            day.replace(hour=9),
        )
        await _deliver(stack, "microsoft-graph", dumps({"value": [GRAPH_MEETING]}), day.replace(hour=9))
        counted = await _versions(db_engine, lambda rows: len(rows) == 2 and all(r[5] == 1 for r in rows))

        at_10_05 = day.replace(hour=10, minute=5)
        stripped = {"kind": "calendar#event", "id": "mt-google", "status": "cancelled"}
        removed = {
            "@odata.type": "#microsoft.graph.event",
            "id": "AAMkMtGraph=",
            "@removed": {"reason": "deleted"},
        }
        google_deleted = await _deliver(stack, "google-calendar", dumps({"items": [stripped]}), at_10_05)
        graph_deleted = await _deliver(stack, "microsoft-graph", dumps({"value": [removed]}), at_10_05)
        retracted = await _versions(db_engine, lambda rows: len(rows) == 2 and all(r[5] == 2 for r in rows))

        at_10_06 = day.replace(hour=10, minute=6)
        read = "2026-11-25T10:00:30+00:00"
        google_stale = await _deliver(
            stack,
            "google-calendar",
            dumps({"observed_at": read, "items": [_google_meeting("2026-11-25T10:00:00.000Z")]}),
            at_10_06,
        )
        graph_stale = await _deliver(
            stack,
            "microsoft-graph",
            dumps({"observed_at": read, "value": [_graph_meeting("2026-11-25T10:00:00.0000000Z")]}),
            at_10_06,
        )
        await drained(kafka_settings)
        still = await _versions(db_engine, lambda rows: len(rows) == 2)
        still_held = await _rep_meetings(db_engine, lambda rows: True)
        held_revisions = await poll_rows(
            db_engine,
            "SELECT source, revision FROM activities WHERE tenant_id = :t ORDER BY source",
            {"t": TENANT},
            lambda rows: True,
        )

        at_10_08 = day.replace(hour=10, minute=8)
        await _deliver(
            stack,
            "google-calendar",
            dumps({"items": [_google_meeting("2026-11-25T10:07:00.000Z")]}),
            at_10_08,
        )
        await _deliver(
            stack,
            "microsoft-graph",
            dumps({"value": [_graph_meeting("2026-11-25T10:07:00.0000000Z")]}),
            at_10_08,
        )
        restored = await _versions(db_engine, lambda rows: len(rows) == 2 and all(r[5] == 3 for r in rows))
        restored_held = await _rep_meetings(db_engine, lambda rows: sum(r[1] for r in rows) == 2)

    assert counted == {
        GOOGLE_ID: (1, "attributed", "rep-1", "owner_participates", 1, 1),
        GRAPH_ID: (1, "attributed", "rep-1", "owner_participates", 1, 1),
    }
    assert (google_deleted["deleted"], graph_deleted["deleted"]) == (1, 1)
    assert retracted == {
        GOOGLE_ID: (2, "excluded", None, "deleted_at_source", 2, 0),
        GRAPH_ID: (2, "excluded", None, "deleted_at_source", 2, 0),
    }
    # Read before the deletions: not published.
    assert [(a["accepted"], a["duplicates"]) for a in (google_stale, graph_stale)] == [(0, 0), (0, 0)]
    assert google_stale["ignored"] == [
        "google-calendar mt-google: read before a deletion of it read later, an older state"
    ]
    assert graph_stale["ignored"] == [
        "microsoft-graph AAMkMtGraph=: read before a deletion of it read later, an older state"
    ]
    assert still == retracted
    assert still_held == [("2026-11-23", 0), ("2026-11-24", 0)]
    assert held_revisions == [("google-calendar", 1795176000001), ("microsoft-graph", 1795339800001)]
    # Version 3, not 4: the 10:00 edits published nothing; the 10:07 edits restored both.
    assert restored == {
        GOOGLE_ID: (3, "attributed", "rep-1", "owner_participates", 3, 1),
        GRAPH_ID: (3, "attributed", "rep-1", "owner_participates", 3, 1),
    }
    assert restored_held == [("2026-11-23", 1), ("2026-11-24", 1)]


async def test_a_deletion_read_before_a_restore_and_delivered_after_it_is_dated_when_it_was_read(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """The connector reads Google's stripped deletion at 10:05 and, ingest unavailable, delivers
    it at 10:10 with ``observed_at`` 10:05; the event restored from the bin at 10:07 (its next
    page) is delivered at 10:11. Counted, not counted, counted again. Dated by its receipt, the
    deletion (10:10) was newer than the restore, and the meeting stayed deleted."""
    keys = await setup_tenant(db_engine)
    auth = {"Authorization": f"Bearer {keys['ingest']}"}
    day = datetime(2026, 11, 25, tzinfo=UTC)
    mailbox = "ana.seller@acme.example"
    async with in_process_stack(kafka_settings, database_settings) as stack:
        await _sync_crm(stack, db_engine, auth, *CRM)
        meeting = {"mailbox": mailbox, "items": [_google_meeting("2026-11-20T12:00:00.000Z")]}
        await _deliver(stack, "google-calendar", dumps(meeting), day.replace(hour=9))
        counted = await _versions(db_engine, lambda rows: len(rows) == 1 and rows[0][5] == 1)
        stripped = {"kind": "calendar#event", "id": "mt-google", "status": "cancelled"}
        read = {"mailbox": mailbox, "observed_at": "2026-11-25T10:05:00+00:00", "items": [stripped]}
        await _deliver(stack, "google-calendar", dumps(read), day.replace(hour=10, minute=10))
        deleted = await _versions(db_engine, lambda rows: len(rows) == 1 and rows[0][5] == 2)
        restore = {"mailbox": mailbox, "items": [_google_meeting("2026-11-25T10:07:00.000Z")]}
        await _deliver(stack, "google-calendar", dumps(restore), day.replace(hour=10, minute=11))
        restored = await _versions(db_engine, lambda rows: len(rows) == 1 and rows[0][5] == 3)
        held = await _rep_meetings(db_engine, lambda rows: sum(r[1] for r in rows) == 1)

    assert counted == {GOOGLE_ID: (1, "attributed", "rep-1", "owner_participates", 1, 1)}
    assert deleted == {GOOGLE_ID: (2, "excluded", None, "deleted_at_source", 2, 0)}
    assert restored == {GOOGLE_ID: (3, "attributed", "rep-1", "owner_participates", 3, 1)}
    assert held == [("2026-11-23", 1)]


async def test_a_restore_by_a_source_whose_clock_is_behind_ours_is_newer_than_the_deletion_it_follows(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """Google's and Graph's clocks run 3 minutes behind ours. Both meetings are deleted, each
    deletion undated by its source and read at 10:05 by ours; each is restored at 10:06 by ours,
    which the source dates 10:03. Counted, not counted, counted again. Before, the deletions were
    dated by our clock (10:05) and each restore (10:03 by the source's) was dropped as a stale
    copy: both meetings stayed deleted. A copy of the revision deleted, delivered after it, still
    changes nothing."""
    keys = await setup_tenant(db_engine)
    auth = {"Authorization": f"Bearer {keys['ingest']}"}
    day = datetime(2026, 11, 25, tzinfo=UTC)
    mailbox = "ana.seller@acme.example"
    graph_restored = {**GRAPH_MEETING, "lastModifiedDateTime": "2026-11-25T10:03:00.0000000Z"}
    async with in_process_stack(kafka_settings, database_settings) as stack:
        await _sync_crm(stack, db_engine, auth, *CRM)
        meeting = {"mailbox": mailbox, "items": [_google_meeting("2026-11-20T12:00:00.000Z")]}
        await _deliver(stack, "google-calendar", dumps(meeting), day.replace(hour=9))
        await _deliver(
            stack,
            "microsoft-graph",
            dumps({"mailbox": mailbox, "value": [GRAPH_MEETING]}),
            day.replace(hour=9),
        )
        counted = await _versions(db_engine, lambda rows: len(rows) == 2 and all(r[5] == 1 for r in rows))
        stripped = {"kind": "calendar#event", "id": "mt-google", "status": "cancelled"}
        removed = {
            "@odata.type": "#microsoft.graph.event",
            "id": "AAMkMtGraph=",
            "@removed": {"reason": "deleted"},
        }
        at_ten_five = day.replace(hour=10, minute=5)
        await _deliver(
            stack, "google-calendar", dumps({"mailbox": mailbox, "items": [stripped]}), at_ten_five
        )
        await _deliver(stack, "microsoft-graph", dumps({"mailbox": mailbox, "value": [removed]}), at_ten_five)
        deleted = await _versions(db_engine, lambda rows: len(rows) == 2 and all(r[5] == 2 for r in rows))
        # The revision deleted, posted again: nothing.
        await _deliver(stack, "google-calendar", dumps(meeting), day.replace(hour=10, minute=6))
        restore = {"mailbox": mailbox, "items": [_google_meeting("2026-11-25T10:03:00.000Z")]}
        at_ten_six = day.replace(hour=10, minute=6)
        await _deliver(stack, "google-calendar", dumps(restore), at_ten_six)
        await _deliver(
            stack, "microsoft-graph", dumps({"mailbox": mailbox, "value": [graph_restored]}), at_ten_six
        )
        restored = await _versions(db_engine, lambda rows: len(rows) == 2 and all(r[5] == 3 for r in rows))
        held = await _rep_meetings(db_engine, lambda rows: sum(r[1] for r in rows) == 2)
        stored = await poll_rows(
            db_engine,
            "SELECT activity_id, revision FROM activities WHERE tenant_id = :t ORDER BY activity_id",
            {"t": TENANT},
            lambda rows: True,
        )

    assert counted == {
        GOOGLE_ID: (1, "attributed", "rep-1", "owner_participates", 1, 1),
        GRAPH_ID: (1, "attributed", "rep-1", "owner_participates", 1, 1),
    }
    assert deleted == {
        GOOGLE_ID: (2, "excluded", None, "deleted_at_source", 2, 0),
        GRAPH_ID: (2, "excluded", None, "deleted_at_source", 2, 0),
    }
    assert restored == {
        GOOGLE_ID: (3, "attributed", "rep-1", "owner_participates", 3, 1),
        GRAPH_ID: (3, "attributed", "rep-1", "owner_participates", 3, 1),
    }
    assert held == [("2026-11-23", 1), ("2026-11-24", 1)]
    # Each source's own clock: 10:03 on the 25th, in ms.
    assert sorted(r for _, r in stored) == [1795600980000, 1795600980000]


async def test_a_salesforce_task_undeleted_with_its_last_modified_date_unchanged_counts_again(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """Ana's mail logged as a Task (modified 11-20 15:00:02), deleted on 11-21 and undeleted from
    the Recycle Bin on 11-22, each read back by a sync job: ``LastModifiedDate`` stays 11-20,
    ``SystemModstamp`` moves on. Counted, not counted, counted. Before, the undelete was read at
    the revision the deletion had deleted: a redelivery to ingest, and the mail stayed deleted."""
    await setup_tenant(db_engine)
    task_id = "00T5j00000Q1a4aEAB"
    mail_id = activity_id_for(TENANT, "salesforce", task_id)
    modified = "2026-11-20T15:00:02.000Z"

    async def counted(version: int) -> list[tuple[Any, ...]]:
        rows: list[tuple[Any, ...]] = await poll_rows(
            db_engine,
            "SELECT a.revision, t.version, t.status, t.rep_id, t.deal_id, c.version, c.emails_sent "
            "FROM activities a JOIN attributions t USING (tenant_id, activity_id) "
            "JOIN metric_contributions c USING (tenant_id, activity_id) "
            "WHERE a.tenant_id = :t AND a.activity_id = :a",
            {"t": TENANT, "a": mail_id},
            lambda rows: bool(rows) and rows[0][1] == rows[0][5] == version,
        )
        return rows

    async with in_process_stack(kafka_settings, database_settings) as stack:
        await _deliver(stack, "salesforce", SALESFORCE_CRM)
        sent = _mapped(("account", "0015j00000ZkM3hAAF"), ("rep", ANA), ("deal", OPPORTUNITY))
        await references_landed(db_engine, TENANT, sent)
        await _deliver(stack, "salesforce", _email_task(task_id, modified, stamp=modified))
        first = await counted(1)
        deleted = _email_task(task_id, modified, stamp="2026-11-21T08:00:00.000Z", deleted=True)
        await _deliver(stack, "salesforce", deleted)
        second = await counted(2)
        undeleted = _email_task(task_id, modified, stamp="2026-11-22T08:00:00.000Z")
        await _deliver(stack, "salesforce", undeleted)
        third = await counted(3)

    # Revisions in ms: 11-20 15:00:02 (LastModifiedDate), 11-21 08:00 (the deletion's
    # SystemModstamp, held with the retraction), 11-22 08:00 (the undelete's).
    assert first == [(1795186802000, 1, "attributed", ANA, OPPORTUNITY, 1, 1)]
    assert second == [(1795248000000, 2, "excluded", None, None, 2, 0)]
    assert third == [(1795334400000, 3, "attributed", ANA, OPPORTUNITY, 3, 1)]


async def test_a_deletion_received_before_the_source_s_time_of_the_edit_it_follows_still_deletes(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """Graph's clock 2 minutes ahead of ours: the meeting, modified at 10:06 by Graph's clock, is
    delivered at 10:04 by ours; its ``@removed`` entry is received at 10:05. Published right after
    the revision published before it (10:06 + 1 ms, Graph's order), the deletion retracts the
    meeting (dated 10:05 by our clock, attribution would read it as older than the meeting it
    deletes, and skip it)."""
    keys = await setup_tenant(db_engine)
    auth = {"Authorization": f"Bearer {keys['ingest']}"}
    day = datetime(2026, 11, 25, 10, tzinfo=UTC)
    removed = {
        "@odata.type": "#microsoft.graph.event",
        "id": "AAMkMtGraph=",
        "@removed": {"reason": "deleted"},
    }
    async with in_process_stack(kafka_settings, database_settings) as stack:
        await _sync_crm(stack, db_engine, auth, *CRM)
        edited = _graph_meeting("2026-11-25T10:06:00.0000000Z")
        await _deliver(stack, "microsoft-graph", dumps({"value": [edited]}), day.replace(minute=4))
        counted = await _versions(db_engine, lambda rows: len(rows) == 1 and rows[0][5] == 1)
        await _deliver(stack, "microsoft-graph", dumps({"value": [removed]}), day.replace(minute=5))
        retracted = await _versions(db_engine, lambda rows: len(rows) == 1 and rows[0][5] == 2)
        held = await _rep_meetings(db_engine, lambda rows: sum(r[1] for r in rows) == 0)
        revision = await poll_rows(
            db_engine,
            "SELECT revision FROM activities WHERE tenant_id = :t AND activity_id = :a",
            {"t": TENANT, "a": GRAPH_ID},
            lambda rows: True,
        )

    assert counted == {GRAPH_ID: (1, "attributed", "rep-1", "owner_participates", 1, 1)}
    assert retracted == {GRAPH_ID: (2, "excluded", None, "deleted_at_source", 2, 0)}
    assert held == [("2026-11-24", 0)]
    assert revision == [(1795601160001,)]


async def test_a_guest_s_removal_read_after_the_organizer_s_page_does_not_drop_it_his_own_deletion_does(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """Bob edits his meeting at 10:00, his calendar's page read at 10:00:30 but its post held up;
    Ana removes the meeting from her calendar, read at 10:05 (Google's stripped event, one id in
    both calendars). Bob's page, delivered at 10:06, is published: her removal is no newer state
    of his calendar (before, it was dropped as read before a deletion, and his edit was lost).
    Bob then deletes it, read at 10:10: his page read at 10:09 and Ana's read at 10:09, both
    delivered at 10:11, are older states (his calendar's, the organizer's, deletion) and dropped."""
    keys = await setup_tenant(db_engine)
    auth = {"Authorization": f"Bearer {keys['ingest']}"}
    day = datetime(2026, 11, 25, tzinfo=UTC)
    bob, ana = "bob.seller@acme.example", "ana.seller@acme.example"
    stripped = {"kind": "calendar#event", "id": "mt-bob", "status": "cancelled"}

    def page(mailbox: str, observed: str, *items: dict[str, Any]) -> bytes:
        return dumps({"mailbox": mailbox, "observed_at": observed, "items": list(items)})

    edited = {**_bobs_meeting(), "updated": "2026-11-25T10:00:00.000Z"}
    async with in_process_stack(kafka_settings, database_settings) as stack:
        await _sync_crm(stack, db_engine, auth, *CRM, BOB)
        await _deliver(
            stack, "google-calendar", dumps({"mailbox": bob, "items": [_bobs_meeting()]}), day.replace(hour=9)
        )
        await _versions(db_engine, lambda rows: len(rows) == 1 and rows[0][5] == 1)

        at_10_05 = day.replace(hour=10, minute=5)
        await _deliver(stack, "google-calendar", page(ana, "2026-11-25T10:05:00+00:00", stripped), at_10_05)
        await _versions(db_engine, lambda rows: len(rows) == 1 and rows[0][5] == 2)
        late = await _deliver(
            stack,
            "google-calendar",
            page(bob, "2026-11-25T10:00:30+00:00", edited),
            day.replace(hour=10, minute=6),
        )
        published = await poll_rows(
            db_engine,
            "SELECT revision FROM activities WHERE tenant_id = :t",
            {"t": TENANT},
            lambda rows: rows == [(1795600800000,)],
        )

        await _deliver(
            stack,
            "google-calendar",
            page(bob, "2026-11-25T10:10:00+00:00", stripped),
            day.replace(hour=10, minute=10),
        )
        # Metrics holds his deletion too (its fourth version), as every other step here waits for.
        deleted = await _versions(
            db_engine, lambda rows: len(rows) == 1 and rows[0][2] == "excluded" and rows[0][5] == 4
        )
        again = {**edited, "updated": "2026-11-25T10:08:00.000Z"}
        at_10_11 = day.replace(hour=10, minute=11)
        his = await _deliver(
            stack, "google-calendar", page(bob, "2026-11-25T10:09:00+00:00", again), at_10_11
        )
        hers = await _deliver(
            stack, "google-calendar", page(ana, "2026-11-25T10:09:00+00:00", again), at_10_11
        )
        await drained(kafka_settings)
        still = await _versions(db_engine, lambda rows: len(rows) == 1)

    assert (late["accepted"], late["ignored"]) == (1, [])
    assert published == [(1795600800000,)]
    assert deleted[BOBS_ID][1:3] == ("excluded", None)
    stale = "google-calendar mt-bob: read before a deletion of it read later, an older state"
    assert [(a["accepted"], a["ignored"]) for a in (his, hers)] == [(0, [stale]), (0, [stale])]
    assert still == deleted
