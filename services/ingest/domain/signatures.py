"""Keyed digests and the Standard Webhooks scheme, shared by the vendor adapters.

Every comparison is constant-time, and any one of the configured secrets may match so that a
tenant can rotate a secret with the old and the new one valid at once.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from services.ingest.domain.normalize import check_timestamp_window, from_epoch_seconds
from services.ingest.domain.webhook_types import TenantWebhookConfig, WebhookRejected, WebhookRequest


def hmac_sha256(key: bytes, message: bytes) -> bytes:
    return keyed_digest(key, message, hashlib.sha256)


def hmac_sha1(key: bytes, message: bytes) -> bytes:
    return keyed_digest(key, message, hashlib.sha1)


def keyed_digest(key: bytes, message: bytes, digest: Callable[..., Any]) -> bytes:
    """HMAC (RFC 2104), the bytes ``hmac.digest(key, message, name)`` gives, from the key's inner
    and outer hash states made once per (key, digest) and copied: ``hmac.digest`` set the key up
    in OpenSSL on every call, about a third of its instructions for a callback's few hundred
    bytes, and a tenant signs every delivery with the same secret."""
    inner, outer = _key_states(key, digest)
    inner = inner.copy()
    inner.update(message)
    outer = outer.copy()
    outer.update(inner.digest())
    return bytes(outer.digest())


_INNER_PAD = bytes(b ^ 0x36 for b in range(256))
_OUTER_PAD = bytes(b ^ 0x5C for b in range(256))


@functools.lru_cache(maxsize=256)
def _key_states(key: bytes, digest: Callable[..., Any]) -> tuple[Any, Any]:
    inner, outer = digest(), digest()
    if len(key) > inner.block_size:
        key = digest(key).digest()
    key = key.ljust(inner.block_size, b"\0")
    inner.update(key.translate(_INNER_PAD))
    outer.update(key.translate(_OUTER_PAD))
    return inner, outer


def b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode("ascii")


def constant_time_equal(expected: str, presented: str) -> bool:
    return hmac.compare_digest(expected.encode("utf-8"), presented.encode("utf-8"))


def any_secret_matches(
    secrets: Sequence[str], presented: Iterable[str], expected_for: Callable[[str], str]
) -> bool:
    """True when the signature computed with some secret equals some presented signature."""
    candidates = tuple(presented)
    matched = False
    for secret in secrets:
        if not secret:
            continue
        expected = expected_for(secret)
        for candidate in candidates:
            # No early exit: the time taken does not tell which secret or candidate matched.
            matched |= constant_time_equal(expected, candidate)
    return matched


def require_secrets(secrets: Sequence[str]) -> None:
    if not any(secrets):
        raise WebhookRejected(401, "secret", "no webhook secret is configured for this tenant and source")


def require_header(request: WebhookRequest, name: str) -> str:
    value = request.headers.get(name, "").strip()
    if not value:
        raise WebhookRejected(401, name, "missing")
    return value


def parse_unix_seconds(raw: str, field: str) -> int:
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 12:
        raise WebhookRejected(401, field, "not a Unix timestamp")
    return int(raw)


def standard_webhooks_key(secret: str) -> bytes:
    """``whsec_<base64>`` is the base64 of the key; any other secret is used as UTF-8 text."""
    if secret.startswith("whsec_"):
        try:
            return base64.b64decode(secret.removeprefix("whsec_"), validate=True)
        except (binascii.Error, ValueError):
            return secret.encode("utf-8")
    return secret.encode("utf-8")


def standard_webhooks_signature(secret: str, message_id: str, timestamp: str, body: bytes) -> str:
    signed = message_id.encode("utf-8") + b"." + timestamp.encode("utf-8") + b"." + body
    return "v1," + b64(hmac_sha256(standard_webhooks_key(secret), signed))


def verify_standard_webhook(
    request: WebhookRequest, secrets: Sequence[str], config: TenantWebhookConfig
) -> None:
    """Standard Webhooks: ``webhook-signature`` holds space-separated ``v1,<base64>`` entries."""
    require_secrets(secrets)
    message_id = require_header(request, "webhook-id")
    timestamp = require_header(request, "webhook-timestamp")
    signatures = require_header(request, "webhook-signature")
    sent_at = signed_time(parse_unix_seconds(timestamp, "webhook-timestamp"), "webhook-timestamp")
    check_timestamp_window(sent_at, request.received_at, config.signature_window_seconds, "webhook-timestamp")
    presented = [entry for entry in signatures.split() if entry.startswith("v1,")]
    if not any_secret_matches(
        secrets, presented, lambda s: standard_webhooks_signature(s, message_id, timestamp, request.body)
    ):
        raise WebhookRejected(401, "webhook-signature", "does not match")


def signed_time(seconds: int, field: str) -> datetime:
    """A signed Unix timestamp as aware UTC; an absurd one is an authentication failure (401)."""
    try:
        return from_epoch_seconds(seconds, field)
    except WebhookRejected:
        raise WebhookRejected(401, field, "timestamp out of range") from None
