"""A batch's CRM versions written in rounds: the writes one-by-one application would make."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from libs.common.contracts.crm import AccountV1, CrmEntity
from services.attribution.adapters.repository import write_rounds

T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)


def account(account_id: str, hours: int, name: str = "") -> AccountV1:
    return AccountV1(id=account_id, updated_at=T0 + timedelta(hours=hours), name=name)


def names(rounds: list[list[CrmEntity]]) -> list[list[str]]:
    return [[f"{e.id}@{e.name if isinstance(e, AccountV1) else ''}" for e in entities] for entities in rounds]


def test_distinct_entities_are_one_round_in_arrival_order() -> None:
    batch = [account("b", 1, "1"), account("a", 1, "1"), account("c", 0, "1")]
    assert names(write_rounds(batch)) == [["b@1", "a@1", "c@1"]]


def test_a_newer_version_later_in_the_batch_is_a_second_round() -> None:
    batch = [account("a", 1, "old"), account("b", 1, "only"), account("a", 2, "new")]
    assert names(write_rounds(batch)) == [["a@old", "b@only"], ["a@new"]]


def test_an_older_version_or_an_identical_resend_after_a_newer_one_is_never_written() -> None:
    batch = [
        account("a", 2, "first"),
        account("a", 2, "first"),
        account("a", 1, "older"),
        account("a", 3, "newest"),
        account("a", 3, "newest"),
    ]
    assert names(write_rounds(batch)) == [["a@first"], ["a@newest"]]


def test_a_correction_under_the_same_updated_at_is_written_after_what_it_corrects() -> None:
    """Equal ``updated_at``, other content: the last received wins, deterministically; going
    back to an earlier content under the same time is one more correction."""
    batch = [
        account("a", 2, "typo"),
        account("b", 1, "only"),
        account("a", 2, "fixed"),
        account("a", 1, "older"),
        account("a", 2, "fixed"),
        account("a", 2, "typo"),
    ]
    assert names(write_rounds(batch)) == [["a@typo", "b@only"], ["a@fixed"], ["a@typo"]]


def test_an_empty_batch_has_no_rounds() -> None:
    assert write_rounds([]) == []
