"""Request-scoped collaborators and the parameter rules every route shares.

Routes stay thin: they take these ``Annotated`` aliases, call a query function from
``adapters/`` with ``principal.tenant_id``, and return a ``*Read`` or ``*Page``.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import AsyncIterator
from datetime import date
from typing import Annotated, Any, NoReturn

import orjson
from fastapi import Depends, Query, Request
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.convertors import Convertor, register_url_convertor

from libs.common.contracts.fields import SafeDate, check_line
from libs.common.web import Problem
from services.gateway.schemas import ProblemRead
from services.gateway.settings import GatewayOptions


class CrmIdConvertor(Convertor[str]):
    """A CRM id in a path (``/v1/reps/{rep_id:crm_id}``), read whole: it may hold ``/``
    (``006/ABC``, sent as ``006%2FABC``, which reaches the router decoded), and any other
    character, a control character included, so that the route answers and the shared check
    refuses it by name (``:path`` does not match a newline). Never empty, and it neither starts
    nor ends with ``/``: ``/v1/reps/rep-1/`` matches no route, so Starlette redirects it to
    ``/v1/reps/rep-1`` (307), and ``/v1/reps//scores`` is a 404, not the rep ``/scores``."""

    regex = "(?s:[^/]|[^/].*[^/])"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("crm_id", CrmIdConvertor())


def _problem(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/problem+json": {"schema": ProblemRead.model_json_schema()}},
    }


#: The error answers every ``/v1`` route may give, for the OpenAPI document.
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: _problem("Missing, unknown, revoked or invalid credential"),
    403: _problem("The credential lacks the scope"),
    404: _problem("No such object for this tenant"),
    422: _problem("A parameter or the body is invalid; `errors` names it"),
    429: _problem("Rate limit reached; retry after `Retry-After` seconds"),
}


async def _connection(request: Request) -> AsyncIterator[AsyncConnection]:
    async with request.app.state.engine.connect() as conn:
        if request.method == "GET":
            # Reads run each statement on its own (READ COMMITTED gives every statement a fresh
            # snapshot inside a transaction too), which saves the BEGIN and ROLLBACK round trips.
            await conn.execution_options(isolation_level="AUTOCOMMIT")
        yield conn


def _options(request: Request) -> GatewayOptions:
    options: GatewayOptions = request.app.state.settings.gateway
    return options


ConnDep = Annotated[AsyncConnection, Depends(_connection)]
OptionsDep = Annotated[GatewayOptions, Depends(_options)]

LimitQuery = Annotated[
    int | None,
    Query(ge=1, description="Page size, 1..GATEWAY_MAX_PAGE_SIZE (default GATEWAY_DEFAULT_PAGE_SIZE)"),
]
CursorQuery = Annotated[str | None, Query(description="The `next_cursor` of the previous page")]
FromQuery = Annotated[SafeDate | None, Query(alias="from", description="First day, inclusive (ISO date)")]
ToQuery = Annotated[SafeDate | None, Query(description="Last day, inclusive (ISO date)")]


def invalid(field: str, reason: str, location: str = "query") -> NoReturn:
    """Refuse a request with a 422 problem naming ``field`` and the ``reason``."""
    raise Problem(
        422,
        "Invalid request",
        f"{location} {field}: {reason}",
        errors=[{"in": location, "field": field, "reason": reason}],
    )


def not_found(what: str, identifier: str) -> NoReturn:
    # The same answer for a missing object and another tenant's: nothing leaks across tenants.
    raise Problem(404, "Not found", f"no {what} {identifier!r}")


def page_size(limit: int | None, options: GatewayOptions) -> int:
    if limit is None:
        return min(options.default_page_size, options.max_page_size)
    if limit > options.max_page_size:
        invalid("limit", f"must be at most {options.max_page_size}")
    return limit


def check_range(first: date | None, last: date | None, options: GatewayOptions) -> None:
    """``to`` not before ``from``, and the span within ``GATEWAY_MAX_RANGE_DAYS``."""
    if first is None or last is None:
        return
    if last < first:
        invalid("to", "must not be before from")
    if (last - first).days + 1 > options.max_range_days:
        invalid("from", f"the range may span at most {options.max_range_days} days")


def encode_cursor(values: list[Any]) -> str:
    """An opaque cursor: the keyset of the last row, JSON in URL-safe base64."""
    return base64.urlsafe_b64encode(orjson.dumps(values)).decode().rstrip("=")


def decode_cursor(cursor: str, arity: int) -> list[Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = orjson.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        invalid("cursor", "is not a cursor this API issued")
    if not isinstance(values, list) or len(values) != arity or not all(_clean(v) for v in values):
        invalid("cursor", "is not a cursor this API issued")
    return values


def _clean(value: object) -> bool:
    """A string a cursor of ours could hold: no control character (PostgreSQL refuses NUL)."""
    if not isinstance(value, str):
        return False
    try:
        check_line(value)
    except ValueError:
        return False
    return True
