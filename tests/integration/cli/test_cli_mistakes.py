"""Everyday mistakes with ``spm`` give one line and a non-zero exit, change nothing, never a traceback."""

from __future__ import annotations

import http.server
import threading
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


class _Refusing(http.server.BaseHTTPRequestHandler):
    """An ingest that refuses every key, as a revoked one is refused."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        body = orjson.dumps(
            {
                "type": "about:blank",
                "title": "Unauthorized",
                "status": 401,
                "detail": "the API key is revoked",
            }
        )
        self.send_response(401)
        self.send_header("Content-Type", "application/problem+json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_a_refused_ingest_key_is_one_line_naming_the_reason(
    database_url: str, kafka_settings: KafkaSettings
) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Refusing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        refused = _spm(
            ["demo", "--ingest-url", url, "--ingest-key", "spm_ingest_x", "--reps", "2", "--days", "1"],
            database_url,
            kafka_settings,
        )
    finally:
        server.shutdown()
        server.server_close()
    assert refused.returncode == 1
    assert refused.stderr.splitlines() == [
        f"spm: POST {url}/v1/crm/sync answered 401: the API key is revoked"
    ]


def test_dead_letters_without_a_broker_is_one_line(database_url: str, kafka_settings: KafkaSettings) -> None:
    nowhere = KafkaSettings(bootstrap_servers="127.0.0.1:9", request_timeout_ms=1_000)
    for command in ("inspect", "replay"):
        found = _spm(["dlq", command, "--topic", "activity-ingested-dlq"], database_url, nowhere)
        assert found.returncode == 69, found.stderr
        assert found.stderr.splitlines() == [
            "spm: cannot reach Kafka at 127.0.0.1:9 (no broker answered); "
            "start the local stack with `spm up` or set KAFKA_BOOTSTRAP_SERVERS"
        ]
