"""``spm reattribute``: re-run attribution over a bounded slice of one tenant's history."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, time
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from services.attribution.reattribution import ReattributionReport


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def render_report(report: ReattributionReport) -> str:
    """Plain-text summary: counts, then old status -> new status, then deal moves."""
    verb = "would change" if report.dry_run else "changed"
    lines = [
        f"tenant {report.tenant_id}: {report.examined} activities examined, {report.changed} attributions "
        f"{verb}, {report.deal_changed} of them in their deal"
        + ("" if report.dry_run else f"; {report.published} versions published"),
    ]
    if report.transitions:
        lines.append(f"{'old status':<14} {'new status':<14} {'count':>7}")
        for (old, new), count in sorted(
            report.transitions.items(), key=lambda i: (-i[1], str(i[0]), i[0][1])
        ):
            lines.append(f"{old or '(none)':<14} {new:<14} {count:>7}")
    if report.deal_moves:
        lines.append(f"{'old deal':<24} {'new deal':<24} {'count':>7}")
        for (old_deal, new_deal), count in sorted(
            report.deal_moves.items(), key=lambda i: (-i[1], str(i[0]))
        ):
            lines.append(f"{old_deal or '(none)':<24} {new_deal or '(none)':<24} {count:>7}")
    return "\n".join(lines)


async def _run(
    tenant: str, since: datetime, until: datetime | None, dry_run: bool, limit: int | None, batch_size: int
) -> ReattributionReport:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from libs.common.db.engine import make_engine
    from libs.common.kafka.clients import make_producer
    from libs.common.tenancy import tenant_exists
    from services.attribution.reattribution import reattribute
    from services.attribution.settings import AttributionSettings

    settings = AttributionSettings()
    engine = make_engine(settings.database, "reattribute")
    producer = None if dry_run else make_producer(settings.kafka, "reattribute")
    progress = Progress(
        TextColumn("re-attributing" if not dry_run else "dry run"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        transient=True,
    )
    task = progress.add_task("reattribute", total=None)

    def on_progress(done: int, total: int) -> None:
        progress.update(task, completed=done, total=total)

    try:
        async with engine.connect() as conn:
            if not await tenant_exists(conn, tenant):
                raise LookupError(f"no tenant {tenant!r}")
        if producer is not None:
            await producer.start()
        with progress:
            report = await reattribute(
                engine,
                producer,
                settings.kafka.topic_prefix,
                tenant,
                since,
                until,
                dry_run=dry_run,
                limit=limit,
                batch_size=batch_size,
                on_progress=on_progress,
            )
        if not dry_run:
            await _audit(engine, report, since, until)
        return report
    finally:
        if producer is not None:
            await producer.stop()
        await engine.dispose()


async def _audit(
    engine: AsyncEngine, report: ReattributionReport, since: datetime, until: datetime | None
) -> None:
    from libs.common.audit import AuditAction, cli_actor, record_admin_action

    async with engine.begin() as conn:
        await record_admin_action(
            conn,
            report.tenant_id,
            cli_actor(),
            AuditAction.ATTRIBUTION_REATTRIBUTED,
            f"tenant:{report.tenant_id}",
            after={
                "since": since.isoformat(),
                "until": None if until is None else until.isoformat(),
                "examined": report.examined,
                "changed": report.changed,
                "published": report.published,
            },
        )


def register(app: typer.Typer) -> None:
    @app.command("reattribute")
    def reattribute_command(
        tenant: Annotated[str, typer.Option(help="tenant id")],
        since: Annotated[datetime, typer.Option(formats=["%Y-%m-%d"], help="first day (UTC, inclusive)")],
        until: Annotated[
            datetime | None, typer.Option(formats=["%Y-%m-%d"], help="last day (UTC, exclusive)")
        ] = None,
        dry_run: Annotated[
            bool, typer.Option("--dry-run", help="report what would change; write nothing")
        ] = False,
        limit: Annotated[
            int | None, typer.Option(min=1, help="at most this many activities, oldest first")
        ] = None,
        batch_size: Annotated[int, typer.Option(min=1, help="activities per transaction")] = 500,
    ) -> None:
        """Re-run attribution over [since, until) with the current rules and CRM data; new versions only."""
        start = _start_of(since.date())
        end = _start_of(until.date()) if until is not None else None
        if end is not None and end <= start:
            raise typer.BadParameter("--until must be after --since", param_hint="--until")
        try:
            report = asyncio.run(_run(tenant, start, end, dry_run, limit, batch_size))
        except LookupError as exc:
            typer.echo(f"spm: {exc}", err=True)
            raise typer.Exit(1) from None
        typer.echo(render_report(report))
