"""A second outsider's labelled world, messier than ``bench.outsider_world``: traps real CRMs have.

Written from README, docs/api.md, docs/attribution.md and docs/webhooks.md only, before reading the
services' code; the harness that starts the stack and posts (``bench.outsider_world``) is reused,
the world is not. Two tenants:

* ``messy-ny`` (New York, subjects kept): its CRM through ``POST /v1/crm/sync``; reps from the
  canonical sync and from a dialer's users (``aircall``, the same people's emails upper-cased).
* ``messy-ldn`` (London, no subjects): its CRM through HubSpot's webhook (companies, contacts with
  ``hs_additional_emails``, deals with associations and an expected ``closedate`` on open deals,
  owners; a ``contact.merge`` notification), teams and memberships through the canonical sync for
  the same people under canonical ids.

Each account lives one *episode*, a small story with a trap (see ``TRAPS``); every activity is
labelled with what a careful human decides from the data sent (the CRM's history, the activity's
people, subject and thread): a deal; ``no_deal``; or ``undecidable`` with the deals the data cannot
tell apart (an *honest tie*: the right answer is ``ambiguous`` naming them, a confident pick of one
is a precision error). Rep: the person doing the work (the deal's owner of the day for mail to a
shared inbox); team: her team on the tenant-local day.

    python -m bench.outsider_world_messy --activities 3000 [--seed 21] [--examples 3]
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import random
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from bench.common import post_retrying
from bench.outsider_world import (
    Clients,
    Send,
    _iso,
    batches,
    cli,
    post_events,
    rescore_world,
    run_world,
    sync_crm,
)
from libs.common.contracts.activities import activity_id_for

START = datetime(2026, 8, 3, tzinfo=UTC)
DAYS = 112
LEAVE_DAY = 60
FIRST = ("Ana", "Ben", "Cleo", "Dev", "Eli", "Fay", "Gus", "Hana", "Ivo", "Jude", "Kai", "Lena")
LAST = ("Adams", "Brook", "Castro", "Dunn", "Ebert", "Frost", "Gale", "Hart", "Ito", "Jansen")
BUYERS = (
    "Mia",
    "Noah",
    "Omar",
    "Pia",
    "Quinn",
    "Rosa",
    "Sam",
    "Tara",
    "Uma",
    "Vic",
    "Wes",
    "Xena",
    "Yara",
    "Zed",
)
SURN = ("Lee", "Khan", "Novak", "Silva", "Moreau", "Berg", "Rossi", "Walsh", "Okafor", "Tanaka", "Kowal")
WORDS = (
    "Acme",
    "Globex",
    "Hooli",
    "Vandelay",
    "Umbrella",
    "Stark",
    "Wayne",
    "Tyrell",
    "Cyberdyne",
    "Soylent",
)
PRODUCTS = ("Payroll", "Analytics", "Security suite", "Billing", "Field service", "Data warehouse")
TRAPS = {
    "baseline": "one deal, its champion: mail, calls, meetings",
    "prospecting": "cold mail to an unknown company: no deal",
    "multi_email": "a contact writing from her second (personal) address",
    "national_ext_phone": "a call to a contact's mobile typed nationally beside a line with an extension",
    "shared_main_line": "a call to the main line two contacts list with their extensions, on two deals",
    "dup_before_merge": "a duplicate record of the champion (web form, personal address) before the merge",
    "dup_after_merge": "the same after the CRM merged the duplicate",
    "dup_phone": "a call to the phone both duplicate records list",
    "dup_two_accounts_owner": "one person recorded in two accounts, each on its deal of another rep: the rep writing decides",
    "dup_two_accounts_inbox": "that person writing to the shared inbox: either deal",
    "job_change_before": "a champion's mail before she changed company",
    "job_change_after": "her mail from the new company, on its deal",
    "job_change_late_old_mail": "mail from before the move posted after the move synced",
    "owner_change": "a deal re-assigned mid-life: the new owner's mail",
    "owner_change_inbox": "a buyer writing to the shared inbox: the deal's owner of the day",
    "renamed_subject": "a subject naming a deal by its new name after a rename",
    "renamed_old_subject": "a subject naming a deal by the name it had then, before a rename",
    "renamed_tie": "mail to the contact of both deals, subject naming neither",
    "renamed_roles": "a renamed deal (amount and stage changing) without subjects, told apart by roles",
    "lost_reopen": "a deal closed lost and reopened: mail before, around and after",
    "lost_reopen_gap": "mail while it was closed, past the close grace, before it reopened",
    "moved_deal_role": "a deal moved to a subsidiary account: its contact's mail",
    "moved_deal_unknown": "someone unknown at the parent after the move: the parent's remaining deal",
    "late_deal_before_created": "mail from a new contact days before her deal was created (synced later still)",
    "late_deal_after": "her mail after the deal's creation",
    "late_deal_old_contact": "the account's other contact, on the older deal",
    "two_account_meeting": "a meeting with buyers of two accounts, each on its deal of the organizer",
    "two_account_meeting_subject": "the same, the subject naming one deal",
    "two_account_meeting_declined": "the same, one account's buyer declined",
    "two_account_meeting_owner": "buyers of two accounts, only one deal the organizer's",
    "internal_meeting": "colleagues only",
    "internal_declined": "colleagues and one buyer who declined",
    "forward_in_thread": "a buyer's colleague the CRM does not know answering in the thread",
    "forward_new_thread": "that colleague writing a new thread while two deals are open",
    "shared_domain": "a buyer domain both tenants have accounts and contacts on",
    "rep_left_before": "a rep's mail before she left",
    "rep_left_after": "a buyer writing to the departed rep's address after her accounts passed on",
    "rep_left_successor": "her successor's mail on the deal",
    "multi_source_rep_call": "a call from a rep's line only her dialer user lists",
}


def _ms(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


# ---------------------------------------------------------------------------------------- world


@dataclass
class Person:
    key: str
    name: str
    email: str
    line: str  # E.164
    team: str
    ids: dict[str, str] = field(default_factory=dict)  # source -> id
    left: datetime | None = None


@dataclass
class Contact:
    key: str
    account: str
    name: str
    emails: list[str]
    phones: list[str]  # as typed
    created: datetime
    merged_into: str | None = None


@dataclass
class Deal:
    key: str
    account: str
    owner: str  # person key
    name: str
    created: datetime
    roles: list[str] = field(default_factory=list)
    closed: bool = False
    won: bool = False
    closed_at: datetime | None = None
    stage: str = "Discovery"
    amount: int = 10000


@dataclass
class Account:
    key: str
    name: str
    domains: list[str]


@dataclass
class Label:
    kind: str  # deal | no_deal | undecidable
    deal: str | None
    ties: frozenset[str]
    rep: str | None  # person key
    team: str | None
    trap: str


@dataclass
class World:
    tenant_id: str
    time_zone: str
    internal_domain: str
    keep_subjects: bool
    hubspot: bool
    people: dict[str, Person] = field(default_factory=dict)
    accounts: dict[str, Account] = field(default_factory=dict)
    contacts: dict[str, Contact] = field(default_factory=dict)
    deals: dict[str, Deal] = field(default_factory=dict)
    sends: list[Send] = field(default_factory=list)
    labels: dict[tuple[str, str], Label] = field(default_factory=dict)

    def local_day(self, at: datetime) -> date:
        return at.astimezone(ZoneInfo(self.time_zone)).date()

    def person_of(self) -> dict[str, str]:
        return {i: p.key for p in self.people.values() for i in p.ids.values()}


def _phone(rng: random.Random, region: str, ext: str | None = None) -> tuple[str, str]:
    """(as a person types it, E.164)."""
    if region == "US":
        area = rng.choice(("212", "646", "415", "312", "617", "303"))
        exchange, line = str(rng.randint(220, 989)), f"{rng.randint(0, 9999):04d}"
        while exchange == "555":
            exchange = str(rng.randint(220, 989))
        e164 = f"+1{area}{exchange}{line}"
        typed = rng.choice(
            (
                f"({area}) {exchange}-{line}",
                f"{area}.{exchange}.{line}",
                f"1-{area}-{exchange}-{line}",
                f"{area}-{exchange}-{line}",
            )
        )
        if ext:
            typed += rng.choice((f" ext. {ext}", f" x{ext}", f" ext {ext}"))
        return typed, e164
    if rng.random() < 0.5 or ext:
        body = f"{rng.randint(3000, 8999)}{rng.randint(0, 9999):04d}"
        e164, typed = (
            f"+4420{body}",
            rng.choice((f"020 {body[:4]} {body[4:]}", f"(020) {body[:4]} {body[4:]}")),
        )
    else:
        body = f"7{rng.randint(400, 999)}{rng.randint(0, 999999):06d}"
        e164, typed = (
            f"+44{body}",
            rng.choice((f"0{body[:4]} {body[4:]}", f"0{body[:4]}-{body[4:7]}-{body[7:]}")),
        )
    if ext:
        typed += rng.choice((f" ext. {ext}", f" x{ext}"))
    return typed, e164


def _e164(typed: str, region: str) -> str:
    digits = "".join(ch for ch in typed.split(" ext")[0].split(" x")[0] if ch.isdigit())
    if region == "US":
        return "+1" + digits[-10:]
    return "+44" + digits[1:] if digits.startswith("0") else "+" + digits


def _rep(p: Person, source: str, phones: list[str], active: bool) -> dict[str, Any]:
    """``p`` as a rep entity of ``source``: ``api`` (the canonical sync) or ``aircall`` (the dialer,
    which holds her email upper-cased)."""
    return {
        "entity_type": "rep",
        "id": p.ids[source],
        "name": p.name,
        "emails": [p.email.upper() if source == "aircall" else p.email],
        "phones": phones,
        "active": active,
    }


class Builder:
    """One tenant's world: its CRM over time (as entity versions), its activities and their labels."""

    def __init__(self, rng: random.Random, w: World, budget: int) -> None:
        self.rng, self.w, self.budget = rng, w, budget
        self.region = "GB" if w.hubspot else "US"
        self.seq = 0
        self.made = 0
        self.crm: list[tuple[datetime, datetime, dict[str, Any]]] = []  # (sent, updated_at, entity)
        self.hub: list[tuple[datetime, dict[str, Any]]] = []  # HubSpot notifications (sent, item)

    # ------------------------------------------------------------------ ids and CRM versions
    def _id(self, kind: str) -> str:
        self.seq += 1
        if self.w.hubspot:
            base = {"acc": 5_000_000, "con": 9_000_000, "deal": 3_000_000}[kind]
            return str(base + self.seq)
        return f"{kind}-{self.seq}"

    def _lag(self) -> timedelta:
        if self.rng.random() < 0.25:
            return timedelta(days=self.rng.randint(1, 4), hours=self.rng.randint(0, 6))
        return timedelta(minutes=self.rng.randint(1, 90))

    def put(self, at: datetime, entity: dict[str, Any], lag: timedelta | None = None) -> None:
        entity = dict(entity, updated_at=_iso(at))
        self.crm.append((at + (self._lag() if lag is None else lag), at, entity))

    def put_account(self, a: Account, at: datetime) -> None:
        self.put(at, {"entity_type": "account", "id": a.key, "name": a.name, "domains": a.domains})

    def put_contact(self, c: Contact, at: datetime, lag: timedelta | None = None) -> None:
        self.put(
            at,
            {
                "entity_type": "contact",
                "id": c.key,
                "name": c.name,
                "emails": list(c.emails),
                "phones": list(c.phones),
                "account_id": c.account,
            }
            | ({"merged_into": c.merged_into} if c.merged_into else {}),
            lag,
        )

    def put_deal(self, d: Deal, at: datetime, lag: timedelta | None = None) -> None:
        owner = self.w.people[d.owner]
        self.put(
            at,
            {
                "entity_type": "deal",
                "id": d.key,
                "name": d.name,
                "account_id": d.account,
                "owner_rep_id": owner.ids["hubspot" if self.w.hubspot else "api"],
                "stage": d.stage,
                "amount": str(d.amount),
                "is_closed": d.closed,
                "is_won": d.won,
                "created_at": _iso(d.created),
                "closed_at": _iso(d.closed_at) if d.closed_at else None,
                "contacts": [
                    {"contact_id": c, "role": self.rng.choice(("Champion", "Decision Maker", "Influencer"))}
                    for c in d.roles
                ],
            },
            lag,
        )

    # ------------------------------------------------------------------ the organisation
    def organisation(self) -> None:
        rng, w = self.rng, self.w
        names = list(zip(rng.sample(FIRST, 6), rng.sample(LAST, 6), strict=True))
        t0 = START - timedelta(days=30)
        teams = {"team-east": "East", "team-west": "West"}
        for t, name in teams.items():
            self.put(t0, {"entity_type": "team", "id": t, "name": name}, timedelta(0))
        for i, (first, last) in enumerate(names):
            typed_line, line = _phone(rng, self.region)
            p = Person(
                f"p-{first.lower()}",
                f"{first} {last}",
                f"{first.lower()}.{last.lower()}@{w.internal_domain}",
                line,
                ("team-east", "team-west")[i % 2],
            )
            p.ids["api"] = f"rep-{first.lower()}"
            if w.hubspot:
                p.ids["hubspot"] = str(7700 + i)
            if not w.hubspot or i % 2 == 0:
                p.ids["aircall"] = f"ac-{101 + i}"
            w.people[p.key] = p
            # the canonical record; the line listed only for half the people (the dialer user lists it)
            phones = [typed_line] if i % 2 == 0 or "aircall" not in p.ids else []
            self.put(t0, _rep(p, "api", phones, active=True), timedelta(0))
            self.put(
                t0,
                {
                    "entity_type": "team_membership",
                    "id": f"m-{p.ids['api']}",
                    "rep_id": p.ids["api"],
                    "team_id": p.team,
                    "valid_from": "2026-01-01",
                    "valid_to": None,
                },
                timedelta(0),
            )
            if "aircall" in p.ids:
                self.put_dialer_user(p, t0, timedelta(hours=1), [line], active=True)
        self.leaver, self.successor = list(w.people)[4], list(w.people)[2]

    def put_dialer_user(
        self, p: Person, at: datetime, lag: timedelta, phones: list[str], active: bool
    ) -> None:
        """The dialer's user of ``p`` (sent straight to the dialer's feed ``lag`` after ``at``)."""
        entity = dict(_rep(p, "aircall", phones, active), updated_at=_iso(at), _source="aircall")
        self.crm.append((at + lag, at, entity))

    def leave(self) -> None:
        """The leaver is deactivated everywhere on LEAVE_DAY; her deals pass to the successor (synced 2 days late)."""
        p = self.w.people[self.leaver]
        at = START + timedelta(days=LEAVE_DAY, hours=9)
        p.left = at
        self.put(at, _rep(p, "api", [], active=False), timedelta(hours=2))
        if "aircall" in p.ids:
            self.put_dialer_user(p, at, timedelta(hours=3), [p.line], active=False)
        for d in self.w.deals.values():
            if d.owner == self.leaver and not d.closed:
                d.owner = self.successor
                self.put_deal(d, at + timedelta(hours=1), timedelta(days=2))

    # ------------------------------------------------------------------ accounts, contacts, deals
    def account(self, at: datetime, domain: str | None = None) -> Account:
        n = self.seq + 1
        word = self.rng.choice(WORDS)
        a = Account(
            self._id("acc"), f"{word} {n}", [domain or f"{word.lower()}{n}-{self.w.tenant_id[-3:]}.com"]
        )
        self.w.accounts[a.key] = a
        self.put_account(a, at)
        return a

    def contact(
        self, a: Account, at: datetime, *, emails: list[str] | None = None, phones: list[str] | None = None
    ) -> Contact:
        first, last = self.rng.choice(BUYERS), self.rng.choice(SURN)
        local = f"{first.lower()}.{last.lower()}{self.seq}"
        c = Contact(
            self._id("con"),
            a.key,
            f"{first} {last}",
            emails or [f"{local}@{a.domains[0]}"],
            phones if phones is not None else [_phone(self.rng, self.region)[0]],
            at,
        )
        self.w.contacts[c.key] = c
        self.put_contact(c, at)
        return c

    def deal(
        self,
        a: Account,
        owner: str,
        created: datetime,
        roles: list[Contact],
        name: str | None = None,
        lag: timedelta | None = None,
    ) -> Deal:
        d = Deal(
            self._id("deal"),
            a.key,
            owner,
            name or f"{a.name} - {self.rng.choice(PRODUCTS)}",
            created,
            [c.key for c in roles],
            amount=self.rng.randint(5, 90) * 1000,
        )
        self.w.deals[d.key] = d
        self.put_deal(d, created + timedelta(minutes=5), lag)
        return d

    # ------------------------------------------------------------------ activities
    def _ext(self, prefix: str) -> str:
        self.seq += 1
        return f"{prefix}-{self.w.tenant_id}-{self.seq}"

    def _typed(self, email: str) -> str:
        return (
            email if self.rng.random() < 0.7 else email.title() if self.rng.random() < 0.5 else email.upper()
        )

    def label(
        self,
        item: dict[str, Any],
        trap: str,
        rep: str | None,
        deal: str | None = None,
        ties: tuple[str, ...] = (),
        kind: str | None = None,
        sent: datetime | None = None,
    ) -> None:
        at = datetime.fromisoformat(str(item["occurred_at"]).replace("Z", "+00:00"))
        kind = kind or ("undecidable" if ties else "deal" if deal else "no_deal")
        team = self.w.people[rep].team if rep else None
        self.w.labels[(item["source"], item["external_id"])] = Label(
            kind, deal, frozenset(ties), rep, team, trap
        )
        self.w.sends.append(
            Send(
                sent or at + timedelta(minutes=self.rng.randint(2, 40)),
                self.w.tenant_id,
                "events",
                "events",
                [item],
            )
        )
        self.made += 1

    def email(
        self,
        at: datetime,
        rep: str,
        to: list[str],
        *,
        cc: Sequence[str] = (),
        inbound_from: str | None = None,
        to_address: str | None = None,
        subject: str = "",
        thread: str | None = None,
    ) -> dict[str, Any]:
        p = self.w.people[rep]
        if inbound_from:
            parts = [
                {"email": self._typed(inbound_from), "role": "from"},
                {"email": self._typed(to_address or p.email), "role": "to"},
            ]
        else:
            parts = [{"email": self._typed(p.email), "name": p.name, "role": "from"}] + [
                {"email": self._typed(a), "role": "to"} for a in to
            ]
        parts += [{"email": self._typed(a), "role": "cc"} for a in cc]
        ext = self._ext("mail")
        return {
            "source": "mailbox",
            "external_id": ext,
            "kind": "email",
            "direction": "inbound" if inbound_from else "outbound",
            "outcome": "received" if inbound_from else "sent",
            "occurred_at": _iso(at),
            "participants": parts,
            "thread_id": thread or f"thr-{ext}",
            "subject": subject if self.w.keep_subjects and subject else None,
        }

    def call(self, at: datetime, rep: str, phone: str, inbound: bool = False) -> dict[str, Any]:
        p = self.w.people[rep]
        outcome = self.rng.choices(("connected", "no_answer", "voicemail"), (6, 3, 2))[0]
        me = {"phone": p.line, "role": "callee" if inbound else "caller"}
        them = {"phone": phone, "role": "caller" if inbound else "callee"}
        return {
            "source": "aircall",
            "external_id": self._ext("call"),
            "kind": "call",
            "direction": "inbound" if inbound else "outbound",
            "outcome": outcome,
            "occurred_at": _iso(at),
            "duration_seconds": self.rng.randint(60, 900) if outcome == "connected" else 0,
            "participants": [them, me] if inbound else [me, them],
        }

    def meeting(
        self,
        at: datetime,
        rep: str,
        guests: list[str],
        *,
        declined: tuple[str, ...] = (),
        colleagues: tuple[str, ...] = (),
        subject: str = "",
    ) -> dict[str, Any]:
        parts: list[dict[str, Any]] = [
            {
                "email": self._typed(self.w.people[rep].email),
                "role": "organizer",
                "response_status": "accepted",
            }
        ]
        parts += [
            {"email": self.w.people[c].email, "role": "attendee", "response_status": "accepted"}
            for c in colleagues
        ]
        parts += [
            {
                "email": self._typed(g),
                "role": "attendee",
                "response_status": "declined"
                if g in declined
                else self.rng.choice(("accepted", "tentative", "needs_action")),
            }
            for g in guests
        ]
        return {
            "source": "calendar",
            "external_id": self._ext("mtg"),
            "kind": "meeting",
            "direction": "outbound" if guests else "internal",
            "outcome": "held",
            "occurred_at": _iso(at),
            "duration_seconds": 1800,
            "participants": parts,
            "subject": subject if self.w.keep_subjects and subject else None,
            "ical_uid": f"{uuid.UUID(int=self.rng.getrandbits(128))}@calendar",
        }

    def at(self, start: datetime, lo: float, hi: float) -> datetime:
        day = start + timedelta(days=self.rng.uniform(lo, hi))
        return day.replace(
            hour=self.rng.randint(13, 21), minute=self.rng.randint(0, 59), second=0, microsecond=0
        )

    def seller(self, exclude: tuple[str, ...] = ()) -> str:
        return self.rng.choice([k for k in self.w.people if k not in exclude and k != self.leaver])

    def subj(self, d: Deal, tail: str = "next steps") -> str:
        return f"{d.name.split(' - ', 1)[1]} {tail}"

    def start(self, span: int) -> datetime:
        return START + timedelta(days=self.rng.randint(2, DAYS - span - 1), hours=12)

    def one_deal(self, span: int) -> tuple[datetime, str, Account, Contact, Deal]:
        """An episode's opening: its start, a seller, an account, its contact and the seller's deal
        with her (drawn in that order)."""
        s = self.start(span)
        x = self.seller()
        a = self.account(s - timedelta(days=3))
        c = self.contact(a, s - timedelta(days=3))
        return s, x, a, c, self.deal(a, x, s - timedelta(days=2), [c])

    # ------------------------------------------------------------------ episodes
    def ep_baseline(self) -> None:
        s, x, _, c, d = self.one_deal(30)
        for _ in range(3):
            self.label(
                self.email(self.at(s, 0, 30), x, [c.emails[0]], subject=self.subj(d)), "baseline", x, d.key
            )
        self.label(self.email(self.at(s, 0, 30), x, [], inbound_from=c.emails[0]), "baseline", x, d.key)
        self.label(self.call(self.at(s, 0, 30), x, _e164(c.phones[0], self.region)), "baseline", x, d.key)
        self.label(
            self.meeting(self.at(s, 0, 30), x, [c.emails[0]], subject=self.subj(d, "review")),
            "baseline",
            x,
            d.key,
        )
        if self.rng.random() < 0.5:
            to = f"{self.rng.choice(BUYERS).lower()}@{self.rng.choice(WORDS).lower()}{self.rng.randint(100, 999)}-cold.com"
            self.label(self.email(self.at(s, 0, 30), x, [to], subject="Introduction"), "prospecting", x)

    def ep_multi_identity(self) -> None:
        s = self.start(40)
        x = self.seller()
        a = self.account(s - timedelta(days=3))
        main_typed, main = _phone(self.rng, self.region)
        mobile_typed, mobile = _phone(self.rng, self.region)
        ext_a, ext_b = str(self.rng.randint(10, 49)), str(self.rng.randint(50, 99))
        digits = main_typed
        c = self.contact(a, s - timedelta(days=3), phones=[f"{digits} ext. {ext_a}", mobile_typed])
        personal = f"{c.name.split()[0].lower()}{self.rng.randint(10, 99)}.{c.name.split()[1].lower()}{self.seq}@gmail.com"
        c.emails.append(personal)
        self.put_contact(c, s - timedelta(days=2))
        c2 = self.contact(a, s - timedelta(days=3), phones=[f"{digits} x{ext_b}"])
        d1 = self.deal(a, x, s - timedelta(days=2), [c])
        d2 = self.deal(a, x, s - timedelta(days=2), [c2])
        for _ in range(2):
            self.label(
                self.email(
                    self.at(s, 0, 40), x, [], inbound_from=personal, subject=self.subj(d1, "question")
                ),
                "multi_email",
                x,
                d1.key,
            )
            self.label(self.email(self.at(s, 0, 40), x, [personal]), "multi_email", x, d1.key)
        self.label(self.call(self.at(s, 0, 40), x, mobile), "national_ext_phone", x, d1.key)
        self.label(self.call(self.at(s, 0, 40), x, mobile, inbound=True), "national_ext_phone", x, d1.key)
        self.label(self.call(self.at(s, 0, 40), x, main), "shared_main_line", x, ties=(d1.key, d2.key))
        self.label(self.email(self.at(s, 0, 40), x, [c2.emails[0]]), "baseline", x, d2.key)
        self.label(self.email(self.at(s, 0, 40), x, [c.emails[0]]), "baseline", x, d1.key)

    def ep_duplicate(self) -> None:
        s = self.start(44)
        x = self.seller()
        a = self.account(s - timedelta(days=3))
        typed, phone = _phone(self.rng, self.region)
        c = self.contact(a, s - timedelta(days=3), phones=[typed])
        personal = f"{c.name.split()[0].lower()}.{c.name.split()[1].lower()}{self.rng.randint(10, 99)}{self.seq}@outlook.com"
        other_typing = (
            phone
            if self.region == "US" and self.rng.random() < 0.5
            else typed.replace(" ", "")
            if "(" not in typed
            else typed
        )
        dup = self.contact(a, s - timedelta(days=1), emails=[personal], phones=[other_typing])
        d = self.deal(a, x, s - timedelta(days=2), [c])
        merge_at = s + timedelta(days=22)
        for _ in range(3):
            self.label(
                self.email(self.at(s, 0, 21), x, [], inbound_from=personal), "dup_before_merge", x, d.key
            )
        self.label(self.call(self.at(s, 0, 21), x, phone), "dup_phone", x, d.key)
        # the merge: the duplicate merged into the champion's record, which keeps both addresses
        dup.merged_into = c.key
        c.emails.append(personal)
        if self.w.hubspot:
            self.put_contact(c, merge_at)
            self.hub.append(
                (
                    merge_at + self._lag(),
                    {
                        "eventId": self.seq,
                        "subscriptionId": 2101,
                        "portalId": 62515,
                        "appId": 54321,
                        "occurredAt": int(merge_at.timestamp() * 1000),
                        "subscriptionType": "contact.merge",
                        "attemptNumber": 0,
                        "objectId": int(c.key),
                        "primaryObjectId": int(c.key),
                        "mergedObjectIds": [int(dup.key)],
                        "changeFlag": "MERGED",
                        "changeSource": "CRM_UI",
                    },
                )
            )
        else:
            self.put_contact(dup, merge_at)
            self.put_contact(c, merge_at)
        for _ in range(3):
            self.label(
                self.email(self.at(s, 23, 44), x, [], inbound_from=personal), "dup_after_merge", x, d.key
            )
        self.label(self.call(self.at(s, 23, 44), x, phone, inbound=True), "dup_phone", x, d.key)

    def ep_two_accounts_person(self) -> None:
        s = self.start(40)
        x = self.seller()
        y = self.seller((x,))
        email = f"{self.rng.choice(BUYERS).lower()}.{self.rng.choice(SURN).lower()}{self.seq}@advisory{self.seq}.com"
        a, b = self.account(s - timedelta(days=3)), self.account(s - timedelta(days=3))
        ka = self.contact(a, s - timedelta(days=3), emails=[email], phones=[])
        kb = self.contact(b, s - timedelta(days=3), emails=[email], phones=[])
        da, db = self.deal(a, x, s - timedelta(days=2), [ka]), self.deal(b, y, s - timedelta(days=2), [kb])
        for _ in range(2):
            self.label(self.email(self.at(s, 0, 40), x, [email]), "dup_two_accounts_owner", x, da.key)
            self.label(self.email(self.at(s, 0, 40), y, [email]), "dup_two_accounts_owner", y, db.key)
        self.label(
            self.email(self.at(s, 0, 40), x, [], inbound_from=email), "dup_two_accounts_owner", x, da.key
        )
        inbox = f"sales@{self.w.internal_domain}"
        item = self.email(self.at(s, 0, 40), x, [], inbound_from=email, to_address=inbox)
        self.label(item, "dup_two_accounts_inbox", None, ties=(da.key, db.key))

    def ep_job_change(self) -> None:
        s = self.start(60)
        x = self.seller()
        y = self.seller((x,))
        a, b = self.account(s - timedelta(days=3)), self.account(s - timedelta(days=3))
        c = self.contact(a, s - timedelta(days=3))
        b1 = self.contact(b, s - timedelta(days=3))
        da = self.deal(a, x, s - timedelta(days=2), [c])
        db = self.deal(b, y, s + timedelta(days=20), [b1])
        old = c.emails[0]
        for _ in range(4):
            self.label(
                self.email(self.at(s, 0, 28), x, [old], subject=self.subj(da)), "job_change_before", x, da.key
            )
        self.label(self.email(self.at(s, 0, 28), x, [], inbound_from=old), "job_change_before", x, da.key)
        late = self.email(self.at(s, 27, 28), x, [], inbound_from=old)
        self.label(late, "job_change_late_old_mail", x, da.key, sent=s + timedelta(days=35))
        move = s + timedelta(days=30)
        c.account, c.emails = (
            b.key,
            [f"{c.name.split()[0].lower()}.{c.name.split()[1].lower()}@{b.domains[0]}"],
        )
        c.phones = [_phone(self.rng, self.region)[0]]
        self.put_contact(c, move)
        db.roles.append(c.key)
        self.put_deal(db, move + timedelta(days=1))
        for _ in range(4):
            self.label(
                self.email(self.at(s, 32, 60), y, [c.emails[0]], subject=self.subj(db)),
                "job_change_after",
                y,
                db.key,
            )
        self.label(
            self.email(self.at(s, 32, 60), y, [], inbound_from=c.emails[0]), "job_change_after", y, db.key
        )

    def ep_owner_change(self) -> None:
        s = self.start(50)
        x = self.seller()
        y = self.seller((x,))
        a = self.account(s - timedelta(days=3))
        c = self.contact(a, s - timedelta(days=3))
        d = self.deal(a, x, s - timedelta(days=2), [c])
        inbox = f"sales@{self.w.internal_domain}"
        for _ in range(2):
            self.label(self.email(self.at(s, 0, 24), x, [c.emails[0]]), "baseline", x, d.key)
            self.label(
                self.email(self.at(s, 0, 24), x, [], inbound_from=c.emails[0], to_address=inbox),
                "owner_change_inbox",
                x,
                d.key,
            )
        d.owner = y
        d.stage, d.amount = "Proposal", d.amount + 5000
        self.put_deal(d, s + timedelta(days=25), timedelta(days=3))
        for _ in range(3):
            self.label(self.email(self.at(s, 26, 50), y, [c.emails[0]]), "owner_change", y, d.key)
        self.label(self.meeting(self.at(s, 26, 50), y, [c.emails[0]]), "owner_change", y, d.key)
        for _ in range(2):
            self.label(
                self.email(self.at(s, 29, 50), y, [], inbound_from=c.emails[0], to_address=inbox),
                "owner_change_inbox",
                y,
                d.key,
            )

    def ep_rename(self) -> None:
        s = self.start(50)
        x = self.seller()
        a = self.account(s - timedelta(days=3))
        c = self.contact(a, s - timedelta(days=3))
        old, new = self.rng.sample(("Pilot", "Rollout", "Migration", "Integration"), 2)
        p1, p2 = self.rng.sample(PRODUCTS, 2)
        if self.w.keep_subjects:
            d1 = self.deal(a, x, s - timedelta(days=2), [c], name=f"{a.name} - {p1} {old}")
            d2 = self.deal(a, x, s - timedelta(days=2), [c], name=f"{a.name} - {p2}")
            for _ in range(2):
                self.label(
                    self.email(self.at(s, 0, 24), x, [c.emails[0]], subject=f"{old} plan"),
                    "renamed_old_subject",
                    x,
                    d1.key,
                )
            self.label(
                self.email(self.at(s, 0, 50), x, [c.emails[0]], subject=f"{p2} pricing"),
                "baseline",
                x,
                d2.key,
            )
            self.label(
                self.email(self.at(s, 0, 50), x, [c.emails[0]], subject="Quick question"),
                "renamed_tie",
                x,
                ties=(d1.key, d2.key),
            )
            d1.name, d1.stage, d1.amount = f"{a.name} - {p1} {new}", "Negotiation", d1.amount * 2
            self.put_deal(d1, s + timedelta(days=25))
            for _ in range(2):
                self.label(
                    self.email(self.at(s, 27, 50), x, [c.emails[0]], subject=f"{new} plan"),
                    "renamed_subject",
                    x,
                    d1.key,
                )
            return
        c2 = self.contact(a, s - timedelta(days=3))
        d1 = self.deal(a, x, s - timedelta(days=2), [c], name=f"{a.name} - {p1} {old}")
        d2 = self.deal(a, x, s - timedelta(days=2), [c2], name=f"{a.name} - {p2}")
        self.label(self.email(self.at(s, 0, 24), x, [c.emails[0]]), "renamed_roles", x, d1.key)
        self.label(self.email(self.at(s, 0, 50), x, [c2.emails[0]]), "renamed_roles", x, d2.key)
        d1.name, d1.stage, d1.amount = f"{a.name} - {p1} {new}", "Negotiation", d1.amount * 2
        self.put_deal(d1, s + timedelta(days=25))
        d1.stage = "Contract sent"
        self.put_deal(d1, s + timedelta(days=30))
        for _ in range(2):
            self.label(self.email(self.at(s, 27, 50), x, [c.emails[0]]), "renamed_roles", x, d1.key)
        self.label(
            self.call(self.at(s, 27, 50), x, _e164(c.phones[0], self.region)), "renamed_roles", x, d1.key
        )

    def ep_lost_reopen(self) -> None:
        s, x, _, c, d = self.one_deal(70)
        for _ in range(2):
            self.label(self.email(self.at(s, 0, 19), x, [c.emails[0]]), "lost_reopen", x, d.key)
        d.closed, d.won, d.closed_at, d.stage = True, False, s + timedelta(days=20), "Closed Lost"
        self.put_deal(d, d.closed_at)
        self.label(self.email(self.at(s, 22, 32), x, [c.emails[0]]), "lost_reopen", x, d.key)
        for _ in range(2):
            self.label(
                self.email(self.at(s, 37, 44), x, [], inbound_from=c.emails[0]), "lost_reopen_gap", x, d.key
            )
        d.closed, d.closed_at, d.stage = False, None, "Negotiation"
        self.put_deal(d, s + timedelta(days=45))
        for _ in range(3):
            self.label(self.email(self.at(s, 46, 70), x, [c.emails[0]]), "lost_reopen", x, d.key)

    def ep_moved_deal(self) -> None:
        s = self.start(50)
        x = self.seller()
        parent = self.account(s - timedelta(days=3))
        sub = self.account(s - timedelta(days=3))
        p1 = self.contact(parent, s - timedelta(days=3))
        s1 = self.contact(sub, s - timedelta(days=3))
        d0 = self.deal(parent, x, s - timedelta(days=2), [p1])
        d = self.deal(parent, x, s - timedelta(days=2), [s1])
        for _ in range(2):
            self.label(self.email(self.at(s, 0, 50), x, [s1.emails[0]]), "moved_deal_role", x, d.key)
            self.label(self.email(self.at(s, 0, 50), x, [p1.emails[0]]), "baseline", x, d0.key)
        d.account = sub.key
        self.put_deal(d, s + timedelta(days=20))
        unknown = f"{self.rng.choice(BUYERS).lower()}.x{self.seq}@{parent.domains[0]}"
        for _ in range(2):
            self.label(
                self.email(self.at(s, 22, 50), x, [], inbound_from=unknown), "moved_deal_unknown", x, d0.key
            )

    def ep_late_deal(self) -> None:
        s, x, a, c_old, d_old = self.one_deal(40)
        c_new = self.contact(a, s + timedelta(days=4))
        created = s + timedelta(days=12)
        for _ in range(3):
            self.label(
                self.email(self.at(s, 6, 11), x, [c_new.emails[0]]), "late_deal_before_created", x, "pending"
            )
        self.label(
            self.email(self.at(s, 6, 11), x, [], inbound_from=c_new.emails[0]),
            "late_deal_before_created",
            x,
            "pending",
        )
        d_new = self.deal(a, x, created, [c_new], lag=timedelta(days=4))
        for key, lab in self.w.labels.items():
            if lab.deal == "pending":
                self.w.labels[key] = Label("deal", d_new.key, frozenset(), lab.rep, lab.team, lab.trap)
        for _ in range(3):
            self.label(self.email(self.at(s, 13, 40), x, [c_new.emails[0]]), "late_deal_after", x, d_new.key)
        self.label(self.email(self.at(s, 0, 40), x, [c_old.emails[0]]), "late_deal_old_contact", x, d_old.key)

    def ep_two_account_meeting(self) -> None:
        s = self.start(30)
        x = self.seller()
        a, b = self.account(s - timedelta(days=3)), self.account(s - timedelta(days=3))
        ca, cb = self.contact(a, s - timedelta(days=3)), self.contact(b, s - timedelta(days=3))
        da = self.deal(a, x, s - timedelta(days=2), [ca])
        y = x if self.rng.random() < 0.6 else self.seller((x,))
        db = self.deal(b, y, s - timedelta(days=2), [cb])
        both = [ca.emails[0], cb.emails[0]]
        if y == x:
            self.label(
                self.meeting(self.at(s, 0, 30), x, both), "two_account_meeting", x, ties=(da.key, db.key)
            )
            if self.w.keep_subjects:
                # Both deals of one product ("Data warehouse workshop"): the subject names both, a tie.
                same = self.subj(da) == self.subj(db)
                self.label(
                    self.meeting(self.at(s, 0, 30), x, both, subject=self.subj(da, "workshop")),
                    "two_account_meeting_subject",
                    x,
                    None if same else da.key,
                    (da.key, db.key) if same else (),
                )
        else:
            self.label(self.meeting(self.at(s, 0, 30), x, both), "two_account_meeting_owner", x, da.key)
        self.label(
            self.meeting(self.at(s, 0, 30), x, both, declined=(cb.emails[0],)),
            "two_account_meeting_declined",
            x,
            da.key,
        )
        self.label(self.email(self.at(s, 0, 30), x, [ca.emails[0]]), "baseline", x, da.key)
        self.label(self.email(self.at(s, 0, 30), y, [cb.emails[0]]), "baseline", y, db.key)

    def ep_internal(self) -> None:
        s = self.start(10)
        x = self.seller()
        others = tuple(self.rng.sample([k for k in self.w.people if k not in (x, self.leaver)], 2))
        self.label(
            self.meeting(self.at(s, 0, 10), x, [], colleagues=others, subject="Forecast call"),
            "internal_meeting",
            x,
        )
        a = self.account(s - timedelta(days=3))
        c = self.contact(a, s - timedelta(days=3))
        self.deal(a, x, s - timedelta(days=2), [c])
        self.label(
            self.meeting(
                self.at(s, 0, 10),
                x,
                [c.emails[0]],
                declined=(c.emails[0],),
                colleagues=others[:1],
                subject="Deal desk prep",
            ),
            "internal_declined",
            x,
        )

    def ep_forward(self) -> None:
        s = self.start(30)
        x = self.seller()
        a = self.account(s - timedelta(days=3))
        c, c2 = self.contact(a, s - timedelta(days=3)), self.contact(a, s - timedelta(days=3))
        d = self.deal(a, x, s - timedelta(days=2), [c])
        d2 = self.deal(a, x, s - timedelta(days=2), [c2])
        colleague = f"{self.rng.choice(BUYERS).lower()}.fw{self.seq}@{a.domains[0]}"
        first = self.at(s, 0, 10)
        thread = f"thr-fw-{self.w.tenant_id}-{self.seq}"
        self.label(
            self.email(first, x, [c.emails[0]], subject=self.subj(d, "proposal"), thread=thread),
            "baseline",
            x,
            d.key,
        )
        self.label(
            self.email(
                first + timedelta(hours=3),
                x,
                [],
                inbound_from=c.emails[0],
                subject="RE: " + self.subj(d, "proposal"),
                thread=thread,
            ),
            "baseline",
            x,
            d.key,
        )
        fw = self.email(
            first + timedelta(days=1),
            x,
            [],
            inbound_from=colleague,
            subject="FW: " + self.subj(d, "proposal"),
            thread=thread,
        )
        self.label(fw, "forward_in_thread", x, d.key, sent=first + timedelta(days=1, hours=1))
        reply = self.email(
            first + timedelta(days=1, hours=4),
            x,
            [colleague],
            subject="RE: FW: " + self.subj(d, "proposal"),
            thread=thread,
        )
        self.label(reply, "forward_in_thread", x, d.key, sent=first + timedelta(days=1, hours=5))
        self.label(
            self.email(self.at(s, 12, 30), x, [], inbound_from=colleague, subject="Question"),
            "forward_new_thread",
            x,
            ties=(d.key, d2.key),
        )
        self.label(self.email(self.at(s, 12, 30), x, [c2.emails[0]]), "baseline", x, d2.key)

    def ep_rep_leaves(self) -> None:
        """An account of the leaver's whose deal runs across her departure."""
        s = START + timedelta(days=LEAVE_DAY - self.rng.randint(15, 25), hours=12)
        x = self.leaver
        a = self.account(s - timedelta(days=3))
        c = self.contact(a, s - timedelta(days=3))
        d = self.deal(a, x, s - timedelta(days=2), [c])
        self.leaver_deals.append(d)
        end = (START + timedelta(days=LEAVE_DAY) - s).days - 1
        for _ in range(3):
            self.label(self.email(self.at(s, 0, end), x, [c.emails[0]]), "rep_left_before", x, d.key)
        p = self.w.people[x]
        base = START + timedelta(days=LEAVE_DAY + 3)
        for _ in range(2):
            self.label(
                self.email(self.at(base, 0, 30), x, [], inbound_from=c.emails[0], to_address=p.email),
                "rep_left_after",
                self.successor,
                d.key,
            )
        self.label(
            self.email(self.at(base, 0, 30), self.successor, [c.emails[0]]),
            "rep_left_successor",
            self.successor,
            d.key,
        )

    def ep_dialer_line(self) -> None:
        """A call from the line of a rep whose canonical record lists no phone: only her dialer user does."""
        s = self.start(20)
        x = self.rng.choice([k for k, p in self.w.people.items() if "aircall" in p.ids and k != self.leaver])
        a = self.account(s - timedelta(days=3))
        c = self.contact(a, s - timedelta(days=3))
        d = self.deal(a, x, s - timedelta(days=2), [c])
        for _ in range(2):
            self.label(
                self.call(self.at(s, 0, 20), x, _e164(c.phones[0], self.region)),
                "multi_source_rep_call",
                x,
                d.key,
            )

    leaver_deals: list[Deal]

    def build(self) -> None:
        self.leaver_deals = []
        self.organisation()
        episodes: list[tuple[Callable[[], None], int]] = [
            (self.ep_baseline, 4),
            (self.ep_multi_identity, 2),
            (self.ep_duplicate, 2),
            (self.ep_two_accounts_person, 2),
            (self.ep_job_change, 2),
            (self.ep_owner_change, 2),
            (self.ep_rename, 2),
            (self.ep_lost_reopen, 2),
            (self.ep_moved_deal, 2),
            (self.ep_late_deal, 2),
            (self.ep_two_account_meeting, 4),
            (self.ep_internal, 1),
            (self.ep_forward, 2),
            (self.ep_dialer_line, 1),
        ]
        funcs, weights = zip(*episodes, strict=True)
        for _ in range(3):
            self.ep_rep_leaves()
        while self.made < self.budget:
            self.rng.choices(funcs, weights)[0]()
        self.leave()

    def shared_domain(self, other: Builder, accounts: int) -> None:
        """Buyers both tenants sell to: the same domain and people in both CRMs, a deal open in this
        tenant all along, the other tenant's lost on day 15 of it."""
        for _ in range(accounts):
            s = START + timedelta(days=self.rng.randint(5, DAYS - 45), hours=12)
            domain = f"{self.rng.choice(WORDS).lower()}-shared{self.seq}.com"
            emails = [f"{self.rng.choice(BUYERS).lower()}.{i}@{domain}" for i in range(2)]
            deals = []
            for b in (self, other):
                a = b.account(s - timedelta(days=5), domain)
                c = b.contact(a, s - timedelta(days=5), emails=[emails[0]])
                b.contact(a, s - timedelta(days=5), emails=[emails[1]])
                x = b.seller()
                deals.append((b, b.deal(a, x, s - timedelta(days=4), [c]), x))
            (b2, d2, _) = deals[1]
            d2.closed, d2.closed_at, d2.stage = True, s + timedelta(days=5), "Closed Lost"
            b2.put_deal(d2, d2.closed_at)
            for b, d, x in deals:
                for _ in range(3):
                    at = b.at(s, 25, 40)
                    lab = (d.key,) if b is self else ()
                    b.label(
                        b.email(at, x, [emails[self.rng.randint(0, 1)]]),
                        "shared_domain",
                        x,
                        lab[0] if lab else None,
                    )


# ---------------------------------------------------------------------------------------- HubSpot


def _name_parts(name: str) -> tuple[str, str]:
    first, _, last = name.partition(" ")
    return first, last


def hubspot_object(e: dict[str, Any]) -> dict[str, Any] | None:
    """A canonical entity version as HubSpot's CRM v3 (or Owners) API returns the object."""
    at = datetime.fromisoformat(e["updated_at"].replace("Z", "+00:00"))
    common = {
        "id": e["id"],
        "createdAt": _ms(at - timedelta(days=1)),
        "updatedAt": _ms(at),
        "archived": False,
    }
    t = e["entity_type"]
    if t == "account":
        props = {"name": e["name"], "domain": e["domains"][0], "hs_lastmodifieddate": _ms(at)}
        if len(e["domains"]) > 1:
            props["hs_additional_domains"] = ";".join(e["domains"][1:])
        return {"objectType": "companies", "properties": props} | common
    if t == "contact":
        if e.get("merged_into"):
            return None
        first, last = _name_parts(e["name"])
        props = {
            "email": e["emails"][0],
            "firstname": first,
            "lastname": last,
            "hs_lastmodifieddate": _ms(at),
        }
        if len(e["emails"]) > 1:
            props["hs_additional_emails"] = ";".join(e["emails"][1:])
        if e["phones"]:
            props["phone"] = e["phones"][0]
        if len(e["phones"]) > 1:
            props["mobilephone"] = e["phones"][1]
        assoc = {"companies": {"results": [{"id": e["account_id"], "type": "contact_to_company"}]}}
        return {"objectType": "contacts", "properties": props, "associations": assoc} | common
    if t == "deal":
        created = datetime.fromisoformat(e["created_at"].replace("Z", "+00:00"))
        closed = e["closed_at"] or _iso(
            created + timedelta(days=75)
        )  # HubSpot's expected close on open deals
        stage = ("closedwon" if e["is_won"] else "closedlost") if e["is_closed"] else "presentationscheduled"
        props = {
            "dealname": e["name"],
            "dealstage": stage,
            "amount": e["amount"],
            "hs_is_closed": str(e["is_closed"]).lower(),
            "hs_is_closed_won": str(e["is_won"]).lower(),
            "createdate": _ms(created),
            "closedate": _ms(datetime.fromisoformat(closed.replace("Z", "+00:00"))),
            "hubspot_owner_id": e["owner_rep_id"],
            "hs_lastmodifieddate": _ms(at),
        }
        assoc = {
            "companies": {"results": [{"id": e["account_id"], "type": "deal_to_company"}]},
            "contacts": {
                "results": [{"id": r["contact_id"], "type": "deal_to_contact"} for r in e["contacts"]]
            },
        }
        return {"objectType": "deals", "properties": props, "associations": assoc} | common
    raise ValueError(t)


def hubspot_owner(p: Person, at: datetime, active: bool) -> dict[str, Any]:
    first, last = _name_parts(p.name)
    email = p.email.title()
    return {
        "objectType": "owners",
        "id": p.ids["hubspot"],
        "email": email,
        "firstName": first,
        "lastName": last,
        "userId": 9000 + int(p.ids["hubspot"]) % 100,
        "createdAt": _ms(START - timedelta(days=300)),
        "updatedAt": _ms(at),
        "archived": not active,
    }


# ---------------------------------------------------------------------------------------- build


def build(activities: int, seed: int) -> list[World]:
    rng = random.Random(seed)
    worlds = [
        World("messy-ny", "America/New_York", "contoso-sales.com", True, False),
        World("messy-ldn", "Europe/London", "tailspin.co.uk", False, True),
    ]
    builders = [Builder(rng, w, activities // 2 - 6) for w in worlds]
    for b in builders:
        b.build()
    builders[0].shared_domain(builders[1], 4)
    for b in builders:
        _schedule(b)
    return worlds


def _schedule(b: Builder) -> None:
    """The builder's CRM versions as sends: canonical sync, or HubSpot for the CRM objects (owners
    for the reps) with teams, memberships and canonical reps through the sync."""
    w = b.w
    for sent, at, e in b.crm:
        source = e.pop("_source", "api")
        if w.hubspot and e["entity_type"] in ("account", "contact", "deal"):
            obj = hubspot_object(e)
            if obj:
                w.sends.append(Send(sent, w.tenant_id, "hubspot", "hubspot", [obj]))
            continue
        if w.hubspot and e["entity_type"] == "rep" and source == "api":
            p = next(p for p in w.people.values() if p.ids["api"] == e["id"])
            w.sends.append(Send(sent, w.tenant_id, "hubspot", "hubspot", [hubspot_owner(p, at, e["active"])]))
        w.sends.append(Send(sent, w.tenant_id, "crm", source, [e]))
    for sent, item in b.hub:
        w.sends.append(Send(sent, w.tenant_id, "hubspot", "hubspot", [item]))


def _groups(worlds: list[World]) -> list[Send]:
    """``batches`` of the first world (activities of a tenant posted together), with consecutive CRM
    sends of one tenant and source joined too."""
    out: list[Send] = []
    for s in batches(worlds, 50):  # type: ignore[arg-type]
        last = out[-1] if out else None
        if (
            last
            and s.kind != "events"
            and last.kind == s.kind
            and last.tenant == s.tenant
            and last.source == s.source
            and len(last.items) < 100
        ):
            last.items.extend(s.items)
            continue
        out.append(s)
    return out


# ---------------------------------------------------------------------------------------- driving the API


async def _hubspot(c: Clients, tenant: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    path = f"/v1/webhooks/hubspot/{tenant}"
    body = orjson.dumps(items)
    url = str(c.ingest.base_url).rstrip("/") + path

    def signed() -> dict[str, str]:
        millis = str(int(time.time() * 1000))
        digest = hmac.new(
            c.keys[tenant]["webhook:hubspot"].encode(),
            b"POST" + url.encode() + body + millis.encode(),
            hashlib.sha256,
        ).digest()
        return {
            "Content-Type": "application/json",
            "X-HubSpot-Signature-v3": base64.b64encode(digest).decode(),
            "X-HubSpot-Request-Timestamp": millis,
        }

    return await post_retrying(c.ingest, path, body, signed)


async def send_all(c: Clients, worlds: list[World]) -> Counter[str]:
    told = Counter[str]()
    for s in _groups(worlds):
        if s.kind == "crm":
            await sync_crm(c, s.tenant, s.source, s.items, told)
        elif s.kind == "hubspot":
            answer = await _hubspot(c, s.tenant, s.items)
            told["hubspot_requests"] += 1
            told["hubspot_ignored"] += len(answer.get("ignored", ()))
        else:
            await post_events(c, s.tenant, s.items, told)
    return told


# ---------------------------------------------------------------------------------------- scoring


@dataclass
class Tally:
    n: int = 0
    deal: int = 0  # labelled with a deal
    credited: int = 0  # attributed (any label)
    credited_right: int = 0
    ties: int = 0
    ties_surfaced: int = 0  # ambiguous naming every tied deal
    ties_picked: int = 0  # attributed to one of them (a precision error)
    rep_scored: int = 0
    rep_right: int = 0
    team_right: int = 0


@dataclass
class Score:
    total: Tally = field(default_factory=Tally)
    traps: dict[str, Tally] = field(default_factory=lambda: defaultdict(Tally))
    missing: int = 0
    misses: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)


def _verdict(lab: Label, got: dict[str, Any]) -> str | None:
    status, deal = got["status"], got["deal_id"]
    named = {deal, *(got.get("secondary_deal_ids") or [])} - {None}
    if lab.kind == "deal":
        if status == "attributed":
            return None if deal == lab.deal else "wrong deal credited"
        return f"{status} (primary {'right' if deal == lab.deal else 'wrong' if deal else 'none'})"
    if lab.kind == "undecidable":
        if status == "attributed":
            return "tie credited to one deal"
        return (
            None
            if status == "ambiguous" and lab.ties <= named
            else f"tie {status}, named {len(named & lab.ties)}/{len(lab.ties)}"
        )
    return "no deal, credited one" if status == "attributed" else None


def score_world(w: World, found: dict[str, dict[str, Any]], listed: set[str], s: Score) -> None:
    person = w.person_of()
    for (source, ext), lab in w.labels.items():
        got = found.get(str(activity_id_for(w.tenant_id, source, ext)))
        if got is None:
            s.missing += 1
            continue
        for t in (s.total, s.traps[lab.trap]):
            t.n += 1
            t.deal += lab.kind == "deal"
            if got["status"] == "attributed":
                t.credited += 1
                t.credited_right += lab.kind == "deal" and got["deal_id"] == lab.deal
            if lab.kind == "undecidable":
                t.ties += 1
                t.ties_picked += got["status"] == "attributed"
                named = {got["deal_id"], *(got.get("secondary_deal_ids") or [])}
                t.ties_surfaced += got["status"] == "ambiguous" and lab.ties <= named
        why = _verdict(lab, got)
        if why:
            s.misses[f"{lab.trap}: {why}"] += 1
            s.examples.setdefault(f"{lab.trap}: {why}", []).append(
                f"{w.tenant_id} {ext} at={got.get('occurred_at')} label={lab.kind}/{lab.deal or sorted(lab.ties)} got={got['status']}/{got['deal_id']}+{got.get('secondary_deal_ids')} "
                f"conf={got.get('confidence')} path={got.get('rule_path')} runners={got.get('runners_up')}"
            )
        if lab.rep is None or got["status"] == "excluded":
            continue
        rep = got["rep_id"]
        rep_ok = rep is not None and person.get(rep) == lab.rep and rep in listed
        for t in (s.total, s.traps[lab.trap]):
            t.rep_scored += 1
            t.rep_right += rep_ok
            t.team_right += got["team_id"] == lab.team
        if not rep_ok:
            key = f"{lab.trap}: rep {'none' if rep is None else 'alias id' if person.get(rep) == lab.rep else 'other person'}"
            s.misses[key] += 1
            s.examples.setdefault(key, []).append(
                f"{w.tenant_id} {ext} label={lab.rep} got={rep} status={got['status']} deal={got['deal_id']}"
            )
        elif got["team_id"] != lab.team:
            s.misses[f"{lab.trap}: team {got['team_id']} for {lab.team}"] += 1


def _pct(a: int, b: int) -> str:
    return f"{a / b:.1%}" if b else "-"


def report(s: Score, told: Counter[str], timings: dict[str, float]) -> str:
    t = s.total
    head = (
        f"activities {t.n} (with a deal {t.deal}, honest ties {t.ties}), missing from the API {s.missing}; "
        f"sent {dict(told)}; " + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items())
    )
    rows = [
        "| trap | n | deal | credited precision | credited recall | ties surfaced / picked | rep | team |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, x in [("**all**", t), *sorted(s.traps.items())]:
        rows.append(
            f"| {name} | {x.n} | {x.deal} | {_pct(x.credited_right, x.credited)} ({x.credited_right}/{x.credited}) | "
            f"{_pct(x.credited_right, x.deal)} | {f'{x.ties_surfaced}/{x.ties_picked} of {x.ties}' if x.ties else '-'} | "
            f"{_pct(x.rep_right, x.rep_scored)} | {_pct(x.team_right, x.rep_scored)} |"
        )
    misses = ["misses by cause:", *(f"  {n:5d}  {cause}" for cause, n in s.misses.most_common())]
    return "\n".join([head, "", *rows, "", *misses])


async def run(
    c: Clients, worlds: list[World], save: Path | None = None
) -> tuple[Score, Counter[str], dict[str, float]]:
    return await run_world(c, worlds, save, send_all, score_world, Score)


def rescore(worlds: list[World], saved: Path) -> Score:
    return rescore_world(worlds, saved, score_world, Score)


def main() -> None:
    cli(__doc__, 21, build, run, rescore, report)


if __name__ == "__main__":
    main()
