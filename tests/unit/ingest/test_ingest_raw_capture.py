"""The raw capture kept on webhook-received never carries a shared secret."""

from __future__ import annotations

import orjson

from services.ingest.handlers import redact_body_secrets


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
