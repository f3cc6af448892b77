"""A deal's close as ingest publishes it from the canonical CRM sync (``crm_sync.deal_close``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from libs.common.contracts.crm import DealV1
from services.ingest.domain.crm_sync import read_entities

CREATED = datetime(2026, 6, 1, tzinfo=UTC)
CLOSE = datetime(2026, 9, 1, tzinfo=UTC)
UPDATED = datetime(2026, 8, 1, tzinfo=UTC)


def _read(**fields: Any) -> datetime | None:
    sent = DealV1(id="d", updated_at=UPDATED, created_at=CREATED, **fields)
    (read,), warnings = read_entities((sent,), "US")
    assert isinstance(read, DealV1)
    assert warnings == ()
    return read.closed_at


def test_an_open_deals_expected_close_date_is_not_a_close() -> None:
    assert _read(closed_at=CLOSE) is None
    assert _read() is None


def test_a_closed_deal_keeps_its_close_date() -> None:
    assert _read(is_closed=True, closed_at=CLOSE) == CLOSE
    assert _read(is_closed=True, is_won=True, closed_at=CLOSE) == CLOSE


def test_a_closed_deal_without_a_date_closed_when_reported_so_never_before_its_creation() -> None:
    assert _read(is_closed=True) == UPDATED
    sent = DealV1(id="d", updated_at=datetime(2026, 5, 1, tzinfo=UTC), created_at=CREATED, is_closed=True)
    (read,), _ = read_entities((sent,), "US")
    assert isinstance(read, DealV1)
    assert read.closed_at == CREATED
