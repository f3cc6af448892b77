from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from libs.common.contracts.activities import (
    ActivityKind,
    CrmReferences,
    Direction,
    Outcome,
    Participant,
    ParticipantRole,
)
from libs.common.contracts.crm import AccountV1, ContactV1, DealV1, RepV1
from services.ingest.domain.vendors.salesforce import EMAIL_MESSAGE_RANK
from services.ingest.domain.webhook_types import SourceDeletion
from services.ingest.domain.webhooks import ADAPTERS, WebhookRejected, WebhookRequest

from .ingest_webhook_helpers import CONFIG, fixture, make_request

adapter = ADAPTERS["salesforce"]
#: The tenant's salesforce webhook secrets during a rotation; the endpoint URL ends with one.
SECRETS = ("salesforce-endpoint-token-new", "salesforce-endpoint-token-old")


def delivered(body: bytes, token: str | None = SECRETS[0]) -> WebhookRequest:
    """A delivery to ``/v1/webhooks/salesforce/acme/{token}``."""
    return replace(make_request(body), url_token=token)


ACK = (
    b'<?xml version="1.0" encoding="UTF-8"?>'
    b'<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">'
    b'<soapenv:Body><notificationsResponse xmlns="http://soap.sforce.com/2005/09/outbound">'
    b"<Ack>true</Ack></notificationsResponse></soapenv:Body></soapenv:Envelope>"
)


def ms(year: int, month: int, day: int, hour: int, minute: int, second: int) -> int:
    return int(datetime(year, month, day, hour, minute, second, tzinfo=UTC).timestamp() * 1000)


def test_tasks_become_a_call_and_an_email_with_crm_references() -> None:
    request = delivered(fixture("salesforce", "Task.xml"))
    adapter.verify(request, SECRETS, CONFIG)

    result = adapter.parse(request, CONFIG)

    assert result.ack is not None
    assert (result.ack.status_code, result.ack.media_type, result.ack.body) == (200, "text/xml", ACK)
    call, email = result.activities
    assert call.source == "salesforce"
    assert call.external_id == "00T5j00000Q1a2bEAB"
    assert call.kind is ActivityKind.CALL
    assert call.direction is Direction.OUTBOUND
    assert call.outcome is Outcome.VOICEMAIL
    assert call.duration_seconds == 41
    # Logged as the call ended (completed 10:15:00), 41 s long: it started at 10:14:19.
    assert call.occurred_at == datetime(2026, 11, 24, 10, 14, 19, tzinfo=UTC)
    assert call.revision == ms(2026, 11, 24, 10, 15, 2)
    assert call.crm == CrmReferences(
        deal_id="0065j00000Lm4NoAAJ",
        account_id="0015j00000ZkM3hAAF",
        contact_ids=("0035j00000Hq9RsAAJ",),
        owner_rep_id="0055j000004Vb8nAAC",
    )
    assert call.participants == (
        Participant(email="ana.seller@acme.example", role=ParticipantRole.CALLER),
        Participant(phone="+14155552671", role=ParticipantRole.CALLEE),
    )
    assert email.kind is ActivityKind.EMAIL
    assert (email.direction, email.outcome) == (Direction.OUTBOUND, Outcome.SENT)
    assert email.subject == "Email: Proposal for Globex"
    assert email.crm.account_id == "0015j00000ZkM3hAAF"
    assert email.crm.deal_id is None


def test_a_deleted_task_is_a_deletion_of_its_activity() -> None:
    """A Task read back with ``IsDeleted`` (a sync job's queryAll) retracts the call it was."""
    body = fixture("salesforce", "Task.xml").replace(
        b"<sf:IsDeleted>false</sf:IsDeleted>", b"<sf:IsDeleted>true</sf:IsDeleted>", 1
    )
    result = adapter.parse(delivered(body), CONFIG)
    assert [a.external_id for a in result.activities] == ["00T5j00000Q1a2cEAB"]
    # At the record's LastModifiedDate in ms, as its live revisions: an undelete is newer.
    assert result.deletions == (SourceDeletion("salesforce", "00T5j00000Q1a2bEAB", 1795515302000),)
    assert result.ignored == ()


def test_event_is_a_meeting_scheduled_relative_to_received_at() -> None:
    body = fixture("salesforce", "Event.xml")
    (upcoming,) = adapter.parse(make_request(body), CONFIG).activities
    assert upcoming.kind is ActivityKind.MEETING
    assert upcoming.outcome is Outcome.SCHEDULED
    assert upcoming.duration_seconds == 3600
    assert upcoming.participants[0].role is ParticipantRole.ORGANIZER
    later = make_request(body, received_at=datetime(2026, 11, 28, tzinfo=UTC))
    assert adapter.parse(later, CONFIG).activities[0].outcome is Outcome.HELD


@pytest.mark.parametrize(
    ("stage", "flags", "state"),
    [
        ("Closed Won", "", (True, True, datetime(2026, 11, 24, tzinfo=UTC))),
        ("Closed Lost", "", (True, False, datetime(2026, 11, 24, tzinfo=UTC))),
        ("Negotiation/Review", "", (False, False, None)),
        # Sent flags are the org's word, whatever the stage (a renamed closing stage).
        (
            "Signed",
            "<sf:IsClosed>true</sf:IsClosed><sf:IsWon>true</sf:IsWon>",
            (True, True, datetime(2026, 11, 24, tzinfo=UTC)),
        ),
    ],
)
def test_an_opportunity_without_is_closed_is_closed_by_its_stage(
    stage: str, flags: str, state: tuple[bool, bool, datetime | None]
) -> None:
    """An Outbound Message holds the fields the admin picked: Stage and Close Date but not
    IsClosed / IsWon is closed by its stage; an open one's Close Date is its expected close."""
    body = fixture("salesforce", "Opportunity.xml").decode()
    body = body.replace("<sf:IsClosed>true</sf:IsClosed>", "").replace("<sf:IsWon>true</sf:IsWon>", flags)
    body = body.replace("<sf:StageName>Closed Won</sf:StageName>", f"<sf:StageName>{stage}</sf:StageName>")
    (deal,) = adapter.parse(make_request(body.encode()), CONFIG).entities
    assert isinstance(deal, DealV1)
    assert (deal.is_closed, deal.is_won, deal.closed_at) == state


def test_crm_objects_become_entities() -> None:
    (deal,) = adapter.parse(make_request(fixture("salesforce", "Opportunity.xml")), CONFIG).entities
    assert deal == DealV1(
        id="0065j00000Lm4NoAAJ",
        updated_at=datetime(2026, 11, 24, 10, 0, 1, tzinfo=UTC),
        name="Globex renewal 2027",
        account_id="0015j00000ZkM3hAAF",
        owner_rep_id="0055j000004Vb8nAAC",
        stage="Closed Won",
        amount=Decimal("48000.5"),
        is_closed=True,
        is_won=True,
        created_at=datetime(2026, 10, 5, 9, 0, tzinfo=UTC),
        closed_at=datetime(2026, 11, 24, tzinfo=UTC),
    )
    (contact,) = adapter.parse(make_request(fixture("salesforce", "Contact.xml")), CONFIG).entities
    assert contact == ContactV1(
        id="0035j00000Hq9RsAAJ",
        updated_at=datetime(2026, 11, 1, 9, 0, tzinfo=UTC),
        name="Bo Buyer",
        emails=("bo.buyer@globex.example",),
        phones=("+14155552671",),
        raw_phones=("(415) 555-2671",),
        account_id="0015j00000ZkM3hAAF",
    )
    (account,) = adapter.parse(make_request(fixture("salesforce", "Account.xml")), CONFIG).entities
    assert account == AccountV1(
        id="0015j00000ZkM3hAAF",
        updated_at=datetime(2026, 11, 2, 9, 0, tzinfo=UTC),
        name="Globex",
        domains=("globex.example",),
    )
    (user,) = adapter.parse(make_request(fixture("salesforce", "User.xml")), CONFIG).entities
    assert user == RepV1(
        id="0055j000004Vb8nAAC",
        updated_at=datetime(2026, 6, 1, 8, 0, tzinfo=UTC),
        name="Ana Seller",
        emails=("ana.seller@acme.example",),
        phones=("+16505551234",),
        raw_phones=("+1 650-555-1234",),
        manager_id="0055j000004Vb8oAAC",
        role="SDR",
    )


def test_task_without_addresses_is_ignored_and_acknowledged() -> None:
    body = fixture("salesforce", "Event.xml").replace(b"SPM_", b"Other_")
    result = adapter.parse(make_request(body), CONFIG)
    assert result.activities == ()
    assert result.ack is not None
    assert result.ignored == (
        "Notification[0].sObject Event/00U5j00000Ab1CdEAJ: no address: "
        "add SPM_Owner_Email__c, SPM_Who_Email__c or SPM_Who_Phone__c, "
        "or sync its owner (User) and contact first",
    )
    # Ingest is told whom to look up: the Event's owner (a User) and its contact (WhoId).
    assert result.people_to_look_up == ("owners/0055j000004Vb8nAAC", "contacts/0035j00000Hq9RsAAJ")


def test_a_task_without_the_custom_fields_takes_its_owners_and_contacts_held_addresses() -> None:
    """Outbound Messages as Salesforce documents a Task (no custom fields): the owner's email and
    the contact's held for ``OwnerId`` and ``WhoId`` (synced before) are its people."""
    body = fixture("salesforce", "Event.xml").replace(b"SPM_", b"Other_")
    held = {
        "owners/0055j000004Vb8nAAC": ("ana.seller@acme.example", "+16505551234"),
        "contacts/0035j00000Hq9RsAAJ": ("bo.buyer@globex.example", "+14155552671"),
    }
    result = adapter.parse(make_request(body), replace(CONFIG, crm_people=held))
    (meeting,) = result.activities
    assert (meeting.direction, result.people_to_look_up, result.ignored) == (Direction.OUTBOUND, (), ())
    assert meeting.participants == (
        Participant(email="ana.seller@acme.example", role=ParticipantRole.ORGANIZER),
        Participant(email="bo.buyer@globex.example", phone="+14155552671", role=ParticipantRole.ATTENDEE),
    )
    # The custom fields, when sent, win; nothing more is looked up.
    sent = adapter.parse(make_request(fixture("salesforce", "Event.xml")), CONFIG)
    assert sent.people_to_look_up == ()


def test_an_sdrs_call_task_on_a_lead_takes_the_leads_held_phone_and_names_the_lead() -> None:
    """A Lead (``00Q``) is a contact here: a call Task whose ``WhoId`` is a Lead is looked up,
    takes the Lead's held phone and names the Lead as its contact, as one on a Contact does."""
    lead = b"00Q5j00000Rt7LdEAJ"
    body = (
        fixture("salesforce", "Task.xml")
        .replace(b"SPM_Who_Phone__c", b"Other_Who_Phone__c")
        .replace(b"0035j00000Hq9RsAAJ", lead)
    )
    unheld = adapter.parse(make_request(body), CONFIG)
    assert unheld.people_to_look_up == ("contacts/00Q5j00000Rt7LdEAJ",)
    held = {"contacts/00Q5j00000Rt7LdEAJ": (None, "+14155550199")}
    call, email = adapter.parse(make_request(body), replace(CONFIG, crm_people=held)).activities
    assert call.crm.contact_ids == email.crm.contact_ids == ("00Q5j00000Rt7LdEAJ",)
    assert call.participants == (
        Participant(email="ana.seller@acme.example", role=ParticipantRole.CALLER),
        Participant(phone="+14155550199", role=ParticipantRole.CALLEE),
    )


def test_fifteen_character_organization_id_matches() -> None:
    config = replace(CONFIG, salesforce_organization_id="00D5j00000ABCDE")
    adapter.verify(delivered(fixture("salesforce", "Task.xml")), SECRETS, config)


def test_other_organization_is_401() -> None:
    config = replace(CONFIG, salesforce_organization_id="00D5j00000ZZZZZEA2")
    with pytest.raises(WebhookRejected) as caught:
        adapter.verify(delivered(fixture("salesforce", "Task.xml")), SECRETS, config)
    assert (caught.value.status_code, caught.value.field) == (401, "OrganizationId")


def test_missing_organization_id_is_401() -> None:
    body = fixture("salesforce", "Task.xml").replace(
        b"<OrganizationId>00D5j00000ABCDEEA2</OrganizationId>", b""
    )
    with pytest.raises(WebhookRejected) as caught:
        adapter.verify(delivered(body), SECRETS, CONFIG)
    assert (caught.value.status_code, caught.value.reason) == (401, "missing")


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        (None, "missing: the endpoint URL must end with the tenant's salesforce secret"),
        ("", "missing: the endpoint URL must end with the tenant's salesforce secret"),
        ("guessed-token", "does not match"),
        (SECRETS[0][:-1], "does not match"),
    ],
)
def test_a_delivery_without_the_url_token_is_401_whatever_its_organization(
    token: str | None, reason: str
) -> None:
    # The OrganizationId is right: it is no secret, so it authenticates nothing on its own.
    with pytest.raises(WebhookRejected) as caught:
        adapter.verify(delivered(fixture("salesforce", "User.xml"), token), SECRETS, CONFIG)
    assert (caught.value.status_code, caught.value.field, caught.value.reason) == (401, "token", reason)


def test_either_secret_of_a_rotation_is_accepted_and_the_organization_is_still_checked() -> None:
    for token in SECRETS:
        adapter.verify(delivered(fixture("salesforce", "Task.xml"), token), SECRETS, CONFIG)
    other_org = replace(CONFIG, salesforce_organization_id="00D5j00000ZZZZZEA2")
    with pytest.raises(WebhookRejected) as caught:
        adapter.verify(delivered(fixture("salesforce", "Task.xml"), SECRETS[1]), SECRETS, other_org)
    assert (caught.value.field, caught.value.reason) == ("OrganizationId", "not this tenant's organization")


def test_tenant_without_organization_is_401() -> None:
    config = replace(CONFIG, salesforce_organization_id=None)
    with pytest.raises(WebhookRejected) as caught:
        adapter.verify(delivered(fixture("salesforce", "Task.xml")), SECRETS, config)
    assert caught.value.status_code == 401


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        (b"<notifications><unclosed>", 400, "body"),
        (b'<!DOCTYPE x [<!ENTITY a "aaaa">]><notifications>&a;</notifications>', 400, "body"),
        (b"<Envelope><Body/></Envelope>", 400, "notifications"),
    ],
)
def test_malformed_xml_is_400(body: bytes, status: int, field: str) -> None:
    with pytest.raises(WebhookRejected) as caught:
        adapter.parse(make_request(body), CONFIG)
    assert (caught.value.status_code, caught.value.field) == (status, field)


def test_invalid_field_is_422_naming_it() -> None:
    body = fixture("salesforce", "Opportunity.xml").replace(b"48000.5", b"lots")
    with pytest.raises(WebhookRejected) as caught:
        adapter.parse(make_request(body), CONFIG)
    assert (caught.value.status_code, caught.value.field) == (422, "Notification[0].sObject.Amount")


def test_a_modification_time_before_year_one_in_utc_is_422_naming_it() -> None:
    body = fixture("salesforce", "User.xml").replace(
        b"2026-06-01T08:00:00.000Z", b"0001-01-01T00:00:00+14:00"
    )
    with pytest.raises(WebhookRejected) as caught:
        adapter.parse(delivered(body), CONFIG)
    assert (caught.value.status_code, caught.value.field, caught.value.reason) == (
        422,
        "Notification[0].sObject.LastModifiedDate",
        "date-time out of range",
    )


def test_more_than_100_notifications_is_413() -> None:
    text = fixture("salesforce", "Account.xml").decode()
    start = text.index("<Notification>")
    end = text.index("</Notification>") + len("</Notification>")
    body = (text[:start] + text[start:end] * 101 + text[end:]).encode()
    with pytest.raises(WebhookRejected) as caught:
        adapter.parse(make_request(body), CONFIG)
    assert caught.value.status_code == 413


EMAIL_TASK_ID = "00T5j00000Q1a2cEAB"


def test_an_email_message_is_the_mail_with_salesforces_direction_under_its_tasks_id() -> None:
    """Bo's reply (``Incoming`` true) is received mail from Bo to Ana with Dana in copy, on the
    opportunity it is related to, dated when it was sent, in its thread; published under the id
    of the Task Salesforce made for it (``ActivityId``). The draft is not a mail."""
    result = adapter.parse(delivered(fixture("salesforce", "EmailMessage.xml")), CONFIG)
    (mail,) = result.activities
    assert (mail.source, mail.external_id, mail.kind) == ("salesforce", EMAIL_TASK_ID, ActivityKind.EMAIL)
    assert (mail.direction, mail.outcome) == (Direction.INBOUND, Outcome.RECEIVED)
    assert mail.participants == (
        Participant(email="bo.buyer@globex.example", name="Bo Buyer", role=ParticipantRole.FROM),
        Participant(email="ana.seller@acme.example", role=ParticipantRole.TO),
        Participant(email="dana@globex.example", role=ParticipantRole.CC),
    )
    assert mail.occurred_at == datetime(2026, 11, 24, 10, 58, 41, tzinfo=UTC)
    assert mail.revision == 10**13 + ms(2026, 11, 24, 11, 0, 4)
    assert (mail.subject, mail.thread_id) == (
        "Re: Proposal for Globex",
        "<CAB7xq3=proposal@mail.acme.example>",
    )
    assert mail.crm == CrmReferences(deal_id="0065j00000Lm4NoAAJ")
    assert result.ignored == (
        "Notification[1].sObject EmailMessage/02s5j00000Ab1CeAAJ: Status=5: a draft, not sent",
    )


def test_an_email_message_and_its_task_are_one_activity_whichever_comes_first() -> None:
    """The email Task of ``Task.xml`` (no direction: read as Ana's sent mail) and the
    EmailMessage it was made for (Bo's reply, received) share one id; the EmailMessage's
    revision is the higher, so the mail ends received from Bo in either order of arrival, and
    even after the Task is edited later."""
    (_, task) = adapter.parse(delivered(fixture("salesforce", "Task.xml")), CONFIG).activities
    (message,) = adapter.parse(delivered(fixture("salesforce", "EmailMessage.xml")), CONFIG).activities
    edited = fixture("salesforce", "Task.xml").replace(
        b"2026-11-24T11:00:05.000Z", b"2026-12-20T09:00:00.000Z"
    )
    # Received when it was edited (a revision dated more than a day ahead of receipt is refused).
    received_then = replace(delivered(edited), received_at=datetime(2026, 12, 20, 9, 0, 30, tzinfo=UTC))
    (_, task_edited) = adapter.parse(received_then, CONFIG).activities
    assert task.external_id == message.external_id == task_edited.external_id == EMAIL_TASK_ID
    assert (task.direction, message.direction) == (Direction.OUTBOUND, Direction.INBOUND)
    for arrivals in ([task, message], [message, task], [task, message, task_edited]):
        kept = max(arrivals, key=lambda a: a.revision)
        assert (kept.direction, kept.participants[0].email) == (Direction.INBOUND, "bo.buyer@globex.example")


@pytest.mark.parametrize(
    ("incoming", "sender", "to", "direction"),
    [
        ("false", "ana.seller@acme.example", "bo.buyer@globex.example", Direction.OUTBOUND),
        ("true", "bo.buyer@globex.example", "ana.seller@acme.example", Direction.INBOUND),
        # Salesforce's flag beats the domains: Ana's mail from her personal address is still sent
        # (the domains alone would read it as received), a buyer's mail to it still received.
        ("false", "ana.seller@gmail.com", "bo.buyer@globex.example", Direction.OUTBOUND),
        ("true", "bo.buyer@globex.example", "ana.seller@gmail.com", Direction.INBOUND),
        # Among colleagues only, the mail is internal whatever the flag.
        ("false", "ana.seller@acme.example", "cy@acme.example", Direction.INTERNAL),
    ],
)
def test_incoming_decides_the_direction(incoming: str, sender: str, to: str, direction: Direction) -> None:
    body = (
        fixture("salesforce", "EmailMessage.xml")
        .replace(b"<sf:Incoming>true</sf:Incoming>", f"<sf:Incoming>{incoming}</sf:Incoming>".encode())
        .replace(b"<sf:FromAddress>Bo.Buyer@globex.example", f"<sf:FromAddress>{sender}".encode())
        .replace(b"<sf:ToAddress>ana.seller@acme.example", f"<sf:ToAddress>{to}".encode())
        .replace(b"<sf:CcAddress>dana@globex.example; ana.seller@acme.example</sf:CcAddress>", b"")
    )
    (mail,) = adapter.parse(delivered(body), CONFIG).activities
    assert (mail.direction, mail.outcome) == (
        direction,
        Outcome.RECEIVED if direction is Direction.INBOUND else Outcome.SENT,
    )


def test_a_deleted_email_message_deletes_the_one_activity_it_and_its_task_are() -> None:
    body = fixture("salesforce", "EmailMessage.xml").replace(
        b"<sf:IsDeleted>false</sf:IsDeleted>", b"<sf:IsDeleted>true</sf:IsDeleted>"
    )
    # At its LastModifiedDate, ranked as its revisions are: an undelete, newer, restores it.
    at = EMAIL_MESSAGE_RANK + 1_795_518_004_000
    assert adapter.parse(delivered(body), CONFIG).deletions == (
        SourceDeletion("salesforce", EMAIL_TASK_ID, at),
        SourceDeletion("salesforce", "00T5j00000Q1a2dEAB", EMAIL_MESSAGE_RANK + 1_795_519_800_000),
    )
    # A mail on a Case has no Task: it is its own id.
    alone = body.replace(b"<sf:ActivityId>00T5j00000Q1a2cEAB</sf:ActivityId>", b"")
    assert adapter.parse(delivered(alone), CONFIG).deletions[0] == SourceDeletion(
        "salesforce", "02s5j00000Ab1CdAAJ", at
    )


def test_an_email_message_without_any_address_is_ignored_and_without_a_date_refused() -> None:
    body = fixture("salesforce", "EmailMessage.xml").decode()
    for field in ("FromAddress", "ToAddress", "CcAddress"):
        start = body.index(f"<sf:{field}>")
        body = body[:start] + body[body.index(f"</sf:{field}>", start) + len(f"</sf:{field}>") :]
    result = adapter.parse(delivered(body.encode()), CONFIG)
    assert result.ignored[0] == (
        "Notification[0].sObject EmailMessage/02s5j00000Ab1CdAAJ: "
        "no address in FromAddress, ToAddress or CcAddress"
    )
    undated = (
        fixture("salesforce", "EmailMessage.xml")
        .replace(b"<sf:MessageDate>2026-11-24T10:58:41.000Z</sf:MessageDate>", b"")
        .replace(b"<sf:CreatedDate>2026-11-24T11:00:03.000Z</sf:CreatedDate>", b"")
    )
    with pytest.raises(WebhookRejected) as caught:
        adapter.parse(delivered(undated), CONFIG)
    assert (caught.value.status_code, caught.value.field) == (422, "Notification[0].sObject.MessageDate")


def _stamped(body: bytes, modified: bytes, stamp: str, *, deleted: bool) -> bytes:
    """``body`` with ``SystemModstamp`` ``stamp`` after the ``LastModifiedDate`` ``modified``
    (unchanged), and ``IsDeleted`` as said (on its first record)."""
    flag = b"<sf:IsDeleted>true</sf:IsDeleted>" if deleted else b"<sf:IsDeleted>false</sf:IsDeleted>"
    return body.replace(b"<sf:IsDeleted>false</sf:IsDeleted>", flag, 1).replace(
        b"<sf:LastModifiedDate>" + modified + b"</sf:LastModifiedDate>",
        b"<sf:LastModifiedDate>"
        + modified
        + b"</sf:LastModifiedDate><sf:SystemModstamp>"
        + stamp.encode()
        + b"</sf:SystemModstamp>",
        1,
    )


def test_an_undelete_that_leaves_last_modified_date_is_newer_than_the_deletion_by_system_modstamp() -> None:
    """Deleted at 10:20 (``SystemModstamp``; ``LastModifiedDate`` still 10:15:02), undeleted at
    10:30 with ``LastModifiedDate`` unchanged: read at the later of the two, the undeleted call is
    newer than its deletion, which is newer than the call as it was."""
    task = fixture("salesforce", "Task.xml")
    modified = b"2026-11-24T10:15:02.000Z"
    deleted = _stamped(task, modified, "2026-11-24T10:20:00.000Z", deleted=True)
    undeleted = _stamped(task, modified, "2026-11-24T10:30:00.000Z", deleted=False)
    (deletion,) = adapter.parse(delivered(deleted), CONFIG).deletions
    (call, _) = adapter.parse(delivered(undeleted), CONFIG).activities
    (before, _) = adapter.parse(delivered(task), CONFIG).activities
    assert deletion == SourceDeletion("salesforce", "00T5j00000Q1a2bEAB", ms(2026, 11, 24, 10, 20, 0))
    assert call.revision == ms(2026, 11, 24, 10, 30, 0)
    assert before.revision == ms(2026, 11, 24, 10, 15, 2)
    # A SystemModstamp older than LastModifiedDate (never, in Salesforce) does not set it back.
    older = _stamped(task, modified, "2026-11-24T10:00:00.000Z", deleted=False)
    assert adapter.parse(delivered(older), CONFIG).activities[0].revision == ms(2026, 11, 24, 10, 15, 2)


def _received(body: bytes, year: int, month: int, day: int) -> WebhookRequest:
    """``body`` delivered at 09:00:30 UTC that day."""
    return replace(delivered(body), received_at=datetime(year, month, day, 9, 0, 30, tzinfo=UTC))


def test_an_undeleted_email_message_is_ranked_by_system_modstamp_above_its_task() -> None:
    """The EmailMessage deleted, then undeleted with its LastModifiedDate unchanged: the undelete
    is newer than the deletion, both ranked as its revisions are (10**13 + ms), above its Task's
    revisions, SystemModstamp or not."""
    mail = fixture("salesforce", "EmailMessage.xml")
    modified = b"2026-11-24T11:00:04.000Z"
    deleted = _stamped(mail, modified, "2026-11-25T09:00:00.000Z", deleted=True)
    undeleted = _stamped(mail, modified, "2026-11-26T09:00:00.000Z", deleted=False)
    # Each received when it happened (a revision more than a day ahead of receipt is refused).
    deletion = adapter.parse(_received(deleted, 2026, 11, 25), CONFIG).deletions[0]
    (restored,) = adapter.parse(_received(undeleted, 2026, 11, 26), CONFIG).activities
    task = _stamped(
        fixture("salesforce", "Task.xml"),
        b"2026-11-24T11:00:05.000Z",
        "2026-12-20T09:00:00.000Z",
        deleted=False,
    )
    (_, task_stamped) = adapter.parse(_received(task, 2026, 12, 20), CONFIG).activities
    assert deletion == SourceDeletion(
        "salesforce", EMAIL_TASK_ID, EMAIL_MESSAGE_RANK + ms(2026, 11, 25, 9, 0, 0)
    )
    assert restored.revision == EMAIL_MESSAGE_RANK + ms(2026, 11, 26, 9, 0, 0)
    assert task_stamped.external_id == EMAIL_TASK_ID
    assert task_stamped.revision == ms(2026, 12, 20, 9, 0, 0)
    assert task_stamped.revision < EMAIL_MESSAGE_RANK + ms(2026, 11, 25, 9, 0, 0) < restored.revision


def _lead(*fields: str) -> bytes:
    """A Lead's Outbound Message holding ``fields`` (``<sf:Name>value</sf:Name>`` each)."""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
 <soapenv:Body>
  <notifications xmlns="http://soap.sforce.com/2005/09/outbound">
   <OrganizationId>00D5j00000ABCDEEA2</OrganizationId>
   <Notification>
    <Id>04l5j00000Gx7R9AAJ</Id>
    <sObject xsi:type="sf:Lead" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">
     <sf:Id>00Q5j00000Ab1CdEAF</sf:Id>
     <sf:FirstName>Cy</sf:FirstName>
     <sf:LastName>Prospect</sf:LastName>
     <sf:Company>Globex Ltd</sf:Company>
     <sf:OwnerId>0055j000004Vb8nAAC</sf:OwnerId>
     <sf:Email>Cy@Globex.example</sf:Email>
     <sf:Phone>020 7946 0959</sf:Phone>
     <sf:MobilePhone>(415) 555-0177</sf:MobilePhone>
     <sf:LastModifiedDate>2026-11-03T09:00:00.000Z</sf:LastModifiedDate>
     {"".join(fields)}
    </sObject>
   </Notification>
  </notifications>
 </soapenv:Body>
</soapenv:Envelope>""".encode()


def test_a_lead_is_a_contact_read_in_its_country_without_an_account() -> None:
    """A Lead is a person as a Contact is: its email, its phones read in its ``Country`` (the US
    mobile in the tenant's region), no account (``Company`` is a name; no owner on a contact)."""
    (lead,) = adapter.parse(
        make_request(
            _lead("<sf:Country>United Kingdom</sf:Country>", "<sf:IsConverted>false</sf:IsConverted>")
        ),
        CONFIG,
    ).entities
    assert lead == ContactV1(
        id="00Q5j00000Ab1CdEAF",
        updated_at=datetime(2026, 11, 3, 9, 0, tzinfo=UTC),
        name="Cy Prospect",
        emails=("cy@globex.example",),
        phones=("+442079460959", "+14155550177"),
        raw_phones=("020 7946 0959", "(415) 555-0177"),
        country="GB",
    )
    # Without a country: the UK number is none in the tenant's US, kept unread.
    (unplaced,) = adapter.parse(make_request(_lead()), CONFIG).entities
    assert isinstance(unplaced, ContactV1)
    assert (unplaced.phones, unplaced.unread_phones) == (("+14155550177",), ("020 7946 0959",))


def test_a_converted_lead_is_merged_into_its_contact_and_deleted_without_one() -> None:
    converted = (
        "<sf:IsConverted>true</sf:IsConverted>",
        "<sf:ConvertedContactId>0035j00000Hq9RsAAJ</sf:ConvertedContactId>",
        "<sf:ConvertedAccountId>0015j00000ZkM3hAAF</sf:ConvertedAccountId>",
    )
    (lead,) = adapter.parse(make_request(_lead(*converted)), CONFIG).entities
    assert isinstance(lead, ContactV1)
    assert (lead.merged_into, lead.deleted, lead.account_id) == (
        "0035j00000Hq9RsAAJ",
        False,
        "0015j00000ZkM3hAAF",
    )
    # The message holds no ConvertedContactId: the lead is no person of its own any more.
    (gone,) = adapter.parse(make_request(_lead(converted[0])), CONFIG).entities
    assert isinstance(gone, ContactV1)
    assert (gone.merged_into, gone.deleted) == (None, True)
