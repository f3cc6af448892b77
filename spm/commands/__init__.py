"""Commands added to ``spm``: each module defines ``register(app: typer.Typer) -> None``.

Keep imports of service code inside the command functions so ``spm --help`` stays fast.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

import typer

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

T = TypeVar("T")


async def in_tenant(tenant: str, act: Callable[[AsyncConnection], Awaitable[T]]) -> T:
    """``act`` in one transaction against DATABASE_URL, once the tenant is known to exist
    (``LookupError`` when it does not)."""
    from libs.common.db.engine import make_engine
    from libs.common.settings import DatabaseSettings
    from libs.common.tenancy import tenant_exists

    engine = make_engine(DatabaseSettings(), "spm-cli")
    try:
        async with engine.begin() as conn:
            if not await tenant_exists(conn, tenant):
                raise LookupError(f"no tenant {tenant!r}")
            return await act(conn)
    finally:
        await engine.dispose()


def run_or_exit(work: Coroutine[Any, Any, T]) -> T:
    """Run ``work``; a ``LookupError`` (no such tenant, goal, ...) is its message and exit status 1."""
    try:
        return asyncio.run(work)
    except LookupError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
