from __future__ import annotations

import unicodedata

from libs.common.contracts.fields import lower_email
from libs.common.contracts.tenant_settings import TenantSettings
from services.ingest.domain.privacy import PrivacyPolicy
from services.ingest.domain.tenant_config import domains_of, privacy_policy, webhook_config


def test_privacy_settings_are_normalised_and_subjects_are_stripped_by_default() -> None:
    settings = TenantSettings.model_validate(
        {
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
    assert privacy_policy(TenantSettings()) == PrivacyPolicy()


def test_excluded_phones_are_read_as_participants_phones_are() -> None:
    """An admin pastes numbers as people write them; participants' phones are E.164."""
    settings = TenantSettings.model_validate(
        {
            "time_zone": "America/New_York",
            "privacy": {"excluded_addresses": ["+1 (415) 555-2671", "(212) 555-0100", "not a number"]},
        }
    )
    assert privacy_policy(settings).excluded_addresses == frozenset(
        {"+1 (415) 555-2671", "+14155552671", "(212) 555-0100", "+12125550100", "not a number"}
    )


def test_excluded_addresses_are_read_as_participants_addresses_are() -> None:
    """Participants' addresses go through ``lower_email`` (IDNA decoded, composed): an entry written
    in punycode or typed decomposed (NFD) matches them too."""
    nfd = unicodedata.normalize("NFD", "Buyer@Bücher.example")
    settings = TenantSettings.model_validate(
        {"privacy": {"excluded_addresses": ["CEO@xn--bcher-kva.example", nfd, "ana@"]}}
    )
    addresses = privacy_policy(settings).excluded_addresses
    assert {"ceo@bücher.example", "buyer@bücher.example"} <= addresses
    assert lower_email("ceo@xn--bcher-kva.example") in addresses
    assert lower_email(unicodedata.normalize("NFD", "buyer@bücher.example")) in addresses
    assert "ana@" in addresses


def test_configured_internal_domains_win_over_the_reps_domains() -> None:
    configured = TenantSettings.model_validate(
        {"internal_domains": ["Acme.example"], "default_phone_region": "gb"}
    )
    derived = domains_of(["ana@acme.example", "Sam@EU.Acme.example", "not-an-email"])
    assert derived == frozenset({"acme.example", "eu.acme.example"})
    config = webhook_config("acme", configured, derived)
    assert (config.internal_domains, config.default_phone_region) == (frozenset({"acme.example"}), "GB")
    assert webhook_config("acme", TenantSettings(), derived).internal_domains == derived


def test_free_mail_domains_of_the_reps_are_not_internal() -> None:
    """A rep who also writes from Gmail does not make Gmail the company's: with no internal
    domains configured, the reps' domains but free-mail ones (the list attribution uses)."""
    derived = domains_of(["ana@acme.example", "ana.seller@gmail.com", "bo@hotmail.co.uk", "cy@acme.io"])
    assert derived == frozenset({"acme.example", "gmail.com", "hotmail.co.uk", "acme.io"})
    assert webhook_config("acme", TenantSettings(), derived).internal_domains == frozenset(
        {"acme.example", "acme.io"}
    )
    extra = TenantSettings.model_validate({"attribution": {"extra_personal_domains": ["acme.io"]}})
    assert webhook_config("acme", extra, derived).internal_domains == frozenset({"acme.example"})
    # Configured domains are the tenant's word, free-mail or not.
    configured = TenantSettings.model_validate({"internal_domains": ["gmail.com"]})
    assert webhook_config("acme", configured, derived).internal_domains == frozenset({"gmail.com"})


def test_the_phone_region_defaults_to_the_country_of_the_time_zone() -> None:
    assert (
        webhook_config("acme", TenantSettings(time_zone="Europe/Paris"), frozenset()).default_phone_region
        == "FR"
    )
    assert webhook_config("acme", TenantSettings(time_zone="UTC"), frozenset()).default_phone_region == "US"


def test_the_menu_extensions_reach_webhook_parsing() -> None:
    settings = TenantSettings.model_validate({"menu_extensions": ["62944090001", " 100 "]})
    assert webhook_config("acme", settings, frozenset()).menu_extensions == frozenset({"62944090001", "100"})
    assert webhook_config("acme", TenantSettings(), frozenset()).menu_extensions == frozenset()
