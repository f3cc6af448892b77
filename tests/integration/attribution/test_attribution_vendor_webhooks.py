"""Vendor webhooks as the vendors send them, through ingest's webhook route, the real broker,
attribution and PostgreSQL: what a CRM or dialer admin wiring HubSpot and Salesforce gets."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.contracts.activities import activity_id_for
from libs.common.settings import DatabaseSettings, KafkaSettings
from libs.common.testing.stack import in_process_stack
from tests.integration.attribution.test_attribution_real_crm import DEAL, T0, TENANT, _attribution
from tests.integration.ingest.ingest_integration_support import (
    SECRETS,
    TENANT_SETTINGS,
    dumps,
    endpoint,
    outbound_message,
    setup_tenant,
    sign,
)
from tests.integration.pipeline_support import drained, inbound_call
from tests.integration.polling import eventually, references_landed


async def _deliver(stack: Any, source: str, body: bytes, at: datetime | None = None) -> dict[str, Any]:
    """``body`` signed as the vendor signs it now, to ``/v1/webhooks/{source}/acme``: 200.
    ``at``: received then instead (ingest's clock set to it, for this delivery and the next)."""
    if at is not None:
        stack.apps["ingest"].state.clock = lambda: at
    secret = SECRETS[source][0]
    headers = sign(source, body, secret, int(at.timestamp() if at is not None else time.time()))
    response = await stack.ingest.post(endpoint(source, secret), content=body, headers=headers)
    assert response.status_code == 200, response.text
    if source == "salesforce":
        return {}
    answer: dict[str, Any] = response.json()
    return answer


async def _sync(stack: Any, engine: AsyncEngine, auth: dict[str, str], crm: list[dict[str, Any]]) -> None:
    """``crm`` as of ``T0`` through ``POST /v1/crm/sync``: accepted, and held by attribution."""
    synced = await stack.ingest.post(
        "/v1/crm/sync",
        json={"source": "api", "entities": [{**e, "updated_at": T0} for e in crm]},
        headers=auth,
    )
    assert synced.status_code == 202, synced.text
    await references_landed(engine, TENANT, crm)


def _hubspot_deal(
    deal_id: str, stage: str, created: str, closedate: str, contacts: list[str]
) -> dict[str, Any]:
    """A deal as ``GET /crm/v3/objects/deals/{id}?associations=companies,contacts`` returns it
    without ``properties=``: HubSpot's default deal properties, which hold no ``hs_is_closed``."""
    return {
        "objectType": "deals",
        "id": deal_id,
        "properties": {
            "amount": "12000",
            "closedate": closedate,
            "createdate": created,
            "dealname": f"Globex {deal_id}",
            "dealstage": stage,
            "hs_lastmodifieddate": "2026-11-01T09:00:00.000Z",
            "hs_object_id": deal_id,
            "pipeline": "default",
            "hubspot_owner_id": "7701",
        },
        "associations": {
            "companies": {"results": [{"id": "5501", "type": "deal_to_company"}]},
            "contacts": {"results": [{"id": c, "type": "deal_to_contact"} for c in contacts]},
        },
        "createdAt": created,
        "updatedAt": "2026-11-01T09:00:00.000Z",
        "archived": False,
    }


HUBSPOT_CRM: list[dict[str, Any]] = [
    {
        "objectType": "owners",
        "id": "7701",
        "email": "ana.seller@acme.example",
        "firstName": "Ana",
        "lastName": "Seller",
        "userId": 9001,
        "createdAt": "2025-01-10T08:00:00.000Z",
        "updatedAt": "2026-06-01T08:00:00.000Z",
        "archived": False,
    },
    {
        "objectType": "companies",
        "id": "5501",
        "properties": {"name": "Globex", "domain": "globex.example"},
        "createdAt": "2025-09-01T09:00:00.000Z",
        "updatedAt": "2026-11-01T09:00:00.000Z",
        "archived": False,
    },
    {
        "objectType": "contacts",
        "id": "901",
        "properties": {"email": "bo.buyer@globex.example", "firstname": "Bo", "lastname": "Buyer"},
        "associations": {"companies": {"results": [{"id": "5501", "type": "contact_to_company"}]}},
        "createdAt": "2025-10-01T09:00:00.000Z",
        "updatedAt": "2026-11-01T09:00:00.000Z",
        "archived": False,
    },
    # Won in June, lost in April (Bo was on both); the expansion opened in October.
    _hubspot_deal("3301", "closedwon", "2026-03-01T09:00:00.000Z", "2026-06-30T12:00:00.000Z", ["901"]),
    _hubspot_deal("3303", "closedlost", "2026-01-05T09:00:00.000Z", "2026-04-01T12:00:00.000Z", ["901"]),
    _hubspot_deal("3302", "appointmentscheduled", "2026-10-15T09:00:00.000Z", "2027-01-31T12:00:00.000Z", []),
]


def _mapped(*entities: tuple[str, str], **version: Any) -> list[dict[str, Any]]:
    """The CRM entities (type, id) a vendor's records map to, for ``references_landed``;
    ``version`` (``updated_at``, ``deleted``, ``merged_into``) is the one each must reach."""
    return [{"entity_type": kind, "id": entity_id, **version} for kind, entity_id in entities]


#: What ``HUBSPOT_CRM`` maps to: the owner, the company, the contact and the three deals.
HUBSPOT_ENTITIES = _mapped(
    ("rep", "7701"),
    ("account", "5501"),
    ("contact", "901"),
    ("deal", "3301"),
    ("deal", "3303"),
    ("deal", "3302"),
)


def _hubspot_email(email_id: str, at: str) -> dict[str, Any]:
    return {
        "objectType": "emails",
        "id": email_id,
        "properties": {
            "hs_timestamp": at,
            "hs_email_direction": "EMAIL",
            "hs_email_from_email": "ana.seller@acme.example",
            "hs_email_to_email": "bo.buyer@globex.example",
            "hubspot_owner_id": "7701",
            "hs_lastmodifieddate": at,
        },
        "associations": {"contacts": {"results": [{"id": "901", "type": "email_to_contact"}]}},
        "createdAt": at,
        "updatedAt": at,
        "archived": False,
    }


async def _contributions(engine: AsyncEngine, names: dict[str, str], columns: str) -> dict[str, Any]:
    """Once metrics has counted each of ``names`` (activity id -> name): its contribution row's
    ``columns``, by name."""
    query = (
        f"SELECT activity_id, {columns} FROM metric_contributions "
        "WHERE tenant_id = :t AND activity_id = ANY(CAST(:ids AS uuid[]))"
    )

    async def rows() -> list[Any]:
        async with engine.connect() as conn:
            return list(await conn.execute(text(query), {"t": TENANT, "ids": list(names)}))

    found = await eventually(rows, lambda r: len(r) == len(names), 60, "the calls' contributions")
    return {names[str(r.activity_id)]: r for r in found}


async def test_hubspot_deals_with_default_properties_closed_by_their_stage(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """A HubSpot deal read with the default properties carries ``dealstage`` but not
    ``hs_is_closed``: ``closedwon`` and ``closedlost`` are closes (dated by ``closedate``), so
    Bo's mail in November goes to the open expansion, not to the deal won in June."""
    await setup_tenant(db_engine)
    async with in_process_stack(kafka_settings, database_settings, ("ingest", "attribution")) as stack:
        answer = await _deliver(stack, "hubspot", dumps(HUBSPOT_CRM))
        assert (answer["entities"], answer["ignored"]) == (6, [])
        await references_landed(db_engine, TENANT, HUBSPOT_ENTITIES)
        await _deliver(stack, "hubspot", dumps([_hubspot_email("e-1", "2026-11-20T15:00:00.000Z")]))
        row = await _attribution(db_engine, activity_id_for(TENANT, "hubspot", "e-1"))
    assert (row.status, row.deal_id, row.account_id, row.rep_id) == ("attributed", "3302", "5501", "7701")


def _opportunity(opportunity_id: str, stage: str, created: str, close_day: str) -> str:
    """An Opportunity as an Outbound Message carries it when the admin picked the fields an
    admin thinks of (Name, Account, Owner, Stage, Close Date), not ``IsClosed`` / ``IsWon``."""
    return f"""
    <Notification>
     <Id>04l5j00000Gx7R{opportunity_id[-3:]}</Id>
     <sObject xsi:type="sf:Opportunity" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">
      <sf:Id>{opportunity_id}</sf:Id>
      <sf:AccountId>0015j00000ZkM3hAAF</sf:AccountId>
      <sf:CloseDate>{close_day}</sf:CloseDate>
      <sf:CreatedDate>{created}</sf:CreatedDate>
      <sf:LastModifiedDate>2026-11-01T09:00:00.000Z</sf:LastModifiedDate>
      <sf:Name>Globex {opportunity_id}</sf:Name>
      <sf:OwnerId>0055j000004Vb8nAAC</sf:OwnerId>
      <sf:StageName>{stage}</sf:StageName>
     </sObject>
    </Notification>"""


#: Salesforce's Account Globex and User Ana, as Outbound Messages send them.
GLOBEX_AND_ANA = """
    <Notification>
     <Id>04l5j00000Gx7R0AAA</Id>
     <sObject xsi:type="sf:Account" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">
      <sf:Id>0015j00000ZkM3hAAF</sf:Id>
      <sf:LastModifiedDate>2026-11-01T09:00:00.000Z</sf:LastModifiedDate>
      <sf:Name>Globex</sf:Name>
      <sf:Website>https://www.globex.example</sf:Website>
     </sObject>
    </Notification>
    <Notification>
     <Id>04l5j00000Gx7R1AAA</Id>
     <sObject xsi:type="sf:User" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">
      <sf:Id>0055j000004Vb8nAAC</sf:Id>
      <sf:Email>ana.seller@acme.example</sf:Email>
      <sf:FirstName>Ana</sf:FirstName>
      <sf:LastName>Seller</sf:LastName>
      <sf:IsActive>true</sf:IsActive>
      <sf:LastModifiedDate>2026-11-01T09:00:00.000Z</sf:LastModifiedDate>
     </sObject>
    </Notification>"""


async def test_salesforce_opportunities_without_is_closed_closed_by_their_stage(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """An Outbound Message on Opportunity with Stage but without IsClosed: "Closed Won" is a close
    on its Close Date, so a call in November goes to the open opportunity of the account."""
    await setup_tenant(db_engine)
    crm = outbound_message(
        GLOBEX_AND_ANA,
        # The won opportunity is the newer one: open, it would win on recency.
        _opportunity("0065j00000Lm4NoAAJ", "Closed Won", "2026-09-01T09:00:00.000Z", "2026-10-01"),
        _opportunity("0065j00000Lm4NpAAJ", "Prospecting", "2026-06-01T09:00:00.000Z", "2026-12-15"),
    )
    task = outbound_message(
        """
    <Notification>
     <Id>04l5j00000Gx7R9AAA</Id>
     <sObject xsi:type="sf:Task" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">
      <sf:Id>00T5j00000Q1a2bEAB</sf:Id>
      <sf:AccountId>0015j00000ZkM3hAAF</sf:AccountId>
      <sf:CompletedDateTime>2026-11-20T15:00:00.000Z</sf:CompletedDateTime>
      <sf:CreatedDate>2026-11-20T15:00:02.000Z</sf:CreatedDate>
      <sf:LastModifiedDate>2026-11-20T15:00:02.000Z</sf:LastModifiedDate>
      <sf:OwnerId>0055j000004Vb8nAAC</sf:OwnerId>
      <sf:SPM_Owner_Email__c>ana.seller@acme.example</sf:SPM_Owner_Email__c>
      <sf:SPM_Who_Email__c>dana@globex.example</sf:SPM_Who_Email__c>
      <sf:TaskSubtype>Email</sf:TaskSubtype>
     </sObject>
    </Notification>"""
    )
    async with in_process_stack(kafka_settings, database_settings, ("ingest", "attribution")) as stack:
        await _deliver(stack, "salesforce", crm)
        opportunities = (("deal", "0065j00000Lm4NoAAJ"), ("deal", "0065j00000Lm4NpAAJ"))
        sent = _mapped(("account", "0015j00000ZkM3hAAF"), ("rep", "0055j000004Vb8nAAC"), *opportunities)
        await references_landed(db_engine, TENANT, sent)
        await _deliver(stack, "salesforce", task)
        row = await _attribution(db_engine, activity_id_for(TENANT, "salesforce", "00T5j00000Q1a2bEAB"))
    assert (row.status, row.deal_id, row.account_id, row.rep_id) == (
        "attributed",
        "0065j00000Lm4NpAAJ",
        "0015j00000ZkM3hAAF",
        "0055j000004Vb8nAAC",
    )


def _hubspot_meeting(meeting_id: str, **associations: str) -> dict[str, Any]:
    """A meeting as a sync job posts it, with its owner (whose email makes the organizer); its
    contacts were posted before, not in this batch."""
    return {
        "objectType": "meetings",
        "id": meeting_id,
        "properties": {
            "hs_timestamp": "2026-11-23T16:00:00.000Z",
            "hs_meeting_start_time": "2026-11-23T16:00:00.000Z",
            "hs_meeting_end_time": "2026-11-23T17:00:00.000Z",
            "hs_meeting_outcome": "COMPLETED",
            "hubspot_owner_id": "7701",
            "hs_lastmodifieddate": "2026-11-23T17:05:00.000Z",
        },
        "associations": {
            kind: {"results": [{"id": object_id, "type": f"meeting_event_to_{kind[:-1]}"}]}
            for kind, object_id in associations.items()
        },
        "createdAt": "2026-11-20T10:00:00.000Z",
        "updatedAt": "2026-11-23T17:05:00.000Z",
        "archived": False,
    }


async def test_a_meeting_the_crm_files_with_a_contact_is_not_internal(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """HubSpot meetings carry no attendee addresses: the buyer is the associated contact. One
    posted with its owner but not its contacts (they were synced before) has the owner as its
    only participant; the CRM's association still says Bo was there, so it is Globex's meeting,
    not an internal one."""
    await setup_tenant(db_engine)
    async with in_process_stack(kafka_settings, database_settings, ("ingest", "attribution")) as stack:
        await _deliver(stack, "hubspot", dumps(HUBSPOT_CRM))
        await references_landed(db_engine, TENANT, HUBSPOT_ENTITIES)
        meetings = [
            HUBSPOT_CRM[0],
            _hubspot_meeting("mt-contact", contacts="901"),
            _hubspot_meeting("mt-deal", contacts="901", deals="3302"),
        ]
        answer = await _deliver(stack, "hubspot", dumps(meetings))
        assert answer["accepted"] == 2
        rows = {
            name: await _attribution(db_engine, activity_id_for(TENANT, "hubspot", name))
            for name in ("mt-contact", "mt-deal")
        }
    found = {name: (r.status, r.deal_id, r.account_id, r.rep_id) for name, r in rows.items()}
    assert found == {
        "mt-contact": ("attributed", "3302", "5501", "7701"),
        "mt-deal": ("attributed", "3302", "5501", "7701"),
    }


def _calendar_event(event_id: str, event_type: str, **fields: Any) -> dict[str, Any]:
    """An item of ``events.list`` as Google returns it with no ``eventTypes`` (all types since
    March 2024): a working location or out-of-office status is an all-day or timed entry whose
    only person is the calendar's owner; a reservation Gmail put there has a placeholder organizer."""
    return {
        "kind": "calendar#event",
        "id": event_id,
        "status": "confirmed",
        "updated": "2026-11-20T12:00:00.000Z",
        "organizer": {"email": "ana.seller@acme.example", "self": True},
        "start": {"dateTime": "2026-11-23T09:00:00Z"},
        "end": {"dateTime": "2026-11-23T10:00:00Z"},
        "iCalUID": f"{event_id}@google.com",
        "eventType": event_type,
        **fields,
    }


async def test_calendar_statuses_and_gmail_reservations_are_not_meetings(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """Every working day has a working-location entry, and focus time, out of office, time a rep
    blocks for herself and Gmail's flight bookings sit among the meetings: none of them is a
    meeting of the rep's. The customer meeting in the same page is, and is Globex's."""
    keys = await setup_tenant(db_engine)
    auth = {"Authorization": f"Bearer {keys['ingest']}"}
    day = {"start": {"date": "2026-11-23"}, "end": {"date": "2026-11-24"}}
    page = {
        "kind": "calendar#events",
        "items": [
            _calendar_event(
                "wl-1", "workingLocation", **day, workingLocationProperties={"type": "homeOffice"}
            ),
            _calendar_event("ooo-1", "outOfOffice", summary="Out of office"),
            _calendar_event("focus-1", "focusTime"),
            # Time Ana blocked for herself: she is listed as its only attendee.
            _calendar_event(
                "block-1",
                "default",
                summary="Prep",
                attendees=[{"email": "ana.seller@acme.example", "organizer": True, "self": True}],
            ),
            _calendar_event(
                "gmail-1",
                "fromGmail",
                organizer={
                    "email": "unknownorganizer@calendar.google.com",
                    "displayName": "Unknown Organizer",
                },
                attendees=[{"email": "ana.seller@acme.example", "self": True, "responseStatus": "accepted"}],
            ),
            _calendar_event(
                "mt-1",
                "default",
                attendees=[
                    {"email": "ana.seller@acme.example", "organizer": True, "responseStatus": "accepted"},
                    {"email": "bo.buyer@globex.example", "responseStatus": "accepted"},
                ],
            ),
        ],
    }
    crm: dict[str, Any] = {
        "source": "test",
        "entities": [
            {"entity_type": "rep", "id": "rep-1", "emails": ["ana.seller@acme.example"], "updated_at": T0},
            {"entity_type": "account", "id": "acc-1", "domains": ["globex.example"], "updated_at": T0},
            {**DEAL, "created_at": "2026-10-01T00:00:00Z", "contacts": [], "updated_at": T0},
        ],
    }
    async with in_process_stack(kafka_settings, database_settings, ("ingest", "attribution")) as stack:
        synced = await stack.ingest.post("/v1/crm/sync", json=crm, headers=auth)
        assert synced.status_code == 202, synced.text
        await references_landed(db_engine, TENANT, crm["entities"])
        answer = await _deliver(stack, "google-calendar", dumps(page))
        row = await _attribution(db_engine, activity_id_for(TENANT, "google-calendar", "mt-1"))
    assert (answer["accepted"], len(answer["ignored"])) == (1, 5)
    status = "a calendar status or a Gmail reservation, not a meeting"
    assert [reason.split(": ", 1)[1] for reason in answer["ignored"]] == [
        f"eventType workingLocation: {status}",
        f"eventType outOfOffice: {status}",
        f"eventType focusTime: {status}",
        "nobody but its organizer attends: time blocked in a calendar, not a meeting",
        f"eventType fromGmail: {status}",
    ]
    assert (row.status, row.deal_id, row.account_id, row.rep_id) == ("attributed", "deal-1", "acc-1", "rep-1")


async def test_one_seller_from_the_canonical_sync_hubspot_salesforce_and_aircall_is_one_rep(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """Ana is ``rep-a`` in the canonical sync (with her team), HubSpot owner 7701 and Salesforce
    User 0055...: a HubSpot call naming only her owner id (owners not in the batch; the number
    dialled with an extension), an Aircall call by her login and a Salesforce Task she owns are
    all ``rep-a``'s, on her team, and on Bo's deal (his phone typed nationally in HubSpot)."""
    keys = await setup_tenant(db_engine)
    auth = {"Authorization": f"Bearer {keys['ingest']}"}
    crm: dict[str, Any] = {
        "source": "api",
        "entities": [
            {"entity_type": "team", "id": "team-a", "updated_at": T0},
            {"entity_type": "rep", "id": "rep-a", "emails": ["ana.seller@acme.example"], "updated_at": T0},
            {
                "entity_type": "team_membership",
                "id": "m-a",
                "rep_id": "rep-a",
                "team_id": "team-a",
                "valid_from": "2026-01-01",
                "updated_at": T0,
            },
        ],
    }
    contact = {
        **HUBSPOT_CRM[2],
        "properties": {"email": "bo.buyer@globex.example", "firstname": "Bo", "phone": "(415) 555-2671"},
    }
    deal = _hubspot_deal(
        "3302", "appointmentscheduled", "2026-10-15T09:00:00.000Z", "2027-01-31T12:00:00.000Z", ["901"]
    )
    user = outbound_message(
        """
    <Notification>
     <Id>04l5j00000Gx7R1AAA</Id>
     <sObject xsi:type="sf:User" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">
      <sf:Id>0055j000004Vb8nAAC</sf:Id>
      <sf:Email>Ana.Seller@acme.example</sf:Email>
      <sf:LastName>Seller</sf:LastName>
      <sf:LastModifiedDate>2026-11-01T09:00:00.000Z</sf:LastModifiedDate>
     </sObject>
    </Notification>"""
    )
    call = {
        "objectType": "calls",
        "id": "hs-call",
        "properties": {
            "hs_timestamp": "2026-11-20T13:30:00.000Z",
            "hs_call_direction": "OUTBOUND",
            "hs_call_status": "COMPLETED",
            "hs_call_duration": "180000",
            "hs_call_to_number": "+1 415-555-2671 ext. 12",
            "hubspot_owner_id": "7701",
            "hs_lastmodifieddate": "2026-11-20T13:36:00.000Z",
        },
        "associations": {"contacts": {"results": [{"id": "901", "type": "call_to_contact"}]}},
        "createdAt": "2026-11-20T13:36:00.000Z",
        "updatedAt": "2026-11-20T13:36:00.000Z",
        "archived": False,
    }
    aircall = {
        "resource": "call",
        "event": "call.ended",
        "timestamp": 1795532745,
        "token": SECRETS["aircall"][0],
        "data": {
            "id": 812345678,
            "direction": "outbound",
            "started_at": 1795191000,
            "answered_at": 1795191010,
            "ended_at": 1795191200,
            "duration": 200,
            "raw_digits": "+1 415-555-2671",
            "user": {"id": 456, "name": "Ana Seller", "email": "ana.seller@acme.example"},
            "number": {"id": 789, "name": "Sales US", "digits": "+1 650-555-1234"},
            "contact": None,
            "voicemail": None,
        },
    }
    task = outbound_message(
        """
    <Notification>
     <Id>04l5j00000Gx7R9AAA</Id>
     <sObject xsi:type="sf:Task" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">
      <sf:Id>00T5j00000Q1a2cEAB</sf:Id>
      <sf:CallDurationInSeconds>95</sf:CallDurationInSeconds>
      <sf:CallType>Outbound</sf:CallType>
      <sf:CompletedDateTime>2026-11-20T16:00:00.000Z</sf:CompletedDateTime>
      <sf:CreatedDate>2026-11-20T16:00:02.000Z</sf:CreatedDate>
      <sf:LastModifiedDate>2026-11-20T16:00:02.000Z</sf:LastModifiedDate>
      <sf:OwnerId>0055j000004Vb8nAAC</sf:OwnerId>
      <sf:SPM_Owner_Email__c>ana.seller@acme.example</sf:SPM_Owner_Email__c>
      <sf:SPM_Who_Phone__c>415.555.2671</sf:SPM_Who_Phone__c>
      <sf:TaskSubtype>Call</sf:TaskSubtype>
     </sObject>
    </Notification>"""
    )
    async with in_process_stack(kafka_settings, database_settings, ("ingest", "attribution")) as stack:
        synced = await stack.ingest.post("/v1/crm/sync", json=crm, headers=auth)
        assert synced.status_code == 202, synced.text
        await _deliver(stack, "hubspot", dumps([HUBSPOT_CRM[0], HUBSPOT_CRM[1], contact, deal]))
        await _deliver(stack, "salesforce", user)
        hubspot = _mapped(("rep", "7701"), ("account", "5501"), ("contact", "901"), ("deal", "3302"))
        salesforce = _mapped(("rep", "0055j000004Vb8nAAC"))
        await references_landed(db_engine, TENANT, [*crm["entities"], *hubspot, *salesforce])
        await _deliver(stack, "hubspot", dumps([call]))
        await _deliver(stack, "aircall", dumps(aircall))
        await _deliver(stack, "salesforce", task)
        rows = {
            source: await _attribution(db_engine, activity_id_for(TENANT, source, external_id))
            for source, external_id in (
                ("hubspot", "hs-call"),
                ("aircall", "812345678"),
                ("salesforce", "00T5j00000Q1a2cEAB"),
            )
        }
    found = {source: (r.status, r.deal_id, r.rep_id, r.team_id) for source, r in rows.items()}
    assert found == {
        "hubspot": ("attributed", "3302", "rep-a", "team-a"),
        "aircall": ("attributed", "3302", "rep-a", "team-a"),
        "salesforce": ("attributed", "3302", "rep-a", "team-a"),
    }


async def test_a_departed_hubspot_owner_keeps_the_work_she_did(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """HubSpot archives the owner of a deactivated user (``archived: true``): Ana left, her deal
    went to Cy, who won it in December (a close re-decides the deal's activities). Her October
    mail stays hers: a departed seller is inactive, not erased."""
    await setup_tenant(db_engine)
    cy = {**HUBSPOT_CRM[0], "id": "7702", "email": "cy.seller@acme.example", "firstName": "Cy"}
    departed = {**HUBSPOT_CRM[0], "updatedAt": "2026-11-25T08:00:00.000Z", "archived": True}
    deal = _hubspot_deal(
        "3302", "appointmentscheduled", "2026-10-01T09:00:00.000Z", "2027-01-31T12:00:00.000Z", ["901"]
    )
    reassigned = {
        **deal,
        "properties": {
            **deal["properties"],
            "hubspot_owner_id": "7702",
            "hs_lastmodifieddate": "2026-11-25T08:00:00Z",
        },
        "updatedAt": "2026-11-25T08:00:00.000Z",
    }
    async with in_process_stack(kafka_settings, database_settings, ("ingest", "attribution")) as stack:
        await _deliver(stack, "hubspot", dumps([*HUBSPOT_CRM[:3], cy, deal]))
        sent = _mapped(
            ("rep", "7701"), ("account", "5501"), ("contact", "901"), ("rep", "7702"), ("deal", "3302")
        )
        await references_landed(db_engine, TENANT, sent)
        await _deliver(stack, "hubspot", dumps([_hubspot_email("e-oct", "2026-10-20T15:00:00.000Z")]))
        email_id = activity_id_for(TENANT, "hubspot", "e-oct")
        before = await _attribution(db_engine, email_id)
        await _deliver(stack, "hubspot", dumps([departed, reassigned]))
        sent = _mapped(("rep", "7701"), ("deal", "3302"), updated_at="2026-11-25T08:00:00Z")
        await references_landed(db_engine, TENANT, sent)
        won = {
            **reassigned,
            "properties": {
                **reassigned["properties"],
                "dealstage": "closedwon",
                "closedate": "2026-12-01T12:00:00.000Z",
                "hs_lastmodifieddate": "2026-12-01T12:00:00Z",
            },
            "updatedAt": "2026-12-01T12:00:00.000Z",
        }
        await _deliver(stack, "hubspot", dumps([won]))
        # One transaction applies the close and re-decides the deal's activities: once the deal
        # is held, any new version of the mail is too.
        await references_landed(
            db_engine, TENANT, _mapped(("deal", "3302"), updated_at="2026-12-01T12:00:00Z")
        )
        after = await _attribution(db_engine, email_id)
    assert (before.status, before.deal_id, before.rep_id) == ("attributed", "3302", "7701")
    assert (after.version, after.status, after.deal_id, after.rep_id) == (
        before.version,
        "attributed",
        "3302",
        "7701",
    )


def _twilio(call_sid: str, seconds: int, **extra: str) -> bytes:
    """A Twilio Voice status callback of a completed outbound call (form-encoded)."""
    return urlencode(
        {
            "AccountSid": "AC0123456789abcdef0123456789abcdef",
            "ApiVersion": "2010-04-01",
            "CallSid": call_sid,
            "CallStatus": "completed",
            "CallDuration": str(seconds),
            "Direction": "outbound-api",
            "From": "+16505551234",
            "To": "+14155552671",
            "Timestamp": "Fri, 20 Nov 2026 15:15:20 +0000",
            "SequenceNumber": "3",
            **extra,
        }
    ).encode()


async def test_a_voicemail_twilio_answering_machine_detection_reports_is_not_a_connect(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """With answering machine detection on, Twilio reports who picked up (``AnsweredBy``): a
    message left on a machine is a dial and a voicemail, not a connect or talk time; a person is."""
    keys = await setup_tenant(db_engine)
    auth = {"Authorization": f"Bearer {keys['ingest']}"}
    rep = {"entity_type": "rep", "id": "rep-1", "phones": ["(650) 555-1234"], "updated_at": T0}
    calls = {
        "CA-human": _twilio("CA-human", 240, AnsweredBy="human"),
        "CA-machine": _twilio("CA-machine", 35, AnsweredBy="machine_end_beep"),
        "CA-no-detection": _twilio("CA-no-detection", 60),
        "CA-unanswered": _twilio("CA-unanswered", 0),
    }
    async with in_process_stack(
        kafka_settings, database_settings, ("ingest", "attribution", "metrics")
    ) as stack:
        synced = await stack.ingest.post(
            "/v1/crm/sync", json={"source": "api", "entities": [rep]}, headers=auth
        )
        assert synced.status_code == 202, synced.text
        await references_landed(db_engine, TENANT, [rep])
        for body in calls.values():
            await _deliver(stack, "twilio", body)
        ids = {str(activity_id_for(TENANT, "twilio", sid)): sid for sid in calls}
        found = await _contributions(db_engine, ids, "rep_id, dials, connects, talk_seconds")
    assert {name: (r.rep_id, r.dials, r.connects, r.talk_seconds) for name, r in found.items()} == {
        "CA-human": ("rep-1", 1, 1, 240),
        "CA-machine": ("rep-1", 1, 0, 0),
        "CA-no-detection": ("rep-1", 1, 1, 60),
        "CA-unanswered": ("rep-1", 1, 0, 0),
    }


async def test_a_call_from_a_withheld_number_is_the_reps_call(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """A caller who withholds their number reaches Aircall as ``raw_digits: "anonymous"`` and
    Twilio as ``From=Anonymous``. Ana took both calls: they are her calls and talk time, with
    nobody to match (unmatched), not a refusal that loses them (Aircall disables a webhook that
    keeps failing)."""
    keys = await setup_tenant(db_engine)
    auth = {"Authorization": f"Bearer {keys['ingest']}"}
    rep = {
        "entity_type": "rep",
        "id": "rep-1",
        "emails": ["ana.seller@acme.example"],
        "phones": ["(415) 555-0001"],
        "updated_at": T0,
    }
    aircall = {
        "resource": "call",
        "event": "call.ended",
        "timestamp": 1795532745,
        "token": SECRETS["aircall"][0],
        "data": {
            "id": 812345679,
            "direction": "inbound",
            "started_at": 1795191000,
            "answered_at": 1795191010,
            "ended_at": 1795191310,
            "duration": 300,
            "raw_digits": "anonymous",
            "user": {"id": 456, "name": "Ana Seller", "email": "ana.seller@acme.example"},
            "number": {"id": 789, "name": "Sales US", "digits": "+1 650-555-1234"},
            "contact": None,
            "voicemail": None,
        },
    }
    twilio = _twilio("CA-anonymous", 120, Direction="inbound", From="Anonymous", To="+14155550001")
    async with in_process_stack(
        kafka_settings, database_settings, ("ingest", "attribution", "metrics")
    ) as stack:
        synced = await stack.ingest.post(
            "/v1/crm/sync", json={"source": "api", "entities": [rep]}, headers=auth
        )
        assert synced.status_code == 202, synced.text
        await references_landed(db_engine, TENANT, [rep])
        await _deliver(stack, "aircall", dumps(aircall))
        await _deliver(stack, "twilio", twilio)
        ids = {
            str(activity_id_for(TENANT, "aircall", "812345679")): "aircall",
            str(activity_id_for(TENANT, "twilio", "CA-anonymous")): "twilio",
        }
        found = await _contributions(db_engine, ids, "status, rep_id, talk_seconds")
    assert {name: (r.status, r.rep_id, r.talk_seconds) for name, r in found.items()} == {
        "aircall": ("unmatched", "rep-1", 300),
        "twilio": ("unmatched", "rep-1", 120),
    }


def _notification(subscription: str, object_id: int, **fields: Any) -> dict[str, Any]:
    """One of HubSpot's own webhook notifications (Webhooks API), as the app's target URL gets them."""
    return {
        "eventId": 100 + object_id,
        "subscriptionId": 2101,
        "portalId": 62515,
        "appId": 54321,
        "occurredAt": 1795600000000,
        "subscriptionType": subscription,
        "attemptNumber": 0,
        "objectId": object_id,
        "changeSource": "CRM_UI",
        **fields,
    }


async def test_hubspot_deletion_and_merge_notifications_retire_the_records(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """HubSpot's own ``deal.deletion`` and ``contact.merge`` notifications carry the ids: a deal
    deleted as a duplicate stops competing for Globex's mail, and a contact merged into another
    is that one (the survivor's deal)."""
    await setup_tenant(db_engine)
    duplicate = _hubspot_deal(
        "3304", "appointmentscheduled", "2026-11-01T09:00:00.000Z", "2027-01-31T12:00:00.000Z", []
    )
    expansion = _hubspot_deal(
        "3302", "appointmentscheduled", "2026-10-15T09:00:00.000Z", "2027-01-31T12:00:00.000Z", []
    )
    # Dana was entered twice; the copy (904) holds a role on the duplicate deal.
    dana = {
        **HUBSPOT_CRM[2],
        "id": "903",
        "properties": {"email": "dana@globex.example", "firstname": "Dana"},
    }
    dana_copy = {**dana, "id": "904"}
    duplicate["associations"]["contacts"] = {"results": [{"id": "904", "type": "deal_to_contact"}]}
    expansion["associations"]["contacts"] = {"results": [{"id": "903", "type": "deal_to_contact"}]}
    async with in_process_stack(kafka_settings, database_settings, ("ingest", "attribution")) as stack:
        await _deliver(stack, "hubspot", dumps([*HUBSPOT_CRM[:2], dana, dana_copy, duplicate, expansion]))
        sent = _mapped(
            ("rep", "7701"),
            ("account", "5501"),
            ("contact", "903"),
            ("contact", "904"),
            ("deal", "3304"),
            ("deal", "3302"),
        )
        await references_landed(db_engine, TENANT, sent)
        answer = await _deliver(
            stack,
            "hubspot",
            dumps(
                [
                    _notification("deal.deletion", 3304, changeFlag="DELETED"),
                    _notification(
                        "contact.merge", 903, primaryObjectId=903, mergedObjectIds=[904], changeFlag="MERGED"
                    ),
                ]
            ),
        )
        assert (answer["entities"], answer["ignored"]) == (2, [])
        gone = [*_mapped(("deal", "3304"), deleted=True), *_mapped(("contact", "904"), merged_into="903")]
        await references_landed(db_engine, TENANT, gone)
        email = _hubspot_email("e-dana", "2026-11-20T15:00:00.000Z")
        email["properties"]["hs_email_to_email"] = "dana@globex.example"
        email["associations"] = {}
        await _deliver(stack, "hubspot", dumps([email]))
        row = await _attribution(db_engine, activity_id_for(TENANT, "hubspot", "e-dana"))
    async with db_engine.connect() as conn:
        retired = [
            tuple(r)
            for r in await conn.execute(
                text(
                    "SELECT 'deal', deal_id, deleted, merged_into FROM ref_deals WHERE tenant_id = :t "
                    "UNION ALL SELECT 'contact', contact_id, deleted, merged_into FROM ref_contacts "
                    "WHERE tenant_id = :t ORDER BY 1, 2"
                ),
                {"t": TENANT},
            )
        ]
    assert (row.status, row.deal_id, row.account_id, row.rep_id) == ("attributed", "3302", "5501", "7701")
    assert retired == [
        ("contact", "903", False, None),
        ("contact", "904", False, "903"),
        ("deal", "3302", False, None),
        ("deal", "3304", True, None),
    ]


async def test_a_hubspot_companys_additional_domains_find_it(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """HubSpot keeps a company's other domains in ``hs_additional_domains`` (``;``-separated):
    Dana at globex.de, whom the CRM does not know, writes for Globex."""
    await setup_tenant(db_engine)
    company = {
        **HUBSPOT_CRM[1],
        "properties": {
            "name": "Globex",
            "domain": "globex.example",
            "hs_additional_domains": "globex.co.uk;globex.de",
        },
    }
    expansion = _hubspot_deal(
        "3302", "appointmentscheduled", "2026-10-15T09:00:00.000Z", "2027-01-31T12:00:00.000Z", []
    )
    async with in_process_stack(kafka_settings, database_settings, ("ingest", "attribution")) as stack:
        await _deliver(stack, "hubspot", dumps([HUBSPOT_CRM[0], company, expansion]))
        await references_landed(
            db_engine, TENANT, _mapped(("rep", "7701"), ("account", "5501"), ("deal", "3302"))
        )
        email = _hubspot_email("e-de", "2026-11-20T15:00:00.000Z")
        email["properties"]["hs_email_to_email"] = "dana@globex.de"
        email["associations"] = {}
        await _deliver(stack, "hubspot", dumps([email]))
        row = await _attribution(db_engine, activity_id_for(TENANT, "hubspot", "e-de"))
    assert (row.status, row.deal_id, row.account_id, row.rep_id) == ("attributed", "3302", "5501", "7701")


async def test_a_withheld_number_posted_to_the_events_api_is_no_phone_as_on_the_vendor_paths(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """A dialer exporting through ``POST /v1/events`` sends the caller's number as its vendor gave
    it: ``anonymous``, ``Restricted``. The call is Ana's with nobody to match (unmatched, her talk
    time), as Aircall's and Twilio's are; a caller known by email too is kept by it. Junk that is
    no withheld marker is still refused naming the field."""
    keys = await setup_tenant(db_engine)
    auth = {"Authorization": f"Bearer {keys['ingest']}"}
    rep = {"entity_type": "rep", "id": "rep-1", "phones": ["(415) 555-0001"], "updated_at": T0}

    def call(external_id: str, caller: dict[str, str]) -> dict[str, Any]:
        return inbound_call(external_id, caller, occurred_at="2026-11-20T15:00:00Z", duration_seconds=90)

    async with in_process_stack(
        kafka_settings, database_settings, ("ingest", "attribution", "metrics")
    ) as stack:
        synced = await stack.ingest.post(
            "/v1/crm/sync", json={"source": "api", "entities": [rep]}, headers=auth
        )
        assert synced.status_code == 202, synced.text
        await references_landed(db_engine, TENANT, [rep])
        junk = await stack.ingest.post(
            "/v1/events", json={"activities": [call("c-junk", {"phone": "call me maybe"})]}, headers=auth
        )
        assert junk.status_code == 422, junk.text
        assert [e["field"] for e in junk.json()["errors"]] == ["activities.0.participants.0.phone"]
        posted = await stack.ingest.post(
            "/v1/events",
            json={
                "activities": [
                    call("c-anonymous", {"phone": "anonymous"}),
                    call("c-restricted", {"phone": "Restricted", "email": "bo@globex.example"}),
                ]
            },
            headers=auth,
        )
        assert posted.status_code == 202, posted.text
        assert posted.json()["accepted"] == 2
        ids = {str(activity_id_for(TENANT, "dialer", c)): c for c in ("c-anonymous", "c-restricted")}
        found = await _contributions(db_engine, ids, "status, rep_id, talk_seconds")
        async with db_engine.connect() as conn:
            stored = {
                ids[str(r.activity_id)]: r.participants
                for r in await conn.execute(
                    text(
                        "SELECT activity_id, payload -> 'participants' AS participants FROM activities WHERE tenant_id = :t"
                    ),
                    {"t": TENANT},
                )
            }
    assert {name: (r.status, r.rep_id, r.talk_seconds) for name, r in found.items()} == {
        "c-anonymous": ("unmatched", "rep-1", 90),
        "c-restricted": ("unmatched", "rep-1", 90),
    }
    assert {name: [(p.get("email"), p.get("phone")) for p in people] for name, people in stored.items()} == {
        "c-anonymous": [(None, "+14155550001")],
        "c-restricted": [("bo@globex.example", None), (None, "+14155550001")],
    }


#: Ana (rep-1), Cy (rep-2) owning Globex's deal-1, and Bo (con-1), its champion, by phone.
GLOBEX_CALLS_CRM: list[dict[str, Any]] = [
    {"entity_type": "rep", "id": "rep-1", "emails": ["ana.seller@acme.example"]},
    {"entity_type": "rep", "id": "rep-2", "emails": ["cy@acme.example"]},
    {"entity_type": "account", "id": "acc-1", "domains": ["globex.example"]},
    {"entity_type": "contact", "id": "con-1", "account_id": "acc-1", "phones": ["(415) 555-2671"]},
    {
        "entity_type": "deal",
        "id": "deal-1",
        "account_id": "acc-1",
        "owner_rep_id": "rep-2",
        "created_at": "2026-10-01T00:00:00Z",
        "contacts": [{"contact_id": "con-1", "role": "champion"}],
    },
]


async def test_a_softphone_call_is_the_mapped_reps_and_a_dial_leg_is_folded_into_it(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """Ana calls Globex's buyer from her browser (Twilio Client, ``From=client:ana``); Twilio also
    reports the ``<Dial>`` leg to the buyer (``ParentCallSid``). The tenant maps ``ana`` to rep-1:
    the call is hers, on the buyer's deal, counted once with the leg's talk time. A client nobody
    maps keeps the buyer's side and goes to the deal's owner. Her call through a TwiML
    application names no number on the parent (``To`` the application's SID): its leg, reported
    first, names the buyer, and the call is hers on the deal, once, with the leg's 35 s. Before,
    the leg was ignored and the application's call refused with 422 (lost once Twilio stopped
    retrying)."""
    keys = await setup_tenant(db_engine, {**TENANT_SETTINGS, "rep_aliases": {"ana": "rep-1"}})
    auth = {"Authorization": f"Bearer {keys['ingest']}"}
    crm = GLOBEX_CALLS_CRM
    parent = _twilio("CA-parent", 240, From="client:ana", To="+14155552671")
    leg = _twilio(
        "CA-leg",
        238,
        Direction="outbound-dial",
        From="+16505551234",
        To="+14155552671",
        ParentCallSid="CA-parent",
    )
    unmapped = _twilio("CA-unmapped", 30, From="client:someone", To="+14155552671")
    app = _twilio(
        "CA-app", 41, Direction="inbound", From="client:ana", To="AP0123456789abcdef0123456789abcdef"
    )
    app_leg = _twilio(
        "CA-app-leg",
        35,
        Direction="outbound-dial",
        From="+16505551234",
        To="+14155552671",
        ParentCallSid="CA-app",
        SequenceNumber="2",
    )
    async with in_process_stack(
        kafka_settings, database_settings, ("ingest", "attribution", "metrics")
    ) as stack:
        await _sync(stack, db_engine, auth, crm)
        answers = [await _deliver(stack, "twilio", body) for body in (parent, leg, unmapped, app_leg, app)]
        query = (
            "SELECT external_id, status, rep_id, deal_id, talk_seconds FROM metric_contributions m "
            "JOIN activities a USING (tenant_id, activity_id) WHERE m.tenant_id = :t ORDER BY external_id"
        )

        async def rows() -> list[Any]:
            async with db_engine.connect() as conn:
                return [tuple(r) for r in await conn.execute(text(query), {"t": TENANT})]

        found = await eventually(
            rows,
            lambda r: len(r) >= 3 and ("CA-parent", "attributed", "rep-1", "deal-1", 238) in r,
            60,
            "the calls' contributions",
        )
        # Everything published processed (not a second's wait): a leg counted apart would be there.
        await drained(kafka_settings)
        found = await rows()
    # The leg is a new revision of the parent's call; the application's leg alone completes nothing.
    assert [(a["accepted"], a["ignored"]) for a in answers] == [(1, []), (1, []), (1, []), (0, []), (1, [])]
    assert found == [
        ("CA-app", "attributed", "rep-1", "deal-1", 35),
        ("CA-parent", "attributed", "rep-1", "deal-1", 238),
        ("CA-unmapped", "attributed", "rep-2", "deal-1", 30),
    ]


def _invite(event_id: str, updated: str, *attendees: tuple[str, str], **fields: Any) -> dict[str, Any]:
    """A Google event Ana organised (an ``events.list`` item): each attendee (email, answer),
    her own entry (``organizer: true``) among them."""
    return _calendar_event(
        event_id,
        "default",
        updated=updated,
        attendees=[
            {
                "email": email,
                "responseStatus": answer,
                **({"organizer": True} if email.startswith("ana") else {}),
            }
            for email, answer in attendees
        ],
        **fields,
    )


def _graph_event(event_id: str, **fields: Any) -> dict[str, Any]:
    """A Graph event on the calendar of its organizer, Ana, as the connector forwards it."""
    return {
        "@odata.type": "#microsoft.graph.event",
        "id": event_id,
        "lastModifiedDateTime": "2026-11-20T12:00:00Z",
        "isCancelled": False,
        "isOrganizer": True,
        "responseStatus": {"response": "organizer"},
        "start": {"dateTime": "2026-11-23T15:00:00.0000000", "timeZone": "UTC"},
        "end": {"dateTime": "2026-11-23T16:00:00.0000000", "timeZone": "UTC"},
        "organizer": {"emailAddress": {"address": "ana.seller@acme.example"}},
        "attendees": [
            {"type": "required", "status": {"response": "accepted"}, "emailAddress": {"address": address}}
            for address in ("bo.buyer@globex.example", "dan@acme.example")
        ],
        **fields,
    }


async def test_a_declined_organizer_is_not_credited_and_an_invite_every_guest_declined_stops_counting(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """Ana organised meetings with Globex's Bo and declined her own (Google: her entry with
    ``organizer: true``; Graph: her answer on her calendar's event); Dan went: the meetings are
    Dan's. Ana's other meetings were published held while Bo had accepted; then Bo declined one,
    Ana the other (each event's next revision): they are called off and stop counting as booked
    and held, nobody credited with the one Ana declined. Before, Ana was credited with the
    meetings she declined, and the revision Bo declined was ignored as time blocked, the held
    meeting left counted."""
    keys = await setup_tenant(db_engine)
    auth = {"Authorization": f"Bearer {keys['ingest']}"}
    crm: dict[str, Any] = {
        "source": "test",
        "entities": [
            {"entity_type": "rep", "id": "rep-1", "emails": ["ana.seller@acme.example"], "updated_at": T0},
            {"entity_type": "rep", "id": "rep-2", "emails": ["dan@acme.example"], "updated_at": T0},
            {"entity_type": "account", "id": "acc-1", "domains": ["globex.example"], "updated_at": T0},
            {**DEAL, "created_at": "2026-10-01T00:00:00Z", "contacts": [], "updated_at": T0},
        ],
    }
    went = _invite(
        "g-went",
        "2026-11-20T12:00:00.000Z",
        ("ana.seller@acme.example", "declined"),
        ("bo.buyer@globex.example", "accepted"),
        ("dan@acme.example", "accepted"),
    )
    accepted = _invite(
        "g-off",
        "2026-11-20T12:00:00.000Z",
        ("ana.seller@acme.example", "accepted"),
        ("bo.buyer@globex.example", "accepted"),
    )
    # Another event: its own id and UID (one UID is one meeting, in every calendar holding it).
    alone = {**accepted, "id": "g-alone", "iCalUID": "g-alone@google.com"}
    declined = {**accepted, "updated": "2026-11-21T08:00:00.000Z"}
    ana_declined = {**alone, "updated": "2026-11-21T08:00:00.000Z"}
    ana_declined["attendees"] = [
        {**alone["attendees"][0], "responseStatus": "declined"},
        alone["attendees"][1],
    ]
    declined["attendees"] = [
        {**accepted["attendees"][0]},
        {**accepted["attendees"][1], "responseStatus": "declined"},
    ]
    graph = _graph_event("m-went", responseStatus={"response": "declined"})
    names = {
        str(activity_id_for(TENANT, "google-calendar", "g-went")): "g-went",
        str(activity_id_for(TENANT, "google-calendar", "g-off")): "g-off",
        str(activity_id_for(TENANT, "google-calendar", "g-alone")): "g-alone",
        str(activity_id_for(TENANT, "microsoft-graph", "m-went")): "m-went",
    }
    columns = (
        "status, rep_id, deal_id, meetings_booked, meetings_held, meetings_cancelled, internal_meetings_held"
    )
    async with in_process_stack(
        kafka_settings, database_settings, ("ingest", "attribution", "metrics")
    ) as stack:
        synced = await stack.ingest.post("/v1/crm/sync", json=crm, headers=auth)
        assert synced.status_code == 202, synced.text
        await references_landed(db_engine, TENANT, crm["entities"])
        first = await _deliver(
            stack, "google-calendar", dumps({"kind": "calendar#events", "items": [went, accepted, alone]})
        )
        from_graph = await _deliver(stack, "microsoft-graph", dumps(graph))
        counted = await _contributions(db_engine, names, columns)
        # Dan went to the meetings Ana declined; Bo had accepted hers.
        assert {name: tuple(r)[1:] for name, r in counted.items()} == {
            "g-went": ("attributed", "rep-2", "deal-1", 1, 1, 0, 0),
            "g-off": ("attributed", "rep-1", "deal-1", 1, 1, 0, 0),
            "g-alone": ("attributed", "rep-1", "deal-1", 1, 1, 0, 0),
            "m-went": ("attributed", "rep-2", "deal-1", 1, 1, 0, 0),
        }
        later = await _deliver(
            stack, "google-calendar", dumps({"kind": "calendar#events", "items": [declined, ana_declined]})
        )
        off_ids = [str(activity_id_for(TENANT, "google-calendar", e)) for e in ("g-off", "g-alone")]

        async def off_rows() -> Any:
            async with db_engine.connect() as conn:
                return [
                    tuple(r)
                    for r in await conn.execute(
                        text(
                            f"SELECT {columns} FROM metric_contributions WHERE tenant_id = :t "
                            "AND activity_id = ANY(CAST(:ids AS uuid[])) ORDER BY activity_id = :first DESC"
                        ),
                        {"t": TENANT, "ids": off_ids, "first": off_ids[0]},
                    )
                ]

        retracted = await eventually(
            off_rows, lambda rows: all(r[0] != "attributed" for r in rows), 60, "the called-off meetings"
        )
    assert [(a["accepted"], a["ignored"]) for a in (first, from_graph, later)] == [(3, []), (1, []), (2, [])]
    # Ana's own with Bo who declined: internal, counting nothing; the one she declined: nobody's.
    assert retracted == [("internal", "rep-1", None, 0, 0, 0, 0), ("internal", None, None, 0, 0, 0, 0)]


def _ringcentral(sequence: int, at: str, session: str, **party: Any) -> bytes:
    """A telephony session notification (``/restapi/v1.0/account/~/telephony/sessions``) telling
    one party's status, as RingCentral posts it to the subscription's webhook."""
    direction = party.get("direction", "Outbound")
    own = {"phoneNumber": party["line"], "name": party["name"], "extensionId": party["extension"]}
    far = {"phoneNumber": "+14155552671"}  # Bo, Globex's champion
    status = {"code": party["code"], **({"reason": party["reason"]} if "reason" in party else {})}
    return dumps(
        {
            "uuid": f"{session}-{sequence}",
            "event": "/restapi/v1.0/account/37439510/telephony/sessions",
            "timestamp": at,
            "subscriptionId": "2f5c1a9e-8d3b-4c7a-b1e2-6a0f9d8c7b54",
            "ownerId": "62944090008",
            "body": {
                "sequence": sequence,
                "telephonySessionId": session,
                "eventTime": at,
                "parties": [
                    {
                        "accountId": "37439510",
                        "extensionId": party["extension"],
                        "id": party["party_id"],
                        "direction": direction,
                        **({"from": own, "to": far} if direction == "Outbound" else {"from": far, "to": own}),
                        "status": status,
                    }
                ],
            },
        }
    )


async def test_a_ringcentral_call_is_the_mapped_extensions_reps_on_the_contacts_deal_counted_once(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """A RingCentral admin subscribes the webhook to the account's telephony sessions with the
    tenant's verification token; the subscription's validation request is echoed. Ana's
    extension (mapped to rep-1) calls Bo; every status change comes as a notification, the
    hang-up twice (a redelivery). Then Bo calls the main number, the front desk (an extension
    nobody maps) answers and transfers him to Ana. Each session is one call on Bo's deal, Ana's
    (not the deal owner's, rep-2), counted once with its talk time: the desk's hang-up looked like
    the end of the second call, published first, then retracted by the call with Ana."""
    ana = {"extension": "62944090008", "line": "+16505551234", "name": "Ana Seller"}
    desk = {"extension": "62944090001", "line": "+16505550100", "name": "Front Desk"}
    keys = await setup_tenant(db_engine, {**TENANT_SETTINGS, "rep_aliases": {ana["extension"]: "rep-1"}})
    auth = {"Authorization": f"Bearer {keys['ingest']}"}
    crm = GLOBEX_CALLS_CRM
    out, into = "s-outbound-1", "s-inbound-1"
    outbound = [
        _ringcentral(1, "2026-11-20T15:00:00Z", out, code="Setup", party_id="p-1", **ana),
        _ringcentral(2, "2026-11-20T15:00:12Z", out, code="Answered", party_id="p-1", **ana),
        _ringcentral(
            3, "2026-11-20T15:05:12Z", out, code="Disconnected", reason="CallFinished", party_id="p-1", **ana
        ),
    ]
    inbound = [
        _ringcentral(
            1, "2026-11-20T16:00:00Z", into, code="Answered", party_id="p-d", direction="Inbound", **desk
        ),
        _ringcentral(
            2,
            "2026-11-20T16:00:30Z",
            into,
            code="Disconnected",
            reason="BlindTransfer",
            party_id="p-d",
            direction="Inbound",
            **desk,
        ),
        _ringcentral(
            3, "2026-11-20T16:00:40Z", into, code="Answered", party_id="p-a", direction="Inbound", **ana
        ),
        _ringcentral(
            4, "2026-11-20T16:10:00Z", into, code="Disconnected", party_id="p-a", direction="Inbound", **ana
        ),
    ]
    async with in_process_stack(
        kafka_settings, database_settings, ("ingest", "attribution", "metrics")
    ) as stack:
        token = "7c1e0f4a-2b9d-4e8f-a6c3-5d0b1e2f3a4b"
        validation = await stack.ingest.post(
            "/v1/webhooks/ringcentral/acme", content=b"", headers={"Validation-Token": token}
        )
        assert (validation.status_code, validation.headers.get("validation-token")) == (200, token)
        unverified = await stack.ingest.post("/v1/webhooks/ringcentral/acme", content=outbound[-1])
        assert unverified.status_code == 401
        assert unverified.json()["errors"] == [
            {"in": "header", "field": "verification-token", "reason": "missing"}
        ]
        await _sync(stack, db_engine, auth, crm)
        answers = [await _deliver(stack, "ringcentral", body) for body in [*outbound, outbound[-1], *inbound]]
        ids = {
            str(activity_id_for(TENANT, "ringcentral", out)): "outbound",
            str(activity_id_for(TENANT, "ringcentral", into)): "inbound",
        }
        await eventually(
            lambda: _contributions(db_engine, ids, "talk_seconds"),
            lambda found: found["inbound"].talk_seconds == 600,
            60,
            "the transferred call with Ana",
        )
        await drained(kafka_settings)
        found = await _contributions(
            db_engine, ids, "status, rep_id, deal_id, contact_ids, dials, connects, talk_seconds"
        )
        async with db_engine.connect() as conn:
            rollups = {
                tuple(r)
                for r in await conn.execute(
                    text(
                        "SELECT entity_id, dials, connects, talk_seconds FROM metric_rollups WHERE tenant_id = :t "
                        "AND level = 'rep' AND granularity = 'day' AND period_start = '2026-11-20'"
                    ),
                    {"t": TENANT},
                )
            }
    # Nothing until a session is finished; the redelivered hang-up is a duplicate; the desk's
    # hang-up published the call once, Ana's published it again (a new revision).
    assert [(a["accepted"], a["duplicates"]) for a in answers] == [
        (0, 0),
        (0, 0),
        (1, 0),
        (1, 1),
        (0, 0),
        (1, 0),
        (0, 0),
        (1, 0),
    ]
    assert {name: tuple(r)[1:] for name, r in found.items()} == {
        "outbound": ("attributed", "rep-1", "deal-1", ["con-1"], 1, 1, 300),
        "inbound": ("attributed", "rep-1", "deal-1", ["con-1"], 0, 0, 600),
    }
    assert {r for r in rollups if any(r[1:])} == {("rep-1", 1, 1, 900)}
