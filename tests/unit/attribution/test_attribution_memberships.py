"""A membership edited in place keeps the spell it ends (rules 2026.12.30), and one re-assigned
to another rep keeps the held rep's (rules 2026.12.32)."""

from __future__ import annotations

from datetime import UTC, date, datetime

from services.attribution.domain.memberships import (
    MembershipVersion,
    former_spell,
    former_spell_id,
    starts_after_spells,
)

JAN, MOVE, DEC = date(2026, 1, 1), date(2026, 11, 16), date(2026, 12, 1)
HELD_AT, SENT_AT = datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 11, 16, 9, tzinfo=UTC)
WEST = MembershipVersion("rep-ivy", "team-west", JAN, None, HELD_AT, False)


def _sent(team: str = "team-east", start: date = JAN, **fields: object) -> MembershipVersion:
    values: dict[str, object] = {
        "rep_id": "rep-ivy",
        "team_id": team,
        "valid_from": start,
        "valid_to": None,
        "updated_at": SENT_AT,
        "deleted": False,
        **fields,
    }
    return MembershipVersion(**values)  # type: ignore[arg-type]


def test_another_team_from_the_same_start_ends_the_held_team_on_the_day_it_was_sent() -> None:
    assert former_spell(WEST, _sent(), MOVE) == (JAN, MOVE)


def test_another_team_from_a_later_start_ends_the_held_team_on_that_start() -> None:
    assert former_spell(WEST, _sent(start=date(2026, 11, 9)), date(2026, 11, 20)) == (JAN, date(2026, 11, 9))


def test_a_deleted_membership_ends_its_team_on_the_day_it_was_deleted() -> None:
    assert former_spell(WEST, _sent(team="team-west", deleted=True), MOVE) == (JAN, MOVE)


def test_a_held_end_bounds_the_spell_kept() -> None:
    ended = MembershipVersion("rep-ivy", "team-west", JAN, date(2026, 6, 1), HELD_AT, False)
    assert former_spell(ended, _sent(), MOVE) == (JAN, date(2026, 6, 1))


def test_a_record_reused_for_another_rep_keeps_the_held_reps_spell_as_hers_to_the_day_it_was_sent() -> None:
    """Ana on B since 1 April (her A spell kept before it); the CRM reuses the record for Bo on C
    from January: Ana keeps B from 1 April to the day Bo's version was sent, whatever Bo's start."""
    april = date(2026, 4, 1)
    ana = MembershipVersion("rep-ana", "team-b", april, None, HELD_AT, False)
    assert former_spell(ana, _sent(rep_id="rep-bo", team="team-c"), MOVE) == (april, MOVE)
    # The same team, or deleted, alike: the record is no longer hers.
    assert former_spell(ana, _sent(rep_id="rep-bo", team="team-b"), MOVE) == (april, MOVE)
    assert former_spell(ana, _sent(rep_id="rep-bo", team="team-b", deleted=True), MOVE) == (april, MOVE)
    # Her spell's own end bounds it; a correction (same updated_at) keeps nothing.
    ended = MembershipVersion("rep-ana", "team-b", april, date(2026, 6, 1), HELD_AT, False)
    assert former_spell(ended, _sent(rep_id="rep-bo"), MOVE) == (april, date(2026, 6, 1))
    assert former_spell(ana, _sent(rep_id="rep-bo", updated_at=HELD_AT), MOVE) is None


def test_nothing_is_kept_for_the_same_team_a_correction_or_a_spell_not_started() -> None:
    assert former_spell(WEST, _sent(team="team-west", start=MOVE), MOVE) is None  # a later start: same team
    assert former_spell(WEST, _sent(updated_at=HELD_AT), MOVE) is None  # same updated_at: a correction
    assert former_spell(None, _sent(), MOVE) is None
    gone = MembershipVersion("rep-ivy", "team-west", JAN, None, HELD_AT, True)
    assert former_spell(gone, _sent(), MOVE) is None
    future = MembershipVersion("rep-ivy", "team-west", DEC, None, HELD_AT, False)
    assert former_spell(future, _sent(), MOVE) is None


def test_a_membership_starts_after_its_kept_spells_unless_that_leaves_it_no_day() -> None:
    assert starts_after_spells(JAN, None, MOVE) == MOVE
    assert starts_after_spells(date(2026, 11, 20), None, MOVE) == date(2026, 11, 20)
    assert starts_after_spells(JAN, None, None) == JAN
    assert starts_after_spells(JAN, date(2026, 11, 10), MOVE) == JAN
    assert former_spell_id("m-ivy", JAN) == "m-ivy\x1f2026-01-01"
