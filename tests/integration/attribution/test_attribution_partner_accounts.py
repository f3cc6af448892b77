"""A partner's deal yields to its customer's (rules 2026.12.28), through the real broker and
PostgreSQL: the account type as the canonical sync, HubSpot's company ``type`` and Salesforce's
``Account.Type`` send it, stored with the account and read with each deal by attribution."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.contracts.activities import activity_id_for
from libs.common.settings import DatabaseSettings, KafkaSettings
from libs.common.testing.stack import in_process_stack
from tests.integration.attribution.attribution_support import rows
from tests.integration.attribution.test_attribution_held_out_situations_mail import (
    ANA,
    T0,
    TENANT,
    _mail,
    _meeting,
    _run,
    _tenant,
    _world,
)
from tests.integration.attribution.test_attribution_real_crm import _attribution
from tests.integration.attribution.test_attribution_vendor_webhooks import HUBSPOT_CRM, _deliver, _mapped
from tests.integration.ingest.ingest_integration_support import dumps, outbound_message, setup_tenant
from tests.integration.polling import poll_json, references_landed


def _typed(crm: list[dict[str, Any]], account_id: str, **fields: Any) -> list[dict[str, Any]]:
    return [{**e, **fields} if (e["entity_type"], e["id"]) == ("account", account_id) else e for e in crm]


async def test_the_customer_and_partner_meeting_is_the_customers_deal_once_the_crm_types_the_partner(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """``s5-customer-partner`` of the held-out situations (untyped there: a close call), with
    Channel Partner typed as Salesforce types a reseller."""
    meetings = [
        _meeting("s5-customer-partner", ANA, ["hal@hooli.example", "cat@channel.example"], "Weekly sync"),
        _meeting(
            "s5-partner-named",
            ANA,
            ["hal@hooli.example", "cat@channel.example"],
            "Channel Partner reseller agreement",
        ),
        _meeting("s5-partner-alone", ANA, ["cat@channel.example"], "Weekly sync"),
    ]
    crm = _typed(_world(), "acc-rsl2", account_type="Channel Partner / Reseller")

    found = await _run(kafka_settings, database_settings, db_engine, crm, meetings)

    assert found == {
        # Hal (Hooli's buyer) and Cat (the reseller's), each on their own account's deal, both
        # Ana's: Hooli's deal, the reseller agreement beside it (engaged, not credited).
        "s5-customer-partner": ("attributed", "deal-s3b", ["deal-rsl2"], "rep-ana"),
        # The title names the partner's deal: that one.
        "s5-partner-named": ("attributed", "deal-rsl2", [], "rep-ana"),
        # Only the partner's people: the partner's deal.
        "s5-partner-alone": ("attributed", "deal-rsl2", [], "rep-ana"),
    }
    assert await rows(
        db_engine,
        "SELECT account_id, account_type, relationship FROM ref_accounts "
        "WHERE tenant_id = 'acme' AND account_id IN ('acc-rsl2', 'acc-s3b') ORDER BY account_id",
    ) == [("acc-rsl2", "Channel Partner / Reseller", "partner"), ("acc-s3b", None, None)]


async def test_mail_decided_for_the_resellers_deal_is_the_customers_once_the_crm_types_the_reseller(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """Ana writes to Channel Partner's Cat, Hooli's Hal copied: Cat's role leads (Hal's, copied,
    counts half), the reseller agreement. The CRM then types Channel Partner a reseller: the mail,
    attributed and not parked, is re-decided (a new version), Hooli's deal; untyped again, back."""
    keys = await _tenant(db_engine)
    ingest = {"Authorization": f"Bearer {keys['ingest']}"}
    read = {"Authorization": f"Bearer {keys['read']}"}
    entities = [{"updated_at": T0, **e} for e in _world()]
    mail = _mail("s3b-to-partner", ANA, ["cat@channel.example"], "Next steps", cc=("hal@hooli.example",))
    activity_id = activity_id_for(TENANT, "mail", "s3b-to-partner")
    partner = next(e for e in entities if e["id"] == "acc-rsl2")

    async def answer(version: int) -> tuple[str, str | None, list[str]]:
        body = await poll_json(
            stack.gateway,
            f"/v1/activities/{activity_id}",
            read,
            lambda b: (b.get("attribution") or {}).get("version") == version,
        )
        a = body["attribution"]
        return a["status"], a["deal_id"], a["secondary_deal_ids"]

    async def sync(account: dict[str, Any]) -> None:
        synced = await stack.ingest.post("/v1/crm/sync", json={"entities": [account]}, headers=ingest)
        assert synced.status_code == 202, synced.text
        await references_landed(db_engine, TENANT, [account])

    async with in_process_stack(
        kafka_settings, database_settings, ("ingest", "attribution", "gateway")
    ) as stack:
        await sync_all(stack, ingest, db_engine, entities)
        posted = await stack.ingest.post("/v1/events", json={"activities": [mail]}, headers=ingest)
        assert posted.status_code == 202, posted.text
        assert await answer(1) == ("attributed", "deal-rsl2", [])

        await sync({**partner, "account_type": "RESELLER", "updated_at": "2026-11-03T00:00:00Z"})
        assert await answer(2) == ("attributed", "deal-s3b", ["deal-rsl2"])

        await sync({**partner, "updated_at": "2026-11-04T00:00:00Z"})
        assert await answer(3) == ("attributed", "deal-rsl2", [])


async def sync_all(
    stack: Any, ingest: dict[str, str], engine: AsyncEngine, entities: list[dict[str, Any]]
) -> None:
    synced = await stack.ingest.post("/v1/crm/sync", json={"entities": entities}, headers=ingest)
    assert synced.status_code == 202, synced.text
    await references_landed(engine, TENANT, entities)


def _hubspot_object(object_type: str, object_id: str, properties: dict[str, str], **associations: str) -> Any:
    return {
        "objectType": object_type,
        "id": object_id,
        "properties": properties,
        "associations": {
            kind: {"results": [{"id": i, "type": f"x_to_{kind}"} for i in ids.split(",")]}
            for kind, ids in associations.items()
        },
        "createdAt": "2026-10-01T09:00:00.000Z",
        "updatedAt": "2026-11-01T09:00:00.000Z",
        "archived": False,
    }


def _hubspot_deal(deal_id: str, company: str, contact: str) -> Any:
    properties = {
        "createdate": "2026-10-01T09:00:00.000Z",
        "closedate": "2027-01-31T12:00:00.000Z",
        "dealname": f"Deal {deal_id}",
        "dealstage": "appointmentscheduled",
        "hs_lastmodifieddate": "2026-11-01T09:00:00.000Z",
        "hubspot_owner_id": "7701",
    }
    return _hubspot_object("deals", deal_id, properties, companies=company, contacts=contact)


async def test_a_hubspot_company_typed_reseller_yields_its_deal_to_the_customers(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """HubSpot: Globex (no type) and Channel Co (``type`` ``RESELLER``), a contact and a deal of
    Ana's each; Ana writes to the reseller's Cat, Globex's Bo copied, the mail filed with both."""
    await setup_tenant(db_engine)
    crm = [
        HUBSPOT_CRM[0],
        _hubspot_object("companies", "5501", {"name": "Globex", "domain": "globex.example"}),
        _hubspot_object(
            "companies", "5502", {"name": "Channel Co", "domain": "channel.example", "type": "RESELLER"}
        ),
        _hubspot_object("contacts", "901", {"email": "bo.buyer@globex.example"}, companies="5501"),
        _hubspot_object("contacts", "902", {"email": "cat@channel.example"}, companies="5502"),
        _hubspot_deal("3302", "5501", "901"),
        _hubspot_deal("3305", "5502", "902"),
    ]
    email = {
        "objectType": "emails",
        "id": "e-partner",
        "properties": {
            "hs_timestamp": "2026-11-20T15:00:00.000Z",
            "hs_email_direction": "EMAIL",
            "hs_email_from_email": "ana.seller@acme.example",
            "hs_email_to_email": "cat@channel.example",
            "hs_email_cc_email": "bo.buyer@globex.example",
            "hubspot_owner_id": "7701",
            "hs_lastmodifieddate": "2026-11-20T15:00:00.000Z",
        },
        "associations": {
            "contacts": {"results": [{"id": c, "type": "email_to_contact"} for c in ("901", "902")]}
        },
        "createdAt": "2026-11-20T15:00:00.000Z",
        "updatedAt": "2026-11-20T15:00:00.000Z",
        "archived": False,
    }
    async with in_process_stack(kafka_settings, database_settings, ("ingest", "attribution")) as stack:
        await _deliver(stack, "hubspot", dumps(crm))
        sent = _mapped(
            ("rep", "7701"), ("account", "5501"), ("account", "5502"), ("deal", "3302"), ("deal", "3305")
        )
        await references_landed(db_engine, TENANT, sent)
        await _deliver(stack, "hubspot", dumps([email]))
        row = await _attribution(db_engine, activity_id_for(TENANT, "hubspot", "e-partner"))

    assert (row.status, row.deal_id, row.secondary_deal_ids, row.rep_id) == (
        "attributed",
        "3302",
        ["3305"],
        "7701",
    )
    assert row.explanation["rule_path"] == "partner_yields"
    assert await rows(
        db_engine,
        "SELECT account_id, account_type, relationship FROM ref_accounts "
        "WHERE tenant_id = 'acme' AND account_id IN ('5501', '5502') ORDER BY account_id",
    ) == [("5501", None, None), ("5502", "RESELLER", "partner")]


def _sf_account(account_id: str, name: str, website: str, account_type: str) -> str:
    return f"""
    <Notification>
     <Id>04l5j00000Gx7S{account_id[-3:]}</Id>
     <sObject xsi:type="sf:Account" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">
      <sf:Id>{account_id}</sf:Id>
      <sf:LastModifiedDate>2026-11-01T09:00:00.000Z</sf:LastModifiedDate>
      <sf:Name>{name}</sf:Name>
      <sf:Type>{account_type}</sf:Type>
      <sf:Website>{website}</sf:Website>
     </sObject>
    </Notification>"""


GLOBEX_SF, CHANNEL_SF = "0015j00000ZkM3hAAF", "0015j00000ZkM4iAAF"


async def test_a_salesforce_account_typed_channel_partner_yields_its_deal_to_the_customers(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """Salesforce's Accounts (``Customer - Direct``, ``Channel Partner / Reseller``) by Outbound
    Message; their contacts, deals and a meeting with both through the canonical API."""
    keys = await setup_tenant(db_engine)
    ingest = {"Authorization": f"Bearer {keys['ingest']}"}
    accounts = outbound_message(
        _sf_account(GLOBEX_SF, "Globex", "https://www.globex.example", "Customer - Direct"),
        _sf_account(CHANNEL_SF, "Channel Co", "https://channel.example", "Channel Partner / Reseller"),
    )
    crm: list[dict[str, Any]] = [
        {"entity_type": "rep", "id": "rep-ana", "emails": ["ana.seller@acme.example"]},
        {"entity_type": "contact", "id": "con-bo", "account_id": GLOBEX_SF, "emails": ["bo@globex.example"]},
        {
            "entity_type": "contact",
            "id": "con-cat",
            "account_id": CHANNEL_SF,
            "emails": ["cat@channel.example"],
        },
        *(
            {
                "entity_type": "deal",
                "id": deal_id,
                "account_id": account_id,
                "owner_rep_id": "rep-ana",
                "created_at": "2026-10-01T00:00:00Z",
                "contacts": [{"contact_id": contact_id, "role": "champion"}],
            }
            for deal_id, account_id, contact_id in (
                ("deal-globex", GLOBEX_SF, "con-bo"),
                ("deal-channel", CHANNEL_SF, "con-cat"),
            )
        ),
    ]
    entities = [{"updated_at": "2026-11-01T00:00:00Z", **e} for e in crm]
    meeting = {
        "source": "calendar",
        "external_id": "m-partner",
        "kind": "meeting",
        "direction": "outbound",
        "outcome": "held",
        "occurred_at": "2026-11-20T15:00:00Z",
        "duration_seconds": 1800,
        "participants": [
            {"email": "ana.seller@acme.example", "role": "organizer"},
            {"email": "bo@globex.example", "role": "attendee"},
            {"email": "cat@channel.example", "role": "attendee"},
        ],
    }
    async with in_process_stack(kafka_settings, database_settings, ("ingest", "attribution")) as stack:
        await _deliver(stack, "salesforce", accounts)
        synced = await stack.ingest.post("/v1/crm/sync", json={"entities": entities}, headers=ingest)
        assert synced.status_code == 202, synced.text
        await references_landed(
            db_engine, TENANT, [*_mapped(("account", GLOBEX_SF), ("account", CHANNEL_SF)), *entities]
        )
        posted = await stack.ingest.post("/v1/events", json={"activities": [meeting]}, headers=ingest)
        assert posted.status_code == 202, posted.text
        row = await _attribution(db_engine, activity_id_for(TENANT, "calendar", "m-partner"))

    assert (row.status, row.deal_id, row.secondary_deal_ids, row.rep_id) == (
        "attributed",
        "deal-globex",
        ["deal-channel"],
        "rep-ana",
    )
    assert await rows(
        db_engine,
        "SELECT account_id, account_type, relationship FROM ref_accounts "
        "WHERE tenant_id = 'acme' AND account_id IN (:g, :c) ORDER BY account_type",
        {"g": GLOBEX_SF, "c": CHANNEL_SF},
    ) == [
        (CHANNEL_SF, "Channel Partner / Reseller", "partner"),
        (GLOBEX_SF, "Customer - Direct", "customer"),
    ]


async def test_under_unique_only_typing_and_untyping_the_reseller_re_decides_its_yielded_and_tied_activities(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """``unique_only`` keeps no secondary deal: the reseller's deal is found among what an
    activity's explanation names (yielded, runners-up). The mail to Cat (Hal copied) yields to
    Hooli's deal once the reseller is typed and is the reseller's again once it is not (nothing
    stored on it names the reseller then but the explanation); the meeting with Hal and Cat,
    untyped a tie filed with no deal, is Hooli's deal once typed, and a tie again once not."""
    keys = await _tenant(db_engine)
    async with db_engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE tenants SET settings = settings || "
                'CAST(\'{"attribution": {"ambiguity_policy": "unique_only"}}\' AS jsonb) WHERE tenant_id = :t'
            ),
            {"t": TENANT},
        )
    ingest = {"Authorization": f"Bearer {keys['ingest']}"}
    read = {"Authorization": f"Bearer {keys['read']}"}
    entities = [{"updated_at": T0, **e} for e in _world()]
    mail = _mail("s3b-to-partner", ANA, ["cat@channel.example"], "Next steps", cc=("hal@hooli.example",))
    meeting = _meeting(
        "s5-customer-partner", ANA, ["hal@hooli.example", "cat@channel.example"], "Weekly sync"
    )
    partner = next(e for e in entities if e["id"] == "acc-rsl2")

    async def answers(version: int) -> dict[str, tuple[str, str | None, str | None]]:
        found = {}
        for activity in (mail, meeting):
            body = await poll_json(
                stack.gateway,
                f"/v1/activities/{activity_id_for(TENANT, 'mail', activity['external_id'])}",
                read,
                lambda b: (b.get("attribution") or {}).get("version") == version,
            )
            a = body["attribution"]
            found[activity["external_id"]] = (a["status"], a["deal_id"], a["account_id"])
        return found

    async def sync(account: dict[str, Any]) -> None:
        synced = await stack.ingest.post("/v1/crm/sync", json={"entities": [account]}, headers=ingest)
        assert synced.status_code == 202, synced.text
        await references_landed(db_engine, TENANT, [account])

    async with in_process_stack(
        kafka_settings, database_settings, ("ingest", "attribution", "gateway")
    ) as stack:
        await sync_all(stack, ingest, db_engine, entities)
        posted = await stack.ingest.post("/v1/events", json={"activities": [mail, meeting]}, headers=ingest)
        assert posted.status_code == 202, posted.text
        untyped = await answers(1)
        assert untyped == {
            "s3b-to-partner": ("attributed", "deal-rsl2", "acc-rsl2"),
            "s5-customer-partner": ("ambiguous", None, untyped["s5-customer-partner"][2]),
        }

        await sync({**partner, "account_type": "RESELLER", "updated_at": "2026-11-03T00:00:00Z"})
        assert await answers(2) == {
            "s3b-to-partner": ("attributed", "deal-s3b", "acc-s3b"),
            "s5-customer-partner": ("attributed", "deal-s3b", "acc-s3b"),
        }

        await sync({**partner, "updated_at": "2026-11-04T00:00:00Z"})
        assert await answers(3) == untyped


async def test_a_hubspot_contact_of_two_companies_sent_in_another_order_has_not_moved(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """Bo is associated with Globex (his primary company, ``contact_to_company``) and Channel Co
    (``contact_to_company_unlabeled``); HubSpot lists Channel Co first, then, in a later version,
    Globex first. His account is Globex both times: no move is recorded (the first company listed
    was taken: a move from Channel Co, and his role on Globex's deal was dropped for what came
    before it), and Ana's mail to him before the second version is Globex's deal by his role."""
    await setup_tenant(db_engine)
    companies = [
        {"id": "5502", "type": "contact_to_company_unlabeled"},
        {"id": "5501", "type": "contact_to_company"},
    ]

    def bo(order: list[dict[str, str]], updated: str) -> Any:
        contact = _hubspot_object("contacts", "901", {"email": "bo.buyer@globex.example"})
        return {**contact, "associations": {"companies": {"results": order}}, "updatedAt": updated}

    crm = [
        HUBSPOT_CRM[0],
        _hubspot_object("companies", "5501", {"name": "Globex", "domain": "globex.example"}),
        _hubspot_object("companies", "5502", {"name": "Channel Co", "domain": "channel.example"}),
        bo(companies, "2026-11-01T09:00:00.000Z"),
        _hubspot_deal("3302", "5501", "901"),
    ]
    email = {
        "objectType": "emails",
        "id": "e-bo",
        "properties": {
            "hs_timestamp": "2026-11-20T15:00:00.000Z",
            "hs_email_direction": "EMAIL",
            "hs_email_from_email": "ana.seller@acme.example",
            "hs_email_to_email": "bo.buyer@globex.example",
            "hubspot_owner_id": "7701",
            "hs_lastmodifieddate": "2026-11-20T15:00:00.000Z",
        },
        "associations": {"contacts": {"results": [{"id": "901", "type": "email_to_contact"}]}},
        "createdAt": "2026-11-20T15:00:00.000Z",
        "updatedAt": "2026-11-20T15:00:00.000Z",
        "archived": False,
    }
    async with in_process_stack(kafka_settings, database_settings, ("ingest", "attribution")) as stack:
        await _deliver(stack, "hubspot", dumps(crm))
        sent = _mapped(("rep", "7701"), ("account", "5501"), ("account", "5502"), ("deal", "3302"))
        await references_landed(db_engine, TENANT, [*sent, *_mapped(("contact", "901"))])
        await _deliver(stack, "hubspot", dumps([bo(companies[::-1], "2026-12-01T09:00:00.000Z")]))
        await references_landed(
            db_engine, TENANT, _mapped(("contact", "901"), updated_at="2026-12-01T09:00:00Z")
        )
        await _deliver(stack, "hubspot", dumps([email]))
        row = await _attribution(db_engine, activity_id_for(TENANT, "hubspot", "e-bo"))

    assert await rows(
        db_engine, "SELECT account_id FROM ref_contacts WHERE tenant_id = 'acme' AND contact_id = '901'"
    ) == [("5501",)]
    assert await rows(db_engine, "SELECT contact_id, account_id FROM ref_contact_former_accounts") == []
    assert (row.status, row.deal_id, row.rep_id) == ("attributed", "3302", "7701")
