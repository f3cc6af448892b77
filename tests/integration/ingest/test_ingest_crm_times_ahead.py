"""A CRM record dated far ahead through ``POST /v1/crm/sync``, the real broker, attribution and
PostgreSQL: it is left out with a warning naming ``entities.N.updated_at`` (as a HubSpot or
Salesforce record dated so is), never re-dated to its receipt, so versions stay ordered by the
CRM's own times: a nightly re-send of a bad record is no new version, a late retry of an older
batch overwrites nothing, and the CRM's next real edit replaces what is held."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import REGISTRY
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.settings import DatabaseSettings, KafkaSettings
from libs.common.testing.stack import in_process_stack
from tests.integration.attribution.test_attribution_real_crm import DEAL, TENANT, _ingest_auth
from tests.integration.polling import eventually

ACCOUNT: dict[str, Any] = {"entity_type": "account", "id": "acc-1", "updated_at": "2026-11-02T15:00:00Z"}


def _left_out_count() -> float:
    labels = {"source": "crm-sync", "reason": "time_ahead"}
    return REGISTRY.get_sample_value("spm_ingest_ignored_total", labels) or 0.0


async def _deal(engine: AsyncEngine) -> tuple[str, bool, datetime | None, datetime] | None:
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT stage, is_closed, closed_at, updated_at FROM ref_deals "
                    "WHERE tenant_id = :t AND deal_id = 'deal-1'"
                ),
                {"t": TENANT},
            )
        ).first()
    return None if row is None else (row.stage, row.is_closed, row.closed_at, row.updated_at)


def _left_out(index: int, body: dict[str, Any]) -> None:
    [warning] = body["warnings"]
    assert (warning["index"], warning["field"]) == (index, f"entities.{index}.updated_at")
    reason = warning["reason"]
    assert reason.startswith("more than 86400 s in the future (received "), reason
    assert reason.endswith("; the deal was left out"), reason


async def test_a_crm_record_dated_ahead_is_left_out_and_versions_keep_the_crms_order(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    auth = await _ingest_auth(db_engine)
    now = datetime.now(UTC).replace(microsecond=0)
    counted = _left_out_count()

    async def sync(*entities: dict[str, Any]) -> dict[str, Any]:
        response = await stack.ingest.post(
            "/v1/crm/sync", json={"source": "test", "entities": list(entities)}, headers=auth
        )
        assert response.status_code == 202, response.text
        body: dict[str, Any] = response.json()
        return body

    def deal(stage: str, updated_at: datetime | str, **more: Any) -> dict[str, Any]:
        at = updated_at if isinstance(updated_at, str) else updated_at.isoformat()
        return {**DEAL, "stage": stage, "updated_at": at, **more}

    async with in_process_stack(kafka_settings, database_settings, ("ingest", "attribution")) as stack:
        held = now - timedelta(hours=2)
        assert await sync(ACCOUNT, deal("proposal", held)) == {"accepted": 2, "warnings": []}
        await eventually(
            lambda: _deal(db_engine), lambda d: d == ("proposal", False, None, held), 60, "deal-1 held"
        )

        # A nightly full export re-sends the same won deal (no closed_at) from a clock in 2099,
        # then a retry of an older batch (2099-01-01) arrives after it: each is left out, none
        # becomes a version dated at its receipt (nor closes the deal then).
        won = {"is_closed": True, "is_won": True}
        for stamp in ("2099-01-02T00:00:00Z", "2099-01-02T00:00:00Z", "2099-01-01T00:00:00Z"):
            body = await sync(ACCOUNT, deal("closed_won", stamp, **won))
            assert body["accepted"] == 1
            _left_out(1, body)

        # The CRM's next real edit, dated before these sends were received: newer than what is
        # held, so it wins (read as their receipt, the 2099 versions would have won over it).
        edited = now - timedelta(hours=1)
        assert await sync(deal("negotiation", edited)) == {"accepted": 1, "warnings": []}
        await eventually(
            lambda: _deal(db_engine),
            lambda d: d == ("negotiation", False, None, edited),
            60,
            "the edit held over the 2099 sends",
        )

        # 23 h ahead is within the bound and kept as sent; a later version 25 h ahead is left
        # out, said so (not accepted, then dropped as older than the 23 h one).
        soon = now + timedelta(hours=23)
        assert await sync(deal("contract", soon)) == {"accepted": 1, "warnings": []}
        body = await sync(deal("closed_won", now + timedelta(hours=25), **won))
        assert body["accepted"] == 0
        _left_out(0, body)
        await eventually(
            lambda: _deal(db_engine), lambda d: d == ("contract", False, None, soon), 60, "23 h ahead held"
        )
        # Each left out counted as a vendor's CRM record dated ahead is.
        assert _left_out_count() - counted == 4
