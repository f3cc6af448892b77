"""Gateway settings (``GATEWAY_*``)."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from libs.common.settings import CommonSettings


class GatewayOptions(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore")

    port: int = 8000
    #: HS256 shared secret for JWTs (optional).
    jwt_hs256_secret: SecretStr | None = None
    #: PEM public key for RS256 JWTs (optional).
    jwt_rs256_public_key: str | None = None
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    cors_origins: list[str] = Field(default_factory=list)
    rate_limit_per_minute: int = 600
    max_page_size: int = 500
    max_range_days: int = 400


class GatewaySettings(CommonSettings):
    gateway: GatewayOptions = Field(default_factory=GatewayOptions)
