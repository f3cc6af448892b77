"""Everyday mistakes with ``spm`` give one line and a non-zero exit, change nothing, never a traceback."""

from __future__ import annotations

from pathlib import Path

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.settings import KafkaSettings

from .test_cli_tenant_settings import _spm


async def _tenants(db_engine: AsyncEngine) -> list[tuple[str, int]]:
    async with db_engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT t.tenant_id, (SELECT count(*) FROM api_keys k WHERE k.tenant_id = t.tenant_id) "
                "FROM tenants t ORDER BY t.tenant_id"
            )
        )
        return [(row[0], row[1]) for row in rows]


async def test_creating_a_tenant_twice_names_it_and_keeps_the_first(
    database_url: str, kafka_settings: KafkaSettings, db_engine: AsyncEngine
) -> None:
    first = _spm(["tenants", "create", "acme", "--json"], database_url, kafka_settings)
    assert first.returncode == 0, first.stderr
    keys = orjson.loads(first.stdout)["api_keys"]

    again = _spm(["tenants", "create", "acme", "--json"], database_url, kafka_settings)
    assert (again.returncode, again.stdout) == (1, "")
    assert again.stderr.splitlines() == [
        "spm: tenant 'acme' already exists (its keys were shown when it was created)"
    ]
    assert await _tenants(db_engine) == [("acme", 3)]
    listed = _spm(["tenants", "list", "--json"], database_url, kafka_settings)
    assert [t["active_keys"] for t in orjson.loads(listed.stdout)] == [3]
    assert sorted(keys) == ["admin", "ingest", "read"]


async def test_a_tenant_id_that_is_not_a_slug_is_refused_before_anything_is_written(
    database_url: str, kafka_settings: KafkaSettings, db_engine: AsyncEngine
) -> None:
    for slug in ("Bad Slug!", "", "a", "acme/east"):
        refused = _spm(["tenants", "create", slug], database_url, kafka_settings)
        assert refused.returncode == 2, (slug, refused.stdout)
        assert "is not a tenant id" in refused.stderr
        assert "Traceback" not in refused.stderr
    assert await _tenants(db_engine) == []


async def test_reattributing_an_unknown_tenant_says_so(
    database_url: str, kafka_settings: KafkaSettings, db_engine: AsyncEngine
) -> None:
    for dry_run in (["--dry-run"], []):
        found = _spm(
            ["reattribute", "--tenant", "nope", "--since", "2026-10-01", *dry_run],
            database_url,
            kafka_settings,
        )
        assert (found.returncode, found.stdout) == (1, ""), found.stderr
        assert found.stderr.splitlines() == ["spm: no tenant 'nope'"]


async def test_a_settings_file_that_is_missing_or_not_an_object_changes_nothing(
    database_url: str, kafka_settings: KafkaSettings, db_engine: AsyncEngine, tmp_path: Path
) -> None:
    assert _spm(["tenants", "create", "acme"], database_url, kafka_settings).returncode == 0
    listed = tmp_path / "list.json"
    listed.write_text("[1, 2]")
    for path, reason in (
        (tmp_path / "missing.json", "cannot read"),
        (listed, "the settings document must be a JSON object"),
    ):
        refused = _spm(
            ["tenants", "settings", "set", "acme", "--from-file", str(path)], database_url, kafka_settings
        )
        assert refused.returncode == 2, refused.stderr
        assert reason in refused.stderr
        assert "Traceback" not in refused.stderr
    async with db_engine.connect() as conn:
        versions = await conn.scalar(text("SELECT count(*) FROM tenant_settings_history"))
    assert versions == 0
