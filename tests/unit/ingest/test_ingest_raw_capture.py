"""The raw capture kept on webhook-received never carries a shared secret."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from libs.common.contracts.commands import WebhookReceivedV1
from libs.common.contracts.envelope import encode_body
from services.ingest.handlers import raw_capture_body, redact_body_secrets


def test_aircall_token_is_masked_in_the_raw_capture() -> None:
    body = orjson.dumps({"resource": "call", "event": "call.ended", "token": "s3cret", "data": {"id": 7}})
    kept = orjson.loads(redact_body_secrets("aircall", body))
    assert kept == {"resource": "call", "event": "call.ended", "token": "***", "data": {"id": 7}}


def test_graph_client_state_is_masked_in_every_notification() -> None:
    body = orjson.dumps(
        {"value": [{"clientState": "s3cret", "resource": "me/messages/1"}, {"clientState": "x"}]}
    )
    kept = orjson.loads(redact_body_secrets("microsoft-graph", body))
    assert kept == {"value": [{"clientState": "***", "resource": "me/messages/1"}, {"clientState": "***"}]}


def test_other_sources_and_non_json_bodies_are_kept_byte_for_byte() -> None:
    assert redact_body_secrets("twilio", b"CallSid=CA1&token=abc") == b"CallSid=CA1&token=abc"
    assert redact_body_secrets("aircall", b"token=not-json") == b"token=not-json"


_ODD_TEXT = "".join(chr(c) for c in range(0x20)) + '"\\/\x7f\x80\x9f\u00e9\u2028\u2029\ufffd\U0001f600'


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"body": _ODD_TEXT, "content_type": "text/plain;\tcharset=\u00e9\x80"},
        {"headers": {"user-agent": _ODD_TEXT[0x20:], "x-empty": "", "\u00e9": "\x7f"}},
        {"received_at": datetime(2026, 11, 24, 15, 10, 8, 123_456, tzinfo=UTC)},
        {"received_at": datetime(2026, 11, 24, 16, 10, 8, 7, tzinfo=timezone(timedelta(hours=1)))},
        {"received_at": datetime(1970, 1, 1, tzinfo=UTC), "headers": {}},
        {"tenant_id": "a" * 63, "source": "microsoft-graph", "adapter_version": "graph/2 \u00e9"},
    ],
)
def test_the_raw_capture_is_the_contract_models_json_byte_for_byte(changes: dict[str, Any]) -> None:
    fields = {**_CAPTURED, **changes}
    assert raw_capture_body(dict(fields)) == encode_body(WebhookReceivedV1(**fields))


@pytest.mark.parametrize(
    "changes",
    [
        {"content_type": "text/plain\x00"},
        {"content_type": "text/plain\x1b"},
        {"source": "twilio\n"},
        {"adapter_version": "v\x85"},
        {"tenant_id": "Acme"},
        {"tenant_id": "acme\n"},
        {"received_at": datetime(2026, 11, 24, 15, 10, 8)},
        {"received_at": datetime(2200, 1, 1, tzinfo=UTC)},
    ],
)
def test_a_raw_capture_the_contract_refuses_is_refused_as_the_model_refuses_it(
    changes: dict[str, Any],
) -> None:
    fields = {**_CAPTURED, **changes}
    with pytest.raises(ValidationError) as by_model:
        WebhookReceivedV1(**fields)
    with pytest.raises(ValidationError) as captured:
        raw_capture_body(dict(fields))
    assert captured.value.errors() == by_model.value.errors()


_CAPTURED: dict[str, Any] = {
    "tenant_id": "acme",
    "source": "twilio",
    "adapter_version": "twilio/1",
    "received_at": datetime(2026, 11, 24, 15, 10, 8, tzinfo=UTC),
    "content_type": "application/x-www-form-urlencoded",
    "body": "CallSid=CA1&CallStatus=completed",
    "headers": {"content-type": "application/x-www-form-urlencoded", "user-agent": "TwilioProxy/1.1"},
}
