"""Builders for signed vendor deliveries, computed here independently of the adapters' own code."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

from services.ingest.domain.webhooks import TenantWebhookConfig, WebhookRequest

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "webhooks"
RECEIVED_AT = datetime(2026, 11, 24, 16, 0, tzinfo=UTC)
NOW_SECONDS = int(RECEIVED_AT.timestamp())
CONFIG = TenantWebhookConfig(
    tenant_id="acme",
    internal_domains=frozenset({"acme.example"}),
    salesforce_organization_id="00D5j00000ABCDEEA2",
)


def fixture(source: str, name: str) -> bytes:
    return (FIXTURES / source / name).read_bytes()


def fixture_json(source: str, name: str) -> Any:
    return json.loads(fixture(source, name))


def dumps(value: Any) -> bytes:
    return json.dumps(value).encode("utf-8")


#: The sources whose fixtures are JSON (Twilio posts forms, Salesforce has no fixture).
JSON_SOURCES = (
    "aircall",
    "calendly",
    "gmail",
    "google-calendar",
    "hubspot",
    "microsoft-graph",
    "ringcentral",
    "zoom",
)


def string_paths(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """The path (keys and indexes) of every string leaf of a JSON document."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from string_paths(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from string_paths(value, (*path, index))
    elif isinstance(node, str):
        yield path


def poisoned_json(character: str) -> Iterator[tuple[str, str, Any]]:
    """(source, ``fixture:path``, document) for every string of every JSON fixture, a copy of the
    fixture with ``character`` put after that string's first character."""
    for source in JSON_SOURCES:
        for path_of_fixture in sorted((FIXTURES / source).glob("*.json")):
            document = json.loads(path_of_fixture.read_bytes())
            for path in string_paths(document):
                copy = json.loads(path_of_fixture.read_bytes())
                target = copy
                for part in path[:-1]:
                    target = target[part]
                target[path[-1]] = target[path[-1]][:1] + character + target[path[-1]][1:]
                yield source, f"{path_of_fixture.name}:{'.'.join(map(str, path))}", copy


def poisoned_twilio_forms(character: str) -> Iterator[tuple[str, str, bytes]]:
    """(fixture name, parameter, form body) for every parameter of every Twilio fixture, with
    ``character`` put after its value's first character."""
    for path_of_fixture in sorted((FIXTURES / "twilio").glob("*.txt")):
        fields = parse_qsl(path_of_fixture.read_text().strip(), keep_blank_values=True)
        for index, (name, value) in enumerate(fields):
            poisoned = [*fields[:index], (name, value[:1] + character + value[1:]), *fields[index + 1 :]]
            yield path_of_fixture.name, name, urlencode(poisoned).encode()


def make_request(
    body: bytes,
    headers: Mapping[str, str] | None = None,
    *,
    url: str = "https://ingest.example.com/v1/webhooks/test/acme",
    method: str = "POST",
    received_at: datetime = RECEIVED_AT,
) -> WebhookRequest:
    return WebhookRequest(
        method=method, url=url, headers=dict(headers or {}), body=body, received_at=received_at
    )


def hmac_sha256(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()


def twilio_headers(url: str, body: bytes, token: str) -> dict[str, str]:
    params = sorted(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    payload = url + "".join(k + v for k, v in params)
    digest = hmac.new(token.encode(), payload.encode(), hashlib.sha1).digest()
    return {"x-twilio-signature": base64.b64encode(digest).decode()}


def zoom_headers(body: bytes, secret: str, timestamp: int = NOW_SECONDS) -> dict[str, str]:
    message = f"v0:{timestamp}:".encode() + body
    return {
        "x-zm-signature": "v0=" + hmac_sha256(secret.encode(), message).hex(),
        "x-zm-request-timestamp": str(timestamp),
    }


def calendly_headers(body: bytes, secret: str, timestamp: int = NOW_SECONDS) -> dict[str, str]:
    signature = hmac_sha256(secret.encode(), f"{timestamp}.".encode() + body).hex()
    return {"calendly-webhook-signature": f"t={timestamp},v1={signature}"}


def hubspot_headers(
    url: str, body: bytes, secret: str, timestamp_ms: int = NOW_SECONDS * 1000, method: str = "POST"
) -> dict[str, str]:
    message = method.encode() + url.encode() + body + str(timestamp_ms).encode()
    return {
        "x-hubspot-signature-v3": base64.b64encode(hmac_sha256(secret.encode(), message)).decode(),
        "x-hubspot-request-timestamp": str(timestamp_ms),
    }


def standard_headers(
    body: bytes, secret: str, *, message_id: str = "msg_2Kx", timestamp: int = NOW_SECONDS
) -> dict[str, str]:
    key = base64.b64decode(secret.removeprefix("whsec_")) if secret.startswith("whsec_") else secret.encode()
    signed = f"{message_id}.{timestamp}.".encode() + body
    signature = base64.b64encode(hmac_sha256(key, signed)).decode()
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": f"v1,{signature}",
    }
