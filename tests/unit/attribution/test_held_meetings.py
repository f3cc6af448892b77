"""A meeting booked ahead is held once its end is ``grace`` past (``domain.held``): only one still
``scheduled``, whatever form it was decoded in; a cancelled or no-show one, a meeting moved ahead,
a call, never."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from libs.common.contracts.activities import ActivityIngestedV1, ActivityKind, Outcome
from libs.common.contracts.activities_fast import Ingested, decode_ingested, encode_ingested
from services.attribution.domain.held import as_held, held_by, held_cutoff, meeting_end

START = datetime(2026, 12, 7, 17, 0, tzinfo=UTC)
GRACE = timedelta(minutes=15)


def _meeting(outcome: str = "scheduled", duration: int = 1800, kind: str = "meeting") -> ActivityIngestedV1:
    return ActivityIngestedV1.model_validate(
        {
            "tenant_id": "acme",
            "activity_id": "7d1f2d38-5c1e-4d59-9a43-2f0c4a3b9e11",
            "ingested_at": "2026-12-06T09:00:00Z",
            "source": "google_calendar",
            "external_id": "ev-1",
            "kind": kind,
            "direction": "outbound",
            "outcome": outcome,
            "occurred_at": START.isoformat(),
            "duration_seconds": duration,
            "participants": [{"email": "ana@acme.example", "role": "organizer"}],
            "revision": 1796461200000,
        }
    )


def test_the_meeting_ends_at_its_start_plus_its_length_or_at_its_start_without_one() -> None:
    assert meeting_end(_meeting()) == datetime(2026, 12, 7, 17, 30, tzinfo=UTC)
    assert meeting_end(_meeting(duration=0)) == START
    assert held_cutoff(datetime(2026, 12, 7, 18, 0, tzinfo=UTC), GRACE) == datetime(
        2026, 12, 7, 17, 45, tzinfo=UTC
    )


@pytest.mark.parametrize(
    ("now", "held"),
    [
        (START - timedelta(days=1), False),  # synced a day ahead
        (datetime(2026, 12, 7, 17, 30, tzinfo=UTC), False),  # just ended: within the grace
        (datetime(2026, 12, 7, 17, 44, 59, tzinfo=UTC), False),
        (datetime(2026, 12, 7, 17, 45, tzinfo=UTC), True),  # ended 15 minutes ago
        (START + timedelta(days=30), True),
    ],
)
def test_a_scheduled_meeting_is_held_once_it_ended_a_grace_ago(now: datetime, held: bool) -> None:
    assert held_by(_meeting(), now, GRACE) is held


def test_without_a_length_its_start_counts_and_a_grace_of_zero_holds_it_at_once() -> None:
    assert held_by(_meeting(duration=0), START + GRACE, GRACE)
    assert not held_by(_meeting(duration=0), START + GRACE - timedelta(seconds=1), GRACE)
    assert held_by(_meeting(), START + timedelta(minutes=30), timedelta(0))


@pytest.mark.parametrize("outcome", ["held", "cancelled", "no_show"])
def test_only_a_scheduled_meeting_moves(outcome: str) -> None:
    assert not held_by(_meeting(outcome), START + timedelta(days=2), GRACE)


def test_a_call_is_never_held() -> None:
    assert not held_by(_meeting("connected", kind="call"), START + timedelta(days=2), GRACE)


def test_held_keeps_everything_else_and_its_revision_in_either_form() -> None:
    model = _meeting()
    struct = decode_ingested(encode_ingested(model))
    assert isinstance(struct, Ingested)
    for before in (model, struct):
        after = as_held(before)
        assert type(after) is type(before)
        assert after.outcome is Outcome.HELD
        assert after.kind is ActivityKind.MEETING
        assert (after.revision, after.occurred_at, after.duration_seconds) == (1796461200000, START, 1800)
    assert encode_ingested(as_held(struct)) == encode_ingested(as_held(model))
    assert encode_ingested(as_held(model)) == encode_ingested(model).replace(b'"scheduled"', b'"held"')
