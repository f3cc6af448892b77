"""One meeting, several sources: the deal a CRM user filed it on survives the other sources' revisions.

Ingest publishes each source's sighting of one meeting under one canonical activity id
(docs/webhooks.md, "One meeting, several sources"), and the activity is its newest revision. A
HubSpot meeting filed on a deal (its association), joined by a Google Calendar event edited
afterwards, would then be decided by Google's attendees alone. So each source's latest word on
the deal is kept apart from the revision (``SourceDeals``: source -> ``(revision, deal)``, the
deal ``None`` when that revision names none), and the activity is decided with:

* its newest revision's own deal when it names one (the source that spoke last decides);
* else the deal named by the latest revision of another source that names one (the newest of
  them when several do);
* else none: the cascade decides by the newest revision's people and time, as before.

A CRM revision without the association (the user removed the link) replaces that source's
word, so the link goes. A source that never names deals (a calendar) says nothing about them:
its revisions change the meeting's people, time and outcome, never a CRM's link.

A call or email two sources report is two activities, the second marked ``duplicate_of`` the
first (``domain.duplicates``), and metrics counts the first. The second report's word on the
deal is kept the same way on the counted report's row, so a call a CRM user filed on a deal
counts on it whichever report came first. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from libs.common.contracts.activities import ActivityKind
from libs.common.contracts.activities_fast import IngestedEvent, with_crm

#: source -> (its latest revision read, the deal it named then or None).
SourceDeals = Mapping[str, tuple[int, str | None]]

#: Only meetings are one activity across sources (a call or email is one activity per source:
#: its second report's word is recorded on the counted report when it is marked ``duplicate_of``).
SHARED_KINDS = frozenset({ActivityKind.MEETING})


def tracks_source_deals(activity: IngestedEvent) -> bool:
    """Whether this activity's sources' deals are kept (a meeting)."""
    return activity.kind in SHARED_KINDS


def record_sighting(held: SourceDeals, source: str, revision: int, deal_id: str | None) -> SourceDeals | None:
    """``held`` with this source's revision's word on the deal, or None when it is not news: an
    older (or the same) revision of the source than the one held. A revision naming no deal is
    recorded too: a CRM revision dropping the association may arrive before an older copy that
    names it, which must not bring the link back."""
    before = held.get(source)
    if before is not None and before[0] >= revision:
        return None
    return {**held, source: (revision, deal_id)}


def linked_deal(activity: IngestedEvent, held: SourceDeals) -> str | None:
    """The deal the activity is decided on: its own, else another source's latest explicit link."""
    if activity.crm.deal_id is not None:
        return activity.crm.deal_id
    return _latest_other(activity.source, held) if held else None


def _latest_other(source: str, held: SourceDeals) -> str | None:
    """Another source's latest explicit deal (apart from ``linked_deal``, run per activity: its
    comprehension made ``activity`` a cell on every call; ``performance.md``, nineteenth round)."""
    others = [(revision, deal) for other, (revision, deal) in held.items() if other != source and deal]
    return max(others)[1] if others else None


def with_source_deals(activity: IngestedEvent, held: SourceDeals) -> IngestedEvent:
    """The activity as it is decided: with another source's explicit deal when it names none."""
    deal_id = linked_deal(activity, held)
    if deal_id == activity.crm.deal_id:
        return activity
    crm = activity.crm
    return with_crm(activity, deal_id, crm.account_id, tuple(crm.contact_ids), crm.owner_rep_id)


def decode_source_deals(stored: Mapping[str, Sequence[Any]] | None) -> SourceDeals:
    """The stored JSON (``{source: [revision, deal]}``) as ``SourceDeals``."""
    return {source: (int(revision), deal) for source, (revision, deal) in (stored or {}).items()}


def encode_source_deals(held: SourceDeals) -> dict[str, list[Any]]:
    """``SourceDeals`` as stored."""
    return {source: [revision, deal] for source, (revision, deal) in sorted(held.items())}
