"""Pure parts of the gateway: JWT principals, token buckets, funnel arithmetic, cursors, ETags."""

from __future__ import annotations

import json
import time
from types import SimpleNamespace
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from libs.common.tenancy import Scope
from libs.common.web import Problem
from services.gateway.adapters.credentials import session_id_of
from services.gateway.adapters.jwks import signing_keys
from services.gateway.auth import _jwt_caller, _jwt_principal, _rate_limit
from services.gateway.caching import _matches, weak_etag
from services.gateway.deps import decode_cursor, encode_cursor
from services.gateway.domain.funnel import funnel_steps
from services.gateway.ratelimit import STATE_KEY, RateLimiter
from services.gateway.routers.stream import StreamSlots
from services.gateway.settings import GatewayOptions

SECRET = "unit-test-hs256-secret-with-32-bytes!!"  # a fixture value


def _claims(**extra: Any) -> dict[str, Any]:
    return {"sub": "u1", "tenant": "acme", "exp": int(time.time()) + 60} | extra


def test_hs256_reader_and_admin_roles() -> None:
    options = GatewayOptions(jwt_hs256_secret=SECRET)
    reader = _jwt_principal(jwt.encode(_claims(), SECRET, algorithm="HS256"), options)
    assert reader is not None
    assert (reader.tenant_id, reader.scopes, reader.key_id) == ("acme", frozenset({Scope.READ}), "jwt:u1")
    admin = _jwt_principal(jwt.encode(_claims(role="admin"), SECRET, algorithm="HS256"), options)
    assert admin is not None
    assert admin.scopes == frozenset({Scope.READ, Scope.ADMIN})


def test_rs256_with_a_generated_key_and_algorithm_confusion_refused() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    options = GatewayOptions(jwt_rs256_public_key=public.decode())
    principal = _jwt_principal(jwt.encode(_claims(tenant="globex"), key, algorithm="RS256"), options)
    assert principal is not None
    assert principal.tenant_id == "globex"
    # Without an HS256 secret configured, an HS256 token is never accepted.
    assert _jwt_principal(jwt.encode(_claims(), SECRET, algorithm="HS256"), options) is None


def test_jwts_without_required_claims_are_refused() -> None:
    options = GatewayOptions(jwt_hs256_secret=SECRET, jwt_audience="spm")
    no_exp = {"sub": "u1", "tenant": "acme", "aud": "spm"}
    assert _jwt_principal(jwt.encode(no_exp, SECRET, algorithm="HS256"), options) is None
    assert (
        _jwt_principal(jwt.encode(_claims(aud="spm", tenant=7), SECRET, algorithm="HS256"), options) is None
    )
    assert _jwt_principal(jwt.encode(_claims(), SECRET, algorithm="HS256"), options) is None  # no audience
    assert _jwt_principal(jwt.encode(_claims(aud="spm"), SECRET, algorithm="HS256"), options) is not None
    assert _jwt_principal(jwt.encode(_claims(aud="spm"), SECRET, algorithm="HS256"), GatewayOptions()) is None


def test_tenant_and_role_claims_may_be_named_and_roles_given_as_a_list() -> None:
    options = GatewayOptions(
        jwt_hs256_secret=SECRET, jwt_tenant_claim="https://spm.example/tenant", jwt_role_claim="roles"
    )

    def scopes(**claims: Any) -> frozenset[Scope] | None:
        base = {"sub": "u1", "exp": int(time.time()) + 60, "https://spm.example/tenant": "acme"}
        principal = _jwt_principal(jwt.encode(base | claims, SECRET, algorithm="HS256"), options)
        return None if principal is None else principal.scopes

    assert scopes() == frozenset({Scope.READ})
    assert scopes(roles=["viewer", "admin"]) == frozenset({Scope.READ, Scope.ADMIN})
    assert scopes(roles=["read"]) == frozenset({Scope.READ})
    assert scopes(roles="admin") == frozenset({Scope.READ, Scope.ADMIN})
    assert scopes(roles=["viewer"]) is None
    assert scopes(roles={"admin": True}) is None
    # The default claim names no longer count once others are configured.
    assert scopes(role="admin") == frozenset({Scope.READ})
    unnamed = jwt.encode(
        {"sub": "u1", "exp": int(time.time()) + 60, "tenant": "acme"}, SECRET, algorithm="HS256"
    )
    assert _jwt_principal(unnamed, options) is None


def test_a_jwks_document_gives_only_asymmetric_signing_keys_each_verified_with_its_own_algorithm() -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    rsa_jwk = {**json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(rsa_key.public_key())), "kid": "r1"}
    ec_jwk = {**json.loads(jwt.algorithms.ECAlgorithm.to_jwk(ec_key.public_key())), "kid": "e1"}
    document = {
        "keys": [
            rsa_jwk,
            ec_jwk,
            {"kty": "oct", "k": "c2VjcmV0", "kid": "o1"},
            {**rsa_jwk, "kid": "enc", "use": "enc"},
            {"kty": "RSA", "kid": "broken"},
            "not a key",
        ]
    }
    keys = signing_keys(document)
    assert sorted(k or "" for k in keys) == ["e1", "r1"]
    assert (keys["r1"].algorithm_name, keys["e1"].algorithm_name) == ("RS256", "ES256")
    assert signing_keys({"keys": "nope"}) == {} == signing_keys([])
    options = GatewayOptions()
    token = jwt.encode(_claims(), ec_key, algorithm="ES256", headers={"kid": "e1"})
    caller = _jwt_caller(token, options, keys["e1"])
    assert caller is not None
    assert caller.principal.tenant_id == "acme"
    # The token's header cannot choose the algorithm: an ES256 token is not checked as RS256.
    assert _jwt_caller(token, options, keys["r1"]) is None
    assert _jwt_caller(token, options) is None


def test_token_bucket_refills_continuously() -> None:
    now = [0.0]
    limiter = RateLimiter(60, clock=lambda: now[0])
    key = ("acme", "k")
    assert [limiter.take(key) for _ in range(60)] == [None] * 60
    assert limiter.take(key) == pytest.approx(1.0)
    assert limiter.take(("acme", "other")) is None
    now[0] = 0.5
    assert limiter.take(key) == pytest.approx(0.5)
    now[0] = 2.0
    assert limiter.take(key) is None
    assert limiter.remaining(key) == 1
    assert limiter.remaining(("acme", "never-seen")) == 60


def test_one_subject_in_two_tenants_has_two_buckets_and_two_stream_budgets() -> None:
    options = GatewayOptions(jwt_hs256_secret=SECRET)
    acme = _jwt_caller(jwt.encode(_claims(sub="user-7"), SECRET, algorithm="HS256"), options)
    globex = _jwt_caller(
        jwt.encode(_claims(sub="user-7", tenant="globex"), SECRET, algorithm="HS256"), options
    )
    assert acme is not None
    assert globex is not None
    assert (acme.bucket, globex.bucket) == (("acme", "jwt:user-7"), ("globex", "jwt:user-7"))
    limiter = RateLimiter(2, clock=lambda: 0.0)
    assert [limiter.take(acme.bucket) for _ in range(3)] == [None, None, pytest.approx(30.0)]
    assert limiter.take(globex.bucket) is None
    slots = StreamSlots()
    assert [slots.acquire(acme.bucket, 2, 3) for _ in range(3)] == [None, None, "bucket"]
    assert slots.acquire(globex.bucket, 2, 3) is None
    slots.release(acme.bucket)
    assert slots.acquire(acme.bucket, 2, 3) is None
    # Another subject of the tenant: its own budget, up to the tenant's 3.
    assert [slots.acquire(("acme", "session:2"), 2, 3) for _ in range(2)] == [None, "tenant"]
    slots.release(acme.bucket)
    assert slots.acquire(("acme", "session:2"), 2, 3) is None


def test_a_request_the_tenant_s_bucket_refuses_spends_none_of_the_credential_s() -> None:
    """The credential's token was spent before the tenant's bucket refused: a credential kept
    out by its tenant's limit lost its own budget too, request after request."""
    caller = _jwt_caller(
        jwt.encode(_claims(sub="user-7"), SECRET, algorithm="HS256"), GatewayOptions(jwt_hs256_secret=SECRET)
    )
    assert caller is not None
    credential, tenant = RateLimiter(3, clock=lambda: 0.0), RateLimiter(1, clock=lambda: 0.0)
    request: Any = SimpleNamespace(
        app=SimpleNamespace(state=SimpleNamespace(rate_limiter=credential, tenant_rate_limiter=tenant)),
        state=SimpleNamespace(),
    )
    _rate_limit(request, caller)
    for _ in range(2):
        with pytest.raises(Problem) as refused:
            _rate_limit(request, caller)
        assert (refused.value.status, refused.value.detail) == (
            429,
            "this tenant exceeded GATEWAY_RATE_LIMIT_PER_TENANT_PER_MINUTE",
        )
    assert credential.remaining(caller.bucket) == 2
    # The answer's RateLimit headers are the tenant's bucket's, the one that binds (and refused):
    # its limit, nothing left, 60 s until it is full again (1 token at 1 a minute).
    assert getattr(request.state, STATE_KEY) == (1, 0, 60)


def test_funnel_ratios_and_zero_denominators() -> None:
    steps, dials_per_deal = funnel_steps(
        {
            "dials": 40,
            "connects": 10,
            "conversations": 5,
            "meetings_booked": 2,
            "meetings_held": 0,
            "deals_won": 0,
        }
    )
    assert [(s["step"], s["count"], s["ratio_to_previous"]) for s in steps] == [
        ("dials", 40, None),
        ("connects", 10, 0.25),
        ("conversations", 5, 0.5),
        ("meetings_booked", 2, 0.4),
        ("meetings_held", 0, 0.0),
        ("opportunities_created", 0, None),
        ("deals_won", 0, None),
    ]
    assert dials_per_deal is None
    assert funnel_steps({"dials": 30, "deals_won": 4})[1] == 7.5


def test_cursor_round_trip_and_tampering() -> None:
    cursor = encode_cursor(["2026-11-02T09:00:00+00:00", "a1"])
    assert decode_cursor(cursor, 2) == ["2026-11-02T09:00:00+00:00", "a1"]
    for bad in ("%%%", encode_cursor(["only-one"]), encode_cursor([1, 2]), "bm90IGpzb24"):
        with pytest.raises(Problem) as caught:
            decode_cursor(bad, 2)
        assert caught.value.status == 422
        assert caught.value.errors == [
            {"in": "query", "field": "cursor", "reason": "is not a cursor this API issued"}
        ]


def test_weak_etags_match_weakly() -> None:
    tag = weak_etag(b'{"a":1}')
    assert tag.startswith('W/"')
    assert tag.endswith('"')
    assert weak_etag(b'{"a":1}') == tag
    assert weak_etag(b'{"a":2}') != tag
    assert _matches(tag, tag)
    assert _matches(tag.removeprefix("W/"), tag)
    assert _matches(f'"other", {tag}', tag)
    assert _matches("*", tag)
    assert not _matches('W/"other"', tag)


def test_openapi_documents_every_route_with_read_and_page_schemas() -> None:
    from services.gateway.app import create_app

    schema = create_app().openapi()
    assert set(schema["paths"]) >= {
        "/v1/reps",
        "/v1/reps/{rep_id}",
        "/v1/reps/{rep_id}/scores",
        "/v1/teams",
        "/v1/teams/{team_id}",
        "/v1/teams/{team_id}/scores",
        "/v1/leaderboard",
        "/v1/funnel",
        "/v1/insights/at-risk-reps",
        "/v1/insights/stale-deals",
        "/v1/insights/bright-spots",
        "/v1/deals/{deal_id}/activities",
        "/v1/activities",
        "/v1/activities/{activity_id}",
        "/v1/activities/{activity_id}/attribution",
        "/v1/scoring-model",
        "/v1/insight-thresholds",
        "/v1/stream/leaderboard",
    }
    components = schema["components"]["schemas"]
    assert {"RepRead", "RepPage", "LeaderboardRead", "ActivityPage", "DealTimelinePage", "FunnelRead"} <= set(
        components
    )
    assert components["LeaderboardRead"]["examples"][0]["entries"][0]["rep_id"] == "rep-1"
    stream_params = {p["name"] for p in schema["paths"]["/v1/stream/leaderboard"]["get"]["parameters"]}
    assert "access_token" in stream_params
    plain_params = {p["name"] for p in schema["paths"]["/v1/leaderboard"]["get"]["parameters"]}
    assert "access_token" not in plain_params
    problem = schema["paths"]["/v1/leaderboard"]["get"]["responses"]["422"]["content"]
    assert set(problem) == {"application/problem+json"}
    assert "errors" in problem["application/problem+json"]["schema"]["properties"]


@pytest.mark.parametrize(
    ("cookie", "session_id"),
    [
        ("0123456789abcdef.secret-part", "0123456789abcdef"),
        ("0123456789abcdef.", None),
        (".secret", None),
        ("0123456789abcde.secret", None),
        ("0123456789abcdef", None),
        ("0123456789abcdef." + "x" * 200, None),
        ("", None),
    ],
)
def test_session_cookies_name_their_session_or_nothing(cookie: str, session_id: str | None) -> None:
    assert session_id_of(cookie) == session_id
