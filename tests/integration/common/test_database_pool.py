"""The session's test databases: each a clone of the migrated template, never handed out twice,
and gone once dropped (the pool clones ahead and drops on its own thread)."""

from __future__ import annotations

import asyncio

from libs.common.testing.engines import TEMPLATE_DB, Engines
from tests.integration.polling import eventually


async def test_each_database_is_a_fresh_clone_of_the_template_and_a_dropped_one_goes(
    engines: Engines,
) -> None:
    head = engines.postgres.psql("SELECT version_num FROM alembic_version", database=TEMPLATE_DB).strip()
    assert head
    first, second = engines.new_database(), engines.new_database()
    assert first != second
    for name in (first, second):
        assert engines.postgres.psql("SELECT version_num FROM alembic_version", database=name).strip() == head
        assert engines.postgres.psql("SELECT count(*) FROM tenants", database=name).strip() == "0"
    # A write to one is not in the next one handed out.
    engines.postgres.psql("INSERT INTO tenants (tenant_id, name) VALUES ('acme', 'acme')", database=first)
    third = engines.new_database()
    assert engines.postgres.psql("SELECT count(*) FROM tenants", database=third).strip() == "0"

    for name in (first, second, third):
        engines.drop_database(name)

    async def left() -> list[str]:
        names = await asyncio.to_thread(engines.postgres.psql, "SELECT datname FROM pg_database")
        return sorted({first, second, third} & set(names.split()))

    await eventually(left, lambda names: names == [], 30, "the dropped databases gone")
