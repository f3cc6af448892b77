"""A membership record the CRM reuses for another rep (the consumer's path, the real PostgreSQL):
the first rep's spells stay hers and the new rep's starts as sent (rules 2026.12.32)."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.contracts.crm import TeamMembershipV1

from .attribution_support import TENANT, RecordingProducer, create_tenant, deliver, rows


def _member(rep: str, team: str, start: date, at: datetime) -> TeamMembershipV1:
    return TeamMembershipV1(id="m", rep_id=rep, team_id=team, valid_from=start, updated_at=at)


async def test_a_membership_record_reused_for_another_rep_keeps_hers_and_starts_his_as_sent(
    db_engine: AsyncEngine,
) -> None:
    """Ana on A from January, moved to B on 1 April (A kept as ``m`` U+001F 2026-01-01); the CRM
    then reuses record ``m`` for Bo on C from January, on 10 May."""
    await create_tenant(db_engine)
    producer = RecordingProducer()
    jan, apr, may = date(2026, 1, 1), date(2026, 4, 1), date(2026, 5, 10)
    await deliver(db_engine, producer, _member("rep-ana", "team-a", jan, datetime(2026, 1, 1, tzinfo=UTC)))
    await deliver(db_engine, producer, _member("rep-ana", "team-b", apr, datetime(2026, 4, 1, 9, tzinfo=UTC)))
    await deliver(db_engine, producer, _member("rep-bo", "team-c", jan, datetime(2026, 5, 10, 9, tzinfo=UTC)))

    held = await rows(
        db_engine,
        "SELECT replace(membership_id, chr(31), '|'), rep_id, team_id, valid_from, valid_to "
        "FROM ref_team_memberships WHERE tenant_id = :t ORDER BY rep_id, valid_from",
        {"t": TENANT},
    )
    assert held == [
        ("m|2026-01-01", "rep-ana", "team-a", jan, apr),
        ("m|2026-04-01", "rep-ana", "team-b", apr, may),
        ("m", "rep-bo", "team-c", jan, None),
    ]
