"""Unknown tenants are verified against a decoy secret and refused exactly as a bad signature is."""

from __future__ import annotations

from dataclasses import replace

import pytest

from libs.common.tenancy import WEBHOOK_SOURCES
from services.ingest.domain.webhooks import (
    ADAPTERS,
    WebhookRejected,
    WebhookRequest,
    decoy_secret,
    unknown_tenant_config,
)

from .ingest_webhook_helpers import CONFIG, NOW_SECONDS, fixture, make_request

PEPPER = "unit-test-pepper"

#: A delivery per source whose credential is wrong (or absent).
FORGED: dict[str, WebhookRequest] = {
    "twilio": make_request(fixture("twilio", "completed.txt"), {"x-twilio-signature": "bm9wZQ=="}),
    "aircall": make_request(fixture("aircall", "call.ended.json")),
    "zoom": make_request(
        fixture("zoom", "endpoint.url_validation.json"),
        {"x-zm-signature": "v0=" + "0" * 64, "x-zm-request-timestamp": str(NOW_SECONDS)},
    ),
    "calendly": make_request(
        fixture("calendly", "invitee.created.json"),
        {"calendly-webhook-signature": f"t={NOW_SECONDS},v1=" + "0" * 64},
    ),
    "hubspot": make_request(
        fixture("hubspot", "calls.json"),
        {"x-hubspot-signature-v3": "bm9wZQ==", "x-hubspot-request-timestamp": str(NOW_SECONDS * 1000)},
    ),
    "salesforce": replace(make_request(fixture("salesforce", "User.xml")), url_token="guessed"),
    "google-calendar": make_request(fixture("google-calendar", "event.confirmed.json")),
    "microsoft-graph": make_request(fixture("microsoft-graph", "change-notification.json")),
    "gmail": make_request(
        fixture("gmail", "message.json"),
        {"webhook-id": "msg_1", "webhook-timestamp": str(NOW_SECONDS), "webhook-signature": "v1,bm9wZQ=="},
    ),
    "ringcentral": make_request(
        fixture("ringcentral", "session.disconnected.json"), {"verification-token": "guessed"}
    ),
}


def test_the_decoy_is_stable_per_tenant_and_source_and_unguessable_without_the_pepper() -> None:
    decoy = decoy_secret(PEPPER, "nobody", "twilio")
    assert decoy == decoy_secret(PEPPER, "nobody", "twilio")
    assert len(decoy) == 64
    others = {
        decoy_secret(PEPPER, "nobody", "zoom"),
        decoy_secret(PEPPER, "nobody2", "twilio"),
        decoy_secret("another-pepper", "nobody", "twilio"),
        # The separator keeps ("ab", "c") and ("a", "bc") apart.
        decoy_secret(PEPPER, "nobodyt", "willio"),
    }
    assert decoy not in others
    assert len(others) == 4
    assert PEPPER not in decoy


@pytest.mark.parametrize("source", sorted(WEBHOOK_SOURCES))
def test_an_unknown_tenant_is_refused_exactly_like_a_wrong_secret(source: str) -> None:
    assert sorted(FORGED) == sorted(WEBHOOK_SOURCES)
    adapter = ADAPTERS[source]
    request = FORGED[source]
    with pytest.raises(WebhookRejected) as known:
        adapter.verify(request, ["the-tenant-s-real-secret"], CONFIG)
    with pytest.raises(WebhookRejected) as unknown:
        adapter.verify(request, [decoy_secret(PEPPER, "nobody", source)], unknown_tenant_config("nobody"))
    assert known.value.status_code == 401
    assert (unknown.value.status_code, unknown.value.field, unknown.value.reason) == (
        known.value.status_code,
        known.value.field,
        known.value.reason,
    )
