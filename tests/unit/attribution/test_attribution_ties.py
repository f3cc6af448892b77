"""The world's oracle of ties, on small hand-built worlds: which activities no rule can decide."""

from __future__ import annotations

import ast
from datetime import UTC, datetime, timedelta
from pathlib import Path

import spm.evaluation.attribution.ties as ties_module
from spm.evaluation.attribution import generate_dataset
from spm.evaluation.attribution.ties import DealFacts, Observation, Seen, tied_deals

MOMENT = datetime(2026, 5, 1, 12, tzinfo=UTC)


def _deal(
    deal_id: str,
    contacts: tuple[str, ...] = ("con-1",),
    *,
    owner: str = "rep-001",
    account: str = "acc-1",
    product: str = "Security suite",
    created: datetime = MOMENT - timedelta(days=30),
    closed: datetime | None = None,
) -> DealFacts:
    return DealFacts(deal_id, account, owner, created, closed, product, frozenset(contacts))


def _email(
    contact: str = "con-1",
    *,
    rep: str | None = "rep-001",
    subject: str | None = "Following up",
    truth: str | None = "deal-a",
    at: datetime = MOMENT,
    thread: str | None = None,
) -> Observation:
    return Observation(
        occurred_at=at,
        true_deal_id=truth,
        participants=(Seen("from", rep_id=rep, is_rep=True), Seen("to", contact_ids=frozenset({contact}))),
        subject=subject,
        thread_id=thread,
    )


def _tied(observations: list[Observation], *deals: DealFacts) -> list[set[str]]:
    return [set(t) for t in tied_deals(observations, {d.id: d for d in deals})]


def test_two_open_deals_of_one_account_the_contact_on_both_and_one_owner_are_a_tie() -> None:
    a = _deal("deal-a", product="Security suite")
    b = _deal("deal-b", product="Mobile rollout")

    assert _tied([_email()], a, b) == [{"deal-b"}]
    # Who else is on the deal tells nothing either.
    assert _tied([_email()], a, _deal("deal-b", ("con-1", "con-9"), product="Mobile rollout")) == [{"deal-b"}]


def test_a_subject_naming_the_true_deals_product_decides_and_naming_both_does_not() -> None:
    a = _deal("deal-a", product="Security suite")
    b = _deal("deal-b", product="Mobile rollout")

    assert _tied([_email(subject="Security suite - pricing")], a, b) == [set()]
    # Naming the other deal's product would set it apart too (the world names only the true one).
    assert _tied([_email(subject="Mobile rollout - pricing")], a, b) == [set()]
    # Two deals on one product (every product already sold): the subject names both.
    twin = _deal("deal-b", product="Security suite")
    assert _tied([_email(subject="Security suite - pricing")], a, twin) == [{"deal-b"}]


def test_a_contact_on_the_true_deal_only_decides() -> None:
    a = _deal("deal-a", ("con-1",))
    b = _deal("deal-b", ("con-2",), product="Mobile rollout")

    assert _tied([_email("con-1")], a, b) == [set()]
    # Someone at the account on neither deal (no contact role) cannot tell them apart.
    assert _tied([_email("con-3")], a, b) == [{"deal-b"}]


def test_a_deal_not_yet_created_or_already_closed_is_no_tie() -> None:
    a = _deal("deal-a")
    later = _deal("deal-b", product="Mobile rollout", created=MOMENT + timedelta(days=2))
    closed = _deal("deal-c", product="Training package", closed=MOMENT - timedelta(days=1))

    assert _tied([_email()], a, later, closed) == [set()]
    # When the true deal itself was created after the activity (a late deal), nothing is tied.
    assert _tied([_email(truth="deal-b")], a, later) == [set()]


def test_the_owner_decides_when_the_rep_owns_one_deal_not_when_the_rep_owns_neither() -> None:
    a = _deal("deal-a", owner="rep-001")
    b = _deal("deal-b", owner="rep-002", product="Mobile rollout")

    assert _tied([_email(rep="rep-001")], a, b) == [set()]
    assert _tied([_email(rep="rep-003")], a, b) == [{"deal-b"}]
    # A shared inbox shows no rep; the owner the help desk assigned decides.
    inbox = Observation(MOMENT, "deal-a", (Seen("from", frozenset({"con-1"})), Seen("to", is_rep=True)))
    assert _tied([inbox], a, b) == [{"deal-b"}]
    assigned = Observation(
        MOMENT,
        "deal-a",
        (Seen("from", frozenset({"con-1"})), Seen("to", is_rep=True)),
        crm_owner_rep_id="rep-001",
    )
    assert _tied([assigned], a, b) == [set()]


def test_other_accounts_deals_and_a_switchboard_number() -> None:
    a = _deal("deal-a", ("con-1",))
    b = _deal("deal-b", ("con-2",), product="Mobile rollout")
    elsewhere = _deal("deal-x", ("con-1",), account="acc-2")
    # Who stands behind a number several contacts share is not read: the world draws a
    # switchboard call's deal among the account's deals whoever picks up.
    call = Observation(
        MOMENT,
        "deal-a",
        (Seen("caller", rep_id="rep-001", is_rep=True), Seen("callee", frozenset({"con-1", "con-2"}))),
    )

    assert _tied([_email("con-1", truth="deal-a")], a, elsewhere) == [set()]
    assert _tied([call], a, b, elsewhere) == [{"deal-b"}]


def test_a_thread_carries_what_its_earlier_messages_decided() -> None:
    a = _deal("deal-a", ("con-1", "con-2"), closed=MOMENT + timedelta(days=1))
    b = _deal("deal-b", ("con-2",), product="Mobile rollout")
    first = _email("con-1", thread="t-1")
    # The reply comes from someone on both deals, after the true deal closed: the first message
    # (con-1 is on the true deal only) decided it.
    reply = _email("con-2", thread="t-1", at=MOMENT + timedelta(days=2))

    assert _tied([reply, first], a, b) == [set(), set()]
    # Tied from the start, a thread stays tied, even when the true deal closed before the reply.
    tied_first = _email("con-2", thread="t-2")
    tied_reply = _email("con-2", thread="t-2", at=MOMENT + timedelta(days=2))
    assert _tied([tied_first, tied_reply], a, b) == [{"deal-b"}, {"deal-b"}]


def test_an_activity_without_a_true_deal_is_never_tied() -> None:
    assert _tied([_email(truth=None)], _deal("deal-a"), _deal("deal-b", product="Mobile rollout")) == [set()]


def test_the_generated_world_marks_its_ties_from_its_own_draws() -> None:
    dataset = generate_dataset(600, seed=7)
    deals = {deal.id: deal for deal in dataset.world.deals}
    tied = [item for item in dataset.activities if not item.decidable]

    assert len(tied) == 39
    assert generate_dataset(600, seed=7).activities == dataset.activities
    for item in tied:
        truth = deals[item.true_deal_id or ""]
        for other in item.tied_with:
            assert deals[other].account_id == truth.account_id
    assert all(item.decidable for item in dataset.activities if item.true_deal_id is None)


def test_the_oracle_reads_no_matcher() -> None:
    tree = ast.parse(Path(ties_module.__file__).read_text())
    imported = [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)] + [
        alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
    ]

    assert not [name for name in imported if name.startswith(("services", "spm"))]
