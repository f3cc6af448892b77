"""Signing a JWT subject out, over real HTTP, two gateway replicas and the real database.

The replica that takes the revocation refuses the subject's older tokens at once; another
replica within its credential re-check interval (1 s here), ending the dashboard sessions and
open streams they opened. Tokens issued later, other subjects and another tenant's subject of
the same name are untouched; restoring lets the older tokens back in.
"""

from __future__ import annotations

import asyncio
import time
from http.cookies import SimpleCookie
from typing import Any

import httpx
import jwt
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.settings import DatabaseSettings
from services.gateway.app import create_app
from services.gateway.settings import GatewayOptions
from tests.integration.polling import eventually

from .gateway_support import HS256_SECRET, Keys, bearer, gateway_settings, served

STREAM = "/v1/stream/leaderboard?period=week&metric=score"
NEVER = 60


def _token(**claims: Any) -> str:
    now = int(time.time())
    base = {"sub": "user-7", "tenant": "acme", "iss": "https://idp.example", "aud": "spm", "exp": now + 300}
    given = {k: v for k, v in (base | {"iat": now - 5} | claims).items() if v is not None}
    return jwt.encode(given, HS256_SECRET, algorithm="HS256")


async def _status_becomes(client: httpx.AsyncClient, headers: dict[str, str], wanted: int) -> int:
    """Poll a read until it answers ``wanted`` (the re-check interval is 1 s): never timed."""

    async def status() -> int:
        return (await client.get("/v1/reps", headers=headers)).status_code

    return int(await eventually(status, lambda got: got == wanted, NEVER, f"a read answering {wanted}"))


async def test_a_revoked_subject_is_refused_everywhere_with_its_sessions_and_streams(
    keys: Keys, database_settings: DatabaseSettings, gateway_options: GatewayOptions, db_engine: AsyncEngine
) -> None:
    fast = gateway_options.model_copy(
        update={"stream_interval_seconds": 0.2, "credential_recheck_seconds": 1.0}
    )
    old, no_iat = _token(), _token(iat=None)
    other_subject, other_tenant = _token(sub="user-8"), _token(tenant="globex")
    async with (
        served(create_app(gateway_settings(database_settings, fast))) as a,
        served(create_app(gateway_settings(database_settings, fast))) as b,
        httpx.AsyncClient(base_url=a, timeout=NEVER) as on_a,
        httpx.AsyncClient(base_url=b, timeout=NEVER) as on_b,
    ):
        for token in (old, no_iat, other_subject, other_tenant):
            assert (await on_b.get("/v1/reps", headers=bearer(token))).status_code == 200
        signed_in = await on_b.post("/v1/session", headers=bearer(old))
        assert signed_in.status_code == 201
        cookie = {
            "Cookie": f"spm_session={SimpleCookie(signed_in.headers['set-cookie'])['spm_session'].value}"
        }
        assert (await on_b.get("/v1/reps", headers=cookie)).status_code == 200

        async with on_b.stream("GET", STREAM, headers=bearer(old)) as stream:
            lines = stream.aiter_lines()
            assert (
                await anext(line async for line in lines if line.startswith("event: "))
                == "event: leaderboard"
            )
            # A reader may not sign anyone out.
            refused = await on_a.put("/v1/jwt-revocations/user-7", headers=bearer(keys.read), json={})
            assert refused.status_code == 403
            revoked = await on_a.put(
                "/v1/jwt-revocations/user-7", headers=bearer(keys.admin), json={"reason": "left the company"}
            )
            assert revoked.status_code == 200, revoked.text
            body = revoked.json()
            assert (body["subject"], body["reason"], body["sessions_revoked"]) == (
                "user-7",
                "left the company",
                1,
            )
            assert body["revoked_by"].startswith("spm_admin_")
            # The replica that took it refuses at once; the other within its re-check interval.
            assert (await on_a.get("/v1/reps", headers=bearer(old))).status_code == 401
            events = await asyncio.wait_for(
                _all_events(line async for line in lines if line.startswith("event: ")), NEVER
            )
            assert events[-1] == "event: revoked"
        assert await _status_becomes(on_b, bearer(old), 401) == 401
        assert await _status_becomes(on_b, cookie, 401) == 401
        assert (await on_b.get("/v1/reps", headers=bearer(no_iat))).status_code == 401
        assert (await on_b.post("/v1/session", headers=bearer(old))).status_code == 401
        # Another subject, and the same subject name in another tenant, are untouched.
        assert (await on_b.get("/v1/reps", headers=bearer(other_subject))).status_code == 200
        assert (await on_b.get("/v1/reps", headers=bearer(other_tenant))).status_code == 200

        # A token issued after the revocation (whole seconds, as `iat` is) signs the person in again.
        not_before = await _not_before(db_engine)
        await asyncio.sleep(max(0.0, not_before + 1 - time.time()))
        fresh = _token(iat=int(time.time()))
        assert (await on_a.get("/v1/reps", headers=bearer(fresh))).status_code == 200

        listed = await on_a.get("/v1/jwt-revocations", headers=bearer(keys.admin))
        assert [(r["subject"], r["reason"], r["sessions_revoked"]) for r in listed.json()["items"]] == [
            ("user-7", "left the company", None)
        ]
        other = await on_a.get("/v1/jwt-revocations", headers=bearer(keys.other_admin))
        assert other.json()["items"] == []

        assert (
            await on_a.delete("/v1/jwt-revocations/user-7", headers=bearer(keys.admin))
        ).status_code == 204
        assert (await on_a.get("/v1/reps", headers=bearer(old))).status_code == 200
        assert await _status_becomes(on_b, bearer(old), 200) == 200
        # The session it ended stays ended.
        assert (await on_b.get("/v1/reps", headers=cookie)).status_code == 401
        missing = await on_a.delete("/v1/jwt-revocations/user-7", headers=bearer(keys.admin))
        assert missing.status_code == 404

        bad = await on_a.put("/v1/jwt-revocations/a%07b", headers=bearer(keys.admin), json={})
        assert bad.status_code == 422
        assert bad.json()["errors"][0]["field"] == "subject"

    async with db_engine.connect() as conn:
        actions = (
            await conn.execute(
                text(
                    "SELECT action, target FROM audit_log WHERE tenant_id = 'acme' "
                    "AND action LIKE 'jwt_subject.%' ORDER BY audit_id"
                )
            )
        ).all()
    assert [tuple(r) for r in actions] == [
        ("jwt_subject.revoked", "jwt_subject:user-7"),
        ("jwt_subject.restored", "jwt_subject:user-7"),
    ]


async def _all_events(lines: Any) -> list[str]:
    return [line async for line in lines]


async def _not_before(engine: AsyncEngine) -> float:
    async with engine.connect() as conn:
        return float(
            (
                await conn.execute(
                    text(
                        "SELECT extract(epoch FROM not_before) FROM jwt_revocations WHERE subject = 'user-7'"
                    )
                )
            ).scalar_one()
        )
