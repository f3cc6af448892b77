"""``POST /v1/push/{provider}/{tenant}``: Gmail Pub/Sub pushes and Calendar watch notifications.

They carry no activity: a verified push marks the mailbox due in the connectors' state table
and the connectors process syncs it from its stored cursor (see ``docs/connectors.md``).
"""

from __future__ import annotations

import re

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
    verify_push_token,
)
from services.ingest.domain.webhook_types import WebhookRejected
from services.ingest.telemetry import INGEST_REJECTIONS

_TENANT_ID = re.compile(TENANT_ID_PATTERN)
#: A Pub/Sub envelope is a few hundred bytes.
MAX_PUSH_BYTES = 64 * 1024
_REASONS = {400: "malformed", 401: "unauthenticated"}


def push_router() -> APIRouter:
    router = APIRouter()

    @router.post(
        "/v1/push/{provider}/{tenant}",
        status_code=204,
        summary="Receive a mailbox change notification (Gmail Pub/Sub push, Calendar watch)",
        responses={401: {"description": "Token missing or wrong"}, 404: {"description": "Unknown URL"}},
    )
    async def post_push(provider: str, tenant: str, request: Request) -> Response:
        """Verify the token, then mark the mailbox for a sync; 204 acknowledges the push."""
        if provider not in PUSH_PROVIDERS or not _TENANT_ID.match(tenant):
            INGEST_REJECTIONS.labels("push", "unknown_endpoint").inc()
            return Problem(404, "Not found", "no push endpoint at this URL").response()
        body = await read_body(request, MAX_PUSH_BYTES)
        headers = {k.lower(): v for k, v in request.headers.items()}
        cache: WebhookSecretCache = request.app.state.webhook_secrets
        try:
            if provider == "gmail":
                presented = request.query_params.get("token")
            else:
                presented = headers.get("x-goog-channel-token")
            try:
                verify_push_token(await cache.secrets(tenant, provider), tenant, provider, presented)
            except WebhookRejected:
                # A secret added since the cache was filled (a rotation) must work at once.
                verify_push_token(
                    await cache.secrets(tenant, provider, fresh=True), tenant, provider, presented
                )
            changed: MailboxChanged = (
                parse_gmail_push(body) if provider == "gmail" else parse_calendar_push(headers)
            )
        except WebhookRejected as exc:
            INGEST_REJECTIONS.labels(provider, _REASONS.get(exc.status_code, "invalid")).inc()
            raise Problem(exc.status_code, "Push refused", f"{exc.field}: {exc.reason}") from None
        if not changed.handshake:
            # An unknown or paused mailbox is acknowledged too: Pub/Sub would redeliver it for days.
            await request_mailbox_sync(request.app.state.engine, tenant, changed)
        return Response(status_code=204)

    return router
