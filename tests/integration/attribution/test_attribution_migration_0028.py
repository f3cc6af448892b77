"""Migration 0028: the contacts stored before hold their ``+tagged`` addresses' mailboxes too
(as ``mailbox_forms`` now holds them), per tenant; and back."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from alembic import command
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.db.migrate import alembic_config, upgrade
from tests.integration.attribution.attribution_support import rows

#: (tenant, contact, listed emails, identities held before 0028: listed, a Gmail one's mailbox, phones)
STORED = [
    ("t-0028", "con-pia", ["pia+crm@plume.example"], ["pia+crm@plume.example", "+14155550100"]),
    ("t-0028", "con-max", ["max.x+crm@gmail.com"], ["max.x+crm@gmail.com"]),
    ("t-0028", "con-jo", ["Jo.Doe@gmail.com"], ["jo.doe@gmail.com", "jodoe@gmail.com"]),
    (
        "t-0028",
        "con-lee",
        ["lee@buyer.example", "lee+deals@buyer.example"],
        ["lee@buyer.example", "lee+deals@buyer.example"],
    ),
    ("t-0028", "con-odd", ["+only@odd.example"], ["+only@odd.example"]),
    ("t-0028-b", "con-pia", ["pia+x@other.example"], ["pia+x@other.example"]),
]


async def _identities(engine: AsyncEngine) -> list[tuple[Any, ...]]:
    return await rows(
        engine,
        "SELECT tenant_id, contact_id, identity FROM ref_contact_identities "
        "WHERE tenant_id LIKE 't-0028%' ORDER BY 1, 2, 3",
    )


async def test_tagged_contact_addresses_gain_their_mailboxes_and_lose_them_on_downgrade(
    database_url: str, db_engine: AsyncEngine
) -> None:
    await asyncio.to_thread(command.downgrade, alembic_config(database_url), "0027_contacts_by_account")
    at = datetime(2026, 11, 15, tzinfo=UTC)
    async with db_engine.begin() as conn:
        for tenant, contact, emails, identities in STORED:
            await conn.execute(
                text(
                    "INSERT INTO ref_contacts (tenant_id, contact_id, emails, phones, updated_at) "
                    "VALUES (:t, :c, :e, '{}', :u)"
                ),
                {"t": tenant, "c": contact, "e": emails, "u": at},
            )
            for identity in identities:
                await conn.execute(
                    text(
                        "INSERT INTO ref_contact_identities (tenant_id, identity, contact_id) VALUES (:t, :i, :c)"
                    ),
                    {"t": tenant, "i": identity, "c": contact},
                )
    before = await _identities(db_engine)

    await asyncio.to_thread(upgrade, database_url)
    # Lee's mailbox was listed already (held once); "+only@" has no mailbox; phones are no emails.
    assert sorted(set(await _identities(db_engine)) - set(before)) == [
        ("t-0028", "con-max", "maxx@gmail.com"),
        ("t-0028", "con-pia", "pia@plume.example"),
        ("t-0028-b", "con-pia", "pia@other.example"),
    ]

    await asyncio.to_thread(command.downgrade, alembic_config(database_url), "0027_contacts_by_account")
    assert await _identities(db_engine) == before
    await asyncio.to_thread(upgrade, database_url)
