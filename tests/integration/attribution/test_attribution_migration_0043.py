"""Migration 0043: reps held before it get ``ref_reps.mailboxes`` from the same
``linking_keys`` new versions are written with (Gmail's dots, Unicode form, ``+tags`` aside),
former addresses are not renames, and the overrides naming a rep are an index range; and back."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from alembic import command
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.db.migrate import alembic_config, upgrade
from libs.common.personal_domains import linking_keys
from tests.integration.attribution.attribution_support import rows

TENANT = "acme-0043"
BEFORE = "0042_rematch_jobs"
EMAILS = {
    "rep-jo": ["Jo.Doe+crm@googlemail.com"],
    "rep-jose": ["jose\u0301@acme.example", "sales+jose@acme.example"],
    "rep-none": [],
}


async def _columns(engine: AsyncEngine) -> list[tuple[str, str]]:
    return sorted(
        await rows(
            engine,
            "SELECT table_name, column_name FROM information_schema.columns WHERE "
            "(table_name, column_name) IN (('ref_reps', 'mailboxes'), ('ref_rep_former_identities', 'renamed'))",
        )
    )


async def test_reps_held_get_their_linking_keys_and_the_columns_go_on_downgrade(
    database_url: str, db_engine: AsyncEngine
) -> None:
    await asyncio.to_thread(command.downgrade, alembic_config(database_url), BEFORE)
    assert await _columns(db_engine) == []
    when = datetime(2026, 11, 2, tzinfo=UTC)
    async with db_engine.begin() as conn:
        for rep_id, emails in EMAILS.items():
            await conn.execute(
                text(
                    "INSERT INTO ref_reps (tenant_id, rep_id, name, emails, phones, updated_at) "
                    "VALUES (:t, :r, :r, :e, '{}', :u)"
                ),
                {"t": TENANT, "r": rep_id, "e": emails, "u": when},
            )
        await conn.execute(
            text(
                "INSERT INTO ref_rep_former_identities (tenant_id, identity, rep_id, until) "
                "VALUES (:t, 'jo@acme.example', 'rep-jo', :u)"
            ),
            {"t": TENANT, "u": when},
        )

    await asyncio.to_thread(upgrade, database_url)
    assert await _columns(db_engine) == [("ref_rep_former_identities", "renamed"), ("ref_reps", "mailboxes")]
    held = await rows(
        db_engine, f"SELECT rep_id, mailboxes FROM ref_reps WHERE tenant_id = '{TENANT}' ORDER BY rep_id"
    )
    assert held == [
        ("rep-jo", ["jodoe+crm@gmail.com", "jodoe@gmail.com"]),
        ("rep-jose", ["jos\u00e9@acme.example", "sales+jose@acme.example", "sales@acme.example"]),
        ("rep-none", []),
    ]
    assert [tuple(r) for r in held] == [(r, linking_keys(e)) for r, e in sorted(EMAILS.items())]
    assert await rows(
        db_engine, f"SELECT renamed FROM ref_rep_former_identities WHERE tenant_id = '{TENANT}'"
    ) == [(False,)]
    async with db_engine.connect() as conn:
        await conn.exec_driver_sql("SET enable_seqscan = off")
        plan = "\n".join(
            row[0]
            for row in await conn.exec_driver_sql(
                f"EXPLAIN SELECT activity_id FROM attribution_overrides WHERE tenant_id = '{TENANT}' "
                "AND rep_id = ANY(ARRAY['rep-jo'])"
            )
        )
        await conn.rollback()
    assert "attribution_overrides_rep" in plan
    assert await rows(
        db_engine, "SELECT indexdef FROM pg_indexes WHERE indexname = 'ref_reps_mailboxes'"
    ) == [("CREATE INDEX ref_reps_mailboxes ON public.ref_reps USING gin (mailboxes)",)]

    await asyncio.to_thread(command.downgrade, alembic_config(database_url), BEFORE)
    assert await _columns(db_engine) == []
    assert (
        await rows(
            db_engine,
            "SELECT indexname FROM pg_indexes WHERE indexname IN ('attribution_overrides_rep', 'ref_reps_mailboxes')",
        )
        == []
    )
    async with db_engine.begin() as conn:
        await conn.execute(text("DELETE FROM ref_rep_former_identities WHERE tenant_id = :t"), {"t": TENANT})
        await conn.execute(text("DELETE FROM ref_reps WHERE tenant_id = :t"), {"t": TENANT})
    await asyncio.to_thread(upgrade, database_url)
