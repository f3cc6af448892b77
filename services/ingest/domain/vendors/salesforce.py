"""Salesforce Outbound Messages (SOAP), authenticated by a secret in the endpoint URL.

Outbound Messages carry no signature, and the OrganizationId they name is no secret (it shows
in every Salesforce URL and export). So the endpoint URL configured in Salesforce ends with the
tenant's ``salesforce`` webhook secret (``/v1/webhooks/salesforce/{tenant}/{token}``), compared
in constant time; the OrganizationId must then also be the tenant's. The route must be HTTPS.
Salesforce retries until it receives the SOAP Ack, which the route returns from
``AdapterResult.ack``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from xml.etree.ElementTree import Element, ParseError

import defusedxml
import defusedxml.ElementTree
from pydantic import ValidationError

from libs.common.contracts.activities import (
    ActivityIn,
    ActivityKind,
    CrmReferences,
    Direction,
    Outcome,
    ParticipantRole,
)
from libs.common.contracts.crm import AccountV1, ContactV1, CrmEntity, DealV1, RepV1
from libs.common.phones import Regions
from services.ingest.domain.countries import contact_phone_regions, country_of
from services.ingest.domain.crm_sync import read_deal
from services.ingest.domain.ignored import NOT_DONE, OTHER, SALESFORCE_DRAFT, Ignored, ignored_line
from services.ingest.domain.normalize import (
    ahead_reason,
    build_activity,
    direction_for,
    duration_between,
    email_outcome,
    ensure_body_size,
    epoch_millis,
    make_participant,
    meeting_outcome,
    normalize_domain,
    normalize_email,
    not_ahead,
    parse_address_list,
    parse_iso_datetime,
    read_phones,
    reported_duration,
    source_deletion,
    unique_participants,
    validation_to_rejection,
)
from services.ingest.domain.signatures import any_secret_matches, require_secrets
from services.ingest.domain.webhook_types import (
    AdapterResult,
    AheadOfReceipt,
    HandshakeResponse,
    SourceDeletion,
    TenantCheckRejected,
    TenantWebhookConfig,
    WebhookRejected,
    WebhookRequest,
)

MAX_NOTIFICATIONS = 100
_XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"
_XSI_NIL = "{http://www.w3.org/2001/XMLSchema-instance}nil"

ACK = HandshakeResponse(
    status_code=200,
    media_type="text/xml",
    body=(
        b'<?xml version="1.0" encoding="UTF-8"?>'
        b'<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">'
        b"<soapenv:Body>"
        b'<notificationsResponse xmlns="http://soap.sforce.com/2005/09/outbound">'
        b"<Ack>true</Ack>"
        b"</notificationsResponse>"
        b"</soapenv:Body>"
        b"</soapenv:Envelope>"
    ),
)

#: Key prefixes of the record ids that WhatId / WhoId may point at.
OPPORTUNITY_PREFIX = "006"
ACCOUNT_PREFIX = "001"
CONTACT_PREFIX = "003"
LEAD_PREFIX = "00Q"
#: A ``WhoId`` naming a person held as a contact: a Contact (``003``) or a Lead (``00Q``; leads
#: are contacts here, so an SDR's call Task on a Lead is that person's).
PERSON_PREFIXES = (CONTACT_PREFIX, LEAD_PREFIX)
USER_PREFIX = "005"

CALL_TYPES: dict[str, Direction] = {
    "inbound": Direction.INBOUND,
    "outbound": Direction.OUTBOUND,
    "internal": Direction.INTERNAL,
}
#: CallDisposition is free text; the first matching phrase decides, otherwise a call connected.
DISPOSITION_PHRASES: tuple[tuple[str, Outcome], ...] = (
    ("no answer", Outcome.NO_ANSWER),
    ("no-answer", Outcome.NO_ANSWER),
    ("busy", Outcome.BUSY),
    ("voicemail", Outcome.VOICEMAIL),
    ("left message", Outcome.VOICEMAIL),
    ("wrong number", Outcome.FAILED),
    ("failed", Outcome.FAILED),
)
#: Optional custom fields an admin adds so that Tasks and Events carry addresses (see docs).
OWNER_EMAIL_FIELD = "SPM_Owner_Email__c"
WHO_EMAIL_FIELD = "SPM_Who_Email__c"
WHO_PHONE_FIELD = "SPM_Who_Phone__c"
#: An EmailMessage's revisions rank above those of the Task Salesforce made for it (a Task's are
#: modification times in ms, below 10**13 until the year 2286): both are one activity, and the
#: EmailMessage is the one that says the mail's direction and addresses.
EMAIL_MESSAGE_RANK = 10**13
#: ``EmailMessage.Status`` of a mail not sent: 5 (Draft); 0-4 are New, Read, Replied, Sent, Forwarded.
DRAFT_STATUSES = frozenset({"5", "draft"})
#: Address fields of an EmailMessage (``;``-separated lists) and the role each gives.
EMAIL_MESSAGE_ADDRESSES: tuple[tuple[str, ParticipantRole], ...] = (
    ("FromAddress", ParticipantRole.FROM),
    ("ToAddress", ParticipantRole.TO),
    ("CcAddress", ParticipantRole.CC),
    ("BccAddress", ParticipantRole.BCC),
)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


@dataclass(frozen=True, slots=True)
class _SObject:
    """One notified record: its type and its fields by local name (nil fields absent)."""

    type: str
    fields: dict[str, str]
    path: str

    def get(self, name: str) -> str | None:
        value = self.fields.get(name)
        return value.strip() or None if value is not None else None

    def require(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise WebhookRejected(422, self.field(name), "required")
        return value

    def field(self, name: str) -> str:
        return f"{self.path}.{name}"

    def flag(self, name: str) -> bool:
        return (self.get(name) or "").lower() == "true"

    def time(self, name: str, received_at: datetime | None = None) -> datetime | None:
        """The field's time; with ``received_at``, more than a day ahead of it is a 422 naming it."""
        raw = self.get(name)
        if not raw:
            return None
        read = parse_iso_datetime(raw, self.field(name))
        return read if received_at is None else not_ahead(read, received_at, self.field(name))

    def day(self, name: str) -> date | None:
        raw = self.get(name)
        if raw is None:
            return None
        try:
            return date.fromisoformat(raw)
        except ValueError:
            raise WebhookRejected(422, self.field(name), "not an ISO 8601 date") from None


@dataclass(frozen=True, slots=True)
class _OutboundMessage:
    organization_id: str
    objects: tuple[_SObject, ...]


def _parse_message(body: bytes) -> _OutboundMessage:
    ensure_body_size(body)
    try:
        root = defusedxml.ElementTree.fromstring(body)
    except (ParseError, defusedxml.DefusedXmlException, ValueError, UnicodeError):
        raise WebhookRejected(400, "body", "not well-formed XML, or XML with entities or a DTD") from None
    notifications = next((e for e in root.iter() if _local(e.tag) == "notifications"), None)
    if notifications is None:
        raise WebhookRejected(400, "notifications", "not a Salesforce outbound message")
    organization_id = ""
    objects: list[_SObject] = []
    for child in notifications:
        name = _local(child.tag)
        if name == "OrganizationId":
            organization_id = (child.text or "").strip()
        elif name == "Notification":
            if len(objects) >= MAX_NOTIFICATIONS:
                raise WebhookRejected(413, "Notification", f"more than {MAX_NOTIFICATIONS} notifications")
            objects.append(_sobject(child, f"Notification[{len(objects)}]"))
    return _OutboundMessage(organization_id, tuple(objects))


def _sobject(notification: Element, path: str) -> _SObject:
    record = next((e for e in notification if _local(e.tag) == "sObject"), None)
    if record is None:
        raise WebhookRejected(422, f"{path}.sObject", "required")
    declared = record.get(_XSI_TYPE, "")
    fields = {
        _local(e.tag): e.text or "" for e in record if e.get(_XSI_NIL, "").lower() != "true" and len(e) == 0
    }
    return _SObject(type=declared.rsplit(":", 1)[-1], fields=fields, path=f"{path}.sObject")


def same_organization(expected: str, presented: str) -> bool:
    """15- and 18-character forms of one id are equal: the 18-character one adds a checksum."""
    if len(expected) == len(presented):
        return expected == presented
    return len(expected) >= 15 and len(presented) >= 15 and expected[:15] == presented[:15]


@dataclass(frozen=True, slots=True)
class SalesforceAdapter:
    """Outbound Messages: Tasks and Events become activities, the rest entities."""

    source: str = "salesforce"
    version: str = "salesforce/1"

    def verify(self, request: WebhookRequest, secrets: Sequence[str], config: TenantWebhookConfig) -> None:
        # The token first: without it nothing about the tenant (its organization) is revealed.
        require_secrets(secrets)
        if not request.url_token:
            raise WebhookRejected(
                401, "token", "missing: the endpoint URL must end with the tenant's salesforce secret"
            )
        if not any_secret_matches(secrets, [request.url_token], lambda secret: secret):
            raise WebhookRejected(401, "token", "does not match")
        expected = config.salesforce_organization_id
        if not expected:
            raise TenantCheckRejected(
                401, "OrganizationId", "no Salesforce organization is configured for this tenant"
            )
        presented = _parse_message(request.body).organization_id
        if not presented:
            raise TenantCheckRejected(401, "OrganizationId", "missing")
        if not same_organization(expected, presented):
            raise TenantCheckRejected(401, "OrganizationId", "not this tenant's organization")

    def parse(
        self, request: WebhookRequest, config: TenantWebhookConfig, secrets: Sequence[str] = ()
    ) -> AdapterResult:
        message = _parse_message(request.body)
        # Where the accounts of this message are: their contacts' phones are read there.
        account_countries = {
            record.get("Id") or "": _country(record, "BillingCountry")
            for record in message.objects
            if record.type == "Account"
        }
        activities: list[ActivityIn] = []
        entities: list[CrmEntity] = []
        deletions: list[SourceDeletion] = []
        ignored: list[Ignored] = []
        for record in message.objects:
            if record.type in {"Task", "Event", "EmailMessage"}:
                try:
                    activity, reason = (
                        _email_message(record, config, request.received_at)
                        if record.type == "EmailMessage"
                        else _activity(record, config, request.received_at)
                    )
                except AheadOfReceipt as ahead:
                    activity, reason = None, ahead_reason(ahead)
                if isinstance(activity, SourceDeletion):
                    deletions.append(activity)
                elif activity is not None:
                    activities.append(activity)
                else:
                    ignored.append(ignored_line(f"{record.path} {record.type}/{record.get('Id')}", reason))
            elif record.type in {"Opportunity", "Contact", "Lead", "Account", "User"}:
                region: Regions = config.default_phone_region
                if record.type in PERSON_COUNTRY:
                    region = contact_phone_regions(
                        _country(record, PERSON_COUNTRY[record.type]),
                        record.get(PERSON_ACCOUNT[record.type]),
                        account_countries,
                        config.account_countries,
                        config.default_phone_region,
                    )
                try:
                    entities.append(_entity(record, region, request.received_at))
                except ValidationError as error:
                    raise validation_to_rejection(record.path, error) from None
                except AheadOfReceipt as ahead:
                    ignored.append(
                        ignored_line(f"{record.path} {record.type}/{record.get('Id')}", ahead_reason(ahead))
                    )
            else:
                ignored.append(
                    Ignored(f"{record.path} {record.type or 'unknown'}: object type not used", OTHER)
                )
        return AdapterResult(
            activities=tuple(activities),
            entities=tuple(entities),
            ignored=tuple(ignored),
            ack=ACK,
            deletions=tuple(deletions),
            people_to_look_up=_wanted_people(message.objects, config),
        )


def _people_keys(record: _SObject) -> tuple[str, ...]:
    """The held people a Task's or Event's addresses may come from: its owner (a User, ``005``)
    and its ``WhoId`` when a Contact (``003``) or a Lead (``00Q``), as
    ``TenantWebhookConfig.crm_people`` keys."""
    owner, who = record.get("OwnerId") or "", record.get("WhoId") or ""
    return (
        *((f"owners/{owner}",) if owner.startswith(USER_PREFIX) else ()),
        *((f"contacts/{who}",) if who.startswith(PERSON_PREFIXES) else ()),
    )


def _addresses(record: _SObject, config: TenantWebhookConfig) -> tuple[str | None, str | None, str | None]:
    """A Task's or Event's owner email, and its contact's email and phone: the custom fields a
    flow fills (``SPM_Owner_Email__c``, ...), else what is held for its ``OwnerId`` and its
    ``WhoId`` (a Task carries no address of its own; the User and the Contact were synced)."""
    owner, who = record.get("OwnerId") or "", record.get("WhoId") or ""
    held_owner = config.crm_people.get(f"owners/{owner}", (None, None))
    held_who = config.crm_people.get(f"contacts/{who}", (None, None))
    who_email, who_phone = record.get(WHO_EMAIL_FIELD), record.get(WHO_PHONE_FIELD)
    if not (who_email or who_phone):
        who_email, who_phone = held_who
    return record.get(OWNER_EMAIL_FIELD) or held_owner[0], who_email, who_phone


def _wanted_people(records: Sequence[_SObject], config: TenantWebhookConfig) -> tuple[str, ...]:
    """The owners and contacts of the live Tasks and Events whose addresses the message does not
    carry and that are not held yet: ingest looks them up (``AdapterResult.people_to_look_up``)."""
    wanted: dict[str, None] = {}
    for record in records:
        if record.type not in {"Task", "Event"} or record.flag("IsDeleted"):
            continue
        carried = {
            f"owners/{record.get('OwnerId')}": bool(record.get(OWNER_EMAIL_FIELD)),
            f"contacts/{record.get('WhoId')}": bool(
                record.get(WHO_EMAIL_FIELD) or record.get(WHO_PHONE_FIELD)
            ),
        }
        wanted.update((key, None) for key in _people_keys(record) if not carried[key])
    return tuple(key for key in wanted if key not in config.crm_people)


def _modified(record: _SObject, received_at: datetime) -> datetime | None:
    """When a Task, Event or EmailMessage last changed, as its revisions are numbered: the later
    of ``LastModifiedDate`` and ``SystemModstamp``. An undelete (from the Recycle Bin) leaves
    ``LastModifiedDate`` as it was and moves ``SystemModstamp`` on: read at the later of the two,
    the undeleted record is newer than its deletion, and restores the activity."""
    times = [
        t
        for t in (record.time("LastModifiedDate", received_at), record.time("SystemModstamp", received_at))
        if t is not None
    ]
    return max(times, default=None)


def _references(record: _SObject) -> CrmReferences:
    what = record.get("WhatId") or record.get("RelatedToId") or ""
    who = record.get("WhoId") or ""
    try:
        return CrmReferences(
            deal_id=what if what.startswith(OPPORTUNITY_PREFIX) else None,
            account_id=record.get("AccountId") or (what if what.startswith(ACCOUNT_PREFIX) else None),
            contact_ids=(who,) if who.startswith(PERSON_PREFIXES) else (),
            owner_rep_id=record.get("OwnerId"),
        )
    except ValidationError as error:
        raise validation_to_rejection(record.path, error) from None


def _activity(
    record: _SObject, config: TenantWebhookConfig, received_at: datetime
) -> tuple[ActivityIn | SourceDeletion | None, str]:
    if record.flag("IsDeleted"):
        # A deleted Task or Event (a sync job's queryAll; Outbound Messages never send one): retracted.
        # Read at the record's modification time, as its revisions are: an undelete is newer.
        modified = _modified(record, received_at)
        revision = epoch_millis(modified) if modified else None
        return source_deletion("salesforce", record.require("Id"), record.field("Id"), revision), ""
    subtype = record.get("TaskSubtype") if record.type == "Task" else "Event"
    if subtype not in {"Call", "Email", "Event"}:
        return None, f"TaskSubtype={subtype}: not a call or an email"
    region = config.default_phone_region
    owner_email, who_email, who_phone = _addresses(record, config)
    if not (owner_email or who_email or who_phone):
        return None, (
            f"no address: add {OWNER_EMAIL_FIELD}, {WHO_EMAIL_FIELD} or {WHO_PHONE_FIELD}, "
            "or sync its owner (User) and contact first"
        )
    modified = _modified(record, received_at)
    common = {
        "source": "salesforce",
        "external_id": record.require("Id"),
        "subject": record.get("Subject"),
        "crm": _references(record),
        "revision": epoch_millis(modified) if modified else 0,
    }
    if subtype == "Event":
        start = record.time("StartDateTime") or record.time("ActivityDateTime")
        if start is None:
            raise WebhookRejected(422, record.field("StartDateTime"), "required")
        end = record.time("EndDateTime")
        participants = unique_participants(
            [
                make_participant(
                    role=ParticipantRole.ORGANIZER,
                    field=record.field(OWNER_EMAIL_FIELD),
                    region=region,
                    email=owner_email,
                ),
                make_participant(
                    role=ParticipantRole.ATTENDEE,
                    field=record.field(WHO_PHONE_FIELD),
                    region=region,
                    email=who_email,
                    phone=who_phone,
                ),
            ]
        )
        sender = owner_email and normalize_email(owner_email)
        others = [p.email for p in participants if p.email and p.email != sender]
        return build_activity(
            record.path,
            kind=ActivityKind.MEETING,
            direction=direction_for(sender or None, others, config.internal_domains),
            outcome=meeting_outcome(start, end, received_at),
            occurred_at=start,
            duration_seconds=duration_between(start, end),
            participants=participants,
            **common,
        ), ""
    # A call's or an email's time may not be ahead (an Event's start may be months ahead).
    occurred_at = (
        record.time("CompletedDateTime", received_at)
        or record.time("CreatedDate", received_at)
        or _day_start(record)
    )
    if occurred_at is None:
        raise WebhookRejected(422, record.field("CreatedDate"), "required")
    if subtype == "Call":
        direction = CALL_TYPES.get((record.get("CallType") or "outbound").lower())
        if direction is None:
            raise WebhookRejected(422, record.field("CallType"), "expected Inbound, Outbound or Internal")
        rep_role, other_role = (
            (ParticipantRole.CALLEE, ParticipantRole.CALLER)
            if direction is Direction.INBOUND
            else (ParticipantRole.CALLER, ParticipantRole.CALLEE)
        )
        duration_raw = record.get("CallDurationInSeconds") or "0"
        if not (duration_raw.isascii() and duration_raw.isdigit()) or len(duration_raw) > 9:
            raise WebhookRejected(422, record.field("CallDurationInSeconds"), "expected seconds")
        duration = reported_duration(int(duration_raw), record.field("CallDurationInSeconds"))
        return build_activity(
            record.path,
            kind=ActivityKind.CALL,
            direction=direction,
            outcome=_call_outcome(record.get("CallDisposition")),
            occurred_at=_call_start(record, occurred_at, duration),
            duration_seconds=duration,
            participants=unique_participants(
                [
                    make_participant(
                        role=rep_role, field=record.field(OWNER_EMAIL_FIELD), region=region, email=owner_email
                    ),
                    make_participant(
                        role=other_role,
                        field=record.field(WHO_PHONE_FIELD),
                        region=region,
                        email=who_email,
                        phone=who_phone,
                    ),
                ]
            ),
            **common,
        ), ""
    participants = unique_participants(
        [
            make_participant(
                role=ParticipantRole.FROM,
                field=record.field(OWNER_EMAIL_FIELD),
                region=region,
                email=owner_email,
            ),
            make_participant(
                role=ParticipantRole.TO, field=record.field(WHO_EMAIL_FIELD), region=region, email=who_email
            ),
        ]
    )
    sender = next((p.email for p in participants if p.role is ParticipantRole.FROM), None)
    recipients = [p.email for p in participants if p.role is ParticipantRole.TO and p.email]
    direction = direction_for(sender, recipients, config.internal_domains)
    return build_activity(
        record.path,
        kind=ActivityKind.EMAIL,
        direction=direction,
        outcome=email_outcome(direction),
        occurred_at=occurred_at,
        participants=participants,
        **common,
    ), ""


def _email_message(
    record: _SObject, config: TenantWebhookConfig, received_at: datetime
) -> tuple[ActivityIn | SourceDeletion | None, str]:
    """An EmailMessage (Enhanced Email): the mail with its direction (``Incoming``) and addresses.

    Salesforce makes a Task for it (``ActivityId``), which an Outbound Message on Task sends too:
    the EmailMessage is published under that Task's id, so the two are one activity whichever
    comes first, and its revisions rank above the Task's (``EMAIL_MESSAGE_RANK``), so what it
    says wins. Without ``ActivityId`` (a mail on a Case) it is its own ``Id``.
    """
    task_id = record.get("ActivityId")
    key_field = record.field("ActivityId" if task_id else "Id")
    external_id = task_id or record.require("Id")
    modified = _modified(record, received_at)
    if record.flag("IsDeleted"):
        # Ranked as its revisions are: an undelete, newer, restores the mail.
        revision = EMAIL_MESSAGE_RANK + epoch_millis(modified) if modified else None
        return source_deletion("salesforce", external_id, key_field, revision), ""
    status = (record.get("Status") or "").lower()
    if status in DRAFT_STATUSES:
        return None, Ignored(f"Status={record.get('Status')}: {SALESFORCE_DRAFT}", NOT_DONE)
    region = config.default_phone_region
    participants = unique_participants(
        make_participant(
            role=role,
            field=record.field(name),
            region=region,
            email=address,
            name=(record.get("FromName") if role is ParticipantRole.FROM else None) or display,
        )
        for name, role in EMAIL_MESSAGE_ADDRESSES
        for display, address in parse_address_list(record.get(name), record.field(name))[
            : 1 if role is ParticipantRole.FROM else None
        ]
    )
    if not participants:
        return None, "no address in FromAddress, ToAddress or CcAddress"
    # MessageDate of an incoming mail is its sender's Date header (anyone's clock): never later
    # than CreatedDate, Salesforce's own, so a sender dated next year is read as created.
    created_at = record.time("CreatedDate")
    message_at = record.time("MessageDate")
    if record.flag("Incoming") and message_at and created_at and created_at < message_at:
        message_at = None
    occurred_at = message_at or created_at
    if occurred_at is None:
        raise WebhookRejected(422, record.field("MessageDate"), "required")
    not_ahead(occurred_at, received_at, record.field("MessageDate" if message_at else "CreatedDate"))
    sender = next((p.email for p in participants if p.role is ParticipantRole.FROM), None)
    recipients = [p.email for p in participants if p.role is not ParticipantRole.FROM and p.email]
    # Salesforce's own word on the direction; among colleagues only, the mail is internal.
    by_domains = direction_for(sender, recipients, config.internal_domains)
    direction = (
        Direction.INTERNAL
        if by_domains is Direction.INTERNAL
        else Direction.INBOUND
        if record.flag("Incoming")
        else Direction.OUTBOUND
    )
    return build_activity(
        record.path,
        source="salesforce",
        external_id=external_id,
        kind=ActivityKind.EMAIL,
        direction=direction,
        outcome=email_outcome(direction),
        occurred_at=occurred_at,
        participants=participants,
        subject=record.get("Subject"),
        thread_id=record.get("ThreadIdentifier"),
        crm=_references(record),  # RelatedToId: the opportunity or account; no owner, no WhoId
        revision=EMAIL_MESSAGE_RANK + (epoch_millis(modified) if modified else 0),
    ), ""


def _call_start(record: _SObject, logged_at: datetime, duration: int) -> datetime:
    """When a call logged as a Task started: a CTI (Open CTI, a dialer's Salesforce integration)
    or a rep's "Log a Call" files the Task as the call ends, so its completion (else creation)
    time less its ``CallDurationInSeconds``; the day's start for a Task dated only by its
    ``ActivityDate``. Dated so, it meets the dialer's own report of the call (same start), which
    attribution counts once (docs/attribution.md, "One call, several sources")."""
    if record.time("CompletedDateTime") is None and record.time("CreatedDate") is None:
        return logged_at
    return logged_at - timedelta(seconds=duration)


def _day_start(record: _SObject) -> datetime | None:
    day = record.day("ActivityDate")
    return datetime.combine(day, time(), tzinfo=UTC) if day else None


def _call_outcome(disposition: str | None) -> Outcome:
    text = (disposition or "").lower()
    return next((outcome for phrase, outcome in DISPOSITION_PHRASES if phrase in text), Outcome.CONNECTED)


def _entity(record: _SObject, region: Regions, received_at: datetime) -> CrmEntity:
    # The record's revision clock: never more than a day ahead of receipt.
    updated_at = record.time("LastModifiedDate", received_at) or record.time("SystemModstamp", received_at)
    if updated_at is None:
        raise WebhookRejected(422, record.field("LastModifiedDate"), "required")
    common = {"id": record.require("Id"), "updated_at": updated_at, "deleted": record.flag("IsDeleted")}
    name = (
        record.get("Name") or " ".join(n for n in (record.get("FirstName"), record.get("LastName")) if n)
    )[:256]
    email = normalize_email(record.get("Email"))
    phones = read_phones((record.get(k) for k in ("Phone", "MobilePhone")), region)
    if record.type == "User":
        return RepV1(
            **common,
            name=name,
            emails=(email,) if email else (),
            phones=phones.phones,
            raw_phones=phones.raw_phones,
            phone_extensions=phones.phone_extensions,
            unread_phones=phones.unread,
            active=record.get("IsActive") is None or record.flag("IsActive"),
            manager_id=record.get("ManagerId"),
            # An outbound message carries the User's own fields only: the role hierarchy's name
            # (UserRole.Name) is a lookup it cannot include, the job Title is a field it can.
            role=(record.get("Title") or "")[:128] or None,
        )
    if record.type in PERSON_COUNTRY:
        return ContactV1(
            **(common | _converted(record)),
            name=name,
            emails=(email,) if email else (),
            phones=phones.phones,
            raw_phones=phones.raw_phones,
            phone_extensions=phones.phone_extensions,
            unread_phones=phones.unread,
            account_id=record.get(PERSON_ACCOUNT[record.type]),
            country=_country(record, PERSON_COUNTRY[record.type]),
        )
    if record.type == "Account":
        domain = normalize_domain(record.get("Website"))
        return AccountV1(
            **common,
            name=name,
            domains=(domain,) if domain else (),
            country=_country(record, "BillingCountry"),
            # ``Customer - Direct``, ``Channel Partner / Reseller``, ``Technology Partner``... (or
            # the org's own picklist): kept as sent, its relationship read by the contract.
            account_type=(record.get("Type") or "")[:128] or None,
        )
    created_at = record.time("CreatedDate")
    if created_at is None:
        raise WebhookRejected(422, record.field("CreatedDate"), "required")
    close_day = record.day("CloseDate")
    deal = DealV1(
        **common,
        name=name,
        account_id=record.get("AccountId"),
        owner_rep_id=record.get("OwnerId"),
        stage=(record.get("StageName") or "")[:128],
        amount=_amount(record),
        created_at=created_at,
        closed_at=datetime.combine(close_day, time(), tzinfo=UTC) if close_day else None,
        **_closed_flags(record),
    )
    return deal.model_copy(update=read_deal(deal))


#: The people Salesforce keeps, each a contact here, with the field stating where the person is
#: and the one naming the account: a Contact, and a Lead (a person not yet converted; its
#: ``Company`` is a name, not an Account: its account is the one it is converted into).
PERSON_COUNTRY = {"Contact": "MailingCountry", "Lead": "Country"}
PERSON_ACCOUNT = {"Contact": "AccountId", "Lead": "ConvertedAccountId"}


def _converted(record: _SObject) -> dict[str, object]:
    """A converted Lead is the Contact it was converted into (``ConvertedContactId``): merged
    into it, so the person is one contact, not two listing the same email and phones; converted
    without the Contact's id in the message, it is deleted (the Contact is the person). Nothing
    for a Contact or a Lead not converted."""
    if record.type != "Lead" or not record.flag("IsConverted"):
        return {}
    survivor = record.get("ConvertedContactId")
    return {"merged_into": survivor} if survivor else {"deleted": True}


def _country(record: _SObject, field: str) -> str | None:
    """A Contact's ``MailingCountry`` or an Account's ``BillingCountry`` as its ISO 3166 alpha-2
    code (the country picklist's name or code, or free text); ``None`` when it names none."""
    return country_of(record.get(field))


def _closed_flags(record: _SObject) -> dict[str, bool]:
    """``IsClosed`` / ``IsWon`` when the message carries them (an Outbound Message holds only
    the fields the admin picked): without them the stage decides ("Closed Won", "Closed Lost";
    :func:`crm_sync.read_deal`)."""
    if record.get("IsClosed") is None and record.get("IsWon") is None:
        return {}
    is_won = record.flag("IsWon")
    return {"is_closed": record.flag("IsClosed") or is_won, "is_won": is_won}


def _amount(record: _SObject) -> Decimal | None:
    raw = record.get("Amount")
    if raw is None:
        return None
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise WebhookRejected(422, record.field("Amount"), "not a number") from None
    if not value.is_finite():
        raise WebhookRejected(422, record.field("Amount"), "not a finite number")
    return value
