"""Standard Webhooks verification, shared by the connector-fed sources."""

from __future__ import annotations

import base64

import pytest

from services.ingest.domain.webhooks import ADAPTERS, WebhookRejected

from .ingest_webhook_helpers import CONFIG, NOW_SECONDS, fixture, make_request, standard_headers

SECRET = "whsec_" + base64.b64encode(b"connector-signing-key-current-32b").decode()
OLD_SECRET = "whsec_" + base64.b64encode(b"connector-signing-key-previous-32").decode()
SAMPLES = [
    ("google-calendar", "event.confirmed.json"),
    ("microsoft-graph", "message.json"),
    ("gmail", "message.json"),
]


@pytest.mark.parametrize(("source", "name"), SAMPLES)
def test_valid_signature_passes(source: str, name: str) -> None:
    body = fixture(source, name)
    ADAPTERS[source].verify(make_request(body, standard_headers(body, SECRET)), [SECRET], CONFIG)


@pytest.mark.parametrize(("source", "name"), SAMPLES)
def test_two_secrets_are_valid_during_rotation(source: str, name: str) -> None:
    body = fixture(source, name)
    for secret in (SECRET, OLD_SECRET):
        ADAPTERS[source].verify(
            make_request(body, standard_headers(body, secret)), [SECRET, OLD_SECRET], CONFIG
        )


@pytest.mark.parametrize(("source", "name"), SAMPLES)
def test_bad_signature_is_401(source: str, name: str) -> None:
    body = fixture(source, name)
    with pytest.raises(WebhookRejected) as caught:
        ADAPTERS[source].verify(make_request(body, standard_headers(body, OLD_SECRET)), [SECRET], CONFIG)
    assert (caught.value.status_code, caught.value.field) == (401, "webhook-signature")


@pytest.mark.parametrize(("source", "name"), SAMPLES)
@pytest.mark.parametrize("header", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_missing_header_is_401(source: str, name: str, header: str) -> None:
    body = fixture(source, name)
    headers = standard_headers(body, SECRET)
    del headers[header]
    with pytest.raises(WebhookRejected) as caught:
        ADAPTERS[source].verify(make_request(body, headers), [SECRET], CONFIG)
    assert (caught.value.status_code, caught.value.field) == (401, header)


@pytest.mark.parametrize(("source", "name"), SAMPLES)
@pytest.mark.parametrize("skew", [-301, 301])
def test_timestamp_outside_the_window_is_401(source: str, name: str, skew: int) -> None:
    body = fixture(source, name)
    headers = standard_headers(body, SECRET, timestamp=NOW_SECONDS + skew)
    with pytest.raises(WebhookRejected) as caught:
        ADAPTERS[source].verify(make_request(body, headers), [SECRET], CONFIG)
    assert (caught.value.status_code, caught.value.field) == (401, "webhook-timestamp")


def test_one_of_several_signatures_may_match() -> None:
    body = fixture("gmail", "message.json")
    headers = standard_headers(body, SECRET)
    headers["webhook-signature"] = "v1,AAAA " + headers["webhook-signature"]
    ADAPTERS["gmail"].verify(make_request(body, headers), [SECRET], CONFIG)


def test_plain_text_secret_is_used_as_is() -> None:
    body = fixture("gmail", "message.json")
    ADAPTERS["gmail"].verify(
        make_request(body, standard_headers(body, "plain-secret")), ["plain-secret"], CONFIG
    )


def test_body_is_covered() -> None:
    body = fixture("gmail", "message.json")
    headers = standard_headers(body, SECRET)
    with pytest.raises(WebhookRejected):
        ADAPTERS["gmail"].verify(make_request(body.replace(b"SENT", b"INBOX"), headers), [SECRET], CONFIG)
