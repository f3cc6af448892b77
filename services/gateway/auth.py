"""Who is calling, and may they? API keys, JWTs or a dashboard session; tenant isolation starts here.

Every query a route makes takes ``principal.tenant_id``: another tenant's object is simply
not found (404), indistinguishable from a missing one.

API clients send ``Authorization: Bearer <key or JWT>``. The dashboard exchanges one once
(``POST /v1/session``) for an httpOnly session cookie, so no long-lived credential stays in the
page. Rate limits and stream slots count per :attr:`Caller.bucket`, (tenant, subject): two
tenants' JWTs with the same ``sub`` never share one.
"""

from __future__ import annotations

import hashlib
import math
import re
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any

import jwt
from fastapi import Depends, Header, Query, Request
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common import audit
from libs.common.auth import bearer_token
from libs.common.contracts.fields import LATEST, TENANT_ID_PATTERN, check_line
from libs.common.jwt_revocations import SUBJECT_PREFIX, JwtRevocationCache, jwt_not_before, token_revoked
from libs.common.tenancy import Principal, Scope
from libs.common.web import Problem
from services.gateway.adapters import credentials
from services.gateway.adapters.jwks import JwksKeys
from services.gateway.ratelimit import STATE_KEY
from services.gateway.settings import GatewayOptions

_UNAUTHORIZED_HEADERS = {"WWW-Authenticate": "Bearer"}
_TENANT_ID = re.compile(TENANT_ID_PATTERN)
#: The dashboard's session cookie (httpOnly, SameSite=Strict).
SESSION_COOKIE = "spm_session"
#: A request authenticated by the cookie that changes something must also carry this header:
#: a cross-site form cannot set it, and a cross-origin script would need a CORS preflight.
CSRF_HEADER = "x-spm-csrf"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class CredentialKind(StrEnum):
    API_KEY = "api_key"
    JWT = "jwt"
    SESSION = "session"


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated request's credential: the principal routes use, and what to re-check."""

    principal: Principal
    kind: CredentialKind
    #: Who, within the tenant: the API key id, ``jwt:<sub>`` or ``session:<id>``.
    subject: str
    #: Unix seconds after which the credential is void (a JWT's ``exp``, a session's expiry).
    expires_at: float | None = None
    session_id: str | None = None
    #: A JWT's ``iat`` (Unix seconds), which a revocation of its subject compares with.
    issued_at: float | None = None

    @property
    def bucket(self) -> tuple[str, str]:
        """What rate limits and stream slots count by."""
        return (self.principal.tenant_id, self.subject)


def _jwt_claims(token: str, options: GatewayOptions, jwk: jwt.PyJWK | None = None) -> dict[str, Any] | None:
    keys: list[tuple[str, Any]] = []
    if options.jwt_hs256_secret is not None:
        keys.append(("HS256", options.jwt_hs256_secret.get_secret_value()))
    if options.jwt_rs256_public_key:
        keys.append(("RS256", options.jwt_rs256_public_key))
    if jwk is not None:
        # The key's own algorithm, never the one the token's header names.
        keys.append((jwk.algorithm_name, jwk.key))
    for algorithm, key in keys:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                audience=options.jwt_audience,
                issuer=options.jwt_issuer,
                options={"require": ["exp", "sub"], "verify_aud": options.jwt_audience is not None},
            )
        except jwt.PyJWTError:
            continue
        return claims
    return None


def _jwt_scopes(role: object) -> frozenset[Scope] | None:
    """``read`` (also when absent) or ``admin``, given alone or in a list of roles; None for anything else."""
    roles = {"read"} if role is None else {role} if isinstance(role, str) else role
    if not isinstance(roles, list | set):
        return None
    if "admin" in roles:
        return frozenset({Scope.READ, Scope.ADMIN})
    return frozenset({Scope.READ}) if "read" in roles else None


def _jwt_caller(token: str, options: GatewayOptions, jwk: jwt.PyJWK | None = None) -> Caller | None:
    claims = _jwt_claims(token, options, jwk)
    if claims is None:
        return None
    tenant = claims.get(options.jwt_tenant_claim)
    scopes = _jwt_scopes(claims.get(options.jwt_role_claim))
    if not isinstance(tenant, str) or scopes is None:
        return None
    _check_identity_claims(tenant, claims["sub"])
    subject = f"{SUBJECT_PREFIX}{claims['sub']}"
    # An ``exp`` past 2200 (still a valid JWT) is read as 2200: later has no datetime or column.
    expires_at = min(float(claims["exp"]), LATEST.timestamp())
    issued_at = float(claims["iat"]) if isinstance(claims.get("iat"), int | float) else None
    return Caller(
        Principal(tenant, scopes, subject), CredentialKind.JWT, subject, expires_at, issued_at=issued_at
    )


def _check_identity_claims(tenant: str, sub: str) -> None:
    """A signed token whose ``tenant`` or ``sub`` could not be stored or queried is a 401 naming it.

    The subject is recorded (``set_by``, ``created_by``, the session) and the tenant is every
    query's filter: PostgreSQL refuses a NUL in either, which was a 500.
    """
    if not _TENANT_ID.fullmatch(tenant):
        raise _unauthorized(f"the JWT claim `tenant` is not a tenant id ({TENANT_ID_PATTERN})")
    try:
        check_line(sub)
    except ValueError as exc:
        raise _unauthorized(f"the JWT claim `sub` {exc}") from None


def _jwt_principal(token: str, options: GatewayOptions) -> Principal | None:
    caller = _jwt_caller(token, options)
    return None if caller is None else caller.principal


class SessionAuthenticator:
    """Session cookies, each looked up at most every ``recheck_seconds`` (and never past its expiry).

    Revoking a session here takes effect at once on this replica; a revoked API key ends the
    sessions exchanged for it within ``recheck_seconds``.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        pepper: str,
        recheck_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        max_entries: int = 10_000,
        max_unknown: int = 1_000,
    ) -> None:
        self.engine = engine
        self.pepper = pepper
        self.recheck = recheck_seconds
        self.clock = clock
        self.max_entries = max_entries
        self.max_unknown = max_unknown
        #: Live sessions, and apart (at most ``max_unknown``) the cookies that name none: anyone
        #: can send made-up cookies, and those must never push a live session out. Each drops
        #: its least recently used entry when full.
        self._cache: OrderedDict[str, tuple[float, credentials.StoredSession | None]] = OrderedDict()
        self._unknown: OrderedDict[str, tuple[float, credentials.StoredSession | None]] = OrderedDict()

    @staticmethod
    def _digest(token: str) -> str:
        # Cache by a digest, never by the cookie itself.
        return hashlib.sha256(token.encode()).hexdigest()

    async def caller(self, token: str) -> Caller | None:
        digest = self._digest(token)
        now = self.clock()
        hit = self._cache.get(digest) or self._unknown.get(digest)
        if hit is not None and hit[0] > now:
            session = hit[1]
            (self._cache if session is not None else self._unknown).move_to_end(digest)
        else:
            async with self.engine.connect() as conn:
                session = await credentials.load_session(conn, token, self.pepper)
            left = self.recheck if session is None else min(self.recheck, session.expires_at - time.time())
            self._remember(digest, (now + left, session))
        if session is None or session.expires_at <= time.time():
            return None
        principal = Principal(session.tenant_id, session.scopes, session.subject)
        subject = f"session:{session.session_id}"
        return Caller(principal, CredentialKind.SESSION, subject, session.expires_at, session.session_id)

    async def revoke(self, token: str, session_id: str) -> None:
        async with self.engine.begin() as conn:
            await credentials.revoke_session(conn, session_id)
        self._cache.pop(self._digest(token), None)

    def _remember(self, digest: str, entry: tuple[float, credentials.StoredSession | None]) -> None:
        self._cache.pop(digest, None)
        self._unknown.pop(digest, None)
        entries, limit = (
            (self._cache, self.max_entries) if entry[1] is not None else (self._unknown, self.max_unknown)
        )
        while entries and len(entries) >= limit:
            entries.popitem(last=False)
        entries[digest] = entry


async def credential_holds(engine: AsyncEngine, caller: Caller) -> bool:
    """Whether ``caller`` is still valid now: not expired, not revoked, its tenant still there."""
    if caller.expires_at is not None and caller.expires_at <= time.time():
        return False
    tenant_id = caller.principal.tenant_id
    async with engine.connect() as conn:
        if caller.kind is CredentialKind.API_KEY:
            return await credentials.api_key_is_live(conn, tenant_id, caller.principal.key_id)
        if caller.kind is CredentialKind.SESSION and caller.session_id is not None:
            return await credentials.session_is_live(conn, caller.session_id)
        if caller.kind is CredentialKind.JWT:
            not_before = await jwt_not_before(conn, tenant_id, caller.subject.removeprefix(SUBJECT_PREFIX))
            if token_revoked(not_before, caller.issued_at):
                return False
        return await credentials.tenant_is_live(conn, tenant_id)


def _unauthorized(detail: str) -> Problem:
    return Problem(401, "Unauthorized", detail, headers=_UNAUTHORIZED_HEADERS)


async def _bearer_caller(request: Request, token: str) -> Caller | None:
    if token.startswith("spm_"):
        principal: Principal | None = await request.app.state.authenticator.principal(token)
        if principal is None:
            return None
        return Caller(principal, CredentialKind.API_KEY, principal.key_id)
    jwks: JwksKeys | None = request.app.state.jwks
    caller = _jwt_caller(
        token, request.app.state.settings.gateway, None if jwks is None else await jwks.key_for(token)
    )
    if caller is None:
        return None
    revocations: JwtRevocationCache = request.app.state.jwt_revocations
    subject = caller.subject.removeprefix(SUBJECT_PREFIX)
    if await revocations.revoked(caller.principal.tenant_id, subject, caller.issued_at):
        return None
    return caller


async def _session_caller(request: Request, cookie: str) -> Caller | None:
    caller: Caller | None = await request.app.state.sessions.caller(cookie)
    if caller is not None and request.method not in _SAFE_METHODS and CSRF_HEADER not in request.headers:
        raise Problem(
            403, "Forbidden", f"a request authenticated by the session cookie must send `{CSRF_HEADER}: 1`"
        )
    return caller


def _rate_limit(request: Request, caller: Caller) -> None:
    """The credential's bucket, then the tenant's (a credential over its own spends none of the
    tenant's; one the tenant's refuses gets its own token back): 429 naming the limit reached.

    The answer's ``RateLimit-*`` headers are those of the bucket that binds, the one with fewer
    requests left (the credential's on a tie): the one whose refusal a 429's ``Retry-After`` is."""
    limiter = request.app.state.rate_limiter
    tenant_limiter = request.app.state.tenant_rate_limiter
    tenant = (caller.principal.tenant_id, "*")
    limit, wait = "GATEWAY_RATE_LIMIT_PER_MINUTE", limiter.take(caller.bucket)
    if wait is None:
        limit, wait = "GATEWAY_RATE_LIMIT_PER_TENANT_PER_MINUTE", tenant_limiter.take(tenant)
        if wait is not None:
            limiter.refund(caller.bucket)
    binding, key = limiter, caller.bucket
    if tenant_limiter.remaining(tenant) < limiter.remaining(caller.bucket):
        binding, key = tenant_limiter, tenant
    budget = (int(binding.capacity), binding.remaining(key), binding.seconds_to_full(key))
    setattr(request.state, STATE_KEY, budget)
    if wait is not None:
        holder = "credential" if limit == "GATEWAY_RATE_LIMIT_PER_MINUTE" else "tenant"
        raise Problem(
            429,
            "Too many requests",
            f"this {holder} exceeded {limit}",
            headers={"Retry-After": str(max(1, math.ceil(wait)))},
        )


async def _authenticate(request: Request, token: str | None, *, cookie: bool = True) -> Caller:
    """The caller of the bearer ``token``, else (when ``cookie``) of the session cookie; rate limited."""
    session = request.cookies.get(SESSION_COOKIE) if cookie else None
    if token is None and not session:
        raise _unauthorized("send `Authorization: Bearer <API key or JWT>`")
    caller = await _bearer_caller(request, token) if token is not None else None
    if token is None and session:
        caller = await _session_caller(request, session)
    if caller is None:
        raise _unauthorized("the credential is unknown, revoked, expired or invalid")
    request.state.principal = caller.principal
    request.state.caller = caller
    _rate_limit(request, caller)
    return caller


def _require_scope(caller: Caller, scope: Scope) -> None:
    if not caller.principal.allows(scope):
        raise Problem(403, "Forbidden", f"this credential lacks the `{scope.value}` scope")


async def current_caller(request: Request, authorization: Annotated[str | None, Header()] = None) -> Caller:
    """The caller of a ``Bearer`` API key or JWT, or of the dashboard's session cookie."""
    return await _authenticate(request, bearer_token(authorization))


async def current_principal(
    request: Request, authorization: Annotated[str | None, Header()] = None
) -> Principal:
    """The principal of :func:`current_caller`, rate limited per (tenant, subject)."""
    return (await current_caller(request, authorization)).principal


async def reader_caller(caller: Annotated[Caller, Depends(current_caller)]) -> Caller:
    """:func:`current_caller` with the read scope."""
    _require_scope(caller, Scope.READ)
    return caller


async def bearer_reader(request: Request, authorization: Annotated[str | None, Header()] = None) -> Caller:
    """A ``Bearer`` credential with the read scope; the session cookie does not count here."""
    caller = await _authenticate(request, bearer_token(authorization), cookie=False)
    _require_scope(caller, Scope.READ)
    return caller


async def stream_caller(
    request: Request,
    authorization: Annotated[str | None, Header()] = None,
    access_token: Annotated[
        str | None,
        Query(description="The credential, for API clients that cannot set headers; stream only"),
    ] = None,
) -> Caller:
    """Like :func:`current_caller`, also accepting ``?access_token=`` (the dashboard uses its cookie)."""
    caller = await _authenticate(request, bearer_token(authorization) or access_token)
    _require_scope(caller, Scope.READ)
    return caller


def require(scope: Scope) -> object:
    async def dependency(caller: Annotated[Caller, Depends(current_caller)]) -> Principal:
        _require_scope(caller, scope)
        return caller.principal

    return Depends(dependency)


async def admin_caller(caller: Annotated[Caller, Depends(current_caller)]) -> Caller:
    """:func:`current_caller` with the admin scope."""
    _require_scope(caller, Scope.ADMIN)
    return caller


def audit_actor(caller: Caller) -> audit.Actor:
    """Who the audit log names: the key id, ``jwt:<sub>``, or the session and whom it was opened for."""
    if caller.kind is CredentialKind.SESSION:
        return audit.Actor(f"{caller.subject} ({caller.principal.key_id})", audit.CredentialKind.SESSION)
    return audit.Actor(caller.subject, audit.CredentialKind(caller.kind.value))


ReaderDep = Annotated[Principal, require(Scope.READ)]
AdminDep = Annotated[Principal, require(Scope.ADMIN)]
ReaderCallerDep = Annotated[Caller, Depends(reader_caller)]
AdminCallerDep = Annotated[Caller, Depends(admin_caller)]
BearerReaderDep = Annotated[Caller, Depends(bearer_reader)]
StreamCallerDep = Annotated[Caller, Depends(stream_caller)]
