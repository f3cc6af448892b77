"""``spm tenants settings get|set``: read and change a tenant's settings, validated and versioned."""

from __future__ import annotations

import asyncio
import getpass
import re
import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer

if TYPE_CHECKING:
    from libs.common.jobs import Job


def _value(text: str) -> Any:
    """JSON when it parses (``true``, ``14``, ``["a.example"]``, ``null``), a string otherwise."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text


#: A dotted key's parts: a double-quoted part may hold dots (``rep_aliases."ana@seller.example"``).
_KEY_PART = re.compile(r'"([^"]+)"|([^."]+)')


def _key_parts(path: str) -> list[str] | None:
    """The parts of a dotted key, or None when it is not one."""
    parts: list[str] = []
    position = 0
    for match in _KEY_PART.finditer(path):
        if match.start() != position:
            return None
        parts.append(match.group(1) or match.group(2))
        position = match.end() + 1
        if match.end() < len(path) and path[match.end()] != ".":
            return None
    return parts if parts and position == len(path) + 1 else None


def assignments_to_patch(assignments: list[str]) -> dict[str, Any]:
    """``privacy.keep_subjects=true`` ... as one merge patch; a part of the key in double quotes
    may hold dots and ``=``-free text of any kind (``rep_aliases."ana-emea@seller.example"=rep-a``)."""
    patch: dict[str, Any] = {}
    for assignment in assignments:
        path, sep, raw = _split_assignment(assignment)
        parts = _key_parts(path.strip()) if sep else None
        if not parts:
            raise typer.BadParameter(f"{assignment!r} is not KEY=VALUE", param_hint="ASSIGNMENTS")
        *parents, leaf = parts
        node = patch
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise typer.BadParameter(f"{path!r} sets a value inside a value", param_hint="ASSIGNMENTS")
        node[leaf] = _value(raw)
    return patch


def _split_assignment(assignment: str) -> tuple[str, str, str]:
    """KEY, ``=``, VALUE: the first ``=`` outside a double-quoted part of the key."""
    quoted = False
    for position, char in enumerate(assignment):
        if char == '"':
            quoted = not quoted
        elif char == "=" and not quoted:
            return assignment[:position], "=", assignment[position + 1 :]
    return assignment, "", ""


async def _get(tenant: str) -> dict[str, Any] | None:
    from libs.common.db.engine import make_engine
    from libs.common.settings import DatabaseSettings
    from libs.common.tenant_settings_store import load_raw_tenant_settings

    engine = make_engine(DatabaseSettings(), "spm-cli")
    try:
        async with engine.connect() as conn:
            return await load_raw_tenant_settings(conn, tenant)
    finally:
        await engine.dispose()


def register(app: typer.Typer) -> None:
    tenants_app = next(g.typer_instance for g in app.registered_groups if g.name == "tenants")
    assert tenants_app is not None
    settings_app = typer.Typer(no_args_is_help=True, help="A tenant's settings")
    tenants_app.add_typer(settings_app, name="settings")

    @settings_app.command("get")
    def get(tenant: Annotated[str, typer.Argument(help="tenant id")]) -> None:
        """Print the tenant's settings (JSON); a stored document that does not validate is named on stderr."""
        from libs.common.contracts.tenant_settings import InvalidTenantSettings, read_tenant_settings

        document = asyncio.run(_get(tenant))
        if document is None:
            typer.echo(f"spm: no tenant {tenant!r}", err=True)
            raise typer.Exit(1)
        try:
            document = read_tenant_settings(tenant, document).model_dump(mode="json")
        except InvalidTenantSettings as exc:
            sys.stdout.write(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode() + "\n")
            typer.echo(f"spm: {exc}", err=True)
            raise typer.Exit(1) from None
        sys.stdout.write(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode() + "\n")

    @settings_app.command("set")
    def set_(
        tenant: Annotated[str, typer.Argument(help="tenant id")],
        assignments: Annotated[
            list[str] | None,
            typer.Argument(help="KEY=VALUE with dotted keys, e.g. privacy.keep_subjects=true; null resets"),
        ] = None,
        from_file: Annotated[
            Path | None, typer.Option("--from-file", help="a whole settings document (JSON; - for stdin)")
        ] = None,
    ) -> None:
        """Change settings (validated; a new version with who and when); services apply it within seconds."""
        _save(tenant, assignments or [], from_file)

    @settings_app.command("job")
    def job(
        tenant: Annotated[str, typer.Argument(help="tenant id")],
        job_id: Annotated[uuid.UUID, typer.Argument(help="the job id a settings change printed")],
        follow: Annotated[bool, typer.Option("--follow", help="show progress until it ends")] = False,
    ) -> None:
        """Show a settings job (a rollup rebuild, a re-attribution, a re-credit, phones read again) and its progress."""
        found = asyncio.run(_follow(tenant, job_id, follow))
        if found is None:
            typer.echo(f"spm: no job {job_id} for tenant {tenant!r}", err=True)
            raise typer.Exit(1)
        typer.echo(
            f"{found.kind} {found.state}: {found.done}/{found.total if found.total is not None else '?'}"
        )
        if found.result is not None:
            sys.stdout.write(orjson.dumps(found.result, option=orjson.OPT_INDENT_2).decode() + "\n")
        if found.error is not None:
            typer.echo(f"spm: {found.error}", err=True)
            raise typer.Exit(1)


def _save(tenant: str, assignments: list[str], from_file: Path | None) -> None:
    from spm.admin import change_tenant_settings_now

    if (from_file is None) == (not assignments):
        raise typer.BadParameter("give KEY=VALUE assignments or --from-file, not both")
    if from_file is not None:
        try:
            raw = sys.stdin.buffer.read() if str(from_file) == "-" else from_file.read_bytes()
        except OSError as exc:
            raise typer.BadParameter(
                f"cannot read {str(from_file)!r}: {exc.strerror}", param_hint="--from-file"
            ) from None
        try:
            document = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise typer.BadParameter(f"not JSON: {exc}", param_hint="--from-file") from None
        if not isinstance(document, dict):
            raise typer.BadParameter("the settings document must be a JSON object", param_hint="--from-file")
        outcome = asyncio.run(
            change_tenant_settings_now(tenant, f"cli:{getpass.getuser()}", document=document)
        )
    else:
        patch = assignments_to_patch(assignments)
        outcome = asyncio.run(change_tenant_settings_now(tenant, f"cli:{getpass.getuser()}", patch=patch))
    if isinstance(outcome, list):
        for error in outcome:
            typer.echo(f"spm: {error['field']}: {error['reason']}", err=True)
        raise typer.Exit(2)
    if outcome is None:
        typer.echo(f"spm: no tenant {tenant!r}", err=True)
        raise typer.Exit(1)
    changed = ", ".join(outcome.changed) or "nothing"
    saved = "saved" if outcome.saved else "kept"
    typer.echo(f"tenant {tenant}: settings version {outcome.version} {saved}; changed: {changed}")
    for warning in outcome.warnings:
        typer.echo(f"spm: warning: {warning['field']}: {warning['reason']}", err=True)
    what = {
        "rebuild_rollups": "rebuilding period rollups in the background",
        "reattribute": "counting what a re-attribution of the last 90 days would move (dry run)",
        "recredit_reps": "re-crediting the history of the reps and addresses the rep mapping changed",
        "reread_phones": "reading the contacts' unread phones again in the new phone region",
    }
    for job in outcome.jobs:
        typer.echo(
            f"{what.get(job.kind, job.kind)}: follow with "
            f"`spm tenants settings job {tenant} {job.job_id} --follow`"
        )


async def _follow(tenant: str, job_id: uuid.UUID, follow: bool) -> Job | None:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from libs.common.db.engine import make_engine
    from libs.common.jobs import get_job
    from libs.common.settings import DatabaseSettings

    engine = make_engine(DatabaseSettings(), "spm-cli")
    try:
        async with engine.connect() as conn:
            found = await get_job(conn, tenant, job_id)
        if found is None or not follow:
            return found
        with Progress(TextColumn(found.kind), BarColumn(), MofNCompleteColumn(), transient=True) as progress:
            task = progress.add_task(found.kind, total=None)
            while found is not None and found.state in ("queued", "running"):
                progress.update(task, completed=found.done, total=found.total)
                await asyncio.sleep(0.5)
                async with engine.connect() as conn:
                    found = await get_job(conn, tenant, job_id)
        return found
    finally:
        await engine.dispose()
