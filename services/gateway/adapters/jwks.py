"""The identity provider's signing keys, read from its JWKS document and kept current.

An identity provider (Okta, Auth0, Entra ID, Keycloak, Google) publishes its public keys at a
JWKS URL and rotates them: a new key appears there before tokens are signed with it, an old one
goes once no valid token uses it. Reading the document, rather than configuring one PEM key,
keeps the gateway working through a rotation:

* the document is read when first needed and again every ``refresh_seconds``;
* a token naming a key id (``kid``) not in the document read last triggers a new read, at most
  once every ``min_refetch_seconds``, so a flood of invented key ids costs the provider one
  request per interval;
* a read that fails keeps the keys already known (and is counted and logged);
* only signing keys of asymmetric types are taken (RSA, EC, OKP): a symmetric ``oct`` key in a
  public document would be a shared secret made public, and a key marked ``use: enc`` is not for
  signatures. A token is verified with the algorithm of its key, never the one its header names.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import httpx
import jwt
from prometheus_client import Counter

log = logging.getLogger(__name__)

JWKS_FETCHES = Counter(
    "spm_gateway_jwks_fetches_total",
    "Reads of the identity provider's JWKS document, by outcome",
    ["outcome"],
)

_SIGNING_KEY_TYPES = frozenset({"RSA", "EC", "OKP"})


def signing_keys(document: Any) -> dict[str | None, jwt.PyJWK]:
    """The usable signing keys of a JWKS document by key id; the rest is skipped, never fatal."""
    keys: dict[str | None, jwt.PyJWK] = {}
    entries = document.get("keys") if isinstance(document, dict) else None
    for entry in entries if isinstance(entries, list) else []:
        if (
            not isinstance(entry, dict)
            or entry.get("kty") not in _SIGNING_KEY_TYPES
            or entry.get("use", "sig") != "sig"
        ):
            continue
        try:
            key = jwt.PyJWK(entry)
        except jwt.PyJWTError:
            continue
        keys[entry.get("kid") if isinstance(entry.get("kid"), str) else None] = key
    return keys


class JwksKeys:
    """The keys of one JWKS URL, shared by every request of the process."""

    def __init__(
        self,
        url: str,
        refresh_seconds: float,
        min_refetch_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        timeout_seconds: float = 5.0,
    ) -> None:
        self.url = url
        self.refresh_seconds = refresh_seconds
        self.min_refetch_seconds = min_refetch_seconds
        self.clock = clock
        self.timeout_seconds = timeout_seconds
        self._keys: dict[str | None, jwt.PyJWK] = {}
        self._read_at: float | None = None
        self._lock = asyncio.Lock()

    async def key_for(self, token: str) -> jwt.PyJWK | None:
        """The key that signed ``token`` by its ``kid`` (the only key, when the token names none)."""
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.PyJWTError:
            return None
        if self._read_at is None or self.clock() - self._read_at >= self.refresh_seconds:
            await self._read(self._read_at)
        key = self._find(kid)
        if (
            key is None
            and self._read_at is not None
            and self.clock() - self._read_at >= self.min_refetch_seconds
        ):
            await self._read(self._read_at)
            key = self._find(kid)
        return key

    def _find(self, kid: object) -> jwt.PyJWK | None:
        if kid is None and len(self._keys) == 1:
            return next(iter(self._keys.values()))
        return self._keys.get(kid) if isinstance(kid, str) else None

    async def _read(self, seen_read_at: float | None) -> None:
        async with self._lock:
            if self._read_at != seen_read_at:
                return  # another request read it meanwhile
            try:
                async with httpx.AsyncClient(timeout=self.timeout_seconds) as client:
                    response = await client.get(self.url, headers={"Accept": "application/json"})
                    response.raise_for_status()
                    keys = signing_keys(response.json())
            except (httpx.HTTPError, ValueError) as exc:
                JWKS_FETCHES.labels("failed").inc()
                log.warning(
                    "could not read the JWKS document at %s (%s); keeping the keys known", self.url, exc
                )
            else:
                JWKS_FETCHES.labels("read").inc()
                self._keys = keys
            finally:
                self._read_at = self.clock()
