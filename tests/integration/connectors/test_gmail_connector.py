"""Gmail mailboxes connected with a 3-day backfill, then pushed, replayed, resynced, refused.

The fake follows Google's documentation (see ``google_fake``); the activities are read from the
``activities`` table written by attribution, so the path is connectors → ingest's signed
webhook route → broker → attribution.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.settings import DatabaseSettings, KafkaSettings
from libs.common.tenancy import push_token
from services.connectors.domain.gmail import ADDRESS_HEADERS
from services.connectors.handlers import sync_due

from .connectors_support import TENANT, activities, connect_google, harness, make_due, newest_secret, now_utc
from .google_fake import google_error, pubsub_push

ANA = "ana@acme.example"
BO = "bo@acme.example"
CY = "cy@acme.example"
BUYER = "Buyer <buyer@globex.example>"


async def _state(db: AsyncEngine) -> dict[str, dict[str, object]]:
    async with db.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT address, cursor, full_sync_since, failures, last_error, subscription_id, fetched "
                "FROM connector_mailboxes ORDER BY address"
            )
        )
        return {r.address: dict(r._mapping) for r in rows}


async def test_gmail_backfill_push_replay_resync_and_a_refused_mailbox(
    kafka_settings: KafkaSettings,
    database_settings: DatabaseSettings,
    db_engine: AsyncEngine,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with harness(
        kafka_settings, database_settings, db_engine, {"internal_domains": ["acme.example"]}
    ) as h:
        fake, now = h.fake, now_utc()
        # Ana: 4 messages within 3 days (one sent, one a draft), 2 older; Bo: 3 within 3 days.
        fake.add_message(ANA, "a-old-1", now - timedelta(days=5), BUYER, ANA)
        fake.add_message(ANA, "a-old-2", now - timedelta(days=4), BUYER, ANA)
        fake.add_message(ANA, "a-1", now - timedelta(days=2, hours=20), BUYER, ANA)
        fake.add_message(ANA, "a-2", now - timedelta(days=1), ANA, BUYER, labels=("SENT",))
        fake.add_message(ANA, "a-draft", now - timedelta(hours=12), ANA, BUYER, labels=("DRAFT",))
        fake.add_message(ANA, "a-3", now - timedelta(hours=2), BUYER, ANA)
        for index in range(3):
            fake.add_message(BO, f"b-{index}", now - timedelta(hours=10 + index), BUYER, BO)
        # One malformed message (no Message-ID): ingest refuses it alone, the others go through.
        fake.add_message(BO, "b-bad", now - timedelta(hours=9), BUYER, BO, with_message_id=False)
        fake.add_message(CY, "c-1", now - timedelta(hours=1), BUYER, CY)
        fake.forbidden.add(CY)
        # Quota: Bo's first message fetch is answered 429 with Retry-After: 1.
        fake.fail_next[("messages.get", BO)] = [
            google_error(
                429,
                "Too many concurrent requests for user.",
                "rateLimitExceeded",
                "RESOURCE_EXHAUSTED",
                {"Retry-After": "1"},
            )
        ]

        await connect_google(
            h.deps.store,
            "gmail",
            [ANA, BO, CY],
            credentials=h.service_account,
            options={"pubsub_topic": "projects/acme-project/topics/spm-gmail"},
            backfill_days=3,
            now=now,
        )
        first = {r.mailbox_id: r for r in await sync_due(h.deps)}
        state = await _state(db_engine)

        # Ana 4 posted (the draft is ignored by ingest), Bo 4 (one refused by ingest); Cy refused
        # by Google without stopping them.
        assert sorted(r.fetched for r in first.values()) == [0, 4, 4]
        assert state[CY]["failures"] == 1
        # The refusal names the mailbox: kept in its row, never in the connectors' logs.
        ours = [r for r in caplog.records if r.name.startswith("services.connectors")]
        failures = [r for r in ours if r.getMessage() == "mailbox sync failed"]
        assert [getattr(r, "error", None) for r in failures] == ["403 forbidden"]
        assert all(CY not in str(vars(r)) for r in ours)
        assert "403" in str(state[CY]["last_error"])
        assert state[ANA]["failures"] == 0
        assert state[ANA]["full_sync_since"] is None
        assert state[ANA]["cursor"] == str(fake.history_id)
        assert state[ANA]["subscription_id"] == "projects/acme-project/topics/spm-gmail"
        assert fake.watches[ANA] == {"topicName": "projects/acme-project/topics/spm-gmail"}
        assert h.sleeps == [1.0]
        rows = await activities(db_engine, kafka_settings, "gmail", 6)
        assert [(r["external_id"], r["direction"], r["outcome"]) for r in rows] == [
            ("<a-1@mail.example>", "inbound", "received"),
            ("<a-2@mail.example>", "outbound", "sent"),
            ("<a-3@mail.example>", "inbound", "received"),
            ("<b-0@mail.example>", "inbound", "received"),
            ("<b-1@mail.example>", "inbound", "received"),
            ("<b-2@mail.example>", "inbound", "received"),
        ]
        # Headers only, and no Subject: the tenant neither keeps subjects nor filters on them.
        gets = [params for op, _, params in fake.requests if op == "messages.get"]
        assert gets
        assert all(
            [v for k, v in p if k == "metadataHeaders"] == list(ADDRESS_HEADERS)
            and ("format", "metadata") in p
            for p in gets
        )
        assert all(r["subject"] is None for r in rows)
        # One JWT grant per impersonated mailbox.
        assert dict(fake.grants) == {ANA: 1, BO: 1, CY: 1}

        # A push for Ana names two new messages: exactly those two arrive.
        fake.add_message(ANA, "a-4", now_utc(), BUYER, ANA)
        fake.add_message(ANA, "a-5", now_utc(), ANA, BUYER, labels=("SENT",))
        fake.revoke_tokens()  # the cached token is refused once: refreshed, not a failure
        token = push_token(await newest_secret(db_engine, "gmail"), TENANT, "gmail")
        push = pubsub_push(ANA, fake.history_id)
        refused = await h.ingest.post(f"/v1/push/gmail/{TENANT}?token=wrong", content=push)
        assert refused.status_code == 401
        accepted = await h.ingest.post(f"/v1/push/gmail/{TENANT}?token={token}", content=push)
        assert accepted.status_code == 204
        results = await sync_due(h.deps)
        assert [r.fetched for r in results] == [2]  # only Ana was due
        rows = await activities(db_engine, kafka_settings, "gmail", 8)
        assert len(rows) == 8
        assert fake.grants[ANA] == 2

        # The same notification again: synced from the stored cursor, nothing new.
        assert (
            await h.ingest.post(f"/v1/push/gmail/{TENANT}?token={token}", content=push)
        ).status_code == 204
        assert [r.fetched for r in await sync_due(h.deps)] == [0]
        assert len(await activities(db_engine, kafka_settings, "gmail", 8)) == 8

        # History expired: a full resync lists the window again and ingest adds nothing.
        fake.expire_history(ANA)
        assert (
            await h.ingest.post(f"/v1/push/gmail/{TENANT}?token={token}", content=push)
        ).status_code == 204
        results = await sync_due(h.deps)
        assert [r.error for r in results] == [None]
        # From a day before the last success: the draft, a-3, a-4 and a-5 are posted again.
        assert results[0].fetched == 4
        assert any(op == "history.list" for op, _, _ in fake.requests[-12:])
        state = await _state(db_engine)
        assert state[ANA]["cursor"] == str(fake.history_id)
        assert state[ANA]["full_sync_since"] is None
        assert len(await activities(db_engine, kafka_settings, "gmail", 8)) == 8

        # Cy's delegation is granted: the next attempt (after its backoff) catches up.
        fake.forbidden.clear()
        await make_due(db_engine)
        assert sorted(r.fetched for r in await sync_due(h.deps)) == [0, 0, 1]
        assert len(await activities(db_engine, kafka_settings, "gmail", 9)) == 9
        assert (await _state(db_engine))[CY]["failures"] == 0


async def test_gmail_push_for_unknown_tenant_or_bad_body_is_refused_by_field(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    async with harness(kafka_settings, database_settings, db_engine, {}) as h:
        token = push_token(await newest_secret(db_engine, "gmail"), TENANT, "gmail")
        bad = await h.ingest.post(
            f"/v1/push/gmail/{TENANT}?token={token}", content=b'{"message": {"data": "!!"}}'
        )
        assert bad.status_code == 422
        assert "message.data" in bad.json()["detail"]
        missing = await h.ingest.post(f"/v1/push/gmail/{TENANT}", content=pubsub_push(ANA, 1))
        assert missing.status_code == 401
        assert missing.json()["detail"] == "token: missing"
        unknown = await h.ingest.post(f"/v1/push/yahoo/{TENANT}?token={token}", content=pubsub_push(ANA, 1))
        assert unknown.status_code == 404
        # A push for a mailbox nobody connected is acknowledged (Pub/Sub would retry for days).
        assert (
            await h.ingest.post(f"/v1/push/gmail/{TENANT}?token={token}", content=pubsub_push(ANA, 1))
        ).status_code == 204


async def test_a_stopped_backfill_resumes_at_its_saved_page(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    async with harness(
        kafka_settings, database_settings, db_engine, {"internal_domains": ["acme.example"]}
    ) as h:
        fake, now = h.fake, now_utc()
        for index in range(5):
            fake.add_message(ANA, f"a-{index}", now - timedelta(hours=5 * index + 1), BUYER, ANA)
        # The second page of the listing is refused once (as if the process stopped there).
        fake.fail_next[("messages.list", ANA)] = [
            None,
            google_error(403, "Mail service not enabled", "failedPrecondition", "FAILED_PRECONDITION"),
        ]
        await connect_google(
            h.deps.store, "gmail", [ANA], credentials=h.service_account, backfill_days=3, now=now
        )
        [stopped] = await sync_due(h.deps)
        assert stopped.error == "403 failedPrecondition: Mail service not enabled"
        async with db_engine.connect() as conn:
            row = (
                await conn.execute(
                    text(
                        "SELECT full_sync_page_token, full_sync_cursor, cursor, fetched, failures FROM connector_mailboxes"
                    )
                )
            ).one()
        assert (row.full_sync_page_token, row.full_sync_cursor, row.cursor, row.fetched, row.failures) == (
            "2",
            str(fake.history_id),
            None,
            2,
            1,
        )
        assert len(await activities(db_engine, kafka_settings, "gmail", 2)) == 2

        await make_due(db_engine)
        [resumed] = await sync_due(h.deps)
        assert (resumed.fetched, resumed.error) == (3, None)
        listings = [dict(params).get("pageToken") for op, _, params in fake.requests if op == "messages.list"]
        assert listings == [None, "2", "2", "4"]  # the refused call, then resumed where it stopped
        assert [op for op, _, _ in fake.requests].count("profile") == 1
        assert len(await activities(db_engine, kafka_settings, "gmail", 5)) == 5
