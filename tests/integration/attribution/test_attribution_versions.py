"""Versions through handle_batch: redeliveries publish nothing, events are keyed tenant:rep,
parked activities are re-matched, and manual overrides stick."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.contracts.crm import CrmEntity
from libs.common.topics import ACTIVITY_ATTRIBUTED

from .attribution_support import (
    RecordingProducer,
    baseline,
    create_tenant,
    current,
    deliver,
    email,
    entity,
    history,
    override,
    summary,
)


async def test_a_redelivered_batch_publishes_nothing_and_events_are_keyed_by_tenant_and_rep(
    db_engine: AsyncEngine,
) -> None:
    producer = RecordingProducer()
    await create_tenant(db_engine)
    crm = baseline()
    activities = [
        email("e-1", "ana@seller.example", "bo@buyer.example", at="2026-11-02T10:00:00Z"),
        email("e-2", "ana.s@seller.example", "cy@buyer.example", at="2026-11-02T11:00:00Z"),
        email("e-3", "shared@helpdesk.example", "nobody@unknown.example", at="2026-11-02T12:00:00Z"),
    ]
    sent = await deliver(db_engine, producer, *crm, *activities)
    assert summary(sent) == [
        ("acme:rep-1", 1, "attributed", "deal-1"),
        ("acme:rep-1", 1, "attributed", "deal-2"),
        # Credited to nobody: keyed by the activity itself.
        (f"acme:{activities[2].activity_id}", 1, "unmatched", None),
    ]
    assert {s.topic for s in sent} == {ACTIVITY_ATTRIBUTED.physical("t.")}
    assert [s.headers["ce_id"].decode() for s in sent] == [f"{a.activity_id}:v1" for a in activities]

    assert await deliver(db_engine, producer, *crm, *activities) == []
    assert [(await current(db_engine, a.activity_id)).version for a in activities] == [1, 1, 1]


async def test_a_newer_revision_is_a_new_version_and_an_older_or_equal_one_is_a_no_op(
    db_engine: AsyncEngine,
) -> None:
    producer = RecordingProducer()
    await create_tenant(db_engine)
    await deliver(db_engine, producer, *baseline())
    first = email("e-1", "ana@seller.example", "bo@buyer.example", at="2026-11-02T10:00:00Z", revision=1)
    same = email("e-1", "ana@seller.example", "bo@buyer.example", at="2026-11-02T10:05:00Z", revision=2)
    moved = email("e-1", "ana@seller.example", "cy@buyer.example", at="2026-11-02T10:05:00Z", revision=3)
    assert summary(await deliver(db_engine, producer, first)) == [("acme:rep-1", 1, "attributed", "deal-1")]
    # Same attribution, but the facts moved (metrics counts the new time): a new version.
    [revised] = await deliver(db_engine, producer, same)
    assert (revised.event.version, revised.event.deal_id, revised.event.facts.revision) == (2, "deal-1", 2)
    assert revised.event.facts.occurred_at.isoformat() == "2026-11-02T10:05:00+00:00"
    assert await deliver(db_engine, producer, same) == []
    assert summary(await deliver(db_engine, producer, moved)) == [("acme:rep-1", 3, "attributed", "deal-2")]
    assert await deliver(db_engine, producer, first) == []


async def test_two_revisions_in_one_batch_settle_on_the_highest_whatever_their_order(
    db_engine: AsyncEngine,
) -> None:
    producer = RecordingProducer()
    await create_tenant(db_engine)
    await deliver(db_engine, producer, *baseline())
    five = email("e-1", "ana@seller.example", "bo@buyer.example", at="2026-11-02T10:05:00Z", revision=5)
    four = email("e-1", "ana@seller.example", "cy@buyer.example", at="2026-11-02T10:04:00Z", revision=4)
    [published] = await deliver(db_engine, producer, five, four)
    assert (published.event.version, published.event.deal_id, published.event.facts.revision) == (
        1,
        "deal-1",
        5,
    )
    assert await deliver(db_engine, producer, four) == []
    assert await deliver(db_engine, producer, four, five) == []


async def test_a_manual_override_is_a_sticky_version_that_rematches_never_replace(
    db_engine: AsyncEngine,
) -> None:
    producer = RecordingProducer()
    await create_tenant(db_engine)
    await deliver(db_engine, producer, *baseline())
    ambiguous = email("e-1", "ana@seller.example", "dee@buyer.example", at="2026-11-02T10:00:00Z")
    control = email("e-2", "ana@seller.example", "dee@buyer.example", at="2026-11-02T11:00:00Z")
    assert summary(await deliver(db_engine, producer, ambiguous, control)) == [
        ("acme:rep-1", 1, "ambiguous", "deal-2"),
        ("acme:rep-1", 1, "ambiguous", "deal-2"),
    ]
    command = override(ambiguous.activity_id, deal_id="deal-1", reason="kick-off for the renewal")
    sent = await deliver(db_engine, producer, command)
    assert summary(sent) == [("acme:rep-1", 2, "attributed", "deal-1")]
    assert sent[0].event.confidence == 1.0
    assert sent[0].event.explanation["rule_path"] == "override"
    assert await deliver(db_engine, producer, command) == []

    # Changes that re-match the control: the overridden deal disappears, a contact arrives.
    tombstone = entity(
        entity_type="deal",
        id="deal-1",
        account_id="acc-1",
        created_at="2026-10-01T00:00:00Z",
        deleted=True,
        updated_at="2026-11-06T00:00:00Z",
    )
    dee = entity(
        entity_type="contact",
        id="con-3",
        emails=["dee@buyer.example"],
        account_id="acc-1",
        updated_at="2026-11-06T00:00:00Z",
    )
    assert summary(await deliver(db_engine, producer, tombstone, dee)) == [
        ("acme:rep-1", 2, "attributed", "deal-2")
    ]
    kept = await current(db_engine, ambiguous.activity_id)
    assert (kept.version, kept.status, kept.deal_id, kept.is_override, kept.parked) == (
        2,
        "attributed",
        "deal-1",
        True,
        False,
    )
    # Only another override replaces an override.
    again = override(ambiguous.activity_id, deal_id="deal-2", set_at=command.set_at.replace(day=22))
    assert summary(await deliver(db_engine, producer, again)) == [("acme:rep-1", 3, "attributed", "deal-2")]
    assert await history(db_engine, ambiguous.activity_id) == [
        (1, "ambiguous", "deal-2", False),
        (2, "attributed", "deal-1", True),
        (3, "attributed", "deal-2", True),
    ]
    # An older override delivered late does not undo the newer one.
    assert await deliver(db_engine, producer, command) == []


async def test_a_rep_only_override_keeps_deal_and_account_and_takes_the_reps_team_at_the_activity_time(
    db_engine: AsyncEngine,
) -> None:
    producer = RecordingProducer()
    await create_tenant(db_engine)
    rep_d = [
        entity(entity_type="rep", id="rep-d", emails=["dee@seller.example"]),
        entity(entity_type="team", id="team-d"),
        entity(entity_type="team", id="team-e"),
        entity(
            entity_type="team_membership",
            id="md1",
            rep_id="rep-d",
            team_id="team-d",
            valid_from="2026-10-01",
            valid_to="2026-11-15",
        ),
        entity(
            entity_type="team_membership", id="md2", rep_id="rep-d", team_id="team-e", valid_from="2026-11-15"
        ),
    ]
    await deliver(db_engine, producer, *baseline(), *rep_d)
    call = email("e-1", "ana@seller.example", "bo@buyer.example", at="2026-11-02T10:00:00Z")
    assert summary(await deliver(db_engine, producer, call)) == [("acme:rep-1", 1, "attributed", "deal-1")]

    sent = await deliver(
        db_engine, producer, override(call.activity_id, rep_id="rep-d", reason="Dee sent it")
    )

    assert summary(sent) == [("acme:rep-d", 2, "attributed", "deal-1")]
    kept = await current(db_engine, call.activity_id)
    # rep-d was on team-d on 2 November, though on team-e today.
    assert (kept.status, kept.rep_id, kept.team_id, kept.account_id, kept.deal_id, kept.is_override) == (
        "attributed",
        "rep-d",
        "team-d",
        "acc-1",
        "deal-1",
        True,
    )
    assert (sent[0].event.team_id, sent[0].event.account_id) == ("team-d", "acc-1")


async def test_a_parked_reply_follows_when_the_message_it_answers_is_rematched(
    db_engine: AsyncEngine,
) -> None:
    producer = RecordingProducer()
    await create_tenant(db_engine)
    await deliver(db_engine, producer, *baseline())
    opening = email(
        "e-1", "ana@seller.example", "eve@newco.example", at="2026-11-02T10:00:00Z", thread_id="th"
    )
    reply = email(
        "e-2",
        "eve.private@gmail.com",
        "ana@seller.example",
        at="2026-11-03T10:00:00Z",
        thread_id="th",
        direction="inbound",
        outcome="received",
    )
    assert summary(await deliver(db_engine, producer, opening, reply)) == [
        ("acme:rep-1", 1, "unmatched", None),
        ("acme:rep-1", 1, "unmatched", None),
    ]
    # Nothing in the reply points at the new company: it follows because its thread moved.
    newco = [
        entity(
            entity_type="account", id="acc-9", domains=["newco.example"], updated_at="2026-11-04T00:00:00Z"
        ),
        entity(
            entity_type="contact",
            id="con-5",
            emails=["eve@newco.example"],
            account_id="acc-9",
            updated_at="2026-11-04T00:00:00Z",
        ),
        entity(
            entity_type="deal",
            id="deal-9",
            account_id="acc-9",
            owner_rep_id="rep-1",
            created_at="2026-10-20T00:00:00Z",
            contacts=[{"contact_id": "con-5", "role": "buyer"}],
            updated_at="2026-11-04T00:00:00Z",
        ),
    ]
    sent = await deliver(db_engine, producer, *newco)
    assert [(s.event.activity_id, s.event.version, s.event.status.value, s.event.deal_id) for s in sent] == [
        (opening.activity_id, 2, "attributed", "deal-9"),
        (reply.activity_id, 2, "attributed", "deal-9"),
    ]
    assert (await current(db_engine, reply.activity_id)).rule_path == "thread"


async def test_an_override_survives_every_deal_rematch_trigger_that_moves_its_neighbour(
    db_engine: AsyncEngine,
) -> None:
    producer = RecordingProducer()
    await create_tenant(db_engine)
    await deliver(db_engine, producer, *baseline())
    fixed = email("e-1", "ana@seller.example", "bo@buyer.example", at="2026-11-02T10:00:00Z")
    control = email("e-2", "ana@seller.example", "bo@buyer.example", at="2026-11-02T11:00:00Z")
    assert summary(await deliver(db_engine, producer, fixed, control)) == [
        ("acme:rep-1", 1, "attributed", "deal-1"),
        ("acme:rep-1", 1, "attributed", "deal-1"),
    ]
    assert summary(await deliver(db_engine, producer, override(fixed.activity_id, deal_id="deal-2"))) == [
        ("acme:rep-1", 2, "attributed", "deal-2")
    ]

    def deal(updated: str, **fields: object) -> CrmEntity:
        base = {"entity_type": "deal", "account_id": "acc-1", "owner_rep_id": "rep-1", "updated_at": updated}
        return entity(**{**base, **fields})

    triggers = [
        # created: a second deal on which bo holds a role, the control becomes a close call
        deal("2026-11-06T00:00:00Z", id="deal-3", created_at="2026-10-20T00:00:00Z",
             contacts=[{"contact_id": "con-1", "role": "economic_buyer"}]),
        # a role gained, other dates, another account
        deal("2026-11-07T00:00:00Z", id="deal-2", created_at="2026-10-05T00:00:00Z",
             contacts=[{"contact_id": "con-2", "role": "buyer"}, {"contact_id": "con-1", "role": "buyer"}]),
        deal("2026-11-08T00:00:00Z", id="deal-3", created_at="2026-09-01T00:00:00Z",
             contacts=[{"contact_id": "con-1", "role": "economic_buyer"}]),
        deal("2026-11-09T00:00:00Z", id="deal-3", account_id="acc-9", created_at="2026-09-01T00:00:00Z",
             contacts=[{"contact_id": "con-1", "role": "economic_buyer"}]),
    ]  # fmt: skip
    moved = []
    for trigger in triggers:
        sent = await deliver(db_engine, producer, trigger)
        assert fixed.activity_id not in {s.event.activity_id for s in sent}
        moved += [
            (s.event.version, s.event.status.value)
            for s in sent
            if s.event.activity_id == control.activity_id
        ]
    kept = await current(db_engine, fixed.activity_id)
    assert (kept.version, kept.deal_id, kept.is_override) == (2, "deal-2", True)
    # Every one of the same changes re-decided the activity next to it (a new version each time).
    assert moved == [(2, "ambiguous"), (3, "ambiguous"), (4, "ambiguous"), (5, "ambiguous")]


async def test_a_revision_under_an_override_moves_the_attributions_time_with_the_activity(
    db_engine: AsyncEngine,
) -> None:
    """The gateway lists a rep's, deal's or account's activities from ``attributions`` in its own
    time order: a newer revision that moves the activity moves its attribution's time too, whether
    or not it is a new version (an override in force keeps its version)."""
    producer = RecordingProducer()
    await create_tenant(db_engine)
    await deliver(db_engine, producer, *baseline())
    first = email("e-1", "ana@seller.example", "dee@buyer.example", at="2026-11-02T10:00:00Z", revision=1)
    await deliver(db_engine, producer, first)
    await deliver(db_engine, producer, override(first.activity_id, deal_id="deal-1", reason="renewal"))
    later = email("e-1", "ana@seller.example", "dee@buyer.example", at="2026-11-03T09:30:00Z", revision=2)
    sent = await deliver(db_engine, producer, later)
    async with db_engine.connect() as conn:
        times = (
            await conn.execute(
                text(
                    "SELECT a.occurred_at = act.occurred_at, act.occurred_at FROM attributions a "
                    "JOIN activities act USING (tenant_id, activity_id) WHERE a.activity_id = :id"
                ),
                {"id": first.activity_id},
            )
        ).one()
    assert (times[0], times[1].isoformat()) == (True, "2026-11-03T09:30:00+00:00")
    kept = await current(db_engine, first.activity_id)
    assert (kept.deal_id, kept.is_override) == ("deal-1", True)
    assert [(s.event.version, s.event.facts.occurred_at.isoformat()) for s in sent] == [
        (3, "2026-11-03T09:30:00+00:00")
    ]
