"""Three vendor shapes through ingest's webhook route, the real broker, attribution, metrics and
PostgreSQL: Salesforce's EmailMessage (the direction a Task cannot say), HubSpot's own deletion
notifications for engagements, and a Twilio call between two numbers whose ``<Dial>`` leg
reached someone else."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.contracts.activities import activity_id_for
from libs.common.settings import DatabaseSettings, KafkaSettings
from libs.common.testing.stack import in_process_stack
from tests.integration.attribution.test_attribution_real_crm import TENANT
from tests.integration.attribution.test_attribution_vendor_webhooks import (
    GLOBEX_AND_ANA,
    GLOBEX_CALLS_CRM,
    HUBSPOT_CRM,
    HUBSPOT_ENTITIES,
    _deliver,
    _hubspot_email,
    _mapped,
    _notification,
    _opportunity,
    _sync,
    _twilio,
)
from tests.integration.ingest.ingest_integration_support import dumps, outbound_message, setup_tenant
from tests.integration.pipeline_support import drained
from tests.integration.polling import eventually, poll_rows, references_landed

# --------------------------------------------------------------------------- Salesforce EmailMessage

OPPORTUNITY = "0065j00000Lm4NpAAJ"
ANA = "0055j000004Vb8nAAC"
SALESFORCE_CRM = outbound_message(
    GLOBEX_AND_ANA,
    _opportunity(OPPORTUNITY, "Prospecting", "2026-06-01T09:00:00.000Z", "2026-12-15"),
)


def _email_task(task_id: str, modified: str, *, stamp: str | None = None, deleted: bool = False) -> bytes:
    """The Task Salesforce makes for a mail logged with Enhanced Email, as an Outbound Message on
    Task sends it with the tenant's address fields: no direction (read as Ana's sent mail).
    ``stamp``: its ``SystemModstamp``; ``deleted``: read back by a sync job's ``queryAll``."""
    system = f"<sf:SystemModstamp>{stamp}</sf:SystemModstamp>" if stamp else ""
    return outbound_message(
        f"""
    <Notification>
     <Id>04l5j00000Gx7T{task_id[-4:]}</Id>
     <sObject xsi:type="sf:Task" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">
      <sf:Id>{task_id}</sf:Id>
      <sf:CompletedDateTime>2026-11-20T15:00:00.000Z</sf:CompletedDateTime>
      <sf:CreatedDate>2026-11-20T15:00:02.000Z</sf:CreatedDate>
      <sf:IsDeleted>{str(deleted).lower()}</sf:IsDeleted>
      <sf:LastModifiedDate>{modified}</sf:LastModifiedDate>{system}
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
    return outbound_message(
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
    """Per mail (by name): what attribution holds of it and what metrics counted, once ``done``.
    A mail shows once metrics counted the version attribution holds (not an older one)."""
    rows = await poll_rows(
        engine,
        "SELECT a.activity_id, a.external_id, a.direction, a.revision, t.status, t.rep_id, t.deal_id, "
        "t.explanation->>'rule_path', c.emails_sent, c.emails_received "
        "FROM activities a JOIN attributions t USING (tenant_id, activity_id) "
        "JOIN metric_contributions c ON c.tenant_id = t.tenant_id AND c.activity_id = t.activity_id "
        "AND c.version = t.version "
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
        retracted = await _mails(
            db_engine, ids, lambda rows: len(rows) == 2 and rows["task first"][3] == "excluded"
        )
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
    # A row once metrics counted the version attribution holds.
    query = (
        "SELECT t.version, t.status, t.rep_id, t.explanation->>'rule_path', c.emails_sent "
        "FROM attributions t JOIN metric_contributions c ON c.tenant_id = t.tenant_id "
        "AND c.activity_id = t.activity_id AND c.version = t.version "
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


# --------------------------------------------------------------------------- Twilio two-number calls

BUYER, LINE, CELL = "+14155552671", "+16505550100", "+16505551234"


def _leg(call_sid: str, parent: str, status: str, seconds: int, to: str, sender: str) -> bytes:
    return _twilio(
        call_sid,
        seconds,
        CallStatus=status,
        Direction="outbound-dial",
        From=sender,
        To=to,
        ParentCallSid=parent,
        SequenceNumber="2",
        Timestamp="Fri, 20 Nov 2026 15:15:05 +0000",
    )


async def test_a_call_between_two_numbers_is_the_call_its_dial_leg_made(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """Three calls on the tenant's number (LINE, nobody's), Ana's mobile being a rep's number:
    Bo's call forwarded to her mobile, answered (parent first); Bo's call forwarded and missed
    (the leg first: the parent still says "completed" after 40 s of ringing); Ana's click to
    call (Twilio calls her mobile, then dials Bo). Each is one call, Ana's on Bo's deal, with the
    leg's outcome and talk time, redeliveries and all (connects count outbound calls only).
    Before, the legs were ignored: the missed call had 40 s of talk time, the answered one counted
    the menu and the ringing (95 s), and neither named Ana (only the tenant's number); the click
    to call named no buyer and counted 130 s."""
    keys = await setup_tenant(db_engine)
    auth = {"Authorization": f"Bearer {keys['ingest']}"}
    # Ana's mobile is hers.
    crm = [{**GLOBEX_CALLS_CRM[0], "phones": [CELL]}, *GLOBEX_CALLS_CRM[1:]]
    answered = _twilio("CA-answered", 95, Direction="inbound", From=BUYER, To=LINE)
    answered_leg = _leg("CA-answered-leg", "CA-answered", "completed", 80, CELL, BUYER)
    missed = _twilio("CA-missed", 40, Direction="inbound", From=BUYER, To=LINE)
    missed_leg = _leg("CA-missed-leg", "CA-missed", "no-answer", 0, CELL, BUYER)
    click = _twilio("CA-click", 130, Direction="outbound-api", From=LINE, To=CELL)
    click_leg = _leg("CA-click-leg", "CA-click", "completed", 120, BUYER, LINE)
    deliveries = [answered, answered_leg, answered, missed_leg, missed, missed_leg, click, click_leg]
    query = (
        "SELECT external_id, a.direction, a.revision, m.status, m.rep_id, m.deal_id, m.connects, "
        "m.talk_seconds FROM metric_contributions m JOIN activities a USING (tenant_id, activity_id) "
        "WHERE m.tenant_id = :t ORDER BY external_id"
    )
    async with in_process_stack(
        kafka_settings, database_settings, ("ingest", "attribution", "metrics")
    ) as stack:
        await _sync(stack, db_engine, auth, crm)
        answers = [await _deliver(stack, "twilio", body) for body in deliveries]

        async def rows() -> list[Any]:
            async with db_engine.connect() as conn:
                return [tuple(r) for r in await conn.execute(text(query), {"t": TENANT})]

        await eventually(rows, lambda r: len(r) == 3 and all(c[2] > 10**12 for c in r), 60, "the calls")
        await drained(kafka_settings)
        found = await rows()
    assert [(a["accepted"], a["duplicates"]) for a in answers] == [
        (1, 0),  # the answered call, as its callback says (kept for its legs)
        (1, 0),  # its leg: the call it made
        (1, 1),  # the parent redelivered: a duplicate
        (0, 0),  # the missed call's leg, first: kept, waiting for its parent
        (2, 0),  # the parent: as it says, and the call its leg made
        (1, 1),  # the leg redelivered: a replay, a duplicate
        (1, 0),
        (1, 0),
    ]
    folded = 10**12 + 1
    assert found == [
        ("CA-answered", "inbound", folded, "attributed", "rep-1", "deal-1", 0, 80),
        ("CA-click", "outbound", folded, "attributed", "rep-1", "deal-1", 1, 120),
        ("CA-missed", "inbound", folded, "attributed", "rep-1", "deal-1", 0, 0),
    ]
