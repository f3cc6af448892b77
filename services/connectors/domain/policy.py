"""What the tenant's privacy settings mean for what a connector may fetch."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class FetchPolicy:
    """``subject_needed``: ask the vendor for subjects at all.

    Subjects are fetched when the tenant keeps them, or when it excludes activities by subject
    keyword (ingest must see the subject to withhold the activity; it then drops the subject
    before anything is stored unless ``keep_subjects``). Otherwise they are never requested.
    """

    keep_subjects: bool = False
    subject_needed: bool = False


def fetch_policy(settings: Mapping[str, Any]) -> FetchPolicy:
    """The policy from ``tenants.settings``; a malformed ``privacy`` fetches the least (no subjects)."""
    privacy = settings.get("privacy")
    if not isinstance(privacy, Mapping):
        return FetchPolicy()
    keep = privacy.get("keep_subjects") is True
    keywords = privacy.get("excluded_subject_keywords")
    has_keywords = isinstance(keywords, list) and any(isinstance(k, str) and k.strip() for k in keywords)
    return FetchPolicy(keep_subjects=keep, subject_needed=keep or has_keywords)
