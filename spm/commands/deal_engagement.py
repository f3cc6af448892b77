"""``spm rebuild-deal-engagement``: recompute the kept deal engagement from the whole history."""

from __future__ import annotations

from typing import Annotated

import typer

from spm.commands import run_or_exit


async def rebuild(tenant: str | None) -> dict[str, int]:
    """tenant -> deals written; every tenant when ``tenant`` is None, each in its own transaction."""
    from libs.common.db.engine import make_engine
    from libs.common.settings import DatabaseSettings
    from libs.common.tenancy import list_tenants, tenant_exists
    from services.metrics.adapters.read_models import rebuild_engagement

    engine = make_engine(DatabaseSettings(), "spm-cli")
    try:
        async with engine.connect() as conn:
            if tenant is not None and not await tenant_exists(conn, tenant):
                raise LookupError(f"no tenant {tenant!r}")
            tenants = (
                [tenant] if tenant is not None else [str(t["tenant_id"]) for t in await list_tenants(conn)]
            )
        written = {}
        for tenant_id in tenants:
            async with engine.begin() as conn:
                written[tenant_id] = await rebuild_engagement(conn, tenant_id)
        return written
    finally:
        await engine.dispose()


def register(app: typer.Typer) -> None:
    @app.command("rebuild-deal-engagement")
    def rebuild_deal_engagement(
        tenant: Annotated[str | None, typer.Option(help="only this tenant (default: every tenant)")] = None,
    ) -> None:
        """Recompute each deal's last activity, last buyer reply and engaged contacts from the
        contributions (the metrics refresher keeps them up to date; run it once after the release
        that brings migration 0017, and as a repair). Waits for a refresh of the tenant in progress."""
        for tenant_id, deals in run_or_exit(rebuild(tenant)).items():
            typer.echo(f"{tenant_id}: {deals} deals' engagement rebuilt")
