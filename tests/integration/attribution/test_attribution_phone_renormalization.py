"""``spm renormalize-phones`` on PostgreSQL: stored national formats become E.164, once."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from libs.common.tenancy import create_tenant
from libs.common.testing.stack import TEST_SECRET_KEY
from spm.commands.phones import renormalize_stored_phones, tenant_phone_region

TENANT = "acme"


async def _us_tenant(conn: AsyncConnection, rep_phone: str) -> None:
    """The tenant, whose phones without their + are read in the US, and its rep-1 with
    ``rep_phone`` stored as sent."""
    await create_tenant(conn, TENANT, TEST_SECRET_KEY)
    await conn.execute(
        text('UPDATE tenants SET settings = \'{"default_phone_region": "US"}\' WHERE tenant_id = :t'),
        {"t": TENANT},
    )
    await conn.execute(
        text(
            "INSERT INTO ref_reps (tenant_id, rep_id, name, emails, phones, updated_at) "
            "VALUES (:t, 'rep-1', '', '{}', :p, now())"
        ),
        {"t": TENANT, "p": [rep_phone]},
    )


async def _phones(engine: AsyncEngine, table: str, key: str) -> list[tuple[str, list[str], list[str]]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(f"SELECT {key} AS key, phones, raw_phones FROM {table} WHERE tenant_id = :t ORDER BY {key}"),
            {"t": TENANT},
        )
        return [(r.key, list(r.phones), list(r.raw_phones)) for r in rows]


async def test_stored_phones_are_rewritten_as_e164_and_a_second_pass_changes_nothing(
    db_engine: AsyncEngine,
) -> None:
    async with db_engine.begin() as conn:
        await _us_tenant(conn, "1-650-555-1234")
        await conn.execute(
            text(
                "INSERT INTO ref_contacts (tenant_id, contact_id, name, emails, phones, account_id, updated_at) "
                "VALUES (:t, 'con-1', '', '{}', :old, 'acc-1', now()), (:t, 'con-2', '', '{}', :new, 'acc-1', now())"
            ),
            {"t": TENANT, "old": ["(415) 555-0100", "junk"], "new": ["+12125550199"]},
        )

    region = await tenant_phone_region(db_engine, TENANT)
    dry = await renormalize_stored_phones(db_engine, TENANT, region, dry_run=True)
    untouched = await _phones(db_engine, "ref_contacts", "contact_id")
    done = await renormalize_stored_phones(db_engine, TENANT, region)
    again = await renormalize_stored_phones(db_engine, TENANT, region)

    assert region == "US"
    assert dry.rewritten == {"ref_contacts": 2, "ref_reps": 1}
    assert untouched[0] == ("con-1", ["(415) 555-0100", "junk"], [])
    assert done.rewritten == {"ref_contacts": 2, "ref_reps": 1}
    assert done.dropped == [("ref_contacts", "con-1", "junk")]
    assert await _phones(db_engine, "ref_contacts", "contact_id") == [
        ("con-1", ["+14155550100"], ["(415) 555-0100"]),
        ("con-2", ["+12125550199"], ["+12125550199"]),
    ]
    assert await _phones(db_engine, "ref_reps", "rep_id") == [("rep-1", ["+16505551234"], ["1-650-555-1234"])]
    assert again.rewritten == {"ref_contacts": 0, "ref_reps": 0}


async def test_a_contacts_stored_phones_are_read_in_its_country_then_its_accounts(
    db_engine: AsyncEngine,
) -> None:
    """Stored as sent before the phones were read: Bo in the UK, Dana without a country at a
    German account, Cy nowhere (the tenant's US); the rep in the tenant's region."""
    async with db_engine.begin() as conn:
        await _us_tenant(conn, "020 7946 0958")
        await conn.execute(
            text(
                "INSERT INTO ref_accounts (tenant_id, account_id, name, domains, country, updated_at) "
                "VALUES (:t, 'acc-de', '', '{}', 'DE', now()), (:t, 'acc-uk', '', '{}', 'GB', now())"
            ),
            {"t": TENANT},
        )
        await conn.execute(
            text(
                "INSERT INTO ref_contacts (tenant_id, contact_id, name, emails, phones, account_id, country, "
                "updated_at) VALUES (:t, 'con-bo', '', '{}', :bo, 'acc-de', 'GB', now()), "
                "(:t, 'con-cy', '', '{}', :cy, NULL, NULL, now()), "
                "(:t, 'con-dana', '', '{}', :dana, 'acc-de', NULL, now())"
            ),
            {"t": TENANT, "bo": ["020 7946 0958"], "cy": ["(415) 555-0177"], "dana": ["030 1234567"]},
        )

    done = await renormalize_stored_phones(db_engine, TENANT, await tenant_phone_region(db_engine, TENANT))

    assert done.rewritten == {"ref_contacts": 3, "ref_reps": 1}
    assert done.dropped == [("ref_reps", "rep-1", "020 7946 0958")]
    assert await _phones(db_engine, "ref_contacts", "contact_id") == [
        ("con-bo", ["+442079460958"], ["020 7946 0958"]),
        ("con-cy", ["+14155550177"], ["(415) 555-0177"]),
        ("con-dana", ["+49301234567"], ["030 1234567"]),
    ]


async def test_extensions_kept_in_raw_phones_are_keyed_with_their_lines_once(db_engine: AsyncEngine) -> None:
    """Stored before migration 0023: Al's line read, its ``x12`` only in ``raw_phones``; Cy's
    ``x101`` as sent. Each gets its line and extension keyed (``phone_extensions``)."""
    async with db_engine.begin() as conn:
        await create_tenant(conn, TENANT, TEST_SECRET_KEY)
        await conn.execute(
            text('UPDATE tenants SET settings = \'{"default_phone_region": "US"}\' WHERE tenant_id = :t'),
            {"t": TENANT},
        )
        await conn.execute(
            text(
                "INSERT INTO ref_contacts (tenant_id, contact_id, name, emails, phones, raw_phones, updated_at) "
                "VALUES (:t, 'con-al', '', '{}', :p, :r, now())"
            ),
            {"t": TENANT, "p": ["+14155550200"], "r": ["(415) 555-0200 ext. 12"]},
        )
        await conn.execute(
            text(
                "INSERT INTO ref_reps (tenant_id, rep_id, name, emails, phones, updated_at) "
                "VALUES (:t, 'rep-cy', '', '{}', :p, now())"
            ),
            {"t": TENANT, "p": ["(415) 555-0900 x101"]},
        )

    done = await renormalize_stored_phones(db_engine, TENANT, "US")
    again = await renormalize_stored_phones(db_engine, TENANT, "US")

    assert done.rewritten == {"ref_contacts": 1, "ref_reps": 1}
    async with db_engine.connect() as conn:
        held = [
            tuple(r)
            for table, key in (("ref_contacts", "contact_id"), ("ref_reps", "rep_id"))
            for r in await conn.execute(
                text(f"SELECT {key}, phones, phone_extensions FROM {table} WHERE tenant_id = :t"),
                {"t": TENANT},
            )
        ]
    assert held == [
        ("con-al", ["+14155550200"], ["+14155550200;ext=12"]),
        ("rep-cy", ["+14155550900"], ["+14155550900;ext=101"]),
    ]
    assert again.rewritten == {"ref_contacts": 0, "ref_reps": 0}
