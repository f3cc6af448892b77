"""``spm webhooks rotate``: a new webhook secret for one tenant and source, the old ones expiring later."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Annotated

import typer


async def rotate_webhook_secret(tenant: str, source: str, grace_hours: float) -> tuple[str, int]:
    """Add a secret and expire the older ones after the grace period; returns (secret, expiring)."""
    from libs.common.audit import AuditAction, cli_actor, record_admin_action
    from libs.common.db.engine import make_engine
    from libs.common.settings import DatabaseSettings, RuntimeSettings
    from libs.common.tenancy import add_webhook_secret, expire_old_webhook_secrets, tenant_exists

    engine = make_engine(DatabaseSettings(), "spm-cli")
    try:
        async with engine.begin() as conn:
            if not await tenant_exists(conn, tenant):
                raise LookupError(f"no tenant {tenant!r}")
            pepper = RuntimeSettings().secret_key.get_secret_value()
            secret = await add_webhook_secret(conn, tenant, source, pepper)
            # Both stay valid during the grace period: the vendor is reconfigured without a gap.
            expiring = await expire_old_webhook_secrets(conn, tenant, source, timedelta(hours=grace_hours))
            await record_admin_action(
                conn,
                tenant,
                cli_actor(),
                AuditAction.WEBHOOK_SECRET_ROTATED,
                f"webhook_secret:{source}",
                after={
                    "source": source,
                    "secret": secret,
                    "older_expiring": expiring,
                    "grace_hours": grace_hours,
                },
            )
            return secret, expiring
    finally:
        await engine.dispose()


def register(app: typer.Typer) -> None:
    webhooks_app = typer.Typer(no_args_is_help=True, help="Vendor webhook secrets")
    app.add_typer(webhooks_app, name="webhooks")

    @webhooks_app.command("rotate")
    def rotate(
        tenant: Annotated[str, typer.Option(help="tenant id")],
        source: Annotated[str, typer.Option(help="twilio, aircall, zoom, calendly, hubspot, ...")],
        grace_hours: Annotated[
            float, typer.Option(min=0.0, help="hours the older secrets stay valid")
        ] = 24.0,
    ) -> None:
        """Add a new secret for SOURCE (printed once); older secrets expire after the grace period."""
        from libs.common.tenancy import WEBHOOK_SOURCES

        if source not in WEBHOOK_SOURCES:
            raise typer.BadParameter(f"unknown source {source!r}; choose from {', '.join(WEBHOOK_SOURCES)}")
        try:
            secret, expiring = asyncio.run(rotate_webhook_secret(tenant, source, grace_hours))
        except LookupError as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(1) from None
        typer.echo(f"new {source} secret for {tenant} (shown once; set it at the vendor now):")
        typer.echo(secret)
        typer.echo(f"{expiring} older secret(s) stay valid for {grace_hours:g} h, then expire")
