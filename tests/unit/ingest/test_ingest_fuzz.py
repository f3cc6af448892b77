"""Whatever arrives, an adapter answers with a WebhookRejected 4xx or a result, never a crash."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.ingest.domain.webhooks import ADAPTERS, AdapterResult, WebhookRejected, fold_zoom_meeting

from .ingest_webhook_helpers import CONFIG, FIXTURES, make_request

SOURCES = sorted(ADAPTERS)
SECRETS = ["fuzz-secret", "whsec_ZnV6ei1zZWNyZXQ="]
JSON_FIXTURES = sorted(p for p in FIXTURES.glob("*/*.json"))

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=20), inner, max_size=6),
    max_leaves=30,
)
headers = st.dictionaries(
    st.sampled_from(
        [
            "x-twilio-signature",
            "x-zm-signature",
            "x-zm-request-timestamp",
            "calendly-webhook-signature",
            "x-hubspot-signature-v3",
            "x-hubspot-request-timestamp",
            "webhook-id",
            "webhook-timestamp",
            "webhook-signature",
            "validation-token",
            "verification-token",
        ]
    ),
    st.text(max_size=60),
    max_size=4,
)
urls = st.sampled_from(
    [
        "https://ingest.example.com/v1/webhooks/x/acme",
        "https://ingest.example.com/v1/webhooks/x/acme?validationToken=abc",
        "https://ingest.example.com/v1/webhooks/x/acme?validationToken=%FF%00",
    ]
)


def exercise(source: str, body: bytes, header_values: dict[str, str], url: str) -> None:
    adapter = ADAPTERS[source]
    request = make_request(body, header_values, url=url)
    for step in (
        lambda: adapter.verify(request, SECRETS, CONFIG),
        lambda: adapter.parse(request, CONFIG, SECRETS),
    ):
        rejection: WebhookRejected | None = None
        try:
            outcome = step()
        except WebhookRejected as rejected:
            rejection = rejected
        if rejection is not None:
            assert 400 <= rejection.status_code < 500
            assert rejection.field
            assert "fuzz-secret" not in str(rejection)
        else:
            assert outcome is None or isinstance(outcome, AdapterResult)
            if isinstance(outcome, AdapterResult):
                state = None
                for event in outcome.zoom_events:
                    state, _ = fold_zoom_meeting(state, event)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(source=st.sampled_from(SOURCES), body=st.binary(max_size=300), header_values=headers, url=urls)
def test_random_bytes(source: str, body: bytes, header_values: dict[str, str], url: str) -> None:
    exercise(source, body, header_values, url)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(source=st.sampled_from(SOURCES), value=json_values, header_values=headers, url=urls)
def test_random_json(source: str, value: Any, header_values: dict[str, str], url: str) -> None:
    exercise(source, json.dumps(value).encode(), header_values, url)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _paths(child, (*prefix, index))
    return found


def _replace(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    copy: Any = dict(value) if isinstance(value, dict) else list(value)
    copy[path[0]] = _replace(copy[path[0]], path[1:], new)
    return copy


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), index=st.integers(min_value=0, max_value=len(JSON_FIXTURES) - 1))
def test_documented_payloads_with_one_field_replaced(data: st.DataObject, index: int) -> None:
    """Deep fields are where parsing bugs hide: mutate one node of a real sample at a time."""
    path = JSON_FIXTURES[index]
    sample = json.loads(path.read_bytes())
    target = data.draw(st.sampled_from(_paths(sample)))
    mutated = _replace(sample, target, data.draw(json_values))
    exercise(
        path.parent.name, json.dumps(mutated).encode(), {}, "https://ingest.example.com/v1/webhooks/x/acme"
    )


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_salesforce_messages_with_one_value_replaced(data: st.DataObject) -> None:
    path = data.draw(st.sampled_from(sorted(FIXTURES.glob("salesforce/*.xml"))))
    text = path.read_text()
    values = [v for v in (part.split("<", 1)[0] for part in text.split(">")) if v.strip()]
    original = data.draw(st.sampled_from(values))
    # No surrogates: they cannot be encoded, so no vendor can send them.
    printable = st.characters(codec="utf-8", blacklist_characters="<>&")
    replacement = data.draw(st.text(alphabet=printable, max_size=30))
    exercise("salesforce", text.replace(original, replacement, 1).encode(), {}, "https://x.example/")
