"""Outbound alert webhooks: the Standard Webhooks signature, the bodies, the retry schedule.

Pure functions. The signature follows the Standard Webhooks specification
(https://www.standardwebhooks.com): the secret is ``whsec_`` + base64 of the key bytes;
``webhook-signature`` is ``v1,`` + base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}")).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's prefix, not a secret


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header value for ``body``."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def standard_body(kind: str, data: Mapping[str, Any], at: datetime) -> dict[str, Any]:
    """The Standard Webhooks payload shape: a type (``insight.changed``, ``digest.weekly``), a
    timestamp and the event as ``data``."""
    return {"type": kind, "timestamp": at.isoformat().replace("+00:00", "Z"), "data": dict(data)}


_SUBJECTS = {
    "at_risk_rep": "Rep {s} is at risk",
    "stale_deal": "Deal {s} is stale",
    "bright_spot": "Rep {s} is a bright spot",
}


def slack_body(change: Mapping[str, Any]) -> dict[str, Any]:
    """A Slack incoming-webhook body: one line of text."""
    subject = _SUBJECTS.get(str(change["kind"]), "{s}: " + str(change["kind"])).format(s=change["subject_id"])
    reasons = ", ".join(str(r).replace("_", " ") for r in change.get("reasons") or ())
    team = f" ({change['team_id']})" if change.get("team_id") else ""
    if change["change"] == "cleared":
        return {"text": f"Cleared: {subject[0].lower()}{subject[1:]}{team} no longer ({reasons})"}
    return {"text": f"{subject}{team}: {reasons}"}


def slack_digest(digest: Mapping[str, Any]) -> dict[str, Any]:
    """A manager's weekly digest as one Slack line: how many reps, and what needs a look."""
    return {
        "text": (
            f"Week of {digest['week_start']} for {digest['manager_id']}: {len(digest['reps'])} reps, "
            f"{len(digest['at_risk_reps'])} at risk, {len(digest['bright_spots'])} bright spots, "
            f"{len(digest['stale_deals'])} stale deals"
        )
    }


def retry_delay(attempts: int, base: timedelta, cap: timedelta) -> timedelta:
    """Exponential backoff after ``attempts`` failures (1 -> base, 2 -> 2 x base, ...), at most ``cap``."""
    delay: timedelta = base * (2 ** max(attempts - 1, 0))
    return delay if delay < cap else cap
