"""A deal's state as ingest publishes it from the canonical CRM sync (``crm_sync.read_deal``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from libs.common.contracts.crm import DealV1
from services.ingest.domain.crm_sync import deal_close, read_entities, stage_outcome
from services.ingest.domain.normalize import ahead_allowance

CREATED = datetime(2026, 6, 1, tzinfo=UTC)
CLOSE = datetime(2026, 9, 1, tzinfo=UTC)
UPDATED = datetime(2026, 8, 1, tzinfo=UTC)


def _read(**fields: Any) -> datetime | None:
    sent = DealV1(id="d", updated_at=UPDATED, created_at=CREATED, **fields)
    (read,), warnings = read_entities((sent,), "US")
    assert isinstance(read, DealV1)
    assert warnings == ()
    return read.closed_at


def test_an_open_deals_expected_close_date_is_not_a_close() -> None:
    assert _read(closed_at=CLOSE) is None
    assert _read() is None


def test_a_closed_deal_keeps_its_close_date() -> None:
    assert _read(is_closed=True, closed_at=CLOSE) == CLOSE
    assert _read(is_closed=True, is_won=True, closed_at=CLOSE) == CLOSE


def test_a_closed_deal_without_a_date_closed_when_reported_so_never_before_its_creation() -> None:
    assert _read(is_closed=True) == UPDATED
    sent = DealV1(id="d", updated_at=datetime(2026, 5, 1, tzinfo=UTC), created_at=CREATED, is_closed=True)
    (read,), _ = read_entities((sent,), "US")
    assert isinstance(read, DealV1)
    assert read.closed_at == CREATED


@pytest.mark.parametrize(
    ("stage", "won"),
    [
        ("Closed Won", True),
        ("closedwon", True),
        ("closed_won", True),
        ("Closed - Won", True),
        ("WON", True),
        ("Closed Lost", False),
        ("closedlost", False),
        ("Closed Lost to Competition", False),
        ("Lost", False),
        ("Closed", False),
        ("", None),
        ("Negotiation", None),
        ("Lost interest", None),
        ("Won't proceed", None),
        ("Closing", None),
        # As CRMs name them in other languages (Salesforce's, HubSpot's, Pipedrive's translations).
        ("Geschlossen und gewonnen", True),
        ("Geschlossen und verloren", False),
        ("Gewonnen", True),
        ("Verloren", False),
        ("Abgeschlossen", False),
        ("Fermée gagnée", True),
        ("Fermée/Perdue", False),
        ("Gagné", True),
        ("Cerrada ganada", True),
        ("Cerrada perdida - precio", False),
        ("Fechado/Ganho", True),
        ("Fechada perdida", False),
        ("Chiusa vinta", True),
        ("Chiusa persa", False),
        ("Gesloten gewonnen", True),
        ("Verhandlung", None),
        ("Perdu - prix", None),
        ("Propuesta enviada", None),
    ],
)
def test_a_stage_names_a_win_a_loss_or_no_close(stage: str, won: bool | None) -> None:
    assert stage_outcome(stage) is won


def test_a_closing_stage_closes_a_deal_only_when_its_flags_were_not_sent() -> None:
    def read(**fields: Any) -> tuple[bool, bool, datetime | None]:
        sent = DealV1(id="d", updated_at=UPDATED, created_at=CREATED, **fields)
        (deal,), _ = read_entities((sent,), "US")
        assert isinstance(deal, DealV1)
        return deal.is_closed, deal.is_won, deal.closed_at

    assert read(stage="Closed Won") == (True, True, UPDATED)
    assert read(stage="Closed Lost", closed_at=CLOSE) == (True, False, CLOSE)
    assert read(stage="Closed Won", is_closed=False) == (False, False, None)
    assert read(stage="Closed Won", is_closed=True, closed_at=CLOSE) == (True, False, CLOSE)
    assert read(stage="Proposal", closed_at=CLOSE) == (False, False, None)


def test_deal_dates_may_be_days_read_as_their_start_in_utc() -> None:
    deal = DealV1.model_validate(
        {
            "id": "d",
            "updated_at": "2026-11-05T09:00:00Z",
            "created_at": "2026-06-01",
            "closed_at": "2026-09-01",
        }
    )
    assert (deal.created_at, deal.closed_at) == (CREATED, CLOSE)
    for refused in ("20260601", "2026-06-01T00:00:00", "2026-6-1"):
        with pytest.raises(ValueError, match="created_at"):
            DealV1.model_validate({"id": "d", "updated_at": "2026-11-05T09:00:00Z", "created_at": refused})


def test_an_updated_at_ahead_of_receipt_is_left_out_with_a_warning_at_the_bound_kept() -> None:
    """``INGEST_MAX_FUTURE_SKEW_SECONDS`` (here 60 s) bounds a CRM record's ``updated_at`` as it
    does an activity's time and a vendor's CRM record's: at the bound it is kept as sent; one
    second past it, the record is left out (never re-dated: a closed deal's close is not moved to
    the receipt), and the warning names it."""
    received = datetime(2026, 8, 1, 12, 0, tzinfo=UTC)
    at_bound = DealV1(id="d1", updated_at=datetime(2026, 8, 1, 12, 1, tzinfo=UTC), created_at=CREATED)
    past = DealV1(
        id="d2",
        updated_at=datetime(2026, 8, 1, 12, 1, 1, tzinfo=UTC),
        created_at=CREATED,
        is_closed=True,
        is_won=True,
    )
    with ahead_allowance(60):
        read, warnings = read_entities((at_bound, past), "US", received_at=received)
    assert read == (at_bound,)
    assert [(w.index, w.field, w.reason, w.left_out) for w in warnings] == [
        (
            1,
            "entities.1.updated_at",
            "more than 60 s in the future (received 2026-08-01T12:00:00+00:00); the deal was left out",
            True,
        )
    ]
    # Without a receipt (the evaluation reads entities so), times are kept as sent.
    (as_sent,), none = read_entities((past,), "US")
    assert (as_sent.updated_at, none) == (past.updated_at, ())


def test_a_record_re_sent_ahead_is_left_out_each_time_never_a_version_dated_at_its_receipt() -> None:
    """A nightly full export re-sends the same won deal (no ``closed_at``) from a clock in 2099:
    each send is left out alike. Read as its receipt, each send was a newer version closing the
    deal on the day it was sent (November's win moved to December by the next export)."""
    deal = DealV1(
        id="d1", updated_at=datetime(2099, 1, 1, tzinfo=UTC), created_at=CREATED, is_closed=True, is_won=True
    )
    sends = (datetime(2026, 11, 30, 23, 0, tzinfo=UTC), datetime(2026, 12, 1, 23, 0, tzinfo=UTC))
    read = [read_entities((deal,), "US", received_at=at) for at in sends]
    assert [entities for entities, _ in read] == [(), ()]
    assert [[(w.field, w.left_out) for w in warnings] for _, warnings in read] == [
        [("entities.0.updated_at", True)],
        [("entities.0.updated_at", True)],
    ]
    # Within the bound the version is the CRM's, whenever it is sent: its close is its own time.
    kept = deal.model_copy(update={"updated_at": datetime(2026, 11, 30, 23, 30, tzinfo=UTC)})
    assert [read_entities((kept,), "US", received_at=at)[0][0].updated_at for at in sends] == [
        kept.updated_at,
        kept.updated_at,
    ]
    (closed,), _ = read_entities((kept,), "US", received_at=sends[1])
    assert isinstance(closed, DealV1)
    assert deal_close(closed) == kept.updated_at
