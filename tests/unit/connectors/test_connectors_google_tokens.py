"""Google's token refusals reach the admin in words: no ``None``, and what the code means."""

from __future__ import annotations

import pytest
from google.auth.exceptions import RefreshError

from services.connectors.adapters.google import refusal


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (
            "unauthorized_client: None",
            "unauthorized_client; domain-wide delegation is not granted to this service account's "
            "client id for the connector's scopes, or was removed (the guide's step 2)",
        ),
        (
            "invalid_grant: Invalid email or User ID",
            "invalid_grant; Invalid email or User ID; Google refuses this user or this key: the user "
            "may not exist in the Workspace or be suspended, or the key was deleted",
        ),
        (
            "access_denied: Requested client not authorized.",
            "access_denied; Requested client not authorized.",
        ),
        ("No access token in response.", "No access token in response."),
        # google-auth's fallback, the response body as JSON: not split at its first ": ".
        ('{"foo": "bar"}', '{"foo": "bar"}'),
        ('{"error": "weird", "detail": "x"}', '{"error": "weird", "detail": "x"}'),
    ],
)
def test_a_refusal_names_googles_code_its_description_and_what_it_means(message: str, expected: str) -> None:
    refused = RefreshError(message, {"error": message.partition(":")[0]})  # type: ignore[no-untyped-call]
    assert refusal(refused) == expected
