"""Seed data for the gateway tests (two tenants written straight into the read models), and a server.

The figures here are the expected values the tests assert; the pipeline that normally fills
these tables is tested elsewhere (and end to end in test_gateway_override.py).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

import orjson
import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from libs.common.settings import DatabaseSettings, KafkaSettings, RuntimeSettings
from libs.common.tenancy import create_tenant
from libs.common.testing.stack import TEST_SECRET_KEY
from services.gateway.adapters import calendar
from services.gateway.settings import GatewayOptions, GatewaySettings


@dataclass(frozen=True)
class Keys:
    read: str
    admin: str
    ingest: str
    other_read: str
    other_admin: str


HS256_SECRET = "gateway-test-hs256-secret-of-32-bytes!"


def gateway_settings(
    database: DatabaseSettings, options: GatewayOptions, kafka: KafkaSettings | None = None
) -> GatewaySettings:
    return GatewaySettings(
        runtime=RuntimeSettings(secret_key=TEST_SECRET_KEY),
        database=database,
        kafka=kafka or KafkaSettings(bootstrap_servers="127.0.0.1:9", request_timeout_ms=1_000),
        gateway=options,
    )


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


T0 = datetime(2026, 11, 1, tzinfo=UTC)
ACTIVITY_COUNT = 12


def pin_now(monkeypatch: pytest.MonkeyPatch, at: datetime) -> None:
    """The gateway's calendar (its default periods and weeks) reads ``at`` as now."""

    class Pinned(datetime):
        @classmethod
        def now(cls, tz: tzinfo | None = None) -> Pinned:
            return cls.fromtimestamp(at.timestamp(), UTC).astimezone(tz)

    monkeypatch.setattr(calendar, "datetime", Pinned)


def activity_id(tenant: str, n: int) -> uuid.UUID:
    return uuid.uuid5(uuid.NAMESPACE_URL, f"{tenant}/activity/{n}")


async def _insert(conn: AsyncConnection, table: str, **values: Any) -> None:
    columns = ", ".join(values)
    params = ", ".join(
        f"CAST(:{k} AS jsonb)" if isinstance(v, dict | list) and k not in _ARRAYS else f":{k}"
        for k, v in values.items()
    )
    bound = {
        k: orjson.dumps(v).decode() if isinstance(v, dict | list) and k not in _ARRAYS else v
        for k, v in values.items()
    }
    await conn.execute(text(f"INSERT INTO {table} ({columns}) VALUES ({params})"), bound)


_ARRAYS = {
    "team_ids",
    "contact_ids",
    "engaged_deal_ids",
    "reasons",
    "emails",
    "phones",
    "domains",
    "secondary_deal_ids",
}


async def rollup(
    conn: AsyncConnection,
    tenant: str,
    level: str,
    entity: str,
    granularity: str,
    period: date,
    score: float,
    **counts: int,
) -> None:
    await _insert(
        conn,
        "metric_rollups",
        tenant_id=tenant,
        level=level,
        entity_id=entity,
        granularity=granularity,
        period_start=period,
        score=score,
        activities=sum(v for k, v in counts.items() if k != "talk_seconds") or 1,
        **counts,
    )


async def seed_tenant(conn: AsyncConnection, tenant: str, pepper: str) -> dict[str, str]:
    """A tenant with its keys (read, admin, ingest); returns the keys."""
    created = await create_tenant(conn, tenant, pepper)
    keys: dict[str, str] = created["api_keys"]  # type: ignore[assignment]
    return keys


async def seed_acme(conn: AsyncConnection) -> None:
    """Two teams, four reps (rep-4 moves from Beta to Alpha on 2026-11-05), three deals, 12 activities."""
    t = "acme"
    for team_id, name in (("team-a", "Alpha"), ("team-b", "Beta")):
        await _insert(conn, "ref_teams", tenant_id=t, team_id=team_id, name=name, updated_at=T0)
    for rep_id, name, role in (
        ("rep-1", "Ana Adams", "SDR"),
        ("rep-2", "Ben Baker", "SDR"),
        ("rep-3", "Cy Chen", None),
        ("rep-4", "Dee Diaz", "Account Executive"),
    ):
        await _insert(conn, "ref_reps", tenant_id=t, rep_id=rep_id, name=name, role=role, updated_at=T0)
    memberships = (
        ("m1", "rep-1", "team-a", date(2026, 1, 1), None),
        ("m2", "rep-2", "team-a", date(2026, 1, 1), None),
        ("m3", "rep-3", "team-b", date(2026, 1, 1), None),
        ("m4", "rep-4", "team-b", date(2026, 1, 1), date(2026, 11, 5)),
        ("m5", "rep-4", "team-a", date(2026, 11, 5), None),
    )
    for mid, rep, team, start, end in memberships:
        await _insert(
            conn,
            "ref_team_memberships",
            tenant_id=t,
            membership_id=mid,
            rep_id=rep,
            team_id=team,
            valid_from=start,
            valid_to=end,
            updated_at=T0,
        )
    await _insert(conn, "ref_accounts", tenant_id=t, account_id="acc-1", name="Buyer Inc", updated_at=T0)
    deals = (
        ("deal-1", "Buyer renewal", "rep-1", True, datetime(2026, 11, 5, 12, tzinfo=UTC)),
        ("deal-2", "Buyer expansion", "rep-1", False, None),
        ("deal-3", "Other win", "rep-3", True, datetime(2026, 11, 6, 12, tzinfo=UTC)),
    )
    for deal_id, name, owner, won, closed in deals:
        await _insert(
            conn,
            "ref_deals",
            tenant_id=t,
            deal_id=deal_id,
            name=name,
            account_id="acc-1",
            owner_rep_id=owner,
            stage="closed_won" if won else "proposal",
            amount=12000,
            is_closed=won,
            is_won=won,
            created_at=datetime(2026, 10, 1, tzinfo=UTC),
            closed_at=closed,
            updated_at=T0,
        )
    # Activities 0..11, one hour apart from 2026-11-02 09:00; 0..6 on deal-1 by rep-1 (calls),
    # 7..11 by rep-2 on no deal (emails). Activity 0 has two versions, the second an override.
    for n in range(ACTIVITY_COUNT):
        at = datetime(2026, 11, 2, 9, tzinfo=UTC) + timedelta(hours=n)
        on_deal = n < 7
        kind = "call" if on_deal else "email"
        aid = activity_id(t, n)
        await _insert(
            conn,
            "activities",
            tenant_id=t,
            activity_id=aid,
            source="dialer" if on_deal else "mail",
            external_id=f"x-{n}",
            kind=kind,
            direction="outbound",
            outcome="connected" if on_deal else "sent",
            occurred_at=at,
            duration_seconds=60 if on_deal else 0,
            payload={"external_id": f"x-{n}", "kind": kind, "participants": []},
            ingested_at=at,
        )
        explanation = {
            "rule_path": "contact.single_open_deal" if on_deal else "no_deal",
            "runners_up": [{"deal_id": "deal-2", "score": 0.4}] if on_deal else [],
            "steps": ["matched contact con-1"],
        }
        version = 2 if n == 0 else 1
        await _insert(
            conn,
            "attributions",
            tenant_id=t,
            activity_id=aid,
            version=version,
            status="attributed" if on_deal else "unmatched",
            rep_id="rep-1" if on_deal else "rep-2",
            team_id="team-a",
            account_id="acc-1" if on_deal else None,
            deal_id="deal-1" if on_deal else None,
            confidence=0.9 if on_deal else 0.5,
            explanation=explanation,
            is_override=n == 0,
            decided_at=at,
            occurred_at=at,
            kind=kind,
        )
        # The versions the current one superseded (``attribution_history`` is the view of both).
        for v in range(1, version):
            await _insert(
                conn,
                "attribution_superseded",
                tenant_id=t,
                activity_id=aid,
                version=v,
                status="attributed" if on_deal else "unmatched",
                rep_id="rep-1" if on_deal else "rep-2",
                team_id="team-a",
                account_id="acc-1" if on_deal else None,
                deal_id=("deal-2" if v == 1 and n == 0 else "deal-1") if on_deal else None,
                confidence=0.9,
                explanation=explanation,
                is_override=v == 2,
                decided_at=at,
            )
        if on_deal:
            await _insert(
                conn,
                "metric_contributions",
                tenant_id=t,
                activity_id=aid,
                version=version,
                rep_id="rep-1",
                team_id="team-a",
                deal_id="deal-1",
                account_id="acc-1",
                status="attributed",
                occurred_at=at,
                day=at.date(),
                kind=kind,
                contact_ids=["con-1"] if n % 2 else ["con-1", "con-2"],
                engaged_deal_ids=["deal-1"],
                activities=1,
                buyer_replies=1 if n == 3 else 0,
            )
    await _insert(
        conn,
        "attribution_overrides",
        tenant_id=t,
        activity_id=activity_id(t, 0),
        deal_id="deal-1",
        set_by="spm_admin_x",
        set_at=T0,
        reason="was the renewal",
    )
    # Rollups: rep-1 has two days; four reps in week 2026-11-02, two in week 2026-10-26.
    await rollup(
        conn,
        t,
        "rep",
        "rep-1",
        "day",
        date(2026, 11, 2),
        20.0,
        dials=10,
        connects=4,
        conversations=2,
        meetings_booked=1,
        meetings_held=1,
    )
    await rollup(
        conn,
        t,
        "rep",
        "rep-1",
        "day",
        date(2026, 11, 3),
        12.0,
        dials=6,
        connects=2,
        conversations=1,
        meetings_booked=1,
    )
    week = date(2026, 11, 2)
    for rep, score, dials in (
        ("rep-1", 32.0, 16),
        ("rep-2", 40.0, 5),
        ("rep-3", 10.0, 30),
        ("rep-4", 25.0, 8),
    ):
        await rollup(conn, t, "rep", rep, "week", week, score, dials=dials)
    # What each rep earned on each team that week: rep-4 moved from Beta to Alpha on Thursday.
    for team, rep, score, dials in (
        ("team-a", "rep-1", 32.0, 16),
        ("team-a", "rep-2", 40.0, 5),
        ("team-b", "rep-3", 10.0, 30),
        ("team-b", "rep-4", 12.0, 5),
        ("team-a", "rep-4", 13.0, 3),
    ):
        await rollup(conn, t, "team_rep", f"{team}\x1f{rep}", "week", week, score, dials=dials)
    await rollup(conn, t, "rep", "rep-1", "week", date(2026, 10, 26), 5.0, dials=3)
    await rollup(conn, t, "rep", "rep-2", "week", date(2026, 10, 26), 3.0, dials=1)
    await rollup(
        conn,
        t,
        "team",
        "team-a",
        "day",
        date(2026, 11, 2),
        30.0,
        dials=12,
        connects=5,
        conversations=2,
        meetings_booked=2,
        meetings_held=1,
    )
    await rollup(conn, t, "team", "team-a", "week", week, 72.0, dials=21)
    await _insert(
        conn,
        "rep_period_stats",
        tenant_id=t,
        granularity="week",
        period_start=week,
        rep_id="rep-1",
        team_id="team-a",
        score=32.0,
        team_percentile=50.0,
        baseline_score=20.0,
        baseline_periods=4,
        change_vs_baseline=0.6,
    )
    insights = (
        ("at_risk_rep", "rep-3", "team-b", ["below_team_median"], {"score": 10.0}),
        ("stale_deal", "deal-2", "team-a", ["no_recent_activity"], {"days_quiet": 19}),
        ("bright_spot", "rep-2", "team-a", ["top_of_team"], {"rank": 1}),
        ("bright_spot", "rep-1", "team-a", ["top_of_team"], {"rank": 2}),
    )
    for kind, subject, team, reasons, details in insights:
        await _insert(
            conn,
            "insights",
            tenant_id=t,
            kind=kind,
            subject_id=subject,
            team_id=team,
            period_start=week,
            reasons=reasons,
            details=details,
        )


async def seed_globex(conn: AsyncConnection) -> None:
    """Another tenant whose objects acme must never see."""
    t = "globex"
    await _insert(conn, "ref_teams", tenant_id=t, team_id="team-z", name="Zeta", updated_at=T0)
    await _insert(conn, "ref_reps", tenant_id=t, rep_id="rep-9", name="Zed", role="BDR", updated_at=T0)
    await _insert(conn, "ref_accounts", tenant_id=t, account_id="acc-9", name="Other", updated_at=T0)
    await _insert(
        conn,
        "ref_deals",
        tenant_id=t,
        deal_id="deal-9",
        name="Secret",
        owner_rep_id="rep-9",
        created_at=T0,
        updated_at=T0,
    )
    at = datetime(2026, 11, 2, 8, tzinfo=UTC)
    await _insert(
        conn,
        "activities",
        tenant_id=t,
        activity_id=activity_id(t, 0),
        source="dialer",
        external_id="g-0",
        kind="call",
        direction="outbound",
        outcome="connected",
        occurred_at=at,
        payload={"external_id": "g-0"},
        ingested_at=at,
    )
    await rollup(conn, t, "rep", "rep-9", "week", date(2026, 11, 2), 99.0, dials=99)
    await _insert(conn, "insights", tenant_id=t, kind="at_risk_rep", subject_id="rep-9", team_id="team-z")


@asynccontextmanager
async def served(app: FastAPI) -> AsyncIterator[str]:
    """Serve ``app`` with uvicorn on a free port of 127.0.0.1; yields the base URL."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on"))
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.05)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
