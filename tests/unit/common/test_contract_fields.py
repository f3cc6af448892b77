"""The shared field rules: what each type refuses, and the reason a client reads."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from libs.common.contracts.fields import (
    Amount,
    Count,
    DurationSeconds,
    Revision,
    SafeDate,
    SafeStr,
    SafeText,
    StrictBool,
    UtcDatetime,
    check_line,
    check_utc_datetime,
    reason_of,
)


class Sample(BaseModel):
    line: SafeStr = ""
    text: SafeText = ""
    at: UtcDatetime = datetime(2026, 1, 1, tzinfo=UTC)
    day: SafeDate = date(2026, 1, 1)
    revision: Revision = 0
    duration: DurationSeconds = 0
    count: Count = 0
    amount: Amount | None = None
    flag: StrictBool = False


def refused(**fields: Any) -> tuple[str, str]:
    """(field, reason) of the first error."""
    with pytest.raises(ValidationError) as caught:
        Sample.model_validate(fields)
    error = caught.value.errors()[0]
    return ".".join(map(str, error["loc"])), reason_of(error)


@pytest.mark.parametrize(
    ("fields", "field", "reason"),
    [
        ({"line": "a\x00b"}, "line", "must not contain a control character (U+0000 at position 1)"),
        ({"line": "tab\there"}, "line", "must not contain a control character (U+0009 at position 3)"),
        ({"text": "bell\x07"}, "text", "must not contain a control character (U+0007 at position 4)"),
        # DEL, C1 controls (NEL is a line break) and noncharacters have no place in an identifier.
        ({"line": "rep\x7f"}, "line", "must not contain a control character (U+007F at position 3)"),
        ({"line": "rep\x85x"}, "line", "must not contain a control character (U+0085 at position 3)"),
        ({"line": "a\x9f"}, "line", "must not contain a control character (U+009F at position 1)"),
        ({"line": "a\ufdd0"}, "line", "must not contain a Unicode noncharacter (U+FDD0 at position 1)"),
        ({"line": "a\uffff"}, "line", "must not contain a Unicode noncharacter (U+FFFF at position 1)"),
        (
            {"line": "id\U0010fffe"},
            "line",
            "must not contain a Unicode noncharacter (U+10FFFE at position 2)",
        ),
        ({"line": "a\ud800"}, "line", "must be valid Unicode text (a lone surrogate is not)"),
        (
            {"at": "0001-01-01T00:00:00+14:00"},
            "at",
            "Input should be greater than or equal to 1970-01-01T00:00:00Z",
        ),
        ({"at": "2200-01-01T00:00:00Z"}, "at", "Input should be less than 2200-01-01T00:00:00Z"),
        (
            {"at": "2026-01-01T00:00:00"},
            "at",
            "must carry a timezone offset (2026-11-02T10:00:00Z or 2026-11-02T10:00:00+01:00)",
        ),
        ({"day": "1969-12-31"}, "day", "Input should be greater than or equal to 1970-01-01"),
        # Read as Unix seconds they were 1970-08-23 and 2025-12-02 (a digit string likewise).
        ({"at": "20261201"}, "at", "must be ISO 8601 text, not a number"),
        ({"at": 1764670000}, "at", "must be ISO 8601 text, not a number"),
        ({"at": 1764670000.5}, "at", "must be ISO 8601 text, not a number"),
        ({"at": " 1764670000000 "}, "at", "must be ISO 8601 text, not a number"),
        ({"day": 0}, "day", "must be ISO 8601 text, not a number"),
        ({"day": "1764633600"}, "day", "must be ISO 8601 text, not a number"),
        ({"revision": 2**63}, "revision", "Input should be less than or equal to 9223372036854775807"),
        ({"revision": "5"}, "revision", "Input should be a valid integer"),
        ({"duration": True}, "duration", "Input should be a valid integer"),
        ({"duration": 30.0}, "duration", "Input should be a valid integer"),
        ({"count": 2**31}, "count", "Input should be less than or equal to 2147483647"),
        ({"amount": "NaN"}, "amount", "Input should be a finite number"),
        ({"amount": Decimal("1e16")}, "amount", "Input should be less than or equal to 1000000000000000"),
        ({"amount": "0.0000001"}, "amount", "Decimal input should have no more than 6 decimal places"),
        ({"flag": "true"}, "flag", "Input should be a valid boolean"),
    ],
)
def test_each_rule_refuses_with_a_reason_naming_what_is_wrong(
    fields: dict[str, Any], field: str, reason: str
) -> None:
    assert refused(**fields) == (field, reason)


def test_the_edges_of_what_is_accepted() -> None:
    accepted = Sample.model_validate(
        {
            "line": "Ana Müller 😀 \u00a0\ufdcf\ufdf0\ufffd\U0001fffd",
            "text": "line one\nline two\ttabbed\r\n",
            # 1970-01-01T00:00:59Z: inside, though its local date is 1969.
            "at": "1969-12-31T23:59:59-00:01",
            "day": "2199-12-31",
            "revision": 2**63 - 1,
            "duration": 86_400,
            "amount": "-999999999999999.999999",
            "flag": True,
        }
    )
    assert accepted.at.utcoffset() == timedelta(minutes=-1)  # kept in the offset it was given
    assert accepted.amount == Decimal("-999999999999999.999999")


def test_the_helpers_for_values_outside_models() -> None:
    assert check_line("rep-1") == "rep-1"
    with pytest.raises(ValueError, match="U\\+0000 at position 3"):
        check_line("rep\x00")
    with pytest.raises(ValueError, match="lone surrogate"):
        check_line("\udfff")
    plus14 = timezone(timedelta(hours=14))
    assert check_utc_datetime(datetime(1970, 1, 1, 14, tzinfo=plus14)).tzinfo is plus14
    for bad in (datetime(1, 1, 1, tzinfo=plus14), datetime(2026, 1, 1), datetime(2200, 1, 1, tzinfo=UTC)):
        with pytest.raises(ValueError, match="must"):
            check_utc_datetime(bad)
