"""``spm``: run services, the local stack, migrations, topics, tenants, keys and the demo."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import orjson
import typer

if TYPE_CHECKING:
    import httpx

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Activity-based SPM pipeline")
topics_app = typer.Typer(no_args_is_help=True, help="Kafka topics")
tenants_app = typer.Typer(no_args_is_help=True, help="Tenants")
keys_app = typer.Typer(no_args_is_help=True, help="API keys")
app.add_typer(topics_app, name="topics")
app.add_typer(tenants_app, name="tenants")
app.add_typer(keys_app, name="keys")

#: Long-running commands: ``up`` starts its own stack, ``run`` is configured by its environment.
_LONG_RUNNING = frozenset({"up", "run"})


@app.callback()
def _find_stack(ctx: typer.Context) -> None:
    """Fill DATABASE_URL / KAFKA_BOOTSTRAP_SERVERS from a running ``spm up`` when unset."""
    import logging

    from spm.stack import apply_stack_file

    if ctx.invoked_subcommand in _LONG_RUNNING:
        return
    apply_stack_file()
    # The client's own log line about a refused connection would repeat the one line main() prints.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)


@app.command()
def run(
    service: Annotated[str, typer.Argument(help="ingest, attribution, metrics, gateway or connectors")],
) -> None:
    """Run one service in the foreground, as a container runs it."""
    from libs.common.logging import configure_logging
    from libs.common.serve import serve
    from libs.common.settings import RuntimeSettings
    from spm.services import SERVICES, build_app

    if service not in SERVICES:
        raise typer.BadParameter(f"unknown service {service!r}; choose from {', '.join(SERVICES)}")
    runtime = RuntimeSettings()
    configure_logging(service, runtime.log_level, runtime.log_json)
    raise typer.Exit(serve(build_app(service), runtime.host, SERVICES[service].port))


@app.command()
def migrate(
    status: Annotated[
        bool,
        typer.Option("--status", help="print the database's revision and this release's; change nothing"),
    ] = False,
    down_to: Annotated[
        str | None,
        typer.Option(
            "--down-to",
            metavar="REVISION",
            help="downgrade to REVISION (a rollback; run it with the release being rolled back)",
        ),
    ] = None,
) -> None:
    """Apply database migrations (alembic upgrade head) to DATABASE_URL; --down-to REVISION undoes them."""
    from alembic.util import CommandError

    from libs.common.db.migrate import current_revision, downgrade, head_revision, known_revisions, upgrade
    from libs.common.settings import DatabaseSettings

    url = DatabaseSettings().url.get_secret_value()

    def where() -> str:
        return f"database at {asyncio.run(current_revision(url)) or 'no revision'} (this release's head: {head_revision()})"

    if status:
        typer.echo(where())
        return
    if down_to is None:
        upgrade(url)
        typer.echo("database migrated")
        return
    if down_to not in known_revisions():
        raise typer.BadParameter(
            f"no migration {down_to!r} in this release (the newest: {head_revision()})",
            param_hint="--down-to",
        )
    try:
        downgrade(url, down_to)
    except (RuntimeError, CommandError) as exc:
        # A migration that refuses its downgrade (one that would lose data) says why; those
        # downgraded before it stay downgraded (one transaction each).
        typer.echo(f"spm: downgrade to {down_to} stopped: {exc}", err=True)
        typer.echo(where(), err=True)
        raise typer.Exit(1) from None
    typer.echo(where())


@topics_app.command("create")
def topics_create(
    partitions: Annotated[int | None, typer.Option(help="partitions per topic")] = None,
) -> None:
    """Create every topic of the registry (and its DLQ) that does not exist yet."""
    from libs.common.kafka.clients import create_topics
    from libs.common.settings import KafkaSettings

    created = asyncio.run(create_topics(KafkaSettings(), partitions))
    typer.echo(f"created {len(created)} topics" + (f": {', '.join(created)}" if created else ""))


@tenants_app.command("create")
def tenants_create(
    slug: str,
    name: Annotated[str, typer.Option(help="display name")] = "",
    timezone: Annotated[str, typer.Option(help="IANA time zone of the tenant")] = "UTC",
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Create a tenant with ingest, read and admin API keys and one webhook secret per source."""
    import re

    from libs.common.contracts.fields import TENANT_ID_PATTERN
    from libs.common.contracts.tenant_settings import TenantSettings
    from spm.admin import create_tenant_now

    if not re.fullmatch(TENANT_ID_PATTERN, slug):
        # It becomes part of the webhook URLs and of every event: refuse it before anything is written.
        raise typer.BadParameter(
            f"{slug!r} is not a tenant id: 2 to 63 lower-case letters, digits or '-', "
            "starting with a letter or digit",
            param_hint="SLUG",
        )
    try:
        TenantSettings(time_zone=timezone)
    except ValueError:
        raise typer.BadParameter(f"{timezone!r} is not an IANA time zone", param_hint="--timezone") from None

    try:
        created = asyncio.run(create_tenant_now(slug, name, timezone))
    except ValueError as exc:  # a zone PostgreSQL does not know
        raise typer.BadParameter(str(exc), param_hint="--timezone") from None
    if created is None:
        typer.echo(f"spm: tenant {slug!r} already exists (its keys were shown when it was created)", err=True)
        raise typer.Exit(1)
    if as_json:
        sys.stdout.write(orjson.dumps(created, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        typer.echo(f"tenant {slug} created; keys are shown once:")
        for scope, key in dict(created["api_keys"]).items():  # type: ignore[call-overload]
            typer.echo(f"  {scope:>6}: {key}")


@tenants_app.command("list")
def tenants_list(as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False) -> None:
    """Every tenant with its time zone, fiscal year start and active API keys."""
    from spm.admin import list_tenants_now

    tenants = asyncio.run(list_tenants_now())
    if as_json:
        sys.stdout.write(orjson.dumps(tenants, option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    typer.echo(f"{'tenant':<24} {'name':<24} {'time zone':<22} {'fy start':>8} {'keys':>5}")
    for tenant in tenants:
        typer.echo(
            f"{tenant['tenant_id']:<24} {tenant['name']:<24} {tenant['timezone']:<22} "
            f"{tenant['fiscal_year_start_month']:>8} {tenant['active_keys']:>5}"
        )


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="the key's prefix, e.g. spm_read_1a2b3c4d")],
) -> None:
    """Revoke an API key by its identifiable prefix (effective within 30 s everywhere)."""
    from spm.admin import revoke_key_now

    if not asyncio.run(revoke_key_now(key_id)):
        typer.echo(f"no active key {key_id}", err=True)
        raise typer.Exit(1)
    typer.echo(f"revoked {key_id}")


@app.command()
def up(
    no_demo: Annotated[bool, typer.Option("--no-demo", help="do not load the demo tenant")] = False,
    data_dir: Annotated[Path, typer.Option(help="where embedded PostgreSQL keeps its data")] = Path(".spm"),
) -> None:
    """Start the whole local stack (embedded broker and PostgreSQL unless configured) until Ctrl-C."""
    from spm.local_stack import run_local_stack

    raise typer.Exit(run_local_stack(data_dir=data_dir, demo=not no_demo))


@app.command()
def demo(
    ingest_url: Annotated[str, typer.Option(envvar="SPM_INGEST_URL")] = "http://127.0.0.1:8001",
    ingest_key: Annotated[
        str, typer.Option(envvar="SPM_INGEST_KEY", help="the demo tenant's ingest key")
    ] = "",
    seed: int = 7,
    reps: int = 24,
    days: int = 91,
) -> None:
    """Generate a realistic demo tenant and push it through the real ingest API."""
    from spm.demo import generate_demo, push_demo

    if not ingest_key:
        raise typer.BadParameter("--ingest-key (or SPM_INGEST_KEY) is required")
    dataset = generate_demo(seed=seed, reps=reps, days=days)
    asyncio.run(push_demo(dataset, ingest_url, ingest_key, progress=True))


def _register_commands() -> None:
    """Each module of ``spm.commands`` adds its commands through ``register(app)``."""
    import importlib
    import pkgutil

    import spm.commands

    for module in sorted(m.name for m in pkgutil.iter_modules(spm.commands.__path__)):
        importlib.import_module(f"spm.commands.{module}").register(app)


def refused_line(exc: httpx.HTTPStatusError) -> str:
    """``spm: POST <url> answered 401: <the problem's detail>``."""
    try:
        body = exc.response.json()
        detail = body.get("detail") if isinstance(body, dict) else None
    except ValueError:
        detail = None
    reason = detail if isinstance(detail, str) and detail else exc.response.reason_phrase
    return f"spm: {exc.request.method} {exc.request.url} answered {exc.response.status_code}: {reason}"


def main() -> None:
    import httpx

    from spm.stack import EXIT_UNAVAILABLE, unreachable

    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    _register_commands()
    from libs.common.contracts.tenant_settings import InvalidTenantSettings

    try:
        app()
    except InvalidTenantSettings as exc:
        sys.stderr.write(f"spm: {exc}; fix them with `spm tenants settings set`\n")
        sys.exit(1)
    except httpx.HTTPStatusError as exc:
        # A refused key or request (401, 403, 422...): the service's own reason, on one line.
        sys.stderr.write(refused_line(exc) + "\n")
        sys.exit(1)
    except Exception as exc:
        # An unreachable dependency is an everyday mistake, not a bug: one line, no traceback.
        found = unreachable(exc)
        if found is None:
            raise
        sys.stderr.write(found.line() + "\n")
        sys.exit(EXIT_UNAVAILABLE)


if __name__ == "__main__":
    main()
