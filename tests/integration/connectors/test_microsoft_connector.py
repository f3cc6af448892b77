"""Microsoft 365 mail and calendars: connected through the CLI (secret on stdin), backfilled by
delta queries, pushed through Graph subscriptions (validated against ingest), renewed, recreated
after removal, resynced after a 410, and isolated from a mailbox Graph refuses."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import orjson
import typer
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from typer.testing import CliRunner

from libs.common.settings import DatabaseSettings, KafkaSettings
from libs.common.tenancy import push_token
from libs.common.testing.stack import TEST_SECRET_KEY
from services.connectors.handlers import sync_due
from spm.commands.connectors import register

from .connectors_support import (
    CLIENT_ID,
    CLIENT_SECRET,
    DIRECTORY,
    TENANT,
    activities,
    harness,
    newest_secret,
    now_utc,
)
from .graph_fake import graph_error, graph_event, graph_message

ANA = "ana@contoso.example"
BO = "bo@contoso.example"
BUYER = "buyer@fabrikam.example"
PUSH = f"/v1/push/microsoft-graph/{TENANT}"


async def _subscriptions(db: AsyncEngine) -> dict[tuple[str, str], str | None]:
    async with db.connect() as conn:
        rows = await conn.execute(text("SELECT provider, address, subscription_id FROM connector_mailboxes"))
        return {(r.provider, r.address): r.subscription_id for r in rows}


async def test_microsoft_mail_and_calendar_end_to_end(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    settings = {"internal_domains": ["contoso.example"]}
    async with harness(
        kafka_settings, database_settings, db_engine, settings, push_base_url="https://spm.example.com"
    ) as h:
        graph, now = h.graph, now_utc().replace(microsecond=0)
        # Ana's mail: three in the window (one sent), one older; Bo is refused by Graph.
        graph.put(
            ANA, "inbox", graph_message("m-old", now - timedelta(days=5), BUYER, ANA), now - timedelta(days=5)
        )
        for index, hours in enumerate((60, 30)):
            sent = now - timedelta(hours=hours)
            graph.put(ANA, "inbox", graph_message(f"m-{index}", sent, BUYER, ANA), sent)
        sent = now - timedelta(hours=3)
        graph.put(ANA, "sentitems", graph_message("m-sent", sent, ANA, BUYER), sent)
        # The calendar's mail: the buyer's invitation and her answers (one "with a comment"), and
        # Ana's invitation in her Sent Items: the meetings count from the calendar, none is email.
        at = now - timedelta(hours=2)
        for message_id, odata_type, folder, sender, to in (
            ("m-invite", "eventMessageRequest", "inbox", BUYER, ANA),
            ("m-accept", "eventMessageResponse", "inbox", BUYER, ANA),
            ("m-comment", "eventMessageResponse", "inbox", BUYER, ANA),
            ("m-invited", "eventMessageRequest", "sentitems", ANA, BUYER),
        ):
            calendar_mail = graph_message(message_id, at, sender, to, subject="Kaiju", odata_type=odata_type)
            graph.put(ANA, folder, calendar_mail, at)
        # Ana's calendar: a meeting yesterday, two occurrences of a series (and its master), one tomorrow.
        graph.put(
            ANA,
            "calendarview",
            graph_event("demo-1", now - timedelta(days=1), ANA, BUYER, modified=now - timedelta(days=4)),
            now - timedelta(days=1),
        )
        for day in (1, 2):
            start = now - timedelta(days=day, hours=4)
            graph.put(
                ANA,
                "calendarview",
                graph_event(
                    f"weekly-{day}",
                    start,
                    ANA,
                    BUYER,
                    modified=now - timedelta(days=4),
                    type="occurrence",
                    seriesMasterId="weekly",
                ),
                start,
            )
        graph.put(
            ANA,
            "calendarview",
            graph_event(
                "weekly",
                now - timedelta(days=9),
                ANA,
                BUYER,
                modified=now - timedelta(days=9),
                type="seriesMaster",
            ),
            now,
        )
        graph.put(
            ANA,
            "calendarview",
            graph_event("next-1", now + timedelta(days=1), ANA, BUYER, modified=now - timedelta(days=4)),
            now + timedelta(days=1),
        )
        graph.forbidden.add(BO)
        graph.fail_next[("messages.delta", ANA)] = [
            graph_error(429, "TooManyRequests", "Please retry later.", {"Retry-After": "3"})
        ]

        # Connect through the CLI: the client secret is read from stdin, never an argument.
        app = typer.Typer()
        app.callback()(lambda: None)
        register(app)
        env = {"DATABASE_URL": database_settings.url.get_secret_value(), "SPM_SECRET_KEY": TEST_SECRET_KEY}
        args = [
            "connectors", "add", "microsoft", "--tenant", TENANT, "--tenant-id", DIRECTORY, "--client-id", CLIENT_ID,
            "--client-secret-stdin", "--users", f"{ANA},{BO}", "--backfill-days", "3", "--no-wait",
        ]  # fmt: skip
        added = await asyncio.to_thread(CliRunner().invoke, app, args, input=CLIENT_SECRET + "\n", env=env)
        assert added.exit_code == 0, added.output
        assert added.output == "connected 4 mailbox(es); the connectors process backfills 3 day(s)\n"
        async with db_engine.connect() as conn:
            stored = [
                r[0]
                for r in await conn.execute(text("SELECT credentials_encrypted FROM connector_connections"))
            ]
        assert len(stored) == 2
        assert all(CLIENT_SECRET not in s for s in stored)

        results = sorted((r.fetched, r.error or "") for r in await sync_due(h.deps))
        assert results == [
            (0, "403 ErrorAccessDenied: Access is denied. Check credentials and try again."),
            (0, "403 ErrorAccessDenied: Access is denied. Check credentials and try again."),
            (3, ""),
            (4, ""),
        ]
        assert h.sleeps == [3.0]
        assert graph.grants == 2  # one app token per connection, reused across its mailboxes
        rows = await activities(db_engine, kafka_settings, "microsoft-graph", 7)
        assert [
            (r["external_id"], r["kind"], r["direction"], r["outcome"], r["thread_id"]) for r in rows
        ] == [
            ("<m-0@contoso.example>", "email", "inbound", "received", "AAQk-m-0"),
            ("<m-1@contoso.example>", "email", "inbound", "received", "AAQk-m-1"),
            ("<m-sent@contoso.example>", "email", "outbound", "sent", "AAQk-m-sent"),
            ("demo-1", "meeting", "outbound", "held", None),
            ("next-1", "meeting", "outbound", "scheduled", None),
            ("weekly-1", "meeting", "outbound", "held", "weekly"),
            ("weekly-2", "meeting", "outbound", "held", "weekly"),
        ]
        assert all(r["subject"] is None for r in rows)

        # One subscription per synced mailbox, validated against ingest, with the derived clientState.
        token = push_token(await newest_secret(db_engine, "microsoft-graph"), TENANT, "microsoft-graph")
        assert len(graph.subscriptions) == 2
        assert {s["resource"] for s in graph.subscriptions.values()} == {
            f"users/{ANA}/messages",
            f"users/{ANA}/events",
        }
        assert all(s["clientState"] == token for s in graph.subscriptions.values())
        assert graph.validated == [f"https://spm.example.com{PUSH}"] * 2
        subs = await _subscriptions(db_engine)
        mail_sub, calendar_sub = subs[("microsoft-mail", ANA)], subs[("microsoft-calendar", ANA)]
        assert subs[("microsoft-mail", BO)] is None
        assert mail_sub in graph.subscriptions
        assert calendar_sub in graph.subscriptions

        # A new message and its change notification: exactly that message.
        sent = now_utc()
        graph.put(ANA, "inbox", graph_message("m-new", sent, BUYER, ANA), sent)
        assert mail_sub is not None
        assert calendar_sub is not None
        change = {
            "value": [
                graph.notification(
                    mail_sub, changeType="created", resource=f"Users/{ANA}/Messages/AAMk-m-new"
                )
            ]
        }
        forged = {"value": [dict(change["value"][0], clientState="guess")]}
        refused = await h.ingest.post(PUSH, content=orjson.dumps(forged))
        assert refused.status_code == 401
        assert refused.json()["detail"] == "value.0.clientState: does not match"
        graph.tokens.clear()  # the cached app token is refused once: MSAL is asked for a new one
        assert (await h.ingest.post(PUSH, content=orjson.dumps(change))).status_code == 202
        assert [r.fetched for r in await sync_due(h.deps)] == [1]
        assert graph.grants == 3
        assert len(await activities(db_engine, kafka_settings, "microsoft-graph", 8)) == 8

        # Replayed: nothing new.
        assert (await h.ingest.post(PUSH, content=orjson.dumps(change))).status_code == 202
        assert [r.fetched for r in await sync_due(h.deps)] == [0]

        # Lifecycle: reauthorization renews the mail subscription; a removed one is made anew.
        renew = {"value": [graph.notification(mail_sub, lifecycleEvent="reauthorizationRequired")]}
        assert (await h.ingest.post(PUSH, content=orjson.dumps(renew))).status_code == 202
        removed = {"value": [graph.notification(calendar_sub, lifecycleEvent="subscriptionRemoved")]}
        del graph.subscriptions[calendar_sub]
        assert (await h.ingest.post(PUSH, content=orjson.dumps(removed))).status_code == 202
        assert sorted(r.fetched for r in await sync_due(h.deps)) == [0, 0]
        assert graph.renewals == 1
        subs = await _subscriptions(db_engine)
        assert subs[("microsoft-mail", ANA)] == mail_sub
        assert subs[("microsoft-calendar", ANA)] not in (None, calendar_sub)
        assert len(graph.subscriptions) == 2

        # The inbox delta token expired (410): the window since a day before the last success
        # is listed again and nothing is added.
        graph.expire_delta(ANA, "inbox")
        assert (await h.ingest.post(PUSH, content=orjson.dumps(change))).status_code == 202
        results_after_410 = await sync_due(h.deps)
        assert [r.error for r in results_after_410] == [None]
        # m-new and m-sent, both within the last day (the calendar's mail: none).
        assert results_after_410[0].fetched == 2
        graph.expired.clear()
        assert len(await activities(db_engine, kafka_settings, "microsoft-graph", 8)) == 8
