from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from services.metrics.adapters.read_models import InsightRow
from services.metrics.domain.alerts import retry_delay, sign, slack_body, slack_digest, standard_body
from services.metrics.refresher import insight_transitions


def test_the_signature_matches_the_standard_webhooks_test_vector() -> None:
    # The example of the Standard Webhooks specification (and the Svix libraries' tests).
    assert (
        sign(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            b'{"test": 2432232314}',
        )
        == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    )


def test_bodies() -> None:
    change = {
        "change": "appeared",
        "kind": "at_risk_rep",
        "subject_id": "rep-7",
        "team_id": "team-east",
        "reasons": ["no_activity", "behind_goal"],
    }
    assert slack_body(change) == {"text": "Rep rep-7 is at risk (team-east): no activity, behind goal"}
    assert slack_body({**change, "change": "cleared", "team_id": None}) == {
        "text": "Cleared: rep rep-7 is at risk no longer (no activity, behind goal)"
    }
    at = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    assert standard_body("insight.changed", change, at) == {
        "type": "insight.changed",
        "timestamp": "2026-11-25T12:00:00Z",
        "data": change,
    }
    digest = {
        "week_start": "2026-11-16",
        "manager_id": "rep-m",
        "reps": [1, 2],
        "at_risk_reps": [1],
        "bright_spots": [],
        "stale_deals": [1, 2, 3],
    }
    assert slack_digest(digest) == {
        "text": "Week of 2026-11-16 for rep-m: 2 reps, 1 at risk, 0 bright spots, 3 stale deals"
    }


def test_retries_back_off_exponentially_up_to_the_cap() -> None:
    base, cap = timedelta(seconds=30), timedelta(minutes=5)
    assert [retry_delay(n, base, cap).total_seconds() for n in range(1, 7)] == [30, 60, 120, 240, 300, 300]


def test_transitions_are_appearances_and_clearances_not_changes_of_reason() -> None:
    week = date(2026, 11, 16)
    before: list[InsightRow] = [
        ("at_risk_rep", "rep-a", "t", week, ["no_activity"], {}),
        ("stale_deal", "deal-1", "t", None, ["no_recent_activity"], {"days_since_activity": 15}),
    ]
    after: list[InsightRow] = [
        ("at_risk_rep", "rep-a", "t", week, ["no_activity", "behind_goal"], {}),
        ("bright_spot", "rep-b", "t", week, ["conversations"], {}),
    ]

    assert insight_transitions(before, after) == [
        ("appeared", after[1]),
        ("cleared", before[1]),
    ]
    assert insight_transitions(after, after) == []
