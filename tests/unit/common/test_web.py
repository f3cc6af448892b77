"""Which failures are a database outage (503, retry) and which are bugs (500); headers and body caps."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from libs.common.telemetry import HTTP_REQUESTS
from libs.common.web import (
    SECURITY_HEADERS,
    BodyLimitMiddleware,
    DirectRoutes,
    HeadersMiddleware,
    PlainRoute,
    Problem,
    database_unavailable,
    install_common_handlers,
    install_database_unavailable_handler,
    read_asgi_body,
    read_body,
    request_url,
    serve_directly,
)


class CannotConnectNowError(Exception):
    """Stands in for asyncpg's exception of that name (matched by name, as asyncpg's are)."""


@pytest.mark.parametrize(
    ("error", "unavailable"),
    [
        (ConnectionRefusedError(111, "refused"), True),
        (TimeoutError(), True),
        (OperationalError("SELECT 1", {}, Exception("server closed the connection")), True),
        (DBAPIError("SELECT 1", {}, CannotConnectNowError("the database system is shutting down")), True),
        (DBAPIError("SELECT 1", {}, Exception("x"), connection_invalidated=True), True),
        (IntegrityError("INSERT", {}, Exception("duplicate key")), False),
        (DBAPIError("SELECT 1", {}, Exception("syntax error at or near")), False),
        (ValueError("a bug"), False),
    ],
)
def test_database_outages_are_told_apart_from_bugs(error: BaseException, unavailable: bool) -> None:
    assert database_unavailable(error) is unavailable


def _echo_app() -> Starlette:
    """Answers with the body it read, and sets its own Cache-Control and X-Content-Type-Options."""

    async def echo(request: Request) -> Response:
        body = await request.body()
        return Response(body, headers={"X-Content-Type-Options": "set-by-route", "X-Read": str(len(body))})

    app = Starlette(routes=[Route("/echo", echo, methods=["GET", "POST", "PUT"])])
    app.add_middleware(BodyLimitMiddleware, limit=10, setting="TEST_MAX_BODY_BYTES")
    app.add_middleware(HeadersMiddleware, headers={**SECURITY_HEADERS, "X-Extra": "1"})
    return app


async def test_headers_are_added_unless_the_response_set_them() -> None:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=_echo_app()), base_url="http://t"
    ) as client:
        routed = await client.get("/echo")
        missing = await client.get("/nowhere")
    assert routed.headers.get_list("x-content-type-options") == ["set-by-route"]
    assert routed.headers["x-extra"] == "1"
    assert missing.status_code == 404
    assert missing.headers["x-content-type-options"] == "nosniff"


async def test_bodies_over_the_limit_are_refused_and_others_replayed_whole() -> None:
    async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
        for part in parts:
            yield part

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=_echo_app()), base_url="http://t"
    ) as client:
        fits = await client.post("/echo", content=chunks(b"12345", b"67890"))
        declared = await client.put("/echo", content=b"x" * 11)
        streamed = await client.post("/echo", content=chunks(b"123456", b"78901"))
    assert (fits.status_code, fits.content, fits.headers["x-read"]) == (200, b"1234567890", "10")
    for refused in (declared, streamed):
        assert refused.status_code == 413
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.headers["x-content-type-options"] == "nosniff"
        assert refused.json() == {
            "type": "about:blank",
            "title": "Payload too large",
            "status": 413,
            "detail": "the request body may be at most 10 bytes (TEST_MAX_BODY_BYTES)",
            "instance": "/echo",
        }


async def test_an_unexpected_exception_is_a_problem_500_that_says_nosniff() -> None:
    # Was Starlette's plain-text "Internal Server Error" without the security headers.
    app = FastAPI()
    install_common_handlers(app, "test")

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("a bug")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.get("/boom")
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.json() == {
        "type": "about:blank",
        "title": "Internal error",
        "status": 500,
        "detail": "an unexpected error occurred",
        "instance": "/boom",
    }


async def _answer_as_told(request: Request) -> Response:
    """A callback route that answers, refuses or fails as its path says."""
    kind = request.path_params["kind"]
    body = await request.body()
    if kind == "ok":
        return Response(body, media_type="text/plain", headers={"X-Echo": "1"})
    if kind == "sniff":
        return Response(b"x", headers={"X-Content-Type-Options": "custom"})
    if kind == "problem":
        raise Problem(409, "Conflict", "told to refuse")
    if kind == "unavailable":
        raise OperationalError("SELECT 1", {}, Exception("server closed the connection"))
    if kind == "integrity":
        raise IntegrityError("INSERT", {}, Exception("duplicate key"))
    raise RuntimeError("a bug")


def _callback_app(direct: bool) -> FastAPI:
    app = FastAPI(telemetry={"tracing": False, "metrics": False, "logs": False})
    install_common_handlers(app, "direct-test")
    install_database_unavailable_handler(app, 7)
    routes = [PlainRoute("/cb/{kind}", _answer_as_told, methods=["POST"])]
    app.router.routes[:0] = routes
    if direct:
        serve_directly(app, routes, "direct-test")
        assert isinstance(app.build_middleware_stack(), DirectRoutes)
    return app


def _counted(status: str) -> float:
    return float(HTTP_REQUESTS.labels("direct-test", "POST", "/cb/{kind}", status)._value.get())


async def test_routes_served_directly_answer_exactly_as_through_the_middleware_stack() -> None:
    answers: dict[bool, list[tuple[int, list[tuple[str, str]], bytes]]] = {}
    counts: dict[bool, list[float]] = {}
    for direct in (False, True):
        transport = httpx.ASGITransport(app=_callback_app(direct), raise_app_exceptions=False)
        statuses = ("200", "409", "503", "500", "405")
        before = [_counted(s) for s in statuses]
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            sent = [
                await client.post(f"/cb/{kind}", content=b"hello")
                for kind in ("ok", "sniff", "problem", "unavailable", "integrity", "bug")
            ]
            sent.append(await client.get("/cb/ok"))
            sent.append(await client.post("/elsewhere", content=b"{}"))
        answers[direct] = [(r.status_code, list(r.headers.multi_items()), r.content) for r in sent]
        counts[direct] = [_counted(s) - b for s, b in zip(statuses, before, strict=True)]
    assert answers[True] == answers[False]
    assert [status for status, _, _ in answers[True]] == [200, 200, 409, 503, 500, 500, 405, 404]
    assert ("x-content-type-options", "custom") in answers[True][1][1]
    assert counts[True] == counts[False] == [2.0, 1.0, 1.0, 2.0, 0.0]


def test_serving_directly_refuses_an_app_with_fastapis_body_limit() -> None:
    app = FastAPI(max_body_size=10, telemetry={"tracing": False, "metrics": False, "logs": False})
    with pytest.raises(ValueError, match="body limit"):
        serve_directly(app, [], "direct-test")


def _scope(headers: list[tuple[bytes, bytes]], **changes: object) -> dict[str, object]:
    return {
        "type": "http",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/webhooks/twilio/acme",
        "raw_path": b"/v1/webhooks/twilio/acme",
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "server": ("127.0.0.1", 8000),
        **changes,
    }


def _replaying(messages: list[dict[str, object]]) -> Callable[[], Awaitable[dict[str, object]]]:
    queue = list(messages)

    async def receive() -> dict[str, object]:
        return queue.pop(0) if queue else {"type": "http.disconnect"}

    return receive


async def _outcome(read: object) -> object:
    try:
        return await read  # type: ignore[misc]
    except Problem as problem:
        return ("problem", problem.status, problem.title, problem.detail)
    except ClientDisconnect:
        return "disconnect"


@pytest.mark.parametrize(
    ("headers", "messages"),
    [
        ([(b"content-length", b"5")], [{"type": "http.request", "body": b"hello"}]),
        (
            [],
            [
                {"type": "http.request", "body": b"he", "more_body": True},
                {"type": "http.request", "body": b"llo"},
            ],
        ),
        (
            [],
            [
                {"type": "http.request", "body": b"", "more_body": True},
                {"type": "http.request", "body": b"x"},
            ],
        ),
        ([], [{"type": "http.request", "body": b""}]),
        ([], [{"type": "http.request"}]),
        ([(b"content-length", b"11")], [{"type": "http.request", "body": b"hello world"}]),
        ([(b"content-length", b"abc")], [{"type": "http.request", "body": b"hello"}]),
        ([(b"content-length", b"3")], [{"type": "http.request", "body": b"0123456789abc"}]),
        (
            [],
            [
                {"type": "http.request", "body": b"0123456", "more_body": True},
                {"type": "http.request", "body": b"789ab"},
            ],
        ),
        ([], [{"type": "http.request", "body": b"he", "more_body": True}, {"type": "http.disconnect"}]),
        (
            [(b"host", b"x"), (b"content-length", b"2"), (b"content-length", b"99")],
            [{"type": "http.request", "body": b"ok"}],
        ),
    ],
)
async def test_a_body_read_from_the_asgi_call_is_what_read_body_reads_or_refuses(
    headers: list[tuple[bytes, bytes]], messages: list[dict[str, object]]
) -> None:
    outcomes = []
    for direct in (False, True):
        receive = _replaying(messages)

        scope = _scope(headers)
        read = read_asgi_body(scope, receive, 10) if direct else read_body(Request(scope, receive), 10)
        outcomes.append(await _outcome(read))
    assert outcomes[0] == outcomes[1]


@pytest.mark.parametrize(
    "changes",
    [
        {"headers": [(b"host", b"127.0.0.1:8000")]},
        {"headers": [(b"host", b"ingest.example")], "scheme": "https", "query_string": b"a=1&b=%20"},
        {"headers": []},
        {"headers": [], "scheme": "https", "server": ("ingest.example", 443)},
        {"headers": [], "server": ("::1", 8000)},
        {"headers": [], "server": None},
        {"headers": [], "server": ["10.0.0.1", 8080]},
        {"headers": [(b"host", b"bad host:x")], "path": "/v1/webhooks/twilio/a?b#c"},
        {"headers": [(b"x-forwarded-host", b"other"), (b"host", b"h:81"), (b"host", b"second")]},
    ],
)
def test_a_request_url_is_starlettes_each_time_it_is_asked(changes: dict[str, object]) -> None:
    scope = {**_scope([]), **changes}
    expected = str(Request(scope).url)
    assert [request_url(scope), request_url(dict(scope))] == [expected, expected]


async def test_requests_are_labelled_by_the_route_template_without_its_convertors() -> None:
    """The gateway's CRM-id routes are declared ``{rep_id:crm_id}``: the label stays
    ``{rep_id}`` so dashboards and alerts keep reading the series they read before."""
    app = FastAPI(telemetry={"tracing": False, "metrics": False, "logs": False})
    install_common_handlers(app, "label-test")

    @app.get("/things/{thing_id:int}/parts")
    async def parts(thing_id: int) -> dict[str, int]:
        return {"thing_id": thing_id}

    def counted(route: str) -> float:
        return float(HTTP_REQUESTS.labels("label-test", "GET", route, "200")._value.get())

    before = counted("/things/{thing_id}/parts")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        assert (await client.get("/things/7/parts")).json() == {"thing_id": 7}
    assert counted("/things/{thing_id}/parts") - before == 1.0
    assert counted("/things/{thing_id:int}/parts") == 0.0
