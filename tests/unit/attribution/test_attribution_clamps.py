"""The shortcuts of the per-candidate path give what they replace: the clamps written out instead
of ``min`` and ``max`` (which parse their keywords on every call in Python 3.11) the same floats,
to the bit (signed zeros, NaN and infinities included); ``_as_utc`` and ``_days`` the objects
``astimezone`` and ``timedelta`` give."""

from __future__ import annotations

import itertools
import math
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import orjson

from services.attribution.domain.matching import (
    EVIDENCE_STRENGTH,
    Evidence,
    _as_utc,
    _at_least_zero,
    _at_most_one,
    _days,
    _strength,
)
from services.attribution.handlers import _unit

VALUES = [
    0.0,
    -0.0,
    1.0,
    -1.0,
    0.5,
    1.5,
    1e-12,
    -1e-12,
    0.99999,
    1.00001,
    math.inf,
    -math.inf,
    math.nan,
    0,
    1,
    2,
]


def _same(one: float, other: float) -> bool:
    if isinstance(one, float) and math.isnan(one):
        return isinstance(other, float) and math.isnan(other)
    # repr tells -0.0 from 0.0 and 1 from 1.0
    return repr(one) == repr(other)


def test_the_clamps_are_min_and_max() -> None:
    for value in VALUES:
        assert _same(_at_least_zero(value), max(0.0, value)), value
        assert _same(_at_most_one(value), min(1.0, value)), value
        assert _same(_unit(value), max(0.0, min(1.0, value))), value
        assert _same(_at_most_one(_at_least_zero(value)), min(1.0, max(0.0, value))), value


def test_the_strength_of_evidence_is_the_max_with_a_default_of_zero() -> None:
    kinds = list(Evidence)
    compared = 0
    for size in range(4):
        for chosen in itertools.combinations(kinds, size):
            for container in (set(chosen), frozenset(chosen), list(chosen)):
                expected = max(map(EVIDENCE_STRENGTH.__getitem__, container), default=0.0)
                assert orjson.dumps(_strength(container)) == orjson.dumps(expected)
                compared += 1
    assert compared == 3 * sum(math.comb(len(kinds), n) for n in range(4))


def test_an_instant_in_utc_is_itself_and_any_other_as_astimezone_gives_it() -> None:
    moment = datetime(2026, 3, 29, 0, 30, 15, 123456, tzinfo=UTC)
    zones = [
        UTC,
        UTC,
        timezone(timedelta(hours=2)),
        timezone(timedelta(0)),
        ZoneInfo("Europe/Paris"),
    ]
    for zone in zones:
        local = moment.astimezone(zone)
        converted = _as_utc(local)
        assert converted == local.astimezone(UTC)
        assert converted.tzinfo is UTC
        assert (converted is local) == (local.astimezone(UTC) is local)
    assert _as_utc(moment) is moment


def test_the_days_are_timedelta_s() -> None:
    for days in (0, 1, 14, 365):
        assert _days(days) == timedelta(days=days)
        assert _days(days) is _days(days)
