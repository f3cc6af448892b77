"""``spm purge``: remove what is past each tenant's retention now (the metrics service also runs it hourly)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated

import typer

from spm.commands import run_or_exit

if TYPE_CHECKING:
    from services.metrics.retention import PurgeReport


async def purge_now(tenant: str | None, batch_size: int) -> PurgeReport:
    from libs.common.audit import cli_actor
    from libs.common.db.engine import make_engine
    from libs.common.tenancy import tenant_exists
    from services.metrics.retention import purge
    from services.metrics.settings import MetricsServiceSettings

    settings = MetricsServiceSettings()
    engine = make_engine(settings.database, "spm-cli")
    try:
        if tenant is not None:
            # A mistyped tenant purges nothing (not even the ledgers) and says so.
            async with engine.connect() as conn:
                if not await tenant_exists(conn, tenant):
                    raise LookupError(f"no tenant {tenant!r}")
        return await purge(
            engine,
            datetime.now(UTC),
            timedelta(days=settings.metrics.ledger_retention_days),
            tenant_id=tenant,
            batch_size=batch_size,
            actor=cli_actor(),
        )
    finally:
        await engine.dispose()


def register(app: typer.Typer) -> None:
    @app.command("purge")
    def purge_command(
        tenant: Annotated[
            str | None, typer.Option(help="only this tenant (the ledgers are pruned for all)")
        ] = None,
        batch_size: Annotated[int, typer.Option(min=1, help="rows deleted per transaction")] = 5_000,
    ) -> None:
        """Delete activities and raw captures past each tenant's retention; prune ingest's ledgers."""
        report = run_or_exit(purge_now(tenant, batch_size))
        for tenant_id, counts in report.tenants.items():
            typer.echo(f"{tenant_id}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
        typer.echo("ledgers: " + ", ".join(f"{k} {v}" for k, v in report.ledgers.items()))
        for tenant_id, problem in report.invalid.items():
            typer.echo(f"{tenant_id}: not purged, invalid retention setting: {problem}", err=True)
        if report.invalid:
            raise typer.Exit(1)
