"""One poll loop for the integration tests: probe until a condition holds or a deadline passes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.db.references import references_missing

#: Marks "no value yet" for a probe (``None`` can be a real answer).
PENDING: Any = object()

#: The pause after the first probe; each next pause doubles, up to ``PROBE_EVERY_S``. Most
#: conditions hold within a few hundred milliseconds: a fixed 0.2 s left each wait idle 0.1 s
#: past it on average, while a long wait still probes only every 0.2 s.
FIRST_PAUSE_S = 0.025
PROBE_EVERY_S = 0.2


def pauses(longest: float = PROBE_EVERY_S) -> Iterator[float]:
    """The pauses between probes: ``FIRST_PAUSE_S``, doubling up to ``longest``, then ``longest``."""
    pause = min(FIRST_PAUSE_S, longest)
    while True:
        yield pause
        pause = min(longest, pause * 2)


async def eventually(
    probe: Callable[[], Awaitable[Any]], done: Callable[[Any], bool], deadline_s: float, what: str
) -> Any:
    """The first value of ``probe()`` that satisfies ``done``; fails naming ``what`` and the last value."""
    deadline = time.monotonic() + deadline_s
    last: Any = None
    waits = pauses()
    while time.monotonic() < deadline:
        value = await probe()
        if value is not PENDING:
            last = value
            if done(value):
                return value
        await asyncio.sleep(next(waits))
    raise AssertionError(f"{what} not met within {deadline_s}s; last: {last}")


async def sessions_waiting(engine: AsyncEngine, wait_event: str | None = None) -> int:
    """How many sessions of this test's database wait for a lock (of ``wait_event``, such as
    ``advisory`` or ``transactionid``, when given)."""
    async with engine.connect() as conn:
        return int(
            await conn.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock' AND (CAST(:e AS text) IS NULL OR wait_event = :e)"
                ),
                {"e": wait_event},
            )
            or 0
        )


async def poll_rows(
    engine: AsyncEngine, sql: str, params: dict[str, Any], done: Any, deadline_s: float = 60
) -> Any:
    """The rows of ``sql`` (as tuples) once ``done(rows)`` holds."""

    async def probe() -> list[tuple[Any, ...]]:
        async with engine.connect() as conn:
            return [tuple(r) for r in await conn.execute(text(sql), params)]

    return await eventually(probe, done, deadline_s, "condition")


async def poll_json(
    client: httpx.AsyncClient, url: str, headers: dict[str, str], done: Any, deadline_s: float = 60
) -> Any:
    """The JSON body of a 200 from ``GET url`` once ``done(body)`` holds."""

    async def probe() -> Any:
        response = await client.get(url, headers=headers)
        return response.json() if response.status_code == 200 else PENDING

    return await eventually(probe, done, deadline_s, "condition")


async def settings_job_done(gateway: httpx.AsyncClient, admin: dict[str, str], answer: httpx.Response) -> Any:
    """The job a settings change (a 200 naming one job) queued, once it is done or failed."""
    assert answer.status_code == 200, answer.text
    [job_id] = answer.json()["jobs"]
    return await poll_json(
        gateway, f"/v1/settings/jobs/{job_id}", admin, lambda j: j["state"] in ("done", "failed")
    )


async def erasure_done(
    gateway: httpx.AsyncClient, admin: dict[str, str], identity: dict[str, str], what: str
) -> Any:
    """Asks the gateway to erase ``identity`` (``{"email": ...}`` or ``{"phone": ...}``; a new
    request, 202) and returns its job once done, failing naming ``what``."""
    requested = await gateway.post("/v1/privacy/erasures", json=identity, headers=admin)
    assert requested.status_code == 202, requested.text
    url = f"/v1/privacy/erasures/{requested.json()['erasure_id']}"

    async def erased() -> Any:
        return (await gateway.get(url, headers=admin)).json()

    return await eventually(erased, lambda body: body["state"] == "done", 60, what)


async def references_landed(
    engine: AsyncEngine, tenant_id: str, entities: Iterable[Mapping[str, Any]], deadline_s: float = 60
) -> None:
    """Return once attribution holds each of ``entities`` in its reference tables, so an activity
    posted after is decided with them (not parked or unmatched first).

    ``entities`` are CRM entities as sent (a ``/v1/crm/sync`` body's, or for a vendor's feed
    their ``entity_type`` and ``id`` as ingest maps them); each is held once its row exists with
    its ``updated_at`` or a newer one and, where it names them, its ``deleted`` and ``merged_into``.
    """
    wanted = list(entities)

    async def missing() -> list[str]:
        return await references_missing(engine, tenant_id, wanted)

    await eventually(
        missing,
        lambda left: not left,
        deadline_s,
        f"attribution holding {len(wanted)} CRM entities of {tenant_id}",
    )
