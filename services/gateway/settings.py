"""Gateway settings (``GATEWAY_*``)."""

from __future__ import annotations

from pydantic import AnyHttpUrl, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from libs.common.settings import CommonSettings


class GatewayOptions(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore")

    port: int = 8000
    #: HS256 shared secret for JWTs (optional).
    jwt_hs256_secret: SecretStr | None = None
    #: PEM public key for RS256 JWTs (optional).
    jwt_rs256_public_key: str | None = None
    #: The identity provider's JWKS document (``https://idp.example/.well-known/jwks.json``): its
    #: RSA, EC and Ed25519 signing keys are read and followed through rotations.
    jwt_jwks_url: AnyHttpUrl | None = None
    #: How often the JWKS document is read again (a key the provider retired stops working then).
    jwt_jwks_refresh_seconds: float = Field(default=300.0, ge=1)
    #: A token naming a key id not known yet reads the document again, at most this often.
    jwt_jwks_min_refetch_seconds: float = Field(default=30.0, ge=0)
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    #: The claim holding the tenant id (``https://spm.example/tenant`` for providers that want
    #: custom claims namespaced).
    jwt_tenant_claim: str = Field(default="tenant", min_length=1)
    #: The claim holding the role: ``read`` or ``admin``, or a list of roles that names one of them.
    jwt_role_claim: str = Field(default="role", min_length=1)
    cors_origins: list[str] = Field(default_factory=list)
    #: Requests per minute per credential (a token bucket of this capacity, refilled continuously).
    rate_limit_per_minute: int = Field(default=600, ge=1)
    #: Requests per minute per tenant, whatever its credentials: every sign-in is a subject with
    #: its own bucket, so without it a key signing in again and again multiplied its rate.
    rate_limit_per_tenant_per_minute: int = Field(default=6_000, ge=1)
    max_page_size: int = Field(default=500, ge=1)
    default_page_size: int = Field(default=50, ge=1)
    #: The longest date range of a day series, funnel or activity list.
    max_range_days: int = Field(default=400, ge=1)
    #: The most periods a week, month or quarter series may span (8 quarters = 2 years).
    max_range_periods: int = Field(default=104, ge=1)
    #: ``Cache-Control: private, max-age=...`` on successful reads.
    cache_max_age_seconds: int = Field(default=10, ge=0)
    #: How long a manual override waits for the broker's acknowledgement before answering 503.
    publish_timeout_seconds: float = Field(default=2.0, gt=0)
    #: The live leaderboard re-reads its query this often per connection.
    stream_interval_seconds: float = Field(default=2.0, gt=0)
    stream_heartbeat_seconds: float = Field(default=15.0, gt=0)
    stream_max_connections_per_key: int = Field(default=4, ge=1)
    #: Open streams per dashboard session (the tabs of one browser share its cookie).
    stream_max_connections_per_session: int = Field(default=16, ge=1)
    #: Open streams per tenant on one replica, whatever its keys, sessions and JWT subjects: every
    #: sign-in is a session with its own budget, so without it one tenant's script held every
    #: stream (each re-reading the leaderboard on the pool all tenants share).
    stream_max_connections_per_tenant: int = Field(default=256, ge=1)
    #: How long a checked API key or session is trusted, and how often an open stream re-checks
    #: its credential (revoked, expired, tenant gone). At most 30 s: a revoked key must not keep
    #: reading longer.
    credential_recheck_seconds: float = Field(default=30.0, gt=0, le=30)
    #: Lifetime of a dashboard session cookie (``POST /v1/session``); absolute, not sliding.
    session_ttl_seconds: int = Field(default=8 * 3600, ge=60)
    #: The largest request body a PUT or POST may carry (413 beyond).
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)


class GatewaySettings(CommonSettings):
    gateway: GatewayOptions = Field(default_factory=GatewayOptions)
