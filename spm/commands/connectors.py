"""``spm connectors``: connect mailboxes and calendars, list them with their health, pause, resume.

Credentials are read from a file or stdin, stored encrypted with a key derived from
``SPM_SECRET_KEY`` (as webhook secrets are), and never printed. The backfill itself runs in the
connectors process (``spm run connectors``); ``add`` shows its progress until it is done, and
stopping the display stops nothing: the cursors are in PostgreSQL and the sync resumes.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer

if TYPE_CHECKING:
    from services.connectors.adapters.store import MailboxStatus, MailboxStore

TenantOption = Annotated[str, typer.Option("--tenant", help="tenant id")]
UsersOption = Annotated[str, typer.Option("--users", help="comma-separated mailboxes, e.g. a@x.com,b@x.com")]
BackfillOption = Annotated[
    int, typer.Option("--backfill-days", min=0, max=365, help="days fetched on connect")
]
WaitOption = Annotated[bool, typer.Option("--wait/--no-wait", help="show the backfill's progress until done")]
#: How long a mailbox may go without a successful sync before ``list`` calls it stale.
STALE_AFTER = timedelta(hours=1)


def _addresses(users: str) -> list[str]:
    found = [u.strip().lower() for u in users.split(",") if u.strip()]
    bad = [u for u in found if "@" not in u]
    if not found or bad:
        raise typer.BadParameter(f"--users: expected email addresses, got {', '.join(bad) or 'none'}")
    return found


def _read_service_account(path: Path) -> str:
    try:
        info = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise typer.BadParameter(
            f"--service-account-file: cannot read a JSON key ({type(exc).__name__})"
        ) from None
    missing = [k for k in ("type", "client_email", "private_key", "token_uri") if not info.get(k)]
    if info.get("type") != "service_account" or missing:
        raise typer.BadParameter(
            f"--service-account-file: not a service account key (missing {', '.join(missing) or 'type'})"
        )
    return orjson.dumps(info).decode()


async def _with_store(action: Any, tenant: str | None = None) -> Any:
    """``action(store)``; with ``tenant``, first a one-line error and exit 1 if there is no such tenant."""
    from libs.common.db.engine import make_engine
    from libs.common.settings import DatabaseSettings, RuntimeSettings
    from libs.common.tenancy import tenant_exists
    from services.connectors.adapters.store import MailboxStore

    engine = make_engine(DatabaseSettings(), "spm-cli")
    try:
        if tenant is not None:
            async with engine.connect() as conn:
                known = await tenant_exists(conn, tenant)
            if not known:
                typer.echo(f"no tenant {tenant!r}", err=True)
                raise typer.Exit(1)
        return await action(MailboxStore(engine, RuntimeSettings().secret_key.get_secret_value()))
    finally:
        await engine.dispose()


def _health(status: MailboxStatus) -> str:
    from services.connectors.domain.mailboxes import health

    return health(
        paused=status.paused,
        full_sync=status.full_sync,
        last_error_at=status.last_error_at,
        last_success_at=status.last_success_at,
        now=datetime.now(UTC),
        stale_after=STALE_AFTER,
    )


def connect(
    tenant: str,
    providers: Sequence[str],
    vendor: str,
    credentials: str,
    options: dict[str, Any],
    addresses: Sequence[str],
    backfill_days: int,
) -> list[int]:
    """Store the connection and its mailboxes (one row per provider and address)."""
    from services.connectors.handlers import connect_mailboxes

    async def run(store: MailboxStore) -> list[int]:
        from libs.common.audit import AuditAction, cli_actor, record_admin_action

        ids: list[int] = []
        for provider in providers:
            ids += await connect_mailboxes(
                store,
                tenant,
                provider,
                vendor=vendor,
                credentials=credentials,
                options=options,
                addresses=addresses,
                backfill_days=backfill_days,
                now=datetime.now(UTC),
            )
        async with store.engine.begin() as conn:
            for provider in providers:
                await record_admin_action(
                    conn,
                    tenant,
                    cli_actor(),
                    AuditAction.CONNECTOR_CONNECTED,
                    f"connector:{provider}",
                    after={
                        "provider": provider,
                        "users": list(addresses),
                        "backfill_days": backfill_days,
                        "credentials": "***",
                    },
                )
        return ids

    try:
        return list(asyncio.run(_with_store(run, tenant)))
    except LookupError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None


def show_progress(ids: Sequence[int], poll_seconds: float = 1.0) -> None:
    """A progress line per mailbox (messages or events fetched) until every backfill is done or failing."""
    from rich.progress import Progress, SpinnerColumn, TextColumn

    async def statuses(store: MailboxStore) -> list[MailboxStatus]:
        return await store.statuses(ids=ids)

    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TextColumn("{task.fields[state]}")
    ) as progress:
        tasks: dict[int, Any] = {}
        while True:
            current: list[MailboxStatus] = asyncio.run(_with_store(statuses))
            for status in current:
                label = f"{status.provider} {status.address}"
                state = f"{status.fetched} fetched, {_health(status)}"
                if status.mailbox_id not in tasks:
                    tasks[status.mailbox_id] = progress.add_task(label, total=None, state=state)
                done = not status.full_sync or _health(status) == "failing"
                progress.update(
                    tasks[status.mailbox_id],
                    state=state,
                    completed=1 if done else 0,
                    total=1 if done else None,
                )
            if all(not s.full_sync or _health(s) == "failing" for s in current):
                return
            time.sleep(poll_seconds)


def _added(ids: Sequence[int], backfill_days: int, wait: bool) -> None:
    typer.echo(f"connected {len(ids)} mailbox(es); the connectors process backfills {backfill_days} day(s)")
    if wait and backfill_days > 0:
        show_progress(ids)


def _google(provider: str) -> Any:
    def add_google(
        tenant: TenantOption,
        service_account_file: Annotated[Path, typer.Option("--service-account-file", help="the key (JSON)")],
        users: UsersOption,
        backfill_days: BackfillOption = 7,
        pubsub_topic: Annotated[
            str | None, typer.Option("--pubsub-topic", help="projects/P/topics/T for Gmail push (Gmail only)")
        ] = None,
        wait: WaitOption = True,
    ) -> None:
        credentials = _read_service_account(service_account_file)
        options: dict[str, Any] = {"pubsub_topic": pubsub_topic} if pubsub_topic else {}
        ids = connect(tenant, [provider], "google", credentials, options, _addresses(users), backfill_days)
        _added(ids, backfill_days, wait)

    add_google.__doc__ = (
        f"Connect {provider} mailboxes through a service account with domain-wide delegation."
    )
    return add_google


def add_microsoft(
    tenant: TenantOption,
    tenant_id: Annotated[str, typer.Option("--tenant-id", help="the Microsoft Entra tenant (directory) id")],
    client_id: Annotated[str, typer.Option("--client-id", help="the app registration's client id")],
    users: UsersOption,
    client_secret_stdin: Annotated[
        bool,
        typer.Option("--client-secret-stdin", help="read the client secret from stdin (never an argument)"),
    ] = False,
    backfill_days: BackfillOption = 7,
    mail: Annotated[bool, typer.Option("--mail/--no-mail", help="sync mail")] = True,
    calendar: Annotated[bool, typer.Option("--calendar/--no-calendar", help="sync calendars")] = True,
    wait: WaitOption = True,
) -> None:
    """Connect Microsoft 365 mailboxes and calendars with an app's client credentials."""
    if not client_secret_stdin:
        raise typer.BadParameter("--client-secret-stdin is required: a secret never goes on the command line")
    secret = sys.stdin.readline().strip()
    if not secret:
        raise typer.BadParameter("--client-secret-stdin: nothing was read")
    providers = [p for p, on in (("microsoft-mail", mail), ("microsoft-calendar", calendar)) if on]
    if not providers:
        raise typer.BadParameter("choose --mail and/or --calendar")
    options = {"directory_tenant_id": tenant_id, "client_id": client_id}
    ids = connect(tenant, providers, "microsoft", secret, options, _addresses(users), backfill_days)
    _added(ids, backfill_days, wait)


def list_mailboxes(
    tenant: Annotated[str | None, typer.Option("--tenant", help="only this tenant")] = None,
) -> None:
    """Every connected mailbox with its health, last success and last error."""
    from rich.console import Console
    from rich.table import Table

    async def run(store: MailboxStore) -> list[MailboxStatus]:
        return await store.statuses(tenant)

    table = Table()
    for column in ("tenant", "provider", "mailbox", "health", "fetched", "last success", "last error"):
        table.add_column(column)
    for status in asyncio.run(_with_store(run, tenant)):
        success = status.last_success_at.strftime("%Y-%m-%d %H:%M:%S") if status.last_success_at else "-"
        table.add_row(
            status.tenant_id,
            status.provider,
            status.address,
            _health(status),
            str(status.fetched),
            success,
            (status.last_error or "")[:120],
        )
    Console(width=220).print(table)


def _set_paused(paused: bool) -> Any:
    def command(
        tenant: TenantOption,
        provider: Annotated[
            str | None, typer.Option("--provider", help="gmail, google-calendar, ...")
        ] = None,
        users: Annotated[str, typer.Option("--users", help="only these mailboxes")] = "",
    ) -> None:
        addresses = _addresses(users) if users else []

        async def run(store: MailboxStore) -> int:
            from libs.common.audit import AuditAction, cli_actor, record_admin_action

            changed = await store.set_paused(tenant, provider, addresses, paused)
            if changed:
                async with store.engine.begin() as conn:
                    await record_admin_action(
                        conn,
                        tenant,
                        cli_actor(),
                        AuditAction.CONNECTOR_PAUSED if paused else AuditAction.CONNECTOR_RESUMED,
                        f"connector:{provider or 'all'}",
                        after={"paused": paused, "users": addresses, "mailboxes_changed": changed},
                    )
            return changed

        changed = asyncio.run(_with_store(run, tenant))
        typer.echo(f"{'paused' if paused else 'resumed'} {changed} mailbox(es)")

    command.__doc__ = "Pause mailboxes (nothing is fetched)." if paused else "Resume paused mailboxes."
    return command


def push_url(
    tenant: TenantOption,
    ingest_url: Annotated[str, typer.Option("--ingest-url", help="ingest's public https://host")],
) -> None:
    """The Pub/Sub push endpoint to set on the Gmail topic's subscription (it carries a token)."""
    from libs.common.tenancy import push_token

    async def run(store: MailboxStore) -> str | None:
        return await store.newest_secret(tenant, "gmail")

    secret = asyncio.run(_with_store(run, tenant))
    if secret is None:
        typer.echo(f"no gmail webhook secret for tenant {tenant}", err=True)
        raise typer.Exit(1)
    typer.echo(f"{ingest_url.rstrip('/')}/v1/push/gmail/{tenant}?token={push_token(secret, tenant, 'gmail')}")


def register(app: typer.Typer) -> None:
    connectors_app = typer.Typer(no_args_is_help=True, help="Mail and calendar connectors")
    add_app = typer.Typer(no_args_is_help=True, help="Connect mailboxes or calendars")
    app.add_typer(connectors_app, name="connectors")
    connectors_app.add_typer(add_app, name="add")
    add_app.command("gmail")(_google("gmail"))
    add_app.command("google-calendar")(_google("google-calendar"))
    add_app.command("microsoft")(add_microsoft)
    connectors_app.command("list")(list_mailboxes)
    connectors_app.command("pause")(_set_paused(True))
    connectors_app.command("resume")(_set_paused(False))
    connectors_app.command("push-url")(push_url)
