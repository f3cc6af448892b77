"""What the tenant's privacy settings mean for what a connector may fetch."""

from __future__ import annotations

from dataclasses import dataclass

from libs.common.contracts.tenant_settings import TenantSettings


@dataclass(frozen=True, slots=True)
class FetchPolicy:
    """``subject_needed``: ask the vendor for subjects at all.

    Subjects are fetched when the tenant keeps them, or when it excludes activities by subject
    keyword (ingest must see the subject to withhold the activity; it then drops the subject
    before anything is stored unless ``keep_subjects``). Otherwise they are never requested.
    """

    keep_subjects: bool = False
    subject_needed: bool = False


def fetch_policy(settings: TenantSettings | None) -> FetchPolicy:
    """The policy from the tenant's settings; settings that do not validate (None) fetch the least."""
    if settings is None:
        return FetchPolicy()
    privacy = settings.privacy
    needed = privacy.keep_subjects or any(k.strip() for k in privacy.excluded_subject_keywords)
    return FetchPolicy(keep_subjects=privacy.keep_subjects, subject_needed=needed)
