"""Manual attribution overrides as messages for ``attribution-overridden`` (published with acks=all)."""

from __future__ import annotations

from libs.common.contracts.commands import AttributionOverriddenV1
from libs.common.contracts.envelope import Envelope, encode_body
from libs.common.kafka.publisher import OutgoingMessage
from libs.common.topics import ATTRIBUTION_OVERRIDDEN


def override_message(command: AttributionOverriddenV1, event_id: str, topic_prefix: str) -> OutgoingMessage:
    """The command keyed by activity id, so one activity's overrides stay in order."""
    return OutgoingMessage(
        topic=ATTRIBUTION_OVERRIDDEN.physical(topic_prefix),
        key=str(command.activity_id).encode(),
        value=encode_body(command),
        envelope=Envelope(
            id=event_id,
            source="spm/gateway",
            type=ATTRIBUTION_OVERRIDDEN.event_type,
            subject=str(command.activity_id),
            tenant=command.tenant_id,
        ),
    )
