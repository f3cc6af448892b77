"""The tenant's calendar settings: its IANA time zone and first fiscal month."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection


@dataclass(frozen=True, slots=True)
class TenantCalendar:
    time_zone: str = "UTC"
    fiscal_year_start_month: int = 1


async def tenant_calendar(conn: AsyncConnection, tenant_id: str) -> TenantCalendar:
    row = (
        await conn.execute(
            text("SELECT timezone, fiscal_year_start_month FROM tenants WHERE tenant_id = :t"),
            {"t": tenant_id},
        )
    ).first()
    if row is None:
        return TenantCalendar()
    return TenantCalendar(row.timezone, int(row.fiscal_year_start_month))
