"""Keyset cursors over activities: (occurred_at, activity_id), newest first."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from libs.common.contracts.fields import check_utc_datetime
from services.gateway.deps import decode_cursor, encode_cursor, invalid
from services.gateway.schemas import ActivitySummaryRead


def activity_after(cursor: str | None) -> tuple[datetime, uuid.UUID] | None:
    if cursor is None:
        return None
    at, activity_id = decode_cursor(cursor, 2)
    try:
        # Bounded like every stored time: year 1 at +14:00 would overflow on its way to PostgreSQL.
        return check_utc_datetime(datetime.fromisoformat(at)), uuid.UUID(activity_id)
    except ValueError:
        invalid("cursor", "is not a cursor this API issued")


def activity_page(rows: list[dict[str, Any]], size: int) -> tuple[list[ActivitySummaryRead], str | None]:
    """The first ``size`` rows (the query asked for one more) as models, and the cursor past the last one."""
    items, next_cursor = activity_rows_page(rows, size)
    return [ActivitySummaryRead(**row) for row in items], next_cursor


def activity_rows_page(rows: list[dict[str, Any]], size: int) -> tuple[list[dict[str, Any]], str | None]:
    """The first ``size`` rows (the query asked for one more) and the cursor past the last one."""
    items = rows[:size]
    if len(rows) <= size:
        return items, None
    last = items[-1]
    return items, encode_cursor([last["occurred_at"].isoformat(), str(last["activity_id"])])
