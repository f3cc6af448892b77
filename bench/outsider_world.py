"""An outsider's labelled B2B world, sent through the real API and scored from what the gateway answers.

Written from README, docs/api.md, docs/attribution.md and docs/webhooks.md only (not from the
evaluation's world nor from the attribution rules), as an integrator checking the product would:
two tenants (a New York one keeping subjects, a London one that does not), each with reps known to
two or three feeds (the canonical sync, HubSpot owners owning the deals, dialer users), teams and a
mid-quarter move, accounts with domains (a sole trader on Gmail, contacts on personal addresses,
switchboards), contacts typed as people type them (national phone formats, mixed-case emails), deals
over four months with stages, closes and reopens, contact roles added as deals progress, deals that
reach the CRM days after the first activities about them, closes and contacts synced late; emails
(threads, copies, internal mail), dialer calls in E.164 both ways, meetings with attendees.

Every activity is labelled with the deal a careful human would give it from the data sent (the CRM's
final state, the activity's people, subject and thread): a deal, ``no_deal`` (nothing open, internal
work, prospecting), or ``undecidable`` (a deal was meant but nothing sent tells which: a switchboard
call while two deals are open, an unknown person writing while two are open). Rep and team are the
person doing the work and her team on the tenant-local day.

    python -m bench.outsider_world --activities 3000 [--seed 7]

Readings: *credited* (only ``attributed`` activities give a deal; one given to a ``no_deal`` or
``undecidable`` activity is wrong) and *deal_id* (the primary each activity carries, ambiguous
ones included; ``undecidable`` activities left out of its precision). Rep accuracy counts a rep
right when the id is the person's id that ``GET /v1/reps`` lists (one per person).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast
from zoneinfo import ZoneInfo

import httpx
import orjson

from bench.common import post_retrying
from libs.common.contracts.activities import activity_id_for

if TYPE_CHECKING:
    from bench.common import Engines

S = TypeVar("S")
GRACE = timedelta(days=14)
START = datetime(2026, 8, 3, tzinfo=UTC)
DAYS = 112
PRODUCTS = ("Analytics", "Payroll", "Security", "Onboarding", "Data Warehouse", "Field Service", "Billing")
FIRST = (
    "Ava",
    "Ben",
    "Cleo",
    "Dev",
    "Eli",
    "Fern",
    "Gus",
    "Hana",
    "Ivo",
    "Jun",
    "Kai",
    "Lena",
    "Milo",
    "Nora",
    "Omar",
    "Pia",
    "Quinn",
    "Rosa",
    "Sami",
    "Tess",
    "Uri",
    "Vera",
    "Wes",
    "Xena",
    "Yuri",
    "Zoe",
)
LAST = (
    "Abbott",
    "Baker",
    "Chen",
    "Dorsey",
    "Estrada",
    "Fischer",
    "Garcia",
    "Hughes",
    "Ito",
    "Jensen",
    "Kowalski",
    "Lindqvist",
    "Moreau",
    "Nakamura",
    "Okafor",
    "Patel",
    "Quist",
    "Reyes",
    "Silva",
    "Tanaka",
)
COMPANIES = (
    "Acorn",
    "Birchway",
    "Cobalt",
    "Dunmore",
    "Elmstead",
    "Foxglove",
    "Granite",
    "Harbor",
    "Ironwood",
    "Juniper",
    "Keystone",
    "Larkspur",
    "Meridian",
    "Northgate",
    "Oakridge",
    "Pinecrest",
    "Quarry",
    "Redwood",
    "Summit",
    "Tidewater",
    "Upland",
    "Vantage",
    "Westbrook",
    "Yarrow",
    "Zenith",
    "Alder",
    "Bramble",
    "Cedar",
    "Driftwood",
    "Ember",
    "Fallow",
    "Glen",
    "Heath",
    "Indigo",
)


# ---------------------------------------------------------------------------------------- world


@dataclass
class Rep:
    key: str  # the canonical id, the person
    name: str
    email: str
    line: str  # direct line, E.164
    team_spells: list[tuple[date, date | None, str]]
    hubspot_id: str | None = None
    dialer_id: str | None = None
    dialer_only_line: bool = False  # the canonical record lists no phone: only the dialer user knows it

    def team_on(self, day: date) -> str | None:
        for start, end, team in self.team_spells:
            if start <= day and (end is None or day < end):
                return team
        return None


@dataclass
class Contact:
    key: str
    account: str
    name: str
    email: str  # as the CRM holds it (mixed case)
    phones_typed: list[str]  # as typed into the CRM
    phones: list[str]  # E.164
    visible_at: datetime  # when the CRM learns of her


@dataclass
class Deal:
    key: str
    account: str
    owner: str  # person key
    product: str
    name: str
    created: datetime
    visible_at: datetime
    date_only: bool = False  # the CRM keeps its creation as a day
    roles: list[tuple[str, datetime]] = field(default_factory=list)  # (contact, when the role was added)
    #: (at, is_closed, is_won): the deal's state changes after its creation
    changes: list[tuple[datetime, bool, bool]] = field(default_factory=list)
    #: (start, end) spans when people work on it
    live: list[tuple[datetime, datetime]] = field(default_factory=list)

    def closed_final(self) -> datetime | None:
        if self.changes and self.changes[-1][1]:
            return self.changes[-1][0]
        return None


@dataclass
class Account:
    key: str
    name: str
    domains: list[str]
    owner: str
    switchboard: tuple[str, str] | None = None  # (as typed, E.164), listed on several contacts
    contacts: list[str] = field(default_factory=list)
    deals: list[str] = field(default_factory=list)


@dataclass
class Label:
    deal: str | None
    kind: str  # deal | no_deal | undecidable
    rep: str | None
    team: str | None
    scenario: str
    meant: str | None  # the deal the generator meant, whatever a human can tell


@dataclass
class Send:
    at: datetime
    tenant: str
    kind: str  # crm | events
    source: str
    items: list[dict[str, Any]]


@dataclass
class TenantWorld:
    tenant_id: str
    time_zone: str
    region: str
    internal_domain: str
    keep_subjects: bool
    hubspot_deals: bool
    reps: dict[str, Rep] = field(default_factory=dict)
    teams: dict[str, str] = field(default_factory=dict)
    accounts: dict[str, Account] = field(default_factory=dict)
    contacts: dict[str, Contact] = field(default_factory=dict)
    deals: dict[str, Deal] = field(default_factory=dict)
    sends: list[Send] = field(default_factory=list)
    labels: dict[tuple[str, str], Label] = field(default_factory=dict)

    def local_day(self, at: datetime) -> date:
        return at.astimezone(ZoneInfo(self.time_zone)).date()

    def rep_ids(self, person: str) -> set[str]:
        r = self.reps[person]
        return {x for x in (r.key, r.hubspot_id, r.dialer_id) if x}

    def deal_id(self, deal: Deal) -> str:
        return deal.key


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _mixed_case(rng: random.Random, email: str) -> str:
    local, domain = email.split("@")
    style = rng.random()
    if style < 0.4:
        local = ".".join(p.capitalize() for p in local.split("."))
        domain = domain.capitalize()
    elif style < 0.5:
        local, domain = local.upper(), domain.upper()
    return f"{local}@{domain}"


def _us_phone(rng: random.Random) -> tuple[str, str]:
    area = rng.choice(("212", "415", "312", "617", "303", "512", "206"))
    exchange = str(rng.randint(220, 989))
    line = f"{rng.randint(0, 9999):04d}"
    e164 = f"+1{area}{exchange}{line}"
    typed = rng.choice(
        (
            f"({area}) {exchange}-{line}",
            f"{area}.{exchange}.{line}",
            f"1-{area}-{exchange}-{line}",
            f"{area}-{exchange}-{line}",
            f"+1 {area} {exchange} {line}",
        )
    )
    return typed, e164


def _gb_phone(rng: random.Random) -> tuple[str, str]:
    if rng.random() < 0.5:
        body = f"{rng.randint(3000, 8999)}{rng.randint(0, 9999):04d}"
        e164 = f"+4420{body}"
        typed = rng.choice(
            (f"020 {body[:4]} {body[4:]}", f"(020) {body[:4]} {body[4:]}", f"+44 20 {body[:4]} {body[4:]}")
        )
    else:
        body = f"7{rng.randint(400, 999)}{rng.randint(0, 999999):06d}"
        e164 = f"+44{body}"
        typed = rng.choice(
            (f"0{body[:4]} {body[4:]}", f"0{body[:4]}-{body[4:7]}-{body[7:]}", f"+44 {body[:4]} {body[4:]}")
        )
    return typed, e164


class Builder:
    """Builds one tenant's world: its CRM over time, its activities and their labels."""

    def __init__(self, rng: random.Random, world: TenantWorld, activities: int) -> None:
        self.rng = rng
        self.w = world
        self.n = activities
        self.ext = 0
        self.phone = _us_phone if world.region == "US" else _gb_phone

    # ------------------------------------------------------------------ the organisation
    def organisation(self) -> None:
        rng, w = self.rng, self.w
        teams = ["team-north", "team-south", "team-sdr"]
        for t in teams:
            w.teams[t] = t.split("-")[1].title()
        names = list(zip(rng.sample(FIRST, 9), rng.sample(LAST, 9), strict=True))
        for i, (first, last) in enumerate(names):
            key = f"rep-{first.lower()}"
            line = self.phone(rng)[1]
            team = teams[i % 3]
            rep = Rep(
                key,
                f"{first} {last}",
                f"{first.lower()}.{last.lower()}@{w.internal_domain}",
                line,
                [(date(2026, 1, 1), None, team)],
            )
            if w.hubspot_deals or i % 3 == 0:
                rep.hubspot_id = str(7700 + i)
            if i % 2 == 0:
                rep.dialer_id = f"ac-{100 + i}"
                rep.dialer_only_line = i % 4 == 0
            w.reps[key] = rep
        mover = w.reps[next(iter(w.reps))]
        move_day = (START + timedelta(days=55)).date()
        old = mover.team_spells[0][2]
        new = next(t for t in teams if t != old and t != "team-sdr")
        mover.team_spells = [(date(2026, 1, 1), move_day, old), (move_day, None, new)]

    def sellers(self) -> list[str]:
        return [k for k, r in self.w.reps.items() if r.team_spells[-1][2] != "team-sdr"]

    def sdrs(self) -> list[str]:
        return [k for k, r in self.w.reps.items() if r.team_spells[-1][2] == "team-sdr"]

    # ------------------------------------------------------------------ accounts and contacts
    def accounts(self, count: int) -> None:
        rng, w = self.rng, self.w
        tld = ".com" if w.region == "US" else ".co.uk"
        for i, company in enumerate(rng.sample(COMPANIES, count)):
            key = f"acc-{company.lower()}"
            slug = company.lower()
            domains = [f"{slug}{rng.choice(('', 'corp', 'group', 'hq'))}{tld}"]
            if i % 9 == 4:
                domains.append(f"{slug}.io")
            if i == 0:
                domains = []  # a sole trader: his mail is on Gmail
            acc = Account(
                key, company + rng.choice(("", " Inc", " Ltd", " Group")), domains, rng.choice(self.sellers())
            )
            if i % 4 == 1:
                acc.switchboard = self.phone(rng)
            w.accounts[key] = acc
            for _ in range(rng.randint(3, 6)):
                self.contact(acc)

    def contact(self, acc: Account) -> Contact:
        rng, w = self.rng, self.w
        first, last = rng.choice(FIRST), rng.choice(LAST)
        key = f"con-{len(w.contacts) + 1}"
        if not acc.domains or rng.random() < 0.1:
            email = f"{first.lower()}{last.lower()}{rng.randint(1, 99)}@{rng.choice(('gmail.com', 'outlook.com', 'yahoo.com'))}"
        else:
            email = f"{first.lower()}.{last.lower()}@{acc.domains[0]}"
        typed: list[str] = []
        phones: list[str] = []
        if rng.random() < 0.8:
            t, e = self.phone(rng)
            typed.append(t)
            phones.append(e)
        if acc.switchboard and rng.random() < 0.6:
            typed.append(acc.switchboard[0])
            phones.append(acc.switchboard[1])
        visible = START - timedelta(days=30)
        c = Contact(key, acc.key, f"{first} {last}", _mixed_case(rng, email), typed, phones, visible)
        w.contacts[key] = c
        acc.contacts.append(key)
        return c

    # ------------------------------------------------------------------ deals
    def deals(self) -> None:
        rng, w = self.rng, self.w
        end = START + timedelta(days=DAYS)
        for acc in w.accounts.values():
            if rng.random() < 0.15:
                continue  # an account nobody sells to this quarter
            at = START - timedelta(days=rng.randint(0, 60))
            products = rng.sample(PRODUCTS, 3)
            for n in range(rng.randint(1, 3)):
                created = at + timedelta(days=rng.randint(0, 40), hours=rng.randint(13, 21))
                if created >= end - timedelta(days=5):
                    break
                key = f"deal-{len(w.deals) + 1}" if not w.hubspot_deals else str(90_000 + len(w.deals) + 1)
                owner = acc.owner if rng.random() < 0.8 else rng.choice(self.sellers())
                product = products[n]
                late = created >= START and rng.random() < 0.25
                visible = created + timedelta(days=rng.randint(3, 9) if late else 0, hours=rng.randint(0, 3))
                date_only = rng.random() < 0.3
                if date_only:
                    created = datetime(created.year, created.month, created.day, tzinfo=UTC)
                d = Deal(
                    key,
                    acc.key,
                    owner,
                    product,
                    f"{acc.name.split()[0]} - {product}",
                    created,
                    visible,
                    date_only,
                )
                self.roles(d, acc)
                life_end = created + timedelta(days=rng.randint(25, 90))
                pre = created - timedelta(days=rng.randint(1, 6)) if created >= START else created
                if life_end < end and rng.random() < 0.7:
                    won = rng.random() < 0.5
                    d.changes.append((life_end, True, won))
                    d.live.append((pre, life_end))
                    if not won and rng.random() < 0.25:
                        back = life_end + timedelta(days=rng.randint(6, 20))
                        if back < end:
                            d.changes.append((back, False, False))
                            close2 = back + timedelta(days=rng.randint(15, 50))
                            if close2 < end:
                                d.changes.append((close2, True, rng.random() < 0.6))
                                d.live.append((back, close2))
                            else:
                                d.live.append((back, end))
                else:
                    d.live.append((pre, end))
                w.deals[key] = d
                acc.deals.append(key)
                at = created + timedelta(days=rng.randint(10, 50))

    def roles(self, d: Deal, acc: Account) -> None:
        rng = self.rng
        busy = {c for other in acc.deals for c, _ in self.w.deals[other].roles}
        free = [c for c in acc.contacts if c not in busy] or acc.contacts
        if rng.random() < 0.75:
            pool = free if rng.random() < 0.8 else acc.contacts
            for c in rng.sample(pool, min(len(pool), rng.randint(1, 2))):
                d.roles.append((c, d.created))
            if rng.random() < 0.25:
                rest = [c for c in acc.contacts if c not in {x for x, _ in d.roles}]
                if rest:
                    d.roles.append((rng.choice(rest), d.created + timedelta(days=rng.randint(5, 20))))

    # ------------------------------------------------------------------ CRM versions
    def deal_version(self, d: Deal, at: datetime) -> dict[str, Any]:
        closed, won = False, False
        closed_at: datetime | None = None
        for when, is_closed, is_won in d.changes:
            if when <= at:
                closed, won, closed_at = is_closed, is_won, when if is_closed else None
        stages = ("Discovery", "Demo", "Proposal", "Negotiation")
        stage = (
            stages[min(3, int((at - d.created).days // 12))]
            if not closed
            else ("Closed Won" if won else "Closed Lost")
        )
        owner = self.w.reps[d.owner]
        entity: dict[str, Any] = {
            "entity_type": "deal",
            "id": d.key,
            "name": d.name,
            "account_id": d.account,
            "owner_rep_id": owner.hubspot_id if self.w.hubspot_deals else owner.key,
            "stage": stage,
            "amount": str(self.rng.randint(5, 200) * 1000),
            "is_closed": closed,
            "is_won": won,
            "created_at": d.created.date().isoformat() if d.date_only else _iso(d.created),
            "closed_at": _iso(closed_at) if closed_at else None,
            "contacts": [
                {"contact_id": c, "role": self.rng.choice(("Champion", "Decision Maker", "Influencer"))}
                for c, when in d.roles
                if when <= at
            ],
            "updated_at": _iso(at),
        }
        return entity

    def contact_entity(self, c: Contact) -> dict[str, Any]:
        return {
            "entity_type": "contact",
            "id": c.key,
            "name": c.name,
            "emails": [c.email],
            "phones": c.phones_typed,
            "account_id": c.account,
            "updated_at": _iso(c.visible_at),
        }

    def crm(self) -> None:
        """The initial load, then every later change sent when it reaches the sync (some late)."""
        rng, w = self.rng, self.w
        t0 = START - timedelta(days=1)
        org: list[dict[str, Any]] = [
            {"entity_type": "team", "id": t, "name": n, "updated_at": _iso(t0 - timedelta(days=200))}
            for t, n in w.teams.items()
        ]
        hub: list[dict[str, Any]] = []
        for r in w.reps.values():
            rep_phones = [] if r.dialer_only_line else [r.line if rng.random() < 0.5 else _national(r.line)]
            org.append(
                {
                    "entity_type": "rep",
                    "id": r.key,
                    "name": r.name,
                    "emails": [r.email],
                    "phones": rep_phones,
                    "updated_at": _iso(t0 - timedelta(days=100)),
                }
            )
            if r.hubspot_id:
                hub.append(
                    {
                        "entity_type": "rep",
                        "id": r.hubspot_id,
                        "name": r.name,
                        "emails": [_mixed_case(rng, r.email)],
                        "updated_at": _iso(t0 - timedelta(days=90)),
                    }
                )
            for i, (start, end, team) in enumerate(r.team_spells):
                entity = {
                    "entity_type": "team_membership",
                    "id": f"m-{r.key}-{i}",
                    "rep_id": r.key,
                    "team_id": team,
                    "valid_from": start.isoformat(),
                    "valid_to": None,
                    "updated_at": _iso(t0 - timedelta(days=100)),
                }
                if i == 0 and end is None:
                    org.append(entity)
                elif i == 0 and end is not None:
                    org.append(entity)
                    moved = datetime(end.year, end.month, end.day, 15, tzinfo=UTC)
                    ended = {**entity, "valid_to": end.isoformat(), "updated_at": _iso(moved)}
                    new = {
                        **entity,
                        "id": f"m-{r.key}-1",
                        "team_id": r.team_spells[1][2],
                        "valid_from": end.isoformat(),
                        "updated_at": _iso(moved),
                    }
                    self.send(moved + timedelta(days=4), "crm", "crm", [ended, new])
        accounts = [
            {
                "entity_type": "account",
                "id": a.key,
                "name": a.name,
                "domains": a.domains,
                "updated_at": _iso(t0 - timedelta(days=120)),
            }
            for a in w.accounts.values()
        ]
        self.send(t0, "crm", "crm", org)
        if hub:
            self.send(t0 + timedelta(minutes=1), "crm", "hubspot", hub)
        deal_source = "hubspot" if w.hubspot_deals else "crm"
        self.send(t0 + timedelta(minutes=2), "crm", deal_source, accounts)
        early = [self.contact_entity(c) for c in w.contacts.values() if c.visible_at <= t0]
        self.send(t0 + timedelta(minutes=3), "crm", deal_source, early)
        for c in w.contacts.values():
            if c.visible_at > t0:
                self.send(
                    c.visible_at + timedelta(hours=rng.randint(0, 30)),
                    "crm",
                    deal_source,
                    [self.contact_entity(c)],
                )
        for d in w.deals.values():
            first = max(d.visible_at, t0 + timedelta(minutes=4))
            self.send(
                first, "crm", deal_source, [self.deal_version(d, max(d.created, min(d.visible_at, t0)))]
            )
            moments = sorted(
                {when for _, when in d.roles if when > d.created} | {when for when, _, _ in d.changes}
            )
            for when in moments:
                lag = (
                    timedelta(days=rng.randint(2, 6))
                    if rng.random() < 0.25
                    else timedelta(hours=rng.randint(0, 4))
                )
                self.send(max(when, first) + lag, "crm", deal_source, [self.deal_version(d, when)])
        for r in w.reps.values():
            if r.dialer_id:
                dial_user = {
                    "entity_type": "rep",
                    "id": r.dialer_id,
                    "name": r.name,
                    "emails": [r.email],
                    "phones": [r.line],
                    "updated_at": _iso(START + timedelta(days=9)),
                }
                self.send(START + timedelta(days=9, hours=2), "crm", "aircall", [dial_user])

    def send(self, at: datetime, kind: str, source: str, items: list[dict[str, Any]]) -> None:
        self.w.sends.append(Send(at, self.w.tenant_id, kind, source, items))

    # ------------------------------------------------------------------ activities
    def activities(self) -> None:
        rng = self.rng
        scenarios = (
            ("deal_email", 30),
            ("deal_call", 22),
            ("deal_meeting", 12),
            ("internal_email", 6),
            ("internal_meeting", 4),
            ("prospecting", 8),
            ("unknown_at_account", 6),
            ("late_contact", 5),
            ("switchboard_call", 4),
            ("inbound_call", 3),
        )
        names = [s for s, _ in scenarios]
        weights = [w for _, w in scenarios]
        made = 0
        while made < self.n:
            made += getattr(self, f"_{rng.choices(names, weights)[0]}")()

    def _at(self) -> datetime:
        day = START + timedelta(days=self.rng.randint(0, DAYS - 1))
        return day + timedelta(hours=self.rng.randint(13, 22), minutes=self.rng.randint(0, 59))

    def _live_deal(self) -> tuple[Deal, datetime] | None:
        d = self.w.deals[self.rng.choice(list(self.w.deals))]
        start, end = self.rng.choice(d.live)
        span = (end - start).total_seconds()
        if span <= 3600:
            return None
        at = start + timedelta(seconds=self.rng.uniform(0, span))
        if at < START or at > START + timedelta(days=DAYS):
            return None
        return d, at.replace(second=0, microsecond=0)

    def _live_deal_at_domains(self) -> tuple[Deal, datetime, Account] | None:
        """A live deal and a moment of it, at an account with mail domains."""
        got = self._live_deal()
        if not got:
            return None
        d, at = got
        acc = self.w.accounts[d.account]
        return (d, at, acc) if acc.domains else None

    def _worker(self, d: Deal) -> str:
        if self.rng.random() < 0.85:
            return d.owner
        return self.rng.choice(self.sdrs())

    def _buyer(self, d: Deal, at: datetime, need_phone: bool = False) -> Contact | None:
        acc = self.w.accounts[d.account]
        on_deal = [c for c, when in d.roles]
        pool = on_deal if on_deal and self.rng.random() < 0.75 else acc.contacts
        pool = [c for c in pool if self.w.contacts[c].visible_at <= at + timedelta(days=20)]
        if need_phone:
            pool = [c for c in pool if self.w.contacts[c].phones and self.w.contacts[c].phones[0] != _sb(acc)]
        if not pool:
            return None
        return self.w.contacts[self.rng.choice(pool)]

    def _subject(self, d: Deal | None, share: float) -> str:
        if d is not None and self.rng.random() < share:
            return self.rng.choice(
                (f"{d.product} - pricing", f"Re: {d.product} rollout", f"{d.name} next steps")
            )
        return self.rng.choice(
            ("Quick question", "Following up", "Checking in", "Notes from today", "Next week")
        )

    def _ext(self, prefix: str) -> str:
        self.ext += 1
        return f"{prefix}-{self.w.tenant_id}-{self.ext}"

    def _email(
        self,
        scenario: str,
        at: datetime,
        rep: str,
        to: list[str],
        cc: list[str],
        *,
        inbound: bool = False,
        subject: str = "",
        thread: str | None = None,
        meant: str | None = None,
        sender: str | None = None,
    ) -> str:
        r = self.w.reps[rep]
        if inbound:
            parts = [{"email": sender, "role": "from"}, {"email": _typed(self.rng, r.email), "role": "to"}]
        else:
            parts = [{"email": _typed(self.rng, r.email), "name": r.name, "role": "from"}]
            parts += [{"email": _typed(self.rng, a), "role": "to"} for a in to]
        parts += [{"email": _typed(self.rng, a), "role": "cc"} for a in cc]
        ext = self._ext("mail")
        thread_id = thread or f"thr-{ext}"
        item: dict[str, Any] = {
            "source": "mailbox",
            "external_id": ext,
            "kind": "email",
            "direction": "inbound" if inbound else "outbound",
            "outcome": "received" if inbound else "sent",
            "occurred_at": _iso(at),
            "participants": parts,
            "thread_id": thread_id,
            "subject": subject if self.w.keep_subjects else None,
        }
        self._activity(at + timedelta(minutes=self.rng.randint(1, 20)), item, rep, scenario, meant)
        return thread_id

    def _activity(
        self, sent: datetime, item: dict[str, Any], rep: str, scenario: str, meant: str | None
    ) -> None:
        self.send(sent, "events", "events", [item])
        at = datetime.fromisoformat(item["occurred_at"])
        team = self.w.reps[rep].team_on(self.w.local_day(at))
        self.w.labels[(item["source"], item["external_id"])] = Label(
            None, "pending", rep, team, scenario, meant
        )
        self.pending.append((item, meant))

    pending: list[tuple[dict[str, Any], str | None]]

    def _deal_email(self) -> int:
        got = self._live_deal()
        if not got:
            return 0
        d, at = got
        buyer = self._buyer(d, at)
        if buyer is None:
            return 0
        rep = self._worker(d)
        acc = self.w.accounts[d.account]
        cc = []
        others = [c for c in acc.contacts if c != buyer.key and self.w.contacts[c].visible_at <= at]
        if others and self.rng.random() < 0.2:
            cc.append(self.w.contacts[self.rng.choice(others)].email)
        if self.rng.random() < 0.1:
            cc.append(self.w.reps[self.rng.choice([k for k in self.w.reps if k != rep])].email)
        subject = self._subject(d, 0.4)
        thread = self._email("deal_email", at, rep, [buyer.email], cc, subject=subject, meant=d.key)
        made = 1
        if self.rng.random() < 0.3:
            reply_at = at + timedelta(hours=self.rng.randint(3, 72))
            who = buyer.email
            if cc and self.rng.random() < 0.4 and "@" + self.w.internal_domain not in cc[0]:
                who = cc[0]
            self._email(
                "reply",
                reply_at,
                rep,
                [],
                [],
                inbound=True,
                subject=f"Re: {subject}",
                thread=thread,
                meant=d.key,
                sender=_typed(self.rng, who),
            )
            made += 1
        return made

    def _late_contact(self) -> int:
        """A new person at the account the rep starts writing to; the CRM gets her days later."""
        got = self._live_deal_at_domains()
        if not got:
            return 0
        d, at, acc = got
        c = self.contact(acc)
        c.visible_at = at + timedelta(days=self.rng.randint(2, 8))
        if self.rng.random() < 0.6:
            d.roles.append((c.key, c.visible_at))
        rep = self._worker(d)
        made = 0
        for k in range(self.rng.randint(1, 3)):
            self._email(
                "late_contact",
                at + timedelta(days=k, hours=k),
                rep,
                [c.email],
                [],
                subject=self._subject(d, 0.3),
                meant=d.key,
            )
            made += 1
        return made

    def _deal_call(self, inbound: bool = False, scenario: str = "deal_call") -> int:
        got = self._live_deal()
        if not got:
            return 0
        d, at = got
        buyer = self._buyer(d, at, need_phone=True)
        if buyer is None:
            return 0
        return self._call(scenario, at, self._worker(d), buyer.phones[0], inbound, d.key)

    def _inbound_call(self) -> int:
        return self._deal_call(inbound=True, scenario="inbound_call")

    def _switchboard_call(self) -> int:
        got = self._live_deal()
        if not got:
            return 0
        d, at = got
        sb = _sb(self.w.accounts[d.account])
        if sb is None:
            return 0
        return self._call("switchboard_call", at, self._worker(d), sb, False, d.key)

    def _call(
        self, scenario: str, at: datetime, rep: str, phone: str, inbound: bool, meant: str | None
    ) -> int:
        r = self.w.reps[rep]
        outcome = self.rng.choices(("connected", "no_answer", "voicemail"), (6, 3, 2))[0]
        me = {"phone": r.line, "role": "callee" if inbound else "caller"}
        them = {"phone": phone, "role": "caller" if inbound else "callee"}
        item = {
            "source": "aircall",
            "external_id": self._ext("call"),
            "kind": "call",
            "direction": "inbound" if inbound else "outbound",
            "outcome": outcome,
            "occurred_at": _iso(at),
            "duration_seconds": self.rng.randint(60, 1500) if outcome == "connected" else 0,
            "participants": [them, me] if inbound else [me, them],
        }
        self._activity(at + timedelta(seconds=self.rng.randint(30, 300)), item, rep, scenario, meant)
        return 1

    def _deal_meeting(self) -> int:
        got = self._live_deal()
        if not got:
            return 0
        d, at = got
        rep = self._worker(d)
        acc = self.w.accounts[d.account]
        on = [c for c, _ in d.roles if self.w.contacts[c].visible_at <= at]
        pool = (
            on
            if on and self.rng.random() < 0.8
            else [c for c in acc.contacts if self.w.contacts[c].visible_at <= at]
        )
        if not pool:
            return 0
        attendees = self.rng.sample(pool, min(len(pool), self.rng.randint(1, 3)))
        parts: list[dict[str, Any]] = [
            {
                "email": _typed(self.rng, self.w.reps[rep].email),
                "role": "organizer",
                "response_status": "accepted",
            }
        ]
        if self.rng.random() < 0.25:
            other = self.rng.choice([k for k in self.w.reps if k != rep])
            parts.append({"email": self.w.reps[other].email, "role": "attendee"})
        for c in attendees:
            status = self.rng.choices(("accepted", "tentative", "needs_action"), (7, 1, 1))[0]
            parts.append(
                {
                    "email": _typed(self.rng, self.w.contacts[c].email),
                    "role": "attendee",
                    "response_status": status,
                }
            )
        item = {
            "source": "calendar",
            "external_id": self._ext("mtg"),
            "kind": "meeting",
            "direction": "outbound",
            "outcome": self.rng.choices(("held", "cancelled", "no_show"), (8, 1, 1))[0],
            "occurred_at": _iso(at),
            "duration_seconds": self.rng.choice((1800, 2700, 3600)),
            "participants": parts,
            "subject": self._subject(d, 0.6) if self.w.keep_subjects else None,
            "ical_uid": f"{uuid.UUID(int=self.rng.getrandbits(128))}@calendar",
        }
        self._activity(at + timedelta(hours=self.rng.randint(1, 6)), item, rep, "deal_meeting", d.key)
        return 1

    def _internal_email(self) -> int:
        a, b = self.rng.sample(list(self.w.reps), 2)
        self._email("internal_email", self._at(), a, [self.w.reps[b].email], [], subject="Pipeline review")
        return 1

    def _internal_meeting(self) -> int:
        people = self.rng.sample(list(self.w.reps), 3)
        at = self._at()
        item: dict[str, Any] = {
            "source": "calendar",
            "external_id": self._ext("mtg"),
            "kind": "meeting",
            "direction": "internal",
            "outcome": "held",
            "occurred_at": _iso(at),
            "duration_seconds": 1800,
            "participants": [{"email": self.w.reps[people[0]].email, "role": "organizer"}]
            + [{"email": self.w.reps[p].email, "role": "attendee"} for p in people[1:]],
            "subject": "Forecast call" if self.w.keep_subjects else None,
        }
        self._activity(
            at + timedelta(hours=1),
            item,
            people[0],
            "internal_meeting",
            None,
        )
        return 1

    def _prospecting(self) -> int:
        """Cold mail to someone the CRM does not know: a new company, or an account with nothing open."""
        rep = self.rng.choice(self.sdrs() + self.sellers())
        at = self._at()
        quiet = [a for a in self.w.accounts.values() if a.domains and not self._open_deals(a, at)]
        if quiet and self.rng.random() < 0.5:
            domain = self.rng.choice(quiet).domains[0]
        else:
            domain = f"{self.rng.choice(COMPANIES).lower()}{self.rng.randint(10, 99)}.com"
        to = f"{self.rng.choice(FIRST).lower()}@{domain}"
        self._email("prospecting", at, rep, [to], [], subject="Introduction")
        return 1

    def _unknown_at_account(self) -> int:
        """Someone the CRM does not list at an account with a deal open writes to its owner."""
        got = self._live_deal_at_domains()
        if not got:
            return 0
        d, at, acc = got
        sender = f"{self.rng.choice(FIRST).lower()}.{self.rng.choice(LAST).lower()}@{acc.domains[-1]}"
        self._email(
            "unknown_at_account",
            at,
            d.owner,
            [],
            [],
            inbound=True,
            subject=self._subject(d, 0.3),
            meant=d.key,
            sender=sender,
        )
        return 1

    def _open_deals(self, acc: Account, at: datetime) -> list[Deal]:
        return [self.w.deals[k] for k in acc.deals if _candidate(self.w.deals[k], at)]


def _national(e164: str) -> str:
    if e164.startswith("+1"):
        return f"({e164[2:5]}) {e164[5:8]}-{e164[8:]}"
    return "0" + e164[3:]


def _typed(rng: random.Random, email: str) -> str:
    """How a mail client writes an address: mostly lower case, sometimes as the address book has it."""
    return email if rng.random() < 0.3 else email.lower()


def _sb(acc: Account) -> str | None:
    return acc.switchboard[1] if acc.switchboard else None


def _candidate(d: Deal, at: datetime) -> bool:
    """A deal a person would consider for an activity at ``at``, on the CRM's final state."""
    closed = d.closed_final()
    return d.created - GRACE <= at and (closed is None or at <= closed + GRACE)


def _live(d: Deal, at: datetime) -> bool:
    closed = d.closed_final()
    return d.created <= at and (closed is None or at <= closed)


# ---------------------------------------------------------------------------------------- labels


class Human:
    """A careful human labelling an activity from the data sent (the CRM's final state)."""

    def __init__(self, w: TenantWorld) -> None:
        self.w = w
        self.by_email: dict[str, list[Contact]] = {}
        for c in w.contacts.values():
            self.by_email.setdefault(c.email.lower(), []).append(c)  # a duplicate record: both
        holders: dict[str, list[Contact]] = {}
        for c in w.contacts.values():
            for p in c.phones:
                holders.setdefault(p, []).append(c)
        self.by_phone = holders
        self.domain = {d: a for a in w.accounts.values() for d in a.domains}
        self.rep_addresses = {r.email for r in w.reps.values()} | {r.line for r in w.reps.values()}
        self.threads: dict[str, str | None] = {}

    def label(self, item: dict[str, Any], meant: str | None) -> tuple[str | None, str]:
        at = datetime.fromisoformat(item["occurred_at"])
        people: list[tuple[Contact | None, Account | None, bool]] = []
        for p in item["participants"]:
            who = (p.get("email") or p.get("phone") or "").lower()
            if who in self.rep_addresses or who.endswith("@" + self.w.internal_domain):
                continue
            copied = p["role"] in ("cc", "bcc")
            if "@" in who and who in self.by_email:
                people += [(c, self.w.accounts[c.account], copied) for c in self.by_email[who]]
            elif "@" in who:
                people.append((None, self.domain.get(who.split("@")[1]), copied))
            else:
                holders = self.by_phone.get(who, [])
                if len(holders) == 1:
                    people.append((holders[0], self.w.accounts[holders[0].account], copied))
                elif holders:
                    people.append((None, self.w.accounts[holders[0].account], copied))
        if not people:
            return None, "no_deal"
        deal, kind = self._decide(item, at, people)
        thread = item.get("thread_id")
        if thread:
            earlier = self.threads.get(thread)
            if deal is None and kind == "undecidable" and earlier:
                deal, kind = earlier, "deal"
            self.threads.setdefault(thread, deal)
        return deal, kind

    def _decide(
        self, item: dict[str, Any], at: datetime, people: list[tuple[Contact | None, Account | None, bool]]
    ) -> tuple[str | None, str]:
        accounts = {a.key for _, a, _ in people if a}
        cands = [self.w.deals[k] for a in accounts for k in self.w.accounts[a].deals]
        cands = [d for d in cands if _candidate(d, at)]
        if not cands:
            return None, "no_deal"
        main = {c.key for c, _, copied in people if c and not copied}
        roled = [d for d in cands if main & {x for x, _ in d.roles}]
        pool = roled or cands
        subject = (item.get("subject") or "").lower()
        if len(pool) == 1:
            # The one written to is on one deal, the subject names another: a person reads the
            # subject (contact roles are a partial record; the subject says what it is about).
            named_elsewhere = [d for d in cands if d is not pool[0] and d.product.lower() in subject]
            return (named_elsewhere[0] if len(named_elsewhere) == 1 else pool[0]).key, "deal"
        # Everyone there on one deal, some of them also on another: the deal they all share.
        covering = [d for d in roled if main & {x for x, _ in d.roles} == main]
        if len(covering) == 1:
            return covering[0].key, "deal"
        named = [d for d in pool if d.product.lower() in subject]
        if len(named) == 1:
            return named[0].key, "deal"
        owned = self._owned(item, pool)
        # Those copied tell between the deals of those written to, or point at the deal of the
        # colleague copied when the addressee holds no role, unless the rep's own deal says otherwise.
        copied = {c.key for c, _, cc in people if c and cc}
        by_copied = [d for d in pool if copied & {x for x, _ in d.roles}]
        if len(by_copied) == 1:
            against_owner = not roled and len(owned) == 1 and owned != by_copied
            return (None, "undecidable") if against_owner else (by_copied[0].key, "deal")
        # A deal open now against one closed before: the open one. Against a deal created within
        # the next week: the activity may be its start, which nothing here tells.
        live = [d for d in pool if _live(d, at)]
        upcoming = [d for d in pool if at < d.created <= at + timedelta(days=7)]
        if len(live) == 1 and not upcoming:
            return live[0].key, "deal"
        owned = self._owned(item, live + upcoming or pool)
        if len(owned) == 1:
            return owned[0].key, "deal"
        return None, "undecidable"

    def _owned(self, item: dict[str, Any], deals: list[Deal]) -> list[Deal]:
        """The deals owned by a rep taking part."""
        emails = {(p.get("email") or "").lower() for p in item["participants"]}
        lines = {p.get("phone") for p in item["participants"]}
        return [
            d for d in deals if self.w.reps[d.owner].email in emails or self.w.reps[d.owner].line in lines
        ]


# ---------------------------------------------------------------------------------------- the world


def build(activities: int, seed: int) -> list[TenantWorld]:
    rng = random.Random(seed)
    worlds = [
        TenantWorld("outsider-ny", "America/New_York", "US", "northwind-sales.com", True, False),
        TenantWorld("outsider-ldn", "Europe/London", "GB", "fabrikam.co.uk", False, True),
    ]
    for i, w in enumerate(worlds):
        b = Builder(rng, w, activities // 2 + (activities % 2 if i == 0 else 0))
        b.pending = []
        b.organisation()
        b.accounts(22)
        b.deals()
        b.activities()
        b.crm()
        human = Human(w)
        for item, meant in sorted(b.pending, key=lambda p: str(p[0]["occurred_at"])):
            deal, kind = human.label(item, meant)
            lab = w.labels[(item["source"], item["external_id"])]
            lab.deal, lab.kind = deal, kind
    return worlds


def batches(worlds: list[TenantWorld], size: int = 50) -> Iterator[Send]:
    """Every send in the order it happens, consecutive activities of a tenant posted together."""
    sends = sorted((s for w in worlds for s in w.sends), key=lambda s: (s.at, s.kind != "crm"))
    pending: Send | None = None
    for s in sends:
        if (
            pending
            and s.kind == "events"
            and pending.kind == "events"
            and pending.tenant == s.tenant
            and len(pending.items) < size
        ):
            pending.items.extend(s.items)
            continue
        if pending:
            yield pending
        pending = Send(s.at, s.tenant, s.kind, s.source, list(s.items))
    if pending:
        yield pending


# ---------------------------------------------------------------------------------------- driving the API


@dataclass
class Clients:
    ingest: httpx.AsyncClient
    gateway: httpx.AsyncClient
    keys: dict[str, dict[str, str]]  # tenant -> scope -> key


async def _post(c: Clients, tenant: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {c.keys[tenant]['ingest']}", "Content-Type": "application/json"}
    return await post_retrying(c.ingest, path, orjson.dumps(body), lambda: headers)


async def configure(c: Clients, worlds: list[TenantWorld]) -> None:
    for w in worlds:
        body = {
            "time_zone": w.time_zone,
            "internal_domains": [w.internal_domain],
            "privacy": {"keep_subjects": w.keep_subjects},
        }
        r = await c.gateway.patch("/v1/settings", json=body, headers=_auth(c, w.tenant_id, "admin"))
        if r.status_code >= 400:
            raise RuntimeError(f"settings: {r.status_code} {r.text}")


def _auth(c: Clients, tenant: str, scope: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {c.keys[tenant][scope]}"}


async def send_all(c: Clients, worlds: list[TenantWorld]) -> Counter[str]:
    told = Counter[str]()
    for s in batches(worlds):
        if s.kind == "crm":
            for i in range(0, len(s.items), 500):
                await sync_crm(c, s.tenant, s.source, s.items[i : i + 500], told)
        else:
            await post_events(c, s.tenant, s.items, told)
    return told


async def sync_crm(
    c: Clients, tenant: str, source: str, entities: list[dict[str, Any]], told: Counter[str]
) -> None:
    """One ``POST /v1/crm/sync``, counted in ``told`` with its warnings."""
    answer = await _post(c, tenant, "/v1/crm/sync", {"source": source, "entities": entities})
    told["crm_requests"] += 1
    told["crm_warnings"] += len(answer.get("warnings", ()))


async def post_events(c: Clients, tenant: str, activities: list[dict[str, Any]], told: Counter[str]) -> None:
    """One ``POST /v1/events``, counted in ``told`` with what it accepted and ignored."""
    answer = await _post(c, tenant, "/v1/events", {"activities": activities})
    told["event_requests"] += 1
    told["accepted"] += int(answer["accepted"])
    told["ignored"] += len(answer.get("ignored", ()))


async def settle(
    c: Clients, worlds: list[TenantWorld], limit_s: float = 1200.0, quiet_polls: int = 4
) -> float:
    """Until every tenant's ``GET /v1/pipeline/status`` says up to date with everything attributed,
    ``quiet_polls`` times in a row."""
    started = time.monotonic()
    quiet = 0
    while True:
        ready = True
        for w in worlds:
            r = await c.gateway.get("/v1/pipeline/status", headers=_auth(c, w.tenant_id, "read"))
            r.raise_for_status()
            body = r.json()
            attributed = next(s for s in body["stages"] if s["stage"] == "attribution")
            if not body["up_to_date"] or attributed["processed"] < len(w.labels):
                ready = False
        quiet = quiet + 1 if ready else 0
        if quiet >= quiet_polls:
            return time.monotonic() - started
        if time.monotonic() - started > limit_s:
            raise TimeoutError(f"pipeline not settled after {limit_s:.0f} s")
        await asyncio.sleep(2.0)


async def read_back(c: Clients, w: TenantWorld) -> tuple[dict[str, dict[str, Any]], set[str]]:
    """Every activity as ``GET /v1/activities`` answers it, and the rep ids ``GET /v1/reps`` lists."""
    found: dict[str, dict[str, Any]] = {}
    for path in ("/v1/activities", "/v1/reps"):
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"limit": 500} | ({"cursor": cursor} if cursor else {})
            r = await c.gateway.get(path, params=params, headers=_auth(c, w.tenant_id, "read"))
            r.raise_for_status()
            page = r.json()
            for item in page["items"]:
                found[item.get("activity_id") or "rep:" + item["rep_id"]] = item
            cursor = page["next_cursor"]
            if not cursor:
                break
    listed = {k[4:] for k in found if k.startswith("rep:")}
    return {k: v for k, v in found.items() if not k.startswith("rep:")}, listed


# ---------------------------------------------------------------------------------------- scoring


@dataclass
class Score:
    activities: int = 0
    labelled_deal: int = 0
    undecidable: int = 0
    attributed: int = 0
    attributed_right: int = 0
    given: int = 0  # deal_id given, undecidable left out
    given_right: int = 0
    deal_id_right: int = 0  # over labelled deals
    rep_right: int = 0
    rep_scored: int = 0
    team_right: int = 0
    missing: int = 0
    deal_misses: Counter[str] = field(default_factory=Counter)
    rep_misses: Counter[str] = field(default_factory=Counter)
    team_misses: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)

    def ratio(self, a: int, b: int) -> float:
        return a / b if b else 1.0

    def figures(self) -> dict[str, float]:
        return {
            "credited_precision": self.ratio(self.attributed_right, self.attributed),
            "credited_recall": self.ratio(self.attributed_right, self.labelled_deal),
            "deal_id_precision": self.ratio(self.given_right, self.given),
            "deal_id_recall": self.ratio(self.deal_id_right, self.labelled_deal),
            "rep_accuracy": self.ratio(self.rep_right, self.rep_scored),
            "team_accuracy": self.ratio(self.team_right, self.rep_scored),
        }


def score(w: TenantWorld, found: dict[str, dict[str, Any]], listed: set[str], s: Score) -> None:
    owner_of = {i: r.key for r in w.reps.values() for i in w.rep_ids(r.key)}
    for (source, ext), lab in w.labels.items():
        s.activities += 1
        got = found.get(str(activity_id_for(w.tenant_id, source, ext)))
        if got is None:
            s.missing += 1
            continue
        status, deal = got["status"], got["deal_id"]
        if lab.kind == "deal":
            s.labelled_deal += 1
        if lab.kind == "undecidable":
            s.undecidable += 1
        if status == "attributed":
            s.attributed += 1
            s.attributed_right += deal == lab.deal and lab.deal is not None
        if deal is not None and lab.kind != "undecidable":
            s.given += 1
            s.given_right += deal == lab.deal
        s.deal_id_right += lab.deal is not None and deal == lab.deal
        cause = _deal_cause(lab, status, deal)
        if cause:
            s.deal_misses[cause] += 1
            s.examples.setdefault(cause, []).append(
                f"{w.tenant_id} {ext} label={lab.deal} got={status}/{deal} conf={got.get('confidence')} path={got.get('rule_path')} runners={got.get('runners_up')}"
            )
        if lab.rep is None or status == "excluded":
            continue
        s.rep_scored += 1
        rep = got["rep_id"]
        if rep is not None and owner_of.get(rep) == lab.rep and rep in listed:
            s.rep_right += 1
        else:
            why = "no rep" if rep is None else "alias id" if owner_of.get(rep) == lab.rep else "other person"
            s.rep_misses[f"{lab.scenario}: {why}"] += 1
            s.examples.setdefault(f"rep {lab.scenario}: {why}", []).append(
                f"{w.tenant_id} {ext} label={lab.rep} got={rep} status={status}"
            )
        if got["team_id"] == lab.team:
            s.team_right += 1
        else:
            s.team_misses[f"{lab.scenario}: {got['team_id']} for {lab.team}"] += 1


def _deal_cause(lab: Label, status: str, deal: str | None) -> str | None:
    if lab.kind == "deal":
        if status == "attributed" and deal == lab.deal:
            return None
        if status == "attributed":
            return f"{lab.scenario}: wrong deal attributed"
        if status == "ambiguous":
            return f"{lab.scenario}: ambiguous ({'primary right' if deal == lab.deal else 'primary wrong'})"
        return f"{lab.scenario}: {status}"
    if status == "attributed":
        return f"{lab.scenario}: attributed a {lab.kind} activity"
    return None


def report(s: Score, told: Counter[str], timings: dict[str, float]) -> str:
    f = s.figures()
    lines = [
        f"activities {s.activities} (labelled with a deal {s.labelled_deal}, undecidable {s.undecidable}), "
        f"missing from the API {s.missing}; sent {dict(told)}; "
        + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items()),
        "",
        "| reading | deal precision | deal recall |",
        "| --- | --- | --- |",
        f"| credited (attributed only) | {f['credited_precision']:.2%} ({s.attributed_right}/{s.attributed}) | "
        f"{f['credited_recall']:.2%} ({s.attributed_right}/{s.labelled_deal}) |",
        f"| deal_id (primary of ambiguous too) | {f['deal_id_precision']:.2%} ({s.given_right}/{s.given}) | "
        f"{f['deal_id_recall']:.2%} ({s.deal_id_right}/{s.labelled_deal}) |",
        "",
        f"rep accuracy {f['rep_accuracy']:.2%} ({s.rep_right}/{s.rep_scored}), "
        f"team accuracy {f['team_accuracy']:.2%} ({s.team_right}/{s.rep_scored})",
        "",
        "deal misses by cause:",
        *(f"  {n:5d}  {cause}" for cause, n in s.deal_misses.most_common()),
        "rep misses by cause:",
        *(f"  {n:5d}  {cause}" for cause, n in s.rep_misses.most_common()),
        "team misses by cause:",
        *(f"  {n:5d}  {cause}" for cause, n in s.team_misses.most_common(15)),
    ]
    return "\n".join(lines)


async def run(
    c: Clients, worlds: list[TenantWorld], save: Path | None = None
) -> tuple[Score, Counter[str], dict[str, float]]:
    """Configures the tenants, sends the world, waits for the pipeline, reads back and scores."""
    return await run_world(c, worlds, save, send_all, score, Score)


async def run_world(
    c: Clients,
    worlds: list[Any],
    save: Path | None,
    send: Callable[[Clients, Any], Awaitable[Counter[str]]],
    score_one: Callable[[Any, dict[str, dict[str, Any]], set[str], S], None],
    new_score: Callable[[], S],
) -> tuple[S, Counter[str], dict[str, float]]:
    """``run`` for any world with a ``tenant_id``, ``time_zone``, ``internal_domain``,
    ``keep_subjects`` and ``labels``: ``send`` posts it, ``score_one`` scores one tenant's answers."""
    await configure(c, worlds)
    started = time.monotonic()
    told = await send(c, worlds)
    posted = time.monotonic() - started
    settled = await settle(c, worlds)
    answers = {w.tenant_id: await read_back(c, w) for w in worlds}
    s = new_score()
    for w in worlds:
        score_one(w, *answers[w.tenant_id], s)
    if save:
        dump = {t: {"found": found, "listed": sorted(listed)} for t, (found, listed) in answers.items()}
        await asyncio.to_thread(save.write_bytes, orjson.dumps(dump))
    return s, told, {"posted": posted, "settled": settled}


def rescore(worlds: list[TenantWorld], saved: Path) -> Score:
    """Scores answers saved by an earlier run (``--save``) against the labels as they are now."""
    return rescore_world(worlds, saved, score, Score)


def rescore_world(
    worlds: list[Any],
    saved: Path,
    score_one: Callable[[Any, dict[str, dict[str, Any]], set[str], S], None],
    new_score: Callable[[], S],
) -> S:
    """``rescore`` for any world, as ``run_world`` is ``run``."""
    dump = orjson.loads(saved.read_bytes())
    s = new_score()
    for w in worlds:
        score_one(w, dump[w.tenant_id]["found"], set(dump[w.tenant_id]["listed"]), s)
    return s


async def _main(eng: Engines, worlds: list[TenantWorld], save: Path | None, runner: Any = None) -> Any:
    """Starts a stack of real processes in a fresh database and topic prefix, creates the worlds'
    tenants (their keys by scope, and each webhook source's secret as ``webhook:<source>``) and
    hands the clients to ``runner`` (this world's ``run`` unless given)."""
    from bench.common import service_env, start_service, stop_services
    from libs.common.db.engine import make_engine
    from libs.common.db.migrate import upgrade
    from libs.common.kafka.clients import create_topics
    from libs.common.settings import DatabaseSettings, KafkaSettings
    from libs.common.tenancy import create_tenant

    database = f"out_{uuid.uuid4().hex[:8]}"
    eng.postgres.psql(f'CREATE DATABASE "{database}"')
    await asyncio.to_thread(upgrade, eng.postgres.url(database))
    engine = make_engine(DatabaseSettings(url=eng.postgres.url(database)), "bench")
    keys: dict[str, dict[str, str]] = {}
    async with engine.begin() as conn:
        for w in worlds:
            made = await create_tenant(conn, w.tenant_id, "bench-secret")
            api_keys = cast(dict[str, str], made["api_keys"])
            secrets = cast(dict[str, str], made["webhook_secrets"])
            keys[w.tenant_id] = api_keys | {f"webhook:{k}": v for k, v in secrets.items()}
    await engine.dispose()
    prefix = f"o{uuid.uuid4().hex[:6]}."
    kafka = KafkaSettings(
        bootstrap_servers=eng.kafka.bootstrap_servers, topic_prefix=prefix, enable_idempotence=False
    )
    await create_topics(kafka, 4)
    env = service_env(eng, database, prefix)
    services = [start_service(n, env, eng.base) for n in ("ingest", "attribution", "metrics", "gateway")]
    try:
        async with (
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{services[0].port}", timeout=120) as ingest,
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{services[3].port}", timeout=120) as gateway,
        ):
            return await (runner or run)(Clients(ingest, gateway, keys), worlds, save)
    finally:
        stop_services(services)


def cli(
    doc: str,
    seed: int,
    build: Callable[[int, int], list[Any]],
    runner: Callable[..., Awaitable[tuple[Any, Counter[str], dict[str, float]]]],
    rescorer: Callable[[list[Any], Path], Any],
    reporter: Callable[[Any, Counter[str], dict[str, float]], str],
) -> None:
    """The command line of an outsider world: build it, run it through a fresh stack (or rescore
    saved answers), print the report and ``--examples`` of each miss."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--activities", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=seed)
    parser.add_argument("--examples", type=int, default=0, help="print this many examples of each miss")
    parser.add_argument("--save", type=Path, help="write the gateway's answers to this file")
    parser.add_argument("--rescore", type=Path, help="score answers saved with --save instead of running")
    args = parser.parse_args()
    from bench.common import engines

    worlds = build(args.activities, args.seed)
    if args.rescore:
        s, told, timings = rescorer(worlds, args.rescore), Counter[str](), {}
    else:
        with engines() as eng:
            s, told, timings = asyncio.run(_main(eng, worlds, args.save, runner))
    print(reporter(s, told, timings))
    if args.examples:
        print("\nexamples:")
        for cause, lines in sorted(s.examples.items()):
            print(f"  {cause}:")
            for line in lines[: args.examples]:
                print(f"    {line}")


def main() -> None:
    cli(__doc__, 7, build, run, rescore, report)


if __name__ == "__main__":
    main()
