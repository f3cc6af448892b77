"""Gmail API message resources (format=metadata), posted by a connector signed with Standard Webhooks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from libs.common.contracts.activities import (
    ActivityIn,
    ActivityKind,
    Direction,
    Outcome,
    Participant,
    ParticipantRole,
)
from services.ingest.domain.ignored import DRAFT_NEVER_SENT, NOT_DONE, OTHER, Ignored
from services.ingest.domain.normalize import (
    JsonObject,
    build_activity,
    convert_each,
    direction_for,
    epoch_millis,
    from_epoch_millis,
    load_json_object,
    make_participant,
    not_ahead,
    one_or_page,
    parse_address_list,
    parse_rfc2822,
    unique_participants,
)
from services.ingest.domain.signatures import verify_standard_webhook
from services.ingest.domain.webhook_types import (
    AdapterResult,
    TenantWebhookConfig,
    WebhookRejected,
    WebhookRequest,
)

MAX_MESSAGES = 1_000
SKIPPED_LABELS = {
    "DRAFT": Ignored(DRAFT_NEVER_SENT, NOT_DONE),
    "SPAM": Ignored("spam", OTHER),
    "CHAT": Ignored("a chat message, not an email", OTHER),
}


@dataclass(frozen=True, slots=True)
class GmailAdapter:
    """Gmail message resources posted by the sync connector."""

    source: str = "gmail"
    version: str = "gmail/1"

    def verify(self, request: WebhookRequest, secrets: Sequence[str], config: TenantWebhookConfig) -> None:
        verify_standard_webhook(request, secrets, config)

    def parse(
        self, request: WebhookRequest, config: TenantWebhookConfig, secrets: Sequence[str] = ()
    ) -> AdapterResult:
        body = load_json_object(request.body)
        messages = one_or_page(body, "messages", MAX_MESSAGES)

        def convert(message: JsonObject) -> tuple[ActivityIn | None, str]:
            labels = _labels(message)
            skipped = next((reason for label, reason in SKIPPED_LABELS.items() if label in labels), None)
            if skipped is not None:
                return None, skipped
            return _message(message, labels, config, request.received_at), ""

        return convert_each(messages, convert)


def _labels(message: JsonObject) -> frozenset[str]:
    raw = message.data.get("labelIds")
    if raw is None:
        return frozenset()
    if not isinstance(raw, list) or not all(isinstance(label, str) for label in raw):
        raise WebhookRejected(422, message.field("labelIds"), "expected a list of strings")
    return frozenset(raw)


def _headers(message: JsonObject) -> tuple[dict[str, str], str, dict[str, str]]:
    """The headers by lower-cased name, where they are, and where each value was read."""
    payload = message.req_obj("payload")
    headers: dict[str, str] = {}
    fields: dict[str, str] = {}
    for header in payload.objs("headers"):
        name = header.req_str("name").lower()
        # The first occurrence wins, as mail clients display it.
        if name not in headers:
            headers[name] = header.opt_str("value") or ""
            fields[name] = header.field("value")
    return headers, payload.field("headers"), fields


def _message(
    message: JsonObject, labels: frozenset[str], config: TenantWebhookConfig, received_at: datetime
) -> ActivityIn:
    headers, headers_field, fields = _headers(message)
    message_id = headers.get("message-id", "").strip()
    if not message_id:
        raise WebhookRejected(422, f"{headers_field}.Message-ID", "required")
    internal_date = message.opt_int("internalDate")
    if internal_date is not None:
        sent_at = not_ahead(
            from_epoch_millis(internal_date, message.field("internalDate")),
            received_at,
            message.field("internalDate"),
        )
    elif headers.get("date"):
        sent_at = not_ahead(parse_rfc2822(headers["date"], fields["date"]), received_at, fields["date"])
    else:
        raise WebhookRejected(422, message.field("internalDate"), "required")
    region = config.default_phone_region

    def people(header: str, role: ParticipantRole, limit: int | None = None) -> list[Participant | None]:
        pairs = parse_address_list(headers.get(header), fields.get(header, headers_field))
        return [
            make_participant(
                role=role,
                field=fields[header],
                region=region,
                email=a,
                name=n,
                named={"email": fields[header], "name": fields[header]},
            )
            for n, a in pairs[:limit]
        ]

    participants = unique_participants(
        [
            *people("from", ParticipantRole.FROM, 1),
            *people("to", ParticipantRole.TO),
            *people("cc", ParticipantRole.CC),
            *people("bcc", ParticipantRole.BCC),
        ]
    )
    sender = next((p.email for p in participants if p.role is ParticipantRole.FROM), None)
    recipients = [p.email for p in participants if p.role is not ParticipantRole.FROM and p.email]
    direction = direction_for(sender, recipients, config.internal_domains)
    # The SENT label settles it for the mailbox owner even when their domain is not configured.
    if "SENT" in labels and direction is Direction.INBOUND:
        direction = Direction.OUTBOUND
    return build_activity(
        message.path or "body",
        {
            "external_id": fields["message-id"],
            "thread_id": message.field("threadId"),
            "subject": fields.get("subject", headers_field),
        },
        source="gmail",
        external_id=message_id[:256],
        kind=ActivityKind.EMAIL,
        direction=direction,
        outcome=Outcome.RECEIVED if direction is Direction.INBOUND else Outcome.SENT,
        occurred_at=sent_at,
        participants=participants,
        thread_id=message.opt_str("threadId"),
        subject=headers.get("subject"),
        # Gmail messages never change once delivered; their internal date orders redeliveries.
        revision=epoch_millis(sent_at),
    )
