"""``POST /v1/push/{provider}/{tenant}``: Gmail Pub/Sub pushes, Calendar watch and Graph notifications.

They carry no activity: a verified push marks the mailbox due in the connectors' state table
and the connectors process syncs it from its stored cursor (see ``docs/connectors.md``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from fastapi import APIRouter, Request, Response

from libs.common.contracts.activities import TENANT_ID_PATTERN
from libs.common.tenancy import WebhookSecretCache
from libs.common.web import Problem, read_body
from services.ingest.adapters.connector_push import request_mailbox_sync
from services.ingest.domain.push import (
    PUSH_PROVIDERS,
    MailboxChanged,
    parse_calendar_push,
    parse_gmail_push,
    parse_graph_push,
    verify_push_token,
)
from services.ingest.domain.webhook_types import WebhookRejected
from services.ingest.telemetry import INGEST_REJECTIONS

_TENANT_ID = re.compile(TENANT_ID_PATTERN)
#: A Pub/Sub envelope is a few hundred bytes; a Graph batch a few hundred per notification.
MAX_PUSH_BYTES = 1024 * 1024
_REASONS = {400: "malformed", 401: "unauthenticated", 413: "too_large"}


async def _verify(
    cache: WebhookSecretCache, tenant: str, provider: str, presented: Sequence[tuple[str, str | None]]
) -> None:
    """Every (field, token) must be valid; a secret added since the cache was filled works at once."""
    for fresh in (False, True):
        secrets = await cache.secrets(tenant, provider, fresh=fresh)
        try:
            for field, token in presented:
                verify_push_token(secrets, tenant, provider, token, field)
            return
        except WebhookRejected:
            if fresh:
                raise


async def _changes(
    provider: str, tenant: str, body: bytes, headers: Mapping[str, str], request: Request
) -> tuple[list[MailboxChanged], Response | None]:
    """The verified changes a push names, or the response a handshake needs."""
    cache: WebhookSecretCache = request.app.state.webhook_secrets
    if provider == "microsoft-graph":
        graph = parse_graph_push(body, request.query_params.get("validationToken"))
        if graph.validation_token is not None:
            # Graph validates a subscription's URL before creating it: echo within 10 s.
            return [], Response(graph.validation_token, media_type="text/plain")
        await _verify(cache, tenant, provider, graph.client_states)
        return list(graph.changes), Response(status_code=202)
    if provider == "gmail":
        await _verify(cache, tenant, provider, [("token", request.query_params.get("token"))])
        return [parse_gmail_push(body)], None
    await _verify(cache, tenant, provider, [("x-goog-channel-token", headers.get("x-goog-channel-token"))])
    changed = parse_calendar_push(headers)
    return ([] if changed.handshake else [changed]), None


def push_router() -> APIRouter:
    router = APIRouter()

    @router.post(
        "/v1/push/{provider}/{tenant}",
        status_code=204,
        summary="Receive a mailbox change notification (Gmail Pub/Sub, Calendar watch, Graph)",
        responses={401: {"description": "Token missing or wrong"}, 404: {"description": "Unknown URL"}},
    )
    async def post_push(provider: str, tenant: str, request: Request) -> Response:
        """Verify the token, then mark the mailboxes for a sync; 2xx acknowledges the push."""
        if provider not in PUSH_PROVIDERS or not _TENANT_ID.match(tenant):
            INGEST_REJECTIONS.labels("push", "unknown_endpoint").inc()
            return Problem(404, "Not found", "no push endpoint at this URL").response()
        body = await read_body(request, MAX_PUSH_BYTES)
        headers = {k.lower(): v for k, v in request.headers.items()}
        try:
            changes, answer = await _changes(provider, tenant, body, headers, request)
        except WebhookRejected as exc:
            INGEST_REJECTIONS.labels(provider, _REASONS.get(exc.status_code, "invalid")).inc()
            raise Problem(exc.status_code, "Push refused", f"{exc.field}: {exc.reason}") from None
        # An unknown or paused mailbox is acknowledged too: the vendor would redeliver it for days.
        for changed in changes:
            await request_mailbox_sync(request.app.state.engine, tenant, changed)
        return answer or Response(status_code=204)

    return router
