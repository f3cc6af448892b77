"""CRM data as integrators send it, through ingest, the real broker, attribution and PostgreSQL.

Phones typed the way people type them, a junk phone in a batch, and (below) late deals and one
person known to several sources.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.contracts.activities import activity_id_for
from libs.common.settings import DatabaseSettings, KafkaSettings
from libs.common.tenancy import create_tenant
from libs.common.testing.stack import TEST_SECRET_KEY, in_process_stack
from tests.integration.crm_support import email_from_ana
from tests.integration.polling import eventually, poll_rows, references_landed

T0 = "2026-11-01T00:00:00Z"
TENANT = "acme"


def _crm(*entities: dict[str, Any]) -> dict[str, Any]:
    return {"source": "test", "entities": [{"updated_at": T0, **e} for e in entities]}


async def _sync_crm(stack: Any, engine: AsyncEngine, auth: dict[str, str], *entities: dict[str, Any]) -> None:
    """The entities through ``POST /v1/crm/sync`` (202), once attribution holds them: the
    activities posted after are decided with them."""
    body = _crm(*entities)
    response = await stack.ingest.post("/v1/crm/sync", json=body, headers=auth)
    assert response.status_code == 202, response.text
    await references_landed(engine, TENANT, body["entities"])


async def _post_mail(
    stack: Any,
    engine: AsyncEngine,
    auth: dict[str, str],
    activities: list[dict[str, Any]],
    names: tuple[str, ...],
) -> dict[str, Any]:
    """``activities`` through ``POST /v1/events`` (202); the attribution of each mail named, once it is there."""
    posted = await stack.ingest.post("/v1/events", json={"activities": activities}, headers=auth)
    assert posted.status_code == 202, posted.text
    return {name: await _attribution(engine, activity_id_for(TENANT, "mail", name)) for name in names}


REP = {"entity_type": "rep", "id": "rep-1", "emails": ["ana@seller.example"], "phones": ["+14155550001"]}
ACCOUNT = {"entity_type": "account", "id": "acc-1", "domains": ["buyer.example"]}
DEAL = {
    "entity_type": "deal",
    "id": "deal-1",
    "account_id": "acc-1",
    "owner_rep_id": "rep-1",
    "created_at": "2026-10-01T00:00:00Z",
    "contacts": [{"contact_id": "con-1", "role": "champion"}],
}


async def _ingest_auth(engine: AsyncEngine) -> dict[str, str]:
    """Creates the tenant; the headers that authenticate its ingest key."""
    async with engine.begin() as conn:
        tenant = await create_tenant(conn, TENANT, TEST_SECRET_KEY)
    keys: dict[str, str] = tenant["api_keys"]  # type: ignore[assignment]
    return {"Authorization": f"Bearer {keys['ingest']}"}


def _call(external_id: str, callee: str, at: str = "2026-11-02T17:00:00Z") -> dict[str, Any]:
    return {
        "source": "dialer",
        "external_id": external_id,
        "kind": "call",
        "direction": "outbound",
        "outcome": "connected",
        "occurred_at": at,
        "duration_seconds": 60,
        "participants": [{"phone": "+14155550001", "role": "caller"}, {"phone": callee, "role": "callee"}],
    }


async def _attribution(engine: AsyncEngine, activity_id: uuid.UUID, deadline_s: float = 60) -> Any:
    async def row() -> Any:
        async with engine.connect() as conn:
            return (
                await conn.execute(
                    text("SELECT * FROM attributions WHERE tenant_id = :t AND activity_id = :a"),
                    {"t": TENANT, "a": activity_id},
                )
            ).first()

    return await eventually(
        row, lambda r: r is not None, deadline_s, f"attribution of activity {activity_id}"
    )


async def test_a_call_matches_a_contact_stored_in_a_national_format_and_a_junk_phone_only_warns(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    auth = await _ingest_auth(db_engine)
    contact = {
        "entity_type": "contact",
        "id": "con-1",
        "account_id": "acc-1",
        "phones": ["(415) 555-0100", "not a phone at all", "415.555.0100"],
    }
    async with in_process_stack(kafka_settings, database_settings, ("ingest", "attribution")) as stack:
        sent = _crm(REP, ACCOUNT, contact, DEAL)
        crm = await stack.ingest.post("/v1/crm/sync", json=sent, headers=auth)
        assert crm.status_code == 202, crm.text
        assert crm.json() == {
            "accepted": 4,
            "warnings": [
                {
                    "index": 2,
                    "field": "entities.2.phones.1",
                    "reason": "not a phone number; the phone was dropped, the contact accepted",
                }
            ],
        }
        await references_landed(db_engine, TENANT, sent["entities"])
        posted = await stack.ingest.post(
            "/v1/events",
            json={"activities": [_call("c-e164", "+14155550100"), _call("c-national", "415 555 0100")]},
            headers=auth,
        )
        assert posted.status_code == 202, posted.text
        for external_id in ("c-e164", "c-national"):
            row = await _attribution(db_engine, activity_id_for(TENANT, "dialer", external_id))
            assert (row.status, row.deal_id, row.account_id, row.rep_id) == (
                "attributed",
                "deal-1",
                "acc-1",
                "rep-1",
            )
        refused = await stack.ingest.post(
            "/v1/events", json={"activities": [_call("c-short", "12345")]}, headers=auth
        )
    async with db_engine.connect() as conn:
        stored = (
            await conn.execute(
                text("SELECT phones FROM ref_contacts WHERE tenant_id = :t AND contact_id = 'con-1'"),
                {"t": TENANT},
            )
        ).one()
    assert list(stored.phones) == ["+14155550100"]
    assert refused.status_code == 422
    assert [(e["field"], e["reason"]) for e in refused.json()["errors"]] == [
        (
            "activities.0.participants.1.phone",
            "a short code, not a person's line (E.164 such as +14155550100, or a national number)",
        )
    ]


async def _poll(engine: AsyncEngine, sql: str, done: Any, deadline_s: float = 60, **params: Any) -> Any:
    return await poll_rows(engine, sql, {"t": TENANT, **params}, done, deadline_s)


async def test_an_email_on_deal_a_moves_to_deal_b_when_b_arrives_with_the_contacts_role(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    auth = await _ingest_auth(db_engine)
    contact = {"entity_type": "contact", "id": "con-2", "account_id": "acc-1", "emails": ["bo@buyer.example"]}
    deal_a = {**DEAL, "id": "deal-a", "contacts": []}
    deal_b = {
        **DEAL,
        "id": "deal-b",
        "created_at": "2026-10-20T00:00:00Z",
        "contacts": [{"contact_id": "con-2", "role": "champion"}],
    }
    mail = email_from_ana("m-1")
    mail_id = activity_id_for(TENANT, "mail", "m-1")
    services = ("ingest", "attribution", "metrics")
    async with in_process_stack(kafka_settings, database_settings, services) as stack:
        await _sync_crm(stack, db_engine, auth, REP, ACCOUNT, contact, deal_a)
        posted = await stack.ingest.post("/v1/events", json={"activities": [mail]}, headers=auth)
        assert posted.status_code == 202, posted.text
        await _poll(
            db_engine,
            "SELECT deal_id, version FROM metric_contributions WHERE tenant_id = :t AND activity_id = :a",
            lambda rows: rows == [("deal-a", 1)],
            a=mail_id,
        )
        later = await stack.ingest.post(
            "/v1/crm/sync", json={**_crm(deal_b), "entities": [{**deal_b, "updated_at": T0}]}, headers=auth
        )
        assert later.status_code == 202, later.text
        await _poll(
            db_engine,
            "SELECT deal_id, version FROM metric_contributions WHERE tenant_id = :t AND activity_id = :a",
            lambda rows: rows == [("deal-b", 2)],
            a=mail_id,
        )
    async with db_engine.connect() as conn:
        history = [
            tuple(r)
            for r in await conn.execute(
                text(
                    "SELECT version, status, deal_id FROM attribution_history "
                    "WHERE tenant_id = :t AND activity_id = :a ORDER BY version"
                ),
                {"t": TENANT, "a": mail_id},
            )
        ]
        rollups = [
            tuple(r)
            for r in await conn.execute(
                text(
                    # Deals are credited on the contributions (no deal rollups are kept).
                    "SELECT deal_id, sum(activities) FROM metric_contributions WHERE tenant_id = :t "
                    "AND deal_id IS NOT NULL GROUP BY deal_id ORDER BY deal_id"
                ),
                {"t": TENANT},
            )
        ]
    assert history == [(1, "attributed", "deal-a"), (2, "attributed", "deal-b")]
    assert rollups == [("deal-b", 1)]


async def test_the_same_person_from_three_sources_is_one_rep_and_history_is_re_credited(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    auth = await _ingest_auth(db_engine)
    contact = {"entity_type": "contact", "id": "con-3", "account_id": "acc-1", "emails": ["cy@buyer.example"]}
    hubspot_owner = {"entity_type": "rep", "id": "7701", "emails": ["alice@seller.example"]}
    deal = {**DEAL, "owner_rep_id": "7701", "contacts": [{"contact_id": "con-3", "role": "champion"}]}
    canonical = {"entity_type": "rep", "id": "rep-a", "emails": ["alice@seller.example"]}
    team = {"entity_type": "team", "id": "team-a"}
    membership = {
        "entity_type": "team_membership",
        "id": "m-a",
        "rep_id": "rep-a",
        "team_id": "team-a",
        "valid_from": "2026-01-01",
    }
    salesforce_user = {
        "entity_type": "rep",
        "id": "0055j000004Vb8nAAC",
        "emails": ["Alice@Seller.example"],
        "phones": ["(415) 555-0123"],
    }
    mail = {
        "source": "mail",
        "external_id": "m-alice",
        "kind": "email",
        "direction": "outbound",
        "outcome": "sent",
        "occurred_at": "2026-11-02T16:00:00Z",
        "participants": [
            {"email": "alice@seller.example", "role": "from"},
            {"email": "cy@buyer.example", "role": "to"},
        ],
    }
    call = {**_call("c-alice", "+14155550100"), "participants": [
        {"phone": "+14155550123", "role": "caller"},
        {"email": "cy@buyer.example", "role": "callee"},
    ]}  # fmt: skip
    inbox = {
        **mail,
        "external_id": "m-inbox",
        "direction": "inbound",
        "outcome": "received",
        "participants": [
            {"email": "cy@buyer.example", "role": "from"},
            {"email": "sales@seller.example", "role": "to"},
        ],
        "crm": {"owner_rep_id": "0055j000004Vb8nAAC"},
    }
    ids = {name: activity_id_for(TENANT, source, name) for name, source in (
        ("m-alice", "mail"), ("c-alice", "dialer"), ("m-inbox", "mail"))}  # fmt: skip
    current = "SELECT rep_id, team_id, version FROM attributions WHERE tenant_id = :t AND activity_id = :a"
    async with in_process_stack(kafka_settings, database_settings, ("ingest", "attribution")) as stack:
        first: dict[str, Any] = {
            "source": "hubspot",
            "entities": [{"updated_at": T0, **e} for e in (hubspot_owner, ACCOUNT, contact, deal)],
        }
        assert (await stack.ingest.post("/v1/crm/sync", json=first, headers=auth)).status_code == 202
        await references_landed(db_engine, TENANT, first["entities"])
        assert (
            await stack.ingest.post("/v1/events", json={"activities": [mail]}, headers=auth)
        ).status_code == 202
        await _poll(db_engine, current, lambda rows: rows == [("7701", None, 1)], a=ids["m-alice"])

        synced = await stack.ingest.post("/v1/crm/sync", json=_crm(canonical, team, membership), headers=auth)
        assert synced.status_code == 202
        await _poll(db_engine, current, lambda rows: rows == [("rep-a", "team-a", 2)], a=ids["m-alice"])

        sfdc: dict[str, Any] = {"source": "salesforce", "entities": [{"updated_at": T0, **salesforce_user}]}
        assert (await stack.ingest.post("/v1/crm/sync", json=sfdc, headers=auth)).status_code == 202
        await references_landed(db_engine, TENANT, sfdc["entities"])
        posted = await stack.ingest.post("/v1/events", json={"activities": [call, inbox]}, headers=auth)
        assert posted.status_code == 202, posted.text
        for name in ("c-alice", "m-inbox"):
            await _poll(db_engine, current, lambda rows: rows == [("rep-a", "team-a", 1)], a=ids[name])

        # HubSpot files a team for its owner id: it is the person's team from that day on.
        moved_team = {
            "entity_type": "team_membership",
            "id": "m-hs",
            "rep_id": "7701",
            "team_id": "team-b",
            "valid_from": "2026-11-01",
        }
        hs_team = {
            "source": "hubspot",
            "entities": [{"updated_at": T0, **e} for e in ({**team, "id": "team-b"}, moved_team)],
        }
        assert (await stack.ingest.post("/v1/crm/sync", json=hs_team, headers=auth)).status_code == 202
        await _poll(db_engine, current, lambda rows: rows == [("rep-a", "team-b", 3)], a=ids["m-alice"])
    async with db_engine.connect() as conn:
        people = [
            tuple(r)
            for r in await conn.execute(
                text("SELECT rep_id, source, alias_of FROM ref_reps WHERE tenant_id = :t ORDER BY rep_id"),
                {"t": TENANT},
            )
        ]
        history = [
            tuple(r)
            for r in await conn.execute(
                text(
                    "SELECT version, rep_id, team_id FROM attribution_history WHERE tenant_id = :t "
                    "AND activity_id = :a ORDER BY version"
                ),
                {"t": TENANT, "a": ids["m-alice"]},
            )
        ]
    assert people == [
        ("0055j000004Vb8nAAC", "salesforce", "rep-a"),
        ("7701", "hubspot", "rep-a"),
        ("rep-a", "test", None),
    ]
    assert history == [(1, "7701", None), (2, "rep-a", "team-a"), (3, "rep-a", "team-b")]


async def test_a_subject_naming_one_of_two_deals_of_the_same_contact_and_owner_decides_between_them(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    auth = await _ingest_auth(db_engine)
    async with db_engine.begin() as conn:
        await conn.execute(
            text("UPDATE tenants SET settings = CAST(:s AS jsonb) WHERE tenant_id = :t"),
            {"t": TENANT, "s": '{"privacy": {"keep_subjects": true}}'},
        )
    contact = {"entity_type": "contact", "id": "con-1", "account_id": "acc-1", "emails": ["bo@buyer.example"]}
    analytics = {**DEAL, "id": "deal-analytics", "name": "Buyer - Analytics add-on"}
    renewal = {**DEAL, "id": "deal-renewal", "name": "Buyer - Platform renewal"}

    def mail(external_id: str, subject: str | None) -> dict[str, Any]:
        return email_from_ana(external_id, subject=subject)

    async with in_process_stack(kafka_settings, database_settings, ("ingest", "attribution")) as stack:
        await _sync_crm(stack, db_engine, auth, REP, ACCOUNT, contact, analytics, renewal)
        posted = await stack.ingest.post(
            "/v1/events",
            json={"activities": [mail("m-named", "Re: Platform renewal - pricing"), mail("m-plain", "Hi")]},
            headers=auth,
        )
        assert posted.status_code == 202, posted.text
        named = await _attribution(db_engine, activity_id_for(TENANT, "mail", "m-named"))
        plain = await _attribution(db_engine, activity_id_for(TENANT, "mail", "m-plain"))

    assert (named.status, named.deal_id, list(named.secondary_deal_ids), named.explanation["rule_path"]) == (
        "attributed",
        "deal-renewal",
        [],
        "subject",
    )
    # Nothing else tells the two deals apart: a close call, both named.
    assert plain.status == "ambiguous"
    assert {plain.deal_id, *plain.secondary_deal_ids} == {"deal-analytics", "deal-renewal"}


async def test_an_unlisted_alias_made_from_a_reps_name_credits_that_rep_not_the_deal_owner(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    auth = await _ingest_auth(db_engine)
    ana = {**REP, "name": "Ana Seller"}
    bo = {"entity_type": "rep", "id": "rep-2", "name": "Bo Berg", "emails": ["bo@seller.example"]}
    contact = {
        "entity_type": "contact",
        "id": "con-1",
        "account_id": "acc-1",
        "emails": ["amy@buyer.example"],
    }
    deal = {**DEAL, "owner_rep_id": "rep-2"}
    mail = {
        "source": "mail",
        "external_id": "m-alias",
        "kind": "email",
        "direction": "outbound",
        "outcome": "sent",
        "occurred_at": "2026-11-02T16:00:00Z",
        "participants": [
            {"email": "Ana.Seller@seller.example", "role": "from"},
            {"email": "amy@buyer.example", "role": "to"},
        ],
    }
    async with in_process_stack(kafka_settings, database_settings, ("ingest", "attribution")) as stack:
        await _sync_crm(stack, db_engine, auth, ana, bo, ACCOUNT, contact, deal)
        posted = await stack.ingest.post("/v1/events", json={"activities": [mail]}, headers=auth)
        assert posted.status_code == 202, posted.text
        row = await _attribution(db_engine, activity_id_for(TENANT, "mail", "m-alias"))

    assert (row.status, row.deal_id, row.rep_id) == ("attributed", "deal-1", "rep-1")
    assert row.explanation["rep"]["via"] == "from"


async def test_activities_that_arrive_before_their_reps_get_their_rep_when_the_reps_arrive(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """An integrator posts the CRM and the first activities back to back; the two topics race, so
    an internal meeting or an automated email (never parked: nothing about them is unsure) may be
    decided before its rep's record is stored. The rep's arrival credits it then."""
    auth = await _ingest_auth(db_engine)
    meeting = {
        "source": "calendar",
        "external_id": "standup-1",
        "kind": "meeting",
        "direction": "internal",
        "outcome": "held",
        "occurred_at": "2026-11-02T09:00:00Z",
        "duration_seconds": 900,
        "participants": [
            {"email": "ana@seller.example", "role": "organizer"},
            {"email": "cy@seller.example", "role": "attendee"},
        ],
    }
    notice = {
        "source": "mail",
        "external_id": "noreply-1",
        "kind": "email",
        "direction": "inbound",
        "outcome": "received",
        "occurred_at": "2026-11-02T10:00:00Z",
        "participants": [
            {"email": "noreply@buyer.example", "role": "from"},
            {"email": "ana@seller.example", "role": "to"},
        ],
    }
    ids = [activity_id_for(TENANT, "calendar", "standup-1"), activity_id_for(TENANT, "mail", "noreply-1")]
    async with in_process_stack(kafka_settings, database_settings, ("ingest", "attribution")) as stack:
        posted = await stack.ingest.post("/v1/events", json={"activities": [meeting, notice]}, headers=auth)
        assert posted.status_code == 202, posted.text
        await _poll(
            db_engine,
            "SELECT status, rep_id, version FROM attributions WHERE tenant_id = :t AND activity_id = ANY(:ids) "
            "ORDER BY occurred_at",
            lambda rows: rows == [("unmatched", None, 1), ("excluded", None, 1)],
            ids=ids,
        )
        # The rep and its membership have different keys, so different partitions of the CRM
        # topic (rep-1 on 0, m-1 on 1): posted together they may reach attribution in one batch
        # (one new version) or two (two). Sent one after the other, each change is one version.
        membership = {
            "entity_type": "team_membership",
            "id": "m-1",
            "rep_id": "rep-1",
            "team_id": "team-1",
            "valid_from": "2026-01-01",
        }
        await _sync_crm(stack, db_engine, auth, REP, {"entity_type": "team", "id": "team-1"})
        await _poll(
            db_engine,
            "SELECT status, rep_id, team_id, version FROM attributions WHERE tenant_id = :t "
            "AND activity_id = ANY(:ids) ORDER BY occurred_at",
            lambda rows: rows == [("internal", "rep-1", None, 2), ("excluded", "rep-1", None, 2)],
            ids=ids,
        )
        crm = await stack.ingest.post("/v1/crm/sync", json=_crm(membership), headers=auth)
        assert crm.status_code == 202, crm.text
        await _poll(
            db_engine,
            "SELECT status, rep_id, team_id, version FROM attributions WHERE tenant_id = :t "
            "AND activity_id = ANY(:ids) ORDER BY occurred_at",
            lambda rows: rows == [("internal", "rep-1", "team-1", 3), ("excluded", "rep-1", "team-1", 3)],
            ids=ids,
        )


async def test_a_call_credited_to_the_deal_owner_moves_to_the_caller_when_the_dialer_user_arrives(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """A colleague's number is known only to the dialer, whose users reach the CRM feed after the
    first calls: until then the deal's owner is credited; then the caller, as one rep with the
    canonical record of the same person."""
    auth = await _ingest_auth(db_engine)
    contact = {"entity_type": "contact", "id": "con-1", "account_id": "acc-1", "phones": ["(415) 555-0100"]}
    call = {
        **_call("c-cy", "+14155550100"),
        "participants": [
            {"phone": "+14155550002", "role": "caller"},
            {"phone": "+14155550100", "role": "callee"},
        ],
    }
    call_id = activity_id_for(TENANT, "dialer", "c-cy")
    async with in_process_stack(kafka_settings, database_settings, ("ingest", "attribution")) as stack:
        await _sync_crm(stack, db_engine, auth, REP, ACCOUNT, contact, DEAL)
        posted = await stack.ingest.post("/v1/events", json={"activities": [call]}, headers=auth)
        assert posted.status_code == 202, posted.text
        await _poll(
            db_engine,
            "SELECT deal_id, rep_id, explanation -> 'rep' ->> 'via', version FROM attributions "
            "WHERE tenant_id = :t AND activity_id = :a",
            lambda rows: rows == [("deal-1", "rep-1", "deal_owner", 1)],
            a=call_id,
        )
        canonical = {"entity_type": "rep", "id": "rep-2", "emails": ["cy@seller.example"]}
        dialer = {
            "entity_type": "rep",
            "id": "u-2",
            "emails": ["Cy@seller.example"],
            "phones": ["+14155550002"],
        }
        for source, rep in (("api", canonical), ("aircall", dialer)):
            sent = await stack.ingest.post("/v1/crm/sync", json={**_crm(rep), "source": source}, headers=auth)
            assert sent.status_code == 202, sent.text
        await _poll(
            db_engine,
            "SELECT deal_id, rep_id, explanation -> 'rep' ->> 'via', version FROM attributions "
            "WHERE tenant_id = :t AND activity_id = :a",
            lambda rows: rows == [("deal-1", "rep-2", "caller", 2)],
            a=call_id,
        )


async def test_mail_from_a_reps_former_address_stays_hers_until_the_address_is_someone_elses(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """Ana's record is renamed (``ana@`` becomes ``ana.ruiz@``, same id). Her mail from the old
    address that arrives afterwards is hers, not the deal owner's; once the address is issued to
    a new rep, mail from it is the new rep's, while mail of before her rename, posted after the
    re-issue, is still hers (rules 2026.12.40: before, the new rep's, her former address gone)."""
    auth = await _ingest_auth(db_engine)
    bo = {"entity_type": "rep", "id": "rep-2", "emails": ["bo@seller.example"]}
    contact = {"entity_type": "contact", "id": "con-1", "account_id": "acc-1", "emails": ["bo@buyer.example"]}
    renamed = {**REP, "emails": ["ana.ruiz@seller.example"], "updated_at": "2026-11-10T00:00:00Z"}
    newcomer = {
        "entity_type": "rep",
        "id": "rep-3",
        "emails": ["ana@seller.example"],
        "updated_at": "2026-11-15T00:00:00Z",
    }
    async with in_process_stack(kafka_settings, database_settings, ("ingest", "attribution")) as stack:
        await _sync_crm(stack, db_engine, auth, REP, bo, ACCOUNT, contact, {**DEAL, "owner_rep_id": "rep-2"})
        await _sync_crm(stack, db_engine, auth, renamed)
        late = await _post_mail(
            stack,
            db_engine,
            auth,
            [email_from_ana("m-late", occurred_at="2026-11-05T10:00:00Z")],
            ("m-late",),
        )
        await _sync_crm(stack, db_engine, auth, newcomer)
        reissued = await _post_mail(
            stack,
            db_engine,
            auth,
            [
                email_from_ana("m-reissued", occurred_at="2026-11-20T10:00:00Z"),
                email_from_ana("m-late-after-reissue", occurred_at="2026-11-06T10:00:00Z"),
            ],
            ("m-reissued", "m-late-after-reissue"),
        )
        former = await _poll(
            db_engine,
            "SELECT identity, rep_id, until, renamed FROM ref_rep_former_identities WHERE tenant_id = :t",
            lambda rows: len(rows) == 1,
        )

    row = late["m-late"]
    assert (row.status, row.deal_id, row.rep_id) == ("attributed", "deal-1", "rep-1")
    assert row.explanation["rep"]["via"] == "from"
    row = reissued["m-reissued"]
    assert (row.status, row.deal_id, row.rep_id) == ("attributed", "deal-1", "rep-3")
    row = reissued["m-late-after-reissue"]
    assert (row.status, row.deal_id, row.rep_id) == ("attributed", "deal-1", "rep-1")
    assert row.explanation["rep"]["via"] == "from"
    # Hers until her rename; an address replaced on a version naming her as before is no rename.
    assert [tuple(r) for r in former] == [
        ("ana@seller.example", "rep-1", datetime(2026, 11, 10, tzinfo=UTC), False)
    ]


async def test_a_deleted_rep_keeps_what_she_did_before_she_left_when_it_is_re_decided(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """Ana (rep-1) mails and calls Bo about her deal, then leaves: the canonical sync deletes her
    record on 10 November; the deal is given to Cy (rep-2) with its start corrected, which
    re-decides the deal's window.
    What she did before she left stays hers (no new version); mail from her address after she
    left is the deal owner's, and once the address is re-issued to a new hire (rep-3), his. Her
    earlier work stays hers even then."""
    auth = await _ingest_auth(db_engine)
    cy = {"entity_type": "rep", "id": "rep-2", "emails": ["cy@seller.example"]}
    contact = {
        "entity_type": "contact",
        "id": "con-1",
        "account_id": "acc-1",
        "emails": ["bo@buyer.example"],
        "phones": ["+14155550100"],
    }
    departed = {**REP, "deleted": True, "updated_at": "2026-11-10T00:00:00Z"}
    reassigned = {
        **DEAL,
        "owner_rep_id": "rep-2",
        "created_at": "2026-09-20T00:00:00Z",
        "updated_at": "2026-11-11T00:00:00Z",
    }
    newcomer = {**REP, "id": "rep-3", "updated_at": "2026-11-15T00:00:00Z"}
    who = "SELECT rep_id, version FROM attributions WHERE tenant_id = :t AND activity_id = ANY(:a) ORDER BY occurred_at"
    ids = [
        activity_id_for(TENANT, s, e) for s, e in (("mail", "m-1"), ("dialer", "c-1"), ("mail", "m-after"))
    ]
    async with in_process_stack(kafka_settings, database_settings, ("ingest", "attribution")) as stack:
        await _sync_crm(stack, db_engine, auth, REP, cy, ACCOUNT, contact, DEAL)
        posted = await stack.ingest.post(
            "/v1/events",
            json={"activities": [email_from_ana("m-1"), _call("c-1", "+14155550100")]},
            headers=auth,
        )
        assert posted.status_code == 202, posted.text
        await _poll(db_engine, who, lambda rows: rows == [("rep-1", 1), ("rep-1", 1)], a=ids)
        await _sync_crm(stack, db_engine, auth, departed)
        await _sync_crm(stack, db_engine, auth, reassigned)
        # One transaction applies the deal and re-decides its window: once the owner is stored,
        # the re-decisions are too.
        await _poll(
            db_engine,
            "SELECT owner_rep_id FROM ref_deals WHERE tenant_id = :t",
            lambda rows: rows == [("rep-2",)],
        )
        await _poll(db_engine, who, lambda rows: rows == [("rep-1", 1), ("rep-1", 1)], a=ids[:2])
        after = await _post_mail(
            stack,
            db_engine,
            auth,
            [email_from_ana("m-after", occurred_at="2026-11-12T10:00:00Z")],
            ("m-after",),
        )
        assert (after["m-after"].rep_id, after["m-after"].explanation["rep"]["via"]) == (
            "rep-2",
            "deal_owner",
        )
        await _sync_crm(stack, db_engine, auth, newcomer)
        await _poll(db_engine, who, lambda rows: rows == [("rep-1", 1), ("rep-1", 1), ("rep-3", 2)], a=ids)
