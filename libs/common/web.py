"""HTTP plumbing shared by ingest and gateway: RFC 9457 problems, bounded bodies, request metrics."""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Sequence
from typing import Any

import orjson
from fastapi import FastAPI, Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from prometheus_client import Counter, Histogram
from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from starlette._utils import is_async_callable
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import URL
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.requests import ClientDisconnect
from starlette.routing import Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from libs.common.contracts.fields import check_line, meaningful_errors, reason_of
from libs.common.telemetry import HTTP_DURATION, HTTP_REQUESTS

log = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"


class Problem(Exception):
    """An error a client can act on, rendered as ``application/problem+json`` (RFC 9457)."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str = "",
        *,
        errors: Sequence[dict[str, Any]] = (),
        headers: dict[str, str] | None = None,
        type_: str = "about:blank",
    ) -> None:
        super().__init__(detail or title)
        self.status = status
        self.title = title
        self.detail = detail
        self.errors = list(errors)
        self.headers = headers or {}
        self.type = type_

    def response(self, instance: str = "") -> Response:
        body: dict[str, Any] = {"type": self.type, "title": self.title, "status": self.status}
        if self.detail:
            body["detail"] = self.detail
        if instance:
            body["instance"] = instance
        if self.errors:
            body["errors"] = self.errors
        return Response(
            orjson.dumps(body), status_code=self.status, media_type=PROBLEM_MEDIA_TYPE, headers=self.headers
        )


def field_errors(
    exc: ValidationError | RequestValidationError, prefix: Sequence[str | int] = ()
) -> list[dict[str, Any]]:
    """Pydantic errors as ``{"field": "a.0.b", "reason": ...}`` entries."""
    out: list[dict[str, Any]] = []
    for error in meaningful_errors(exc.errors()):
        if error.get("type") == "json_invalid" and not prefix:
            out.append(_not_json(error))
            continue
        loc = [*prefix, *error.get("loc", ())]
        if loc and loc[0] in ("body", "query", "path", "header"):
            source = loc[0]
            loc = loc[1:]
        else:
            source = "body"
        out.append(
            {
                "in": source,
                # A refused mapping key is named by itself (pydantic adds a "[key]" part after it).
                "field": ".".join(str(part) for part in loc if part != "[key]") or "(root)",
                "reason": reason_of(error),
            }
        )
    return out


def _not_json(error: Any) -> dict[str, Any]:
    """FastAPI's refusal of a body that is not JSON (``loc`` ``("body", <character>)``) as the
    body's error: the field is the body, the reason says where, not a character offset as field."""
    loc = error.get("loc", ())
    where = f" at character {loc[-1]}" if loc and isinstance(loc[-1], int) else ""
    cause = (error.get("ctx") or {}).get("error") or "malformed"
    return {"in": "body", "field": "(root)", "reason": f"not valid JSON: {cause}{where}"}


#: FastAPI's title for a body its JSON parser failed on otherwise than by a decode error.
_UNPARSED_BODY = "There was an error parsing the body"


def _unparsed_body(exc: StarletteHTTPException) -> Problem:
    """FastAPI's bare 400 for a body ``json.loads`` raised on without a decode error (bytes that
    are not UTF-8, nesting past the parser's recursion limit), naming the body and why."""
    cause = exc.__cause__
    if isinstance(cause, UnicodeDecodeError):
        reason = "not valid UTF-8"
    elif isinstance(cause, RecursionError):
        reason = "not valid JSON: nested too deep"
    else:
        reason = "not valid JSON"
    return Problem(
        400, "Malformed body", f"body: {reason}", errors=[{"in": "body", "field": "(root)", "reason": reason}]
    )


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing with 413 past ``limit`` bytes without reading it all."""
    _check_declared_length(request.headers.get("content-length"), limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


async def read_asgi_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    """:func:`read_body` from the ASGI call itself, for a route that reads its body only this
    way (the same refusals; a client gone before the end raises ``ClientDisconnect``, as
    ``Request.stream`` does): no ``Headers`` and no async generator per request."""
    declared = None
    for name, value in scope["headers"]:
        if name == b"content-length":
            declared = value.decode("latin-1")
            break
    _check_declared_length(declared, limit)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.request":
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise _too_large(limit)
            if chunk:
                chunks.append(chunk)
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)
        elif message["type"] == "http.disconnect":
            raise ClientDisconnect()


def _check_declared_length(declared: str | None, limit: int) -> None:
    if declared is not None:
        try:
            if int(declared) > limit:
                raise _too_large(limit)
        except ValueError:
            raise Problem(400, "Bad Content-Length", "Content-Length is not a number") from None


def _too_large(limit: int) -> Problem:
    return Problem(413, "Payload too large", f"the body may be at most {limit} bytes")


#: ``str(request.url)`` by what Starlette's ``URL(scope=...)`` reads of the scope (scheme,
#: server, path, query string, Host header): webhook URLs repeat (one per tenant and source).
_URLS: dict[tuple[Any, ...], str] = {}
_URLS_KEPT = 4096


def request_url(scope: Scope) -> str:
    """``str(Request(scope).url)``, remembered (up to 4,096 URLs, then forgotten at once)."""
    host = None
    for name, value in scope["headers"]:
        if name == b"host":
            host = value
            break
    server = scope.get("server")
    key = (
        scope.get("scheme", "http"),
        None if server is None else tuple(server),  # a list, from some servers, hashes as a tuple
        scope["path"],
        scope.get("query_string", b""),
        host,
    )
    url = _URLS.get(key)
    if url is None:
        if len(_URLS) >= _URLS_KEPT:
            _URLS.clear()
        url = _URLS[key] = str(URL(scope=scope))
    return url


def install_common_handlers(app: FastAPI, service: str) -> None:
    """Problem-JSON error handlers and the request-metrics middleware."""

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> Response:
        return exc.response(request.url.path)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        errors = field_errors(exc)
        media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if not media_type.endswith("json") and any(
            e["in"] == "body" and e["field"] == "(root)" for e in errors
        ):
            # `curl -d` without `-H 'Content-Type: application/json'` sends a form: say so.
            errors = [
                {
                    "in": "header",
                    "field": "content-type",
                    "reason": f"must be application/json, not {media_type or 'missing'}",
                }
            ]
        detail = "; ".join(f"{e['in']} {e['field']}: {e['reason']}" for e in errors)
        return Problem(422, "Invalid request", detail, errors=errors).response(request.url.path)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 400 and exc.detail == _UNPARSED_BODY:
            return _unparsed_body(exc).response(request.url.path)
        headers = dict(exc.headers or {})
        return Problem(exc.status_code, str(exc.detail), headers=headers).response(request.url.path)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        # Starlette answers this from its outermost middleware, past HeadersMiddleware, so the
        # security headers are set here; it re-raises afterwards, so the traceback is still logged.
        problem = Problem(500, "Internal error", "an unexpected error occurred", headers=SECURITY_HEADERS)
        return problem.response(request.url.path)

    app.add_middleware(HeadersMiddleware, headers=SECURITY_HEADERS)
    app.add_middleware(RequestMetricsMiddleware, service=service)


#: Sent on every response of every service: no content sniffing (a text/plain echo stays text).
SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff"}


def raw_headers(headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
    """``headers`` as ASGI sends them: lower-case latin-1 names and values."""
    return [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]


def with_missing_headers(start: Message, headers: Sequence[tuple[bytes, bytes]]) -> Message:
    """An ``http.response.start`` message with ``headers`` added, except those it set itself."""
    present = {k.lower() for k, _ in start.get("headers", [])}
    extra = [(k, v) for k, v in headers if k not in present]
    return {**start, "headers": [*start.get("headers", []), *extra]}


class HeadersMiddleware:
    """Adds ``headers`` to every HTTP response, unless the response set that header itself."""

    def __init__(self, app: ASGIApp, headers: dict[str, str]) -> None:
        self.app = app
        self.headers = raw_headers(headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = with_missing_headers(message, self.headers)
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BodyLimitMiddleware:
    """Refuses a request body over ``limit`` bytes with 413 before the app sees any of it.

    The body is read ahead (it is small by construction) and replayed to the app, so a chunked
    body without ``Content-Length`` is bounded as well.
    """

    def __init__(self, app: ASGIApp, limit: int, setting: str) -> None:
        self.app = app
        self.limit = limit
        self.setting = setting

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break  # the client went away; the app sees the disconnect
            size += len(message.get("body", b""))
            if size > self.limit:
                await self._refuse(scope, receive, send)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                message = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return message
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        problem = Problem(
            413,
            "Payload too large",
            f"the request body may be at most {self.limit} bytes ({self.setting})",
            headers={"Connection": "close"},
        )
        await problem.response(scope["path"])(scope, receive, send)


def route_label(route: object) -> str:
    """The ``route`` label of a request's series: the matched route's template without its
    convertors (``/v1/reps/{rep_id}/scores``, not ``{rep_id:crm_id}``: dashboards and alerts
    keep the label they had), ``unmatched`` when no route matched."""
    if route is None:
        return "unmatched"
    return str(getattr(route, "path_format", None) or getattr(route, "path", "unmatched"))


class RequestMetricsMiddleware:
    """Counts and times every HTTP request by route template and status.

    A plain ASGI middleware: ``@app.middleware("http")`` would run each request through an
    extra task and memory stream, a measurable share of a small request's CPU. The labelled
    series are kept per (method, route, status): ``labels()`` takes a lock and builds a key
    each time, twice per request otherwise.
    """

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service
        self._series: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets when the app raises before answering

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            # The router records the matched route in the scope; the template keeps cardinality low.
            route = route_label(scope.get("route"))
            requests, duration = self._labelled(scope["method"], route, status)
            requests.inc()
            duration.observe(time.perf_counter() - started)

    def _labelled(self, method: str, route: str, status: int) -> tuple[Counter, Histogram]:
        key = (method, route, status)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = (
                HTTP_REQUESTS.labels(self.service, method, route, str(status)),
                HTTP_DURATION.labels(self.service, route),
            )
        return series


class PlainRoute(Route):
    """A Starlette route for a hot path, without FastAPI's per-request dependency solving.

    It records itself in the scope as FastAPI's routes do, so :class:`RequestMetricsMiddleware`
    labels its requests by the route template too.
    """

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child_scope = super().matches(scope)
        if match != Match.NONE:
            child_scope["route"] = self
        return match, child_scope


def document_models(app: FastAPI, *models: type[BaseModel]) -> None:
    """Add models that routes reference by ``$ref`` but read from the raw body (so FastAPI
    does not see them) to the OpenAPI components, nested definitions included."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = build()
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        for model in models:
            exported = model.model_json_schema(ref_template="#/components/schemas/{model}")
            for name, definition in exported.pop("$defs", {}).items():
                schemas.setdefault(name, definition)
            schemas.setdefault(model.__name__, exported)
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]


def database_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` means the database cannot be reached right now (a 503), not a bug (a 500)."""
    if isinstance(exc, OSError | TimeoutError | ConnectionError):
        return True
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated or isinstance(exc, InterfaceError | OperationalError):
            return True
        # asyncpg: the server is starting up or shutting down, or dropped the connection.
        names = {type(exc.orig).__name__, *(type(c).__name__ for c in _causes(exc))}
        return bool(names & _UNAVAILABLE)
    return False


_UNAVAILABLE = {
    "CannotConnectNowError",
    "ConnectionDoesNotExistError",
    "ConnectionFailureError",
    "AdminShutdownError",
    "CrashShutdownError",
    "TooManyConnectionsError",
    "InterfaceError",
}


def _causes(exc: BaseException) -> list[BaseException]:
    out: list[BaseException] = []
    current = exc.__cause__ or exc.__context__
    while current is not None and len(out) < 10:
        out.append(current)
        current = current.__cause__ or current.__context__
    return out


def install_database_unavailable_handler(app: FastAPI, retry_after_seconds: int = 2) -> None:
    """Answer 503 + Retry-After when PostgreSQL is down; nothing was accepted, the client retries."""

    async def _handler(request: Request, exc: Exception) -> Response:
        if not database_unavailable(exc):
            log.exception("unhandled database error", extra={"path": request.url.path})
            return Problem(500, "Internal error", "an unexpected error occurred").response(request.url.path)
        log.warning("database unavailable", extra={"path": request.url.path, "error": type(exc).__name__})
        return Problem(
            503,
            "Database unavailable",
            "the database cannot be reached; nothing was accepted, retry later",
            headers={"Retry-After": str(retry_after_seconds)},
        ).response(request.url.path)

    for kind in (DBAPIError, OSError, TimeoutError):
        app.add_exception_handler(kind, _handler)


async def refuse_control_characters(request: Request) -> None:
    """A dependency for every route: a path or query parameter holding a control character
    (``%00`` and the rest of C0) is a 422 naming it, before any route reads it.

    PostgreSQL refuses NUL in text, so without this a decoded ``%00`` reached the database
    and came back as a 500.
    """
    parameters = [("path", k, v) for k, v in request.path_params.items() if isinstance(v, str)]
    parameters += [("query", k, v) for k, v in request.query_params.multi_items()]
    errors = []
    for location, name, value in parameters:
        for checked in (name, value):
            try:
                check_line(checked)
            except ValueError as exc:
                errors.append({"in": location, "field": _printable(name), "reason": str(exc)})
                break
    if errors:
        detail = "; ".join(f"{e['in']} {e['field']}: {e['reason']}" for e in errors)
        raise Problem(422, "Invalid request", detail, errors=errors)


_ACCEPTED_QUERY: dict[int, frozenset[str]] = {}


def _accepted_query(route: APIRoute) -> frozenset[str]:
    """The query parameter names ``route`` declares (its dependencies' included), cached per route."""
    accepted = _ACCEPTED_QUERY.get(id(route))
    if accepted is None:
        accepted = _ACCEPTED_QUERY[id(route)] = frozenset(_query_names(route.dependant))
    return accepted


def _query_names(dependant: Dependant) -> set[str]:
    names = {param.alias or param.name for param in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


async def refuse_unknown_query_parameters(request: Request) -> None:
    """A dependency for every route: a query parameter the route does not declare is a 422
    naming it and listing what the route accepts.

    Silently ignoring it answered a different question than the one asked: the leaderboard
    takes ``period``, and ``?granularity=month`` returned the weekly board without a word.
    """
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    accepted = _accepted_query(route)
    # ``access_token`` is a credential: authentication answers it (401 where it is not taken).
    unknown = sorted({n for n in request.query_params if n not in accepted and n != "access_token"})
    if unknown:
        hint = ", ".join(sorted(accepted)) or "none"
        errors = [
            {
                "in": "query",
                "field": _printable(name),
                "reason": f"unknown parameter; this route accepts: {hint}",
            }
            for name in unknown
        ]
        detail = "; ".join(f"query {e['field']}: {e['reason']}" for e in errors)
        raise Problem(422, "Invalid request", detail, errors=errors)


def _printable(name: str) -> str:
    """A parameter's name as it may be echoed back: control characters shown escaped."""
    return name.encode("unicode_escape").decode("ascii")


class DirectRoutes:
    """Serves ``routes`` (POST only) without the app's middleware stack; all else goes to ``stack``.

    A callback through the stack ran five nested ASGI wrappers (the server-error, telemetry,
    body-size, metrics and headers middlewares) and the router's scan, each a coroutine and a
    ``send`` closure per message. This does what they do for these routes in one wrapper: the
    exception handlers are the app's own (the ones :class:`ExceptionMiddleware` would use,
    chosen as Starlette's ``wrap_app_handling_exceptions`` chooses them), the 500 answer is the
    app's ``Exception`` handler's, the request is counted as :class:`RequestMetricsMiddleware`
    counts it and the security headers are added as :class:`HeadersMiddleware` adds them. The
    route's endpoint (an async ``endpoint(request) -> Response``) is called here, without the
    route's ``request_response`` wrapper and its exception wrapper (three more coroutines and a
    ``send`` closure per request).
    """

    def __init__(
        self,
        app: FastAPI,
        stack: ASGIApp,
        routes: Sequence[Route],
        metrics: RequestMetricsMiddleware,
        headers: dict[str, str],
    ) -> None:
        self.app = app
        self.stack = stack
        self.routes = list(routes)
        for route in self.routes:
            if not is_async_callable(route.endpoint):
                raise ValueError(f"serve_directly: {route.path}'s endpoint must be an async function")
        self.metrics = metrics
        self.headers = raw_headers(headers)
        handlers: dict[Any, Any] = {}
        for key, value in app.exception_handlers.items():
            if key not in (500, Exception):
                handlers[key] = value
        self.handlers = ExceptionMiddleware(stack, handlers=handlers, debug=app.debug)
        self.error_handler = app.exception_handlers.get(Exception) or app.exception_handlers.get(500)

    def _handler_for(self, exc: Exception) -> Any:
        """The app's handler of ``exc``, as Starlette's ``wrap_app_handling_exceptions`` picks it
        (an ``HTTPException``'s status first, then the nearest class of ``exc``), or None."""
        handler = None
        if isinstance(exc, StarletteHTTPException):
            handler = self.handlers._status_handlers.get(exc.status_code)
        if handler is None:
            for cls in type(exc).__mro__:
                if cls in self.handlers._exception_handlers:
                    return self.handlers._exception_handlers[cls]
        return handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            for route in self.routes:
                match, child_scope = route.matches(scope)
                if match is Match.FULL:
                    scope.update(child_scope)
                    await self._serve(route, scope, receive, send)
                    return
        await self.stack(scope, receive, send)

    async def _serve(self, route: Route, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        status = 500  # what the client gets when the route raises before answering
        response_started = False
        own = self.headers

        async def send_with_headers(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                message = with_missing_headers(message, own)
            await send(message)

        request = Request(scope, receive)
        try:
            try:
                answer = await route.endpoint(request)
                await answer(scope, receive, send_with_headers)
            except Exception as exc:
                handler = self._handler_for(exc)
                if handler is None:
                    raise
                if response_started:
                    raise RuntimeError("Caught handled exception, but response already started.") from exc
                if is_async_callable(handler):
                    answer = await handler(request, exc)
                else:
                    answer = await run_in_threadpool(handler, request, exc)
                if answer is not None:
                    await answer(scope, receive, send_with_headers)
                # Reused exception instances accumulate tracebacks across requests.
                exc.__traceback__ = None
        except Exception as exc:
            if self.error_handler is None:
                raise
            answer = self.error_handler(request, exc)
            response = await answer if inspect.isawaitable(answer) else answer
            if not response_started:
                await response(scope, receive, send)
            raise
        finally:
            requests, duration = self.metrics._labelled(scope["method"], route_label(route), status)
            requests.inc()
            duration.observe(time.perf_counter() - started)


def serve_directly(app: FastAPI, routes: Sequence[Route], service: str) -> None:
    """Put ``routes`` in front of ``app``'s middleware stack (see :class:`DirectRoutes`).

    The routes should also be in ``app.router`` (they are answered alike either way: a method
    other than POST, or a stack built another way, goes through it). Only for apps whose stack
    is the one :func:`install_common_handlers` builds, with FastAPI's telemetry and body limit
    off (their middlewares do nothing then).
    """
    build = app.build_middleware_stack
    if app.max_body_size is not None or app._native_telemetry.enabled():
        raise ValueError("serve_directly: the app's body limit and native telemetry must be off")

    def build_with_direct_routes() -> ASGIApp:
        metrics = RequestMetricsMiddleware(app.router, service)
        return DirectRoutes(app, build(), routes, metrics, SECURITY_HEADERS)

    app.build_middleware_stack = build_with_direct_routes  # type: ignore[method-assign]
