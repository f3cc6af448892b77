"""``spm jwt revoke|restore|list``: sign a JWT subject out of a tenant, or let it back in."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from spm.commands import in_tenant, run_or_exit

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from libs.common.jwt_revocations import JwtRevocation

TenantOption = Annotated[str, typer.Option(help="tenant id")]
SubjectArgument = Annotated[str, typer.Argument(help="the JWT's `sub` claim")]


async def revoke_subject(tenant: str, subject: str, reason: str) -> JwtRevocation:
    from libs.common.audit import AuditAction, cli_actor, record_admin_action
    from libs.common.jwt_revocations import revoke_jwt_subject

    async def act(conn: AsyncConnection) -> JwtRevocation:
        actor = cli_actor()
        revoked = await revoke_jwt_subject(conn, tenant, subject, actor.name, reason)
        await record_admin_action(
            conn,
            tenant,
            actor,
            AuditAction.JWT_SUBJECT_REVOKED,
            f"jwt_subject:{subject}",
            after={"subject": subject, "reason": reason, "sessions_revoked": revoked.sessions_revoked},
        )
        return revoked

    return await in_tenant(tenant, act)


async def restore_subject(tenant: str, subject: str) -> JwtRevocation | None:
    from libs.common.audit import AuditAction, cli_actor, record_admin_action
    from libs.common.jwt_revocations import restore_jwt_subject

    async def act(conn: AsyncConnection) -> JwtRevocation | None:
        restored = await restore_jwt_subject(conn, tenant, subject)
        if restored is not None:
            await record_admin_action(
                conn,
                tenant,
                cli_actor(),
                AuditAction.JWT_SUBJECT_RESTORED,
                f"jwt_subject:{subject}",
                before={
                    "subject": subject,
                    "not_before": restored.not_before.isoformat(),
                    "reason": restored.reason,
                },
            )
        return restored

    return await in_tenant(tenant, act)


async def list_subjects(tenant: str) -> list[JwtRevocation]:
    from libs.common.jwt_revocations import list_jwt_revocations

    return await in_tenant(tenant, lambda conn: list_jwt_revocations(conn, tenant))


def register(app: typer.Typer) -> None:
    jwt_app = typer.Typer(no_args_is_help=True, help="JWT subjects signed out of a tenant")
    app.add_typer(jwt_app, name="jwt")

    @jwt_app.command("revoke")
    def revoke(
        subject: SubjectArgument,
        tenant: TenantOption,
        reason: Annotated[str, typer.Option(help="why (kept with it and in the audit log)")] = "",
    ) -> None:
        """Refuse SUBJECT's tokens issued until now (within 30 s on every gateway) and end its sessions."""
        revoked = run_or_exit(revoke_subject(tenant, subject, reason))
        typer.echo(
            f"revoked {subject} in {tenant}: tokens issued before "
            f"{revoked.not_before.isoformat(timespec='seconds')} are refused; "
            f"{revoked.sessions_revoked} dashboard session(s) ended"
        )

    @jwt_app.command("restore")
    def restore(subject: SubjectArgument, tenant: TenantOption) -> None:
        """Accept SUBJECT's earlier tokens again (a revocation made by mistake)."""
        if run_or_exit(restore_subject(tenant, subject)) is None:
            typer.echo(f"{subject} is not revoked in {tenant}", err=True)
            raise typer.Exit(1)
        typer.echo(f"restored {subject} in {tenant}")

    @jwt_app.command("list")
    def list_revoked(tenant: TenantOption) -> None:
        """Every signed-out subject of the tenant, most recent first."""
        revoked = run_or_exit(list_subjects(tenant))
        typer.echo(f"{'subject':<40} {'not before':<26} {'by':<24} reason")
        for r in revoked:
            typer.echo(
                f"{r.subject:<40} {r.not_before.isoformat(timespec='seconds'):<26} {r.revoked_by:<24} {r.reason}"
            )
