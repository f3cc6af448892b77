"""The bounded reason ``spm_ingest_ignored_total`` counts an ``ignored`` line under."""

from __future__ import annotations

from datetime import UTC, datetime

from services.ingest.domain import ignored
from services.ingest.domain.ignored import ignored_counts, ignored_reason
from services.ingest.domain.normalize import ALL_DAY_TIME, FREE_TIME, HOLD_TIME, ahead_reason, not_ahead
from services.ingest.domain.webhook_types import AheadOfReceipt

RECEIVED = datetime(2026, 11, 24, 16, 0, tzinfo=UTC)


def _ahead_line() -> str:
    try:
        not_ahead(datetime(2099, 1, 1, tzinfo=UTC), RECEIVED, "[1].properties.hs_timestamp")
    except AheadOfReceipt as ahead:
        return f"[1] calls/42: {ahead_reason(ahead)}"
    raise AssertionError("2099 was read")


def test_each_line_has_one_of_a_few_reasons() -> None:
    lines = {
        _ahead_line(): "time_ahead",
        f"activities[0]: {HOLD_TIME}": "time_block",
        f"[0] events/e1: {ALL_DAY_TIME}": "time_block",
        f"value[2] AAMk: {FREE_TIME}": "time_block",
        f"activities[3]: {ignored.OLDER_THAN_A_TIME_BLOCK}": "older_state",
        f"google-calendar ev1: {ignored.READ_BEFORE_A_DELETION}": "older_state",
        "[1] emails/e2: hs_email_status=BOUNCED: the email was not sent": "not_done",
        "CallStatus=ringing: the call has not connected or ended yet": "not_done",
        "messages[0] m1: a draft was never sent": "not_done",
        "[0] notes/7: object type not used": "other",
        # A subject saying "in the future" is no time ahead.
        "meeting.updated: plans in the future": "other",
    }
    assert {line: ignored_reason(line) for line in lines} == lines
    assert set(lines.values()) == set(ignored.REASONS)
    assert ignored_counts(lines) == {
        "time_ahead": 1,
        "time_block": 3,
        "older_state": 2,
        "not_done": 3,
        "other": 2,
    }
