"""What ingest derives from a tenant's :class:`~libs.common.contracts.tenant_settings.TenantSettings`:
its privacy policy and the configuration webhook parsing needs, as pure values.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import suppress

from libs.common.contracts.fields import lower_email
from libs.common.contracts.tenant_settings import TenantSettings
from libs.common.personal_domains import company_domains
from libs.common.phones import e164_or_none
from services.ingest.domain.privacy import PrivacyPolicy
from services.ingest.domain.webhook_types import TenantWebhookConfig


def privacy_policy(settings: TenantSettings, internal_domains: frozenset[str] = frozenset()) -> PrivacyPolicy:
    """``internal_domains`` are the tenant's own (``webhook_config``), for ``drop_internal_only``."""
    privacy = settings.privacy
    return PrivacyPolicy(
        excluded_addresses=excluded_identities(privacy.excluded_addresses, phone_region(settings)),
        excluded_domains=frozenset(privacy.excluded_domains),
        excluded_subject_keywords=frozenset(k for k in privacy.excluded_subject_keywords if k.strip()),
        keep_subjects=privacy.keep_subjects,
        drop_internal_only=privacy.drop_internal_only,
        internal_domains=internal_domains,
    )


def excluded_identities(entries: Iterable[str], region: str) -> frozenset[str]:
    """The tenant's ``privacy.excluded_addresses`` as participants are compared with them: an
    address lower-cased, a phone also as the E.164 number ingest reads a participant's phone as (in
    the tenant's region), so ``+1 (415) 555-2671`` or ``(415) 555-2671`` pasted into the settings
    excludes the caller ``+14155552671`` (before 2026-12 it was saved and excluded nobody). An
    address is also read as a participant's is (``lower_email``: its domain punycode-decoded and
    composed), so ``CEO@xn--bcher-kva.example`` or a decomposed ``bücher`` excludes
    ``ceo@bücher.example`` (before, only as written, it excluded nobody)."""
    found: set[str] = set()
    for entry in entries:
        written = entry.strip().lower()
        if not written:
            continue
        found.add(written)
        if "@" in written:
            with suppress(ValueError):  # not an address: no participant's can equal it
                found.add(lower_email(written))
        elif (phone := e164_or_none(written, region)) is not None:
            found.add(phone)
    return frozenset(found)


def domains_of(emails: Iterable[str]) -> frozenset[str]:
    """The domains of the reps' addresses, free-mail ones included (``webhook_config`` leaves
    those out under the tenant's policy)."""
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
    """``rep_domains`` are the domains of the reps' addresses (``domains_of``): when the tenant
    configures no internal domains, its own are those but free-mail ones, as attribution reads
    them (``company_domains``): a rep who also writes from ``ana.seller@gmail.com`` does not make
    every customer writing from Gmail a colleague, nor their mail internal."""
    configured = settings.internal_domains
    return TenantWebhookConfig(
        tenant_id=tenant_id,
        internal_domains=frozenset(configured)
        if configured is not None
        else company_domains(rep_domains, settings.attribution.extra_personal_domains),
        default_phone_region=phone_region(settings),
        salesforce_organization_id=settings.salesforce_organization_id,
        rep_aliases=settings.rep_aliases,
        menu_extensions=frozenset(settings.menu_extensions),
        twilio_sip_domains=frozenset(settings.twilio_sip_domains),
    )
