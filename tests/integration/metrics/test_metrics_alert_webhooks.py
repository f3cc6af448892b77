"""Outbound alert webhooks against a local receiver: signed the Standard Webhooks way, Slack bodies,
retries with backoff and a give-up counted in Prometheus."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import httpx
import orjson
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.contracts.activities import Outcome
from libs.common.kafka.clients import make_producer
from libs.common.settings import KafkaSettings
from services.metrics.alerts import DeliveryPolicy, deliver_alerts, publish_insight_changes
from services.metrics.refresher import refresh_tenant

from .metrics_support import apply, attributed, create_tenant

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
SECRET_KEY = b"0123456789abcdef0123456789abcdef"
SECRET = "whsec_" + base64.b64encode(SECRET_KEY).decode()


async def _read_request(reader: asyncio.StreamReader) -> tuple[str, dict[str, str], bytes]:
    """One HTTP request off ``reader``: its path, its headers (names lower-cased) and its body."""
    request_line = (await reader.readline()).decode()
    headers: dict[str, str] = {}
    while (line := (await reader.readline()).decode().strip()) != "":
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return request_line.split()[1], headers, body


async def _published(db_engine: AsyncEngine, kafka_settings: KafkaSettings) -> int:
    """How many insight changes one publishing pass sends."""
    producer = make_producer(kafka_settings, "alerts-test")
    await producer.start()
    try:
        return await publish_insight_changes(db_engine, producer, kafka_settings.topic_prefix)
    finally:
        await producer.stop()


@dataclass
class Receiver:
    """A local HTTP endpoint: ``/ok`` answers 204, ``/fail`` 500; every request is recorded."""

    port: int = 0
    requests: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        path, headers, body = await _read_request(reader)
        self.requests.append((path, headers, body))
        status = "204 No Content" if path.startswith("/ok") else "500 Internal Server Error"
        writer.write(f"HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".encode())
        await writer.drain()
        writer.close()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    recorded = Receiver()
    server = await asyncio.start_server(recorded.handle, "127.0.0.1", 0)
    recorded.port = server.sockets[0].getsockname()[1]
    try:
        yield recorded
    finally:
        server.close()
        await server.wait_closed()


def _gave_up() -> float:
    return REGISTRY.get_sample_value("spm_alert_deliveries_total", {"outcome": "gave_up"}) or 0.0


async def test_a_change_reaches_the_receivers_signed_and_a_failing_one_is_retried_then_given_up(
    db_engine: AsyncEngine, kafka_settings: KafkaSettings, receiver: Receiver
) -> None:
    await create_tenant(db_engine)
    base = f"http://127.0.0.1:{receiver.port}"
    async with db_engine.begin() as conn:
        for webhook_id, path, body_format in (
            ("w-std", "/ok/std", "standard"),
            ("w-slack", "/ok/slack", "slack"),
            ("w-bad", "/fail", "standard"),
        ):
            await conn.execute(
                text(
                    "INSERT INTO alert_webhooks (tenant_id, webhook_id, url, format, secret) "
                    "VALUES ('acme', :id, :url, :format, :secret)"
                ),
                {"id": webhook_id, "url": base + path, "format": body_format, "secret": SECRET},
            )
        await conn.execute(
            text(
                "INSERT INTO ref_deals (tenant_id, deal_id, owner_rep_id, created_at, updated_at) "
                "VALUES ('acme', 'deal-1', 'rep-1', :at, :at)"
            ),
            {"at": NOW - timedelta(days=30)},
        )
        await refresh_tenant(conn, "acme", NOW)
    assert await _published(db_engine, kafka_settings) == 1
    gave_up_before = _gave_up()
    policy = DeliveryPolicy(max_attempts=3, backoff_base=timedelta(0), backoff_cap=timedelta(0))

    async with httpx.AsyncClient() as client:
        rounds = [await deliver_alerts(db_engine, client, policy) for _ in range(4)]

    assert rounds == [
        {"delivered": 2, "failed": 1, "gave_up": 0},
        {"delivered": 0, "failed": 1, "gave_up": 0},
        {"delivered": 0, "failed": 0, "gave_up": 1},
        {"delivered": 0, "failed": 0, "gave_up": 0},
    ]
    assert _gave_up() == gave_up_before + 1
    by_path: dict[str, list[tuple[dict[str, str], bytes]]] = {}
    for path, headers, body in receiver.requests:
        by_path.setdefault(path, []).append((headers, body))
    assert {path: len(calls) for path, calls in by_path.items()} == {"/ok/std": 1, "/ok/slack": 1, "/fail": 3}

    [(headers, body)] = by_path["/ok/std"]
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(SECRET_KEY, signed, hashlib.sha256).digest()).decode()
    assert headers["webhook-signature"] == f"v1,{expected}"
    event = orjson.loads(body)
    assert event["type"] == "insight.changed"
    assert (event["data"]["change"], event["data"]["kind"], event["data"]["subject_id"]) == (
        "appeared",
        "stale_deal",
        "deal-1",
    )
    # Every retry carries the same message id, so a receiver can deduplicate.
    assert {h["webhook-id"] for h, _ in by_path["/fail"]} == {headers["webhook-id"]}
    [(_, slack)] = by_path["/ok/slack"]
    assert orjson.loads(slack) == {"text": "Deal deal-1 is stale: no recent activity, no buyer reply"}
    async with db_engine.connect() as conn:
        states = (
            await conn.execute(
                text(
                    "SELECT webhook_id, attempts, delivered_at IS NOT NULL, gave_up_at IS NOT NULL, last_error "
                    "FROM alert_deliveries ORDER BY webhook_id"
                )
            )
        ).all()
    assert [tuple(s) for s in states] == [
        ("w-bad", 3, False, True, "HTTP 500"),
        ("w-slack", 1, True, False, None),
        ("w-std", 1, True, False, None),
    ]


async def test_each_managers_digest_is_stored_once_after_the_week_and_delivered(
    db_engine: AsyncEngine, receiver: Receiver
) -> None:
    await create_tenant(db_engine)
    base = f"http://127.0.0.1:{receiver.port}"
    async with db_engine.begin() as conn:
        for rep, manager in (("rep-mgr", None), ("rep-a", "rep-mgr"), ("rep-b", "rep-a")):
            await conn.execute(
                text(
                    "INSERT INTO ref_reps (tenant_id, rep_id, name, manager_id, updated_at) "
                    "VALUES ('acme', :r, :r, :m, now())"
                ),
                {"r": rep, "m": manager},
            )
        for rep in ("rep-a", "rep-b"):
            await conn.execute(
                text(
                    "INSERT INTO ref_team_memberships (tenant_id, membership_id, rep_id, team_id, valid_from, "
                    "updated_at) VALUES ('acme', :r, :r, 'team-1', '2026-01-01', now())"
                ),
                {"r": rep},
            )
        for webhook_id, path, body_format in (
            ("w-std", "/ok/std", "standard"),
            ("w-slack", "/ok/slack", "slack"),
        ):
            await conn.execute(
                text(
                    "INSERT INTO alert_webhooks (tenant_id, webhook_id, url, format, secret) "
                    "VALUES ('acme', :id, :url, :format, :secret)"
                ),
                {"id": webhook_id, "url": base + path, "format": body_format, "secret": SECRET},
            )
    tuesday = datetime(2026, 11, 17, 10, 0, tzinfo=UTC)  # in the last complete week before NOW
    await apply(
        db_engine,
        [
            attributed(
                activity=n, rep_id="rep-a", deal_id=None, outcome=Outcome.NO_ANSWER, occurred_at=tuesday
            )
            for n in range(1, 4)
        ],
    )

    for minutes in (0, 15):  # the second refresh finds the digests already stored
        async with db_engine.begin() as conn:
            await refresh_tenant(conn, "acme", NOW + timedelta(minutes=minutes))

    async with db_engine.connect() as conn:
        stored = (
            await conn.execute(
                text("SELECT manager_id, week_start, digest FROM manager_digests ORDER BY manager_id")
            )
        ).all()
        queued = (await conn.execute(text("SELECT count(*) FROM alert_deliveries"))).scalar_one()
    assert [(row[0], row[1]) for row in stored] == [
        ("rep-a", date(2026, 11, 16)),
        ("rep-mgr", date(2026, 11, 16)),
    ]
    mgr = stored[1][2]
    assert [(r["rep_id"], r["team_id"], r["score"], r["activities"]) for r in mgr["reps"]] == [
        ("rep-a", "team-1", 3.0, 3),
        ("rep-b", "team-1", 0.0, 0),
    ]
    # rep-b was on the team all week and did nothing.
    assert [(i["subject_id"], i["reasons"]) for i in mgr["at_risk_reps"]] == [("rep-b", ["no_activity"])]
    assert queued == 4  # two managers x two webhooks

    async with httpx.AsyncClient() as client:
        assert await deliver_alerts(db_engine, client, DeliveryPolicy()) == {
            "delivered": 4,
            "failed": 0,
            "gave_up": 0,
        }
    standard = [(h, b) for path, h, b in receiver.requests if path == "/ok/std"]
    slack = sorted(orjson.loads(b)["text"] for path, _, b in receiver.requests if path == "/ok/slack")
    assert sorted(h["webhook-id"] for h, _ in standard) == [
        "acme:digest:rep-a:2026-11-16",
        "acme:digest:rep-mgr:2026-11-16",
    ]
    for headers, body in standard:
        signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
        expected = base64.b64encode(hmac.new(SECRET_KEY, signed, hashlib.sha256).digest()).decode()
        assert headers["webhook-signature"] == f"v1,{expected}"
        assert orjson.loads(body)["type"] == "digest.weekly"
    assert slack == [
        "Week of 2026-11-16 for rep-a: 1 reps, 1 at risk, 0 bright spots, 0 stale deals",
        "Week of 2026-11-16 for rep-mgr: 2 reps, 1 at risk, 0 bright spots, 0 stale deals",
    ]


async def test_a_tenant_s_receiver_that_never_answers_does_not_hold_back_another_tenant_s_alerts(
    db_engine: AsyncEngine, kafka_settings: KafkaSettings, receiver: Receiver
) -> None:
    """Acme's 12 receivers take the connection and never answer; Globex's answers at once. The
    deliverer sent the due deliveries one by one, oldest first, each waiting out its timeout:
    a tick of Acme's (10 here, 50 by default) took 10 timeouts, and Globex's alert waited behind
    every one of them, tick after tick. Tenants now take turns in a tick, sent at once."""

    waiting = [0, 0]  # requests the silent receivers hold now, and the most held at once

    async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(65_536)
        waiting[0] += 1
        waiting[1] = max(waiting)
        try:
            while await reader.read(65_536):  # never answers; the sender gives up and closes
                pass
        finally:
            waiting[0] -= 1

    silent = await asyncio.start_server(hang, "127.0.0.1", 0)
    silent_url = f"http://127.0.0.1:{silent.sockets[0].getsockname()[1]}/hook"
    try:
        for tenant, urls in (
            ("acme", [silent_url] * 12),
            ("globex", [f"http://127.0.0.1:{receiver.port}/ok/globex"]),
        ):
            await create_tenant(db_engine, tenant)
            async with db_engine.begin() as conn:
                for index, url in enumerate(urls):
                    await conn.execute(
                        text(
                            "INSERT INTO alert_webhooks (tenant_id, webhook_id, url, format, secret) "
                            "VALUES (:t, :id, :url, 'standard', :secret)"
                        ),
                        {"t": tenant, "id": f"w-{index}", "url": url, "secret": SECRET},
                    )
                await conn.execute(
                    text(
                        "INSERT INTO ref_deals (tenant_id, deal_id, owner_rep_id, created_at, updated_at) "
                        "VALUES (:t, 'deal-1', 'rep-1', :at, :at)"
                    ),
                    {"t": tenant, "at": NOW - timedelta(days=30)},
                )
                await refresh_tenant(conn, tenant, NOW)
        assert await _published(db_engine, kafka_settings) == 2
        async with db_engine.begin() as conn:
            # Acme's are due first.
            await conn.execute(
                text(
                    "UPDATE alert_deliveries SET next_attempt_at = now() - interval '1 minute' "
                    "WHERE tenant_id = 'acme'"
                )
            )
        policy = DeliveryPolicy(timeout_seconds=1.0, batch=10)
        async with httpx.AsyncClient() as client:
            outcome = await deliver_alerts(db_engine, client, policy)
        # Globex's and 9 of Acme's in one tick, sent at once: the 9 silent receivers held all 9
        # requests together (one by one, each was given up before the next was sent: 1).
        assert outcome == {"delivered": 1, "failed": 9, "gave_up": 0}
        assert [path for path, _, _ in receiver.requests] == ["/ok/globex"]
        assert waiting[1] == 9
    finally:
        silent.close()


async def test_two_deliveries_to_one_webhook_arrive_in_order_even_when_the_first_is_answered_slowly(
    db_engine: AsyncEngine, kafka_settings: KafkaSettings
) -> None:
    """Two changes in one tick for one receiver (a risk raised then cleared): every claimed delivery
    was sent at once, so the second could overtake the first. The receiver holds the first until a
    second request comes (or a while passes): the second is sent only once the first is answered."""
    events: list[tuple[str, str]] = []
    second_came = asyncio.Event()

    async def slow_first(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        _, _, body = await _read_request(reader)
        subject = orjson.loads(body)["data"]["subject_id"]
        events.append(("arrived", subject))
        if len(events) == 1:
            with contextlib.suppress(TimeoutError):  # in order, no second comes meanwhile
                await asyncio.wait_for(second_came.wait(), timeout=0.5)
        else:
            second_came.set()
        events.append(("answered", subject))
        writer.write(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(slow_first, "127.0.0.1", 0)
    try:
        await create_tenant(db_engine)
        async with db_engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO alert_webhooks (tenant_id, webhook_id, url, format, secret) "
                    "VALUES ('acme', 'w-1', :url, 'standard', :secret)"
                ),
                {"url": f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/hook", "secret": SECRET},
            )
            for deal_id in ("deal-1", "deal-2"):
                await conn.execute(
                    text(
                        "INSERT INTO ref_deals (tenant_id, deal_id, owner_rep_id, created_at, updated_at) "
                        "VALUES ('acme', :d, 'rep-1', :at, :at)"
                    ),
                    {"d": deal_id, "at": NOW - timedelta(days=30)},
                )
            await refresh_tenant(conn, "acme", NOW)
        assert await _published(db_engine, kafka_settings) == 2
        async with db_engine.connect() as conn:
            first, second = (
                await conn.execute(
                    text(
                        "SELECT c.subject_id FROM alert_deliveries d JOIN insight_changes c USING (change_id) "
                        "ORDER BY d.delivery_id"
                    )
                )
            ).scalars()
        async with httpx.AsyncClient() as client:
            outcome = await deliver_alerts(db_engine, client, DeliveryPolicy())
    finally:
        server.close()
        await server.wait_closed()
    assert outcome == {"delivered": 2, "failed": 0, "gave_up": 0}
    assert events == [("arrived", first), ("answered", first), ("arrived", second), ("answered", second)]
