"""Credentials (API keys, HS256 and RS256 JWTs), scopes, rate limits and HTTP caching."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from libs.common.settings import DatabaseSettings
from services.gateway.app import create_app
from services.gateway.settings import GatewayOptions

from .gateway_support import HS256_SECRET, Keys, activity_id, bearer, gateway_settings

READ_ROUTES = (
    "/v1/reps",
    "/v1/reps/rep-1",
    "/v1/reps/rep-1/scores",
    "/v1/teams",
    "/v1/teams/team-a",
    "/v1/teams/team-a/scores",
    "/v1/leaderboard",
    "/v1/funnel?rep_id=rep-1&from=2026-11-01&to=2026-11-30",
    "/v1/insights/at-risk-reps",
    "/v1/insights/stale-deals",
    "/v1/insights/bright-spots",
    "/v1/deals/deal-1/activities",
    "/v1/activities",
    "/v1/scoring-model",
    "/v1/insight-thresholds",
    "/v1/stream/leaderboard",
)


def _claims(**extra: Any) -> dict[str, Any]:
    now = int(time.time())
    return {
        "sub": "user-7",
        "tenant": "acme",
        "iss": "https://idp.example",
        "aud": "spm",
        "exp": now + 300,
    } | extra


async def test_every_route_refuses_missing_and_wrong_scope_credentials(
    gateway: httpx.AsyncClient, keys: Keys
) -> None:
    for path in READ_ROUTES:
        missing = await gateway.get(path)
        assert missing.status_code == 401, path
        assert missing.headers["content-type"] == "application/problem+json"
        assert missing.headers["www-authenticate"] == "Bearer"
        garbage = await gateway.get(path, headers=bearer("spm_read_nope_nope"))
        assert garbage.status_code == 401, path
        ingest = await gateway.get(path, headers=bearer(keys.ingest))
        assert ingest.status_code == 403, path
        assert ingest.json()["detail"] == "this credential lacks the `read` scope"


async def test_hs256_jwt_reads_its_tenant_only(gateway: httpx.AsyncClient, keys: Keys) -> None:
    token = jwt.encode(_claims(), HS256_SECRET, algorithm="HS256")
    mine = await gateway.get("/v1/reps/rep-1", headers=bearer(token))
    assert mine.status_code == 200
    theirs = await gateway.get("/v1/reps/rep-9", headers=bearer(token))
    assert theirs.status_code == 404
    reader_put = await gateway.put("/v1/insight-thresholds", json={}, headers=bearer(token))
    assert reader_put.status_code == 403
    admin = jwt.encode(_claims(role="admin"), HS256_SECRET, algorithm="HS256")
    saved = await gateway.put("/v1/insight-thresholds", json={}, headers=bearer(admin))
    assert saved.status_code == 200
    assert saved.json()["created_by"] == "jwt:user-7"


async def test_rs256_jwt_with_a_generated_key(
    gateway: httpx.AsyncClient, keys: Keys, rsa_key: rsa.RSAPrivateKey
) -> None:
    token = jwt.encode(_claims(tenant="globex"), rsa_key, algorithm="RS256")
    response = await gateway.get("/v1/reps", headers=bearer(token))
    assert response.status_code == 200
    assert [r["rep_id"] for r in response.json()["items"]] == ["rep-9"]
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(_claims(), stranger, algorithm="RS256")
    assert (await gateway.get("/v1/reps", headers=bearer(forged))).status_code == 401


async def test_invalid_jwts_are_unauthorized(gateway: httpx.AsyncClient, keys: Keys) -> None:
    for token in (
        jwt.encode(_claims(exp=int(time.time()) - 60), HS256_SECRET, algorithm="HS256"),
        jwt.encode(_claims(aud="someone-else"), HS256_SECRET, algorithm="HS256"),
        jwt.encode(_claims(iss="https://evil.example"), HS256_SECRET, algorithm="HS256"),
        jwt.encode(_claims(role="owner"), HS256_SECRET, algorithm="HS256"),
        jwt.encode({k: v for k, v in _claims().items() if k != "tenant"}, HS256_SECRET, algorithm="HS256"),
        jwt.encode(_claims(), "another-secret-of-at-least-32-bytes!!", algorithm="HS256"),
        "not.a.jwt",
    ):
        response = await gateway.get("/v1/reps", headers=bearer(token))
        assert response.status_code == 401


async def test_etag_and_cache_control(gateway: httpx.AsyncClient, keys: Keys) -> None:
    first = await gateway.get("/v1/leaderboard", headers=bearer(keys.read))
    etag = first.headers["etag"]
    assert etag.startswith('W/"')
    assert first.headers["cache-control"] == "private, max-age=10"
    again = await gateway.get("/v1/leaderboard", headers={**bearer(keys.read), "If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    other = await gateway.get(
        "/v1/leaderboard?metric=dials", headers={**bearer(keys.read), "If-None-Match": etag}
    )
    assert other.status_code == 200
    assert other.headers["etag"] != etag


async def test_rate_limit_answers_429_with_retry_after(
    keys: Keys, database_settings: DatabaseSettings, gateway_options: GatewayOptions
) -> None:
    app = create_app(
        gateway_settings(database_settings, gateway_options.model_copy(update={"rate_limit_per_minute": 3}))
    )
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway") as client,
    ):
        # The buckets' clock stands still: Retry-After is 20 s only while less than a second has
        # passed since the first request (a token every 20 s), which a loaded machine can exceed.
        app.state.rate_limiter.clock = lambda: 0.0
        statuses = [(await client.get("/v1/teams", headers=bearer(keys.read))).status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        limited = await client.get("/v1/teams", headers=bearer(keys.read))
        assert limited.headers["content-type"] == "application/problem+json"
        assert limited.headers["retry-after"] == "20"
        # The bucket is per key: another credential is unaffected.
        assert (await client.get("/v1/teams", headers=bearer(keys.admin))).status_code == 200

        # JWTs count per (tenant, sub): another tenant's token with the same `sub` has its own bucket.
        acme = jwt.encode(_claims(sub="user-7"), HS256_SECRET, algorithm="HS256")
        globex = jwt.encode(_claims(sub="user-7", tenant="globex"), HS256_SECRET, algorithm="HS256")
        statuses = [(await client.get("/v1/teams", headers=bearer(acme))).status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        assert (await client.get("/v1/teams", headers=bearer(globex))).status_code == 200


async def test_rate_limit_headers_are_the_binding_bucket_s_credential_or_tenant(
    keys: Keys, database_settings: DatabaseSettings, gateway_options: GatewayOptions
) -> None:
    """``RateLimit-Limit``, ``-Remaining`` and ``-Reset`` come from the bucket with fewer requests
    left: the credential's (4 a minute, a token every 15 s) while it binds, the tenant's (6 a
    minute, a token every 10 s) once that one binds, so a 429 says the wait of the limit it names."""
    options = gateway_options.model_copy(
        update={"rate_limit_per_minute": 4, "rate_limit_per_tenant_per_minute": 6}
    )
    app = create_app(gateway_settings(database_settings, options))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway") as client,
    ):
        # No token refills while the test runs, however slowly.
        app.state.rate_limiter.clock = app.state.tenant_rate_limiter.clock = lambda: 0.0

        async def answer(key: str) -> tuple[int, str | None, str | None, str | None, str | None]:
            response = await client.get("/v1/teams", headers=bearer(key))
            budget = (response.headers.get(f"ratelimit-{n}") for n in ("limit", "remaining", "reset"))
            return (response.status_code, *budget, response.headers.get("retry-after"))

        # The read key's bucket binds (3, 2, 1, 0 left of 4; the tenant's 5, 4, 3, 2 of 6); its
        # fifth request is refused by its own limit and spends none of the tenant's.
        assert [await answer(keys.read) for _ in range(5)] == [
            (200, "4", "3", "15", None),
            (200, "4", "2", "30", None),
            (200, "4", "1", "45", None),
            (200, "4", "0", "60", None),
            (429, "4", "0", "60", "15"),
        ]
        # The admin key has 4 of its own, but the tenant only 2 left: the tenant's bucket binds,
        # and its refusal says 10 s to the next token, 60 s to a full bucket.
        assert [await answer(keys.admin) for _ in range(3)] == [
            (200, "6", "1", "50", None),
            (200, "6", "0", "60", None),
            (429, "6", "0", "60", "10"),
        ]
        refused = await client.get("/v1/teams", headers=bearer(keys.admin))
        assert refused.json()["detail"] == "this tenant exceeded GATEWAY_RATE_LIMIT_PER_TENANT_PER_MINUTE"
        # Another tenant's key: its own buckets, full but for this request.
        assert await answer(keys.other_read) == (200, "4", "3", "15", None)


async def test_dashboard_is_served_without_credentials(gateway: httpx.AsyncClient) -> None:
    page = await gateway.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert '<script src="/static/app.js">' in page.text
    assert "<script>" not in page.text
    assert " style=" not in page.text
    assert page.headers["content-security-policy"] == (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["x-frame-options"] == "DENY"
    script = await gateway.get("/static/app.js")
    assert script.status_code == 200
    # The page signs in for a session cookie: no credential in the stream URL or in storage.
    assert "/v1/session" in script.text
    assert "access_token" not in script.text
    assert "sessionStorage" not in script.text
    assert "localStorage" not in script.text
    assert (await gateway.get("/static/style.css")).status_code == 200


async def test_every_response_says_nosniff(gateway: httpx.AsyncClient, keys: Keys) -> None:
    for response in (
        await gateway.get("/"),
        await gateway.get("/static/app.js"),
        await gateway.get("/healthz"),
        await gateway.get("/v1/reps", headers=bearer(keys.read)),
        await gateway.get("/v1/reps"),
        await gateway.get("/v1/reps/nobody", headers=bearer(keys.read)),
        await gateway.get("/no-such-page"),
    ):
        assert response.headers["x-content-type-options"] == "nosniff", response.url


async def test_request_bodies_are_capped(gateway: httpx.AsyncClient, keys: Keys) -> None:
    admin = {**bearer(keys.admin), "content-type": "application/json"}
    big = b'{"pad": "' + b"x" * (64 * 1024) + b'"}'
    declared = await gateway.put("/v1/insight-thresholds", content=big, headers=admin)
    assert declared.status_code == 413
    assert declared.headers["content-type"] == "application/problem+json"
    assert declared.json() == {
        "type": "about:blank",
        "title": "Payload too large",
        "status": 413,
        "detail": "the request body may be at most 65536 bytes (GATEWAY_MAX_BODY_BYTES)",
        "instance": "/v1/insight-thresholds",
    }

    async def chunks() -> AsyncIterator[bytes]:
        # No Content-Length: the body is counted as it arrives.
        for _ in range(40):
            yield b" " * 2048

    chunked = await gateway.put("/v1/insight-thresholds", content=chunks(), headers=admin)
    assert chunked.status_code == 413
    assert chunked.json()["detail"] == declared.json()["detail"]
    # Just under the cap is read as usual (and validated by the route).
    fits = await gateway.put("/v1/insight-thresholds", content=b"{}" + b" " * (64 * 1024 - 2), headers=admin)
    assert fits.status_code == 200, fits.text


async def test_cors_is_configurable(
    keys: Keys, database_settings: DatabaseSettings, gateway_options: GatewayOptions
) -> None:
    origin = "https://dash.example"
    options = gateway_options.model_copy(update={"cors_origins": [origin]})
    app = create_app(gateway_settings(database_settings, options))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway") as client,
    ):
        preflight = await client.options(
            "/v1/leaderboard",
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "Authorization",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == origin
        read = await client.get("/v1/leaderboard", headers={**bearer(keys.read), "Origin": origin})
        assert read.headers["access-control-allow-origin"] == origin
        assert "ETag" in read.headers["access-control-expose-headers"]
        stranger = await client.get(
            "/v1/leaderboard", headers={**bearer(keys.read), "Origin": "https://evil.example"}
        )
        assert "access-control-allow-origin" not in stranger.headers


async def test_a_signed_jwt_whose_tenant_or_subject_cannot_be_stored_is_401_naming_the_claim(
    gateway: httpx.AsyncClient, keys: Keys
) -> None:
    # Each was a 500: the NUL reached PostgreSQL as the tenant filter, or as the recorded subject
    # (set_by, created_by, the session), or a pydantic error in the override command.
    def admin(**extra: Any) -> dict[str, str]:
        return bearer(jwt.encode(_claims(role="admin", **extra), HS256_SECRET, algorithm="HS256"))

    nul_sub = "the JWT claim `sub` must not contain a control character (U+0000 at position 4)"
    escape_sub = "the JWT claim `sub` must not contain a control character (U+001B at position 4)"
    bad_tenant = "the JWT claim `tenant` is not a tenant id (^[a-z0-9][a-z0-9-]{1,62}$)"
    override = f"/v1/activities/{activity_id('acme', 0)}/attribution"
    for method, path, headers, detail in (
        ("PUT", override, admin(sub="user\x00"), nul_sub),
        ("PUT", override, admin(sub="user\x1b[31m"), escape_sub),
        ("PUT", "/v1/scoring-model", admin(sub="user\x00"), nul_sub),
        ("PUT", "/v1/insight-thresholds", admin(sub="user\x00"), nul_sub),
        ("POST", "/v1/session", admin(sub="user\x00"), nul_sub),
        ("GET", "/v1/reps", admin(tenant="acme\x00"), bad_tenant),
        ("GET", "/v1/activities", admin(tenant="acme\n"), bad_tenant),
        ("POST", "/v1/session", admin(tenant="ac\x00me"), bad_tenant),
    ):
        response = await gateway.request(method, path, json={"rep_id": "rep-1"}, headers=headers)
        assert (response.status_code, response.json()["detail"]) == (401, detail), (method, path)
        assert response.headers["www-authenticate"] == "Bearer"


async def test_a_session_needs_a_live_tenant_and_ends_by_2200_at_the_latest(
    gateway: httpx.AsyncClient, keys: Keys
) -> None:
    unknown = jwt.encode(_claims(tenant="nobody"), HS256_SECRET, algorithm="HS256")
    refused = await gateway.post("/v1/session", headers=bearer(unknown))  # was a 500 (foreign key)
    assert (refused.status_code, refused.json()["detail"]) == (401, "the credential's tenant does not exist")
    # A valid JWT may expire after 2200 (was a 500: no datetime holds its exp); the session
    # still lasts its TTL.
    far = jwt.encode(_claims(exp=10**20), HS256_SECRET, algorithm="HS256")
    session = await gateway.post("/v1/session", headers=bearer(far))
    assert session.status_code == 201, session.text
    assert (await gateway.get("/v1/reps", headers=bearer(far))).status_code == 200
