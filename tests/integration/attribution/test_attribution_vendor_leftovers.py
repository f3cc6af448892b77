"""Three vendor shapes through ingest's webhook route, the real broker, attribution, metrics and
PostgreSQL: Salesforce's EmailMessage (the direction a Task cannot say), HubSpot's own deletion
notifications for engagements, and a Twilio call between two numbers whose ``<Dial>`` leg
reached someone else."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.contracts.activities import activity_id_for
from libs.common.settings import DatabaseSettings, KafkaSettings
from libs.common.testing.stack import in_process_stack
from tests.integration.attribution.test_attribution_real_crm import TENANT
from tests.integration.attribution.test_attribution_vendor_webhooks import (
    HUBSPOT_CRM,
    HUBSPOT_ENTITIES,
    _deliver,
    _hubspot_email,
    _mapped,
    _notification,
    _opportunity,
    _outbound_message,
)
from tests.integration.ingest.ingest_integration_support import dumps, setup_tenant
from tests.integration.pipeline_support import drained
from tests.integration.polling import poll_rows, references_landed

# --------------------------------------------------------------------------- Salesforce EmailMessage

OPPORTUNITY = "0065j00000Lm4NpAAJ"
ANA = "0055j000004Vb8nAAC"
SALESFORCE_CRM = _outbound_message(
    """
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
    </Notification>""",
    _opportunity(OPPORTUNITY, "Prospecting", "2026-06-01T09:00:00.000Z", "2026-12-15"),
)


def _email_task(task_id: str, modified: str) -> bytes:
    """The Task Salesforce makes for a mail logged with Enhanced Email, as an Outbound Message on
    Task sends it with the tenant's address fields: no direction (read as Ana's sent mail)."""
    return _outbound_message(
        f"""
    <Notification>
     <Id>04l5j00000Gx7T{task_id[-4:]}</Id>
     <sObject xsi:type="sf:Task" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">
      <sf:Id>{task_id}</sf:Id>
      <sf:CompletedDateTime>2026-11-20T15:00:00.000Z</sf:CompletedDateTime>
      <sf:CreatedDate>2026-11-20T15:00:02.000Z</sf:CreatedDate>
      <sf:LastModifiedDate>{modified}</sf:LastModifiedDate>
      <sf:OwnerId>{ANA}</sf:OwnerId>
      <sf:SPM_Owner_Email__c>ana.seller@acme.example</sf:SPM_Owner_Email__c>
      <sf:SPM_Who_Email__c>bo.buyer@globex.example</sf:SPM_Who_Email__c>
      <sf:Subject>Email: Re: Pricing</sf:Subject>
      <sf:TaskSubtype>Email</sf:TaskSubtype>
      <sf:WhatId>{OPPORTUNITY}</sf:WhatId>
     </sObject>
    </Notification>"""
    )


def _email_message(message_id: str, task_id: str, modified: str, *, deleted: bool = False) -> bytes:
    """The EmailMessage of that Task: Bo's mail to Ana, received (``Incoming``)."""
    return _outbound_message(
        f"""
    <Notification>
     <Id>04l5j00000Gx7E{message_id[-4:]}</Id>
     <sObject xsi:type="sf:EmailMessage" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">
      <sf:Id>{message_id}</sf:Id>
      <sf:ActivityId>{task_id}</sf:ActivityId>
      <sf:FromAddress>bo.buyer@globex.example</sf:FromAddress>
      <sf:Incoming>true</sf:Incoming>
      <sf:IsDeleted>{str(deleted).lower()}</sf:IsDeleted>
      <sf:LastModifiedDate>{modified}</sf:LastModifiedDate>
      <sf:MessageDate>2026-11-20T14:59:30.000Z</sf:MessageDate>
      <sf:RelatedToId>{OPPORTUNITY}</sf:RelatedToId>
      <sf:Status>1</sf:Status>
      <sf:Subject>Re: Pricing</sf:Subject>
      <sf:ToAddress>ana.seller@acme.example</sf:ToAddress>
     </sObject>
    </Notification>"""
    )


async def _mails(engine: AsyncEngine, ids: dict[uuid.UUID, str], done: Any) -> dict[str, tuple[Any, ...]]:
    """Per mail (by name): what attribution holds of it and what metrics counted, once ``done``."""
    rows = await poll_rows(
        engine,
        "SELECT a.activity_id, a.external_id, a.direction, a.revision, t.status, t.rep_id, t.deal_id, "
        "t.explanation->>'rule_path', c.emails_sent, c.emails_received "
        "FROM activities a JOIN attributions t USING (tenant_id, activity_id) "
        "JOIN metric_contributions c USING (tenant_id, activity_id) "
        "WHERE a.tenant_id = :t AND a.source = 'salesforce' ORDER BY a.external_id",
        {"t": TENANT},
        lambda rows: done({ids[r[0]]: r[1:] for r in rows if r[0] in ids}),
    )
    return {ids[r[0]]: r[1:] for r in rows}


async def test_a_salesforce_email_message_gives_its_task_the_direction_once_in_either_order(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """Bo's mail to Ana, logged with Enhanced Email: the Task (no direction, read as Ana's sent
    mail) and its EmailMessage (``Incoming``) are one mail, received, on the opportunity: once,
    whichever arrives first, redelivered or not, and even when the Task is edited after. Its
    EmailMessage deleted, the mail is retracted. Before, the EmailMessage was ignored ("object
    type not used") and Bo's mail counted as a mail Ana sent."""
    await setup_tenant(db_engine)
    task_first, message_first = "00T5j00000Q1a3aEAB", "00T5j00000Q1a3bEAB"
    ids = {activity_id_for(TENANT, "salesforce", task_first): "task first"}
    ids[activity_id_for(TENANT, "salesforce", message_first)] = "message first"
    received = 10**13 + 1795189171000  # EmailMessage rank + its LastModifiedDate 2026-11-20T15:39:31Z
    async with in_process_stack(
        kafka_settings, database_settings, ("ingest", "attribution", "metrics")
    ) as stack:
        await _deliver(stack, "salesforce", SALESFORCE_CRM)
        sent = _mapped(("account", "0015j00000ZkM3hAAF"), ("rep", ANA), ("deal", OPPORTUNITY))
        await references_landed(db_engine, TENANT, sent)
        await _deliver(stack, "salesforce", _email_task(task_first, "2026-11-20T15:00:02.000Z"))
        await _deliver(
            stack, "salesforce", _email_message("02s5j00000Ab3AaAAJ", task_first, "2026-11-20T15:39:31.000Z")
        )
        message = _email_message("02s5j00000Ab3BbAAJ", message_first, "2026-11-20T15:39:31.000Z")
        await _deliver(stack, "salesforce", message)
        await _deliver(stack, "salesforce", message)  # Salesforce's retry
        # Edited a month later: the Task's own revision, still below the EmailMessage's.
        await _deliver(stack, "salesforce", _email_task(message_first, "2026-12-20T09:00:00.000Z"))
        await drained(kafka_settings)
        counted = await _mails(db_engine, ids, lambda rows: len(rows) == 2)
        await _deliver(
            stack,
            "salesforce",
            _email_message("02s5j00000Ab3AaAAJ", task_first, "2026-11-21T08:00:00.000Z", deleted=True),
        )
        retracted = await _mails(db_engine, ids, lambda rows: rows["task first"][3] == "excluded")
    assert counted == {
        "message first": (
            message_first,
            "inbound",
            received,
            "attributed",
            ANA,
            OPPORTUNITY,
            "explicit_deal",
            0,
            1,
        ),
        "task first": (
            task_first,
            "inbound",
            received,
            "attributed",
            ANA,
            OPPORTUNITY,
            "explicit_deal",
            0,
            1,
        ),
    }
    assert retracted["task first"][3:] == ("excluded", None, None, "deleted_at_source", 0, 0)
    assert retracted["message first"] == counted["message first"]


# --------------------------------------------------------------------------- HubSpot deletions


async def test_a_hubspot_engagement_deleted_in_hubspot_is_retracted_by_its_native_notification(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """Ana's mail to Bo, synced from HubSpot, counted; then HubSpot notifies its deletion with
    its generic webhook (``object.deletion``, ``objectTypeId`` 0-49, an email): the mail is
    retracted and Ana's sent mail goes back to 0. A note's deletion (0-46, not an activity here)
    and a call's restore in the same batch are acknowledged and listed as ignored. Before, every
    such notification was ignored and the deleted mail kept counting."""
    await setup_tenant(db_engine)
    mail = activity_id_for(TENANT, "hubspot", "40130009")
    deleted = [
        _notification("object.deletion", 40130009, objectTypeId="0-49", changeFlag="DELETED"),
        _notification("object.deletion", 40150001, objectTypeId="0-46", changeFlag="DELETED"),
        _notification("object.restore", 40120002, objectTypeId="0-48", changeFlag="RESTORED"),
    ]
    query = (
        "SELECT t.version, t.status, t.rep_id, t.explanation->>'rule_path', c.emails_sent "
        "FROM attributions t JOIN metric_contributions c USING (tenant_id, activity_id) "
        "WHERE t.tenant_id = :t AND t.activity_id = :a"
    )
    async with in_process_stack(
        kafka_settings, database_settings, ("ingest", "attribution", "metrics")
    ) as stack:
        await _deliver(stack, "hubspot", dumps(HUBSPOT_CRM))
        await references_landed(db_engine, TENANT, HUBSPOT_ENTITIES)
        await _deliver(stack, "hubspot", dumps([_hubspot_email("40130009", "2026-11-20T15:00:00.000Z")]))
        counted = await poll_rows(db_engine, query, {"t": TENANT, "a": mail}, lambda rows: len(rows) == 1)
        answer = await _deliver(stack, "hubspot", dumps(deleted))
        retracted = await poll_rows(
            db_engine, query, {"t": TENANT, "a": mail}, lambda rows: rows and rows[0][0] == 2
        )
    assert counted == [(1, "attributed", "7701", "owner_participates", 1)]
    assert (answer["accepted"], answer["deleted"], answer["entities"]) == (0, 1, 0)
    assert answer["ignored"] == [
        "[1] object.deletion (objectTypeId 0-46): object type not used",
        "[2] object.restore (objectTypeId 0-48): a restore; nothing is published "
        "(the object comes back with its next sync)",
    ]
    assert retracted == [(2, "excluded", None, "deleted_at_source", 0)]
