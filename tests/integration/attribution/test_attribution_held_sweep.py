"""Meetings booked ahead become held once they end (attribution's held sweep), as a sales manager
reads them back: the real broker, ingest, attribution, metrics, the gateway and PostgreSQL.

Ana's Google calendar (the connector's post) holds a meeting with Dana a day ahead; Bo's one he
cancels before its time; Cy's bridge (``POST /v1/events``) posts one ahead, then says Dana never
showed up. Time passes (the sweep's clock is injected; nothing sleeps): Ana's and Cy's meetings
become held, each with a new version, once; Bo's stays cancelled; Cy's bridge's later no-show
wins over held. Before the sweep every calendar meeting synced ahead stayed ``scheduled`` and
its rep's scorecard counted it booked, never held.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from aiokafka import AIOKafkaProducer
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.contracts.activities import activity_id_for
from libs.common.settings import DatabaseSettings, KafkaSettings
from libs.common.testing.stack import in_process_stack
from services.attribution.held_sweep import HeldSweep
from tests.integration.attribution.test_attribution_held_out_situations_vendors import _deliver, _gcal, _guest
from tests.integration.ingest.ingest_integration_support import TENANT, dumps
from tests.integration.polling import eventually
from tests.integration.quarter.quarter_support import Tenant, get, post, settle, sync, webhook_tenant

ANA, BO, CY, DANA = "ana@acme.example", "bo@acme.example", "cy@acme.example", "dana@globex.example"
GC = "google-calendar"
CRM: list[dict[str, Any]] = [
    *(
        {"entity_type": "rep", "id": f"rep-{n}", "name": n.title(), "emails": [f"{n}@acme.example"]}
        for n in ("ana", "bo", "cy")
    ),
    {"entity_type": "account", "id": "acc-globex", "name": "Globex", "domains": ["globex.example"]},
    {"entity_type": "contact", "id": "con-dana", "account_id": "acc-globex", "emails": [DANA]},
    {
        "entity_type": "deal",
        "id": "deal-globex",
        "account_id": "acc-globex",
        "name": "Globex - Platform",
        "owner_rep_id": "rep-ana",
        "stage": "proposal",
        "created_at": "2026-09-01T00:00:00Z",
        "contacts": [{"contact_id": "con-dana", "role": "champion"}],
    },
]


def _start(now: datetime) -> datetime:
    """The first meeting's start: 4 to 5 hours ahead of ingest's clock (canonical events refuse
    anything more than a day ahead), on the hour, and, so that every meeting falls in one month's
    scorecard, moved to 01:00 on the 1st when the three meetings would straddle a month's end."""
    start = (now + timedelta(hours=5)).replace(minute=0, second=0, microsecond=0)
    if (start + timedelta(hours=3)).month != start.month:
        start = (start + timedelta(hours=3)).replace(day=1, hour=1)
    return start


START = _start(datetime.now(UTC))
END = START + timedelta(minutes=30)
COUNTS = ("meetings_booked", "meetings_held", "meetings_cancelled", "meetings_no_show")


def _utc(at: datetime) -> dict[str, str]:
    return {"dateTime": at.strftime("%Y-%m-%dT%H:%M:%SZ"), "timeZone": "UTC"}


def _calendar(rep: str, event_id: str, hours: int, **fields: Any) -> bytes:
    """The rep's half hour with Dana, ``hours`` after ``START``, in the rep's Google
    calendar, as the connector posts it."""
    organizer = {"email": rep, "self": True}
    event = _gcal(
        event_id,
        _utc(START + timedelta(hours=hours)),
        _utc(END + timedelta(hours=hours)),
        organizer,
        _guest(rep, organizer=True, self=True),
        _guest(DANA),
        **fields,
    )
    return dumps({"mailbox": rep, "items": [event]})


def _bridge(outcome: str, revision: int, at: datetime | None = None) -> dict[str, Any]:
    """Cy's bridge's meeting with Dana (two hours after Ana's, unless ``at``)."""
    return {
        "source": "bridge",
        "external_id": "bridge-cy",
        "kind": "meeting",
        "direction": "outbound",
        "outcome": outcome,
        # Two hours after Ana's (one meeting at one time is one meeting, whichever source reports it).
        "occurred_at": (at or START + timedelta(hours=2)).isoformat(),
        "duration_seconds": 1800,
        "participants": [{"email": CY, "role": "organizer"}, {"email": DANA, "role": "attendee"}],
        "revision": revision,
    }


async def _scorecards(
    stack: Any,
    tenant: Tenant,
    month: datetime = START,
    reps: tuple[str, ...] = ("rep-ana", "rep-bo", "rep-cy"),
) -> dict[str, tuple[int, ...]]:
    """Each rep's meeting counts for the meeting's month."""
    first = month.strftime("%Y-%m-01")
    out: dict[str, tuple[int, ...]] = {}
    for rep in reps:
        url = f"/v1/reps/{rep}/scores?granularity=month&from={first}&to={first}"
        [period] = (await get(stack, tenant, url))["periods"]
        out[rep] = tuple(period["counts"][k] for k in COUNTS)
    return out


async def _meetings(stack: Any, tenant: Tenant, ids: dict[str, Any]) -> dict[str, tuple[Any, ...]]:
    """Each meeting as ``GET /v1/activities/{id}`` reads it: outcome, status, deal, rep, versions."""
    out = {}
    for name, activity_id in ids.items():
        found = await get(stack, tenant, f"/v1/activities/{activity_id}")
        versions = sorted(v["version"] for v in found["history"])
        attribution = found["attribution"]
        out[name] = (
            found["payload"]["outcome"],
            attribution["status"],
            attribution["deal_id"],
            attribution["rep_id"],
            versions,
        )
    return out


async def test_meetings_synced_ahead_are_held_once_they_end_unless_cancelled_or_a_no_show(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    tenant = await webhook_tenant(db_engine, {"internal_domains": ["acme.example"]})
    async with in_process_stack(kafka_settings, database_settings) as stack:
        sweep: HeldSweep = stack.apps["attribution"].state.held_sweep
        await sync(stack, db_engine, tenant, "2026-10-01T00:00:00Z", *CRM)
        [ana] = (await _deliver(stack, GC, _calendar(ANA, "anaahead1", 0)))["activity_ids"]
        [bo] = (await _deliver(stack, GC, _calendar(BO, "bocalledoff", 1)))["activity_ids"]
        ids = {
            "anaahead1": ana,
            "bocalledoff": bo,
            "bridge-cy": activity_id_for(TENANT, "bridge", "bridge-cy"),
        }
        await post(stack, tenant, _bridge("scheduled", 1))
        await settle(kafka_settings)
        # Bo calls his off before its time (a newer revision of the event).
        await _deliver(
            stack, GC, _calendar(BO, "bocalledoff", 1, status="cancelled", updated="2026-11-11T09:00:00.000Z")
        )
        await settle(kafka_settings)
        ahead = (await _meetings(stack, tenant, ids), await _scorecards(stack, tenant))
        # Fourteen minutes after the first one ends (the grace is 15), nothing moves.
        early = await sweep.run_once(END + timedelta(minutes=14))

        swept = await sweep.run_once(START + timedelta(days=1))
        await settle(kafka_settings)
        after = (await _meetings(stack, tenant, ids), await _scorecards(stack, tenant))
        again = await sweep.run_once(START + timedelta(days=2))

        # The bridge's later word: Dana never showed up.
        await post(stack, tenant, _bridge("no_show", 2))
        await settle(kafka_settings)
        late = await sweep.run_once(START + timedelta(days=3))
        await settle(kafka_settings)
        final = (await _meetings(stack, tenant, ids), await _scorecards(stack, tenant))

    globex = ("attributed", "deal-globex")
    assert ahead == (
        {
            "anaahead1": ("scheduled", *globex, "rep-ana", [1]),
            "bocalledoff": ("cancelled", *globex, "rep-bo", [1, 2]),
            "bridge-cy": ("scheduled", *globex, "rep-cy", [1]),
        },
        {"rep-ana": (1, 0, 0, 0), "rep-bo": (1, 0, 1, 0), "rep-cy": (1, 0, 0, 0)},
    )
    assert (early.found, early.held) == (0, 0)
    assert (swept.found, swept.held, swept.failed) == (2, 2, [])
    assert after == (
        {
            "anaahead1": ("held", *globex, "rep-ana", [1, 2]),
            "bocalledoff": ("cancelled", *globex, "rep-bo", [1, 2]),
            "bridge-cy": ("held", *globex, "rep-cy", [1, 2]),
        },
        {"rep-ana": (1, 1, 0, 0), "rep-bo": (1, 0, 1, 0), "rep-cy": (1, 1, 0, 0)},
    )
    # Held once: a later round finds nothing.
    assert (again.found, again.held, late.found, late.held) == (0, 0, 0, 0)
    assert final == (
        {
            "anaahead1": ("held", *globex, "rep-ana", [1, 2]),
            "bocalledoff": ("cancelled", *globex, "rep-bo", [1, 2]),
            "bridge-cy": ("no_show", *globex, "rep-cy", [1, 2, 3]),
        },
        {"rep-ana": (1, 1, 0, 0), "rep-bo": (1, 0, 1, 0), "rep-cy": (1, 0, 0, 1)},
    )


class _SlowBroker:
    """The sweep's producer through a broker that acknowledges nothing until ``go``."""

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self.producer = producer
        self.sending = asyncio.Event()
        self.go = asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.producer, name)

    async def send_batch(self, *args: Any, **kwargs: Any) -> Any:
        self.sending.set()
        await self.go.wait()
        return await self.producer.send_batch(*args, **kwargs)


async def test_a_newer_revision_is_not_held_up_by_the_sweep_waiting_on_the_broker(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """The sweep stores the meeting held and commits before it publishes: while its publish waits
    on the broker, the bridge's no-show (a newer revision) goes through the consumer at once,
    as the version after the sweep's; the sweep's, published late, counts nothing (before: the
    sweep held the meeting's row locked until the broker answered, and the consumer waited)."""
    soon = (datetime.now(UTC) + timedelta(hours=2)).replace(second=0, microsecond=0)
    cy = activity_id_for(TENANT, "bridge", "bridge-cy")
    tenant = await webhook_tenant(db_engine, {"internal_domains": ["acme.example"]})
    async with in_process_stack(kafka_settings, database_settings) as stack:
        sweep: HeldSweep = stack.apps["attribution"].state.held_sweep
        await sync(stack, db_engine, tenant, "2026-10-01T00:00:00Z", *CRM)
        await post(stack, tenant, _bridge("scheduled", 1, soon))
        await settle(kafka_settings)
        slow = _SlowBroker(sweep.producer)
        sweep.producer = cast(AIOKafkaProducer, slow)
        sweeping = asyncio.create_task(sweep.run_once(soon + timedelta(days=1)))
        try:
            await asyncio.wait_for(slow.sending.wait(), 30)
            stored = await _meetings(stack, tenant, {"bridge-cy": cy})
            await post(stack, tenant, _bridge("no_show", 2, soon))

            async def meeting() -> tuple[Any, ...]:
                return (await _meetings(stack, tenant, {"bridge-cy": cy}))["bridge-cy"]

            # Generous: the consumer takes well under a second; blocked, it never would.
            newer = await eventually(
                meeting, lambda m: m[0] == "no_show", 30, "the no-show stored while the sweep publishes"
            )
            waited = not sweeping.done()
        finally:
            slow.go.set()
        swept = await sweeping
        await settle(kafka_settings)
        final = (await meeting(), await _scorecards(stack, tenant, soon, ("rep-cy",)))

    globex = ("attributed", "deal-globex", "rep-cy")
    assert stored == {"bridge-cy": ("held", *globex, [1, 2])}
    assert (newer, waited) == (("no_show", *globex, [1, 2, 3]), True)
    assert (swept.found, swept.held, swept.published) == (1, 1, 1)
    # Metrics keeps the higher revision: no-show, not held, whatever arrived last.
    assert final == (("no_show", *globex, [1, 2, 3]), {"rep-cy": (1, 0, 0, 1)})
