"""Held-out situations of a first-line sales manager preparing Monday's 1:1s with six reps: the
CRM through ``POST /v1/crm/sync``, five weeks of calls, emails and meetings through ``POST
/v1/events``, goals through the gateway's admin route, read back through the gateway routes the
dashboard reads (rep and team scores, leaderboards, insights, deal timelines, goals, funnel,
weekly digest). The real broker, attribution, metrics and PostgreSQL.

The situations and their answers were written from docs/metrics.md and docs/api.md before
anything ran; each is labelled (S1...) next to its figure. First run: 34 of 41 right (S25 and S26
were read from the wrong place by this test; their figures were right). The 7 wrong had one cause:
a rep's score series listed only periods with figures, so Finn, who did nothing, had no entry, no
zeros and no goals anywhere (S4, S9, S11, S36), and on Monday morning nobody's week in progress
showed its goals (S33-S35). Part B (T1...), the same week on Thursday, was written after the first
run, before it ran: 6 of 7 right (T5, the same cause). Now a rostered rep's silent periods are
listed with zeros (docs/api.md, "Scores"): 48 of 48.

Product decision after the first run: on Monday morning the at-risk list judged the last complete
week but never its goals (``behind_goal`` needs a working day of the week in progress behind it),
so Dev, 0 of 5 connects and 0 of 2 meetings last week, was not at risk. ``missed_goal`` now flags
a weekly goal ended below ``goal_at_risk_pace`` (docs/metrics.md): S21, S21b, S39 and T1 carry it.
S21b, S9b (no zeros before the tenant's first data) and S42 (the board as CSV) were added then,
and S43-S44: a rep's own insights (``rep_id=``; before, a manager filtered a team's stale deals by
their owner by hand); S45, the digest's standing and goals. In all: 54 situations, 40 of 48 right
before (written before running), 54 of 54 now (docs/metrics.md, "Held-out situations: a manager's
Monday 1:1s").

The clock: the read models (stats, goals, insights, digests) are computed as of a pinned instant,
Monday 30 November 2026 09:00 UTC (``refresh_tenant(conn, tenant, NOW)``, as
``tests/integration/test_stale_deals_and_timeline.py`` does) once the pipeline has drained, and
read by a gateway alone; every read names its period. The last complete week is W48 (23-29
November), the week in progress W49, the quarter FY2026-Q4 (1 October - 31 December, a January
fiscal year).

The world: team East, six reps managed by Mia (not on the team):
- Ana, the top rep: two deals (d1 with two buyers, d2 with one), connected calls, a weekly held
  meeting, replies; an internal meeting in W46; a deal d13 won on 25 November.
- Ben, steady: d3 (two buyers) worked every week; d4 (one buyer) answered last on 5 November,
  then one email and a no-show on 24 November; a meeting cancelled on 26 November.
- Cat, whose activity collapses in W48 (20.5 points a week, then 2); d6 never touched.
- Dev, who dials a lot and never connects; d8's buyer answers only with an out-of-office.
- Eva, a new hire on East from 16 November, with two deals created that day.
- Finn, who did nothing; d11 untouched, d12 lost on 10 November.

Scores (default model): an unanswered dial 1; a 120 s connected outbound call 6 (dial 1 + connect 2
+ conversation 3); an email sent 1; a buyer's reply 2.5; an external held meeting 13; a no-show
or cancelled external meeting 5 (booked); an internal held meeting 3.

Weekly scores (activities):
    W44       W45         W46       W47        W48
ana 28.5 (5)  28.5 (5)    31.5 (6)  28.5 (5)   47.5 (7)
ben 11 (6)    13.5 (7)    11 (6)    23 (6)     22.5 (8)
cat 20.5 (9)  20.5 (9)    20.5 (9)  20.5 (9)   2 (2)
dev 11 (11)   11 (11)     11 (11)   10 (10)    10 (10)
eva -         -           -         10 (5)     31.5 (6)
finn -        -           -         -          0 (0)
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.contracts.activities import activity_id_for
from libs.common.settings import DatabaseSettings, KafkaSettings
from libs.common.testing.stack import in_process_stack
from services.gateway.schemas import COUNTERS
from services.metrics.refresher import refresh_tenant
from tests.integration.quarter.quarter_support import Tenant, get, new_tenant, post, settle, sync

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
THURSDAY = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
Q_START = "2026-10-01T00:00:00Z"
REPS = ("ana", "ben", "cat", "dev", "eva", "finn")
WEEKS = {w: date(2026, 10, 26) + timedelta(weeks=w - 44) for w in range(44, 50)}
UNKNOWN = "+12125559999"


def _phone(n: int) -> str:
    return f"+1415555{n:04d}"


REP_PHONE = {key: _phone(n) for n, key in enumerate(REPS, 1)}
#: contact id -> (account, email, phone)
CONTACTS = {
    "c1a": ("acc-1", "amy@one.example", _phone(101)),
    "c1b": ("acc-1", "abe@one.example", _phone(102)),
    "c2": ("acc-2", "bo@two.example", _phone(201)),
    "c3a": ("acc-3", "cy@three.example", _phone(301)),
    "c3b": ("acc-3", "cal@three.example", _phone(302)),
    "c4": ("acc-4", "di@four.example", _phone(401)),
    "c5a": ("acc-5", "ed@five.example", _phone(501)),
    "c5b": ("acc-5", "em@five.example", _phone(502)),
    "c6": ("acc-6", "fi@six.example", _phone(601)),
    "c7": ("acc-7", "gil@seven.example", _phone(701)),
    "c8": ("acc-8", "hu@eight.example", _phone(801)),
    "c9a": ("acc-9", "ida@nine.example", _phone(901)),
    "c9b": ("acc-9", "ike@nine.example", _phone(902)),
    "c10": ("acc-10", "jo@ten.example", _phone(1001)),
    "c11": ("acc-11", "kim@eleven.example", _phone(1101)),
    "c12": ("acc-12", "lu@twelve.example", _phone(1201)),
}
#: deal id -> (owner, contacts, created, closed: None | (won, closed_at))
DEALS: dict[str, tuple[str, tuple[str, ...], str, tuple[bool, str] | None]] = {
    "d1": ("ana", ("c1a", "c1b"), Q_START, None),
    "d2": ("ana", ("c2",), Q_START, None),
    "d3": ("ben", ("c3a", "c3b"), Q_START, None),
    "d4": ("ben", ("c4",), Q_START, None),
    "d5": ("cat", ("c5a", "c5b"), Q_START, None),
    "d6": ("cat", ("c6",), Q_START, None),
    "d7": ("dev", ("c7",), Q_START, None),
    "d8": ("dev", ("c8",), Q_START, None),
    "d9": ("eva", ("c9a", "c9b"), "2026-11-16", None),
    "d10": ("eva", ("c10",), "2026-11-16", None),
    "d11": ("finn", ("c11",), Q_START, None),
    "d12": ("finn", ("c12",), Q_START, (False, "2026-11-10T12:00:00Z")),
    "d13": ("ana", (), Q_START, (True, "2026-11-25T12:00:00Z")),
}


def _crm() -> list[dict[str, Any]]:
    accounts = sorted({a for a, _, _ in CONTACTS.values()} | {"acc-13"}, key=lambda a: int(a[4:]))
    entities: list[dict[str, Any]] = [
        {"entity_type": "team", "id": "team-east", "name": "East"},
        {"entity_type": "rep", "id": "rep-mia", "name": "Mia", "emails": ["mia@seller.example"]},
    ]
    for key in REPS:
        entities.append(
            {
                "entity_type": "rep",
                "id": f"rep-{key}",
                "name": key.title(),
                "emails": [f"{key}@seller.example"],
                "phones": [REP_PHONE[key]],
                "manager_id": "rep-mia",
            }
        )
        entities.append(
            {
                "entity_type": "team_membership",
                "id": f"m-{key}",
                "rep_id": f"rep-{key}",
                "team_id": "team-east",
                "valid_from": "2026-11-16" if key == "eva" else "2026-01-01",
            }
        )
    for account in accounts:
        n = account[4:]
        entities.append(
            {"entity_type": "account", "id": account, "name": f"Account {n}", "domains": [_domain(account)]}
        )
    for contact, (account, address, phone) in CONTACTS.items():
        entities.append(
            {
                "entity_type": "contact",
                "id": contact,
                "name": contact,
                "emails": [address],
                "phones": [phone],
                "account_id": account,
            }
        )
    for deal, (owner, contacts, created, closed) in DEALS.items():
        account = "acc-13" if deal == "d13" else CONTACTS[contacts[0]][0]
        entities.append(
            {
                "entity_type": "deal",
                "id": deal,
                "name": f"Deal {deal}",
                "account_id": account,
                "owner_rep_id": f"rep-{owner}",
                "stage": "proposal" if closed is None else ("closed_won" if closed[0] else "closed_lost"),
                "amount": "10000",
                "is_closed": closed is not None,
                "is_won": bool(closed and closed[0]),
                "created_at": created,
                "closed_at": closed[1] if closed else None,
                "contacts": [{"contact_id": c, "role": "champion"} for c in contacts],
            }
        )
    return entities


def _domain(account: str) -> str:
    words = [
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
        "ten",
        "eleven",
        "twelve",
        "thirteen",
    ]
    return f"{words[int(account[4:]) - 1]}.example"


class World:
    """The activities, with ids ``<rep>-<n>``."""

    def __init__(self) -> None:
        self.activities: list[dict[str, Any]] = []
        self.ids: dict[str, str] = {}

    def _at(self, week: int, day: int, hour: int) -> str:
        return f"{WEEKS[week] + timedelta(days=day)}T{hour:02d}:00:00Z"

    def _add(self, rep: str, activity: dict[str, Any], label: str | None = None) -> None:
        external_id = f"{rep}-{len(self.activities)}"
        self.activities.append({"external_id": external_id, **activity})
        if label:
            self.ids[label] = external_id

    def dials(self, rep: str, week: int, day: int, n: int, to: str = UNKNOWN, hour: int = 9) -> None:
        for i in range(n):
            self._add(
                rep,
                {
                    "source": "dialer",
                    "kind": "call",
                    "direction": "outbound",
                    "outcome": "no_answer",
                    "occurred_at": self._at(week, day, hour + i),
                    "participants": [
                        {"phone": REP_PHONE[rep], "role": "caller"},
                        {"phone": to, "role": "callee"},
                    ],
                },
            )

    def call(self, rep: str, contact: str, week: int, day: int, hour: int) -> None:
        self._add(
            rep,
            {
                "source": "dialer",
                "kind": "call",
                "direction": "outbound",
                "outcome": "connected",
                "duration_seconds": 120,
                "occurred_at": self._at(week, day, hour),
                "participants": [
                    {"phone": REP_PHONE[rep], "role": "caller"},
                    {"phone": CONTACTS[contact][2], "role": "callee"},
                ],
            },
        )

    def sent(self, rep: str, contact: str, week: int, day: int, hour: int) -> None:
        self._add(rep, self._mail(f"{rep}@seller.example", CONTACTS[contact][1], week, day, hour))

    def reply(self, rep: str, contact: str, week: int, day: int, hour: int, **fields: Any) -> None:
        mail = self._mail(CONTACTS[contact][1], f"{rep}@seller.example", week, day, hour)
        self._add(
            rep, {**mail, "direction": "inbound", "outcome": "received", **fields}, fields.get("subject")
        )

    def _mail(self, sender: str, to: str, week: int, day: int, hour: int) -> dict[str, Any]:
        return {
            "source": "mail",
            "kind": "email",
            "direction": "outbound",
            "outcome": "sent",
            "occurred_at": self._at(week, day, hour),
            "participants": [{"email": sender, "role": "from"}, {"email": to, "role": "to"}],
        }

    def meeting(
        self,
        rep: str,
        attendee: str,
        week: int,
        day: int,
        hour: int,
        outcome: str = "held",
        label: str | None = None,
    ) -> None:
        internal = attendee.endswith("@seller.example")
        self._add(
            rep,
            {
                "source": "calendar",
                "kind": "meeting",
                "direction": "internal" if internal else "outbound",
                "outcome": outcome,
                "duration_seconds": 1800,
                "occurred_at": self._at(week, day, hour),
                "participants": [
                    {"email": f"{rep}@seller.example", "role": "organizer"},
                    {"email": attendee if internal else CONTACTS[attendee][1], "role": "attendee"},
                ],
            },
            label,
        )


def _world() -> World:
    w = World()
    for week in (44, 45, 46, 47):
        # Ana: 2 conversations, an email, a reply, a held meeting: 28.5.
        w.call("ana", "c1a", week, 1, 10)
        w.call("ana", "c2", week, 1, 11)
        w.sent("ana", "c1b", week, 2, 10)
        w.reply("ana", "c1b", week, 3, 10)
        w.meeting("ana", "c1a", week, 3, 15)
        # Cat: 5 dials, 2 conversations, an email, a reply: 20.5.
        w.dials("cat", week, 0, 5)
        w.call("cat", "c5a", week, 1, 10)
        w.call("cat", "c5b", week, 2, 10)
        w.sent("cat", "c5a", week, 2, 11)
        w.reply("cat", "c5a", week, 3, 14)
    w.meeting("ana", "ops@seller.example", 46, 4, 10, label="internal")
    # Ana W48: 3 conversations, an email, a reply (d2), 2 held meetings: 47.5.
    w.call("ana", "c1a", 48, 0, 10)
    w.call("ana", "c1b", 48, 1, 10)
    w.call("ana", "c2", 48, 1, 11)
    w.sent("ana", "c2", 48, 1, 12)
    w.reply("ana", "c2", 48, 2, 15)
    w.meeting("ana", "c1a", 48, 3, 10)
    w.meeting("ana", "c1b", 48, 4, 10)
    # Ben.
    for week in (44, 45, 46, 47, 48):
        w.dials("ben", week, 0, 4)
    w.call("ben", "c3a", 44, 1, 10)
    w.sent("ben", "c3b", 44, 2, 10)
    w.call("ben", "c3a", 45, 1, 10)
    w.sent("ben", "c4", 45, 2, 10)
    w.reply("ben", "c4", 45, 3, 10)
    w.call("ben", "c3b", 46, 0, 14)
    w.sent("ben", "c4", 46, 1, 10)
    w.call("ben", "c3a", 47, 1, 10)
    w.meeting("ben", "c3b", 47, 2, 10)
    w.call("ben", "c3a", 48, 0, 14)
    w.reply("ben", "c3b", 48, 1, 10)
    w.meeting("ben", "c4", 48, 1, 16, "no_show")
    w.meeting("ben", "c3b", 48, 3, 10, "cancelled")
    # Cat W48: two dials.
    w.dials("cat", 48, 1, 2)
    # Dev: two unanswered dials to Gil (d7) and eight to nobody every week; emails to Hu (d8).
    for week in (44, 45, 46, 47, 48):
        w.dials("dev", week, 0, 1, CONTACTS["c7"][2])
        w.dials("dev", week, 4, 1, CONTACTS["c7"][2], hour=10)
        w.dials("dev", week, 1, 8)
    for week in (44, 45, 46):
        w.sent("dev", "c8", week, 3, 14)
    w.reply("dev", "c8", 48, 2, 8, subject="Automatic reply: Out of office")
    # Eva, from 16 November.
    w.dials("eva", 47, 0, 3)
    w.sent("eva", "c9a", 47, 1, 10)
    w.call("eva", "c9a", 47, 2, 10)
    w.meeting("eva", "c9a", 48, 0, 15)
    w.meeting("eva", "c9b", 48, 1, 10)
    w.reply("eva", "c9b", 48, 1, 15)
    w.sent("eva", "c9b", 48, 2, 10)
    w.dials("eva", 48, 2, 2, hour=11)
    return w


GOALS = {
    "east-meetings": {
        "scope": "team",
        "subject_id": "team-east",
        "period": "week",
        "metric": "meetings_held",
        "target": 2,
    },
    "dev-connects": {
        "scope": "rep",
        "subject_id": "rep-dev",
        "period": "week",
        "metric": "connects",
        "target": 5,
    },
    "quarter-score": {"scope": "tenant", "period": "quarter", "metric": "score", "target": 300},
}


def _r(value: Any) -> Any:
    return round(value, 4) if isinstance(value, float) else value


async def _card(stack: Any, tenant: Tenant, rep: str, start: str) -> Any:
    """(score, counters in COUNTERS order) of the rep's week starting ``start``; None: no entry."""
    body = await get(stack, tenant, f"/v1/reps/rep-{rep}/scores?granularity=week&from={start}&to={start}")
    if not body["periods"]:
        return None
    p = body["periods"][0]
    return (p["score"], tuple(p["counts"][c] for c in COUNTERS))


async def _series(
    stack: Any, tenant: Tenant, kind: str, entity: str, granularity: str, start: str, end: str
) -> Any:
    body = await get(
        stack, tenant, f"/v1/{kind}/{entity}/scores?granularity={granularity}&from={start}&to={end}"
    )
    return {p["period_start"]: (p["score"], p["counts"]["activities"]) for p in body["periods"]}


def _ranked(entries: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """(rank, rep, value, activities) of each leaderboard entry."""
    return [(e["rank"], e["rep_id"].removeprefix("rep-"), e["value"], e["activities"]) for e in entries]


async def _board(stack: Any, tenant: Tenant, query: str) -> list[tuple[Any, ...]]:
    return _ranked((await get(stack, tenant, f"/v1/leaderboard?limit=50&{query}"))["entries"])


async def _items(stack: Any, tenant: Tenant, url: str) -> list[dict[str, Any]]:
    """The ``items`` of an insights page."""
    items: list[dict[str, Any]] = (await get(stack, tenant, url))["items"]
    return items


def _reasons(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Each insight's subject -> (its period, its reasons)."""
    return {i["subject_id"]: (i["period_start"], i["reasons"]) for i in items}


async def test_a_manager_prepares_monday_one_on_ones(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    tenant = await new_tenant(db_engine)
    world = _world()
    async with in_process_stack(kafka_settings, database_settings) as stack:
        await sync(stack, db_engine, tenant, Q_START, *_crm())
        await post(stack, tenant, *world.activities)
        for goal_id, goal in GOALS.items():
            response = await stack.gateway.put(f"/v1/goals/{goal_id}", json=goal, headers=tenant.admin)
            assert response.status_code in (200, 201), response.text
        await settle(kafka_settings)
    async with db_engine.begin() as conn:
        # The digest is stored once, at the first refresh after the week: the one as of NOW.
        await conn.execute(text("DELETE FROM manager_digests WHERE tenant_id = :t"), {"t": tenant.tenant_id})
        await refresh_tenant(conn, tenant.tenant_id, NOW)

    found: dict[str, Any] = {}
    async with in_process_stack(kafka_settings, database_settings, services=("gateway",)) as stack:
        w48, w47 = "2026-11-23", "2026-11-16"
        found["S1 ana W48 card"] = await _card(stack, tenant, "ana", w48)
        found["S2 ben W48 card: a no-show, a cancellation"] = await _card(stack, tenant, "ben", w48)
        found["S3 dev W48 card: dials, no connect, the out-of-office not counted"] = await _card(
            stack, tenant, "dev", w48
        )
        found["S4 finn W48 card: zeros"] = await _card(stack, tenant, "finn", w48)
        found["S5 ana W46 card: an internal meeting"] = await _card(stack, tenant, "ana", "2026-11-09")
        for key, label in (("ben", "S6"), ("cat", "S7"), ("eva", "S8"), ("finn", "S9")):
            found[f"{label} {key} weeks W44-W48"] = await _series(
                stack, tenant, "reps", f"rep-{key}", "week", "2026-10-26", w48
            )
        # Asked from W41: the tenant's data starts in W44, so nothing before (no silence to show).
        found["S9b finn weeks W41-W48"] = await _series(
            stack, tenant, "reps", "rep-finn", "week", "2026-10-05", w48
        )
        found["S10 team weeks W44-W48"] = await _series(
            stack, tenant, "teams", "team-east", "week", "2026-10-26", w48
        )
        found["S11 quarter to date per rep"] = {
            key: await _series(stack, tenant, "reps", f"rep-{key}", "quarter", "2026-10-01", "2026-10-01")
            for key in REPS
        }
        found["S12 team quarter to date"] = await _series(
            stack, tenant, "teams", "team-east", "quarter", "2026-10-01", "2026-10-01"
        )
        board = await get(stack, tenant, f"/v1/leaderboard?limit=50&team_id=team-east&period=week&date={w48}")
        found["S13 W48 board"] = _ranked(board["entries"])
        found["S14 W48 percentiles"] = {
            e["rep_id"].removeprefix("rep-"): e["team_percentile"] for e in board["entries"]
        }
        found["S15 W48 change vs baseline, insufficient data"] = {
            e["rep_id"].removeprefix("rep-"): (_r(e["change_vs_baseline"]), e["insufficient_data"])
            for e in board["entries"]
        }
        found["S16 W48 mia's board"] = await _board(
            stack, tenant, f"manager_id=rep-mia&period=week&date={w48}"
        )
        found["S17 W48 tenant board"] = await _board(stack, tenant, f"period=week&date={w48}")
        found["S18 W48 connects"] = await _board(
            stack, tenant, f"team_id=team-east&period=week&date={w48}&metric=connects"
        )
        held = await get(
            stack,
            tenant,
            f"/v1/leaderboard?limit=50&team_id=team-east&period=week&date={w48}&metric=meetings_held",
        )
        found["S19 W48 meetings held with goals"] = [
            (
                e["rank"],
                e["rep_id"].removeprefix("rep-"),
                e["value"],
                e["goal"]
                and (
                    e["goal"]["target"],
                    e["goal"]["actual"],
                    e["goal"]["attainment"],
                    e["goal"]["complete"],
                ),
            )
            for e in held["entries"]
        ]
        found["S20 quarter board"] = await _board(
            stack, tenant, f"team_id=team-east&period=quarter&date={w48}"
        )

        at_risk = await _items(stack, tenant, "/v1/insights/at-risk-reps?team_id=team-east&limit=50")
        found["S21 at risk"] = _reasons(at_risk)
        details = {i["subject_id"]: i["details"] for i in at_risk}
        found["S21b dev's missed goals"] = [
            (g["metric"], g["target"], g["actual"], g["attainment"], g["why"])
            for g in details.get("rep-dev", {}).get("missed_goals", [])
        ]
        keys = (
            "score",
            "team_median",
            "baseline_score",
            "change_vs_baseline",
            "activities",
            "baseline_activities",
        )
        for rep, label in (("rep-cat", "S22 cat's details"), ("rep-finn", "S23 finn's details")):
            d = details.get(rep, {})
            found[label] = (*(_r(d.get(k)) for k in keys), d.get("insufficient_data"))

        bright = await _items(stack, tenant, "/v1/insights/bright-spots?team_id=team-east&limit=50")
        found["S24 bright spots"] = _reasons(bright)
        spots = {i["subject_id"]: i["details"] for i in bright}
        for rep, metric, label in (
            ("rep-ana", "conversations", "S25 ana's conversations"),
            ("rep-ben", "meetings_booked", "S26 ben's meetings booked"),
        ):
            entries: list[dict[str, Any]] = spots.get(rep, {}).get("metrics", [])
            spot: dict[str, Any] = next((m for m in entries if m["metric"] == metric), {})
            found[label] = tuple(
                _r(spot.get(k)) for k in ("value", "rank", "team_median", "ratio_to_median", "why")
            )

        stale = await _items(stack, tenant, "/v1/insights/stale-deals?limit=50")
        found["S27 stale deals"] = {i["subject_id"]: i["reasons"] for i in stale}
        found["S28 stale deals' ages"] = {
            i["subject_id"]: (
                i["details"]["owner_rep_id"].removeprefix("rep-"),
                i["details"]["days_since_activity"],
                i["details"]["days_since_buyer_reply"],
                i["details"]["age_days"],
                i["details"]["engaged_contacts"],
                i["details"]["last_activity_at"],
            )
            for i in stale
        }
        east = await _items(stack, tenant, "/v1/insights/stale-deals?team_id=team-east&limit=50")
        found["S29 east's stale deals"] = sorted(i["subject_id"] for i in east)
        for deal, label in (("d4", "S30 d4's timeline"), ("d8", "S31 d8's timeline")):
            s = (await get(stack, tenant, f"/v1/deals/{deal}/activities?limit=50"))["summary"]
            found[label] = (
                s["activities"],
                s["last_activity_at"],
                sorted(s["engaged_contact_ids"]),
                s["buyer_replies"],
                s["last_buyer_reply_at"],
            )
        ooo = activity_id_for(tenant.tenant_id, "mail", world.ids["Automatic reply: Out of office"])
        internal = activity_id_for(tenant.tenant_id, "calendar", world.ids["internal"])
        found["S32 the out-of-office, the internal meeting"] = [
            (await get(stack, tenant, f"/v1/activities/{a}"))["attribution"]["status"]
            for a in (ooo, internal)
        ]

        def goals_of(body: dict[str, Any]) -> dict[str, Any]:
            return {
                p["period_start"]: sorted(
                    (
                        g["metric"],
                        g["target"],
                        g["actual"],
                        _r(g["attainment"]),
                        _r(g["expected_by_now"]),
                        _r(g["pace"]),
                        g["days_left"],
                        g["complete"],
                    )
                    for g in p["goals"]
                )
                for p in body["periods"]
            }

        for rep, label in (("ana", "S33"), ("ben", "S34"), ("dev", "S35"), ("finn", "S36")):
            weeks = await get(
                stack, tenant, f"/v1/reps/rep-{rep}/scores?granularity=week&from={w48}&to=2026-11-30"
            )
            quarter = await get(
                stack, tenant, f"/v1/reps/rep-{rep}/scores?granularity=quarter&from=2026-10-01&to=2026-10-01"
            )
            found[f"{label} {rep}'s goals W48, W49, quarter"] = {**goals_of(weeks), **goals_of(quarter)}

        funnel = await get(stack, tenant, f"/v1/funnel?team_id=team-east&from={w48}&to=2026-11-29")
        found["S37 team funnel W48"] = [
            (s["step"], s["count"], s["ratio_to_previous"]) for s in funnel["steps"]
        ]
        dev = await get(stack, tenant, "/v1/funnel?rep_id=rep-dev&from=2026-10-01&to=2026-11-29")
        found["S38 dev's funnel QTD"] = (
            [(s["step"], s["count"], s["ratio_to_previous"]) for s in dev["steps"]],
            dev["ratios"]["dials_per_connect"],
            dev["ratios"]["emails_per_buyer_reply"],
            {k: dev["leading_indicators"][k] for k in ("activities", "emails_sent", "buyer_replies")},
        )
        digest = await get(stack, tenant, f"/v1/digests/weekly?manager_id=rep-mia&week={w48}")
        found["S39 mia's digest W48"] = (
            sorted((r["rep_id"].removeprefix("rep-"), r["score"], r["activities"]) for r in digest["reps"]),
            sorted(i["subject_id"] for i in digest["at_risk_reps"]),
            sorted(i["subject_id"] for i in digest["bright_spots"]),
            sorted(i["subject_id"] for i in digest["stale_deals"]),
        )
        found["S45 mia's digest W48: standing and goals"] = [
            (
                r["rep_id"].removeprefix("rep-"),
                r["team_id"],
                r["team_percentile"],
                r["insufficient_data"],
                [(g["metric"], g["actual"], g["attainment"]) for g in r["goals"]],
            )
            for r in digest["reps"]
        ]
        finn = await get(stack, tenant, "/v1/reps/rep-finn")
        mias = await get(stack, tenant, "/v1/reps?manager_id=rep-mia")
        found["S40 finn on the team; mia's reps"] = (
            finn["team_ids"],
            finn["active"],
            [r["rep_id"].removeprefix("rep-") for r in mias["items"]],
        )
        found["S41 W47 board (eva's first week)"] = await _board(
            stack, tenant, f"team_id=team-east&period=week&date={w47}"
        )
        found["S43 each rep's stale deals"] = {
            key: sorted(
                i["subject_id"]
                for i in await _items(stack, tenant, f"/v1/insights/stale-deals?rep_id=rep-{key}")
            )
            for key in REPS
        }
        unknown = await stack.gateway.get("/v1/insights/stale-deals?rep_id=rep-nobody", headers=tenant.read)
        found["S44 dev's at-risk and ana's bright-spot rows; an unknown rep"] = (
            [
                i["subject_id"]
                for i in await _items(stack, tenant, "/v1/insights/at-risk-reps?rep_id=rep-dev")
            ],
            [
                i["subject_id"]
                for i in await _items(stack, tenant, "/v1/insights/bright-spots?rep_id=rep-ana")
            ],
            unknown.status_code,
        )
        exported = await stack.gateway.get(
            f"/v1/leaderboard?limit=50&team_id=team-east&period=week&date={w48}",
            headers={**tenant.read, "Accept": "text/csv"},
        )
        found["S42 W48 board as CSV"] = [
            (r["rank"], r["rep_id"], r["value"], r["activities"], r["team_percentile"])
            for r in csv.DictReader(io.StringIO(exported.text))
        ]

    # Part B: the week in progress goes on (W49: Ana and Eva hold a meeting each, Ben connects
    # once, Dev dials); the read models as of Thursday 3 December 09:00, three working days in.
    thursday = World()
    thursday.meeting("ana", "c1a", 49, 1, 10)
    thursday.call("ana", "c1a", 49, 2, 10)
    thursday.meeting("eva", "c9a", 49, 2, 10)
    thursday.call("ben", "c3a", 49, 1, 10)
    thursday.dials("dev", 49, 1, 1, CONTACTS["c7"][2])
    thursday.dials("dev", 49, 2, 5)
    for activity in thursday.activities:
        activity["external_id"] = f"w49-{activity['external_id']}"
    async with in_process_stack(kafka_settings, database_settings) as stack:
        await post(stack, tenant, *thursday.activities)
        await settle(kafka_settings)
    async with db_engine.begin() as conn:
        await refresh_tenant(conn, tenant.tenant_id, THURSDAY)
    async with in_process_stack(kafka_settings, database_settings, services=("gateway",)) as stack:
        w49 = "2026-11-30"
        at_risk = await _items(stack, tenant, "/v1/insights/at-risk-reps?team_id=team-east&limit=50")
        found["T1 at risk on Thursday"] = _reasons(at_risk)
        found["T2 dev's goals behind"] = [
            (g["metric"], g["target"], g["actual"], _r(g["pace"]), g["days_left"], g["why"])
            for i in at_risk
            if i["subject_id"] == "rep-dev"
            for g in i["details"]["goals"]
        ]
        held = await get(
            stack,
            tenant,
            "/v1/leaderboard?limit=50&team_id=team-east&period=week&date=2026-12-03&metric=meetings_held",
        )
        found["T3 W49 meetings held so far"] = [
            (
                e["rank"],
                e["rep_id"].removeprefix("rep-"),
                e["value"],
                e["goal"] and (e["goal"]["actual"], _r(e["goal"]["expected_by_now"]), _r(e["goal"]["pace"])),
            )
            for e in held["entries"]
        ]
        for rep, label in (("ana", "T4"), ("finn", "T5")):
            body = await get(stack, tenant, f"/v1/reps/rep-{rep}/scores?granularity=week&from={w49}&to={w49}")
            found[f"{label} {rep}'s W49 so far"] = [
                (
                    p["score"],
                    p["counts"]["activities"],
                    [(g["metric"], g["actual"], _r(g["pace"]), g["days_left"]) for g in p["goals"]],
                )
                for p in body["periods"]
            ]
        stale = await _items(stack, tenant, "/v1/insights/stale-deals?limit=50")
        found["T6 stale deals on Thursday"] = {
            i["subject_id"]: (
                i["reasons"],
                i["details"]["days_since_activity"],
                i["details"]["days_since_buyer_reply"],
                i["details"]["age_days"],
            )
            for i in stale
        }
        bright = await _items(stack, tenant, "/v1/insights/bright-spots?team_id=team-east&limit=50")
        found["T7 bright spots still W48's"] = sorted((i["subject_id"], i["period_start"]) for i in bright)

    weeks5 = [str(WEEKS[w]) for w in range(44, 49)]
    zero = (0,) * len(COUNTERS)
    card = dict(zip(COUNTERS, zero, strict=True))

    def counts(**values: int) -> tuple[int, ...]:
        return tuple({**card, **values}[c] for c in COUNTERS)

    # The W48 board: Team East's (S13), Mia's reps' (S16) and the tenant's (S17) alike.
    w48_board = [
        (1, "ana", 47.5, 7),
        (2, "eva", 31.5, 6),
        (3, "ben", 22.5, 8),
        (4, "dev", 10.0, 10),
        (5, "cat", 2.0, 2),
        (6, "finn", 0.0, 0),
    ]
    expected: dict[str, Any] = {
        "S1 ana W48 card": (
            47.5,
            counts(
                activities=7,
                dials=3,
                connects=3,
                conversations=3,
                talk_seconds=360,
                emails_sent=1,
                emails_received=1,
                buyer_replies=1,
                meetings_booked=2,
                meetings_held=2,
            ),
        ),
        "S2 ben W48 card: a no-show, a cancellation": (
            22.5,
            counts(
                activities=8,
                dials=5,
                connects=1,
                conversations=1,
                talk_seconds=120,
                emails_received=1,
                buyer_replies=1,
                meetings_booked=2,
                meetings_cancelled=1,
                meetings_no_show=1,
            ),
        ),
        "S3 dev W48 card: dials, no connect, the out-of-office not counted": (
            10.0,
            counts(activities=10, dials=10),
        ),
        "S4 finn W48 card: zeros": (0.0, zero),
        "S5 ana W46 card: an internal meeting": (
            31.5,
            counts(
                activities=6,
                dials=2,
                connects=2,
                conversations=2,
                talk_seconds=240,
                emails_sent=1,
                emails_received=1,
                buyer_replies=1,
                meetings_booked=1,
                meetings_held=1,
                internal_meetings_held=1,
            ),
        ),
        "S6 ben weeks W44-W48": dict(
            zip(weeks5, [(11.0, 6), (13.5, 7), (11.0, 6), (23.0, 6), (22.5, 8)], strict=True)
        ),
        "S7 cat weeks W44-W48": dict(zip(weeks5, [(20.5, 9)] * 4 + [(2.0, 2)], strict=True)),
        # Eva joined on 16 November: nothing before W47.
        "S8 eva weeks W44-W48": {"2026-11-16": (10.0, 5), "2026-11-23": (31.5, 6)},
        # Finn was on the team all along: silence is a figure, one zero entry per week asked.
        "S9 finn weeks W44-W48": dict(zip(weeks5, [(0.0, 0)] * 5, strict=True)),
        "S9b finn weeks W41-W48": dict(zip(weeks5, [(0.0, 0)] * 5, strict=True)),
        "S10 team weeks W44-W48": dict(
            zip(weeks5, [(71.0, 31), (73.5, 32), (74.0, 32), (92.0, 35), (113.5, 33)], strict=True)
        ),
        "S11 quarter to date per rep": {
            "ana": {"2026-10-01": (164.5, 28)},
            "ben": {"2026-10-01": (81.0, 33)},
            "cat": {"2026-10-01": (84.0, 38)},
            "dev": {"2026-10-01": (53.0, 53)},
            "eva": {"2026-10-01": (41.5, 11)},
            "finn": {"2026-10-01": (0.0, 0)},
        },
        "S12 team quarter to date": {"2026-10-01": (424.0, 163)},
        "S13 W48 board": w48_board,
        "S14 W48 percentiles": {
            "ana": 100.0,
            "eva": 80.0,
            "ben": 60.0,
            "dev": 40.0,
            "cat": 20.0,
            "finn": 0.0,
        },
        "S15 W48 change vs baseline, insufficient data": {
            "ana": (0.6239, False),
            "eva": (None, True),
            "ben": (0.5385, False),
            "dev": (-0.0698, False),
            "cat": (-0.9024, False),
            "finn": (None, True),
        },
        "S16 W48 mia's board": w48_board,
        # Mia is on no team and did nothing: not on the tenant's board.
        "S17 W48 tenant board": w48_board,
        "S18 W48 connects": [
            (1, "ana", 3.0, 7),
            (2, "ben", 1.0, 8),
            (3, "cat", 0.0, 2),
            (3, "dev", 0.0, 10),
            (3, "eva", 0.0, 6),
            (3, "finn", 0.0, 0),
        ],
        "S19 W48 meetings held with goals": [
            (1, "ana", 2.0, (2.0, 2.0, 1.0, True)),
            (1, "eva", 2.0, (2.0, 2.0, 1.0, True)),
            (3, "ben", 0.0, (2.0, 0.0, 0.0, True)),
            (3, "cat", 0.0, (2.0, 0.0, 0.0, True)),
            (3, "dev", 0.0, (2.0, 0.0, 0.0, True)),
            (3, "finn", 0.0, (2.0, 0.0, 0.0, True)),
        ],
        "S20 quarter board": [
            (1, "ana", 164.5, 28),
            (2, "cat", 84.0, 38),
            (3, "ben", 81.0, 33),
            (4, "dev", 53.0, 53),
            (5, "eva", 41.5, 11),
            (6, "finn", 0.0, 0),
        ],
        # Cat: 2 points against her 20.5 baseline, 2 activities against 9. Finn: silent all week
        # (his W47 has no row, so no below-median run). W47's median without Finn is 20.5: Dev
        # and Eva (10 each) were under half of it, but not in W48 (median 16.25, half 8.125).
        # Ben, Cat, Dev and Finn held no meeting in W48 against the team's goal of 2, and Dev made
        # no connect against his 5: missed (below 60 %). Written before the first run without
        # missed_goal (Cat and Finn alone, which the docs then gave, and the run too); the reason
        # was added after it, for the Monday 1:1 (docs/metrics.md, "missed_goal").
        "S21 at risk": {
            "rep-ben": (w48, ["missed_goal"]),
            "rep-cat": (w48, ["drop_against_baseline", "low_volume", "missed_goal"]),
            "rep-dev": (w48, ["missed_goal"]),
            "rep-finn": (w48, ["no_activity", "missed_goal"]),
        },
        "S21b dev's missed goals": [
            ("connects", 5.0, 0.0, 0.0, "reached 0 % of the connects goal (0 of 5)"),
            ("meetings_held", 2.0, 0.0, 0.0, "reached 0 % of the meetings held goal (0 of 2)"),
        ],
        "S22 cat's details": (2.0, 16.25, 20.5, -0.9024, 2, 9.0, False),
        "S23 finn's details": (0.0, 16.25, None, None, 0, None, True),
        "S24 bright spots": {
            "rep-ana": (w48, ["conversations", "meetings_booked", "meetings_held"]),
            "rep-ben": (w48, ["meetings_booked"]),
            "rep-eva": (w48, ["meetings_booked", "meetings_held"]),
        },
        "S25 ana's conversations": (3, 1, 0.0, None, "conversations 3 vs team median 0"),
        "S26 ben's meetings booked": (2, 1, 1.0, 2.0, "meetings booked 2.0 x team median (2 vs 1)"),
        "S27 stale deals": {
            "d2": ["single_threaded"],
            "d4": ["single_threaded", "no_buyer_reply"],
            "d6": ["no_recent_activity", "no_buyer_reply"],
            "d7": ["single_threaded", "no_buyer_reply"],
            "d8": ["no_recent_activity", "single_threaded", "no_buyer_reply"],
            "d10": ["no_recent_activity"],
            "d11": ["no_recent_activity", "no_buyer_reply"],
        },
        "S28 stale deals' ages": {
            "d2": ("ana", 4, 4, 60, 1, "2026-11-25T15:00:00+00:00"),
            "d4": ("ben", 5, 24, 60, 1, "2026-11-24T16:00:00+00:00"),
            "d6": ("cat", 60, 60, 60, 0, None),
            "d7": ("dev", 2, 60, 60, 1, "2026-11-27T10:00:00+00:00"),
            "d8": ("dev", 17, 60, 60, 1, "2026-11-12T14:00:00+00:00"),
            "d10": ("eva", 14, 14, 14, 0, None),
            "d11": ("finn", 60, 60, 60, 0, None),
        },
        "S29 east's stale deals": sorted(["d2", "d4", "d6", "d7", "d8", "d10", "d11"]),
        "S30 d4's timeline": (4, "2026-11-24T16:00:00Z", ["c4"], 1, "2026-11-05T10:00:00Z"),
        "S31 d8's timeline": (3, "2026-11-12T14:00:00Z", ["c8"], 0, None),
        "S32 the out-of-office, the internal meeting": ["excluded", "internal"],
        # W48 complete; W49 began this morning (no working day passed: pace null); the quarter:
        # 42 of 66 working days passed, so 300 x 42 / 66 = 190.9091 expected by now.
        "S33 ana's goals W48, W49, quarter": {
            w48: [("meetings_held", 2.0, 2.0, 1.0, 2.0, 1.0, 0, True)],
            "2026-11-30": [("meetings_held", 2.0, 0.0, 0.0, 0.0, None, 5, False)],
            "2026-10-01": [("score", 300.0, 164.5, 0.5483, 190.9091, 0.8617, 24, False)],
        },
        "S34 ben's goals W48, W49, quarter": {
            w48: [("meetings_held", 2.0, 0.0, 0.0, 2.0, 0.0, 0, True)],
            "2026-11-30": [("meetings_held", 2.0, 0.0, 0.0, 0.0, None, 5, False)],
            "2026-10-01": [("score", 300.0, 81.0, 0.27, 190.9091, 0.4243, 24, False)],
        },
        "S35 dev's goals W48, W49, quarter": {
            w48: [
                ("connects", 5.0, 0.0, 0.0, 5.0, 0.0, 0, True),
                ("meetings_held", 2.0, 0.0, 0.0, 2.0, 0.0, 0, True),
            ],
            "2026-11-30": [
                ("connects", 5.0, 0.0, 0.0, 0.0, None, 5, False),
                ("meetings_held", 2.0, 0.0, 0.0, 0.0, None, 5, False),
            ],
            "2026-10-01": [("score", 300.0, 53.0, 0.1767, 190.9091, 0.2776, 24, False)],
        },
        "S36 finn's goals W48, W49, quarter": {
            w48: [("meetings_held", 2.0, 0.0, 0.0, 2.0, 0.0, 0, True)],
            "2026-11-30": [("meetings_held", 2.0, 0.0, 0.0, 0.0, None, 5, False)],
            "2026-10-01": [("score", 300.0, 0.0, 0.0, 190.9091, 0.0, 24, False)],
        },
        "S37 team funnel W48": [
            ("dials", 22, None),
            ("connects", 4, 0.1818),
            ("conversations", 4, 1.0),
            ("meetings_booked", 6, 1.5),
            ("meetings_held", 4, 0.6667),
            ("opportunities_created", 0, 0.0),
            ("deals_won", 1, None),
        ],
        "S38 dev's funnel QTD": (
            [
                ("dials", 50, None),
                ("connects", 0, 0.0),
                ("conversations", 0, None),
                ("meetings_booked", 0, None),
                ("meetings_held", 0, None),
                ("opportunities_created", 2, None),
                ("deals_won", 0, 0.0),
            ],
            None,
            None,
            {"activities": 53, "emails_sent": 3, "buyer_replies": 0},
        ),
        "S39 mia's digest W48": (
            [
                ("ana", 47.5, 7),
                ("ben", 22.5, 8),
                ("cat", 2.0, 2),
                ("dev", 10.0, 10),
                ("eva", 31.5, 6),
                ("finn", 0.0, 0),
            ],
            ["rep-ben", "rep-cat", "rep-dev", "rep-finn"],
            ["rep-ana", "rep-ben", "rep-eva"],
            sorted(["d2", "d4", "d6", "d7", "d8", "d10", "d11"]),
        ),
        "S40 finn on the team; mia's reps": (
            ["team-east"],
            True,
            ["ana", "ben", "cat", "dev", "eva", "finn"],
        ),
        "S41 W47 board (eva's first week)": [
            (1, "ana", 28.5, 5),
            (2, "ben", 23.0, 6),
            (3, "cat", 20.5, 9),
            (4, "dev", 10.0, 10),
            (4, "eva", 10.0, 5),
            (6, "finn", 0.0, 0),
        ],
    }
    expected["S42 W48 board as CSV"] = [
        ("1", "rep-ana", "47.5", "7", "100.0"),
        ("2", "rep-eva", "31.5", "6", "80.0"),
        ("3", "rep-ben", "22.5", "8", "60.0"),
        ("4", "rep-dev", "10.0", "10", "40.0"),
        ("5", "rep-cat", "2.0", "2", "20.0"),
        ("6", "rep-finn", "0.0", "0", "0.0"),
    ]
    expected["S43 each rep's stale deals"] = {
        "ana": ["d2"],
        "ben": ["d4"],
        "cat": ["d6"],
        "dev": ["d7", "d8"],
        "eva": ["d10"],
        "finn": ["d11"],
    }
    expected["S44 dev's at-risk and ana's bright-spot rows; an unknown rep"] = (["rep-dev"], ["rep-ana"], 404)
    expected["S45 mia's digest W48: standing and goals"] = [
        ("ana", "team-east", 100.0, False, [("meetings_held", 2.0, 1.0)]),
        ("ben", "team-east", 60.0, False, [("meetings_held", 0.0, 0.0)]),
        ("cat", "team-east", 20.0, False, [("meetings_held", 0.0, 0.0)]),
        ("dev", "team-east", 40.0, False, [("connects", 0.0, 0.0), ("meetings_held", 0.0, 0.0)]),
        ("eva", "team-east", 80.0, True, [("meetings_held", 2.0, 1.0)]),
        ("finn", "team-east", 0.0, True, [("meetings_held", 0.0, 0.0)]),
    ]
    behind = "at 0 % of the {} goal with 2 days left"
    expected |= {
        # Three working days in: 2 x 3 / 5 = 1.2 meetings and 5 x 3 / 5 = 3 connects expected.
        # Ana and Eva (1 held, pace 0.83) are on pace; the others at 0 are behind (below 0.6).
        # W48's reasons stay (the last complete week, missed_goal with them); behind_goal joins
        # them (before missed_goal, Ben's and Dev's rows were dated on the week in progress).
        "T1 at risk on Thursday": {
            "rep-ben": (w48, ["missed_goal", "behind_goal"]),
            "rep-cat": (w48, ["drop_against_baseline", "low_volume", "missed_goal", "behind_goal"]),
            "rep-dev": (w48, ["missed_goal", "behind_goal"]),
            "rep-finn": (w48, ["no_activity", "missed_goal", "behind_goal"]),
        },
        "T2 dev's goals behind": [
            ("connects", 5.0, 0.0, 0.0, 2, behind.format("connects")),
            ("meetings_held", 2.0, 0.0, 0.0, 2, behind.format("meetings held")),
        ],
        "T3 W49 meetings held so far": [
            (1, "ana", 1.0, (1.0, 1.2, 0.8333)),
            (1, "eva", 1.0, (1.0, 1.2, 0.8333)),
            (3, "ben", 0.0, (0.0, 1.2, 0.0)),
            (3, "cat", 0.0, (0.0, 1.2, 0.0)),
            (3, "dev", 0.0, (0.0, 1.2, 0.0)),
            (3, "finn", 0.0, (0.0, 1.2, 0.0)),
        ],
        "T4 ana's W49 so far": [(19.0, 2, [("meetings_held", 1.0, 0.8333, 2)])],
        "T5 finn's W49 so far": [(0.0, 0, [("meetings_held", 0.0, 0.0, 2)])],
        # Three days later: Cat's d5 (last touched 19 November 14:00) is 13 days quiet, not yet 14.
        "T6 stale deals on Thursday": {
            "d2": (["single_threaded"], 7, 7, 63),
            "d4": (["single_threaded", "no_buyer_reply"], 8, 27, 63),
            "d6": (["no_recent_activity", "no_buyer_reply"], 63, 63, 63),
            "d7": (["single_threaded", "no_buyer_reply"], 2, 63, 63),
            "d8": (["no_recent_activity", "single_threaded", "no_buyer_reply"], 20, 63, 63),
            "d10": (["no_recent_activity"], 17, 17, 17),
            "d11": (["no_recent_activity", "no_buyer_reply"], 63, 63, 63),
        },
        "T7 bright spots still W48's": [("rep-ana", w48), ("rep-ben", w48), ("rep-eva", w48)],
    }
    wrong = {k: (found.get(k), v) for k, v in expected.items() if found.get(k) != v}
    assert not wrong, "\n".join(f"{k}: found {f!r}, expected {e!r}" for k, (f, e) in wrong.items())
