"""``spm privacy erase`` runs the erasure in the CLI: by phone, idempotent, audited, with counts."""

from __future__ import annotations

import getpass

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.settings import DatabaseSettings, KafkaSettings
from libs.common.tenancy import create_tenant
from libs.common.testing.stack import TEST_SECRET_KEY, in_process_stack
from services.gateway.adapters.audit import list_admin_actions
from spm.commands.privacy import erase_person
from tests.integration.polling import poll_rows, references_landed

from .privacy_support import BO_PHONE, BO_TRACES, activities, crm, tables_mentioning


async def test_cli_erasure_by_phone_is_idempotent_and_audited(
    kafka_settings: KafkaSettings,
    database_settings: DatabaseSettings,
    database_url: str,
    db_engine: AsyncEngine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("SPM_SECRET_KEY", TEST_SECRET_KEY)
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_settings.bootstrap_servers)
    monkeypatch.setenv("KAFKA_TOPIC_PREFIX", kafka_settings.topic_prefix)
    monkeypatch.setenv("KAFKA_ENABLE_IDEMPOTENCE", "false")
    async with db_engine.begin() as conn:
        tenant = await create_tenant(conn, "acme", TEST_SECRET_KEY)
    ingest_key = tenant["api_keys"]["ingest"]  # type: ignore[index]
    headers = {"Authorization": f"Bearer {ingest_key}"}
    async with in_process_stack(
        kafka_settings, database_settings, services=("ingest", "attribution")
    ) as stack:
        assert (await stack.ingest.post("/v1/crm/sync", json=crm(), headers=headers)).status_code == 202
        await references_landed(db_engine, "acme", crm()["entities"])
        posted = await stack.ingest.post("/v1/events", json={"activities": activities()}, headers=headers)
        assert posted.status_code == 202
        [(stored,)] = await poll_rows(
            db_engine, "SELECT count(*) FROM attributions", {}, lambda rows: rows == [(5,)]
        )
        assert stored == 5

    with pytest.raises(ValueError, match="E"):
        await erase_person("acme", "phone", "212-555")
    with pytest.raises(LookupError):
        await erase_person("nobody", "phone", BO_PHONE)
    erasure_id, counts = await erase_person("acme", "phone", "+1 212 555 0100")
    # Bo's phone leads to his CRM contact, whose email joins the list: all his activities are found.
    assert counts == {
        "activities_deleted": 2,
        "activities_redacted": 1,
        "contacts_deleted": 1,
        "webhook_states_deleted": 0,
        "versions_published": 3,
    }
    again_id, again = await erase_person("acme", "phone", BO_PHONE)
    assert (again_id, again) == (erasure_id, counts)
    assert await tables_mentioning(db_engine, BO_TRACES) == []
    async with db_engine.connect() as conn:
        audited, _ = await list_admin_actions(conn, "acme", limit=10, action="erasure.requested")
    assert [a["actor"] for a in audited] == [f"cli:{getpass.getuser()}"] * 2
    assert [a["after"]["created"] for a in audited] == [False, True]
    assert all(a["target"] == f"erasure:{erasure_id}" for a in audited)
