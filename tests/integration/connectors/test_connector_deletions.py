"""Meetings deleted in the calendar, as the connectors' incremental syncs see them: Google's
``events.list`` with a sync token returns the event stripped to its id and ``status: cancelled``,
Graph's ``calendarView/delta`` returns ``{"id", "@removed": {"reason": "deleted"}}``. Both reach
attribution, through ingest and the real broker, and the meeting's attribution is retracted."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.contracts.activities import activity_id_for
from libs.common.settings import DatabaseSettings, KafkaSettings
from services.connectors.handlers import connect_mailboxes, sync_due
from tests.integration.polling import poll_rows

from .connectors_support import CLIENT_ID, CLIENT_SECRET, DIRECTORY, TENANT, harness, make_due, now_utc
from .graph_fake import graph_event

ANA = "ana@acme.example"
BUYER = "buyer@globex.example"
SETTINGS = {"internal_domains": ["acme.example"]}
ATTRIBUTION = "SELECT version, status, explanation->>'rule_path' FROM attributions WHERE tenant_id = :t AND activity_id = :a"


def _google_event(event_id: str, start: datetime) -> dict[str, Any]:
    return {
        "id": event_id,
        "status": "confirmed",
        "start": {"dateTime": start.strftime("%Y-%m-%dT%H:%M:%SZ")},
        "end": {"dateTime": (start + timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%SZ")},
        "organizer": {"email": ANA},
        "attendees": [
            {"email": ANA, "organizer": True, "responseStatus": "accepted"},
            {"email": BUYER, "responseStatus": "accepted"},
        ],
        "iCalUID": f"{event_id}@google.com",
        "updated": (start - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


async def _connect(h: Any, vendor: str, addresses: list[str], now: datetime) -> None:
    """The calendars of ``addresses`` connected through ``vendor`` (three days of backfill)."""
    if vendor == "google":
        kind, credentials, options = "google-calendar", h.service_account, {}
    else:
        kind, credentials = "microsoft-calendar", CLIENT_SECRET
        options = {"directory_tenant_id": DIRECTORY, "client_id": CLIENT_ID}
    await connect_mailboxes(
        h.deps.store,
        TENANT,
        kind,
        vendor=vendor,
        credentials=credentials,
        options=options,
        addresses=addresses,
        backfill_days=3,
        now=now,
    )


async def _attribution(db: AsyncEngine, source: str, external_id: str, version: int) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = await poll_rows(
        db,
        ATTRIBUTION,
        {"t": TENANT, "a": activity_id_for(TENANT, source, external_id)},
        lambda rows: bool(rows) and rows[0][0] == version,
    )
    return rows


async def test_a_google_event_deleted_between_two_syncs_is_retracted(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    async with harness(kafka_settings, database_settings, db_engine, SETTINGS) as h:
        now = now_utc().replace(microsecond=0)
        h.fake.put_event(ANA, _google_event("demo", now - timedelta(days=1)))
        await _connect(h, "google", [ANA], now)
        assert [r.fetched for r in await sync_due(h.deps)] == [1]
        (first,) = await _attribution(db_engine, "google-calendar", "demo", 1)

        # Deleted in the calendar: the next incremental page holds it stripped to id and status.
        h.fake.put_event(ANA, {"kind": "calendar#event", "id": "demo", "status": "cancelled"})
        await make_due(db_engine)
        assert [r.fetched for r in await sync_due(h.deps)] == [1]
        (second,) = await _attribution(db_engine, "google-calendar", "demo", 2)

    assert first[0] == 1
    assert first[1] != "excluded"
    assert second == (2, "excluded", "deleted_at_source")


async def test_a_graph_event_removed_from_the_delta_is_retracted(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    async with harness(kafka_settings, database_settings, db_engine, SETTINGS) as h:
        now = now_utc().replace(microsecond=0)
        start = now - timedelta(days=1)
        h.graph.put(
            ANA,
            "calendarview",
            graph_event("demo-1", start, ANA, BUYER, modified=now - timedelta(days=4)),
            start,
        )
        await _connect(h, "microsoft", [ANA], now)
        assert [(r.fetched, r.error) for r in await sync_due(h.deps)] == [(1, None)]
        (first,) = await _attribution(db_engine, "microsoft-graph", "demo-1", 1)

        h.graph.put(ANA, "calendarview", {"id": "demo-1", "@removed": {"reason": "deleted"}}, start)
        await make_due(db_engine)
        assert [(r.fetched, r.error) for r in await sync_due(h.deps)] == [(1, None)]
        (second,) = await _attribution(db_engine, "microsoft-graph", "demo-1", 2)

    assert first[0] == 1
    assert first[1] != "excluded"
    assert second == (2, "excluded", "deleted_at_source")


BOB = "bob@acme.example"
PEOPLE = (
    "SELECT outcome, (SELECT array_agg((p->>'email') || ':' || (p->>'role') || ':' || "
    "coalesce(p->>'response_status', '-') ORDER BY p->>'email') "
    "FROM jsonb_array_elements(payload->'participants') p) FROM activities WHERE tenant_id = :t AND activity_id = :a"
)


async def _people(db: AsyncEngine, source: str, external_id: str) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = await poll_rows(
        db, PEOPLE, {"t": TENANT, "a": activity_id_for(TENANT, source, external_id)}, lambda rows: True
    )
    return rows


async def test_an_event_an_attendee_removed_from_her_calendar_is_only_hers_to_leave(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """Bob's meeting with a buyer is in Bob's and Ana's calendars (one Google id). Ana removes it
    from hers: her calendar's next sync strips it to id and status. The meeting goes on without
    her (a new version, not a retraction); when Bob deletes it, his calendar's sync retracts it."""
    async with harness(kafka_settings, database_settings, db_engine, SETTINGS) as h:
        now = now_utc().replace(microsecond=0)
        event = _google_event("demo", now - timedelta(days=1))
        event["organizer"] = {"email": BOB}
        event["attendees"] = [
            {"email": BOB, "organizer": True, "responseStatus": "accepted"},
            {"email": ANA, "responseStatus": "accepted"},
            {"email": BUYER, "responseStatus": "accepted"},
        ]
        h.fake.put_event(BOB, event)
        h.fake.put_event(ANA, event)
        await _connect(h, "google", [ANA, BOB], now)
        assert sorted(r.fetched for r in await sync_due(h.deps)) == [1, 1]
        (first,) = await _attribution(db_engine, "google-calendar", "demo", 1)
        before = await _people(db_engine, "google-calendar", "demo")

        h.fake.put_event(ANA, {"kind": "calendar#event", "id": "demo", "status": "cancelled"})
        await make_due(db_engine)
        assert sorted(r.fetched for r in await sync_due(h.deps)) == [0, 1]
        (second,) = await _attribution(db_engine, "google-calendar", "demo", 2)
        without_her = await _people(db_engine, "google-calendar", "demo")

        h.fake.put_event(BOB, {"kind": "calendar#event", "id": "demo", "status": "cancelled"})
        await make_due(db_engine)
        assert sorted(r.fetched for r in await sync_due(h.deps)) == [0, 1]
        (third,) = await _attribution(db_engine, "google-calendar", "demo", 3)

    # No CRM here: nobody to credit, before as after; the version follows the new facts.
    assert first == (1, "unmatched", "none")
    assert before == [
        ("held", [f"{ANA}:attendee:accepted", f"{BOB}:organizer:-", f"{BUYER}:attendee:accepted"])
    ]
    assert second == (2, "unmatched", "none")
    assert without_her == [("held", [f"{BOB}:organizer:-", f"{BUYER}:attendee:accepted"])]
    assert third == (3, "excluded", "deleted_at_source")


async def test_a_buyer_s_invitation_removed_from_the_only_rep_s_mailbox_is_called_off(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """A buyer invited Ana (Graph: her mailbox's copy). Ana deletes it: the buyer alone is left,
    so the meeting did not take place: cancelled, listing Ana declined (counts nothing)."""
    async with harness(kafka_settings, database_settings, db_engine, SETTINGS) as h:
        now = now_utc().replace(microsecond=0)
        start = now - timedelta(days=1)
        h.graph.put(
            ANA,
            "calendarview",
            graph_event("inv-1", start, BUYER, ANA, modified=now - timedelta(days=4)),
            start,
        )
        await _connect(h, "microsoft", [ANA], now)
        assert [(r.fetched, r.error) for r in await sync_due(h.deps)] == [(1, None)]
        (first,) = await _attribution(db_engine, "microsoft-graph", "inv-1", 1)
        before = await _people(db_engine, "microsoft-graph", "inv-1")

        h.graph.put(ANA, "calendarview", {"id": "inv-1", "@removed": {"reason": "deleted"}}, start)
        await make_due(db_engine)
        assert [(r.fetched, r.error) for r in await sync_due(h.deps)] == [(1, None)]
        (second,) = await _attribution(db_engine, "microsoft-graph", "inv-1", 2)
        called_off = await _people(db_engine, "microsoft-graph", "inv-1")

    assert first == (1, "unmatched", "none")
    assert before == [("held", [f"{ANA}:attendee:-", f"{BUYER}:organizer:-"])]
    # Only Ana is listed, declined, and she is internal: a version that counts nothing, not a deletion.
    assert second == (2, "internal", "internal")
    assert called_off == [("cancelled", [f"{ANA}:attendee:declined"])]


MEETINGS = "SELECT activity_id FROM activities WHERE tenant_id = :t AND payload->>'kind' = 'meeting'"


def _graph_copy(copy_id: str, start: datetime, now: datetime) -> dict[str, Any]:
    """Bob's meeting with Ana and a buyer as one mailbox holds it: its own id, the one UID."""
    accepted = {"response": "accepted", "time": "0001-01-01T00:00:00Z"}
    return graph_event(
        copy_id,
        start,
        BOB,
        ANA,
        modified=now - timedelta(days=4),
        attendees=[
            {"type": "required", "status": accepted, "emailAddress": {"name": "a", "address": ANA}},
            {"type": "required", "status": accepted, "emailAddress": {"name": "b", "address": BUYER}},
        ],
    )


async def test_two_synced_graph_mailboxes_holding_one_meeting_are_one_activity(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """Graph keeps a copy of Bob's meeting in Bob's and in Ana's mailbox, each under its own id
    and both under one ``iCalUId``: one meeting, not two. Ana deleting her copy takes her out of
    it; Bob deleting his deletes it."""
    async with harness(kafka_settings, database_settings, db_engine, SETTINGS) as h:
        now = now_utc().replace(microsecond=0)
        start = now - timedelta(days=1)
        h.graph.put(BOB, "calendarview", _graph_copy("mtg-bob", start, now), start)
        h.graph.put(ANA, "calendarview", _graph_copy("mtg-ana", start, now), start)
        await _connect(h, "microsoft", [ANA, BOB], now)
        assert sorted((r.fetched, r.error) for r in await sync_due(h.deps)) == [(1, None), (1, None)]
        ((meeting,),) = await poll_rows(db_engine, MEETINGS, {"t": TENANT}, lambda rows: len(rows) == 1)
        source_of = {activity_id_for(TENANT, "microsoft-graph", c): c for c in ("mtg-bob", "mtg-ana")}
        first = await _attribution(db_engine, "microsoft-graph", source_of[meeting], 1)
        before = await _people(db_engine, "microsoft-graph", source_of[meeting])

        h.graph.put(ANA, "calendarview", {"id": "mtg-ana", "@removed": {"reason": "deleted"}}, start)
        await make_due(db_engine)
        assert sorted(r.fetched for r in await sync_due(h.deps)) == [0, 1]
        second = await _attribution(db_engine, "microsoft-graph", source_of[meeting], 2)
        without_her = await _people(db_engine, "microsoft-graph", source_of[meeting])

        h.graph.put(BOB, "calendarview", {"id": "mtg-bob", "@removed": {"reason": "deleted"}}, start)
        await make_due(db_engine)
        assert sorted(r.fetched for r in await sync_due(h.deps)) == [0, 1]
        third = await _attribution(db_engine, "microsoft-graph", source_of[meeting], 3)
        meetings = await poll_rows(db_engine, MEETINGS, {"t": TENANT}, lambda rows: True)

    assert first == [(1, "unmatched", "none")]
    assert before == [("held", [f"{ANA}:attendee:-", f"{BOB}:organizer:-", f"{BUYER}:attendee:-"])]
    assert second == [(2, "unmatched", "none")]
    assert without_her == [("held", [f"{BOB}:organizer:-", f"{BUYER}:attendee:-"])]
    assert third == [(3, "excluded", "deleted_at_source")]
    assert meetings == [(meeting,)]
