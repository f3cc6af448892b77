"""A realistic demo tenant: teams, reps, accounts, contacts, deals and a quarter of activity.

The data goes through the real ingest API (``/v1/crm/sync`` then ``/v1/events``), so the demo
exercises the same path as production traffic. Generation is deterministic for a seed.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import httpx
from rich.progress import Progress

FIRST = [
    "Ana",
    "Ben",
    "Chloe",
    "Dev",
    "Elif",
    "Femi",
    "Gus",
    "Hana",
    "Ivan",
    "Jada",
    "Kai",
    "Lena",
    "Mo",
    "Nia",
    "Omar",
    "Pia",
    "Quinn",
    "Rosa",
    "Sami",
    "Tara",
    "Uma",
    "Vic",
    "Wes",
    "Xia",
    "Yuri",
    "Zoe",
]
LAST = [
    "Adams",
    "Baker",
    "Chen",
    "Diaz",
    "Evans",
    "Fox",
    "Garcia",
    "Hill",
    "Ito",
    "Jones",
    "Khan",
    "Lopez",
    "Moore",
    "Ng",
    "Okafor",
    "Patel",
    "Quist",
    "Rossi",
    "Silva",
    "Tan",
    "Ueda",
    "Vogel",
    "Wong",
    "Young",
]
COMPANY_A = [
    "Acme",
    "Globex",
    "Initech",
    "Umbrella",
    "Stark",
    "Wayne",
    "Tyrell",
    "Cyberdyne",
    "Soylent",
    "Hooli",
    "Vandelay",
    "Wonka",
    "Gringotts",
    "Oscorp",
    "Aperture",
    "Massive",
    "Dunder",
    "Pied",
    "Prestige",
    "Nakatomi",
]
COMPANY_B = [
    "Labs",
    "Systems",
    "Logistics",
    "Health",
    "Foods",
    "Energy",
    "Bank",
    "Retail",
    "Media",
    "Robotics",
    "Analytics",
    "Freight",
    "Capital",
    "Pharma",
    "Networks",
]
TLDS = ["com", "io", "co", "net"]
STAGES = ["prospecting", "discovery", "proposal", "negotiation"]
TEAMS = [("team-east", "East"), ("team-west", "West"), ("team-ent", "Enterprise"), ("team-smb", "SMB")]
#: Regions: parent teams without members of their own, so a leader drills region -> team -> rep.
REGIONS = {
    "region-na": ("North America", ("team-east", "team-west")),
    "region-intl": ("International", ("team-ent", "team-smb")),
}
INTERNAL_DOMAIN = "demo-corp.com"


@dataclass
class DemoDataset:
    entities: list[dict[str, Any]] = field(default_factory=list)
    activities: list[dict[str, Any]] = field(default_factory=list)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def generate_demo(
    seed: int = 7, reps: int = 24, days: int = 91, accounts: int = 300, today: date | None = None
) -> DemoDataset:
    rng = random.Random(seed)
    today = today or datetime.now(UTC).date()
    start = today - timedelta(days=days)
    created = datetime.combine(start - timedelta(days=120), time(9), UTC)
    data = DemoDataset()
    parents = {team: region for region, (_, teams) in REGIONS.items() for team in teams}
    for region_id, (name, _) in REGIONS.items():
        data.entities.append(
            {"entity_type": "team", "id": region_id, "name": name, "updated_at": _iso(created)}
        )
    for team_id, name in TEAMS:
        data.entities.append(
            {
                "entity_type": "team",
                "id": team_id,
                "name": name,
                "parent_id": parents[team_id],
                "updated_at": _iso(created),
            }
        )
    rep_rows: list[dict[str, Any]] = []
    for i in range(reps):
        first, last = FIRST[i % len(FIRST)], LAST[(i * 7) % len(LAST)]
        rep_id = f"rep-{i + 1:03d}"
        rep: dict[str, Any] = {
            "entity_type": "rep",
            "id": rep_id,
            "name": f"{first} {last}",
            "emails": [
                f"{first.lower()}.{last.lower()}@{INTERNAL_DOMAIN}",
                f"{first.lower()}@{INTERNAL_DOMAIN}",
            ],
            "phones": [f"+1415555{1000 + i:04d}"],
            "active": True,
            # Every third rep an AE, the others SDRs: role goals have reps to measure.
            "role": "Account Executive" if i % 3 == 2 else "SDR",
            "updated_at": _iso(created),
        }
        rep_rows.append(rep)
        data.entities.append(rep)
        data.entities.append(
            {
                "entity_type": "team_membership",
                "id": f"m-{rep_id}",
                "rep_id": rep_id,
                "team_id": TEAMS[i % len(TEAMS)][0],
                "valid_from": (start - timedelta(days=200)).isoformat(),
                "updated_at": _iso(created),
            }
        )
    # Reps differ on purpose: a few stars, a few at risk, most in between.
    intensity = {r["id"]: rng.choice([0.45, 0.8, 1.0, 1.0, 1.0, 1.2, 1.6]) for r in rep_rows}
    deals_by_rep: dict[str, list[dict[str, Any]]] = {r["id"]: [] for r in rep_rows}
    contacts_by_account: dict[str, list[dict[str, Any]]] = {}
    for a in range(accounts):
        name = f"{COMPANY_A[a % len(COMPANY_A)]} {COMPANY_B[(a // len(COMPANY_A)) % len(COMPANY_B)]} {a // 300 or ''}".strip()
        slug = name.lower().replace(" ", "")
        domains = [f"{slug}.{TLDS[a % len(TLDS)]}"] + ([f"{slug}-group.com"] if a % 3 == 0 else [])
        account_id = f"acc-{a + 1:04d}"
        data.entities.append(
            {
                "entity_type": "account",
                "id": account_id,
                "name": name,
                "domains": domains,
                "updated_at": _iso(created),
            }
        )
        contacts = []
        for c in range(rng.randint(2, 6)):
            first, last = rng.choice(FIRST), rng.choice(LAST)
            contact = {
                "entity_type": "contact",
                "id": f"con-{a + 1:04d}-{c}",
                "name": f"{first} {last}",
                "emails": [f"{first.lower()}.{last.lower()}{c}@{domains[c % len(domains)]}"],
                "phones": [f"+1212{a:03d}{c:04d}"[:12]],
                "account_id": account_id,
                "updated_at": _iso(created),
            }
            contacts.append(contact)
            data.entities.append(contact)
        contacts_by_account[account_id] = contacts
        owner = rep_rows[a % reps]
        for d in range(rng.choice([1, 1, 1, 2])):
            opened = datetime.combine(start - timedelta(days=rng.randint(0, 60)), time(10), UTC)
            closed = rng.random() < 0.25
            won = closed and rng.random() < 0.45
            deal = {
                "entity_type": "deal",
                "id": f"deal-{a + 1:04d}-{d}",
                "name": f"{name} - {['Platform', 'Expansion'][d]}",
                "account_id": account_id,
                "owner_rep_id": owner["id"],
                "stage": ("closed_won" if won else "closed_lost") if closed else rng.choice(STAGES),
                "amount": str(rng.randrange(5, 250) * 1000),
                "is_closed": closed,
                "is_won": won,
                "created_at": _iso(opened),
                "closed_at": _iso(
                    datetime.combine(today - timedelta(days=rng.randint(1, days)), time(17), UTC)
                )
                if closed
                else None,
                "contacts": [
                    {"contact_id": c["id"], "role": rng.choice(["champion", "economic_buyer", "user"])}
                    for c in contacts[: rng.randint(1, len(contacts))]
                ],
                "updated_at": _iso(created + timedelta(days=1)),
            }
            deals_by_rep[owner["id"]].append(deal)
            data.entities.append(deal)
    latest = datetime.combine(today, time(0), UTC)
    seq = 0
    for rep in rep_rows:
        rep_email, rep_phone = rep["emails"][0], rep["phones"][0]
        mine = deals_by_rep[rep["id"]] or [d for ds in deals_by_rep.values() for d in ds][:5]
        for offset in range(days):
            day = start + timedelta(days=offset)
            if day.weekday() >= 5:
                continue
            scale = intensity[rep["id"]] * (0.6 if offset > days - 21 and intensity[rep["id"]] < 0.5 else 1.0)
            for _ in range(int(rng.gauss(10, 3) * scale)):
                deal = rng.choice(mine)
                contact = rng.choice(contacts_by_account[deal["account_id"]])
                seq += 1
                moment = datetime.combine(day, time(rng.randint(13, 22), rng.randint(0, 59)), UTC)
                roll = rng.random()
                outcome = (
                    "connected"
                    if roll < 0.3
                    else "voicemail"
                    if roll < 0.55
                    else "no_answer"
                    if roll < 0.9
                    else "busy"
                )
                data.activities.append(
                    {
                        "source": "dialer",
                        "external_id": f"call-{seq}",
                        "kind": "call",
                        "direction": "outbound",
                        "outcome": outcome,
                        "occurred_at": _iso(moment),
                        "duration_seconds": rng.randint(20, 900) if outcome == "connected" else 0,
                        "participants": [
                            {"phone": rep_phone, "role": "caller", "email": rep_email},
                            {"phone": contact["phones"][0], "role": "callee", "name": contact["name"]},
                        ],
                    }
                )
            for _ in range(int(rng.gauss(7, 2) * scale)):
                deal = rng.choice(mine)
                contact = rng.choice(contacts_by_account[deal["account_id"]])
                seq += 1
                thread = f"thread-{seq}"
                moment = datetime.combine(day, time(rng.randint(13, 22), rng.randint(0, 59)), UTC)
                data.activities.append(
                    {
                        "source": "mail",
                        "external_id": f"msg-{seq}",
                        "kind": "email",
                        "direction": "outbound",
                        "outcome": "sent",
                        "occurred_at": _iso(moment),
                        "thread_id": thread,
                        "participants": [
                            {"email": rep_email, "role": "from"},
                            {"email": contact["emails"][0], "role": "to"},
                        ],
                    }
                )
                if rng.random() < 0.3:
                    seq += 1
                    data.activities.append(
                        {
                            "source": "mail",
                            "external_id": f"msg-{seq}",
                            "kind": "email",
                            "direction": "inbound",
                            "outcome": "received",
                            # A reply never lies in the future, even for yesterday's last emails.
                            "occurred_at": _iso(min(moment + timedelta(hours=rng.randint(1, 30)), latest)),
                            "thread_id": thread,
                            "participants": [
                                {"email": contact["emails"][0], "role": "from"},
                                {"email": rep_email, "role": "to"},
                            ],
                        }
                    )
            if rng.random() < 0.45 * scale:
                deal = rng.choice(mine)
                contact = rng.choice(contacts_by_account[deal["account_id"]])
                seq += 1
                moment = datetime.combine(day, time(rng.randint(14, 21)), UTC)
                outcome = rng.choices(["held", "scheduled", "cancelled", "no_show"], [0.6, 0.2, 0.12, 0.08])[
                    0
                ]
                data.activities.append(
                    {
                        "source": "calendar",
                        "external_id": f"evt-{seq}",
                        "kind": "meeting",
                        "direction": "outbound",
                        "outcome": outcome,
                        "occurred_at": _iso(moment),
                        "duration_seconds": 1800,
                        "participants": [
                            {"email": rep_email, "role": "organizer"},
                            {"email": contact["emails"][0], "role": "attendee"},
                        ],
                    }
                )
    return data


async def push_demo(
    dataset: DemoDataset,
    ingest_url: str,
    ingest_key: str,
    *,
    progress: bool = False,
    batch_size: int = 1_000,
    concurrency: int = 4,
    crm_landed: Callable[[Sequence[Mapping[str, Any]]], Awaitable[object]] | None = None,
) -> int:
    """Send the dataset through ingest; returns the number of activities accepted.

    ``crm_landed(entities)``, when given, returns once attribution holds the CRM entities sent, so
    the activities are decided with them. Without it (``spm demo`` against an ingest whose
    database it cannot see) the activities stream in at once: those decided before their CRM
    data lands are parked and re-matched when it arrives, and the figures converge a moment later.
    """
    headers = {"Authorization": f"Bearer {ingest_key}"}
    accepted = 0
    async with httpx.AsyncClient(base_url=ingest_url, headers=headers, timeout=60) as client:
        for i in range(0, len(dataset.entities), 500):
            response = await client.post(
                "/v1/crm/sync", json={"source": "demo", "entities": dataset.entities[i : i + 500]}
            )
            response.raise_for_status()
        if crm_landed is not None:
            await crm_landed(dataset.entities)
        batches = [
            dataset.activities[i : i + batch_size] for i in range(0, len(dataset.activities), batch_size)
        ]
        semaphore = asyncio.Semaphore(concurrency)
        with Progress(disable=not progress, transient=False) as bar:
            task = bar.add_task("demo activities", total=len(dataset.activities))

            async def send(batch: list[dict[str, Any]]) -> int:
                async with semaphore:
                    for attempt in range(10):
                        response = await client.post("/v1/events", json={"activities": batch})
                        if response.status_code == 503:
                            await asyncio.sleep(
                                float(response.headers.get("Retry-After", "1")) * (attempt + 1) / 2
                            )
                            continue
                        response.raise_for_status()
                        bar.advance(task, len(batch))
                        return int(response.json()["accepted"])
                    response.raise_for_status()
                    return 0

            for count in await asyncio.gather(*(send(b) for b in batches)):
                accepted += count
    return accepted


async def wait_for_crm(
    tenant_id: str, entities: Sequence[Mapping[str, Any]], deadline_s: float = 60.0
) -> list[str]:
    """Poll DATABASE_URL until attribution holds ``entities`` of ``tenant_id`` or ``deadline_s``
    passes; the entities still missing then (none when all landed)."""
    from libs.common.db.engine import make_engine
    from libs.common.db.references import references_missing
    from libs.common.settings import DatabaseSettings

    engine = make_engine(DatabaseSettings(), "spm-demo")
    try:
        deadline = asyncio.get_running_loop().time() + deadline_s
        while missing := await references_missing(engine, tenant_id, entities):
            if asyncio.get_running_loop().time() >= deadline:
                return missing
            await asyncio.sleep(0.2)
        return []
    finally:
        await engine.dispose()
