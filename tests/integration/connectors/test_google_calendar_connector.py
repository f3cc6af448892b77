"""Google Calendar: a 3-day backfill with recurring instances and paging, a watch push, a replayed
push, an expired sync token (410) and a calendar refused with 403, through ingest to ``activities``."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.settings import DatabaseSettings, KafkaSettings
from services.connectors.handlers import sync_due

from .connectors_support import TENANT, activities, connect_google, harness, now_utc
from .google_fake import google_error

ANA = "ana@acme.example"
BO = "bo@acme.example"
BUYER = "buyer@globex.example"


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _next_cancelled(rows: list[dict[str, Any]]) -> bool:
    return any(r["external_id"] == "next" and r["outcome"] == "cancelled" for r in rows)


def _event(event_id: str, start: datetime, updated: datetime, **extra: Any) -> dict[str, Any]:
    return {
        "id": event_id,
        "status": "confirmed",
        "summary": f"Meeting {event_id.split('_')[0]}",
        "start": {"dateTime": _iso(start)},
        "end": {"dateTime": _iso(start + timedelta(minutes=30))},
        "organizer": {"email": ANA},
        "attendees": [
            {"email": ANA, "organizer": True, "responseStatus": "accepted"},
            {"email": BUYER, "responseStatus": "accepted"},
            {"email": "cfo@globex.example", "responseStatus": "declined"},
            {"email": "room-1@resource.calendar.google.com", "resource": True, "responseStatus": "accepted"},
        ],
        "iCalUID": f"{event_id.split('_')[0]}@google.com",
        "updated": _iso(updated),
        **extra,
    }


async def test_calendar_backfill_watch_push_replay_410_and_a_refused_calendar(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    settings = {"internal_domains": ["acme.example"], "privacy": {"keep_subjects": True}}
    async with harness(
        kafka_settings, database_settings, db_engine, settings, push_base_url="https://spm.example.com"
    ) as h:
        fake, now = h.fake, now_utc().replace(microsecond=0)
        edited = now - timedelta(days=6)
        fake.put_event(ANA, _event("old", now - timedelta(days=5), edited))
        fake.put_event(ANA, _event("demo", now - timedelta(days=2), edited))
        for day in (1, 2):
            start = now - timedelta(days=day, hours=3)
            fake.put_event(
                ANA, _event(f"weekly_{start:%Y%m%dT%H%M%SZ}", start, edited, recurringEventId="weekly")
            )
        fake.put_event(ANA, _event("next", now + timedelta(days=1), edited))
        fake.put_event(ANA, _event("call", now - timedelta(hours=5), edited))
        fake.put_event(BO, _event("bo-1", now - timedelta(hours=5), edited))
        fake.forbidden.add(BO)
        fake.fail_next[("events.list", ANA)] = [
            google_error(403, "User Rate Limit Exceeded", "userRateLimitExceeded", "PERMISSION_DENIED"),
            google_error(
                429, "Rate Limit Exceeded", "rateLimitExceeded", "RESOURCE_EXHAUSTED", {"Retry-After": "2"}
            ),
        ]
        await connect_google(
            h.deps.store,
            "google-calendar",
            [ANA, BO],
            credentials=h.service_account,
            backfill_days=3,
            now=now,
        )
        first = sorted((r.fetched, r.error or "") for r in await sync_due(h.deps))
        assert first[0] == (0, "403 forbidden: Delegation denied for bo@acme.example")
        assert first[1] == (5, "")
        # The quota 403 backed off by the doubling schedule, the 429 by its Retry-After.
        assert h.sleeps == [0.5, 2.0]
        rows = await activities(db_engine, kafka_settings, "google-calendar", 5)
        assert [(r["external_id"], r["outcome"], r["thread_id"], r["subject"]) for r in rows] == [
            ("call", "held", None, "Meeting call"),
            ("demo", "held", None, "Meeting demo"),
            ("next", "scheduled", None, "Meeting next"),
            (f"weekly_{now - timedelta(days=2, hours=3):%Y%m%dT%H%M%SZ}", "held", "weekly", "Meeting weekly"),
            (f"weekly_{now - timedelta(days=1, hours=3):%Y%m%dT%H%M%SZ}", "held", "weekly", "Meeting weekly"),
        ]
        lists = [params for op, user, params in fake.requests if op == "events.list" and user == ANA]
        assert all(("singleEvents", "true") in p for p in lists)
        fields = dict(lists[0])["fields"]
        assert "summary" in fields
        assert "description" not in fields
        assert len(lists) == 5  # two refused, then three pages of two

        # The watch channel points at ingest's push route with the derived token.
        watch = fake.watches[ANA]
        assert watch["address"] == f"https://spm.example.com/v1/push/google-calendar/{TENANT}"
        assert watch["type"] == "web_hook"
        channel = {
            "x-goog-channel-id": watch["id"],
            "x-goog-channel-token": watch["token"],
            "x-goog-resource-id": f"r-{ANA}",
            "x-goog-resource-state": "exists",
            "x-goog-message-number": "2",
        }

        # "next" is cancelled: the push leads to exactly that change.
        fake.put_event(ANA, _event("next", now + timedelta(days=1), now, status="cancelled"))
        pushed = await h.ingest.post(f"/v1/push/google-calendar/{TENANT}", headers=channel)
        assert pushed.status_code == 204
        assert [r.fetched for r in await sync_due(h.deps)] == [1]
        rows = await activities(db_engine, kafka_settings, "google-calendar", 5, until=_next_cancelled)
        assert [r["outcome"] for r in rows if r["external_id"] == "next"] == ["cancelled"]

        # Replayed: nothing new. A wrong token: refused.
        assert (await h.ingest.post(f"/v1/push/google-calendar/{TENANT}", headers=channel)).status_code == 204
        assert [r.fetched for r in await sync_due(h.deps)] == [0]
        forged = dict(channel, **{"x-goog-channel-token": "guess"})
        assert (await h.ingest.post(f"/v1/push/google-calendar/{TENANT}", headers=forged)).status_code == 401

        # The sync token expired (410): the window is listed again and nothing is added.
        async with db_engine.connect() as conn:
            token = await conn.scalar(
                text(
                    "SELECT cursor FROM connector_mailboxes WHERE address = :a AND provider = 'google-calendar'"
                ),
                {"a": ANA},
            )
        fake.expired_sync_tokens.add(str(token))
        assert (await h.ingest.post(f"/v1/push/google-calendar/{TENANT}", headers=channel)).status_code == 204
        results = await sync_due(h.deps)
        assert [r.error for r in results] == [None]
        assert results[0].fetched == 1  # "call", the one event ending since a day before the last success
        rows = await activities(db_engine, kafka_settings, "google-calendar", 5)
        assert len(rows) == 5
        assert [r["outcome"] for r in rows if r["external_id"] == "next"] == ["cancelled"]
