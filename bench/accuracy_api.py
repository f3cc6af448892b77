"""Attribution accuracy through the real API, as an integrator measures it.

The labelled world of ``spm eval attribution`` is sent to a stack of real processes (embedded
broker and PostgreSQL, ``spm run ingest|attribution|metrics|gateway``): the CRM as it stood
when the activities began through ``POST /v1/crm/sync`` (phones as people typed them, each rep
from the feed that knows it), then every activity through ``POST /v1/events`` in the order it
happened, with the contacts and deals that reached the CRM late posted when they did. Nothing
waits for the pipeline between posts. Once every activity is attributed and the versions stop
changing, each activity's attribution is read back from ``GET /v1/activities`` and scored as the
in-process evaluation scores it; the two are compared activity by activity.

    python -m bench.accuracy_api [--activities 20000] [--seed 1]
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
import orjson

from bench.common import Engines, engines, post_retrying, service_env, start_service, stop_services
from bench.pipeline import _count
from libs.common.contracts.activities import ActivityIngestedV1
from libs.common.db.engine import make_engine
from libs.common.db.migrate import upgrade
from libs.common.kafka.clients import create_topics
from libs.common.settings import DatabaseSettings, KafkaSettings
from libs.common.tenancy import create_tenant
from services.attribution.domain.reference import Contact, Deal, TenantAttributionPolicy
from spm.evaluation.attribution.scoring import PHONE_REGION, Scorecard, replay
from spm.evaluation.attribution.world import (
    ACTIVITIES_FROM,
    CRM_STATE_AT,
    INTERNAL_DOMAIN,
    TENANT_ID,
    CrmWorld,
    Dataset,
    Trap,
    generate_dataset,
)

#: Entities and activities per request (the API takes up to 1,000 of each).
BATCH = 500


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _contact(contact: Contact, at: datetime) -> dict[str, Any]:
    return {
        "entity_type": "contact",
        "id": contact.id,
        "updated_at": _iso(at),
        "emails": list(contact.emails),
        "phones": list(contact.phones),
        "account_id": contact.account_id,
    }


def _deal(deal: Deal, at: datetime) -> dict[str, Any]:
    return {
        "entity_type": "deal",
        "id": deal.id,
        "updated_at": _iso(at),
        "name": deal.name,
        "account_id": deal.account_id,
        "owner_rep_id": deal.owner_rep_id,
        "stage": deal.stage,
        "is_closed": deal.is_closed,
        "is_won": deal.is_won,
        "created_at": _iso(deal.created_at),
        "closed_at": _iso(deal.closed_at) if deal.closed_at else None,
        "contacts": [{"contact_id": c, "role": role} for c, role in deal.contacts],
    }


def initial_crm(world: CrmWorld) -> dict[str, list[dict[str, Any]]]:
    """What each feed had sent when the activities began, by feed (``source``)."""
    at = _iso(CRM_STATE_AT)
    by_source: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for rep in world.reps:
        by_source[world.rep_sources[rep.id]].append(
            {
                "entity_type": "rep",
                "id": rep.id,
                "updated_at": at,
                "name": rep.name,
                "emails": list(rep.emails),
                "phones": list(rep.phones),
            }
        )
    canonical = by_source["api"]
    for team_id in sorted({m.team_id for m in world.memberships}):
        canonical.append({"entity_type": "team", "id": team_id, "updated_at": at, "name": team_id})
    for number, m in enumerate(world.memberships):
        canonical.append(
            {
                "entity_type": "team_membership",
                "id": f"membership-{number}",
                "updated_at": at,
                "rep_id": m.rep_id,
                "team_id": m.team_id,
                "valid_from": m.valid_from.isoformat(),
                "valid_to": m.valid_to.isoformat() if m.valid_to else None,
            }
        )
    for account in world.accounts:
        canonical.append(
            {"entity_type": "account", "id": account.id, "updated_at": at, "domains": list(account.domains)}
        )
    for contact in world.contacts:
        if world.contact_created_at[contact.id] <= ACTIVITIES_FROM:
            canonical.append(_contact(contact, CRM_STATE_AT))
    for deal in world.deals:
        if world.deal_known_at[deal.id] <= ACTIVITIES_FROM:
            canonical.append(_deal(deal, CRM_STATE_AT))
    return dict(by_source)


def _activity(activity: ActivityIngestedV1) -> dict[str, Any]:
    body = activity.model_dump(
        mode="json",
        include={
            "source",
            "external_id",
            "kind",
            "direction",
            "outcome",
            "occurred_at",
            "duration_seconds",
            "participants",
            "thread_id",
            "subject",
            "crm",
        },
        exclude_none=True,
    )
    return body


def arrivals(dataset: Dataset) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """``("crm", entities)`` and ``("events", activities)`` requests in the order things happened."""
    world = dataset.world
    timeline: list[tuple[datetime, int, str, dict[str, Any]]] = []
    for contact in world.contacts:
        if (at := world.contact_created_at[contact.id]) > ACTIVITIES_FROM:
            timeline.append((at, 0, contact.id, _contact(contact, CRM_STATE_AT)))
    for deal in world.deals:
        if (at := world.deal_known_at[deal.id]) > ACTIVITIES_FROM:
            timeline.append((at, 0, deal.id, _deal(deal, CRM_STATE_AT)))
    for item in dataset.activities:
        a = item.activity
        timeline.append((a.ingested_at, 1, a.external_id, _activity(a)))
    timeline.sort(key=lambda e: (e[0], e[1], e[2]))
    kind: str | None = None
    batch: list[dict[str, Any]] = []
    for _, order, _, body in timeline:
        this = "crm" if order == 0 else "events"
        if batch and (this != kind or len(batch) >= BATCH):
            yield kind or this, batch
            batch = []
        kind = this
        batch.append(body)
    if batch and kind:
        yield kind, batch


async def _tenant(eng: Engines, database: str) -> dict[str, str]:
    engine = make_engine(DatabaseSettings(url=eng.postgres.url(database)), "bench")
    async with engine.begin() as conn:
        created = await create_tenant(conn, TENANT_ID, "bench-secret")
    await engine.dispose()
    keys: dict[str, str] = created["api_keys"]  # type: ignore[assignment]
    return keys


async def _post(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    headers = {"Content-Type": "application/json"}
    return await post_retrying(client, path, orjson.dumps(body), lambda: headers, tries=100, shown=500)


async def _settle(dsn: str, expected: int, quiet_s: float = 8.0, limit_s: float = 900.0) -> float:
    """Waits until every activity is attributed and no version changed for ``quiet_s``."""
    started = time.monotonic()
    last: tuple[int, int] | None = None
    last_change = time.monotonic()
    while True:
        count = await _count(dsn, f"SELECT count(*) FROM attributions WHERE tenant_id = '{TENANT_ID}'")
        versions = await _count(
            dsn, f"SELECT coalesce(sum(version), 0) FROM attributions WHERE tenant_id = '{TENANT_ID}'"
        )
        now = time.monotonic()
        if (count, versions) != last:
            last, last_change = (count, versions), now
        elif count >= expected and now - last_change >= quiet_s:
            return now - started
        if now - started > limit_s:
            raise TimeoutError(f"{count} of {expected} attributed after {limit_s:.0f} s")
        await asyncio.sleep(1.0)


async def _read_back(gateway: httpx.AsyncClient) -> dict[uuid.UUID, dict[str, Any]]:
    found: dict[uuid.UUID, dict[str, Any]] = {}
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 500}
        if cursor:
            params["cursor"] = cursor
        r = await gateway.get("/v1/activities", params=params)
        r.raise_for_status()
        page = r.json()
        for item in page["items"]:
            found[uuid.UUID(item["activity_id"])] = item
        cursor = page["next_cursor"]
        if not cursor:
            return found


async def run(eng: Engines, dataset: Dataset) -> dict[str, Any]:
    """Sends ``dataset`` to a fresh stack on ``eng``; what the API answers for each activity."""
    database = f"acc_{uuid.uuid4().hex[:8]}"
    eng.postgres.psql(f'CREATE DATABASE "{database}"')
    await asyncio.to_thread(upgrade, eng.postgres.url(database))
    keys = await _tenant(eng, database)
    prefix = f"a{uuid.uuid4().hex[:6]}."
    kafka = KafkaSettings(
        bootstrap_servers=eng.kafka.bootstrap_servers, topic_prefix=prefix, enable_idempotence=False
    )
    await create_topics(kafka, 4)
    env = service_env(eng, database, prefix)
    services = [
        start_service(name, env, eng.base) for name in ("ingest", "attribution", "metrics", "gateway")
    ]
    dsn = eng.postgres.url(database, driver="postgresql")
    try:
        ingest = httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{services[0].port}",
            headers={"Authorization": f"Bearer {keys['ingest']}"},
            timeout=120,
        )
        gateway = httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{services[3].port}",
            headers={"Authorization": f"Bearer {keys['admin']}"},
            timeout=120,
        )
        async with ingest, gateway:
            r = await gateway.patch(
                "/v1/settings",
                json={
                    "internal_domains": [INTERNAL_DOMAIN],
                    "default_phone_region": PHONE_REGION,
                    "privacy": {"keep_subjects": True},
                },
            )
            if r.status_code >= 400:
                raise RuntimeError(f"settings: {r.status_code} {r.text}")
            started = time.monotonic()
            warnings = 0
            for source, entities in initial_crm(dataset.world).items():
                for i in range(0, len(entities), BATCH):
                    answer = await _post(
                        ingest, "/v1/crm/sync", {"source": source, "entities": entities[i : i + BATCH]}
                    )
                    warnings += len(answer.get("warnings", ()))
            requests = Counter[str]()
            for kind, batch in arrivals(dataset):
                requests[kind] += 1
                if kind == "crm":
                    answer = await _post(ingest, "/v1/crm/sync", {"source": "api", "entities": batch})
                    warnings += len(answer.get("warnings", ()))
                else:
                    await _post(ingest, "/v1/events", {"activities": batch})
            posted_s = time.monotonic() - started
            settle_s = await _settle(dsn, len(dataset.activities))
            found = await _read_back(gateway)
    finally:
        stop_services(services)
    return {
        "dataset": dataset,
        "found": found,
        "posted_s": posted_s,
        "settle_s": settle_s,
        "requests": dict(requests),
        "warnings": warnings,
    }


@dataclass
class Comparison:
    """The API's answers scored, next to the in-process replay of the same world."""

    api: Scorecard = field(default_factory=Scorecard)
    credited: Scorecard = field(default_factory=Scorecard)
    in_process: Scorecard = field(default_factory=Scorecard)
    by_trap: dict[Trap, Scorecard] = field(default_factory=lambda: defaultdict(Scorecard))
    #: Activities whose status, deal or rep differ from the replay's, by trap; and whose rep or team do.
    differ: Counter[str] = field(default_factory=Counter)
    people_differ: int = 0
    examples: list[str] = field(default_factory=list)


def compare(dataset: Dataset, found: dict[uuid.UUID, dict[str, Any]]) -> Comparison:
    inproc = replay(dataset, TenantAttributionPolicy())
    out = Comparison()
    for item in dataset.activities:
        got = found.get(item.activity.activity_id, {})
        deal, rep, team, status = got.get("deal_id"), got.get("rep_id"), got.get("team_id"), got.get("status")
        out.api = out.api.add(item, deal, rep, team)
        out.credited = out.credited.add(item, deal if status == "attributed" else None, rep, team)
        out.by_trap[item.trap] = out.by_trap[item.trap].add(item, deal, rep, team)
        held = inproc.current[item.activity.activity_id]
        out.in_process = out.in_process.add(item, held.deal_id, held.rep_id, held.team_id)
        out.people_differ += (held.rep_id, held.team_id) != (rep, team)
        if (held.status.value, held.deal_id, held.rep_id) != (status, deal, rep):
            out.differ[item.trap.value] += 1
            if len(out.examples) < 12:
                out.examples.append(
                    f"  {item.activity.external_id} {item.trap.value}: in-process {held.status.value} "
                    f"{held.deal_id} {held.rep_id}; API {status} {deal} {rep}; truth {item.true_deal_id} "
                    f"{item.true_rep_id}"
                )
    return out


def report(result: dict[str, Any]) -> str:
    dataset: Dataset = result["dataset"]
    found: dict[uuid.UUID, dict[str, Any]] = result["found"]
    c = compare(dataset, found)
    lines = [
        f"Attribution accuracy through the API on {len(dataset.activities)} activities: posted in "
        f"{result['posted_s']:.1f} s ({result['requests']}), settled {result['settle_s']:.1f} s later; "
        f"{len(found)} read back; {result['warnings']} phone warnings",
        c.api.line("API (deal_id)"),
        c.credited.line("API (credited)"),
        c.in_process.line("in-process (deal_id)"),
        "",
        "per trap, API deal_id reading:",
        *(c.by_trap[t].line(f"  {t.value}") for t in Trap if c.by_trap[t].activities),
        "",
        f"activities whose API answer differs from the in-process replay: {sum(c.differ.values())} "
        f"{dict(c.differ)}; of which rep or team: {c.people_differ}",
        *c.examples,
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--activities", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    dataset = generate_dataset(args.activities, args.seed)
    with engines() as eng:
        result = asyncio.run(run(eng, dataset))
    print(report(result))


if __name__ == "__main__":
    main()
