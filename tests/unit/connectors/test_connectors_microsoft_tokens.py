"""An unreachable Microsoft login endpoint is the mailbox's failure (ApiError), not a crash."""

from __future__ import annotations

import httpx
import pytest

from services.connectors.adapters.http import ApiError
from services.connectors.adapters.microsoft import MicrosoftTokens


def _unreachable(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("[Errno -2] Name or service not known", request=request)


async def test_a_login_endpoint_that_cannot_be_reached_is_an_api_error_naming_it() -> None:
    http = httpx.Client(transport=httpx.MockTransport(_unreachable))
    tokens = MicrosoftTokens("https://login.example", "dir-1", "app-1", "s3cret", http)
    with pytest.raises(ApiError) as raised:
        await tokens.token()
    assert (raised.value.status, raised.value.reason) == (0, "token")
    assert str(raised.value) == (
        "0 token: token endpoint unusable: ConnectError: [Errno -2] Name or service not known"
    )
    # Nothing half-made is kept: the next sync makes the app again.
    with pytest.raises(ApiError):
        await tokens.token()
