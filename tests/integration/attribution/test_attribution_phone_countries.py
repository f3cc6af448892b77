"""Contacts abroad typed nationally, through ingest, the real broker, attribution and PostgreSQL:
a US tenant's UK buyer stored as ``020 7946 0958`` is the buyer a call from ``+442079460958``
is with, whether the canonical sync, HubSpot or Salesforce says where the buyer is."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.contracts.activities import activity_id_for
from libs.common.settings import DatabaseSettings, KafkaSettings
from libs.common.testing.stack import in_process_stack
from services.ingest import pipeline
from tests.integration.attribution.attribution_support import rows
from tests.integration.attribution.test_attribution_real_crm import TENANT, _attribution, _crm
from tests.integration.attribution.test_attribution_vendor_webhooks import (
    GLOBEX_AND_ANA,
    HUBSPOT_CRM,
    _deliver,
    _hubspot_deal,
    _mapped,
    _opportunity,
)
from tests.integration.ingest.ingest_integration_support import (
    TENANT_SETTINGS,
    dumps,
    outbound_message,
    setup_tenant,
)
from tests.integration.pipeline_support import REP_PHONE, inbound_call
from tests.integration.polling import poll_rows, references_landed

#: A US tenant: a phone without its + is read in the US unless the CRM says otherwise.
US_TENANT = {**TENANT_SETTINGS, "default_phone_region": "US"}


def _call_from(external_id: str, buyer: str) -> dict[str, Any]:
    """The buyer calling the rep, as a dialer posts it to ``/v1/events``."""
    return inbound_call(
        external_id, {"phone": buyer}, occurred_at="2026-11-20T15:00:00Z", duration_seconds=240
    )


async def _calls(
    stack: Any, auth: dict[str, str], engine: AsyncEngine, *calls: dict[str, Any]
) -> dict[str, Any]:
    """``calls`` posted; each one's ``(status, deal, account, rep)`` once attributed, by external id."""
    posted = await stack.ingest.post("/v1/events", json={"activities": list(calls)}, headers=auth)
    assert posted.status_code == 202, posted.text
    found = {}
    for call in calls:
        row = await _attribution(engine, activity_id_for(TENANT, "dialer", call["external_id"]))
        found[call["external_id"]] = (row.status, row.deal_id, row.account_id, row.rep_id)
    return found


async def _contacts(engine: AsyncEngine) -> list[tuple[str, list[str], list[str], str | None]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT contact_id, phones, raw_phones, country FROM ref_contacts "
                "WHERE tenant_id = :t ORDER BY contact_id"
            ),
            {"t": TENANT},
        )
        return [(r.contact_id, list(r.phones), list(r.raw_phones), r.country) for r in rows]


def _deal(deal_id: str, account_id: str, contact_id: str) -> dict[str, Any]:
    return {
        "entity_type": "deal",
        "id": deal_id,
        "account_id": account_id,
        "owner_rep_id": "rep-1",
        "created_at": "2026-10-01T00:00:00Z",
        "contacts": [{"contact_id": contact_id, "role": "champion"}],
    }


async def test_a_synced_contacts_phone_is_read_in_its_country_then_its_accounts_and_an_unknown_one_warns(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """Bo (UK, ``GB``), Dana (no country; her account held from an earlier sync is in
    ``Germany``) and Cy (``Narnia``: the tenant's US) each on their own account's deal."""
    keys = await setup_tenant(db_engine, US_TENANT)
    auth = {"Authorization": f"Bearer {keys['ingest']}"}
    rep = {"entity_type": "rep", "id": "rep-1", "emails": ["ana@acme.example"], "phones": [REP_PHONE]}
    held_account = {
        "entity_type": "account",
        "id": "acc-de",
        "domains": ["kunde.example"],
        "country": "Germany",
    }
    batch = _crm(
        rep,
        {"entity_type": "account", "id": "acc-uk", "domains": ["buyer.example"]},
        {
            "entity_type": "contact",
            "id": "con-bo",
            "account_id": "acc-uk",
            "country": "GB",
            "phones": ["020 7946 0958"],
        },
        {"entity_type": "contact", "id": "con-dana", "account_id": "acc-de", "phones": ["030 1234567"]},
        {"entity_type": "account", "id": "acc-us", "domains": ["us-buyer.example"]},
        {
            "entity_type": "contact",
            "id": "con-cy",
            "account_id": "acc-us",
            "country": "Narnia",
            "phones": ["(415) 555-0177"],
        },
        _deal("deal-uk", "acc-uk", "con-bo"),
        _deal("deal-de", "acc-de", "con-dana"),
        _deal("deal-us", "acc-us", "con-cy"),
    )
    async with in_process_stack(kafka_settings, database_settings, ("ingest", "attribution")) as stack:
        first = await stack.ingest.post("/v1/crm/sync", json=_crm(held_account), headers=auth)
        assert first.status_code == 202, first.text
        await references_landed(db_engine, TENANT, _crm(held_account)["entities"])
        synced = await stack.ingest.post("/v1/crm/sync", json=batch, headers=auth)
        assert synced.status_code == 202, synced.text
        assert synced.json() == {
            "accepted": 9,
            "warnings": [
                {
                    "index": 5,
                    "field": "entities.5.country",
                    "reason": "not a country (an ISO 3166 code or an English name); it was dropped, the "
                    "contact accepted, its phones read in region US",
                }
            ],
        }
        await references_landed(db_engine, TENANT, batch["entities"])
        found = await _calls(
            stack,
            auth,
            db_engine,
            _call_from("from-bo", "+442079460958"),
            _call_from("from-dana", "+49 30 1234567"),
            _call_from("from-cy", "+14155550177"),
        )
    assert found == {
        "from-bo": ("attributed", "deal-uk", "acc-uk", "rep-1"),
        "from-dana": ("attributed", "deal-de", "acc-de", "rep-1"),
        "from-cy": ("attributed", "deal-us", "acc-us", "rep-1"),
    }
    assert await _contacts(db_engine) == [
        ("con-bo", ["+442079460958"], ["020 7946 0958"], "GB"),
        ("con-cy", ["+14155550177"], ["(415) 555-0177"], None),
        ("con-dana", ["+49301234567"], ["030 1234567"], None),
    ]
    async with db_engine.connect() as conn:
        accounts = await conn.execute(
            text("SELECT account_id, country FROM ref_accounts WHERE tenant_id = :t ORDER BY account_id"),
            {"t": TENANT},
        )
        assert [tuple(r) for r in accounts] == [("acc-de", "DE"), ("acc-uk", None), ("acc-us", None)]


async def test_a_hubspot_contact_in_the_united_kingdom_is_the_one_a_uk_call_is_with(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    keys = await setup_tenant(db_engine, US_TENANT)
    auth = {"Authorization": f"Bearer {keys['ingest']}"}
    owner, company = HUBSPOT_CRM[0], HUBSPOT_CRM[1]
    contact = {
        **HUBSPOT_CRM[2],
        "properties": {
            "email": "bo.buyer@globex.example",
            "firstname": "Bo",
            "phone": "020 7946 0958",
            "country": "United Kingdom",
        },
    }
    deal = _hubspot_deal(
        "3302", "appointmentscheduled", "2026-10-15T09:00:00.000Z", "2027-01-31T12:00:00.000Z", ["901"]
    )
    async with in_process_stack(kafka_settings, database_settings, ("ingest", "attribution")) as stack:
        await _deliver(stack, "hubspot", dumps([owner, company, contact, deal]))
        mapped = _mapped(("rep", "7701"), ("account", "5501"), ("contact", "901"), ("deal", "3302"))
        await references_landed(db_engine, TENANT, mapped)
        # The rep's line is no one's the tenant knows: the deal's owner is credited.
        found = await _calls(stack, auth, db_engine, _call_from("from-bo", "+442079460958"))
    assert found == {"from-bo": ("attributed", "3302", "5501", "7701")}
    assert await _contacts(db_engine) == [("901", ["+442079460958"], ["020 7946 0958"], "GB")]


def _salesforce_contact(contact_id: str, phone: str, mailing_country: str | None) -> str:
    country = f"<sf:MailingCountry>{mailing_country}</sf:MailingCountry>" if mailing_country else ""
    return f"""
    <Notification>
     <Id>04l5j00000Gx7{contact_id[-3:]}</Id>
     <sObject xsi:type="sf:Contact" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">
      <sf:Id>{contact_id}</sf:Id>
      <sf:AccountId>0015j00000ZkM3hAAF</sf:AccountId>
      <sf:LastName>Buyer</sf:LastName>
      <sf:LastModifiedDate>2026-11-01T09:00:00.000Z</sf:LastModifiedDate>
      {country}
      <sf:Phone>{phone}</sf:Phone>
     </sObject>
    </Notification>"""


async def test_a_salesforce_contact_is_read_in_its_mailing_country_or_its_held_accounts_billing_country(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """Bo states ``MailingCountry`` United Kingdom; Cy states none, and his Account (sent in an
    earlier message, as each Outbound Message carries one object type) has ``BillingCountry``
    UK: both UK numbers typed nationally are the ones calls from the UK are with."""
    keys = await setup_tenant(db_engine, US_TENANT)
    auth = {"Authorization": f"Bearer {keys['ingest']}"}
    globex_in_the_uk = GLOBEX_AND_ANA.replace(
        "<sf:Name>Globex</sf:Name>", "<sf:BillingCountry>UK</sf:BillingCountry><sf:Name>Globex</sf:Name>"
    )
    opportunity = _opportunity("0065j00000Lm4NpAAJ", "Prospecting", "2026-06-01T09:00:00.000Z", "2026-12-15")
    bo = _salesforce_contact("0035j00000Hq9RsAAJ", "020 7946 0958", "United Kingdom")
    cy = _salesforce_contact("0035j00000Hq9RtAAJ", "020 7946 0959", None)
    async with in_process_stack(kafka_settings, database_settings, ("ingest", "attribution")) as stack:
        await _deliver(stack, "salesforce", outbound_message(globex_in_the_uk, opportunity))
        await _deliver(stack, "salesforce", outbound_message(bo))
        mapped = _mapped(
            ("account", "0015j00000ZkM3hAAF"),
            ("rep", "0055j000004Vb8nAAC"),
            ("contact", "0035j00000Hq9RsAAJ"),
            ("deal", "0065j00000Lm4NpAAJ"),
        )
        await references_landed(db_engine, TENANT, mapped)
        await _deliver(stack, "salesforce", outbound_message(cy))
        await references_landed(db_engine, TENANT, _mapped(("contact", "0035j00000Hq9RtAAJ")))
        found = await _calls(
            stack,
            auth,
            db_engine,
            _call_from("from-bo", "+442079460958"),
            _call_from("from-cy", "+442079460959"),
        )
    on_the_opportunity = ("attributed", "0065j00000Lm4NpAAJ", "0015j00000ZkM3hAAF", "0055j000004Vb8nAAC")
    assert found == {"from-bo": on_the_opportunity, "from-cy": on_the_opportunity}
    assert await _contacts(db_engine) == [
        ("0035j00000Hq9RsAAJ", ["+442079460958"], ["020 7946 0958"], "GB"),
        ("0035j00000Hq9RtAAJ", ["+442079460959"], ["020 7946 0959"], None),
    ]


async def test_a_country_given_to_an_account_later_reads_its_contacts_phones_there_and_their_calls_match(
    kafka_settings: KafkaSettings,
    database_settings: DatabaseSettings,
    db_engine: AsyncEngine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A US tenant syncs Kunde GmbH without its country: Dana's ``030 1234567`` and Emil's
    ``089 123456`` are no numbers in the US plan (dropped, with a warning each, and kept unread);
    Finn states the UK himself. Calls from Dana's and Emil's German lines match
    no one. Truth: when the CRM then gives the account ``Germany``, Dana's and Emil's phones are
    German numbers (Finn's stay his country's), and both calls are on Kunde's deal. Its contacts
    are read again a page at a time (here one a page): every page is read, none twice."""
    monkeypatch.setattr(pipeline, "CONTACTS_PAGE", 1)
    keys = await setup_tenant(db_engine, US_TENANT)
    auth = {"Authorization": f"Bearer {keys['ingest']}"}
    rep = {"entity_type": "rep", "id": "rep-1", "emails": ["ana@acme.example"], "phones": [REP_PHONE]}
    kunde = {"entity_type": "account", "id": "acc-de", "domains": ["kunde.example"]}
    contacts = [
        {"entity_type": "contact", "id": "con-dana", "account_id": "acc-de", "phones": ["030 1234567"]},
        {"entity_type": "contact", "id": "con-emil", "account_id": "acc-de", "phones": ["089 123456"]},
        {
            "entity_type": "contact",
            "id": "con-finn",
            "account_id": "acc-de",
            "country": "UK",
            "phones": ["020 7946 0958"],
        },
    ]
    deal = {
        **_deal("deal-de", "acc-de", "con-dana"),
        "contacts": [{"contact_id": c["id"], "role": "champion"} for c in contacts],
    }
    batch = _crm(rep, kunde, *contacts, deal)
    in_germany = _crm({**kunde, "country": "Germany", "updated_at": "2026-11-25T09:00:00Z"})
    calls = (_call_from("from-dana", "+49 30 1234567"), _call_from("from-emil", "+49 89 123456"))
    async with in_process_stack(kafka_settings, database_settings, ("ingest", "attribution")) as stack:
        synced = await stack.ingest.post("/v1/crm/sync", json=batch, headers=auth)
        assert synced.status_code == 202, synced.text
        await references_landed(db_engine, TENANT, batch["entities"])
        before = await _calls(stack, auth, db_engine, *calls)
        moved = await stack.ingest.post("/v1/crm/sync", json=in_germany, headers=auth)
        assert moved.status_code == 202, moved.text
        after = await poll_rows(
            db_engine,
            "SELECT external_id, a.status, a.deal_id FROM attributions a JOIN activities USING "
            "(tenant_id, activity_id) WHERE a.tenant_id = :t ORDER BY external_id",
            {"t": TENANT},
            lambda found: all(status == "attributed" for _, status, _ in found),
        )
    assert synced.json() == {
        "accepted": 6,
        "warnings": [
            {
                "index": index,
                "field": f"entities.{index}.phones.0",
                "reason": "not a valid number (missing area code, or no such number in region US; an "
                "international number needs its +); the phone was dropped, the contact accepted",
            }
            for index in (2, 3)
        ],
    }
    assert moved.json() == {"accepted": 1, "warnings": []}
    assert before == {
        "from-dana": ("unmatched", None, None, "rep-1"),
        "from-emil": ("unmatched", None, None, "rep-1"),
    }
    assert after == [("from-dana", "attributed", "deal-de"), ("from-emil", "attributed", "deal-de")]
    assert await _contacts(db_engine) == [
        ("con-dana", ["+49301234567"], ["030 1234567"], None),
        ("con-emil", ["+4989123456"], ["089 123456"], None),
        ("con-finn", ["+442079460958"], ["020 7946 0958"], "GB"),
    ]
    assert await rows(
        db_engine, "SELECT contact_id, unread_phones, updated_at FROM ref_contacts ORDER BY contact_id"
    ) == [
        ("con-dana", [], datetime(2026, 11, 1, tzinfo=UTC)),
        ("con-emil", [], datetime(2026, 11, 1, tzinfo=UTC)),
        ("con-finn", [], datetime(2026, 11, 1, tzinfo=UTC)),
    ]


def _salesforce_lead(at: str, *fields: str) -> str:
    """Cy, a Lead at "Globex Ltd" (a name, no Account) in the UK, owned by Ana."""
    return f"""
    <Notification>
     <Id>04l5j00000Gx7Q{at[17:19]}A</Id>
     <sObject xsi:type="sf:Lead" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">
      <sf:Id>00Q5j00000Ab1CdEAF</sf:Id>
      <sf:Company>Globex Ltd</sf:Company>
      <sf:Country>United Kingdom</sf:Country>
      <sf:Email>cy@globex-ltd.example</sf:Email>
      <sf:FirstName>Cy</sf:FirstName>
      <sf:LastName>Prospect</sf:LastName>
      <sf:LastModifiedDate>{at}</sf:LastModifiedDate>
      <sf:MobilePhone xsi:nil="true"/>
      <sf:OwnerId>0055j000004Vb8nAAC</sf:OwnerId>
      <sf:Phone>020 7946 0959</sf:Phone>
      {"".join(fields)}
     </sObject>
    </Notification>"""


async def test_a_salesforce_lead_is_a_contact_until_converted_then_the_one_contact_it_became(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """Cy is a Lead (UK phone typed nationally, ``Country`` United Kingdom): a contact of no
    account, her number read in the UK. Converted into a Contact of Globex (same email and
    phone), she is one person: the Lead is merged into the Contact, and her calls are with the
    Contact, on Globex's opportunity, by her own number (not a number two records share)."""
    keys = await setup_tenant(db_engine, US_TENANT)
    auth = {"Authorization": f"Bearer {keys['ingest']}"}
    read = {"Authorization": f"Bearer {keys['read']}"}
    lead_id, contact_id, account_id = "00Q5j00000Ab1CdEAF", "0035j00000Hq9RuAAJ", "0015j00000ZkM3hAAF"
    opportunity = _opportunity("0065j00000Lm4NpAAJ", "Prospecting", "2026-06-01T09:00:00.000Z", "2026-12-15")
    contact = f"""
    <Notification>
     <Id>04l5j00000Gx7R9AAJ</Id>
     <sObject xsi:type="sf:Contact" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">
      <sf:Id>{contact_id}</sf:Id>
      <sf:AccountId>{account_id}</sf:AccountId>
      <sf:Email>cy@globex-ltd.example</sf:Email>
      <sf:LastName>Prospect</sf:LastName>
      <sf:LastModifiedDate>2026-11-10T09:00:00.000Z</sf:LastModifiedDate>
      <sf:MailingCountry>United Kingdom</sf:MailingCountry>
      <sf:Phone>020 7946 0959</sf:Phone>
     </sObject>
    </Notification>"""
    converted = _salesforce_lead(
        "2026-11-10T09:00:01.000Z",
        "<sf:IsConverted>true</sf:IsConverted>",
        f"<sf:ConvertedAccountId>{account_id}</sf:ConvertedAccountId>",
        f"<sf:ConvertedContactId>{contact_id}</sf:ConvertedContactId>",
    )
    async with in_process_stack(
        kafka_settings, database_settings, ("ingest", "attribution", "gateway")
    ) as stack:
        await _deliver(stack, "salesforce", outbound_message(GLOBEX_AND_ANA, opportunity))
        await _deliver(stack, "salesforce", outbound_message(_salesforce_lead("2026-11-03T09:00:00.000Z")))
        await references_landed(
            db_engine,
            TENANT,
            _mapped(("account", account_id), ("deal", "0065j00000Lm4NpAAJ"), ("contact", lead_id)),
        )
        as_lead = (await stack.gateway.get("/v1/contacts", headers=read)).json()["items"]
        before = await _calls(stack, auth, db_engine, _call_from("as-lead", "+442079460959"))
        await _deliver(stack, "salesforce", outbound_message(contact))
        await _deliver(stack, "salesforce", outbound_message(converted))
        await references_landed(
            db_engine,
            TENANT,
            [
                *_mapped(("contact", contact_id)),
                *_mapped(("contact", lead_id), merged_into=contact_id, updated_at="2026-11-10T09:00:01Z"),
            ],
        )
        after = await _calls(stack, auth, db_engine, _call_from("as-contact", "+442079460959"))
        rule = await rows(
            db_engine,
            "SELECT external_id, a.status, a.explanation->>'rule_path', a.explanation->'contacts' "
            "FROM attributions a JOIN activities USING (tenant_id, activity_id) ORDER BY external_id",
        )
        as_contact = (await stack.gateway.get("/v1/contacts", headers=read)).json()["items"]
    assert [(c["contact_id"], c["emails"], c["phones"], c["account_id"]) for c in as_lead] == [
        (lead_id, ["cy@globex-ltd.example"], ["+442079460959"], None)
    ]
    assert before == {"as-lead": ("unmatched", None, None, None)}
    assert after == {"as-contact": ("attributed", "0065j00000Lm4NpAAJ", account_id, "0055j000004Vb8nAAC")}
    # Her call as a lead, parked, is re-decided with the contact she became; both by her own
    # number, certain (a number two records listed would be a shared phone, the account only).
    by_her_number = [{"evidence": "contact_phone", "certainty": 1.0, "contact_id": contact_id}]
    assert rule == [
        ("as-contact", "attributed", "account_match", by_her_number),
        ("as-lead", "attributed", "account_match", by_her_number),
    ]
    assert [(c["contact_id"], c["phones"], c["account_id"]) for c in as_contact] == [
        (contact_id, ["+442079460959"], account_id)
    ]


async def test_a_salesforce_contact_delivered_before_its_account_is_read_again_in_its_billing_country(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """Salesforce gives no order between an Account's and a Contact's Outbound Messages: Cy's
    Contact (no ``MailingCountry``, ``020 7946 0959``: no number in the US) arrives first, and a
    call from his UK line matches no one. Truth: once Globex's Account message brings
    ``BillingCountry`` UK, Cy's phone is his UK number and the call is on Globex's opportunity."""
    keys = await setup_tenant(db_engine, US_TENANT)
    auth = {"Authorization": f"Bearer {keys['ingest']}"}
    globex_in_the_uk = GLOBEX_AND_ANA.replace(
        "<sf:Name>Globex</sf:Name>", "<sf:BillingCountry>UK</sf:BillingCountry><sf:Name>Globex</sf:Name>"
    ).replace("2026-11-01T09:00:00.000Z", "2026-11-02T09:00:00.000Z")
    opportunity = _opportunity("0065j00000Lm4NpAAJ", "Prospecting", "2026-06-01T09:00:00.000Z", "2026-12-15")
    cy = _salesforce_contact("0035j00000Hq9RtAAJ", "020 7946 0959", None)
    async with in_process_stack(kafka_settings, database_settings, ("ingest", "attribution")) as stack:
        await _deliver(stack, "salesforce", outbound_message(GLOBEX_AND_ANA, opportunity))
        await _deliver(stack, "salesforce", outbound_message(cy))
        mapped = _mapped(("account", "0015j00000ZkM3hAAF"), ("contact", "0035j00000Hq9RtAAJ"))
        await references_landed(db_engine, TENANT, [*mapped, *_mapped(("deal", "0065j00000Lm4NpAAJ"))])
        before = await _calls(stack, auth, db_engine, _call_from("from-cy", "+442079460959"))
        await _deliver(stack, "salesforce", outbound_message(globex_in_the_uk))
        after = await poll_rows(
            db_engine,
            "SELECT status, deal_id FROM attributions WHERE tenant_id = :t",
            {"t": TENANT},
            lambda found: found == [("attributed", "0065j00000Lm4NpAAJ")],
        )
    assert before == {"from-cy": ("unmatched", None, None, None)}
    assert after == [("attributed", "0065j00000Lm4NpAAJ")]
    assert await _contacts(db_engine) == [("0035j00000Hq9RtAAJ", ["+442079460959"], ["020 7946 0959"], None)]
