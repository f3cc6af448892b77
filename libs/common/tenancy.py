"""Tenants, API keys and webhook secrets: creation, hashing and lookup.

API keys look like ``spm_<scope>_<id>_<secret>``. The ``spm_<scope>_<id>`` prefix is stored in
clear to find the row and to let operators recognise a key in a leak report; only an
HMAC-SHA256 of the whole key (peppered with ``SPM_SECRET_KEY``) is stored. Webhook secrets
must be readable to verify HMAC signatures, so they are stored encrypted (Fernet).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from cryptography.fernet import Fernet, InvalidToken
from pydantic import BaseModel, ConfigDict
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from libs.common.caching import LoadingCache

WEBHOOK_SOURCES = (
    "twilio",
    "aircall",
    "zoom",
    "calendly",
    "hubspot",
    "salesforce",
    "google-calendar",
    "microsoft-graph",
    "gmail",
    "ringcentral",
)


class Scope(StrEnum):
    INGEST = "ingest"
    READ = "read"
    ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a tenant and the scopes its credential grants."""

    tenant_id: str
    scopes: frozenset[Scope]
    key_id: str

    def allows(self, scope: Scope) -> bool:
        # An admin credential may also read; ingest stays separate (a leaked webhook key reads nothing).
        return scope in self.scopes or (scope is Scope.READ and Scope.ADMIN in self.scopes)


def hash_api_key(key: str, pepper: str) -> str:
    return hmac.new(pepper.encode(), key.encode(), hashlib.sha256).hexdigest()


def generate_api_key(scope: Scope) -> tuple[str, str]:
    """A new key for ``scope``: (key id, the whole key shown once)."""
    key_id = f"spm_{scope.value}_{secrets.token_hex(4)}"
    return key_id, f"{key_id}_{secrets.token_urlsafe(24)}"


def key_id_of(key: str) -> str | None:
    parts = key.split("_", 3)
    if len(parts) != 4 or parts[0] != "spm" or parts[1] not in {s.value for s in Scope}:
        return None
    return "_".join(parts[:3])


def _fernet(pepper: str) -> Fernet:
    digest = hashlib.sha256(b"spm-webhook-secrets\x00" + pepper.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def encrypt_secret(secret: str, pepper: str) -> str:
    return _fernet(pepper).encrypt(secret.encode()).decode()


def decrypt_secret(token: str, pepper: str) -> str:
    try:
        return _fernet(pepper).decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise ValueError("webhook secret cannot be decrypted: was SPM_SECRET_KEY changed?") from exc


def push_token(secret: str, tenant_id: str, provider: str) -> str:
    """The token a push channel carries in its URL or channel token (Gmail Pub/Sub, Calendar watch).

    Derived from the tenant's webhook secret of ``provider`` rather than being that secret, so a
    push configuration readable in the vendor's console never reveals the key that signs the
    connector's posts; rotating the secret rotates the token (both valid during the grace period).
    """
    message = f"spm-push\x00{tenant_id}\x00{provider}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


async def authenticate(conn: AsyncConnection, key: str, pepper: str) -> Principal | None:
    """The principal of a bearer API key, or None when unknown, revoked or wrong."""
    key_id = key_id_of(key)
    if key_id is None:
        return None
    row = (
        await conn.execute(
            text("SELECT tenant_id, scopes, key_hash, revoked_at FROM api_keys WHERE key_id = :key_id"),
            {"key_id": key_id},
        )
    ).one_or_none()
    if row is None or row.revoked_at is not None:
        return None
    if not hmac.compare_digest(row.key_hash, hash_api_key(key, pepper)):
        return None
    return Principal(row.tenant_id, frozenset(Scope(s) for s in row.scopes), key_id)


async def tenant_exists(conn: AsyncConnection, tenant_id: str) -> bool:
    row = await conn.execute(text("SELECT 1 FROM tenants WHERE tenant_id = :t"), {"t": tenant_id})
    return row.first() is not None


async def list_tenants(conn: AsyncConnection) -> list[dict[str, object]]:
    """Every tenant, oldest first, with its calendar and its number of active API keys."""
    rows = await conn.execute(
        text(
            "SELECT t.tenant_id, t.name, t.timezone, t.fiscal_year_start_month, t.created_at, "
            "count(k.key_id) FILTER (WHERE k.revoked_at IS NULL) AS active_keys "
            "FROM tenants t LEFT JOIN api_keys k USING (tenant_id) "
            "GROUP BY t.tenant_id ORDER BY t.created_at, t.tenant_id"
        )
    )
    return [
        {
            "tenant_id": r.tenant_id,
            "name": r.name,
            "timezone": r.timezone,
            "fiscal_year_start_month": r.fiscal_year_start_month,
            "created_at": r.created_at.isoformat(),
            "active_keys": r.active_keys,
        }
        for r in rows
    ]


async def create_api_key(
    conn: AsyncConnection, tenant_id: str, scope: Scope, pepper: str, name: str = ""
) -> str:
    key_id, key = generate_api_key(scope)
    await conn.execute(
        text(
            "INSERT INTO api_keys (key_id, tenant_id, name, scopes, key_hash) "
            "VALUES (:key_id, :tenant_id, :name, :scopes, :key_hash)"
        ),
        {
            "key_id": key_id,
            "tenant_id": tenant_id,
            "name": name or scope.value,
            "scopes": [scope.value],
            "key_hash": hash_api_key(key, pepper),
        },
    )
    return key


async def revoke_api_key(conn: AsyncConnection, key_id: str) -> bool:
    result = await conn.execute(
        text("UPDATE api_keys SET revoked_at = now() WHERE key_id = :key_id AND revoked_at IS NULL"),
        {"key_id": key_id},
    )
    return bool(result.rowcount)


async def add_webhook_secret(
    conn: AsyncConnection, tenant_id: str, source: str, pepper: str, secret: str | None = None
) -> str:
    """Add a secret for ``source``; older ones stay valid until expired, so rotation has no gap."""
    secret = secret or secrets.token_urlsafe(32)
    await conn.execute(
        text("INSERT INTO webhook_secrets (tenant_id, source, secret_encrypted) VALUES (:t, :s, :e)"),
        {"t": tenant_id, "s": source, "e": encrypt_secret(secret, pepper)},
    )
    return secret


async def expire_old_webhook_secrets(
    conn: AsyncConnection, tenant_id: str, source: str, grace: timedelta
) -> int:
    """Expire every secret of ``source`` but the newest, ``grace`` from now (end of a rotation).

    A secret already ending later (still in an earlier rotation's grace) ends then too: a rotation
    with no grace after a leak leaves no older secret valid. None is ever extended.
    """
    result = await conn.execute(
        text(
            """
            UPDATE webhook_secrets SET expires_at = :at
            WHERE tenant_id = :t AND source = :s AND (expires_at IS NULL OR expires_at > :at)
              AND secret_id <> (SELECT max(secret_id) FROM webhook_secrets WHERE tenant_id = :t AND source = :s)
            """
        ),
        {"t": tenant_id, "s": source, "at": datetime.now(UTC) + grace},
    )
    return int(result.rowcount)


class WebhookSecretInfo(BaseModel):
    """A webhook secret as an admin sees it: masked, with its validity window."""

    model_config = ConfigDict(frozen=True)

    secret_id: int
    source: str
    #: The last four characters, to recognise it; never the secret.
    masked: str
    created_at: datetime
    #: When it stops being accepted (the end of a rotation's grace period); null: no end.
    expires_at: datetime | None
    valid: bool


def mask_secret(secret: str) -> str:
    """Enough to recognise a secret (its last four characters), never enough to use it."""
    return "…" + secret[-4:] if len(secret) >= 12 else "…"


def check_webhook_secret(secret: str) -> str | None:
    """Why ``secret`` cannot be a vendor's signing secret, or None when it can."""
    if not secret:
        return "must not be empty"
    if len(secret) > 1_024:
        return "must be at most 1024 characters"
    if secret != secret.strip() or any(ord(c) < 0x20 or ord(c) == 0x7F for c in secret):
        return "must not contain whitespace at its ends or control characters"
    return None


async def rotate_webhook_secret(
    conn: AsyncConnection,
    tenant_id: str,
    source: str,
    pepper: str,
    grace: timedelta,
    secret: str | None = None,
) -> tuple[str, int]:
    """Add ``secret`` (vendor-issued) or a generated one; older secrets of ``source`` stay valid for
    ``grace``, then expire. Returns (the new secret, how many older ones expire)."""
    secret = await add_webhook_secret(conn, tenant_id, source, pepper, secret)
    # Both stay valid during the grace period: the vendor is reconfigured without a gap.
    return secret, await expire_old_webhook_secrets(conn, tenant_id, source, grace)


async def list_webhook_secrets(
    conn: AsyncConnection, tenant_id: str, pepper: str, source: str | None = None
) -> list[WebhookSecretInfo]:
    """Every secret of the tenant (expired ones included), masked, newest first per source."""
    rows = await conn.execute(
        text(
            "SELECT secret_id, source, secret_encrypted, created_at, expires_at, "
            "(expires_at IS NULL OR expires_at > now()) AS valid FROM webhook_secrets "
            "WHERE tenant_id = :t AND (CAST(:s AS text) IS NULL OR source = :s) ORDER BY source, secret_id DESC"
        ),
        {"t": tenant_id, "s": source},
    )
    return [
        WebhookSecretInfo(
            secret_id=r.secret_id,
            source=r.source,
            masked=mask_secret(decrypt_secret(r.secret_encrypted, pepper)),
            created_at=r.created_at,
            expires_at=r.expires_at,
            valid=r.valid,
        )
        for r in rows
    ]


async def webhook_secrets(conn: AsyncConnection, tenant_id: str, source: str, pepper: str) -> list[str]:
    """Every currently valid secret of ``source``, newest first."""
    rows = await conn.execute(
        text(
            "SELECT secret_encrypted FROM webhook_secrets WHERE tenant_id = :t AND source = :s "
            "AND (expires_at IS NULL OR expires_at > now()) ORDER BY secret_id DESC"
        ),
        {"t": tenant_id, "s": source},
    )
    return [decrypt_secret(r.secret_encrypted, pepper) for r in rows]


def _no_secret(secrets: tuple[str, ...]) -> bool:
    return not secrets


#: How long a "no secret" just read is trusted by a reload asked with ``fresh`` (a delivery none
#: of the cached secrets verified).
FRESH_NO_SECRET_SECONDS = 1.0


class WebhookSecretCache:
    """Decrypted webhook secrets per (tenant, source), kept for ``ttl_seconds``.

    A webhook delivery needs its secrets before anything else; reading and decrypting them on
    every delivery cost a database round trip and a Fernet decryption each. Freshness rules:

    * a secret added by a rotation is valid at once: the caller asks again with ``fresh=True``
      when no cached secret verified a delivery (:meth:`secrets` then reloads);
    * a scheduled expiry (the end of a rotation's grace period) applies on time: an entry never
      outlives the earliest expiry among the secrets it holds;
    * a secret expired early (a rotation with no grace) is still accepted for at most
      ``ttl_seconds``, the same bound as a revoked API key (:class:`libs.common.auth.ApiKeyAuthenticator`).

    "No secret" (an unknown tenant, most often made up) is cached apart, in at most
    ``max_unknown`` entries, so it never pushes a real tenant's secrets out.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        pepper: str,
        ttl_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        max_entries: int = 10_000,
        max_unknown: int = 1_000,
    ) -> None:
        self.engine = engine
        self.pepper = pepper
        self.ttl = ttl_seconds
        self._cache: LoadingCache[tuple[str, str], tuple[str, ...]] = LoadingCache(
            self._load, clock, max_entries, negative=_no_secret, max_negative=max_unknown
        )

    async def secrets(self, tenant_id: str, source: str, *, fresh: bool = False) -> tuple[str, ...]:
        """Every currently valid secret of ``source``, newest first; ``fresh`` skips the cache,
        except a "no secret" loaded less than ``FRESH_NO_SECRET_SECONDS`` ago: a forged delivery
        to a made-up tenant id (anyone can send one) then costs no second read, and one
        re-sent in a loop at most one read a second; a tenant (or secret) created since is read
        at the next delivery a second later."""
        key = (tenant_id, source)
        if fresh and (age := self._cache.negative_age(key)) is not None and age < FRESH_NO_SECRET_SECONDS:
            fresh = False
        return await self._cache.get(key, fresh=fresh)

    async def _load(self, key: tuple[str, str]) -> tuple[tuple[str, ...], float]:
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    text(
                        "SELECT secret_encrypted, extract(epoch FROM expires_at - now()) AS left_s "
                        "FROM webhook_secrets WHERE tenant_id = :t AND source = :s "
                        "AND (expires_at IS NULL OR expires_at > now()) ORDER BY secret_id DESC"
                    ),
                    {"t": key[0], "s": key[1]},
                )
            ).all()
        found = tuple(decrypt_secret(r.secret_encrypted, self.pepper) for r in rows)
        # An entry never outlives the earliest scheduled expiry among its secrets.
        return found, min([self.ttl, *(float(r.left_s) for r in rows if r.left_s is not None)])


async def create_tenant(
    conn: AsyncConnection, tenant_id: str, pepper: str, *, name: str = "", timezone: str = "UTC"
) -> dict[str, object]:
    """Create a tenant with one key per scope and one secret per webhook source (shown once)."""
    await conn.execute(
        text("INSERT INTO tenants (tenant_id, name, timezone) VALUES (:t, :n, :tz)"),
        {"t": tenant_id, "n": name or tenant_id, "tz": timezone},
    )
    keys = {scope.value: await create_api_key(conn, tenant_id, scope, pepper) for scope in Scope}
    webhook = {
        source: await add_webhook_secret(conn, tenant_id, source, pepper) for source in WEBHOOK_SOURCES
    }
    return {"tenant_id": tenant_id, "api_keys": keys, "webhook_secrets": webhook}
