"""The tenant's calendar: its IANA time zone and first fiscal month, from its settings."""

from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncConnection

from libs.common.contracts.tenant_settings import InvalidTenantSettings
from libs.common.tenant_settings_store import load_tenant_settings


@dataclass(frozen=True, slots=True)
class TenantCalendar:
    zone: ZoneInfo
    fiscal_year_start_month: int = 1


async def tenant_calendar(conn: AsyncConnection, tenant_id: str) -> TenantCalendar:
    """The calendar the metrics service buckets this tenant's activities by (UTC, January if unset)."""
    try:
        settings = await load_tenant_settings(conn, tenant_id)
    except InvalidTenantSettings:
        # The time zone and fiscal month are validated columns: only another setting can be
        # broken, and the dashboard's calendar should not fail for it.
        settings = None
    if settings is None:
        return TenantCalendar(ZoneInfo("UTC"))
    return TenantCalendar(ZoneInfo(settings.time_zone), settings.fiscal_year_start_month)
