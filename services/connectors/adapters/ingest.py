"""Posting fetched resources to ingest's webhook route, signed the Standard Webhooks way.

Ingest already normalises each vendor's resources, applies the tenant's privacy policy,
dedupes by deterministic activity id and publishes with the broker's acknowledgement; the
connectors reuse all of it rather than publishing themselves. A 2xx means every activity was
acknowledged, so a cursor is advanced only after it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from services.connectors.adapters.http import ApiError, RetryPolicy, json_of, send_with_retry

#: (tenant, source) -> the newest valid webhook secret.
SecretSource = Callable[[str, str], Awaitable[str | None]]


class IngestRefused(Exception):
    """Ingest refused a post for good (4xx): ``field`` and ``reason`` as its problem named them."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"ingest answered {status}: {detail}")
        self.status = status
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Posted:
    accepted: int
    duplicates: int
    excluded: int
    refused: int = 0


def _key(secret: str) -> bytes:
    if secret.startswith("whsec_"):
        try:
            return base64.b64decode(secret.removeprefix("whsec_"), validate=True)
        except (binascii.Error, ValueError):
            return secret.encode()
    return secret.encode()


def standard_webhook_headers(secret: str, body: bytes, timestamp: int) -> dict[str, str]:
    message_id = "msg_" + hashlib.sha256(body).hexdigest()[:24]
    signed = f"{message_id}.{timestamp}.".encode() + body
    signature = base64.b64encode(hmac.new(_key(secret), signed, hashlib.sha256).digest()).decode()
    return {
        "content-type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": f"v1,{signature}",
    }


class IngestPoster:
    def __init__(
        self, client: httpx.AsyncClient, base_url: str, secrets: SecretSource, retry: RetryPolicy
    ) -> None:
        self._client = client
        self._base = base_url.rstrip("/")
        self._secrets = secrets
        self._retry = retry

    async def post(
        self,
        tenant_id: str,
        source: str,
        key: str,
        items: Sequence[Mapping[str, Any]],
        context: Mapping[str, Any] | None = None,
    ) -> Posted:
        """Post ``{key: items, **context}`` (``context``: what the page says besides its items,
        a calendar's ``mailbox``). A batch refused as a whole (422 naming one item, 413 too
        large) is split in halves until the culprit is alone; it is then counted as refused and
        skipped."""
        if not items:
            return Posted(0, 0, 0)
        try:
            return await self._post_once(tenant_id, source, {**(context or {}), key: list(items)})
        except IngestRefused as exc:
            if exc.status not in (413, 422):
                raise
            if len(items) == 1:
                return Posted(0, 0, 0, refused=1)
        middle = len(items) // 2
        first = await self.post(tenant_id, source, key, items[:middle], context)
        second = await self.post(tenant_id, source, key, items[middle:], context)
        return Posted(
            first.accepted + second.accepted,
            first.duplicates + second.duplicates,
            first.excluded + second.excluded,
            first.refused + second.refused,
        )

    async def _post_once(self, tenant_id: str, source: str, document: Mapping[str, Any]) -> Posted:
        secret = await self._secrets(tenant_id, source)
        if secret is None:
            raise IngestRefused(401, f"no {source} webhook secret for tenant {tenant_id}")
        body = orjson.dumps(document)
        url = f"{self._base}/v1/webhooks/{source}/{tenant_id}"

        async def send() -> httpx.Response:
            # Signed at each attempt: a retry after a long Retry-After stays within the window.
            headers = standard_webhook_headers(secret, body, int(time.time()))
            return await self._client.post(url, content=body, headers=headers)

        try:
            response = await send_with_retry(send, "ingest", self._retry)
        except ApiError as exc:
            if 400 <= exc.status < 500 and exc.status != 429:
                raise IngestRefused(exc.status, exc.detail) from None
            raise
        answer = json_of(response)
        return Posted(
            int(answer.get("accepted", 0)), int(answer.get("duplicates", 0)), int(answer.get("excluded", 0))
        )
