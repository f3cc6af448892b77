"""What a batch of contributions changes in each deal's engagement, without reading its history.

A deal's engagement (last activity, last buyer reply, distinct engaged contacts) is taken over
the contributions that engage it (``definitions.engaged_deal_ids``). A new contribution merges
into it exactly (the later times, the union of contacts). A replaced one merges too when the new
version still gives the deal everything the old one gave; otherwise (the activity moved to
another deal or was retracted, its time moved earlier, its buyer reply or a contact went) the
deal is recomputed from its contributions, since a maximum cannot be taken back.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import msgspec


# Frozen msgspec structs rather than frozen dataclasses: one ``Engagement`` is built per
# contribution written, and a frozen dataclass sets each field through ``object.__setattr__``.
class Engagement(msgspec.Struct, frozen=True):
    """What one contribution gives each deal it engages."""

    deal_ids: tuple[str, ...]
    occurred_at: datetime
    #: It is a buyer answer (``definitions.buyer_answered``): its time is a reply time too.
    replied: bool
    contact_ids: frozenset[str]


class DealEngagementChange(msgspec.Struct, frozen=True):
    """One deal's change in a batch: recompute it, or merge these figures into it."""

    deal_id: str
    recompute: bool
    last_activity_at: datetime | None = None
    last_buyer_reply_at: datetime | None = None
    contact_ids: tuple[str, ...] = ()


def keeps(old: Engagement, new: Engagement | None, deal_id: str) -> bool:
    """Whether ``new`` still gives ``deal_id`` everything ``old`` gave it, so that merging ``new``
    into a figure that counted ``old`` gives what recomputing would."""
    return (
        new is not None
        and deal_id in new.deal_ids
        and new.occurred_at >= old.occurred_at
        and (new.replied or not old.replied)
        and old.contact_ids <= new.contact_ids
    )


def engagement_changes(
    versions: Iterable[tuple[Engagement | None, Engagement | None]],
) -> list[DealEngagementChange]:
    """Per deal, what (previous, written) contributions change: recompute rows first, then merges,
    each in deal order. ``None`` is no contribution (a new activity) or one that engages nothing."""
    recompute: set[str] = set()
    merged: dict[str, tuple[datetime, datetime | None, set[str]]] = {}
    for old, new in versions:
        if old is not None:
            recompute.update(deal for deal in old.deal_ids if not keeps(old, new, deal))
        if new is None:
            continue
        reply_at = new.occurred_at if new.replied else None
        for deal in new.deal_ids:
            current = merged.get(deal)
            if current is None:
                merged[deal] = (new.occurred_at, reply_at, set(new.contact_ids))
                continue
            last_at, last_reply, contacts = current
            if reply_at is not None and (last_reply is None or reply_at > last_reply):
                last_reply = reply_at
            contacts.update(new.contact_ids)
            # ``max(last_at, new.occurred_at)``, without the builtin's call: the first of equals.
            occurred_at = new.occurred_at
            merged[deal] = (occurred_at if occurred_at > last_at else last_at, last_reply, contacts)
    changes = [DealEngagementChange(deal, recompute=True) for deal in sorted(recompute)]
    changes += [
        DealEngagementChange(deal, False, last_at, last_reply, tuple(sorted(contacts)))
        for deal, (last_at, last_reply, contacts) in sorted(merged.items())
        if deal not in recompute
    ]
    return changes
