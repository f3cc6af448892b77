"""A CRM record dated far ahead through ``POST /v1/crm/sync``, the real broker, attribution and
PostgreSQL: it is accepted with its ``updated_at`` read as the time it was received (a warning
names the field), so the CRM's next real edit replaces it instead of looking older than 2099."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.settings import DatabaseSettings, KafkaSettings
from libs.common.testing.stack import in_process_stack
from tests.integration.attribution.test_attribution_real_crm import DEAL, TENANT, _ingest_auth
from tests.integration.polling import eventually


async def _deal(engine: AsyncEngine) -> tuple[str, datetime] | None:
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text("SELECT stage, updated_at FROM ref_deals WHERE tenant_id = :t AND deal_id = 'deal-1'"),
                {"t": TENANT},
            )
        ).first()
    return None if row is None else (row.stage, row.updated_at)


async def test_a_crm_record_dated_2099_is_accepted_as_received_and_a_later_edit_replaces_it(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    auth = await _ingest_auth(db_engine)
    account: dict[str, Any] = {"entity_type": "account", "id": "acc-1", "updated_at": "2026-11-02T15:00:00Z"}
    frozen = {**DEAL, "stage": "proposal", "updated_at": "2099-01-01T00:00:00Z"}
    async with in_process_stack(kafka_settings, database_settings, ("ingest", "attribution")) as stack:
        before = datetime.now(UTC)
        first = await stack.ingest.post(
            "/v1/crm/sync", json={"source": "test", "entities": [account, frozen]}, headers=auth
        )
        after = datetime.now(UTC)
        assert first.status_code == 202, first.text
        body = first.json()
        assert body["accepted"] == 2
        assert [(w["index"], w["field"]) for w in body["warnings"]] == [(1, "entities.1.updated_at")]
        reason = body["warnings"][0]["reason"]
        assert reason.startswith("more than 86400 s in the future (received "), reason
        assert reason.endswith("read as the time it was received, the deal accepted"), reason
        held = await eventually(lambda: _deal(db_engine), lambda d: d is not None, 60, "deal-1 held")
        assert held[0] == "proposal"
        assert before <= held[1] <= after  # the time received, not 2099

        # The CRM's next real edit, dated now: newer than the version held, so it wins.
        edited = {**DEAL, "stage": "negotiation", "updated_at": datetime.now(UTC).isoformat()}
        second = await stack.ingest.post(
            "/v1/crm/sync", json={"source": "test", "entities": [edited]}, headers=auth
        )
        assert second.status_code == 202, second.text
        assert second.json() == {"accepted": 1, "warnings": []}
        await eventually(
            lambda: _deal(db_engine), lambda d: d is not None and d[0] == "negotiation", 60, "the edit held"
        )
