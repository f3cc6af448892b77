"""Reps and teams from the CRM reference tables; every query is scoped to one tenant."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from services.gateway.adapters import hierarchy

# A membership counts on ``day`` when valid_from <= day < valid_to (valid_to exclusive, open if null).
_CURRENT = "m.valid_from <= :today AND (m.valid_to IS NULL OR m.valid_to > :today) AND NOT m.deleted"

# A rep the CRM deactivated, deleted or merged is on no team's roster (as for metrics' insights:
# ``read_models.inactive_reps``), whatever memberships she still lists.
_ON_ROSTER = """EXISTS (SELECT 1 FROM ref_reps x WHERE x.tenant_id = m.tenant_id AND x.rep_id = m.rep_id
                AND x.active AND NOT x.deleted AND x.merged_into IS NULL)"""

# The memberships of a person: her rep's, and those of the ids that are her aliases (attribution's
# ``alias_of``: Bea's team came with her HubSpot owner, the canonical rep has none), as metrics
# credit her team (rules 2026.12.38; before, ``GET /v1/reps?team_id=`` left her out).
_PERSONS = """(m.rep_id = r.rep_id OR m.rep_id IN (SELECT a.rep_id FROM ref_reps a
                WHERE a.tenant_id = r.tenant_id AND a.alias_of = r.rep_id))"""

# A rep's teams today: none for a rep off every roster (deactivated or merged), as her teams'
# ``member_ids`` leave her out.
_REP_SELECT = f"""
    SELECT r.rep_id, r.name, r.active, r.manager_id, r.role, r.phones, r.phone_extensions,
           ARRAY(SELECT DISTINCT m.team_id FROM ref_team_memberships m
                 WHERE m.tenant_id = r.tenant_id AND {_PERSONS} AND {_CURRENT} AND {_ON_ROSTER}
                 ORDER BY m.team_id) AS team_ids
    FROM ref_reps r
    WHERE r.tenant_id = :t AND NOT r.deleted
"""

# A team's members are persons: a membership on an alias lists her rep's id, the one
# ``GET /v1/reps`` lists.
_TEAM_SELECT = f"""
    SELECT tm.team_id, tm.name, tm.parent_id,
           ARRAY(SELECT DISTINCT coalesce(x.alias_of, x.rep_id) FROM ref_team_memberships m
                 JOIN ref_reps x ON x.tenant_id = m.tenant_id AND x.rep_id = m.rep_id
                 WHERE m.tenant_id = tm.tenant_id AND m.team_id = tm.team_id AND {_CURRENT}
                   AND x.active AND NOT x.deleted AND x.merged_into IS NULL
                 ORDER BY 1) AS member_ids
    FROM ref_teams tm
    WHERE tm.tenant_id = :t AND NOT tm.deleted
"""


def _rep(row: Any) -> dict[str, Any]:
    return {
        "rep_id": row.rep_id,
        "name": row.name,
        "active": row.active,
        "manager_id": row.manager_id,
        "role": row.role,
        "team_ids": list(row.team_ids),
        "phones": list(row.phones),
        "phone_extensions": list(row.phone_extensions),
    }


def _team(row: Any) -> dict[str, Any]:
    return {
        "team_id": row.team_id,
        "name": row.name,
        "parent_id": row.parent_id,
        "member_ids": list(row.member_ids),
    }


async def list_reps(
    conn: AsyncConnection,
    tenant_id: str,
    *,
    today: date,
    team_id: str | None,
    after: str | None,
    limit: int,
    manager_id: str | None = None,
) -> list[dict[str, Any]]:
    """Up to ``limit`` reps ordered by id after ``after``, optionally only current members of
    ``team_id`` and only reps ``manager_id`` manages (directly or through other managers). One rep
    per person: an id that is another rep's alias (attribution's ``alias_of``: her HubSpot owner or
    Salesforce User beside her canonical rep) is not listed; ``get_rep`` still answers for it."""
    rows = await conn.execute(
        text(
            f"WITH RECURSIVE {hierarchy.REPORTS} "
            + _REP_SELECT
            + f"""
            AND (CAST(:team AS text) IS NULL OR EXISTS (
                SELECT 1 FROM ref_team_memberships m
                WHERE m.tenant_id = r.tenant_id AND {_PERSONS} AND m.team_id = :team AND {_CURRENT}
                  AND {_ON_ROSTER}))
            AND (CAST(:manager AS text) IS NULL OR r.rep_id IN (SELECT rep_id FROM reports))
            AND r.alias_of IS NULL
            AND (CAST(:after AS text) IS NULL OR r.rep_id > :after)
            ORDER BY r.rep_id LIMIT :limit
            """
        ),
        {
            "t": tenant_id,
            "today": today,
            "team": team_id,
            "manager": manager_id,
            "after": after,
            "limit": limit,
        },
    )
    return [_rep(row) for row in rows]


async def get_rep(
    conn: AsyncConnection, tenant_id: str, rep_id: str, *, today: date
) -> dict[str, Any] | None:
    row = (
        await conn.execute(
            text(_REP_SELECT + " AND r.rep_id = :id"), {"t": tenant_id, "id": rep_id, "today": today}
        )
    ).first()
    return None if row is None else _rep(row)


async def list_teams(
    conn: AsyncConnection, tenant_id: str, *, today: date, after: str | None, limit: int
) -> list[dict[str, Any]]:
    rows = await conn.execute(
        text(
            _TEAM_SELECT
            + " AND (CAST(:after AS text) IS NULL OR tm.team_id > :after) ORDER BY tm.team_id LIMIT :limit"
        ),
        {"t": tenant_id, "today": today, "after": after, "limit": limit},
    )
    return [_team(row) for row in rows]


async def get_team(
    conn: AsyncConnection, tenant_id: str, team_id: str, *, today: date
) -> dict[str, Any] | None:
    row = (
        await conn.execute(
            text(_TEAM_SELECT + " AND tm.team_id = :id"), {"t": tenant_id, "id": team_id, "today": today}
        )
    ).first()
    return None if row is None else _team(row)


async def rep_exists(conn: AsyncConnection, tenant_id: str, rep_id: str) -> bool:
    row = await conn.execute(
        text("SELECT 1 FROM ref_reps WHERE tenant_id = :t AND rep_id = :id AND NOT deleted"),
        {"t": tenant_id, "id": rep_id},
    )
    return row.first() is not None


async def team_exists(conn: AsyncConnection, tenant_id: str, team_id: str) -> bool:
    row = await conn.execute(
        text("SELECT 1 FROM ref_teams WHERE tenant_id = :t AND team_id = :id AND NOT deleted"),
        {"t": tenant_id, "id": team_id},
    )
    return row.first() is not None


async def account_exists(conn: AsyncConnection, tenant_id: str, account_id: str) -> bool:
    row = await conn.execute(
        text("SELECT 1 FROM ref_accounts WHERE tenant_id = :t AND account_id = :id AND NOT deleted"),
        {"t": tenant_id, "id": account_id},
    )
    return row.first() is not None


async def roles_held(conn: AsyncConnection, tenant_id: str) -> list[str]:
    """The roles the tenant's reps (not deleted) hold, sorted."""
    rows = await conn.execute(
        text(
            "SELECT DISTINCT role FROM ref_reps WHERE tenant_id = :t AND role IS NOT NULL AND NOT deleted "
            "ORDER BY role"
        ),
        {"t": tenant_id},
    )
    return [row.role for row in rows]
