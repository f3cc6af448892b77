"""Reference aggregations, computed from scratch: the oracle the SQL rollups must equal.

Delivery is at least once and unordered: an event may be redelivered, superseded by a
higher version (a re-attribution) or arrive days late. The rollups are therefore a
function of the *set* of events seen, keeping only each activity's highest version, and
must not depend on arrival order. ``reference_aggregates`` states that function;
``IncrementalRollup`` is the retract-and-add fold a consumer performs, which tests prove
equal to it for every order.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from libs.common.contracts.attribution import ActivityAttributedV1
from libs.common.contracts.crm import DealV1, TeamMembershipV1
from services.metrics.domain.definitions import (
    DEAL_WON,
    ZERO,
    MetricCounts,
    MetricSettings,
    RollupKey,
    buyer_answered,
    contribution_of,
    engaged_deal_ids,
    rollup_keys,
    team_on,
    won_deal_keys,
    won_deal_of,
)

ActivityRef = tuple[str, uuid.UUID]
Aggregates = dict[RollupKey, MetricCounts]


def _precedence(event: ActivityAttributedV1) -> tuple[int, datetime, str]:
    # Versions are immutable, so equal versions should be equal events; should a producer
    # ever break that, the later decision (then the payload) wins whatever the order.
    return (event.version, event.decided_at, event.model_dump_json())


def latest_versions(events: Iterable[ActivityAttributedV1]) -> dict[ActivityRef, ActivityAttributedV1]:
    """Each activity's highest version; a redelivered version counts once."""
    latest: dict[ActivityRef, ActivityAttributedV1] = {}
    for event in events:
        ref = (event.tenant_id, event.activity_id)
        held = latest.get(ref)
        if held is None or _precedence(event) > _precedence(held):
            latest[ref] = event
    return latest


def _add(cells: Aggregates, key: RollupKey, counts: MetricCounts) -> None:
    cells[key] = cells.get(key, ZERO) + counts


def reference_aggregates(events: Iterable[ActivityAttributedV1], settings: MetricSettings) -> Aggregates:
    """Counters per (level, entity id, tenant-local day) from the latest version of every activity.

    Cells whose counters are all zero are left out: compare with the SQL rollups after
    dropping their all-zero rows (a re-attribution empties the cell it leaves).
    """
    cells: Aggregates = {}
    for event in latest_versions(events).values():
        counts = contribution_of(event, settings)
        if counts.is_zero():
            continue
        for key in rollup_keys(event, settings):
            _add(cells, key, counts)
    return {key: counts for key, counts in cells.items() if not counts.is_zero()}


class IncrementalRollup:
    """The consumer's fold: per activity, retract the version held and add the newer one."""

    def __init__(self, settings: MetricSettings) -> None:
        self._settings = settings
        self._held: dict[ActivityRef, ActivityAttributedV1] = {}
        self._cells: Aggregates = {}

    def apply(self, event: ActivityAttributedV1) -> bool:
        """Fold one event in; False (and no change) when it is a redelivery or older than the held version."""
        ref = (event.tenant_id, event.activity_id)
        held = self._held.get(ref)
        if held is not None:
            if _precedence(event) <= _precedence(held):
                return False
            retracted = ZERO - contribution_of(held, self._settings)
            for key in rollup_keys(held, self._settings):
                _add(self._cells, key, retracted)
        self._held[ref] = event
        added = contribution_of(event, self._settings)
        for key in rollup_keys(event, self._settings):
            _add(self._cells, key, added)
        return True

    def cells(self) -> Aggregates:
        return {key: counts for key, counts in self._cells.items() if not counts.is_zero()}


def reference_deals_won(
    deals: Iterable[DealV1], settings: MetricSettings, memberships: Iterable[TeamMembershipV1] = ()
) -> Aggregates:
    """``deals_won`` per cell from the latest CRM state of each deal (the highest ``updated_at``).

    A deal reopened or deleted after being won stops counting; the team is the owner's
    team on the day the deal closed.
    """
    latest: dict[str, DealV1] = {}
    for deal in deals:
        held = latest.get(deal.id)
        if held is None or (deal.updated_at, deal.model_dump_json()) > (
            held.updated_at,
            held.model_dump_json(),
        ):
            latest[deal.id] = deal
    membership_list = list(memberships)
    cells: Aggregates = {}
    for deal in latest.values():
        won = won_deal_of(deal, settings)
        if won is None:
            continue
        team_id = (
            team_on(membership_list, won.owner_rep_id, won.day) if won.owner_rep_id is not None else None
        )
        for key in won_deal_keys(won, team_id):
            _add(cells, key, DEAL_WON)
    return cells


@dataclass(frozen=True, slots=True)
class DealEngagement:
    """What the stale-deal rules need about one deal, from its counted activities."""

    last_activity_at: datetime
    last_buyer_reply_at: datetime | None
    engaged_contact_ids: frozenset[str]


def reference_deal_engagement(
    events: Iterable[ActivityAttributedV1], settings: MetricSettings
) -> dict[str, DealEngagement]:
    """Per deal: latest engaging activity, latest buyer reply and distinct external contacts.

    The activities that engage a deal are ``engaged_deal_ids`` of each latest version: the
    one definition the stale-deal insight and the deal timeline share.
    """
    engagement: dict[str, DealEngagement] = {}
    for event in latest_versions(events).values():
        facts = event.facts
        counts = contribution_of(event, settings)
        is_reply = buyer_answered(
            counts.buyer_replies,
            counts.conversations,
            counts.meetings_held,
            counts.talk_seconds,
            counts.dials,
        )
        for deal_id in engaged_deal_ids(event):
            held = engagement.get(deal_id)
            last_activity = (
                facts.occurred_at if held is None else max(held.last_activity_at, facts.occurred_at)
            )
            replies = [facts.occurred_at] if is_reply else []
            if held is not None and held.last_buyer_reply_at is not None:
                replies.append(held.last_buyer_reply_at)
            contacts = frozenset(facts.external_contact_ids) | (
                held.engaged_contact_ids if held else frozenset()
            )
            engagement[deal_id] = DealEngagement(last_activity, max(replies, default=None), contacts)
    return engagement
