"""CSV export: one content-negotiation layer over the JSON reads.

A ``GET`` of an exportable list whose ``Accept`` prefers ``text/csv`` runs the route exactly as
for JSON (same parameters, filters, authorization and errors) and turns the rows of its answer
into CSV: one row per list item, nested objects flattened to ``parent.child`` columns, the
answer's other fields (the period, the filters) repeated on every row. Timestamps are written
in the tenant's time zone; text cells that a spreadsheet would run as a formula (starting with
``=``, ``+``, ``-``, ``@``, tab or carriage return) are prefixed with ``'``. Numbers are never
altered, so a negative change stays a number. An error keeps its ``application/problem+json``.
A list with more pages names the next one in a ``Link: <...>; rel="next"`` header.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode
from zoneinfo import ZoneInfo

import orjson
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from libs.common.web import Problem
from services.gateway.adapters.calendar import tenant_calendar

CSV_MEDIA_TYPE = "text/csv; charset=utf-8"


@dataclass(frozen=True, slots=True)
class Export:
    """An exportable route: its path, the field holding its rows, and the download's file name."""

    pattern: re.Pattern[str]
    rows: str
    filename: str


#: Every route that answers ``Accept: text/csv``.
EXPORTS = (
    Export(re.compile(r"/v1/leaderboard"), "entries", "leaderboard"),
    Export(re.compile(r"/v1/reps/.+/scores"), "periods", "rep-scores"),
    Export(re.compile(r"/v1/teams/.+/scores"), "periods", "team-scores"),
    Export(re.compile(r"/v1/funnel"), "steps", "funnel"),
    Export(re.compile(r"/v1/insights/[a-z-]+"), "items", "insights"),
    Export(re.compile(r"/v1/activities"), "items", "activities"),
    Export(re.compile(r"/v1/deals/.+/activities"), "items", "deal-activities"),
    Export(re.compile(r"/v1/deals"), "items", "deals"),
    Export(re.compile(r"/v1/accounts"), "items", "accounts"),
    Export(re.compile(r"/v1/contacts"), "items", "contacts"),
    Export(re.compile(r"/v1/reps"), "items", "reps"),
    Export(re.compile(r"/v1/teams"), "items", "teams"),
)

_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _quality(media_range: str) -> tuple[str, float]:
    media, *params = (part.strip() for part in media_range.split(";"))
    q = 1.0
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "q":
            try:
                q = float(value)
            except ValueError:
                q = 0.0
    return media.lower(), q


def preference(accept: str | None) -> str:
    """``csv`` when ``text/csv`` is asked for explicitly and at least as much as JSON, else ``json``."""
    if not accept:
        return "json"
    qualities: dict[str, float] = {}
    for media_range in accept.split(","):
        if media_range.strip():
            media, q = _quality(media_range)
            qualities[media] = max(q, qualities.get(media, 0.0))
    csv_q = qualities.get("text/csv", 0.0)
    json_q = max(qualities.get(m, 0.0) for m in ("application/json", "application/*", "*/*"))
    return "csv" if csv_q > 0 and csv_q >= json_q else "json"


def export_for(path: str) -> Export | None:
    return next((e for e in EXPORTS if e.pattern.fullmatch(path)), None)


def _flatten(value: Any, prefix: str, out: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for key, inner in value.items():
            _flatten(inner, f"{prefix}.{key}" if prefix else str(key), out)
    elif isinstance(value, list) and any(isinstance(v, dict | list) for v in value):
        out[prefix] = orjson.dumps(value).decode()
    elif isinstance(value, list):
        out[prefix] = "; ".join("" if v is None else str(v) for v in value)
    else:
        out[prefix] = value


def table(payload: dict[str, Any], rows_field: str) -> tuple[list[str], list[dict[str, Any]]]:
    """The columns (in order of first appearance) and flat rows of ``payload[rows_field]``."""
    context: dict[str, Any] = {}
    for key, value in payload.items():
        if key not in (rows_field, "next_cursor"):
            _flatten(value, key, context)
    rows: list[dict[str, Any]] = []
    for item in payload.get(rows_field) or []:
        flat = dict(context)
        _flatten(item, "", flat)
        rows.append(flat)
    columns: dict[str, None] = dict.fromkeys(context)
    for row in rows:
        columns.update(dict.fromkeys(row))
    return list(columns), rows


def cell(value: Any, zone: ZoneInfo) -> str:
    """One CSV cell: timestamps in ``zone``, formula-looking text neutralised, numbers as they are."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    text = str(value)
    if _TIMESTAMP.fullmatch(text):
        return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(zone).isoformat()
    if text.startswith(_FORMULA_STARTS):
        return "'" + text
    return text


def to_csv(columns: list[str], rows: Iterable[dict[str, Any]], zone: ZoneInfo) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([cell(row.get(column), zone) for column in columns])
    return buffer.getvalue().encode()


def _next_link(scope: Scope, cursor: str) -> str:
    query = [(k, v) for k, v in parse_qsl(scope.get("query_string", b"").decode()) if k != "cursor"]
    return f'<{scope["path"]}?{urlencode([*query, ("cursor", cursor)])}>; rel="next"'


class CsvNegotiation:
    """Serve the exportable reads as CSV on ``Accept: text/csv``; see the module docstring."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET" or not scope["path"].startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        if preference(Headers(scope=scope).get("accept")) != "csv":
            await self.app(scope, receive, send)
            return
        export = export_for(scope["path"])
        if export is None:
            problem = Problem(406, "Not acceptable", "this route answers application/json only, not text/csv")
            await problem.response(scope["path"])(scope, receive, send)
            return
        await self._export(scope, receive, send, export)

    async def _export(self, scope: Scope, receive: Receive, send: Send, export: Export) -> None:
        # One state for both scopes: authentication leaves the principal there for ``_zone``.
        scope.setdefault("state", {})
        headers = [(k, v) for k, v in scope["headers"] if k != b"accept"]
        inner = {**scope, "headers": [*headers, (b"accept", b"application/json")]}
        start: Message | None = None
        chunks: list[bytes] = []
        passthrough = False

        async def capture(message: Message) -> None:
            nonlocal start, passthrough
            if passthrough:
                await send(message)
            elif message["type"] == "http.response.start":
                content_type = Headers(raw=message["headers"]).get("content-type", "")
                if message["status"] != 200 or not content_type.startswith("application/json"):
                    passthrough = True  # errors and anything else go out as they are
                    await send(message)
                else:
                    start = message
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(inner, receive, capture)
        if passthrough or start is None:
            return
        payload = orjson.loads(b"".join(chunks))
        zone = await self._zone(scope)
        columns, rows = table(payload, export.rows)
        body = to_csv(columns, rows, zone)
        response_headers = [
            (b"content-type", CSV_MEDIA_TYPE.encode()),
            (b"content-length", str(len(body)).encode()),
            (b"content-disposition", f'attachment; filename="{export.filename}.csv"'.encode()),
            (b"cache-control", b"private, no-store"),
            (b"vary", b"Accept, Authorization, Cookie"),
        ]
        if payload.get("next_cursor"):
            response_headers.append((b"link", _next_link(scope, payload["next_cursor"]).encode()))
        kept = [
            (k, v)
            for k, v in start["headers"]
            if k.lower() not in (b"content-type", b"content-length", b"etag", b"cache-control", b"vary")
        ]
        await send({**start, "headers": kept + response_headers})
        await send({"type": "http.response.body", "body": body})

    @staticmethod
    async def _zone(scope: Scope) -> ZoneInfo:
        principal = scope.get("state", {}).get("principal")
        if principal is None:
            return ZoneInfo("UTC")
        async with scope["app"].state.engine.connect() as conn:
            return (await tenant_calendar(conn, principal.tenant_id)).zone
