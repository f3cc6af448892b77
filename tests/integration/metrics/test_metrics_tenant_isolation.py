"""One tenant's rollup rebuild never holds up another tenant's activities: through the real broker,
the metrics process counts tenant B while tenant A's rebuild holds A's rollups, sets A's versions
aside, and counts them exactly once, in order, when the rebuild ends."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import date
from typing import Any

import msgspec
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.contracts.activities import ActivityKind
from libs.common.contracts.attribution import ActivityAttributedV1
from libs.common.contracts.attribution_fast import decode_attributed, decode_encoded
from libs.common.contracts.envelope import encode_body
from libs.common.settings import DatabaseSettings, KafkaSettings
from services.attribution.adapters.erasure import delete_contacts
from services.metrics.adapters import rollups
from services.metrics.adapters.rollups import rebuild_rollups
from services.metrics.deferrals import DeferredDrainer
from services.metrics.handlers import drain_tenant
from tests.integration.polling import eventually
from tests.unit.common.fast_path_samples import at_time

from .metrics_support import (
    apply,
    attributed,
    contribution_rows,
    create_tenant,
    deferred_versions,
    metrics_app,
    new_deps,
    publish,
    rollup_rows,
)

DAY = date(2026, 11, 24)


async def _publish(kafka: KafkaSettings, events: Sequence[ActivityAttributedV1]) -> None:
    """One key for all: one partition holds both tenants' messages, in this order."""
    await publish(kafka, events, key=b"mixed")


def rep_days(rows: dict[Any, dict[str, float]]) -> dict[str, dict[str, float]]:
    """rep -> its row for ``DAY``."""
    return {
        entity: row
        for (level, entity, grain, start), row in rows.items()
        if (level, grain, start) == ("rep", "day", DAY)
    }


async def _counted(engine: AsyncEngine, tenant: str, rep: str, activities: int, what: str) -> Any:
    """The tenant's rollups once its rep's ``DAY`` counts ``activities`` (waiting up to 30 s for ``what``)."""
    return await eventually(
        lambda: rollup_rows(engine, tenant),
        lambda r: rep_days(r).get(rep, {}).get("activities") == activities,
        30,
        what,
    )


@asynccontextmanager
async def _acme_rollups_held(engine: AsyncEngine) -> AsyncIterator[None]:
    """acme's rollups locked for the block as a rebuild locks them (the lock it takes, its
    transaction open), released at the end."""
    async with engine.connect() as holder:
        transaction = await holder.begin()
        await holder.execute(text("SELECT pg_advisory_xact_lock(hashtextextended('spm-rollups:acme', 0))"))
        yield
        await transaction.commit()


async def _no_progress(done: int, total: int) -> None:
    return None


async def test_a_tenants_rebuild_holds_up_only_its_own_versions_which_count_once_in_order_after_it(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    await create_tenant(db_engine, "acme")
    await create_tenant(db_engine, "beta")
    await apply(db_engine, [attributed(tenant_id="acme", activity=1)])
    acme_before = await rollup_rows(db_engine, "acme")
    # Published while acme's rebuild runs: the call moves to rep-2, an email, and a call that a
    # later version turns into an email (its two versions in this order).
    acme = [
        attributed(tenant_id="acme", activity=1, version=2, rep_id="rep-2"),
        attributed(tenant_id="acme", activity=2, kind=ActivityKind.EMAIL),
        attributed(tenant_id="acme", activity=3),
        attributed(tenant_id="acme", activity=3, version=2, kind=ActivityKind.EMAIL),
    ]
    beta = [attributed(tenant_id="beta", activity=n, rep_id="rep-b") for n in range(1, 4)]
    app = metrics_app(
        kafka_settings, database_settings, refresh_interval_seconds=60, drain_interval_seconds=0.1
    )
    async with app.router.lifespan_context(app), db_engine.connect() as rebuilding:
        transaction = await rebuilding.begin()
        # A real rebuild, to a fiscal year starting in November, its transaction left open.
        await rebuild_rollups(rebuilding, "acme", "America/Los_Angeles", 11, _no_progress)
        await _publish(kafka_settings, [acme[0], beta[0], acme[1], beta[1], acme[2], acme[3], beta[2]])

        three_calls = {"activities": 3, "dials": 3, "connects": 3, "score": 9.0}
        # All three of beta's calls: the consumer may take the seven messages in several batches.
        rows = await _counted(
            db_engine, "beta", "rep-b", 3, "beta's three calls counted while acme's rebuild runs"
        )
        assert rep_days(rows) == {"rep-b": three_calls}
        assert await deferred_versions(db_engine) == {"acme": 4}
        assert await rollup_rows(db_engine, "acme") == acme_before

        # The same versions delivered again (a consumer that crashed before committing its
        # offsets), then one more of beta's: acme's are not set aside twice.
        await _publish(kafka_settings, [*acme, attributed(tenant_id="beta", activity=4, rep_id="rep-b")])
        rows = await _counted(db_engine, "beta", "rep-b", 4, "beta's fourth call counted")
        assert rep_days(rows) == {"rep-b": {"activities": 4, "dials": 4, "connects": 4, "score": 12.0}}
        assert await deferred_versions(db_engine) == {"acme": 4}
        assert await rollup_rows(db_engine, "acme") == acme_before
        await transaction.commit()

        rows = await eventually(
            lambda: rollup_rows(db_engine, "acme"),
            lambda r: "rep-2" in rep_days(r),
            30,
            "acme's versions drained after its rebuild",
        )
        assert rep_days(rows) == {
            "rep-1": {"activities": 2, "emails_sent": 2, "score": 2.0},
            "rep-2": {"activities": 1, "dials": 1, "connects": 1, "score": 3.0},
        }
        # Drained under the calendar the rebuild left: fiscal quarters start in November.
        assert {start for (level, _, grain, start) in rows if grain == "quarter"} == {date(2026, 11, 1)}
        assert await deferred_versions(db_engine) == {}
        assert {n: c["version"] for n, c in (await contribution_rows(db_engine, "acme")).items()} == {
            1: 2,
            2: 1,
            3: 2,
        }

        # Delivered once more after the drain: stale, nothing moves.
        await _publish(kafka_settings, [*acme, attributed(tenant_id="beta", activity=5, rep_id="rep-b")])
        await _counted(db_engine, "beta", "rep-b", 5, "beta's fifth call counted")
        assert await rollup_rows(db_engine, "acme") == rows
        assert await deferred_versions(db_engine) == {}


async def test_a_tenant_being_rescored_is_set_aside_while_another_is_counted(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    await create_tenant(db_engine, "acme")
    await create_tenant(db_engine, "beta")
    await apply(
        db_engine, [attributed(tenant_id="acme", activity=1), attributed(tenant_id="beta", activity=1)]
    )
    app = metrics_app(
        kafka_settings, database_settings, refresh_interval_seconds=60, drain_interval_seconds=0.1
    )
    async with app.router.lifespan_context(app), db_engine.connect() as rescoring:
        transaction = await rescoring.begin()
        # What a rescore holds for its whole transaction.
        await rescoring.execute(text("SELECT 1 FROM scoring_state WHERE tenant_id = 'acme' FOR UPDATE"))
        await _publish(
            kafka_settings,
            [attributed(tenant_id="acme", activity=2), attributed(tenant_id="beta", activity=2)],
        )
        two_calls = {"activities": 2, "dials": 2, "connects": 2, "score": 6.0}
        rows = await eventually(
            lambda: rollup_rows(db_engine, "beta"),
            lambda r: rep_days(r).get("rep-1") == two_calls,
            30,
            "beta counted while acme is rescored",
        )
        assert await deferred_versions(db_engine) == {"acme": 1}
        assert rep_days(await rollup_rows(db_engine, "acme"))["rep-1"]["activities"] == 1
        await transaction.commit()

        rows = await _counted(db_engine, "acme", "rep-1", 2, "acme's version drained after the rescore")
        assert rep_days(rows) == {"rep-1": two_calls}
        assert await deferred_versions(db_engine) == {}


async def test_a_tenants_later_versions_queue_behind_those_set_aside_and_a_failed_drain_leaves_them(
    db_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    await create_tenant(db_engine, "acme")
    deps = new_deps(db_engine)
    async with _acme_rollups_held(db_engine):
        await apply(db_engine, [attributed(activity=1), attributed(activity=2)], deps)
    assert await deferred_versions(db_engine) == {"acme": 2}

    # The rollups are free, but the tenant has versions set aside: this later one (activity 1
    # moved to rep-2) queues behind them rather than being applied before them.
    await apply(db_engine, [attributed(activity=1, version=2, rep_id="rep-2")], deps)
    assert await deferred_versions(db_engine) == {"acme": 3}
    assert await rollup_rows(db_engine, "acme") == {}

    async def crash(*args: Any) -> int:
        raise ConnectionResetError("the drain's connection dropped")

    with monkeypatch.context() as patched:
        patched.setattr(rollups, "apply_rollup_deltas", crash)
        with pytest.raises(ConnectionResetError):
            await drain_tenant(deps, "acme")
    # Nothing of the failed drain is left, the versions set aside included.
    assert await deferred_versions(db_engine) == {"acme": 3}
    assert await contribution_rows(db_engine, "acme") == {}

    assert await drain_tenant(deps, "acme") == 3
    one_call = {"activities": 1, "dials": 1, "connects": 1, "score": 3.0}
    assert rep_days(await rollup_rows(db_engine, "acme")) == {"rep-1": one_call, "rep-2": one_call}
    assert {n: c["version"] for n, c in (await contribution_rows(db_engine, "acme")).items()} == {1: 2, 2: 1}
    assert await drain_tenant(deps, "acme") == 0
    # Nothing left set aside: the tenant's next batch is applied at once.
    await apply(db_engine, [attributed(activity=3, rep_id="rep-2")], deps)
    assert await deferred_versions(db_engine) == {}
    assert rep_days(await rollup_rows(db_engine, "acme"))["rep-2"]["activities"] == 2


async def test_a_contact_erasure_scrubs_the_versions_set_aside_before_they_are_counted(
    db_engine: AsyncEngine,
) -> None:
    await create_tenant(db_engine, "acme")
    deps = new_deps(db_engine)
    async with _acme_rollups_held(db_engine):
        await apply(
            db_engine,
            [
                attributed(activity=1, external_contact_ids=("con-dana", "con-eli")),
                attributed(activity=2, external_contact_ids=("con-dana",)),
            ],
            deps,
        )
        async with db_engine.begin() as conn:
            await delete_contacts(conn, "acme", ["con-dana"])

    assert await drain_tenant(deps, "acme") == 2
    async with db_engine.connect() as conn:
        stored = dict(
            (row.activity_id.int, row.contact_ids)
            for row in await conn.execute(
                text("SELECT activity_id, contact_ids FROM metric_contributions WHERE tenant_id = 'acme'")
            )
        )
    assert stored == {1: ["con-eli"], 2: []}
    assert rep_days(await rollup_rows(db_engine, "acme"))["rep-1"]["activities"] == 2


async def test_an_erasure_scrubs_and_keeps_a_version_set_aside_that_only_the_contract_decodes(
    db_engine: AsyncEngine,
) -> None:
    """The drainer reads what was set aside with ``decode_attributed`` (msgspec, else the
    contract's pydantic model), so the erasure does too: a newest version only pydantic takes
    (here its time without seconds) loses the contact and is counted, never deleted as if it
    could not be (its offset is committed: deleted, it would never be counted)."""
    await create_tenant(db_engine, "acme")
    deps = new_deps(db_engine)
    await apply(db_engine, [attributed(activity=1, external_contact_ids=("con-dana", "con-eli"))], deps)
    newest = attributed(activity=1, version=2, rep_id="rep-2", external_contact_ids=("con-dana", "con-eli"))
    async with _acme_rollups_held(db_engine):
        await apply(db_engine, [newest], deps)
    assert await deferred_versions(db_engine) == {"acme": 1}
    # The version set aside, its time as another producer may write it: the drainer's decoder
    # takes it (the contract's path), the msgspec struct alone refuses it.
    body = at_time(encode_body(newest), "2026-11-24T15:00Z")
    with pytest.raises(msgspec.ValidationError):
        decode_encoded(body)
    assert decode_attributed(body) == newest
    async with db_engine.begin() as conn:
        await conn.execute(
            text("UPDATE metric_deferred_events SET body = :b WHERE tenant_id = 'acme'"), {"b": body}
        )
        await delete_contacts(conn, "acme", ["con-dana"])

    scrubbed = newest.model_copy(
        update={"facts": newest.facts.model_copy(update={"external_contact_ids": ("con-eli",)})}
    )
    async with db_engine.connect() as conn:
        kept = (await conn.execute(text("SELECT body FROM metric_deferred_events"))).scalars().all()
    assert [bytes(b) for b in kept] == [encode_body(scrubbed)]
    assert await drain_tenant(deps, "acme") == 1
    async with db_engine.connect() as conn:
        stored = (
            await conn.execute(text("SELECT version, rep_id, contact_ids FROM metric_contributions"))
        ).all()
    assert [tuple(row) for row in stored] == [(2, "rep-2", ["con-eli"])]
    assert rep_days(await rollup_rows(db_engine, "acme")) == {
        "rep-2": {"activities": 1, "dials": 1, "connects": 1, "score": 3.0}
    }


async def test_the_drainer_reports_what_waits_per_tenant_and_clears_it_once_drained(
    db_engine: AsyncEngine,
) -> None:
    await create_tenant(db_engine, "acme")
    deps = new_deps(db_engine)
    drainer = DeferredDrainer(deps, interval_seconds=60, lock_wait_ms=50)
    async with _acme_rollups_held(db_engine):
        await apply(db_engine, [attributed(activity=1), attributed(activity=2)], deps)
        # Still held: nothing drained, two versions of acme's reported, the oldest of some age.
        assert await drainer.tick() == 0
        assert REGISTRY.get_sample_value("spm_metrics_deferred_versions", {"tenant": "acme"}) == 2
        assert (REGISTRY.get_sample_value("spm_metrics_deferred_oldest_age_seconds") or 0) > 0

    assert await drainer.tick() == 2
    assert REGISTRY.get_sample_value("spm_metrics_deferred_versions", {"tenant": "acme"}) is None
    assert REGISTRY.get_sample_value("spm_metrics_deferred_oldest_age_seconds") == 0
    assert rep_days(await rollup_rows(db_engine, "acme"))["rep-1"]["activities"] == 2
