"""Who is calling, and may they? API keys or JWTs; tenant isolation starts here.

Every query a route makes takes ``principal.tenant_id``: another tenant's object is simply
not found (404), indistinguishable from a missing one.
"""

from __future__ import annotations

import math
from typing import Annotated

import jwt
from fastapi import Depends, Header, Query, Request

from libs.common.auth import bearer_token
from libs.common.tenancy import Principal, Scope
from libs.common.web import Problem
from services.gateway.settings import GatewayOptions

_UNAUTHORIZED_HEADERS = {"WWW-Authenticate": "Bearer"}


def _jwt_principal(token: str, options: GatewayOptions) -> Principal | None:
    keys: list[tuple[str, str]] = []
    if options.jwt_hs256_secret is not None:
        keys.append(("HS256", options.jwt_hs256_secret.get_secret_value()))
    if options.jwt_rs256_public_key:
        keys.append(("RS256", options.jwt_rs256_public_key))
    for algorithm, key in keys:
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                audience=options.jwt_audience,
                issuer=options.jwt_issuer,
                options={"require": ["exp", "sub"], "verify_aud": options.jwt_audience is not None},
            )
        except jwt.PyJWTError:
            continue
        tenant = claims.get("tenant")
        role = claims.get("role", "read")
        if not isinstance(tenant, str) or role not in {"read", "admin"}:
            return None
        scopes = frozenset({Scope.READ, Scope.ADMIN} if role == "admin" else {Scope.READ})
        return Principal(tenant, scopes, f"jwt:{claims['sub']}")
    return None


async def _authenticate(request: Request, token: str | None) -> Principal:
    if token is None:
        raise Problem(
            401,
            "Unauthorized",
            "send `Authorization: Bearer <API key or JWT>`",
            headers=_UNAUTHORIZED_HEADERS,
        )
    principal: Principal | None
    if token.startswith("spm_"):
        principal = await request.app.state.authenticator.principal(token)
    else:
        principal = _jwt_principal(token, request.app.state.settings.gateway)
    if principal is None:
        raise Problem(
            401,
            "Unauthorized",
            "the credential is unknown, revoked, expired or invalid",
            headers=_UNAUTHORIZED_HEADERS,
        )
    request.state.principal = principal
    wait = request.app.state.rate_limiter.take(principal.key_id)
    if wait is not None:
        raise Problem(
            429,
            "Too many requests",
            "this credential exceeded GATEWAY_RATE_LIMIT_PER_MINUTE",
            headers={"Retry-After": str(max(1, math.ceil(wait)))},
        )
    return principal


async def current_principal(
    request: Request, authorization: Annotated[str | None, Header()] = None
) -> Principal:
    """The caller of a ``Bearer`` API key or JWT, rate limited per key."""
    return await _authenticate(request, bearer_token(authorization))


async def stream_principal(
    request: Request,
    authorization: Annotated[str | None, Header()] = None,
    access_token: Annotated[
        str | None,
        Query(description="The credential, for clients that cannot set headers (EventSource); stream only"),
    ] = None,
) -> Principal:
    """Like :func:`current_principal`, also accepting ``?access_token=``: browsers' EventSource sends no headers."""
    principal = await _authenticate(request, bearer_token(authorization) or access_token)
    if not principal.allows(Scope.READ):
        raise Problem(403, "Forbidden", f"this credential lacks the `{Scope.READ.value}` scope")
    return principal


def require(scope: Scope) -> object:
    async def dependency(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if not principal.allows(scope):
            raise Problem(403, "Forbidden", f"this credential lacks the `{scope.value}` scope")
        return principal

    return Depends(dependency)


ReaderDep = Annotated[Principal, require(Scope.READ)]
AdminDep = Annotated[Principal, require(Scope.ADMIN)]
StreamReaderDep = Annotated[Principal, Depends(stream_principal)]
