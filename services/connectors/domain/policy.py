"""What the tenant's privacy settings mean for what a connector may fetch."""

from __future__ import annotations

from dataclasses import dataclass

from libs.common.calendar_holds import hold_word
from libs.common.contracts.tenant_settings import TenantSettings


@dataclass(frozen=True, slots=True)
class FetchPolicy:
    """``subject_needed``: ask the vendor for subjects at all.

    Subjects are fetched when the tenant keeps them, or when it excludes activities by subject
    keyword (ingest must see the subject to withhold the activity; it then drops the subject
    before anything is stored unless ``keep_subjects``). Otherwise mail subjects are never
    requested; a calendar event's title is (a hold sent to a colleague is told from a meeting by
    its title alone), and only the word of a hold leaves the connector (``forwarded_title``).
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


def forwarded_title(title: object, policy: FetchPolicy) -> str | None:
    """What of a calendar event's title leaves the connector: all of it when the tenant keeps or
    filters on subjects; otherwise the word alone when it labels a hold (``hold`` for "HOLD: Acme
    demo", which ingest reads as a hold and drops before anything is stored), else nothing."""
    if not isinstance(title, str):
        return None
    return title if policy.subject_needed else hold_word(title)
