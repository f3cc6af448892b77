"""Migration 0012_rep_roles: reps and goals gain a role; a goal's role matches its scope."""

from __future__ import annotations

import asyncio

import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.db.migrate import alembic_config, upgrade

_GOAL = (
    "INSERT INTO activity_goals (tenant_id, goal_id, scope, subject_id, role, period, metric, target) "
    "VALUES ('acme', :g, :scope, :subject, :role, 'week', 'dials', 50)"
)


async def _columns(engine: AsyncEngine, table: str) -> set[str]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT column_name FROM information_schema.columns WHERE table_name = :t"), {"t": table}
        )
        return {row.column_name for row in rows}


async def test_roles_come_and_go_with_the_migration_and_a_goal_role_matches_its_scope(
    database_url: str, db_engine: AsyncEngine
) -> None:
    async with db_engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO ref_reps (tenant_id, rep_id, role, updated_at) VALUES ('acme', 'rep-1', 'SDR', now())"
            )
        )
        await conn.execute(text(_GOAL), {"g": "sdr", "scope": "role", "subject": None, "role": "SDR"})
        await conn.execute(text(_GOAL), {"g": "all", "scope": "tenant", "subject": None, "role": None})

    await asyncio.to_thread(command.downgrade, alembic_config(database_url), "0011_insights")
    assert "role" not in await _columns(db_engine, "ref_reps")
    assert "role" not in await _columns(db_engine, "activity_goals")
    async with db_engine.connect() as conn:
        # A role goal cannot be told apart from nothing without its role: it goes; the others stay.
        kept = (await conn.execute(text("SELECT goal_id FROM activity_goals"))).scalars().all()
    assert kept == ["all"]

    await asyncio.to_thread(upgrade, database_url)
    async with db_engine.connect() as conn:
        role = (await conn.execute(text("SELECT role FROM ref_reps WHERE rep_id = 'rep-1'"))).scalar_one()
    assert role is None  # the next CRM update of the rep brings it back
    for scope, subject, goal_role in (
        ("role", None, None),
        ("team", "team-a", "SDR"),
        ("tenant", None, "SDR"),
    ):
        with pytest.raises(IntegrityError, match="activity_goals_role_check"):
            async with db_engine.begin() as conn:
                await conn.execute(
                    text(_GOAL), {"g": "bad", "scope": scope, "subject": subject, "role": goal_role}
                )
