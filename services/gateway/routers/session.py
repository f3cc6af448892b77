"""Dashboard sessions: a key or JWT exchanged once for a short-lived httpOnly cookie, and sign-out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, Request, Response

from libs.common.settings import Mode
from libs.common.web import Problem
from services.gateway.adapters import credentials
from services.gateway.auth import SESSION_COOKIE, BearerReaderDep, Caller, CredentialKind, ReaderCallerDep
from services.gateway.deps import PROBLEM_RESPONSES, OptionsDep
from services.gateway.schemas import SessionRead

router = APIRouter(prefix="/v1/session", tags=["session"], responses=PROBLEM_RESPONSES)


def _session_read(caller: Caller) -> SessionRead:
    expires = caller.expires_at if caller.kind is CredentialKind.SESSION else None
    return SessionRead(
        tenant_id=caller.principal.tenant_id,
        subject=caller.principal.key_id,
        scopes=sorted(scope.value for scope in caller.principal.scopes),
        expires_at=None if expires is None else datetime.fromtimestamp(expires, UTC),
    )


@router.post("", status_code=201, response_model=SessionRead)
async def create_session(
    request: Request, response: Response, caller: BearerReaderDep, options: OptionsDep
) -> SessionRead:
    """Exchange the `Authorization: Bearer` key or JWT for a session cookie (httpOnly, SameSite=Strict)."""
    now = datetime.now(UTC)
    expires_at = now + timedelta(seconds=options.session_ttl_seconds)
    if caller.expires_at is not None:
        # A session never outlives the JWT it was exchanged for.
        expires_at = min(expires_at, datetime.fromtimestamp(caller.expires_at, UTC))
    principal = caller.principal
    async with request.app.state.engine.begin() as conn:
        if not await credentials.tenant_is_live(conn, principal.tenant_id):
            # A JWT names its tenant; one that does not exist (or no longer) signs nobody in.
            raise Problem(
                401,
                "Unauthorized",
                "the credential's tenant does not exist",
                headers={"WWW-Authenticate": "Bearer"},
            )
        token, stored = await credentials.create_session(
            conn,
            tenant_id=principal.tenant_id,
            subject=principal.key_id,
            key_id=principal.key_id if caller.kind is CredentialKind.API_KEY else None,
            scopes=principal.scopes,
            expires_at=expires_at,
            pepper=request.app.state.settings.runtime.secret_key.get_secret_value(),
        )
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=max(1, int((expires_at - now).total_seconds())),
        path="/",
        # Plain http only in local mode (http://127.0.0.1); everywhere else the cookie needs TLS.
        secure=request.app.state.settings.runtime.mode is not Mode.LOCAL,
        httponly=True,
        samesite="strict",
    )
    response.headers["Cache-Control"] = "no-store"
    return _session_read(
        Caller(principal, CredentialKind.SESSION, f"session:{stored.session_id}", stored.expires_at)
    )


@router.get("", response_model=SessionRead)
async def read_session(caller: ReaderCallerDep, response: Response) -> SessionRead:
    """Who the cookie (or the `Authorization` credential) signs in as; 401 once the session ended."""
    response.headers["Cache-Control"] = "no-store"
    return _session_read(caller)


@router.delete("", status_code=204, response_class=Response)
async def delete_session(request: Request, caller: ReaderCallerDep) -> Response:
    """Sign out: the session is revoked at once and its cookie cleared."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if caller.kind is CredentialKind.SESSION and cookie and caller.session_id is not None:
        await request.app.state.sessions.revoke(cookie, caller.session_id)
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return response
