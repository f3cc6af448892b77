"""What a batch of contributions changes in its deals' engagement: merged, or recomputed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.metrics.domain.engagement import DealEngagementChange, Engagement, engagement_changes, keeps

T = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)


def _e(*deals: str, hours: int = 0, replied: bool = False, contacts: tuple[str, ...] = ()) -> Engagement:
    return Engagement(tuple(deals), T + timedelta(hours=hours), replied, frozenset(contacts))


def test_new_contributions_merge_per_deal_latest_times_and_union_of_contacts() -> None:
    changes = engagement_changes(
        [
            (None, _e("d2", "d1", hours=1, contacts=("c2",))),
            (None, _e("d1", hours=3, replied=True, contacts=("c1", "c2"))),
            (None, _e("d1", hours=2, replied=True, contacts=("c3",))),
            (None, _e("d1", hours=4)),
        ]
    )
    assert changes == [
        DealEngagementChange("d1", False, T + timedelta(hours=4), T + timedelta(hours=3), ("c1", "c2", "c3")),
        DealEngagementChange("d2", False, T + timedelta(hours=1), None, ("c2",)),
    ]


def test_a_version_that_keeps_what_the_old_gave_merges() -> None:
    old = _e("d1", hours=1, replied=True, contacts=("c1",))
    assert keeps(old, _e("d1", "d2", hours=1, replied=True, contacts=("c1", "c2")), "d1")
    assert keeps(old, _e("d1", hours=2, replied=True, contacts=("c1",)), "d1")
    assert keeps(_e("d1", hours=1), _e("d1", hours=1, replied=True), "d1")
    assert engagement_changes([(old, _e("d1", hours=2, replied=True, contacts=("c1",)))]) == [
        DealEngagementChange("d1", False, T + timedelta(hours=2), T + timedelta(hours=2), ("c1",))
    ]


def test_a_version_that_takes_anything_away_recomputes_the_deal() -> None:
    old = _e("d1", "d2", hours=2, replied=True, contacts=("c1",))
    assert not keeps(old, None, "d1")  # retracted
    assert not keeps(old, _e("d2", hours=2, replied=True, contacts=("c1",)), "d1")  # moved off d1
    assert not keeps(old, _e("d1", hours=1, replied=True, contacts=("c1",)), "d1")  # earlier
    assert not keeps(old, _e("d1", hours=2, contacts=("c1",)), "d1")  # no longer a reply
    assert not keeps(old, _e("d1", hours=2, replied=True), "d1")  # a contact gone
    # Moved from d1 to d3: d1 recomputed, d2 merged, d3 merged; a deal also recomputed is not merged.
    changes = engagement_changes(
        [
            (old, _e("d2", "d3", hours=2, replied=True, contacts=("c1",))),
            (None, _e("d1", hours=5, contacts=("c9",))),
            (_e("d4", hours=1), None),
        ]
    )
    at = T + timedelta(hours=2)
    assert changes == [
        DealEngagementChange("d1", recompute=True),
        DealEngagementChange("d4", recompute=True),
        DealEngagementChange("d2", False, at, at, ("c1",)),
        DealEngagementChange("d3", False, at, at, ("c1",)),
    ]
