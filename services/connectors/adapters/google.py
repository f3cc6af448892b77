"""Google APIs with a service account's domain-wide delegation (``google-auth``) over httpx.

``google-auth`` signs the JWT assertion and exchanges it at the account's ``token_uri`` for an
access token of the impersonated user; tokens are cached per (user, scopes) and refreshed when
they expire or when an API answers 401. The token exchange is synchronous in ``google-auth``,
so it runs in a worker thread over a small httpx transport (no ``requests`` dependency).
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import google.auth.transport
import httpx
import orjson
from google.auth.exceptions import RefreshError, TransportError
from google.oauth2 import service_account

from services.connectors.adapters.http import ApiError, RetryPolicy, json_of, send_with_retry


class _TokenResponse(google.auth.transport.Response):
    def __init__(self, response: httpx.Response) -> None:
        self._response = response

    @property
    def status(self) -> int:
        return self._response.status_code

    @property
    def headers(self) -> Mapping[str, str]:
        return self._response.headers

    @property
    def data(self) -> bytes:
        return self._response.content


class _TokenRequest(google.auth.transport.Request):
    """google-auth's transport interface over a synchronous httpx client."""

    def __init__(self, client: httpx.Client) -> None:
        self._client = client

    def __call__(
        self,
        url: str,
        method: str = "GET",
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> _TokenResponse:
        try:
            response = self._client.request(method, url, content=body, headers=headers, timeout=timeout or 30)
        except httpx.HTTPError as exc:
            raise TransportError(repr(exc)) from exc  # type: ignore[no-untyped-call]
        return _TokenResponse(response)


class GoogleTokens:
    """Access tokens of the users a service account impersonates."""

    def __init__(self, service_account_json: str, token_client: httpx.Client) -> None:
        try:
            info = orjson.loads(service_account_json)
            self._base = service_account.Credentials.from_service_account_info(info)  # type: ignore[no-untyped-call]
        except (orjson.JSONDecodeError, ValueError, KeyError) as exc:
            raise ApiError(
                0, "credentials", f"the service account key is unusable: {type(exc).__name__}"
            ) from None
        self._request = _TokenRequest(token_client)
        self._cache: dict[tuple[str, tuple[str, ...]], service_account.Credentials] = {}
        self._lock = asyncio.Lock()

    @property
    def client_email(self) -> str:
        return str(self._base.service_account_email)

    async def token(self, subject: str, scopes: Sequence[str], *, renew: bool = False) -> str:
        key = (subject, tuple(scopes))
        async with self._lock:
            credentials = self._cache.get(key)
            if credentials is None:
                credentials = self._base.with_subject(subject).with_scopes(list(scopes))
                self._cache[key] = credentials
            if renew or not credentials.valid:
                try:
                    await asyncio.to_thread(credentials.refresh, self._request)
                except RefreshError as exc:
                    # e.g. unauthorized_client: delegation not granted for these scopes.
                    raise ApiError(401, "token", f"token refused for this user: {refusal(exc)}") from None
                except TransportError as exc:
                    raise ApiError(0, "transport", f"token endpoint unreachable: {exc}") from None
            return str(credentials.token)


#: What Google's token endpoint's refusals mean to the admin who granted the delegation.
_REFUSALS = {
    "unauthorized_client": (
        "domain-wide delegation is not granted to this service account's client id for the "
        "connector's scopes, or was removed (the guide's step 2)"
    ),
    "invalid_grant": (
        "Google refuses this user or this key: the user may not exist in the Workspace or be "
        "suspended, or the key was deleted"
    ),
}


#: An OAuth 2.0 error code (RFC 6749, 5.2): ``invalid_grant``, ``unauthorized_client``.
_OAUTH_ERROR_CODE = re.compile(r"[a-z_]+")


def refusal(exc: RefreshError) -> str:
    """A token refusal in words: Google's error code, its description when it sent one
    (google-auth writes a missing one as ``None``), and what the code means for the setup. Only
    text before ``": "`` shaped like an OAuth error code is one: google-auth's fallback message,
    the response body (``{"foo": "bar"}``), is kept whole."""
    message = str(exc.args[0] if exc.args else exc)
    code, _, description = message.partition(": ")
    if not _OAUTH_ERROR_CODE.fullmatch(code):
        return message
    words = [code.strip()]
    if description.strip() not in ("", "None"):
        words.append(description.strip())
    if code.strip() in _REFUSALS:
        words.append(_REFUSALS[code.strip()])
    return "; ".join(words)


class GoogleApi:
    """Authorised JSON calls as one impersonated user, with the retry policy."""

    def __init__(
        self, client: httpx.AsyncClient, tokens: GoogleTokens, retry: RetryPolicy, provider: str
    ) -> None:
        self._client = client
        self._tokens = tokens
        self._retry = retry
        self._provider = provider

    async def call(
        self,
        method: str,
        url: str,
        subject: str,
        scopes: Sequence[str],
        params: Sequence[tuple[str, str]] = (),
        body: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        renewed = False
        while True:
            token = await self._tokens.token(subject, scopes, renew=renewed)
            headers = {"authorization": f"Bearer {token}"}

            async def send(headers: dict[str, str] = headers) -> httpx.Response:
                return await self._client.request(
                    method, url, params=list(params), json=body, headers=headers
                )

            try:
                return json_of(await send_with_retry(send, self._provider, self._retry))
            except ApiError as exc:
                # A token revoked or expired early: refresh once, then it is the mailbox's failure.
                if exc.status != 401 or renewed:
                    raise
                renewed = True


def millis_to_datetime(raw: object) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(str(raw)) / 1000, UTC)
    except (TypeError, ValueError, OverflowError):
        return None


class GmailClient:
    """The Gmail API calls the connector makes (``users.*`` of one impersonated mailbox)."""

    def __init__(self, api: GoogleApi, base_url: str, scopes: Sequence[str]) -> None:
        self._api = api
        self._base = base_url.rstrip("/")
        self._scopes = tuple(scopes)

    def _url(self, user: str, path: str) -> str:
        return f"{self._base}/gmail/v1/users/{quote(user, safe='@')}/{path}"

    async def profile(self, user: str) -> dict[str, Any]:
        return await self._api.call("GET", self._url(user, "profile"), user, self._scopes)

    async def history(self, user: str, start_history_id: str, page_token: str | None) -> dict[str, Any]:
        params = [
            ("startHistoryId", start_history_id),
            ("historyTypes", "messageAdded"),
            ("maxResults", "500"),
        ]
        if page_token:
            params.append(("pageToken", page_token))
        return await self._api.call("GET", self._url(user, "history"), user, self._scopes, params)

    async def list_messages(self, user: str, page_token: str | None) -> dict[str, Any]:
        params = [("maxResults", "100")]
        if page_token:
            params.append(("pageToken", page_token))
        return await self._api.call("GET", self._url(user, "messages"), user, self._scopes, params)

    async def message(
        self, user: str, message_id: str, headers: Sequence[str], fields: str
    ) -> dict[str, Any] | None:
        """The message's metadata, or None when it was deleted since it was listed."""
        params = [("format", "metadata"), *(("metadataHeaders", h) for h in headers), ("fields", fields)]
        try:
            return await self._api.call(
                "GET", self._url(user, f"messages/{quote(message_id, safe='')}"), user, self._scopes, params
            )
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    async def watch(self, user: str, topic: str) -> dict[str, Any]:
        return await self._api.call(
            "POST", self._url(user, "watch"), user, self._scopes, body={"topicName": topic}
        )


class CalendarClient:
    """The Calendar API calls the connector makes on one user's primary calendar."""

    def __init__(self, api: GoogleApi, base_url: str, scopes: Sequence[str]) -> None:
        self._api = api
        self._base = base_url.rstrip("/")
        self._scopes = tuple(scopes)

    def _url(self, calendar: str, path: str) -> str:
        return f"{self._base}/calendar/v3/calendars/{quote(calendar, safe='@')}/{path}"

    async def events(
        self,
        user: str,
        *,
        fields: str,
        sync_token: str | None = None,
        time_min: datetime | None = None,
        page_token: str | None = None,
    ) -> dict[str, Any]:
        # singleEvents: each occurrence of a recurring meeting is its own event (and activity).
        params = [("singleEvents", "true"), ("maxResults", "250"), ("fields", fields)]
        if sync_token:
            params.append(("syncToken", sync_token))
        elif time_min is not None:
            params.append(("timeMin", time_min.astimezone(UTC).isoformat().replace("+00:00", "Z")))
        if page_token:
            params.append(("pageToken", page_token))
        return await self._api.call("GET", self._url(user, "events"), user, self._scopes, params)

    async def watch(self, user: str, channel_id: str, address: str, token: str) -> dict[str, Any]:
        body = {"id": channel_id, "type": "web_hook", "address": address, "token": token}
        return await self._api.call("POST", self._url(user, "events/watch"), user, self._scopes, body=body)


class GoogleSessions:
    """Gmail and Calendar clients per connection; tokens are cached per connection and user."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        token_client: httpx.Client,
        retry: RetryPolicy,
        gmail_base_url: str,
        calendar_base_url: str,
    ) -> None:
        self._client = client
        self._token_client = token_client
        self._retry = retry
        self._gmail_base = gmail_base_url
        self._calendar_base = calendar_base_url
        self._tokens: dict[tuple[int, str], GoogleTokens] = {}

    def _tokens_for(self, connection_id: int, credentials: str) -> GoogleTokens:
        # Keyed by the credentials' digest too: re-adding a connection with a new key takes effect.
        key = (connection_id, hashlib.sha256(credentials.encode()).hexdigest())
        tokens = self._tokens.get(key)
        if tokens is None:
            tokens = self._tokens[key] = GoogleTokens(credentials, self._token_client)
        return tokens

    def gmail(self, connection_id: int, credentials: str, scopes: Sequence[str]) -> GmailClient:
        api = GoogleApi(self._client, self._tokens_for(connection_id, credentials), self._retry, "gmail")
        return GmailClient(api, self._gmail_base, scopes)

    def calendar(self, connection_id: int, credentials: str, scopes: Sequence[str]) -> CalendarClient:
        api = GoogleApi(
            self._client, self._tokens_for(connection_id, credentials), self._retry, "google-calendar"
        )
        return CalendarClient(api, self._calendar_base, scopes)
