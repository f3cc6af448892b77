"""Migration 0044: the reps' and contacts' addresses held before it (``ref_rep_identities``,
``ref_contact_identities``, ``ref_rep_former_identities``) in Unicode's composed form, as
``held_address`` writes them now; a decomposed row whose composed form is held already goes; an
ASCII address and a phone are left alone; downgrade keeps the composed rows."""

from __future__ import annotations

import asyncio
import unicodedata
from datetime import UTC, datetime

from alembic import command
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.db.migrate import alembic_config, upgrade
from tests.integration.attribution.attribution_support import rows

TENANT = "acme-0044"
BEFORE = "0043_rep_linking_keys"
JOSE_NFD = unicodedata.normalize("NFD", "josé@acme.example")
JOSE = unicodedata.normalize("NFC", "josé@acme.example")
ZOE_NFD = unicodedata.normalize("NFD", "zoë@buyer.example")
ZOE = unicodedata.normalize("NFC", "zoë@buyer.example")


async def _held(engine: AsyncEngine) -> list[tuple[str, ...]]:
    return sorted(
        tuple(r)
        for r in await rows(
            engine,
            f"SELECT 'rep', identity, rep_id FROM ref_rep_identities WHERE tenant_id = '{TENANT}' "
            f"UNION ALL SELECT 'contact', identity, contact_id FROM ref_contact_identities WHERE tenant_id = '{TENANT}' "
            f"UNION ALL SELECT 'former', identity, rep_id FROM ref_rep_former_identities WHERE tenant_id = '{TENANT}'",
        )
    )


async def test_addresses_held_decomposed_are_composed_and_stay_so_on_downgrade(
    database_url: str, db_engine: AsyncEngine
) -> None:
    await asyncio.to_thread(command.downgrade, alembic_config(database_url), BEFORE)
    async with db_engine.begin() as conn:
        for identity, rep_id in (
            (JOSE_NFD, "rep-jose"),
            ("ana@acme.example", "rep-ana"),
            ("+14155550100", "rep-ana"),
        ):
            await conn.execute(
                text("INSERT INTO ref_rep_identities (tenant_id, identity, rep_id) VALUES (:t, :i, :r)"),
                {"t": TENANT, "i": identity, "r": rep_id},
            )
        # Zoë's record held both forms (two versions): one composed row remains.
        for identity in (ZOE_NFD, ZOE):
            await conn.execute(
                text(
                    "INSERT INTO ref_contact_identities (tenant_id, identity, contact_id) VALUES (:t, :i, 'con-zoe')"
                ),
                {"t": TENANT, "i": identity},
            )
        await conn.execute(
            text(
                "INSERT INTO ref_rep_former_identities (tenant_id, identity, rep_id, until) "
                "VALUES (:t, :i, 'rep-old', :u)"
            ),
            {
                "t": TENANT,
                "i": unicodedata.normalize("NFD", "rené@acme.example"),
                "u": datetime(2026, 11, 2, tzinfo=UTC),
            },
        )

    await asyncio.to_thread(upgrade, database_url)
    composed = [
        ("contact", ZOE, "con-zoe"),
        ("former", unicodedata.normalize("NFC", "rené@acme.example"), "rep-old"),
        ("rep", "+14155550100", "rep-ana"),
        ("rep", "ana@acme.example", "rep-ana"),
        ("rep", JOSE, "rep-jose"),
    ]
    assert await _held(db_engine) == composed

    await asyncio.to_thread(command.downgrade, alembic_config(database_url), BEFORE)
    assert await _held(db_engine) == composed
    async with db_engine.begin() as conn:
        for table in ("ref_rep_identities", "ref_contact_identities", "ref_rep_former_identities"):
            await conn.execute(text(f"DELETE FROM {table} WHERE tenant_id = :t"), {"t": TENANT})
    await asyncio.to_thread(upgrade, database_url)
