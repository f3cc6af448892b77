"""Microsoft Graph with an app's client credentials (``msal``) over httpx.

``msal`` acquires and caches the app-only token (``.default`` scope) and renews it before it
expires; it is synchronous, so it runs in a worker thread, over an httpx client (no
``requests`` dependency). A 401 from Graph drops the cached token once and retries.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import httpx
import msal

from services.connectors.adapters.http import ApiError, RetryPolicy, json_of, send_with_retry
from services.connectors.domain.graph import GRAPH_SCOPE


class MicrosoftTokens:
    """App-only tokens of one app registration in one directory."""

    def __init__(
        self, login_base_url: str, directory_tenant_id: str, client_id: str, secret: str, http: httpx.Client
    ) -> None:
        self._make = lambda: msal.ConfidentialClientApplication(
            client_id,
            client_credential=secret,
            authority=f"{login_base_url.rstrip('/')}/{directory_tenant_id}",
            http_client=http,
            # The authority is the configured one; no discovery call to a global endpoint.
            instance_discovery=False,
        )
        self._app: Any = None
        self._lock = asyncio.Lock()

    async def token(self, *, renew: bool = False) -> str:
        async with self._lock:
            try:
                # Making the app reads the authority's OpenID configuration over the network:
                # a login endpoint unreachable (DNS, a proxy) is the mailbox's failure, as the
                # token request's, not a crash of its sync.
                if self._app is None or renew:
                    self._app = await asyncio.to_thread(self._make)
                app = self._app
                result: dict[str, Any] = await asyncio.to_thread(app.acquire_token_for_client, [GRAPH_SCOPE])
            except (httpx.HTTPError, ValueError) as exc:
                raise ApiError(0, "token", f"token endpoint unusable: {type(exc).__name__}: {exc}") from None
        if "access_token" not in result:
            # e.g. invalid_client (a wrong or expired secret), unauthorized_client.
            raise ApiError(
                401, "token", f"{result.get('error')}: {str(result.get('error_description', ''))[:200]}"
            )
        return str(result["access_token"])


class GraphClient:
    """Authorised Graph calls with the retry policy; ``provider`` labels the retries."""

    def __init__(
        self, client: httpx.AsyncClient, tokens: MicrosoftTokens, retry: RetryPolicy, base_url: str
    ) -> None:
        self._client = client
        self._tokens = tokens
        self._retry = retry
        self.base_url = base_url.rstrip("/")

    async def call(
        self, method: str, url: str, provider: str, body: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        renewed = False
        while True:
            headers = {
                "authorization": f"Bearer {await self._tokens.token(renew=renewed)}",
                # Page size of delta rounds (Graph's default for messages is 10).
                "prefer": "odata.maxpagesize=50",
            }

            async def send(headers: dict[str, str] = headers) -> httpx.Response:
                return await self._client.request(method, url, json=body, headers=headers)

            try:
                return json_of(await send_with_retry(send, provider, self._retry))
            except ApiError as exc:
                if exc.status != 401 or renewed:
                    raise
                renewed = True

    async def create_subscription(self, provider: str, request: Mapping[str, Any]) -> dict[str, Any]:
        return await self.call("POST", f"{self.base_url}/v1.0/subscriptions", provider, request)

    async def renew_subscription(
        self, provider: str, subscription_id: str, expires: datetime
    ) -> dict[str, Any]:
        body = {"expirationDateTime": expires.strftime("%Y-%m-%dT%H:%M:%SZ")}
        return await self.call(
            "PATCH", f"{self.base_url}/v1.0/subscriptions/{subscription_id}", provider, body
        )


class MicrosoftSessions:
    """Graph clients per connection (tokens cached per connection and secret)."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        token_client: httpx.Client,
        retry: RetryPolicy,
        graph_base_url: str,
        login_base_url: str,
    ) -> None:
        self._client = client
        self._token_client = token_client
        self._retry = retry
        self._graph_base = graph_base_url
        self._login_base = login_base_url
        self._tokens: dict[tuple[int, str], MicrosoftTokens] = {}

    def graph(self, connection_id: int, directory_tenant_id: str, client_id: str, secret: str) -> GraphClient:
        key = (
            connection_id,
            hashlib.sha256(f"{directory_tenant_id}\0{client_id}\0{secret}".encode()).hexdigest(),
        )
        tokens = self._tokens.get(key)
        if tokens is None:
            tokens = self._tokens[key] = MicrosoftTokens(
                self._login_base, directory_tenant_id, client_id, secret, self._token_client
            )
        return GraphClient(self._client, tokens, self._retry, self._graph_base)
