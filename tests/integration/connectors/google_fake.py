"""An in-process fake of the Google APIs the connectors call, served on 127.0.0.1 by uvicorn.

Built from Google's public documentation, the requests and responses used only:

* OAuth 2.0 for server-to-server applications, JWT bearer grant with domain-wide delegation:
  https://developers.google.com/identity/protocols/oauth2/service-account
  (``POST token_uri`` with ``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`` and a
  signed ``assertion`` whose ``sub`` is the impersonated user; the assertion is verified here
  with the test's public key).
* Gmail API: ``users.getProfile``, ``users.messages.list`` (newest first, ``pageToken`` /
  ``nextPageToken``), ``users.messages.get`` (``format=metadata``, ``metadataHeaders``,
  ``fields``), ``users.history.list`` (``startHistoryId``, ``historyTypes=messageAdded``,
  paging; 404 when the start id is too old), ``users.watch`` (``topicName`` → ``historyId``,
  ``expiration`` in ms):
  https://developers.google.com/workspace/gmail/api/reference/rest/v1/users.history/list,
  https://developers.google.com/workspace/gmail/api/reference/rest/v1/users.messages/get,
  https://developers.google.com/workspace/gmail/api/reference/rest/v1/users/watch,
  https://developers.google.com/workspace/gmail/api/guides/sync (partial sync, 404 → full sync),
  https://developers.google.com/workspace/gmail/api/guides/push (Pub/Sub notification data).
* Calendar API: ``events.list`` (``singleEvents``, ``timeMin``, ``syncToken``, ``pageToken``;
  ``nextSyncToken`` on the last page only; 410 ``fullSyncRequired`` for an invalid token;
  cancelled events in incremental results), ``events.watch`` (a ``web_hook`` channel):
  https://developers.google.com/workspace/calendar/api/v3/reference/events/list,
  https://developers.google.com/workspace/calendar/api/guides/sync,
  https://developers.google.com/workspace/calendar/api/v3/reference/events/watch.
* Errors: ``{"error": {"code", "message", "errors": [{"reason"}], "status"}}``, 429 with
  ``Retry-After`` and 403 ``rateLimitExceeded`` for quota:
  https://developers.google.com/workspace/gmail/api/guides/handle-errors.
"""

from __future__ import annotations

import asyncio
import base64
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import uvicorn
from google.auth import jwt
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

GMAIL_SCOPE = "https://www.googleapis.com/auth/gmail.metadata"
CALENDAR_SCOPE = "https://www.googleapis.com/auth/calendar.events.readonly"
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"


def google_error(
    code: int, message: str, reason: str, status: str, headers: dict[str, str] | None = None
) -> Response:
    body = {
        "error": {
            "code": code,
            "message": message,
            "errors": [{"reason": reason, "message": message}],
            "status": status,
        }
    }
    return JSONResponse(body, status_code=code, headers=headers)


@dataclass
class FakeMessage:
    id: str
    thread_id: str
    internal_ms: int
    headers: list[tuple[str, str]]
    labels: list[str]
    history_id: int = 0


@dataclass
class FakeMailbox:
    messages: list[FakeMessage] = field(default_factory=list)
    #: history ids below this are no longer kept: history.list answers 404.
    history_floor: int = 0


@dataclass
class FakeEvent:
    resource: dict[str, Any]
    seq: int


class FakeGoogle:
    def __init__(self, public_key_pem: bytes, client_email: str) -> None:
        self.public_key_pem = public_key_pem
        self.client_email = client_email
        self.base_url = ""
        self.mailboxes: dict[str, FakeMailbox] = {}
        self.calendars: dict[str, list[FakeEvent]] = {}
        self.calendar_seq = 0
        self.expired_sync_tokens: set[str] = set()
        self.history_id = 1_000
        self.page_size = 2
        self.forbidden: set[str] = set()
        #: (operation, user) -> responses to give before behaving normally (429s, quota errors);
        #: a None lets that call through.
        self.fail_next: dict[tuple[str, str], list[Response | None]] = {}
        #: (operation, user) -> an event that call waits for before answering (a provider that
        #: does not answer, or a mailbox whose backfill takes hours).
        self.holds: dict[tuple[str, str], asyncio.Event] = {}
        self.tokens: dict[str, tuple[str, str]] = {}
        self.grants: Counter[str] = Counter()
        self.requests: list[tuple[str, str, list[tuple[str, str]]]] = []
        self.watches: dict[str, dict[str, Any]] = {}

    # -- test controls ----------------------------------------------------------------------

    def add_message(
        self,
        user: str,
        message_id: str,
        sent: datetime,
        sender: str,
        to: str,
        subject: str = "",
        labels: tuple[str, ...] = ("INBOX",),
        *,
        with_message_id: bool = True,
    ) -> FakeMessage:
        self.history_id += 1
        message = FakeMessage(
            id=message_id,
            thread_id=f"t-{message_id}",
            internal_ms=int(sent.timestamp() * 1000),
            headers=[
                ("Received", "from mx.example by mx.google.com"),
                ("Date", sent.strftime("%a, %d %b %Y %H:%M:%S +0000")),
                ("Message-ID", f"<{message_id}@mail.example>"),
                ("Subject", subject or f"About {message_id}"),
                ("From", sender),
                ("To", to),
                ("X-Secret-Header", "never forwarded"),
            ],
            labels=list(labels),
            history_id=self.history_id,
        )
        if not with_message_id:
            message.headers = [(n, v) for n, v in message.headers if n != "Message-ID"]
        self.mailboxes.setdefault(user, FakeMailbox()).messages.append(message)
        return message

    def expire_history(self, user: str) -> None:
        # Time passes: every id handed out so far is older than what Gmail keeps.
        self.history_id += 1
        self.mailboxes[user].history_floor = self.history_id

    def revoke_tokens(self) -> None:
        self.tokens.clear()

    def put_event(self, calendar: str, resource: dict[str, Any]) -> None:
        self.calendar_seq += 1
        events = self.calendars.setdefault(calendar, [])
        events[:] = [e for e in events if e.resource["id"] != resource["id"]]
        events.append(FakeEvent(resource, self.calendar_seq))

    # -- plumbing ---------------------------------------------------------------------------

    def _auth(self, request: Request, user: str, scope: str) -> Response | None:
        header = request.headers.get("authorization", "")
        grant = self.tokens.get(header.removeprefix("Bearer "))
        if grant is None:
            return google_error(
                401, "Request had invalid authentication credentials.", "authError", "UNAUTHENTICATED"
            )
        subject, scopes = grant
        if subject != user or scope not in scopes.split():
            return google_error(
                403,
                "Request had insufficient authentication scopes.",
                "insufficientPermissions",
                "PERMISSION_DENIED",
            )
        if user in self.forbidden:
            return google_error(403, f"Delegation denied for {user}", "forbidden", "PERMISSION_DENIED")
        return None

    def _record_and_check(self, request: Request, operation: str, user: str, scope: str) -> Response | None:
        self.requests.append((operation, user, list(request.query_params.multi_items())))
        denied = self._auth(request, user, scope)
        if denied is not None:
            return denied
        queued = self.fail_next.get((operation, user))
        if queued:
            # None in the queue lets that call through: fail the second call with [None, error].
            return queued.pop(0)
        return None

    async def token(self, request: Request) -> Response:
        form = await request.form()
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
        try:
            # The documented audience is always Google's token endpoint, wherever the grant is posted.
            claims = jwt.decode(  # type: ignore[no-untyped-call]
                str(form.get("assertion")), certs=self.public_key_pem, audience=GOOGLE_TOKEN_AUDIENCE
            )
        except ValueError as exc:
            return JSONResponse({"error": "invalid_grant", "error_description": str(exc)}, status_code=400)
        if claims.get("iss") != self.client_email or not claims.get("sub"):
            return JSONResponse({"error": "unauthorized_client"}, status_code=401)
        self.grants[claims["sub"]] += 1
        token = f"ya29.fake-{len(self.tokens)}-{self.grants[claims['sub']]}-{claims['sub']}"
        self.tokens[token] = (claims["sub"], claims.get("scope", ""))
        return JSONResponse({"access_token": token, "expires_in": 3599, "token_type": "Bearer"})

    # -- Gmail ------------------------------------------------------------------------------

    async def profile(self, request: Request) -> Response:
        user = request.path_params["user"]
        if (failure := self._record_and_check(request, "profile", user, GMAIL_SCOPE)) is not None:
            return failure
        if (hold := self.holds.get(("profile", user))) is not None:
            await hold.wait()
        box = self.mailboxes.setdefault(user, FakeMailbox())
        return JSONResponse(
            {
                "emailAddress": user,
                "messagesTotal": len(box.messages),
                "threadsTotal": len(box.messages),
                "historyId": str(self.history_id),
            }
        )

    async def list_messages(self, request: Request) -> Response:
        user = request.path_params["user"]
        if (failure := self._record_and_check(request, "messages.list", user, GMAIL_SCOPE)) is not None:
            return failure
        if "q" in request.query_params:
            return google_error(
                403, "Metadata scope does not support 'q' parameter", "forbidden", "PERMISSION_DENIED"
            )
        newest_first = sorted(
            self.mailboxes.setdefault(user, FakeMailbox()).messages, key=lambda m: -m.internal_ms
        )
        offset = int(request.query_params.get("pageToken") or 0)
        size = min(self.page_size, int(request.query_params.get("maxResults") or 100))
        page = newest_first[offset : offset + size]
        body: dict[str, Any] = {
            "messages": [{"id": m.id, "threadId": m.thread_id} for m in page],
            "resultSizeEstimate": len(newest_first),
        }
        if offset + size < len(newest_first):
            body["nextPageToken"] = str(offset + size)
        return JSONResponse(body)

    async def get_message(self, request: Request) -> Response:
        user = request.path_params["user"]
        if (failure := self._record_and_check(request, "messages.get", user, GMAIL_SCOPE)) is not None:
            return failure
        if request.query_params.get("format") != "metadata":
            return google_error(
                400, "this fake serves format=metadata only", "invalidArgument", "INVALID_ARGUMENT"
            )
        message = next(
            (
                m
                for m in self.mailboxes.get(user, FakeMailbox()).messages
                if m.id == request.path_params["id"]
            ),
            None,
        )
        if message is None:
            return google_error(404, "Requested entity was not found.", "notFound", "NOT_FOUND")
        wanted = {h.lower() for h in request.query_params.getlist("metadataHeaders")}
        body: dict[str, Any] = {
            "id": message.id,
            "threadId": message.thread_id,
            "labelIds": message.labels,
            "snippet": "the first words of the body",
            "historyId": str(message.history_id),
            "internalDate": str(message.internal_ms),
            "sizeEstimate": 2048,
            "payload": {
                "mimeType": "text/plain",
                "headers": [{"name": n, "value": v} for n, v in message.headers if n.lower() in wanted],
            },
        }
        fields = request.query_params.get("fields")
        if fields is not None and "snippet" not in fields.split(","):
            body = {
                k: v
                for k, v in body.items()
                if k in {"id", "threadId", "labelIds", "internalDate", "payload"}
            }
            body["payload"] = {"headers": body["payload"]["headers"]}
        return JSONResponse(body)

    async def history(self, request: Request) -> Response:
        user = request.path_params["user"]
        if (failure := self._record_and_check(request, "history.list", user, GMAIL_SCOPE)) is not None:
            return failure
        box = self.mailboxes.setdefault(user, FakeMailbox())
        start = int(request.query_params["startHistoryId"])
        if start < box.history_floor:
            return google_error(404, "Requested entity was not found.", "notFound", "NOT_FOUND")
        added = [m for m in box.messages if m.history_id > start]
        offset = int(request.query_params.get("pageToken") or 0)
        page = added[offset : offset + self.page_size]
        records = [
            {
                "id": str(m.history_id),
                "messages": [{"id": m.id, "threadId": m.thread_id}],
                "messagesAdded": [{"message": {"id": m.id, "threadId": m.thread_id, "labelIds": m.labels}}],
            }
            for m in page
        ]
        body: dict[str, Any] = {"historyId": str(self.history_id)}
        if records:
            body["history"] = records
        if offset + self.page_size < len(added):
            body["nextPageToken"] = str(offset + self.page_size)
        return JSONResponse(body)

    async def gmail_watch(self, request: Request) -> Response:
        user = request.path_params["user"]
        if (failure := self._record_and_check(request, "watch", user, GMAIL_SCOPE)) is not None:
            return failure
        body = await request.json()
        self.watches[user] = body
        expiration = int(datetime.now(UTC).timestamp() * 1000) + 7 * 86_400_000
        return JSONResponse({"historyId": str(self.history_id), "expiration": str(expiration)})

    # -- Calendar ---------------------------------------------------------------------------

    async def events(self, request: Request) -> Response:
        calendar = request.path_params["calendar"]
        if (failure := self._record_and_check(request, "events.list", calendar, CALENDAR_SCOPE)) is not None:
            return failure
        params = request.query_params
        if params.get("singleEvents") != "true":
            return google_error(
                400, "this fake expands recurring events only", "invalidArgument", "INVALID_ARGUMENT"
            )
        events = sorted(self.calendars.get(calendar, []), key=lambda e: e.seq)
        token = params.get("syncToken")
        if token is not None:
            if "timeMin" in params:
                return google_error(
                    400,
                    "Sync token cannot be used with other request restrictions.",
                    "invalid",
                    "INVALID_ARGUMENT",
                )
            if token in self.expired_sync_tokens:
                return google_error(
                    410, "Sync token is no longer valid, a full sync is required.", "fullSyncRequired", "GONE"
                )
            selected = [e for e in events if e.seq > int(token.removeprefix("s"))]
        else:
            time_min = params.get("timeMin")
            selected = [
                e
                for e in events
                if e.resource.get("status") != "cancelled"
                and (time_min is None or _event_end(e.resource) >= datetime.fromisoformat(time_min))
            ]
        offset = int(params.get("pageToken") or 0)
        page = selected[offset : offset + self.page_size]
        body: dict[str, Any] = {
            "kind": "calendar#events",
            "items": [dict(e.resource, description="private notes", location="Room 1") for e in page],
        }
        if offset + self.page_size < len(selected):
            body["nextPageToken"] = str(offset + self.page_size)
        else:
            body["nextSyncToken"] = f"s{self.calendar_seq}"
        return JSONResponse(body)

    async def calendar_watch(self, request: Request) -> Response:
        calendar = request.path_params["calendar"]
        if (failure := self._record_and_check(request, "events.watch", calendar, CALENDAR_SCOPE)) is not None:
            return failure
        body = await request.json()
        self.watches[calendar] = body
        expiration = int(datetime.now(UTC).timestamp() * 1000) + 7 * 86_400_000
        return JSONResponse(
            {
                "kind": "api#channel",
                "id": body["id"],
                "resourceId": "r-" + calendar,
                "expiration": str(expiration),
            }
        )

    def app(self) -> Starlette:
        gmail = "/gmail/v1/users/{user}"
        return Starlette(
            routes=[
                Route("/token", self.token, methods=["POST"]),
                Route(f"{gmail}/profile", self.profile),
                Route(f"{gmail}/messages", self.list_messages),
                Route(f"{gmail}/messages/{{id}}", self.get_message),
                Route(f"{gmail}/history", self.history),
                Route(f"{gmail}/watch", self.gmail_watch, methods=["POST"]),
                Route("/calendar/v3/calendars/{calendar}/events", self.events),
                Route(
                    "/calendar/v3/calendars/{calendar}/events/watch", self.calendar_watch, methods=["POST"]
                ),
            ]
        )


def _event_end(resource: dict[str, Any]) -> datetime:
    """An event's end: a ``dateTime``, or an all-day event's exclusive end ``date`` (midnight UTC here)."""
    end = resource["end"]
    if "dateTime" in end:
        return datetime.fromisoformat(end["dateTime"])
    return datetime.fromisoformat(end["date"]).replace(tzinfo=UTC)


def pubsub_push(user: str, history_id: int, message_id: str = "136969346945") -> bytes:
    """A Pub/Sub push body as Gmail's notifications arrive (the guide's example shape)."""
    import json

    data = base64.b64encode(json.dumps({"emailAddress": user, "historyId": history_id}).encode()).decode()
    return json.dumps(
        {
            "message": {"data": data, "messageId": message_id, "publishTime": "2026-12-02T10:00:00Z"},
            "subscription": "projects/p/subscriptions/spm",
        }
    ).encode()


@asynccontextmanager
async def serving(app: Starlette) -> AsyncIterator[str]:
    """Serve ``app`` on 127.0.0.1 (a free port) in this event loop; yields its base URL."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, lifespan="off"))
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
