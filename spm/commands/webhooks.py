"""``spm webhooks rotate|set|list``: a tenant's webhook secrets per source, rotated with a grace period."""

from __future__ import annotations

import sys
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated

import typer

from spm.commands import in_tenant, run_or_exit

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from libs.common.tenancy import WebhookSecretInfo

TenantOption = Annotated[str, typer.Option(help="tenant id")]
GraceOption = Annotated[float, typer.Option(min=0.0, help="hours the older secrets stay valid")]


async def rotate_webhook_secret(
    tenant: str, source: str, grace_hours: float, secret: str | None = None
) -> tuple[str, int]:
    """Add a secret (``secret`` as the vendor issued it, or a new random one) and expire the older
    ones after the grace period; returns (secret, expiring)."""
    from libs.common.audit import AuditAction, cli_actor, record_admin_action
    from libs.common.settings import RuntimeSettings
    from libs.common.tenancy import rotate_webhook_secret as rotate

    async def act(conn: AsyncConnection) -> tuple[str, int]:
        pepper = RuntimeSettings().secret_key.get_secret_value()
        given = secret is not None
        new_secret, expiring = await rotate(
            conn, tenant, source, pepper, timedelta(hours=grace_hours), secret
        )
        await record_admin_action(
            conn,
            tenant,
            cli_actor(),
            AuditAction.WEBHOOK_SECRET_SET if given else AuditAction.WEBHOOK_SECRET_ROTATED,
            f"webhook_secret:{source}",
            after={
                "source": source,
                "secret": new_secret,
                "older_expiring": expiring,
                "grace_hours": grace_hours,
            },
        )
        return new_secret, expiring

    return await in_tenant(tenant, act)


async def _list(tenant: str, source: str | None) -> list[WebhookSecretInfo]:
    from libs.common.settings import RuntimeSettings
    from libs.common.tenancy import list_webhook_secrets

    pepper = RuntimeSettings().secret_key.get_secret_value()
    return await in_tenant(tenant, lambda conn: list_webhook_secrets(conn, tenant, pepper, source))


def _check_source(source: str) -> None:
    from libs.common.tenancy import WEBHOOK_SOURCES

    if source not in WEBHOOK_SOURCES:
        raise typer.BadParameter(f"unknown source {source!r}; choose from {', '.join(WEBHOOK_SOURCES)}")


def _rotate_or_exit(tenant: str, source: str, grace_hours: float, secret: str | None) -> tuple[str, int]:
    return run_or_exit(rotate_webhook_secret(tenant, source, grace_hours, secret))


def register(app: typer.Typer) -> None:
    webhooks_app = typer.Typer(no_args_is_help=True, help="Vendor webhook secrets")
    app.add_typer(webhooks_app, name="webhooks")

    @webhooks_app.command("rotate")
    def rotate(
        tenant: TenantOption,
        source: Annotated[str, typer.Option(help="twilio, aircall, zoom, calendly, hubspot, ...")],
        grace_hours: GraceOption = 24.0,
    ) -> None:
        """Add a new random secret for SOURCE (printed once); older secrets expire after the grace period."""
        _check_source(source)
        secret, expiring = _rotate_or_exit(tenant, source, grace_hours, None)
        typer.echo(f"new {source} secret for {tenant} (shown once; set it at the vendor now):")
        typer.echo(secret)
        typer.echo(f"{expiring} older secret(s) stay valid for {grace_hours:g} h, then expire")

    @webhooks_app.command("set")
    def set_secret(
        tenant: TenantOption,
        source: Annotated[str, typer.Option(help="twilio, zoom, hubspot, aircall, ...")],
        secret_stdin: Annotated[
            bool, typer.Option("--secret-stdin", help="read the vendor-issued secret from standard input")
        ] = False,
        grace_hours: GraceOption = 24.0,
    ) -> None:
        """Register the signing secret a vendor issued (Twilio auth token, Zoom secret token, ...);
        older secrets of SOURCE stay valid for the grace period, then expire."""
        from libs.common.tenancy import check_webhook_secret, mask_secret

        _check_source(source)
        if not secret_stdin:
            raise typer.BadParameter(
                "pass the secret on standard input with --secret-stdin (never as an argument)"
            )
        secret = sys.stdin.readline().rstrip("\r\n")
        problem = check_webhook_secret(secret)
        if problem is not None:
            raise typer.BadParameter(f"the secret {problem}", param_hint="--secret-stdin")
        _, expiring = _rotate_or_exit(tenant, source, grace_hours, secret)
        typer.echo(
            f"{source} secret {mask_secret(secret)} registered for {tenant}; "
            f"{expiring} older secret(s) stay valid for {grace_hours:g} h, then expire"
        )

    @webhooks_app.command("list")
    def list_secrets(
        tenant: TenantOption,
        source: Annotated[str | None, typer.Option(help="only this source")] = None,
    ) -> None:
        """Every secret of the tenant, masked, with its validity window."""
        if source is not None:
            _check_source(source)
        secrets = run_or_exit(_list(tenant, source))
        typer.echo(f"{'source':<16} {'id':>6} {'secret':<8} {'created':<26} {'expires':<26} valid")
        for s in secrets:
            expires = s.expires_at.isoformat(timespec="seconds") if s.expires_at else "never"
            typer.echo(
                f"{s.source:<16} {s.secret_id:>6} {s.masked:<8} {s.created_at.isoformat(timespec='seconds'):<26} "
                f"{expires:<26} {'yes' if s.valid else 'no'}"
            )
