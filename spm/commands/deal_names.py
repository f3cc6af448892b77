"""``spm backfill-deal-names``: the names a tenant's deals were seen with before the upgrade, from
the CRM versions ``crm-entity-changed`` still holds (``services.attribution.deal_names_backfill``).
Run it once per tenant after migration ``0051_deal_names_seen``, then ``spm reattribute`` from the
day it prints."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from services.attribution.deal_names_backfill import DealNamesBackfill


def render_backfill(report: DealNamesBackfill) -> str:
    """Plain-text summary, with the ``spm reattribute`` to run next when a name was read."""
    lines = [
        f"tenant {report.tenant_id}: {report.records} records read, {report.versions} deal versions "
        f"of the tenant, names of {report.deals} deals recorded"
        + (f", {report.unreadable} unreadable records left out" if report.unreadable else "")
    ]
    if report.earliest is not None:
        lines.append(
            f"versions from {report.earliest.date().isoformat()}: re-decide the mail since with "
            f"spm reattribute --tenant {report.tenant_id} --since {report.earliest.date().isoformat()}"
        )
    return "\n".join(lines)


async def _run(tenant: str) -> DealNamesBackfill:
    from libs.common.audit import cli_actor
    from libs.common.db.engine import make_engine
    from libs.common.tenancy import tenant_exists
    from services.attribution.deal_names_backfill import backfill_deal_names
    from services.attribution.settings import AttributionSettings

    settings = AttributionSettings()
    engine = make_engine(settings.database, "backfill-deal-names")
    try:
        async with engine.connect() as conn:
            if not await tenant_exists(conn, tenant):
                raise LookupError(f"no tenant {tenant!r}")
        return await backfill_deal_names(engine, settings.kafka, tenant, cli_actor())
    finally:
        await engine.dispose()


def register(app: typer.Typer) -> None:
    @app.command("backfill-deal-names")
    def backfill_deal_names_command(tenant: Annotated[str, typer.Option(help="tenant id")]) -> None:
        """Record the names of the tenant's deal versions the CRM topic still holds (renames and
        merged deals before the upgrade); re-decides nothing."""
        try:
            report = asyncio.run(_run(tenant))
        except LookupError as exc:
            typer.echo(f"spm: {exc}", err=True)
            raise typer.Exit(1) from None
        typer.echo(render_backfill(report))
