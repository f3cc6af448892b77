"""Vendor calls with the retry policy of ``domain/retry.py``: Retry-After first, else doubling backoff."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson

from services.connectors.domain.retry import CallOutcome, backoff_seconds, classify, retry_after_seconds
from services.connectors.telemetry import CONNECTOR_RETRIES

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]


class ApiError(Exception):
    """A vendor call that failed for good: ``status`` and the vendor's ``reason`` when it gave one."""

    def __init__(self, status: int, reason: str | None, detail: str) -> None:
        super().__init__(f"{status} {reason or ''}: {detail}".strip())
        self.status = status
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 5
    initial_seconds: float = 1.0
    max_seconds: float = 60.0
    sleep: Sleep = field(default=asyncio.sleep)


def error_reason(response: httpx.Response) -> tuple[str | None, str]:
    """(reason, message) from a Google or Graph error body, if it has one."""
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return None, response.reason_phrase
    if isinstance(body, dict) and isinstance(body.get("detail"), str):
        return None, str(body["detail"])  # problem+json (ingest)
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return None, response.reason_phrase
    reasons = [e.get("reason") for e in error.get("errors") or () if isinstance(e, dict)]
    reason = (
        next((r for r in reasons if isinstance(r, str)), None) or error.get("status") or error.get("code")
    )
    message = error.get("message")
    return (str(reason) if reason is not None else None), (
        str(message) if message else response.reason_phrase
    )


async def send_with_retry(
    send: Callable[[], Awaitable[httpx.Response]], provider: str, policy: RetryPolicy
) -> httpx.Response:
    """The first response that is not retryable; ``ApiError`` once the attempts are spent.

    Transport errors (a reset connection, a timeout) count as retryable too.
    """
    for attempt in range(1, policy.max_attempts + 1):
        try:
            response = await send()
        except httpx.TransportError as exc:
            if attempt == policy.max_attempts:
                raise ApiError(0, "transport", repr(exc)) from None
            delay = backoff_seconds(attempt, policy.initial_seconds, policy.max_seconds)
        else:
            if response.status_code < 400:
                return response
            reason, message = error_reason(response)
            if classify(response.status_code, reason) is CallOutcome.FAIL or attempt == policy.max_attempts:
                raise ApiError(response.status_code, reason, message)
            named = retry_after_seconds(response.headers.get("retry-after"), datetime.now(UTC))
            delay = (
                named
                if named is not None
                else backoff_seconds(attempt, policy.initial_seconds, policy.max_seconds)
            )
        CONNECTOR_RETRIES.labels(provider).inc()
        log.info("vendor call retried", extra={"provider": provider, "attempt": attempt, "delay_s": delay})
        await policy.sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


def json_of(response: httpx.Response) -> dict[str, Any]:
    if not response.content:
        return {}
    body = orjson.loads(response.content)
    if not isinstance(body, dict):
        raise ApiError(response.status_code, "malformed", "expected a JSON object")
    return body
