"""Reference data in PostgreSQL as attribution reads it: last writer wins, tombstones, merges,
rep identities, internal domains, dated team memberships, threads; driven through handle_batch."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.contracts.crm import CrmEntity
from services.attribution.adapters.reference_loader import load_reference_index

from .attribution_support import (
    TENANT,
    RecordingProducer,
    activity,
    baseline,
    create_tenant,
    current,
    deliver,
    email,
    entity,
    history,
    set_tenant_settings,
    summary,
)

T0 = "2026-11-01T00:00:00Z"


async def _setup(db_engine: AsyncEngine, producer: RecordingProducer) -> None:
    await create_tenant(db_engine)
    assert await deliver(db_engine, producer, *baseline()) == []


async def test_an_older_update_delivered_late_changes_nothing(db_engine: AsyncEngine) -> None:
    producer = RecordingProducer()
    await _setup(db_engine, producer)
    newer = entity(
        entity_type="contact",
        id="con-1",
        emails=["bo.new@buyer.example"],
        account_id="acc-1",
        updated_at="2026-11-10T00:00:00Z",
    )
    older = entity(
        entity_type="contact",
        id="con-1",
        emails=["bo.old@buyer.example"],
        account_id="acc-1",
        updated_at="2026-11-05T00:00:00Z",
    )
    await deliver(db_engine, producer, newer)
    await deliver(db_engine, producer, older)
    async with db_engine.connect() as conn:
        row = (
            await conn.execute(text("SELECT emails, updated_at FROM ref_contacts WHERE contact_id = 'con-1'"))
        ).one()
        identities = (
            await conn.execute(
                text(
                    "SELECT identity FROM ref_contact_identities WHERE contact_id = 'con-1' ORDER BY identity"
                )
            )
        ).scalars()
        assert list(identities) == ["bo.new@buyer.example"]
    assert row.emails == ["bo.new@buyer.example"]
    assert row.updated_at == datetime(2026, 11, 10, tzinfo=UTC)

    to_new = email("e-new", "ana@seller.example", "bo.new@buyer.example", at="2026-11-02T10:00:00Z")
    to_old = email("e-old", "ana@seller.example", "bo.old@buyer.example", at="2026-11-02T11:00:00Z")
    sent = await deliver(db_engine, producer, to_new, to_old)
    assert summary(sent) == [
        ("acme:rep-1", 1, "attributed", "deal-1"),
        # Only the domain speaks for bo.old: both deals of the account are too close to call.
        ("acme:rep-1", 1, "ambiguous", "deal-2"),
    ]
    assert (await current(db_engine, to_new.activity_id)).rule_path == "contact_role"
    assert (await current(db_engine, to_old.activity_id)).secondary_deal_ids == ("deal-1",)


async def test_versions_of_one_entity_in_one_batch_settle_on_the_newest_last_received_of_equals(
    db_engine: AsyncEngine,
) -> None:
    """A batch's entities are written one statement per type: several versions of one entity in
    the batch still leave what one-by-one application left, child rows included (of two versions
    under the same ``updated_at`` that differ, the one received last)."""
    producer = RecordingProducer()
    await _setup(db_engine, producer)

    def contact(mail: str, at: str) -> CrmEntity:
        return entity(entity_type="contact", id="con-1", emails=[mail], account_id="acc-1", updated_at=at)

    def deal(contact_id: str, at: str) -> CrmEntity:
        return entity(
            entity_type="deal",
            id="deal-1",
            account_id="acc-1",
            owner_rep_id="rep-1",
            created_at="2026-10-01T00:00:00Z",
            contacts=[{"contact_id": contact_id, "role": "champion"}],
            updated_at=at,
        )

    await deliver(
        db_engine,
        producer,
        contact("bo.b@buyer.example", "2026-11-05T00:00:00Z"),
        deal("con-2", "2026-11-06T00:00:00Z"),
        contact("bo.c@buyer.example", "2026-11-10T00:00:00Z"),
        contact("bo.equal@buyer.example", "2026-11-10T00:00:00Z"),
        deal("con-1", "2026-11-04T00:00:00Z"),
        contact("bo.older@buyer.example", "2026-11-07T00:00:00Z"),
    )
    async with db_engine.connect() as conn:
        emails = (
            await conn.execute(text("SELECT emails FROM ref_contacts WHERE contact_id = 'con-1'"))
        ).scalar()
        identities = await conn.execute(
            text("SELECT identity FROM ref_contact_identities WHERE contact_id = 'con-1' ORDER BY identity")
        )
        assert list(identities.scalars()) == ["bo.equal@buyer.example"]
        roles = await conn.execute(
            text(
                "SELECT contact_id, role FROM ref_deal_contacts WHERE deal_id = 'deal-1' ORDER BY contact_id"
            )
        )
        assert [tuple(r) for r in roles] == [("con-2", "champion")]
    assert emails == ["bo.equal@buyer.example"]


async def test_a_tombstoned_deal_stops_matching_and_what_pointed_at_it_is_rematched(
    db_engine: AsyncEngine,
) -> None:
    producer = RecordingProducer()
    await _setup(db_engine, producer)
    by_domain = email("e-1", "ana@seller.example", "dee@buyer.example", at="2026-11-02T10:00:00Z")
    assert summary(await deliver(db_engine, producer, by_domain)) == [
        ("acme:rep-1", 1, "ambiguous", "deal-2")
    ]

    tombstone = entity(
        entity_type="deal",
        id="deal-2",
        account_id="acc-1",
        created_at="2026-10-05T00:00:00Z",
        deleted=True,
        updated_at="2026-11-03T00:00:00Z",
    )
    assert summary(await deliver(db_engine, producer, tombstone)) == [
        ("acme:rep-1", 2, "attributed", "deal-1")
    ]
    after = await current(db_engine, by_domain.activity_id)
    assert (after.deal_id, after.secondary_deal_ids, after.parked) == ("deal-1", (), False)
    assert await history(db_engine, by_domain.activity_id) == [
        (1, "ambiguous", "deal-2", False),
        (2, "attributed", "deal-1", False),
    ]


async def test_a_merged_deal_hands_over_to_its_survivor(db_engine: AsyncEngine) -> None:
    producer = RecordingProducer()
    await _setup(db_engine, producer)
    to_bo = email("e-1", "ana@seller.example", "bo@buyer.example", at="2026-11-02T10:00:00Z")
    assert summary(await deliver(db_engine, producer, to_bo)) == [("acme:rep-1", 1, "attributed", "deal-1")]

    survivor = entity(
        entity_type="deal",
        id="deal-9",
        account_id="acc-1",
        owner_rep_id="rep-1",
        created_at="2026-09-20T00:00:00Z",
        contacts=[{"contact_id": "con-1", "role": "champion"}],
        updated_at="2026-11-04T00:00:00Z",
    )
    merged = entity(
        entity_type="deal",
        id="deal-1",
        account_id="acc-1",
        created_at="2026-10-01T00:00:00Z",
        merged_into="deal-9",
        updated_at="2026-11-04T00:00:00Z",
    )
    assert summary(await deliver(db_engine, producer, survivor, merged)) == [
        ("acme:rep-1", 2, "attributed", "deal-9")
    ]
    # A source that still names the merged deal explicitly lands on the survivor.
    explicit = email(
        "e-2",
        "ana@seller.example",
        "zed@elsewhere.example",
        at="2026-11-05T10:00:00Z",
        crm={"deal_id": "deal-1"},
    )
    assert summary(await deliver(db_engine, producer, explicit)) == [
        ("acme:rep-1", 1, "attributed", "deal-9")
    ]
    assert (await current(db_engine, explicit.activity_id)).account_id == "acc-1"


async def test_a_rep_is_known_by_every_email_and_phone(db_engine: AsyncEngine) -> None:
    producer = RecordingProducer()
    await _setup(db_engine, producer)
    call = activity(
        "c-1",
        source="dialer",
        kind="call",
        occurred_at="2026-11-02T10:00:00Z",
        duration_seconds=60,
        participants=[
            {"phone": "+14155550002", "role": "caller"},
            {"phone": "+12125550100", "role": "callee"},
        ],
    )
    second_address = email("e-1", "ana.s@seller.example", "bo@buyer.example", at="2026-11-02T11:00:00Z")
    sent = await deliver(db_engine, producer, call, second_address)
    assert summary(sent) == [
        ("acme:rep-1", 1, "attributed", "deal-1"),
        ("acme:rep-1", 1, "attributed", "deal-1"),
    ]
    assert [(s.event.rep_id, s.event.team_id) for s in sent] == [("rep-1", "team-b"), ("rep-1", "team-b")]


async def test_internal_domains_come_from_rep_emails_or_the_tenant_settings(db_engine: AsyncEngine) -> None:
    producer = RecordingProducer()
    await _setup(db_engine, producer)
    colleague = email("e-1", "ana@seller.example", "pat@seller.example", at="2026-11-02T10:00:00Z")
    group = email("e-2", "ana@seller.example", "ops@seller-group.example", at="2026-11-02T11:00:00Z")
    # Derived from the reps' addresses: seller.example is internal, seller-group.example is not.
    assert summary(await deliver(db_engine, producer, colleague, group)) == [
        ("acme:rep-1", 1, "internal", None),
        ("acme:rep-1", 1, "unmatched", None),
    ]
    await set_tenant_settings(db_engine, {"internal_domains": ["seller.example", "seller-group.example"]})
    later = email("e-3", "ana@seller.example", "ops@seller-group.example", at="2026-11-02T12:00:00Z")
    assert summary(await deliver(db_engine, producer, later)) == [("acme:rep-1", 1, "internal", None)]


async def test_the_team_is_the_membership_valid_on_the_activity_day_and_follows_changes(
    db_engine: AsyncEngine,
) -> None:
    producer = RecordingProducer()
    await _setup(db_engine, producer)
    june = email("e-1", "ana@seller.example", "pat@seller.example", at="2026-06-30T23:00:00Z")
    july = email("e-2", "ana@seller.example", "pat@seller.example", at="2026-07-01T00:30:00Z")
    sent = await deliver(db_engine, producer, june, july)
    assert [(s.event.activity_id, s.event.version, s.event.team_id) for s in sent] == [
        (june.activity_id, 1, "team-a"),
        (july.activity_id, 1, "team-b"),
    ]
    moved = entity(
        entity_type="team_membership",
        id="m2",
        rep_id="rep-1",
        team_id="team-b",
        valid_from="2026-08-01",
        updated_at="2026-11-05T00:00:00Z",
    )
    sent = await deliver(db_engine, producer, moved)
    # Only the July activity lost its team; June's team-a membership did not change.
    assert [(s.event.activity_id, s.event.version, s.event.team_id) for s in sent] == [
        (july.activity_id, 2, None)
    ]
    assert (await current(db_engine, june.activity_id)).version == 1


async def test_a_thread_reply_inherits_from_the_newest_earlier_message_never_a_long_closed_deal(
    db_engine: AsyncEngine,
) -> None:
    producer = RecordingProducer()
    await _setup(db_engine, producer)
    old_deal = entity(
        entity_type="deal",
        id="deal-old",
        account_id="acc-1",
        owner_rep_id="rep-1",
        created_at="2024-10-01T00:00:00Z",
        closed_at="2025-01-10T00:00:00Z",
        is_closed=True,
        contacts=[{"contact_id": "con-1", "role": "champion"}],
    )
    first = email(
        "e-1", "ana@seller.example", "bo@buyer.example", at="2024-12-01T10:00:00Z", thread_id="th-old"
    )
    assert summary(await deliver(db_engine, producer, old_deal, first)) == [
        ("acme:rep-1", 1, "attributed", "deal-old")
    ]
    revived = email(
        "e-2",
        "zed@gmail.com",
        "ana@seller.example",
        at="2026-11-02T10:00:00Z",
        thread_id="th-old",
        direction="inbound",
        outcome="received",
    )
    assert summary(await deliver(db_engine, producer, revived)) == [("acme:rep-1", 1, "unmatched", None)]

    to_bo = email("e-3", "ana@seller.example", "bo@buyer.example", at="2026-11-02T10:00:00Z", thread_id="th")
    to_cy = email("e-4", "ana@seller.example", "cy@buyer.example", at="2026-11-04T10:00:00Z", thread_id="th")
    reply_between = email(
        "e-5",
        "zed@gmail.com",
        "ana@seller.example",
        at="2026-11-03T10:00:00Z",
        thread_id="th",
        direction="inbound",
        outcome="received",
    )
    reply_after = email(
        "e-6",
        "zed@gmail.com",
        "ana@seller.example",
        at="2026-11-05T10:00:00Z",
        thread_id="th",
        direction="inbound",
        outcome="received",
    )
    # One batch, delivered out of order: each reply sees the message just before it.
    sent = await deliver(db_engine, producer, reply_after, to_cy, reply_between, to_bo)
    by_activity = {s.event.activity_id: (s.event.status.value, s.event.deal_id) for s in sent}
    assert by_activity == {
        to_bo.activity_id: ("attributed", "deal-1"),
        reply_between.activity_id: ("attributed", "deal-1"),
        to_cy.activity_id: ("attributed", "deal-2"),
        reply_after.activity_id: ("attributed", "deal-2"),
    }
    assert (await current(db_engine, reply_after.activity_id)).rule_path == "thread"


async def test_the_loader_keeps_closed_deals_inside_the_grace_window_and_loads_deal_owners(
    db_engine: AsyncEngine,
) -> None:
    producer = RecordingProducer()
    await _setup(db_engine, producer)
    await deliver(
        db_engine,
        producer,
        entity(entity_type="rep", id="rep-2", emails=["rik@seller.example"]),
        entity(
            entity_type="team_membership", id="m3", rep_id="rep-2", team_id="team-a", valid_from="2026-01-01"
        ),
        entity(
            entity_type="deal",
            id="deal-recent",
            account_id="acc-1",
            owner_rep_id="rep-2",
            created_at="2026-08-01T00:00:00Z",
            closed_at="2026-10-25T00:00:00Z",
            is_closed=True,
        ),
        entity(
            entity_type="deal",
            id="deal-ancient",
            account_id="acc-1",
            owner_rep_id="rep-2",
            created_at="2025-01-01T00:00:00Z",
            closed_at="2025-03-01T00:00:00Z",
            is_closed=True,
        ),
    )
    probe = email("e-1", "ana@seller.example", "bo@buyer.example", at="2026-11-02T10:00:00Z")
    async with db_engine.connect() as conn:
        refs = await load_reference_index(conn, TENANT, [probe], grace_days_after_closed=14)
    assert sorted(refs.deals) == ["deal-1", "deal-2", "deal-recent"]
    assert sorted(refs.reps) == ["rep-1", "rep-2"]
    assert [(m.team_id, str(m.valid_from)) for m in refs.memberships["rep-2"]] == [("team-a", "2026-01-01")]
    assert refs.internal_domains == {"seller.example"}


async def test_a_merged_account_hands_its_activities_to_the_survivor(db_engine: AsyncEngine) -> None:
    producer = RecordingProducer()
    await _setup(db_engine, producer)
    to_bo = email("e-1", "ana@seller.example", "bo@buyer.example", at="2026-11-02T10:00:00Z")
    assert summary(await deliver(db_engine, producer, to_bo)) == [("acme:rep-1", 1, "attributed", "deal-1")]
    later = "2026-11-05T00:00:00Z"
    merge = [
        entity(
            entity_type="account",
            id="acc-2",
            domains=["buyer.example", "buyer-group.example"],
            updated_at=later,
        ),
        entity(entity_type="account", id="acc-1", merged_into="acc-2", updated_at=later),
        entity(
            entity_type="contact",
            id="con-1",
            emails=["bo@buyer.example"],
            account_id="acc-2",
            updated_at=later,
        ),
        entity(
            entity_type="deal",
            id="deal-1",
            account_id="acc-2",
            owner_rep_id="rep-1",
            created_at="2026-10-01T00:00:00Z",
            contacts=[{"contact_id": "con-1", "role": "champion"}],
            updated_at=later,
        ),
    ]
    sent = await deliver(db_engine, producer, *merge)
    assert [(s.event.version, s.event.status.value, s.event.account_id, s.event.deal_id) for s in sent] == [
        (2, "attributed", "acc-2", "deal-1")
    ]
    explicit = email(
        "e-2",
        "ana@seller.example",
        "zed@elsewhere.example",
        at="2026-11-06T10:00:00Z",
        crm={"account_id": "acc-1"},
    )
    sent = await deliver(db_engine, producer, explicit)
    # deal-2 stayed on the merged account (the CRM did not move it): only deal-1 is a candidate.
    assert [(s.event.status.value, s.event.account_id, s.event.deal_id) for s in sent] == [
        ("attributed", "acc-2", "deal-1")
    ]


async def test_a_merged_contact_passes_its_deal_roles_to_the_survivor(db_engine: AsyncEngine) -> None:
    producer = RecordingProducer()
    await _setup(db_engine, producer)
    later = "2026-11-05T00:00:00Z"
    await deliver(
        db_engine,
        producer,
        entity(entity_type="contact", id="con-2", account_id="acc-1", merged_into="con-1", updated_at=later),
        entity(
            entity_type="contact",
            id="con-1",
            emails=["bo@buyer.example", "cy@buyer.example"],
            account_id="acc-1",
            updated_at=later,
        ),
    )
    # deal-2 still names con-2: Cy is now Bo, who holds a role on both deals.
    to_cy = email("e-1", "ana@seller.example", "cy@buyer.example", at="2026-11-06T10:00:00Z")
    sent = await deliver(db_engine, producer, to_cy)
    assert summary(sent) == [("acme:rep-1", 1, "ambiguous", "deal-2")]
    assert sent[0].event.secondary_deal_ids == ("deal-1",)
    assert sent[0].event.facts.external_contact_ids == ("con-1",)


async def test_a_deleted_rep_leaves_her_identities_dated_and_a_merged_one_hands_them_over(
    db_engine: AsyncEngine,
) -> None:
    """The tombstone of a live rep keeps what she held (emails and phones) until her deletion, but
    an address another live rep lists too (the same person from another feed); a tombstone
    re-sent later moves nothing; a merge hands everything to the survivor."""
    producer = RecordingProducer()
    await _setup(db_engine, producer)
    hubspot_ana = entity(entity_type="rep", id="7701", emails=["ana@seller.example"])
    cy = entity(entity_type="rep", id="rep-2", emails=["cy@seller.example"], phones=["+14155550009"])
    await deliver(db_engine, producer, hubspot_ana, cy)
    renamed = entity(
        entity_type="rep", id="rep-2", emails=["cy.new@seller.example"], updated_at="2026-11-05T00:00:00Z"
    )
    await deliver(db_engine, producer, renamed)
    async with db_engine.connect() as conn:
        former = await conn.execute(
            text("SELECT identity, rep_id FROM ref_rep_former_identities WHERE tenant_id = :t"), {"t": TENANT}
        )
        assert [tuple(r) for r in former] == [("cy@seller.example", "rep-2")]
    left = "2026-11-10T00:00:00Z"
    await deliver(db_engine, producer, entity(entity_type="rep", id="rep-1", deleted=True, updated_at=left))
    await deliver(
        db_engine,
        producer,
        entity(entity_type="rep", id="rep-1", deleted=True, updated_at="2026-11-20T00:00:00Z"),
    )
    await deliver(
        db_engine,
        producer,
        entity(entity_type="rep", id="rep-2", merged_into="7701", updated_at="2026-11-12T00:00:00Z"),
    )
    async with db_engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT identity, rep_id, until FROM ref_rep_former_identities WHERE tenant_id = :t ORDER BY identity"
            ),
            {"t": TENANT},
        )
        kept = [tuple(r) for r in rows]
    until = datetime(2026, 11, 10, tzinfo=UTC)
    assert kept == [
        ("+14155550001", "rep-1", until),
        ("+14155550002", "rep-1", until),
        ("ana.s@seller.example", "rep-1", until),
    ]
