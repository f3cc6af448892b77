"""``isoformat`` writes the text ``isoformat()`` writes: the attribution explanation's
``ingested_at`` (published) and ``rep.team_on`` (stored) keep their bytes."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from libs.common.contracts.fields import isoformat


class _Stamp(datetime):
    """A subclass: left to its own ``isoformat``."""

    def isoformat(self, sep: str = "T", timespec: str = "auto") -> str:
        return "mine"


def _instants() -> list[datetime]:
    rng = random.Random(20261204)
    base = datetime(2026, 12, 4, 21, 58, 27, tzinfo=UTC)
    fixed = [
        base,
        base.replace(microsecond=1),
        base.replace(microsecond=10),
        base.replace(microsecond=120000),
        base.replace(microsecond=500000),
        base.replace(microsecond=999999),
        datetime(1, 1, 1, tzinfo=UTC),
        datetime(999, 1, 1, 0, 0, 0, 5, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(2024, 2, 29, 12, 0, tzinfo=UTC),
    ]
    spread = [
        datetime(1, 1, 1, tzinfo=UTC) + timedelta(microseconds=rng.randrange(315_537_897_600_000_000))
        for _ in range(5_000)
    ]
    return fixed + spread + [t.replace(microsecond=0) for t in spread[:500]]


def test_instants_in_utc_as_isoformat_writes_them() -> None:
    for instant in _instants():
        assert isoformat(instant) == instant.isoformat()


def test_dates_as_isoformat_writes_them() -> None:
    rng = random.Random(7)
    days = [date(1, 1, 1), date(999, 12, 31), date(2026, 12, 4), date(9999, 12, 31)]
    days += [date.fromordinal(rng.randrange(1, 3_652_060)) for _ in range(2_000)]
    for day in days:
        assert isoformat(day) == day.isoformat()


@pytest.mark.parametrize(
    "value",
    [
        datetime(2026, 12, 4, 21, 58, 27, 123456, tzinfo=timezone(timedelta(hours=2))),
        datetime(2026, 12, 4, 21, 58, 27, tzinfo=timezone(timedelta(hours=-5, minutes=-30))),
        datetime(2026, 12, 4, 21, 58, 27, 123456),
        datetime(2026, 12, 4, 21, 58, 27, 123456, tzinfo=timezone(timedelta(0), "UTC")),
        _Stamp(2026, 12, 4, tzinfo=UTC),
    ],
    ids=["plus-two", "minus-five-thirty", "naive", "another-utc-object", "subclass"],
)
def test_anything_else_is_isoformat_itself(value: datetime) -> None:
    assert isoformat(value) == value.isoformat()
