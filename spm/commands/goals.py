"""``spm goals set|list|remove``: a tenant's activity goals, as the admin API sets them."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from spm.commands import in_tenant, run_or_exit

TenantOption = Annotated[str, typer.Option(help="tenant id")]


def _describe(goal: dict[str, Any]) -> str:
    """ "east-dials: dials 60 per week (team team-east)", "sdr-dials: dials 50 per week (role 'SDR')"."""
    subject = f" {goal['subject_id']}" if goal["subject_id"] else ""
    if goal["role"] is not None:
        subject = f" {goal['role']!r}"  # quoted: a role may hold spaces
    return f"{goal['goal_id']}: {goal['metric']} {goal['target']:g} per {goal['period']} ({goal['scope']}{subject})"


def register(app: typer.Typer) -> None:
    goals_app = typer.Typer(no_args_is_help=True, help="Activity goals (per rep, role, team or tenant)")
    app.add_typer(goals_app, name="goals")

    @goals_app.command("set")
    def set_goal(
        tenant: TenantOption,
        goal_id: Annotated[str, typer.Argument(help="the goal's name, e.g. weekly-dials")],
        scope: Annotated[str, typer.Option(help="rep, role, team or tenant")],
        period: Annotated[str, typer.Option(help="day, week, month or quarter")],
        metric: Annotated[str, typer.Option(help="score or a counter: dials, meetings_held, ...")],
        target: Annotated[float, typer.Option(help="the per-rep target per period")],
        subject: Annotated[str | None, typer.Option(help="the rep or team id (rep and team goals)")] = None,
        role: Annotated[
            str | None, typer.Option(help='the role, as the CRM names it (role goals): "SDR"')
        ] = None,
    ) -> None:
        """Create or replace GOAL_ID; the metrics service measures it from its next refresh."""
        from pydantic import ValidationError

        from libs.common.audit import cli_actor
        from libs.common.contracts.goals import ActivityGoal
        from services.gateway.adapters import goals

        try:
            goal = ActivityGoal.model_validate(
                {
                    "scope": scope,
                    "subject_id": subject,
                    "role": role,
                    "period": period,
                    "metric": metric,
                    "target": target,
                }
            )
        except ValidationError as exc:
            raise typer.BadParameter(
                "; ".join(f"{e['loc'][-1] if e['loc'] else 'goal'}: {e['msg']}" for e in exc.errors())
            ) from None

        async def work(conn: Any) -> dict[str, Any]:
            refused = await goals.missing_subject(conn, tenant, goal) or await goals.over_limit(
                conn, tenant, goal_id
            )
            if refused is not None:
                raise LookupError(f"{refused[0]}: {refused[1]}")
            return await goals.put_goal(conn, tenant, goal_id, goal, cli_actor())

        saved = run_or_exit(in_tenant(tenant, work))
        typer.echo(_describe(saved))

    @goals_app.command("list")
    def list_goals(tenant: TenantOption) -> None:
        """The tenant's goals, one a line."""
        from services.gateway.adapters import goals

        async def work(conn: Any) -> list[dict[str, Any]]:
            return await goals.list_goals(conn, tenant)

        rows = run_or_exit(in_tenant(tenant, work))
        for row in rows:
            typer.echo(_describe(row))

    @goals_app.command("remove")
    def remove_goal(
        tenant: TenantOption, goal_id: Annotated[str, typer.Argument(help="the goal's name")]
    ) -> None:
        """Remove GOAL_ID."""
        from libs.common.audit import cli_actor
        from services.gateway.adapters import goals

        async def work(conn: Any) -> bool:
            return await goals.delete_goal(conn, tenant, goal_id, cli_actor())

        removed = run_or_exit(in_tenant(tenant, work))
        if not removed:
            typer.echo(f"no goal {goal_id!r}", err=True)
            raise typer.Exit(1)
        typer.echo(f"removed {goal_id}")
