"""``spm tenants list`` and ``spm tenants settings get|set`` against a real database and broker."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.settings import KafkaSettings
from libs.common.tenancy import create_tenant
from libs.common.testing.stack import TEST_SECRET_KEY
from libs.common.topics import SETTINGS_CHANGED
from services.gateway.adapters.audit import list_admin_actions
from tests.integration.ingest.ingest_integration_support import read_topic

REPO = Path(__file__).resolve().parents[3]


def _spm(
    args: list[str], database_url: str, kafka: KafkaSettings, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "KAFKA_", "SPM_"))}
    env.update(
        PYTHONPATH=str(REPO),
        DATABASE_URL=database_url,
        KAFKA_BOOTSTRAP_SERVERS=kafka.bootstrap_servers,
        KAFKA_TOPIC_PREFIX=kafka.topic_prefix,
        KAFKA_ENABLE_IDEMPOTENCE="false",
        SPM_SECRET_KEY=TEST_SECRET_KEY,
        SPM_STACK_FILE="/nonexistent",
    )
    return subprocess.run(
        [sys.executable, "-m", "spm.cli", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_settings_set_get_and_list(
    database_url: str, kafka_settings: KafkaSettings, db_engine: AsyncEngine
) -> None:
    async with db_engine.begin() as conn:
        await create_tenant(conn, "acme", TEST_SECRET_KEY, timezone="Europe/Paris")

    changed = _spm(
        [
            "tenants",
            "settings",
            "set",
            "acme",
            "fiscal_year_start_month=2",
            'privacy.excluded_domains=["lawfirm.example"]',
        ],
        database_url,
        kafka_settings,
    )
    assert changed.returncode == 0, changed.stderr
    saved, follow = changed.stdout.splitlines()
    assert saved == "tenant acme: settings version 1 saved; changed: fiscal_year_start_month, privacy"
    # A fiscal calendar change rebuilds the rollups; metrics is not running here, so it waits.
    assert follow.startswith(
        "rebuilding period rollups in the background: follow with `spm tenants settings job acme "
    )
    job_id = follow.split()[-2]
    job = _spm(["tenants", "settings", "job", "acme", job_id], database_url, kafka_settings)
    assert (job.returncode, job.stdout) == (0, "rebuild_rollups queued: 0/?\n")
    [event] = await read_topic(kafka_settings, SETTINGS_CHANGED)
    assert (event["tenant_id"], event["version"], event["changed"]) == (
        "acme",
        1,
        ["fiscal_year_start_month", "privacy"],
    )
    assert event["changed_by"].startswith("cli:")
    async with db_engine.connect() as conn:
        audited, _ = await list_admin_actions(conn, "acme", limit=5, action="settings.changed")
    [entry] = audited
    assert (entry["actor"], entry["credential"], entry["target"]) == (event["changed_by"], "cli", "settings")
    assert entry["before"]["version"] == 0
    assert entry["after"] == {
        "version": 1,
        "fiscal_year_start_month": 2,
        "privacy": {**entry["after"]["privacy"], "excluded_domains": ["lawfirm.example"]},
    }

    shown = _spm(["tenants", "settings", "get", "acme"], database_url, kafka_settings)
    assert shown.returncode == 0, shown.stderr
    document = orjson.loads(shown.stdout)
    assert (document["time_zone"], document["fiscal_year_start_month"]) == ("Europe/Paris", 2)
    assert document["privacy"]["excluded_domains"] == ["lawfirm.example"]

    refused = _spm(
        ["tenants", "settings", "set", "acme", "privacy.excluded_domain=x.example"],
        database_url,
        kafka_settings,
    )
    assert refused.returncode == 2
    assert refused.stderr.splitlines() == ["spm: privacy.excluded_domain: Extra inputs are not permitted"]

    whole = _spm(
        ["tenants", "settings", "set", "acme", "--from-file", "-"],
        database_url,
        kafka_settings,
        stdin='{"time_zone": "UTC"}',
    )
    assert whole.returncode == 0, whole.stderr
    assert (
        whole.stdout.splitlines()[0]
        == "tenant acme: settings version 2 saved; changed: time_zone, fiscal_year_start_month, privacy"
    )
    again = _spm(
        ["tenants", "settings", "set", "acme", "--from-file", "-"],
        database_url,
        kafka_settings,
        stdin='{"time_zone": "UTC"}',
    )
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines() == ["tenant acme: settings version 2 kept; changed: nothing"]

    listed = _spm(["tenants", "list", "--json"], database_url, kafka_settings)
    assert [
        (t["tenant_id"], t["timezone"], t["fiscal_year_start_month"], t["active_keys"])
        for t in orjson.loads(listed.stdout)
    ] == [("acme", "UTC", 1, 3)]


async def test_settings_broken_by_hand_are_named(
    database_url: str, kafka_settings: KafkaSettings, db_engine: AsyncEngine
) -> None:
    async with db_engine.begin() as conn:
        await create_tenant(conn, "acme", TEST_SECRET_KEY)
        await conn.execute(text("""UPDATE tenants SET settings = '{"metrics": {"conversation_min": 1}}'"""))
    shown = _spm(["tenants", "settings", "get", "acme"], database_url, kafka_settings)
    assert shown.returncode == 1
    assert orjson.loads(shown.stdout)["metrics"] == {"conversation_min": 1}
    assert shown.stderr.splitlines() == [
        "spm: tenant 'acme' has invalid settings: metrics.conversation_min: Extra inputs are not permitted"
    ]
    fixed = _spm(
        ["tenants", "settings", "set", "acme", "metrics.conversation_min=null"], database_url, kafka_settings
    )
    assert fixed.returncode == 0, fixed.stderr
    assert _spm(["tenants", "settings", "get", "acme"], database_url, kafka_settings).returncode == 0


async def test_a_phone_region_change_names_its_reread_phones_job(
    database_url: str, kafka_settings: KafkaSettings, db_engine: AsyncEngine
) -> None:
    async with db_engine.begin() as conn:
        await create_tenant(conn, "acme", TEST_SECRET_KEY, timezone="UTC")
        # A UK mobile synced while the tenant was read as US: kept unread.
        await conn.execute(
            text(
                "INSERT INTO ref_contacts (tenant_id, contact_id, name, emails, phones, unread_phones, updated_at) "
                "VALUES ('acme', 'con-4', 'Cy', '{}', '{}', '{\"07700 900123\"}', '2026-11-03T15:00:00Z')"
            )
        )

    changed = _spm(
        ["tenants", "settings", "set", "acme", "default_phone_region=GB"], database_url, kafka_settings
    )
    assert changed.returncode == 0, changed.stderr
    saved, follow = changed.stdout.splitlines()
    assert saved == "tenant acme: settings version 1 saved; changed: default_phone_region"
    # Was the bare kind ("reread_phones: follow with ..."), unlike every other job a change starts.
    assert follow.startswith(
        "reading the contacts' unread phones again in the new phone region: follow with "
        "`spm tenants settings job acme "
    )
    job_id = follow.split()[-2]
    # Ingest is not running here, so it waits.
    job = _spm(["tenants", "settings", "job", "acme", job_id], database_url, kafka_settings)
    assert (job.returncode, job.stdout) == (0, "reread_phones queued: 0/?\n")


async def test_a_time_zone_file_the_database_does_not_know_is_refused_at_creation_and_in_settings(
    database_url: str, kafka_settings: KafkaSettings, db_engine: AsyncEngine
) -> None:
    """``right/UTC`` opens in Python (a file of the zone directory) but PostgreSQL, which buckets
    the tenant's funnel and rebuilds its rollups, knows no such zone: refused before anything is
    written, as the gateway refuses it."""
    created = _spm(["tenants", "create", "acme", "--timezone", "right/UTC"], database_url, kafka_settings)
    assert created.returncode == 2, created.stdout
    # Typer draws the error in a box: read it as one line.
    assert "'right/UTC' is not a time zone the database knows" in " ".join(
        created.stderr.replace("│", " ").split()
    )
    async with db_engine.connect() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM tenants")) == 0
    assert _spm(["tenants", "create", "acme"], database_url, kafka_settings).returncode == 0
    changed = _spm(
        ["tenants", "settings", "set", "acme", "time_zone=posixrules"], database_url, kafka_settings
    )
    assert changed.returncode != 0
    assert "time_zone: 'posixrules' is not a time zone the database knows" in changed.stderr


async def test_an_alias_to_a_rep_the_crm_data_does_not_hold_is_saved_and_warned_of(
    database_url: str, kafka_settings: KafkaSettings, db_engine: AsyncEngine
) -> None:
    async with db_engine.begin() as conn:
        await create_tenant(conn, "acme", TEST_SECRET_KEY)
        await conn.execute(
            text(
                "INSERT INTO ref_reps (tenant_id, rep_id, name, updated_at) VALUES ('acme', 'rep-a', 'Ana', now())"
            )
        )
    changed = _spm(
        ["tenants", "settings", "set", "acme", "rep_aliases.u-9=rep-a", "rep_aliases.u-10=rep-b"],
        database_url,
        kafka_settings,
    )
    assert changed.returncode == 0, changed.stderr
    assert changed.stdout.splitlines()[0] == "tenant acme: settings version 1 saved; changed: rep_aliases"
    assert changed.stderr == (
        "spm: warning: rep_aliases.u-10: maps to 'rep-b', which is no rep in the tenant's CRM data "
        "(yet): saved, and applied once the CRM sync brings that rep; if the id is a typo, correct it\n"
    )
