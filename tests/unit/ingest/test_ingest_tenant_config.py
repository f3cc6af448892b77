from __future__ import annotations

import pytest

from services.ingest.domain.privacy import PrivacyPolicy
from services.ingest.domain.tenant_config import (
    InvalidTenantSettings,
    domains_of,
    privacy_policy,
    read_tenant_settings,
    webhook_config,
)


def test_privacy_settings_are_normalised_and_subjects_are_stripped_by_default() -> None:
    settings = read_tenant_settings(
        {
            "scoring_model": {"version": 3},
            "privacy": {
                "excluded_addresses": [" CEO@Acme.example "],
                "excluded_domains": ["@LawFirm.example", " "],
                "excluded_subject_keywords": ["Confidential"],
                "drop_internal_only": True,
            },
        }
    )
    assert privacy_policy(settings) == PrivacyPolicy(
        excluded_addresses=frozenset({"ceo@acme.example"}),
        excluded_domains=frozenset({"lawfirm.example"}),
        excluded_subject_keywords=frozenset({"confidential"}),
        keep_subjects=False,
        drop_internal_only=True,
    )
    assert privacy_policy(read_tenant_settings(None)) == PrivacyPolicy()


def test_configured_internal_domains_win_over_the_reps_domains() -> None:
    configured = read_tenant_settings({"internal_domains": ["Acme.example"], "default_phone_region": "gb"})
    derived = domains_of(["ana@acme.example", "Sam@EU.Acme.example", "not-an-email"])
    assert derived == frozenset({"acme.example", "eu.acme.example"})
    config = webhook_config("acme", configured, derived)
    assert (config.internal_domains, config.default_phone_region) == (frozenset({"acme.example"}), "GB")
    assert webhook_config("acme", read_tenant_settings({}), derived).internal_domains == derived


def test_a_misspelt_privacy_key_is_refused_rather_than_ignored() -> None:
    with pytest.raises(InvalidTenantSettings, match=r"privacy\.exclude_domains"):
        read_tenant_settings({"privacy": {"exclude_domains": ["x.example"]}})
