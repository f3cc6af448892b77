"""Push notifications that name a changed mailbox or calendar without its data.

Two vendors push "something changed, come and look":

* Gmail, through a Cloud Pub/Sub push subscription: a JSON envelope
  ``{"message": {"data": base64(JSON {"emailAddress", "historyId"}), "messageId", ...},
  "subscription"}``. Pub/Sub can sign its pushes with an OIDC token, but checking one needs
  Google's rotating certificates (a network fetch from ingest); we use the other documented
  option, a secret token in the push endpoint URL (``?token=``).
* Google Calendar ``events.watch`` channels: an empty POST whose headers carry
  ``X-Goog-Channel-ID``, ``X-Goog-Channel-Token`` (the token we set on the channel) and
  ``X-Goog-Resource-State`` (``sync`` for the channel's first message, then ``exists``).
* Microsoft Graph subscriptions: a validation request (``?validationToken=``, empty body,
  answered by echoing the token as text/plain), then change notifications and lifecycle
  notifications ``{"value": [{"subscriptionId", "clientState", "lifecycleEvent"?, ...}]}``.
  Graph cannot sign: every ``clientState`` must be the token.

The token is ``libs.common.tenancy.push_token`` of one of the tenant's valid webhook secrets of
that source, compared in constant time. Nothing here is published: the route marks the
mailbox for a sync that the connectors process performs.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import orjson

from libs.common.tenancy import push_token
from services.ingest.domain.webhook_types import WebhookRejected

PUSH_PROVIDERS = ("gmail", "google-calendar", "microsoft-graph")
MAX_EMAIL = 320
MAX_NOTIFICATIONS = 1_000
MAX_VALIDATION_TOKEN = 1_024
#: Graph lifecycle events and what they ask of the connector besides a sync.
RENEW = "reauthorizationRequired"
REMOVED = "subscriptionRemoved"


@dataclass(frozen=True, slots=True)
class MailboxChanged:
    """Which mailbox to sync: by address (Gmail) or by the watch channel's id (Calendar)."""

    provider: str
    address: str | None = None
    channel_id: str | None = None
    #: Calendar's first message on a new channel says nothing changed.
    handshake: bool = False
    #: Graph: renew the subscription (reauthorizationRequired) or make a new one (subscriptionRemoved).
    renew: bool = False
    removed: bool = False


@dataclass(frozen=True, slots=True)
class GraphPush:
    """A Graph validation request (``validation_token``) or a batch of notifications."""

    validation_token: str | None = None
    changes: tuple[MailboxChanged, ...] = ()
    #: (field, clientState) of every notification, all to be verified.
    client_states: tuple[tuple[str, str | None], ...] = ()


def verify_push_token(
    secrets: Sequence[str], tenant_id: str, provider: str, presented: str | None, field: str | None = None
) -> None:
    """401 naming ``field`` unless ``presented`` is the push token of one of the valid secrets."""
    field = field or ("token" if provider == "gmail" else "x-goog-channel-token")
    if not presented:
        raise WebhookRejected(401, field, "missing")
    matched = False
    for secret in secrets:
        # No early exit: the time taken does not tell which secret matched.
        matched |= hmac.compare_digest(push_token(secret, tenant_id, provider).encode(), presented.encode())
    if not matched:
        raise WebhookRejected(401, field, "does not match")


def parse_gmail_push(body: bytes) -> MailboxChanged:
    """The mailbox a Pub/Sub push from Gmail names; 400/422 name the field at fault."""
    try:
        envelope = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise WebhookRejected(400, "body", "not valid JSON") from None
    message = envelope.get("message") if isinstance(envelope, dict) else None
    if not isinstance(message, dict):
        raise WebhookRejected(422, "message", "required object")
    data = message.get("data")
    if not isinstance(data, str):
        raise WebhookRejected(422, "message.data", "required base64 string")
    try:
        notification = orjson.loads(base64.b64decode(data, validate=True))
    except (binascii.Error, ValueError):
        raise WebhookRejected(422, "message.data", "not base64-encoded JSON") from None
    address = notification.get("emailAddress") if isinstance(notification, dict) else None
    if not isinstance(address, str) or "@" not in address or len(address) > MAX_EMAIL:
        raise WebhookRejected(422, "message.data.emailAddress", "required email address")
    return MailboxChanged("gmail", address=address.strip().lower())


def parse_calendar_push(headers: Mapping[str, str]) -> MailboxChanged:
    """The watch channel a Calendar push names (headers only; the body is empty)."""
    channel_id = headers.get("x-goog-channel-id", "").strip()
    if not channel_id:
        raise WebhookRejected(422, "x-goog-channel-id", "missing")
    state = headers.get("x-goog-resource-state", "").strip()
    return MailboxChanged("google-calendar", channel_id=channel_id, handshake=state == "sync")


def parse_graph_push(body: bytes, validation_token: str | None) -> GraphPush:
    """A Graph validation request, or the subscriptions its notifications name."""
    if validation_token is not None and not body.strip():
        if len(validation_token) > MAX_VALIDATION_TOKEN:
            raise WebhookRejected(422, "validationToken", f"longer than {MAX_VALIDATION_TOKEN} characters")
        return GraphPush(validation_token=validation_token)
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise WebhookRejected(400, "body", "not valid JSON") from None
    items = document.get("value") if isinstance(document, dict) else None
    if not isinstance(items, list) or not items:
        raise WebhookRejected(422, "value", "required non-empty array")
    if len(items) > MAX_NOTIFICATIONS:
        raise WebhookRejected(413, "value", f"more than {MAX_NOTIFICATIONS} notifications")
    changes: list[MailboxChanged] = []
    states: list[tuple[str, str | None]] = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise WebhookRejected(422, f"value.{index}", "expected an object")
        subscription = item.get("subscriptionId")
        if not isinstance(subscription, str) or not subscription:
            raise WebhookRejected(422, f"value.{index}.subscriptionId", "required")
        state = item.get("clientState")
        states.append((f"value.{index}.clientState", state if isinstance(state, str) else None))
        event = item.get("lifecycleEvent")
        changes.append(
            MailboxChanged(
                "microsoft-graph", channel_id=subscription, renew=event == RENEW, removed=event == REMOVED
            )
        )
    return GraphPush(changes=tuple(changes), client_states=tuple(states))
