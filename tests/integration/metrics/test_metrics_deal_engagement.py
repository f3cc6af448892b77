"""Each deal's kept engagement (``metric_deal_engagement``), caught up from the changes logged with
the contributions, equals the engagement read from the tenant's whole history, through moves,
retractions, earlier revisions, buyer replies, contacts, deals closed, reopened, merged and
deleted, the retention purge, erasure and a rebuild."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.contracts.activities import ActivityKind, Direction, Outcome
from libs.common.contracts.attribution import ActivityAttributedV1, AttributionStatus
from services.attribution.adapters import erasure
from services.metrics.adapters import read_models
from services.metrics.adapters.retention import purge_dated
from services.metrics.domain.insights import OpenDealRow

from .metrics_support import apply, attributed, create_tenant

T = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
CREATED = datetime(2026, 9, 1, tzinfo=UTC)


def _at(hours: int) -> datetime:
    return T + timedelta(hours=hours)


def _call(
    activity: int, deal: str | None, hours: int, contacts: tuple[str, ...] = (), **fields: Any
) -> ActivityAttributedV1:
    return attributed(
        activity=activity, deal_id=deal, occurred_at=_at(hours), external_contact_ids=contacts, **fields
    )


def _reply(
    activity: int, deal: str, hours: int, contacts: tuple[str, ...], **fields: Any
) -> ActivityAttributedV1:
    return attributed(
        activity=activity,
        kind=ActivityKind.EMAIL,
        direction=Direction.INBOUND,
        outcome=Outcome.RECEIVED,
        deal_id=deal,
        occurred_at=_at(hours),
        external_contact_ids=contacts,
        **fields,
    )


async def _deals(engine: AsyncEngine, *deals: str) -> None:
    async with engine.begin() as conn:
        for deal in deals:
            await conn.execute(
                text(
                    "INSERT INTO ref_deals (tenant_id, deal_id, owner_rep_id, created_at, updated_at) "
                    "VALUES ('acme', :d, 'rep-1', :at, :at)"
                ),
                {"d": deal, "at": CREATED},
            )


async def _set(engine: AsyncEngine, deal: str, assignments: str) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            text(f"UPDATE ref_deals SET {assignments} WHERE tenant_id = 'acme' AND deal_id = :d"), {"d": deal}
        )


async def _caught_up(engine: AsyncEngine) -> dict[str, OpenDealRow]:
    """What the refresher reads after catching up, checked equal to the reference read from history;
    the change log is left empty."""
    async with engine.begin() as conn:
        await read_models.catch_up_engagement(conn, "acme")
        kept = {row.deal_id: row for row in await read_models.open_deals(conn, "acme")}
        reference = {row.deal_id: row for row in await read_models.open_deals_from_history(conn, "acme")}
        pending = (
            await conn.execute(
                text("SELECT count(*) FROM metric_deal_engagement_changes WHERE tenant_id = 'acme'")
            )
        ).scalar_one()
    assert kept == reference
    assert pending == 0
    return kept


def _figures(rows: dict[str, OpenDealRow]) -> dict[str, tuple[datetime | None, datetime | None, int]]:
    return {
        d: (r.last_activity_at, r.last_buyer_reply_at, r.engaged_contacts) for d, r in sorted(rows.items())
    }


async def _kept_contacts(engine: AsyncEngine) -> dict[str, list[str]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT deal_id, contact_ids FROM metric_deal_engagement WHERE tenant_id = 'acme' ORDER BY deal_id"
            )
        )
        return {r.deal_id: sorted(r.contact_ids) for r in rows}


async def test_kept_engagement_equals_history_through_moves_retractions_and_deal_changes(
    db_engine: AsyncEngine,
) -> None:
    await create_tenant(db_engine)
    await _deals(db_engine, "d1", "d2", "d3", "d4", "d5", "d6")
    await apply(
        db_engine,
        [
            _call(1, "d1", 1, ("c1", "c2")),
            _reply(2, "d1", 2, ("c3",)),
            _call(3, "d2", 3, ("c1",), status=AttributionStatus.AMBIGUOUS, secondary_deal_ids=("d3",)),
            _call(4, "d4", 4, ("c9",)),
            _call(5, "d5", 5, ("c8",)),
            _call(6, "d6", 6, ("c7",), automated=True),  # never counted: engages nothing
            _call(7, None, 7, ("c6",)),
        ],
    )
    assert _figures(await _caught_up(db_engine)) == {
        "d1": (_at(2), _at(2), 3),
        "d2": (_at(3), None, 1),
        "d3": (_at(3), None, 1),
        "d4": (_at(4), None, 1),
        "d5": (_at(5), None, 1),
        "d6": (None, None, 0),
    }

    # A second batch only adds: merged into the kept rows (a later reply, one more contact).
    await apply(db_engine, [_reply(8, "d2", 9, ("c4", "c1")), _call(9, "d1", 0, ("c2",))])
    assert _figures(await _caught_up(db_engine))["d2"] == (_at(9), _at(9), 2)

    # The reply moves from d1 to d2; the first call is retracted; d2/d3's call is revised to an
    # earlier time (d3 loses its last activity; d2 keeps the reply's); a new call engages d5.
    await apply(
        db_engine,
        [
            _reply(2, "d2", 2, ("c3",), version=2),
            _call(1, "d1", 1, ("c1", "c2"), version=2, status=AttributionStatus.UNMATCHED),
            _call(
                3,
                "d2",
                1,
                ("c1",),
                revision=1,
                status=AttributionStatus.AMBIGUOUS,
                secondary_deal_ids=("d3",),
            ),
            _call(10, "d5", 4, ("c8", "c5")),
        ],
    )
    assert _figures(await _caught_up(db_engine)) == {
        "d1": (_at(0), None, 1),
        "d2": (_at(9), _at(9), 3),
        "d3": (_at(1), None, 1),
        "d4": (_at(4), None, 1),
        "d5": (_at(5), None, 2),
        "d6": (None, None, 0),
    }

    # d4's only activity moves away: its row goes. A stale version changes nothing.
    await apply(db_engine, [_call(4, "d1", 4, ("c9",), version=3), _call(4, "d4", 4, ("c9",), version=2)])
    assert _figures(await _caught_up(db_engine))["d4"] == (None, None, 0)
    assert "d4" not in await _kept_contacts(db_engine)

    # Deal states change nothing kept: closed, merged and deleted deals leave the open ones.
    await _set(db_engine, "d3", "is_closed = true")
    await _set(db_engine, "d4", "merged_into = 'd1'")
    await _set(db_engine, "d5", "deleted = true")
    assert set(await _caught_up(db_engine)) == {"d1", "d2", "d6"}
    await _set(db_engine, "d3", "is_closed = false")
    assert _figures(await _caught_up(db_engine))["d3"] == (_at(1), None, 1)

    # The retention purge: contributions before hour 2 go; their deals are recomputed.
    async with db_engine.begin() as conn:
        removed = await purge_dated(conn, "metric_contributions", "acme", _at(2), 100)
    assert removed == {"metric_contributions": 3}  # activities 9 (d1), 1 (no deal) and 3 (d2, d3)
    assert _figures(await _caught_up(db_engine)) == {
        "d1": (_at(4), None, 1),
        "d2": (_at(9), _at(9), 3),
        "d3": (None, None, 0),
        "d6": (None, None, 0),
    }

    # Erasure of a contact: gone from the kept rows at once, and the deals recomputed.
    async with db_engine.begin() as conn:
        await erasure.delete_contacts(conn, "acme", ["c3"])
    assert await _kept_contacts(db_engine) == {"d1": ["c9"], "d2": ["c1", "c4"], "d5": ["c5", "c8"]}
    assert _figures(await _caught_up(db_engine))["d2"] == (_at(9), _at(9), 2)

    # A rebuild from history writes the same rows.
    before = await _kept_contacts(db_engine)
    async with db_engine.begin() as conn:
        assert await read_models.rebuild_engagement(conn, "acme") == 3
    assert await _kept_contacts(db_engine) == before
    assert _figures(await _caught_up(db_engine))["d2"] == (_at(9), _at(9), 2)


async def test_a_buyer_answer_is_a_reply_a_conversation_a_held_meeting_or_the_buyer_calling(
    db_engine: AsyncEngine,
) -> None:
    """The last buyer reply (``no_buyer_reply``'s clock) counts every answer from the buyer, and
    only those: unanswered dials, a short connect, a no-show and an email sent keep it still."""
    await create_tenant(db_engine)
    await _deals(db_engine, "calls", "short", "meet", "noshow", "inbound", "sent")
    await apply(
        db_engine,
        [
            _call(1, "calls", 1, ("c1",), outcome=Outcome.NO_ANSWER),
            _call(2, "calls", 2, ("c1",), duration_seconds=95),  # a conversation
            _call(3, "calls", 3, ("c1",), outcome=Outcome.VOICEMAIL),
            _call(4, "short", 4, ("c2",), duration_seconds=20),  # a connect, not a conversation
            _call(5, "meet", 5, ("c3",), kind=ActivityKind.MEETING),  # held
            _call(6, "meet", 6, ("c3",), kind=ActivityKind.MEETING, outcome=Outcome.SCHEDULED),
            _call(7, "noshow", 7, ("c4",), kind=ActivityKind.MEETING, outcome=Outcome.NO_SHOW),
            _call(8, "inbound", 8, ("c5",), direction=Direction.INBOUND, duration_seconds=30),
            _call(9, "sent", 9, ("c6",), kind=ActivityKind.EMAIL),
        ],
    )
    assert _figures(await _caught_up(db_engine)) == {
        "calls": (_at(3), _at(2), 1),
        "short": (_at(4), None, 1),
        "meet": (_at(6), _at(5), 1),
        "noshow": (_at(7), None, 1),
        "inbound": (_at(8), _at(8), 1),
        "sent": (_at(9), None, 1),
    }
    # The conversation is revised to a short connect: no answer left on the deal (recomputed).
    await apply(db_engine, [_call(2, "calls", 2, ("c1",), duration_seconds=30, revision=1)])
    assert _figures(await _caught_up(db_engine))["calls"] == (_at(3), None, 1)
    # A rebuild from history agrees.
    async with db_engine.begin() as conn:
        await read_models.rebuild_engagement(conn, "acme")
    assert _figures(await _caught_up(db_engine))["calls"] == (_at(3), None, 1)
