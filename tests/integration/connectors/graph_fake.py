"""An in-process fake of the Microsoft identity platform and Graph, served on 127.0.0.1 by uvicorn.

Built from Microsoft's public documentation, the requests and responses used only:

* Client credentials grant (``POST /{tenant}/oauth2/v2.0/token`` with ``client_id``,
  ``client_secret``, ``scope=https://graph.microsoft.com/.default``) and the authority's
  OpenID configuration document that MSAL reads first:
  https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-client-creds-grant-flow,
  https://learn.microsoft.com/en-us/entra/identity-platform/v2-protocols-oidc.
* Delta queries: ``GET /users/{id}/mailFolders/{folder}/messages/delta`` (``$select``,
  ``$filter=receivedDateTime ge ...``, ``Prefer: odata.maxpagesize``) and
  ``GET /users/{id}/calendarView/delta`` (``startDateTime``, ``endDateTime``; no ``$select``);
  ``@odata.nextLink`` until the last page carries ``@odata.deltaLink``; deleted items as
  ``{"id", "@removed": {"reason": "deleted"}}``; an expired state token is ``410 Gone``:
  https://learn.microsoft.com/en-us/graph/delta-query-overview,
  https://learn.microsoft.com/en-us/graph/delta-query-messages,
  https://learn.microsoft.com/en-us/graph/api/message-delta,
  https://learn.microsoft.com/en-us/graph/api/event-delta.
* Subscriptions: ``POST /subscriptions`` validates ``notificationUrl`` and
  ``lifecycleNotificationUrl`` by POSTing ``?validationToken=`` and expecting the token echoed
  as ``text/plain`` with 200 within 10 s; at most 10,080 minutes for Outlook resources;
  ``PATCH /subscriptions/{id}`` renews; an unknown id is 404:
  https://learn.microsoft.com/en-us/graph/api/subscription-post-subscriptions,
  https://learn.microsoft.com/en-us/graph/api/subscription-update,
  https://learn.microsoft.com/en-us/graph/change-notifications-delivery-webhooks,
  https://learn.microsoft.com/en-us/graph/change-notifications-lifecycle-events.
* Errors ``{"error": {"code", "message"}}``; throttling is ``429`` with ``Retry-After``:
  https://learn.microsoft.com/en-us/graph/throttling, https://learn.microsoft.com/en-us/graph/errors.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

LOGIN = "https://login.microsoftonline.com"
MAX_SUBSCRIPTION = timedelta(minutes=10_080)


def graph_error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class GraphItem:
    resource: dict[str, Any]
    seq: int
    #: For the mail delta's $filter and the calendar view's window.
    when: datetime


class FakeGraph:
    def __init__(self, directory: str, client_id: str, client_secret: str) -> None:
        self.directory = directory
        self.client_id = client_id
        self.client_secret = client_secret
        self.base_url = ""
        self.seq = 0
        self.collections: dict[tuple[str, str], list[GraphItem]] = {}
        self.expired: set[tuple[str, str]] = set()
        self.forbidden: set[str] = set()
        self.fail_next: dict[tuple[str, str], list[Response]] = {}
        self.tokens: set[str] = set()
        self.grants = 0
        self.page_size = 2
        self.subscriptions: dict[str, dict[str, Any]] = {}
        self.renewals = 0
        self.validated: list[str] = []
        self.requests: list[tuple[str, str]] = []
        #: Posts a validation request to a notification URL; returns (status, media type, body).
        self.validator: Callable[[str], Awaitable[tuple[int, str, str]]] | None = None

    # -- test controls ----------------------------------------------------------------------

    def put(self, user: str, collection: str, resource: dict[str, Any], when: datetime) -> None:
        self.seq += 1
        items = self.collections.setdefault((user, collection), [])
        items[:] = [i for i in items if i.resource["id"] != resource["id"]]
        items.append(GraphItem(resource, self.seq, when))

    def expire_delta(self, user: str, collection: str) -> None:
        self.expired.add((user, collection))

    # -- identity platform ------------------------------------------------------------------

    async def openid_configuration(self, request: Request) -> Response:
        tenant = request.path_params["tenant"]
        return JSONResponse(
            {
                "token_endpoint": f"{LOGIN}/{tenant}/oauth2/v2.0/token",
                "authorization_endpoint": f"{LOGIN}/{tenant}/oauth2/v2.0/authorize",
                "issuer": f"{LOGIN}/{tenant}/v2.0",
            }
        )

    async def token(self, request: Request) -> Response:
        form = await request.form()
        if request.path_params["tenant"] != self.directory:
            return JSONResponse(
                {"error": "invalid_request", "error_description": "AADSTS90002: Tenant not found"},
                status_code=400,
            )
        if (
            form.get("grant_type") != "client_credentials"
            or form.get("scope") != "https://graph.microsoft.com/.default"
        ):
            return JSONResponse({"error": "invalid_request"}, status_code=400)
        if form.get("client_id") != self.client_id or form.get("client_secret") != self.client_secret:
            return JSONResponse(
                {
                    "error": "invalid_client",
                    "error_description": "AADSTS7000215: Invalid client secret provided.",
                },
                status_code=401,
            )
        self.grants += 1
        token = f"eyJ0eXAi.fake-{self.grants}"
        self.tokens.add(token)
        return JSONResponse(
            {"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": token}
        )

    # -- Graph ------------------------------------------------------------------------------

    def _check(self, request: Request, operation: str, user: str) -> Response | None:
        self.requests.append((operation, user))
        if request.headers.get("authorization", "").removeprefix("Bearer ") not in self.tokens:
            return graph_error(401, "InvalidAuthenticationToken", "Access token is empty or invalid.")
        if user in self.forbidden:
            return graph_error(403, "ErrorAccessDenied", "Access is denied. Check credentials and try again.")
        queued = self.fail_next.get((operation, user))
        if queued:
            return queued.pop(0)
        return None

    def _page(self, request: Request, user: str, collection: str, path: str) -> Response:
        params = request.query_params
        items = sorted(self.collections.get((user, collection), []), key=lambda i: i.seq)
        select = params.get("$select")
        skip = params.get("$skiptoken")
        if skip is not None:
            mode, value, offset_raw = skip.split("|")
            offset = int(offset_raw)
        elif params.get("$deltatoken") is not None:
            mode, value, offset = "d", params["$deltatoken"], 0
        else:
            if collection == "calendarview":
                value = f"{params['startDateTime']}/{params['endDateTime']}"
            else:
                value = params.get("$filter", "").removeprefix("receivedDateTime ge ")
            mode, offset = "f", 0
        if mode == "d":
            if (user, collection) in self.expired:
                return graph_error(410, "SyncStateNotFound", "The sync state generation is not found.")
            selected = [i for i in items if i.seq > int(value)]
        else:
            start, _, end = value.partition("/")
            low = datetime.fromisoformat(start) if start else datetime.min.replace(tzinfo=UTC)
            high = datetime.fromisoformat(end) if end else datetime.max.replace(tzinfo=UTC)
            selected = [i for i in items if "@removed" not in i.resource and low <= i.when <= high]
        size = self.page_size
        prefer = request.headers.get("prefer", "")
        if prefer.startswith("odata.maxpagesize="):
            size = min(size, int(prefer.split("=", 1)[1]))
        page = selected[offset : offset + size]
        # A derived type (an ``eventMessageResponse`` among messages) keeps its ``@odata.type``.
        keep = set(select.split(",")) | {"id", "@removed", "@odata.etag", "@odata.type"} if select else None
        values = [{k: v for k, v in i.resource.items() if keep is None or k in keep} for i in page]
        extra = {"$select": select} if select else {}
        body: dict[str, Any] = {
            "@odata.context": f"{self.base_url}/v1.0/$metadata#Collection",
            "value": values,
        }
        if offset + size < len(selected):
            body["@odata.nextLink"] = f"{self.base_url}{path}?" + urlencode(
                {**extra, "$skiptoken": f"{mode}|{value}|{offset + size}"}
            )
        else:
            body["@odata.deltaLink"] = f"{self.base_url}{path}?" + urlencode(
                {**extra, "$deltatoken": str(self.seq)}
            )
        return JSONResponse(body)

    async def messages_delta(self, request: Request) -> Response:
        user, folder = request.path_params["user"], request.path_params["folder"]
        if (failure := self._check(request, "messages.delta", user)) is not None:
            return failure
        return self._page(request, user, folder, f"/v1.0/users/{user}/mailFolders/{folder}/messages/delta")

    async def calendar_delta(self, request: Request) -> Response:
        user = request.path_params["user"]
        if (failure := self._check(request, "calendarView.delta", user)) is not None:
            return failure
        if "$select" in request.query_params:
            return graph_error(400, "ErrorInvalidUrlQuery", "$select is not supported on calendarView delta")
        return self._page(request, user, "calendarview", f"/v1.0/users/{user}/calendarView/delta")

    async def create_subscription(self, request: Request) -> Response:
        body = await request.json()
        user = body.get("resource", "").split("/")[1] if "/" in body.get("resource", "") else ""
        if (failure := self._check(request, "subscriptions.create", user)) is not None:
            return failure
        expires = datetime.fromisoformat(body["expirationDateTime"])
        if expires > datetime.now(UTC) + MAX_SUBSCRIPTION:
            return graph_error(
                400, "ExtensionError", "Subscription expiration can only be 10070 minutes in the future."
            )
        if not body.get("notificationUrl", "").startswith("https://"):
            return graph_error(400, "ValidationError", "NotificationUrl must be https.")
        assert self.validator is not None
        for url in {body["notificationUrl"], body.get("lifecycleNotificationUrl") or body["notificationUrl"]}:
            token = f"Validation: Testing client application reachability {uuid.uuid4()}"
            status, media_type, echoed = await self.validator(
                f"{url}?{urlencode({'validationToken': token})}"
            )
            if status != 200 or not media_type.startswith("text/plain") or echoed != token:
                return graph_error(
                    400,
                    "ValidationError",
                    "Subscription validation request failed. Response must exactly match validationToken query parameter.",
                )
            self.validated.append(url)
        subscription_id = str(uuid.uuid4())
        created = dict(
            body, id=subscription_id, expirationDateTime=expires.strftime("%Y-%m-%dT%H:%M:%S.0000000Z")
        )
        self.subscriptions[subscription_id] = created
        return JSONResponse(created, status_code=201)

    async def update_subscription(self, request: Request) -> Response:
        subscription_id = request.path_params["id"]
        current = self.subscriptions.get(subscription_id)
        user = current["resource"].split("/")[1] if current else ""
        if (failure := self._check(request, "subscriptions.update", user)) is not None:
            return failure
        if current is None:
            return graph_error(404, "ResourceNotFound", "The object was not found.")
        body = await request.json()
        expires = datetime.fromisoformat(body["expirationDateTime"])
        current["expirationDateTime"] = expires.strftime("%Y-%m-%dT%H:%M:%S.0000000Z")
        self.renewals += 1
        return JSONResponse(current)

    def notification(self, subscription_id: str, **extra: Any) -> dict[str, Any]:
        """A change or lifecycle notification as Graph posts it for ``subscription_id``."""
        subscription = self.subscriptions[subscription_id]
        return {
            "subscriptionId": subscription_id,
            "subscriptionExpirationDateTime": subscription["expirationDateTime"],
            "clientState": subscription["clientState"],
            "tenantId": self.directory,
            **extra,
        }

    def app(self) -> Starlette:
        users = "/v1.0/users/{user}"
        return Starlette(
            routes=[
                Route("/{tenant}/v2.0/.well-known/openid-configuration", self.openid_configuration),
                Route("/{tenant}/oauth2/v2.0/token", self.token, methods=["POST"]),
                Route(f"{users}/mailFolders/{{folder}}/messages/delta", self.messages_delta),
                Route(f"{users}/calendarView/delta", self.calendar_delta),
                Route("/v1.0/subscriptions", self.create_subscription, methods=["POST"]),
                Route("/v1.0/subscriptions/{id}", self.update_subscription, methods=["PATCH"]),
            ]
        )


def graph_message(
    message_id: str,
    sent: datetime,
    sender: str,
    to: str,
    *,
    subject: str = "Hello",
    draft: bool = False,
    odata_type: str | None = None,
) -> dict[str, Any]:
    """A message resource as the v1.0 ``message`` type returns it (body included); a derived
    type (``eventMessageResponse``, ...) is named by ``@odata.type``, as Graph does."""

    def address(raw: str) -> dict[str, Any]:
        return {"emailAddress": {"name": raw.split("@")[0], "address": raw}}

    return {
        "@odata.etag": 'W/"CQAAABYAAAC"',
        "id": f"AAMk-{message_id}",
        "internetMessageId": f"<{message_id}@contoso.example>",
        "conversationId": f"AAQk-{message_id}",
        "subject": subject,
        "bodyPreview": "private words",
        "body": {"contentType": "html", "content": "<p>private words</p>"},
        "from": address(sender),
        "sender": address(sender),
        "toRecipients": [address(to)],
        "ccRecipients": [],
        "sentDateTime": _iso(sent),
        "receivedDateTime": _iso(sent + timedelta(seconds=2)),
        "lastModifiedDateTime": _iso(sent + timedelta(seconds=5)),
        "isDraft": draft,
        "isRead": False,
        **({"@odata.type": f"#microsoft.graph.{odata_type}"} if odata_type else {}),
    }


def graph_event(
    event_id: str, start: datetime, organizer: str, attendee: str, *, modified: datetime, **extra: Any
) -> dict[str, Any]:
    """An event resource as calendarView delta returns it (whole, body and location included)."""
    return {
        "@odata.etag": 'W/"DwAAABYAAAC"',
        "id": event_id,
        "subject": f"Meeting {event_id.split('-')[0]}",
        "body": {"contentType": "html", "content": "<p>agenda and notes</p>"},
        "bodyPreview": "agenda and notes",
        "location": {"displayName": "Room 1"},
        "start": {"dateTime": start.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.0000000"), "timeZone": "UTC"},
        "end": {
            "dateTime": (start + timedelta(minutes=30)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.0000000"),
            "timeZone": "UTC",
        },
        "organizer": {"emailAddress": {"name": organizer.split("@")[0], "address": organizer}},
        "attendees": [
            {
                "type": "required",
                "status": {"response": "accepted", "time": "0001-01-01T00:00:00Z"},
                "emailAddress": {"name": "x", "address": attendee},
            },
            {
                "type": "resource",
                "status": {"response": "accepted", "time": "0001-01-01T00:00:00Z"},
                "emailAddress": {"name": "Room 1", "address": "room1@contoso.example"},
            },
        ],
        "isCancelled": False,
        "iCalUId": f"040000008200E00074C5B7101A82E008-{event_id.split('-')[0]}",
        "lastModifiedDateTime": _iso(modified),
        "type": "singleInstance",
        **extra,
    }
