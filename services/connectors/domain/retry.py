"""How a failed vendor call is treated: retried in place, a cursor to rebuild, or a mailbox failure.

* 429, 5xx and quota errors (Google answers some with 403 and a ``rateLimitExceeded`` reason)
  are retried with ``Retry-After`` when given, else exponential backoff, a bounded number of times.
* An expired cursor (Gmail history 404, Calendar / Graph 410) starts a full resync.
* Anything else (403 delegation denied, 404 mailbox unknown, 401 after a token refresh) fails
  this mailbox only: it is retried later with backoff and the other mailboxes carry on.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from enum import StrEnum

#: Google error reasons (``error.errors[].reason`` / ``error.status``) that mean "slow down".
QUOTA_REASONS = frozenset(
    {"rateLimitExceeded", "userRateLimitExceeded", "quotaExceeded", "backendError", "RESOURCE_EXHAUSTED"}
)
FAILURE_FIRST_DELAY = timedelta(seconds=30)


class CallOutcome(StrEnum):
    RETRY = "retry"
    FAIL = "fail"


def classify(status: int, reason: str | None) -> CallOutcome:
    if status == 429 or status >= 500:
        return CallOutcome.RETRY
    if status == 403 and reason in QUOTA_REASONS:
        return CallOutcome.RETRY
    return CallOutcome.FAIL


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """``Retry-After`` as seconds: delta-seconds or an HTTP-date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def backoff_seconds(attempt: int, initial: float, maximum: float) -> float:
    """Delay before retry ``attempt`` (1-based) when the vendor named none: doubling, capped."""
    return float(min(maximum, initial * 2.0 ** (attempt - 1)))


def failure_delay(failures: int, maximum: timedelta) -> timedelta:
    """When a mailbox that failed ``failures`` times in a row is tried again."""
    delay: timedelta = FAILURE_FIRST_DELAY * (2 ** max(0, failures - 1))
    return min(maximum, delay)
