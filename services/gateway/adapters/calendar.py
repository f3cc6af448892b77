"""The tenant's calendar: its IANA time zone and first fiscal month, from its settings."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncConnection

from libs.common.tenant_settings_store import load_raw_tenant_settings


@dataclass(frozen=True, slots=True)
class TenantCalendar:
    zone: ZoneInfo
    fiscal_year_start_month: int = 1


async def tenant_calendar(conn: AsyncConnection, tenant_id: str) -> TenantCalendar:
    """The calendar the metrics service buckets this tenant's activities by (UTC, January if unset).

    The time zone and the fiscal month are validated columns, read as they are: another setting
    broken by hand neither fails the dashboard's calendar nor moves it to UTC (it did)."""
    document = await load_raw_tenant_settings(conn, tenant_id)
    if document is None:
        return TenantCalendar(ZoneInfo("UTC"))
    return TenantCalendar(ZoneInfo(document["time_zone"]), document["fiscal_year_start_month"])


async def tenant_today(conn: AsyncConnection, tenant_id: str) -> date:
    """Today in the tenant's time zone: the day its "current" team memberships are read on (the
    metrics service's roster is read on the tenant's days too)."""
    return datetime.now(UTC).astimezone((await tenant_calendar(conn, tenant_id)).zone).date()
