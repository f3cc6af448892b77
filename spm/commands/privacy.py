"""``spm privacy erase``: forget a person in one tenant, now, with progress and counts;
``spm privacy export``: what the tenant holds naming a person (GDPR Art. 15), as the API answers it."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer


async def erase_person(
    tenant: str, kind: str, value: str, *, progress: bool = False
) -> tuple[str, dict[str, int]]:
    """Record the erasure (audited) and run its job here; returns (erasure id, counts)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from libs.common.audit import AuditAction, cli_actor, record_admin_action
    from libs.common.db.engine import make_engine
    from libs.common.erasures import (
        IdentityKind,
        erasure_key,
        identity_hash,
        identity_hashes,
        normalise_identity,
        request_erasure,
    )
    from libs.common.kafka.clients import make_producer
    from libs.common.tenancy import tenant_exists
    from services.attribution.erasure import run_erasure
    from services.attribution.settings import AttributionSettings

    identity_kind = IdentityKind(kind)
    normalised = normalise_identity(identity_kind, value)
    settings = AttributionSettings()
    key = erasure_key(settings.runtime.secret_key.get_secret_value())
    hashed = identity_hash(key, identity_kind, normalised)
    actor = cli_actor()
    engine = make_engine(settings.database, "spm-cli")
    producer = make_producer(settings.kafka, "spm-privacy")
    try:
        await producer.start()
        async with engine.begin() as conn:
            if not await tenant_exists(conn, tenant):
                raise LookupError(f"no tenant {tenant!r}")
            also = identity_hashes(key, [normalised]) if identity_kind is IdentityKind.EMAIL else ()
            row, created = await request_erasure(conn, tenant, identity_kind, hashed, actor.name, also)
            await record_admin_action(
                conn,
                tenant,
                actor,
                AuditAction.ERASURE_REQUESTED,
                f"erasure:{row['erasure_id']}",
                after={
                    "identity_kind": kind,
                    "identity_hash": hashed,
                    "state": row["state"],
                    "created": created,
                },
            )
        bar = Progress(
            TextColumn("erasing"), BarColumn(), MofNCompleteColumn(), transient=True, disable=not progress
        )
        task = bar.add_task("erase", total=None)
        with bar:
            counts = await run_erasure(
                engine,
                producer,
                settings.kafka.topic_prefix,
                key,
                tenant,
                row["erasure_id"],  # type: ignore[arg-type]
                on_progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
        return str(row["erasure_id"]), counts
    finally:
        await producer.stop()
        await engine.dispose()


async def export_person(tenant: str, identity: str, limit: int, cursor: str | None) -> str:
    """The export's JSON, through the gateway's handler, audited as ``cli:<user>`` in the read's
    transaction. ValueError: not an identity (or a cursor); LookupError: no such tenant."""
    from libs.common.audit import cli_actor
    from libs.common.db.engine import make_engine
    from libs.common.web import Problem
    from services.gateway.routers._pages import activity_after
    from services.gateway.settings import GatewaySettings
    from services.gateway.subject_access import export_subject

    try:
        after = activity_after(cursor)
    except Problem as exc:
        raise ValueError(f"--cursor: {exc.detail}") from None
    settings = GatewaySettings()
    engine = make_engine(settings.database, "spm-cli")
    try:
        # One snapshot for every read and the audit row, as the API's route runs it.
        async with engine.execution_options(isolation_level="REPEATABLE READ").begin() as conn:
            found = await export_subject(
                conn,
                tenant,
                identity,
                secret_key=settings.runtime.secret_key.get_secret_value(),
                actor=cli_actor(),
                limit=limit,
                after=after,
            )
        return found.model_dump_json(indent=2)
    finally:
        await engine.dispose()


def register(app: typer.Typer) -> None:
    privacy_app = typer.Typer(no_args_is_help=True, help="Data protection: erasure and export of a person")
    app.add_typer(privacy_app, name="privacy")

    @privacy_app.command("erase")
    def erase(
        tenant: Annotated[str, typer.Option(help="tenant id")],
        email: Annotated[str | None, typer.Option(help="the person's email address")] = None,
        phone: Annotated[str | None, typer.Option(help="the person's phone, E.164 (+14155550100)")] = None,
    ) -> None:
        """Erase one person (by email or phone) from TENANT: activities, CRM contacts, metrics; idempotent."""
        if (email is None) == (phone is None):
            raise typer.BadParameter("give exactly one of --email and --phone")
        kind, value = ("email", email) if email is not None else ("phone", phone)
        try:
            erasure_id, counts = asyncio.run(erase_person(tenant, kind, value or "", progress=True))
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint=f"--{kind}") from None
        except LookupError as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(1) from None
        typer.echo(f"erasure {erasure_id} done: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))

    @privacy_app.command("export")
    def export(
        tenant: Annotated[str, typer.Option(help="tenant id")],
        identity: Annotated[str, typer.Option(help="the person's email address or phone number")],
        out: Annotated[Path | None, typer.Option(help="write the JSON here (default: stdout)")] = None,
        limit: Annotated[int, typer.Option(min=1, max=5_000, help="activities per page")] = 500,
        cursor: Annotated[str | None, typer.Option(help="the next_cursor of the previous page")] = None,
    ) -> None:
        """Export what TENANT holds naming one person (GDPR Art. 15) as JSON; audited privacy.exported."""
        try:
            document = asyncio.run(export_person(tenant, identity, limit, cursor))
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--identity") from None
        except LookupError as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(1) from None
        if out is None:
            typer.echo(document)
        else:
            out.write_text(document + "\n", encoding="utf-8")
            typer.echo(f"wrote {out}", err=True)
