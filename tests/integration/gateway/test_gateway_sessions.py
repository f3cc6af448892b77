"""Dashboard sessions and credential re-checks, over real HTTP and the real database.

Open streams re-check their credential (here every second) and end with a ``revoked`` event
once it no longer holds; a session cookie stands in for the key it was exchanged for, dies with
it, and shares a stream budget across the tabs of one browser.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from http.cookies import SimpleCookie
from typing import Any

import httpx
import jwt
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.settings import DatabaseSettings, Mode, RuntimeSettings
from libs.common.tenancy import key_id_of, revoke_api_key
from libs.common.testing.stack import TEST_SECRET_KEY
from services.gateway.app import create_app
from services.gateway.settings import GatewayOptions
from tests.integration.polling import eventually

from .gateway_support import HS256_SECRET, Keys, bearer, gateway_settings, served

STREAM = "/v1/stream/leaderboard?period=week&metric=score"
CSRF = {"X-SPM-CSRF": "1"}
#: Only so that a broken build fails instead of hanging; the assertions are about what happens.
NEVER = 60


def _fast(options: GatewayOptions, **extra: Any) -> GatewayOptions:
    return options.model_copy(
        update={"stream_interval_seconds": 0.2, "credential_recheck_seconds": 1.0, **extra}
    )


def _claims(**extra: Any) -> dict[str, Any]:
    return {
        "sub": "user-7",
        "tenant": "acme",
        "iss": "https://idp.example",
        "aud": "spm",
        "exp": int(time.time()) + 300,
    } | extra


async def _events_until_closed(lines: AsyncIterator[str]) -> list[str]:
    """Every ``event:`` name the stream sends until the server closes it."""
    return [line.removeprefix("event: ") async for line in lines if line.startswith("event: ")]


async def _revoke(engine: AsyncEngine, key: str) -> None:
    async with engine.begin() as conn:
        assert await revoke_api_key(conn, key_id_of(key) or "")


async def _sign_in(client: httpx.AsyncClient, credential: str) -> str:
    response = await client.post("/v1/session", headers=bearer(credential))
    assert response.status_code == 201, response.text
    cookie = SimpleCookie(response.headers["set-cookie"])
    return cookie["spm_session"].value


async def test_an_open_stream_ends_when_its_key_is_revoked(
    keys: Keys, database_settings: DatabaseSettings, gateway_options: GatewayOptions, db_engine: AsyncEngine
) -> None:
    app = create_app(gateway_settings(database_settings, _fast(gateway_options)))
    async with served(app) as base, httpx.AsyncClient(base_url=base, timeout=NEVER) as client:
        async with client.stream("GET", STREAM, headers=bearer(keys.read)) as stream:
            assert stream.status_code == 200
            lines = stream.aiter_lines()
            assert (
                await anext(line async for line in lines if line.startswith("event: "))
                == "event: leaderboard"
            )
            await _revoke(db_engine, keys.read)
            # The server ends the stream: the iteration stops by itself, with the revoked event last.
            events = await asyncio.wait_for(_events_until_closed(lines), NEVER)
            assert events[-1] == "revoked"
            assert set(events) <= {"leaderboard", "revoked"}
        # Reconnecting (as EventSource does) is refused although a plain read may still be cached.
        again = await client.get(STREAM, headers=bearer(keys.read))
        assert again.status_code == 401
        assert again.json()["detail"] == "the credential is unknown, revoked, expired or invalid"
        # The other credentials of the tenant are untouched.
        async with client.stream("GET", STREAM, headers=bearer(keys.admin)) as other:
            assert other.status_code == 200


async def test_an_open_stream_ends_when_its_jwt_expires_or_its_tenant_is_deleted(
    keys: Keys, database_settings: DatabaseSettings, gateway_options: GatewayOptions, db_engine: AsyncEngine
) -> None:
    app = create_app(gateway_settings(database_settings, _fast(gateway_options)))
    globex = jwt.encode(_claims(tenant="globex"), HS256_SECRET, algorithm="HS256")
    async with served(app) as base, httpx.AsyncClient(base_url=base, timeout=NEVER) as client:
        # Made once the gateway is up (its start-up can take seconds on a loaded machine): the
        # stream opens with a few seconds left on it.
        short = jwt.encode(_claims(exp=int(time.time()) + 3), HS256_SECRET, algorithm="HS256")
        async with client.stream("GET", STREAM, headers=bearer(short)) as stream:
            assert stream.status_code == 200
            events = await asyncio.wait_for(_events_until_closed(stream.aiter_lines()), NEVER)
            assert events[0] == "leaderboard"
            assert events[-1] == "revoked"
        async with client.stream("GET", STREAM, headers=bearer(globex)) as stream:
            assert stream.status_code == 200
            lines = stream.aiter_lines()
            assert (
                await anext(line async for line in lines if line.startswith("event: "))
                == "event: leaderboard"
            )
            async with db_engine.begin() as conn:
                await conn.execute(text("DELETE FROM tenants WHERE tenant_id = 'globex'"))
            assert (await asyncio.wait_for(_events_until_closed(lines), NEVER))[-1] == "revoked"


async def test_session_cookie_is_httponly_strict_and_reads_like_the_key(
    keys: Keys, database_settings: DatabaseSettings, gateway_options: GatewayOptions, db_engine: AsyncEngine
) -> None:
    app = create_app(gateway_settings(database_settings, gateway_options))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway") as client,
    ):
        created = await client.post("/v1/session", headers=bearer(keys.read))
        assert created.status_code == 201
        assert created.headers["cache-control"] == "no-store"
        body = created.json()
        assert {k: v for k, v in body.items() if k != "expires_at"} == {
            "tenant_id": "acme",
            "subject": key_id_of(keys.read),
            "scopes": ["read"],
        }
        (morsel,) = SimpleCookie(created.headers["set-cookie"]).values()
        assert morsel.key == "spm_session"
        assert (morsel["httponly"], morsel["samesite"], morsel["path"], morsel["max-age"]) == (
            True,
            "strict",
            "/",
            "28800",
        )
        assert morsel["secure"] == ""  # local mode: plain http on 127.0.0.1
        token = morsel.value
        assert keys.read not in created.headers["set-cookie"]
        async with db_engine.connect() as conn:
            stored = (
                await conn.execute(text("SELECT row_to_json(s)::text FROM gateway_sessions s"))
            ).scalar_one()
        assert token not in stored
        assert token.split(".")[1] not in stored

        cookie = {"Cookie": f"spm_session={token}"}
        reps = await client.get("/v1/reps", headers=cookie)
        assert reps.status_code == 200
        assert [r["rep_id"] for r in reps.json()["items"]] == ["rep-1", "rep-2", "rep-3", "rep-4"]
        assert reps.headers["vary"] == "Accept, Authorization, Cookie"
        me = await client.get("/v1/session", headers=cookie)
        assert me.status_code == 200
        assert me.json() == body
        # The cookie carries the key's scope, no more: a read session cannot write.
        write = await client.put("/v1/insight-thresholds", json={}, headers={**cookie, **CSRF})
        assert write.status_code == 403
        # A header credential wins over the cookie, even a bad one.
        assert (await client.get("/v1/reps", headers={**cookie, **bearer("spm_read_x_y")})).status_code == 401

        # Sign-out needs the CSRF header like every cookie request that changes something.
        refused = await client.delete("/v1/session", headers=cookie)
        assert refused.status_code == 403
        assert (
            refused.json()["detail"]
            == "a request authenticated by the session cookie must send `x-spm-csrf: 1`"
        )
        signed_out = await client.delete("/v1/session", headers={**cookie, **CSRF})
        assert signed_out.status_code == 204
        (cleared,) = SimpleCookie(signed_out.headers["set-cookie"]).values()
        assert (cleared.key, cleared.value, cleared["max-age"]) == ("spm_session", "", "0")
        for path in ("/v1/reps", "/v1/session", STREAM):
            after = await client.get(path, headers=cookie)
            assert after.status_code == 401, path


async def test_sessions_are_made_from_a_header_credential_only_and_never_outlive_it(
    keys: Keys, database_settings: DatabaseSettings, gateway_options: GatewayOptions
) -> None:
    production = gateway_settings(database_settings, gateway_options).model_copy(
        update={"runtime": RuntimeSettings(secret_key=TEST_SECRET_KEY, mode=Mode.PRODUCTION)}
    )
    app = create_app(production)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://gateway") as client,
    ):
        missing = await client.post("/v1/session")
        assert missing.status_code == 401
        assert missing.headers["www-authenticate"] == "Bearer"
        ingest = await client.post("/v1/session", headers=bearer(keys.ingest))
        assert ingest.status_code == 403
        assert ingest.json()["detail"] == "this credential lacks the `read` scope"
        token = await _sign_in(client, keys.admin)
        # A session cannot mint another session (which would extend it forever).
        chained = await client.post("/v1/session", headers={"Cookie": f"spm_session={token}", **CSRF})
        assert chained.status_code == 401

        exp = int(time.time()) + 600
        created = await client.post(
            "/v1/session",
            headers=bearer(jwt.encode(_claims(exp=exp, role="admin"), HS256_SECRET, algorithm="HS256")),
        )
        assert created.status_code == 201
        assert created.json()["subject"] == "jwt:user-7"
        assert created.json()["scopes"] == ["admin", "read"]
        assert created.json()["expires_at"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(exp))
        (morsel,) = SimpleCookie(created.headers["set-cookie"]).values()
        assert morsel["secure"] is True  # outside local mode the cookie needs TLS
        assert 0 < int(morsel["max-age"]) <= 600


async def test_a_revoked_key_ends_its_sessions_and_their_streams(
    keys: Keys, database_settings: DatabaseSettings, gateway_options: GatewayOptions, db_engine: AsyncEngine
) -> None:
    app = create_app(gateway_settings(database_settings, _fast(gateway_options)))
    async with served(app) as base, httpx.AsyncClient(base_url=base, timeout=NEVER) as client:
        token = await _sign_in(client, keys.read)
        cookie = {"Cookie": f"spm_session={token}"}
        assert (await client.get("/v1/reps", headers=cookie)).status_code == 200
        async with client.stream("GET", STREAM, headers=cookie) as stream:
            assert stream.status_code == 200
            lines = stream.aiter_lines()
            assert (
                await anext(line async for line in lines if line.startswith("event: "))
                == "event: leaderboard"
            )
            await _revoke(db_engine, keys.read)
            assert (await asyncio.wait_for(_events_until_closed(lines), NEVER))[-1] == "revoked"

        # Reads follow within the re-check interval (1 s here); poll rather than time it.
        async def read() -> int:
            return (await client.get("/v1/reps", headers=cookie)).status_code

        status = await eventually(read, lambda got: got != 200, NEVER, "the revoked session's reads refused")
        assert status == 401
        assert (await client.get("/v1/session", headers=cookie)).status_code == 401


async def test_tabs_of_one_session_share_a_larger_stream_budget(
    keys: Keys, database_settings: DatabaseSettings, gateway_options: GatewayOptions
) -> None:
    options = _fast(gateway_options, stream_max_connections_per_key=1, stream_max_connections_per_session=6)
    app = create_app(gateway_settings(database_settings, options))
    async with served(app) as base, httpx.AsyncClient(base_url=base, timeout=NEVER) as client:
        cookie = {"Cookie": f"spm_session={await _sign_in(client, keys.read)}"}
        async with asyncio.TaskGroup() as group:
            opened: list[httpx.Response] = []
            all_open, stop = asyncio.Event(), asyncio.Event()

            async def tab() -> None:
                async with client.stream("GET", STREAM, headers=cookie) as stream:
                    opened.append(stream)
                    if len(opened) == 6:
                        all_open.set()
                    await stop.wait()

            tabs = [group.create_task(tab()) for _ in range(6)]
            await asyncio.wait_for(all_open.wait(), NEVER)
            assert [s.status_code for s in opened] == [200] * 6
            seventh = await client.get(STREAM, headers=cookie)
            assert seventh.status_code == 429
            assert seventh.json()["detail"] == "this session already holds 6 open streams"
            # The key's own budget (one stream) is separate from its session's.
            async with client.stream("GET", STREAM, headers=bearer(keys.read)) as direct:
                assert direct.status_code == 200
            # Another sign-in (another browser) has its own budget.
            other = {"Cookie": f"spm_session={await _sign_in(client, keys.read)}"}
            async with client.stream("GET", STREAM, headers=other) as second_browser:
                assert second_browser.status_code == 200
            stop.set()
            del tabs


async def test_one_tenant_s_sign_ins_cannot_hold_every_stream_of_the_gateway(
    keys: Keys, database_settings: DatabaseSettings, gateway_options: GatewayOptions
) -> None:
    """Every sign-in is a session with its own stream budget, and a read key may sign in as often
    as its rate limit allows: one tenant's script opened thousands of streams, each reading the
    leaderboard every 2 s on the pool every tenant shares. A tenant's open streams are capped
    (per replica); another tenant's are not counted against it."""
    options = _fast(
        gateway_options, stream_max_connections_per_session=2, stream_max_connections_per_tenant=3
    )
    app = create_app(gateway_settings(database_settings, options))
    async with served(app) as base, httpx.AsyncClient(base_url=base, timeout=NEVER) as client:
        sessions = [{"Cookie": f"spm_session={await _sign_in(client, keys.read)}"} for _ in range(3)]
        opened: list[int] = []
        all_open, stop = asyncio.Event(), asyncio.Event()

        async def tab(cookie: dict[str, str]) -> None:
            async with client.stream("GET", STREAM, headers=cookie) as stream:
                opened.append(stream.status_code)
                if len(opened) == 3:
                    all_open.set()
                await stop.wait()

        async with asyncio.TaskGroup() as group:
            for cookie in (sessions[0], sessions[0], sessions[1]):
                group.create_task(tab(cookie))
            await asyncio.wait_for(all_open.wait(), NEVER)
            assert opened == [200, 200, 200]
            # A third session of the tenant, and its key: refused, the tenant holds its 3.
            for credential in (sessions[2], bearer(keys.read), bearer(keys.admin)):
                async with client.stream("GET", STREAM, headers=credential) as refused:
                    assert refused.status_code == 429
                    assert refused.headers["retry-after"] == "15"
                    assert (
                        json.loads(await refused.aread())["detail"]
                        == "this tenant already holds 3 open streams"
                    )
            # Globex streams as ever.
            async with client.stream("GET", STREAM, headers=bearer(keys.other_read)) as globex:
                assert globex.status_code == 200
            stop.set()
        # Closed streams give the tenant's slots back.
        async with client.stream("GET", STREAM, headers=sessions[2]) as again:
            assert again.status_code == 200


async def test_one_tenant_s_sign_ins_do_not_multiply_its_rate_limit(
    keys: Keys, database_settings: DatabaseSettings, gateway_options: GatewayOptions
) -> None:
    """Each sign-in is a subject with a bucket of its own: a read key signing in again and again
    multiplied its rate limit without bound. The tenant's requests share a bucket too."""
    options = gateway_options.model_copy(
        update={"rate_limit_per_minute": 4, "rate_limit_per_tenant_per_minute": 6}
    )
    app = create_app(gateway_settings(database_settings, options))
    async with served(app) as base, httpx.AsyncClient(base_url=base, timeout=NEVER) as client:
        # No token refills while the test runs, however slowly (one is due every 10 s at 6/min).
        app.state.rate_limiter.clock = app.state.tenant_rate_limiter.clock = lambda: 0.0
        first = {"Cookie": f"spm_session={await _sign_in(client, keys.read)}"}
        second = {"Cookie": f"spm_session={await _sign_in(client, keys.read)}"}
        # Two sign-ins and four reads: the tenant's 6.
        assert [(await client.get("/v1/reps", headers=first)).status_code for _ in range(4)] == [200] * 4
        limited = await client.get("/v1/reps", headers=second)
        assert limited.status_code == 429
        assert limited.json()["detail"] == "this tenant exceeded GATEWAY_RATE_LIMIT_PER_TENANT_PER_MINUTE"
        assert int(limited.headers["retry-after"]) >= 1
        # Globex reads as ever.
        assert (await client.get("/v1/reps", headers=bearer(keys.other_read))).status_code == 200
