"""A tenant's ingest configuration, read from ``tenants.settings`` (JSON), as pure values.

The JSON shape (every key optional)::

    {
      "internal_domains": ["acme.example"],
      "default_phone_region": "US",
      "salesforce_organization_id": "00D5j00000ABCDEEA2",
      "privacy": {
        "excluded_addresses": ["ceo@acme.example", "+14155550100"],
        "excluded_domains": ["lawfirm.example"],
        "excluded_subject_keywords": ["confidential"],
        "keep_subjects": false,
        "drop_internal_only": false
      }
    }

Other services keep their own keys in the same document; they are ignored here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from services.ingest.domain.privacy import PrivacyPolicy
from services.ingest.domain.webhook_types import TenantWebhookConfig


class InvalidTenantSettings(Exception):
    """``tenants.settings`` cannot be read; ingest refuses rather than guess a privacy policy."""


class PrivacySettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    excluded_addresses: tuple[str, ...] = ()
    excluded_domains: tuple[str, ...] = ()
    excluded_subject_keywords: tuple[str, ...] = ()
    #: Subjects are personal data and rarely needed for scoring: stripped unless the tenant opts in.
    keep_subjects: bool = False
    drop_internal_only: bool = False


class IngestTenantSettings(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    internal_domains: tuple[str, ...] | None = None
    default_phone_region: str = Field(default="US", min_length=2, max_length=2)
    salesforce_organization_id: str | None = None
    privacy: PrivacySettings = Field(default_factory=PrivacySettings)


def read_tenant_settings(document: Mapping[str, Any] | None) -> IngestTenantSettings:
    try:
        return IngestTenantSettings.model_validate(document or {})
    except ValidationError as exc:
        fields = ", ".join(".".join(str(p) for p in e["loc"]) for e in exc.errors())
        raise InvalidTenantSettings(f"tenants.settings is invalid at {fields}") from None


def privacy_policy(settings: IngestTenantSettings) -> PrivacyPolicy:
    privacy = settings.privacy
    return PrivacyPolicy(
        excluded_addresses=frozenset(a.strip().lower() for a in privacy.excluded_addresses if a.strip()),
        excluded_domains=frozenset(
            d.strip().lower().lstrip("@") for d in privacy.excluded_domains if d.strip()
        ),
        excluded_subject_keywords=frozenset(k for k in privacy.excluded_subject_keywords if k.strip()),
        keep_subjects=privacy.keep_subjects,
        drop_internal_only=privacy.drop_internal_only,
    )


def domains_of(emails: Iterable[str]) -> frozenset[str]:
    """The domains of the reps' addresses: the tenant's own domains when none are configured."""
    return frozenset(
        e.rsplit("@", 1)[1].strip().lower() for e in emails if e.count("@") == 1 and e.split("@")[1]
    )


def phone_region(settings: IngestTenantSettings) -> str:
    """The region a number without ``+`` is read in, for every ingest path (CRM sync, canonical
    events, vendor webhooks): one place, so the tenant-settings contract can rewire it."""
    return settings.default_phone_region.upper()


def webhook_config(
    tenant_id: str, settings: IngestTenantSettings, rep_domains: frozenset[str]
) -> TenantWebhookConfig:
    configured = settings.internal_domains
    internal = (
        frozenset(d.strip().lower().lstrip("@") for d in configured if d.strip())
        if configured is not None
        else rep_domains
    )
    return TenantWebhookConfig(
        tenant_id=tenant_id,
        internal_domains=internal,
        default_phone_region=phone_region(settings),
        salesforce_organization_id=settings.salesforce_organization_id,
    )
