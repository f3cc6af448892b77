"""Activity goals the tenant sets, and the attainment the metrics service measured against them."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from libs.common.audit import Actor, AuditAction, record_admin_action
from libs.common.contracts.goals import ActivityGoal, GoalScope
from libs.common.db.refresh_state import mark_dirty
from services.gateway.adapters import directory
from services.gateway.adapters.rows import keyed_row

_GOAL_COLUMNS = "goal_id, scope, subject_id, role, period, metric, target, updated_at, updated_by"
#: What a goal is, as the audit log records it before and after a change.
_GOAL_FIELDS = ("scope", "subject_id", "role", "period", "metric", "target")
_LOCK_GOAL = f"SELECT {_GOAL_COLUMNS} FROM activity_goals WHERE tenant_id = :t AND goal_id = :id FOR UPDATE"
_DELETE_GOAL = f"DELETE FROM activity_goals WHERE tenant_id = :t AND goal_id = :id RETURNING {_GOAL_COLUMNS}"


def _audited(row: Any) -> dict[str, Any] | None:
    return None if row is None else {field: row._mapping[field] for field in _GOAL_FIELDS}


async def list_goals(conn: AsyncConnection, tenant_id: str) -> list[dict[str, Any]]:
    rows = await conn.execute(
        text(f"SELECT {_GOAL_COLUMNS} FROM activity_goals WHERE tenant_id = :t ORDER BY goal_id"),
        {"t": tenant_id},
    )
    return [dict(row._mapping) for row in rows]


async def missing_subject(
    conn: AsyncConnection, tenant_id: str, goal: ActivityGoal
) -> tuple[str, str] | None:
    """(field, reason) when the goal names a rep or team the tenant does not have, or a role none
    of its reps holds (a typo would otherwise measure nobody); None when the goal can apply."""
    subject = goal.subject_id or ""
    if goal.scope is GoalScope.REP and not await directory.rep_exists(conn, tenant_id, subject):
        return "subject_id", f"no rep {subject!r}"
    if goal.scope is GoalScope.TEAM and not await directory.team_exists(conn, tenant_id, subject):
        return "subject_id", f"no team {subject!r}"
    if goal.scope is GoalScope.ROLE:
        held = await directory.roles_held(conn, tenant_id)
        if goal.role not in held:
            known = ", ".join(repr(role) for role in held) or "none"
            return "role", f"no rep holds the role {goal.role!r} (roles held: {known})"
    return None


#: The most goals a tenant holds: the metrics refresher reads them all at each refresh and
#: ``GET /v1/goals`` lists them whole (a goal per rep, metric and period for 200 reps is 8,800).
MAX_GOALS = 10_000


async def lock_goals(conn: AsyncConnection, tenant_id: str) -> None:
    """Hold the tenant's goals lock until the caller's transaction ends: one count-then-write at a time."""
    await conn.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended('goals:' || :t, 0))"), {"t": tenant_id}
    )


async def over_limit(conn: AsyncConnection, tenant_id: str, goal_id: str) -> tuple[str, str] | None:
    """(field, reason) when ``goal_id`` would be a new goal past ``MAX_GOALS``; replacing one is not.
    Takes the tenant's goals lock (``lock_goals``), held until the caller commits the goal it writes:
    two PUTs at once never both pass the count."""
    await lock_goals(conn, tenant_id)
    held = await conn.scalar(
        text("SELECT count(*) FROM activity_goals WHERE tenant_id = :t AND goal_id <> :id"),
        {"t": tenant_id, "id": goal_id},
    )
    if held is None or held < MAX_GOALS:
        return None
    return (
        "goal_id",
        f"the tenant holds {held} goals, the most it may: remove one or replace one (the same goal_id)",
    )


async def put_goal(
    conn: AsyncConnection, tenant_id: str, goal_id: str, goal: ActivityGoal, actor: Actor
) -> dict[str, Any]:
    """Create or replace the goal ``goal_id``, in the audit log when it changed; the caller commits."""
    before = await keyed_row(conn, _LOCK_GOAL, tenant_id, goal_id)
    row = (
        await conn.execute(
            text(
                "INSERT INTO activity_goals (tenant_id, goal_id, scope, subject_id, role, period, metric, "
                "target, updated_by) VALUES (:t, :id, :scope, :subject, :role, :period, :metric, :target, :by) "
                "ON CONFLICT (tenant_id, goal_id) DO UPDATE SET scope = EXCLUDED.scope, "
                "subject_id = EXCLUDED.subject_id, role = EXCLUDED.role, period = EXCLUDED.period, "
                "metric = EXCLUDED.metric, "
                "target = EXCLUDED.target, updated_by = EXCLUDED.updated_by, updated_at = now() "
                f"RETURNING {_GOAL_COLUMNS}"
            ),
            {
                "t": tenant_id,
                "id": goal_id,
                "scope": goal.scope.value,
                "subject": goal.subject_id,
                "role": goal.role,
                "period": goal.period.value,
                "metric": goal.metric,
                "target": goal.target,
                "by": actor.name,
            },
        )
    ).one()
    if _audited(before) != _audited(row):
        await record_admin_action(
            conn,
            tenant_id,
            actor,
            AuditAction.GOAL_SET,
            f"goal:{goal_id}",
            before=_audited(before),
            after=_audited(row),
        )
    # A goal is an input of the read models: the refresher's next tick measures it (seconds),
    # not the next full refresh (``METRICS_FULL_REFRESH_SECONDS``, 15 minutes).
    await mark_dirty(conn, [tenant_id])
    return dict(row._mapping)


async def delete_goal(conn: AsyncConnection, tenant_id: str, goal_id: str, actor: Actor) -> bool:
    """Remove the goal ``goal_id``, in the audit log; False when there is none. The caller commits."""
    removed = await keyed_row(conn, _DELETE_GOAL, tenant_id, goal_id)
    if removed is None:
        return False
    await record_admin_action(
        conn, tenant_id, actor, AuditAction.GOAL_REMOVED, f"goal:{goal_id}", before=_audited(removed)
    )
    await mark_dirty(conn, [tenant_id])
    return True


#: The columns of one attainment (the fields of ``GoalAttainmentRead``), in the order they are selected.
ATTAINMENT_COLUMNS = (
    "metric",
    "goal_id",
    "target",
    "actual",
    "attainment",
    "expected_by_now",
    "pace",
    "days_left",
    "complete",
)


def attainment_of(values: Any) -> dict[str, Any]:
    """A ``GoalAttainmentRead`` from the columns above (a mapping or a sequence in that order)."""
    if not isinstance(values, dict):
        values = dict(zip(ATTAINMENT_COLUMNS, values, strict=True))
    # In the model's field order (the encoder writes the dict as it is): the measure, then what it measures.
    return {
        "target": float(values["target"]),
        "actual": float(values["actual"]),
        "attainment": float(values["attainment"]),
        "expected_by_now": float(values["expected_by_now"]),
        "pace": None if values["pace"] is None else float(values["pace"]),
        "days_left": int(values["days_left"]),
        "complete": bool(values["complete"]),
        "metric": values["metric"],
        "goal_id": values["goal_id"],
    }


async def rep_attainment(
    conn: AsyncConnection, tenant_id: str, rep_id: str, granularity: str, first: date, last: date
) -> dict[date, list[dict[str, Any]]]:
    """period start -> the rep's goals measured in that period (the current and last complete ones)."""
    rows = await conn.execute(
        text(
            f"SELECT period_start, {', '.join(ATTAINMENT_COLUMNS)} FROM goal_attainment "
            "WHERE tenant_id = :t AND rep_id = :r AND granularity = :g "
            "AND period_start BETWEEN :first AND :last ORDER BY period_start, metric"
        ),
        {"t": tenant_id, "r": rep_id, "g": granularity, "first": first, "last": last},
    )
    out: dict[date, list[dict[str, Any]]] = {}
    for period_start, *values in rows:
        out.setdefault(period_start, []).append(attainment_of(values))
    return out
