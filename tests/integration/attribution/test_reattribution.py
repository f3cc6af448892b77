"""``spm reattribute``: a dry run reports exact changes and writes nothing; a real run writes and
publishes new versions (acknowledged by the real broker) in batches; a second run finds nothing."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from datetime import UTC, datetime

import typer
from aiokafka import AIOKafkaConsumer
from sqlalchemy.ext.asyncio import AsyncEngine
from typer.testing import CliRunner

from libs.common.contracts.attribution import ActivityAttributedV1
from libs.common.kafka.clients import connection_options, make_producer
from libs.common.settings import DatabaseSettings, KafkaSettings
from libs.common.topics import ACTIVITY_ATTRIBUTED
from services.attribution.reattribution import reattribute
from spm.commands.reattribute import register

from .attribution_support import (
    TENANT,
    RecordingProducer,
    activity,
    baseline,
    create_tenant,
    current,
    deliver,
    email,
    override,
    set_tenant_settings,
    summary,
)

SINCE = datetime(2026, 11, 1, tzinfo=UTC)
UNTIL = datetime(2026, 11, 6, tzinfo=UTC)
STRICT = {"attribution": {"ambiguity_policy": "unique_only", "min_confidence": 0.97}}


async def _history(db_engine: AsyncEngine) -> dict[str, uuid.UUID]:
    """Six activities in range (three attributed, one ambiguous, one internal, one overridden) and
    one ambiguous activity before it; then the tenant tightens its policy."""
    producer = RecordingProducer()
    await create_tenant(db_engine)
    activities = {
        "a1": email("e-1", "ana@seller.example", "bo@buyer.example", at="2026-11-02T10:00:00Z"),
        "a2": email("e-2", "ana@seller.example", "bo@buyer.example", at="2026-11-03T10:00:00Z"),
        "a3": activity(
            "c-1",
            source="dialer",
            kind="call",
            occurred_at="2026-11-03T11:00:00Z",
            participants=[
                {"phone": "+14155550001", "role": "caller"},
                {"phone": "+12125550100", "role": "callee"},
            ],
        ),
        "a4": email("e-4", "ana@seller.example", "dee@buyer.example", at="2026-11-04T10:00:00Z"),
        "a5": email("e-5", "ana@seller.example", "pat@seller.example", at="2026-11-04T11:00:00Z"),
        "a6": email("e-6", "ana@seller.example", "dee@buyer.example", at="2026-11-05T10:00:00Z"),
        "before": email("e-0", "ana@seller.example", "dee@buyer.example", at="2026-10-20T10:00:00Z"),
    }
    sent = await deliver(db_engine, producer, *baseline(), *activities.values())
    assert [s[2] for s in summary(sent)] == [
        "ambiguous",
        "attributed",
        "attributed",
        "attributed",
        "ambiguous",
        "internal",
        "ambiguous",
    ]
    await deliver(db_engine, producer, override(activities["a6"].activity_id, deal_id="deal-1"))
    await set_tenant_settings(db_engine, STRICT)
    return {name: a.activity_id for name, a in activities.items()}


async def _versions(
    db_engine: AsyncEngine, ids: dict[str, uuid.UUID]
) -> dict[str, tuple[int, str, str | None]]:
    out = {}
    for name, activity_id in ids.items():
        row = await current(db_engine, activity_id)
        out[name] = (row.version, row.status, row.deal_id)
    return out


BEFORE = {
    "a1": (1, "attributed", "deal-1"),
    "a2": (1, "attributed", "deal-1"),
    "a3": (1, "attributed", "deal-1"),
    "a4": (1, "ambiguous", "deal-2"),
    "a5": (1, "internal", None),
    "a6": (2, "attributed", "deal-1"),
    "before": (1, "ambiguous", "deal-2"),
}


async def test_a_dry_run_reports_what_would_change_and_writes_nothing(db_engine: AsyncEngine) -> None:
    ids = await _history(db_engine)
    report = await reattribute(db_engine, None, "t.", TENANT, SINCE, UNTIL, dry_run=True, batch_size=4)
    # a6, pinned on deal-1 by an admin, is left out: the override stays as set (5 examined).
    assert (report.examined, report.changed, report.deal_changed, report.published) == (5, 4, 4, 0)
    assert report.transitions == Counter({("attributed", "account_only"): 3, ("ambiguous", "ambiguous"): 1})
    assert report.deal_moves == Counter({("deal-1", None): 3, ("deal-2", None): 1})
    assert await _versions(db_engine, ids) == BEFORE

    limited = await reattribute(db_engine, None, "t.", TENANT, SINCE, UNTIL, dry_run=True, limit=2)
    assert (limited.examined, limited.changed) == (2, 2)


async def test_the_cli_dry_run_prints_the_change_table(
    db_engine: AsyncEngine, database_settings: DatabaseSettings
) -> None:
    ids = await _history(db_engine)
    app = typer.Typer()
    app.callback()(lambda: None)
    register(app)
    env = {"DATABASE_URL": database_settings.url.get_secret_value(), "SPM_LOG_JSON": "false"}
    args = ["reattribute", "--tenant", TENANT, "--since", "2026-11-01", "--until", "2026-11-06", "--dry-run"]
    result = await asyncio.to_thread(CliRunner().invoke, app, args, env=env)
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert (
        lines[0] == "tenant acme: 5 activities examined, 4 attributions would change, 4 of them in their deal"
    )
    assert lines[1].split() == ["old", "status", "new", "status", "count"]
    assert lines[2].split() == ["attributed", "account_only", "3"]
    assert lines[3].split() == ["ambiguous", "ambiguous", "1"]
    assert lines[5].split() == ["deal-1", "(none)", "3"]
    assert lines[6].split() == ["deal-2", "(none)", "1"]
    assert await _versions(db_engine, ids) == BEFORE


async def _read_attributed(kafka: KafkaSettings, expected: int) -> list[tuple[str, ActivityAttributedV1]]:
    consumer = AIOKafkaConsumer(
        ACTIVITY_ATTRIBUTED.physical(kafka.topic_prefix),
        group_id=f"reader-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        **connection_options(kafka),
    )
    await consumer.start()
    out: list[tuple[str, ActivityAttributedV1]] = []
    try:
        deadline = time.monotonic() + 60
        while len(out) < expected and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for r in records:
                    assert r.key is not None
                    assert r.value is not None
                    out.append((r.key.decode(), ActivityAttributedV1.model_validate_json(r.value)))
        # Anything beyond the expected count would be a double publish.
        for records in (await consumer.getmany(timeout_ms=1_000)).values():
            out += [("unexpected", ActivityAttributedV1.model_validate_json(r.value or b"")) for r in records]
    finally:
        await consumer.stop()
    return out


async def test_a_real_run_writes_and_publishes_new_versions_in_batches(
    db_engine: AsyncEngine, kafka_settings: KafkaSettings
) -> None:
    ids = await _history(db_engine)
    producer = make_producer(kafka_settings, "reattribute-test")
    await producer.start()
    progress: list[tuple[int, int]] = []
    try:
        report = await reattribute(
            db_engine,
            producer,
            kafka_settings.topic_prefix,
            TENANT,
            SINCE,
            UNTIL,
            batch_size=4,
            on_progress=lambda done, total: progress.append((done, total)),
        )
        again = await reattribute(db_engine, producer, kafka_settings.topic_prefix, TENANT, SINCE, UNTIL)
    finally:
        await producer.stop()
    assert (report.examined, report.changed, report.published) == (5, 4, 4)
    assert progress == [(0, 5), (4, 5), (5, 5)]
    assert (again.examined, again.changed, again.published) == (5, 0, 0)
    assert await _versions(db_engine, ids) == {
        **BEFORE,
        "a1": (2, "account_only", None),
        "a2": (2, "account_only", None),
        "a3": (2, "account_only", None),
        "a4": (2, "ambiguous", None),
    }
    published = await _read_attributed(kafka_settings, 4)
    assert sorted((key, e.activity_id, e.version, e.status.value) for key, e in published) == sorted(
        [
            ("acme:rep-1", ids["a1"], 2, "account_only"),
            ("acme:rep-1", ids["a2"], 2, "account_only"),
            ("acme:rep-1", ids["a3"], 2, "account_only"),
            ("acme:rep-1", ids["a4"], 2, "ambiguous"),
        ]
    )
