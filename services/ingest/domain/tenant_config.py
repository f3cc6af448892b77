"""What ingest derives from a tenant's :class:`~libs.common.contracts.tenant_settings.TenantSettings`:
its privacy policy and the configuration webhook parsing needs, as pure values.
"""

from __future__ import annotations

from collections.abc import Iterable

from libs.common.contracts.tenant_settings import TenantSettings
from services.ingest.domain.privacy import PrivacyPolicy
from services.ingest.domain.webhook_types import TenantWebhookConfig


def privacy_policy(settings: TenantSettings) -> PrivacyPolicy:
    privacy = settings.privacy
    return PrivacyPolicy(
        excluded_addresses=frozenset(a.strip().lower() for a in privacy.excluded_addresses if a.strip()),
        excluded_domains=frozenset(privacy.excluded_domains),
        excluded_subject_keywords=frozenset(k for k in privacy.excluded_subject_keywords if k.strip()),
        keep_subjects=privacy.keep_subjects,
        drop_internal_only=privacy.drop_internal_only,
    )


def domains_of(emails: Iterable[str]) -> frozenset[str]:
    """The domains of the reps' addresses: the tenant's own domains when none are configured."""
    return frozenset(
        e.rsplit("@", 1)[1].strip().lower() for e in emails if e.count("@") == 1 and e.split("@")[1]
    )


def phone_region(settings: TenantSettings) -> str:
    """The region a number without ``+`` is read in, for every ingest path (CRM sync, canonical
    events, vendor webhooks): the tenant's setting, else the country of its time zone."""
    return settings.phone_region


def webhook_config(
    tenant_id: str, settings: TenantSettings, rep_domains: frozenset[str]
) -> TenantWebhookConfig:
    configured = settings.internal_domains
    return TenantWebhookConfig(
        tenant_id=tenant_id,
        internal_domains=frozenset(configured) if configured is not None else rep_domains,
        default_phone_region=phone_region(settings),
        salesforce_organization_id=settings.salesforce_organization_id,
    )
