"""Migration 0018: the reps held inactive have left; their identities become departed ones; and back."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from alembic import command
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.db.migrate import alembic_config, upgrade

_REPS: tuple[tuple[str, list[str], list[str], bool, str], ...] = (
    # rep, emails, phones, active, updated_at
    ("rep-live", ["Ana@seller.example"], ["+14155550001"], True, "2026-10-01T00:00:00Z"),
    (
        "rep-gone",
        ["Bea@seller.example", "team@seller.example"],
        ["+14155550002"],
        False,
        "2026-11-15T09:00:00Z",
    ),
    ("rep-old", ["bea@seller.example"], [], False, "2026-03-01T00:00:00Z"),
)


async def _identities(engine: AsyncEngine) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    async with engine.connect() as conn:
        held = [
            tuple(r)
            for r in await conn.execute(text("SELECT identity, rep_id FROM ref_rep_identities ORDER BY 1, 2"))
        ]
        former = [
            tuple(r)
            for r in await conn.execute(
                text("SELECT identity, rep_id, until::text FROM ref_rep_former_identities ORDER BY 1")
            )
        ]
    return held, former


async def test_inactive_reps_identities_are_kept_until_their_record_and_given_back_on_downgrade(
    database_url: str, db_engine: AsyncEngine
) -> None:
    await asyncio.to_thread(command.downgrade, alembic_config(database_url), "0017_deal_engagement")
    async with db_engine.begin() as conn:
        for rep, emails, phones, active, at in _REPS:
            await conn.execute(
                text(
                    "INSERT INTO ref_reps (tenant_id, rep_id, name, emails, phones, raw_phones, active, "
                    "updated_at, deleted, source) VALUES ('acme', :r, :r, :e, :p, :p, :a, :u, false, 'crm')"
                ),
                {"r": rep, "e": emails, "p": phones, "a": active, "u": datetime.fromisoformat(at)},
            )
            for identity in {*(e.lower() for e in emails), *phones}:
                await conn.execute(
                    text(
                        "INSERT INTO ref_rep_identities (tenant_id, identity, rep_id) VALUES ('acme', :i, :r)"
                    ),
                    {"i": identity, "r": rep},
                )
        # team@ is also held by the live rep (a shared mailbox): left to her.
        await conn.execute(
            text(
                "INSERT INTO ref_rep_identities (tenant_id, identity, rep_id) VALUES ('acme', 'team@seller.example', 'rep-live')"
            )
        )
    before = await _identities(db_engine)

    await asyncio.to_thread(upgrade, database_url)
    assert await _identities(db_engine) == (
        [
            ("+14155550001", "rep-live"),
            ("ana@seller.example", "rep-live"),
            ("team@seller.example", "rep-live"),
        ],
        [
            ("+14155550002", "rep-gone", "2026-11-15 09:00:00+00"),
            ("bea@seller.example", "rep-gone", "2026-11-15 09:00:00+00"),
        ],
    )

    await asyncio.to_thread(command.downgrade, alembic_config(database_url), "0017_deal_engagement")
    held, _ = await _identities(db_engine)
    assert held == before[0]
    await asyncio.to_thread(upgrade, database_url)
