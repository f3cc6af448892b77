"""The metrics process end to end: events on the real broker, rollups and read models in PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.contracts.activities import ActivityKind
from libs.common.settings import DatabaseSettings, KafkaSettings
from services.metrics.domain.scoring import ScoredActivity, ScoringModel
from tests.integration.polling import eventually

from .metrics_support import attributed, create_tenant, metrics_app, publish, rollup_rows, save_scoring_model


async def test_the_consumer_absorbs_replays_and_corrections_and_the_refresher_follows(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    await create_tenant(db_engine)
    async with db_engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO ref_team_memberships (tenant_id, membership_id, rep_id, team_id, valid_from, updated_at) "
                "VALUES ('acme', 'm1', 'rep-2', 'team-2', '2026-01-01', now())"
            )
        )
    today = datetime.now(UTC).replace(microsecond=0)
    call = attributed(activity=1, occurred_at=today)
    moved = attributed(activity=1, version=2, rep_id="rep-2", team_id="team-2", occurred_at=today)
    email = attributed(
        activity=2, kind=ActivityKind.EMAIL, rep_id="rep-2", team_id="team-2", occurred_at=today
    )
    late = attributed(activity=3, rep_id="rep-2", team_id="team-2", occurred_at=today - timedelta(weeks=3))
    app = metrics_app(kafka_settings, database_settings, refresh_interval_seconds=0.2)
    async with app.router.lifespan_context(app):
        await publish(kafka_settings, [call, email, call, moved, late, email, call])

        day = today.date()
        late_day = (today - timedelta(weeks=3)).date()
        expected_today = {"activities": 2, "dials": 1, "connects": 1, "emails_sent": 1, "score": 4.0}

        def absorbed(rows: dict[Any, dict[str, float]]) -> bool:
            return (
                rows.get(("rep", "rep-2", "day", day)) == expected_today
                and ("rep", "rep-2", "day", late_day) in rows
                and ("rep", "rep-1", "day", day) not in rows
            )

        rows = await eventually(
            lambda: rollup_rows(db_engine), absorbed, 60, "the rollups absorbing the batch"
        )
        assert rows[("rep", "rep-2", "day", late_day)] == {
            "activities": 1,
            "dials": 1,
            "connects": 1,
            "score": 3.0,
        }
        assert {cell for cell in rows if cell[0] == "rep"} == {
            ("rep", "rep-2", grain, start)
            for grain, start in [
                ("day", day),
                ("day", late_day),
                *_periods(today),
                *_periods(today - timedelta(weeks=3)),
            ]
        }

        async def state() -> tuple[Any, ...]:
            # One snapshot for both reads: the refresher replaces the stats and clears the flag in
            # one transaction, and two snapshots could pair the stats before it with the flag after.
            async with db_engine.connect() as conn:
                await conn.execution_options(isolation_level="REPEATABLE READ")
                stats = (
                    await conn.execute(
                        text(
                            "SELECT rep_id, team_id, score FROM rep_period_stats "
                            "WHERE granularity = 'day' AND period_start = :d ORDER BY rep_id"
                        ),
                        {"d": day},
                    )
                ).all()
                dirty = (
                    await conn.execute(text("SELECT dirty_since FROM metric_refresh_state"))
                ).scalar_one()
            return tuple(tuple(row) for row in stats), dirty

        stats, _ = await eventually(
            state, lambda s: s[1] is None and len(s[0]) == 1, 60, "the refresher taking the batch"
        )
        assert stats == (("rep-2", "team-2", 4.0),)

        # A model saved while nothing flows is applied by the refresher's periodic check.
        await save_scoring_model(
            db_engine, "acme", ScoringModel(version=1, activity_weights={ScoredActivity.EMAIL_SENT: 10.0})
        )

        async def rep_day_score() -> float:
            return (await rollup_rows(db_engine))[("rep", "rep-2", "day", day)].get("score", 0.0)

        assert await eventually(rep_day_score, lambda score: score == 10.0, 60, "the model applied") == 10.0


def _periods(at: datetime) -> list[tuple[str, date]]:
    """Week, month and calendar quarter starts of a UTC instant (the tenant's defaults)."""
    day = at.date()
    return [
        ("week", day - timedelta(days=day.weekday())),
        ("month", day.replace(day=1)),
        ("quarter", date(day.year, (day.month - 1) // 3 * 3 + 1, 1)),
    ]
