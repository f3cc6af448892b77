"""HubSpot CRM objects posted in batches, signed with X-HubSpot-Signature-v3.

The body is a JSON array. Items with ``objectType`` carry a CRM v3 object as the CRM API returns
it (id, properties, associations, createdAt, updatedAt, archived), or an owner as the Owners API
returns it. Items with ``subscriptionType`` are HubSpot's own change notifications, which carry
no object data: a ``{contact,company,deal}.deletion`` or ``.merge`` names the records it retires
(tombstones and merges); the others are acknowledged and listed as ignored.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from urllib.parse import unquote

from pydantic import ValidationError

from libs.common.contracts.activities import (
    CONTACT_IDS_LIMIT,
    ActivityIn,
    ActivityKind,
    CrmReferences,
    Direction,
    Outcome,
    Participant,
    ParticipantRole,
)
from libs.common.contracts.crm import (
    LIST_LIMITS,
    AccountV1,
    ContactV1,
    CrmEntity,
    DealContactRole,
    DealV1,
    RepV1,
)
from libs.common.contracts.fields import check_line
from libs.common.phones import Regions
from services.ingest.domain.countries import contact_phone_regions, country_of
from services.ingest.domain.crm_sync import read_deal
from services.ingest.domain.ignored import (
    HUBSPOT_CALL_UNDER_WAY,
    HUBSPOT_EMAIL_NOT_SENT,
    NOT_DONE,
    OTHER,
    Ignored,
    ignored_line,
)
from services.ingest.domain.normalize import (
    Converted,
    JsonObject,
    ahead_reason,
    build_activity,
    check_timestamp_window,
    colleagues_only_hold,
    direction_for,
    duration_between,
    email_outcome,
    epoch_millis,
    from_epoch_millis,
    is_internal,
    load_json,
    make_participant,
    meeting_direction,
    normalize_domain,
    normalize_domains,
    normalize_email,
    not_ahead,
    objects_in,
    parse_address_list,
    parse_iso_datetime,
    part_field,
    read_phones,
    reported_duration,
    source_deletion,
    unique_participants,
    validation_to_rejection,
)
from services.ingest.domain.signatures import (
    any_secret_matches,
    b64,
    hmac_sha256,
    require_header,
    require_secrets,
)
from services.ingest.domain.webhook_types import (
    AdapterResult,
    AheadOfReceipt,
    SourceDeletion,
    TenantWebhookConfig,
    TimeBlock,
    WebhookRejected,
    WebhookRequest,
)

SIGNATURE_HEADER = "x-hubspot-signature-v3"
TIMESTAMP_HEADER = "x-hubspot-request-timestamp"
MAX_BATCH = 1_000
#: A contact's addresses read (``email``, then ``hs_additional_emails``): a list grown by an
#: import or an integration gone wrong must not make one contact thousands of people's mail.
MAX_CONTACT_EMAILS = 50

#: hs_call_status -> outcome; statuses of a call still under way are ignored.
CALL_STATUS_OUTCOMES: dict[str, Outcome] = {
    "COMPLETED": Outcome.CONNECTED,
    "BUSY": Outcome.BUSY,
    "NO_ANSWER": Outcome.NO_ANSWER,
    "FAILED": Outcome.FAILED,
    "CANCELED": Outcome.FAILED,
    "MISSED": Outcome.NO_ANSWER,
}
CALL_STATUSES_IN_PROGRESS = frozenset({"QUEUED", "RINGING", "CONNECTING", "IN_PROGRESS", "CALLING_CRM_USER"})
#: HubSpot's default call dispositions (hs_call_disposition holds these ids) refine COMPLETED.
CALL_DISPOSITION_OUTCOMES: dict[str, Outcome] = {
    "f240bbac-87c9-4f6e-bf70-924b57d47db7": Outcome.CONNECTED,
    "73a0d17f-1163-4015-bdd5-ec830791da20": Outcome.NO_ANSWER,
    "b2cf5968-551e-4856-9783-52b3da59a7d0": Outcome.VOICEMAIL,
    "9d9162e7-6cf3-4944-bf63-4dff82258764": Outcome.BUSY,
    "a4c4c377-d246-4b32-a13b-75a56a4cd0ff": Outcome.VOICEMAIL,
    "17b47fee-58de-441e-a44c-c6300d46f273": Outcome.FAILED,
}
CALL_DIRECTIONS: dict[str, Direction] = {"INBOUND": Direction.INBOUND, "OUTBOUND": Direction.OUTBOUND}
#: hs_meeting_outcome -> outcome; SCHEDULED and RESCHEDULED become held once the meeting is past.
MEETING_OUTCOMES: dict[str, Outcome] = {
    "COMPLETED": Outcome.HELD,
    "NO_SHOW": Outcome.NO_SHOW,
    "CANCELED": Outcome.CANCELLED,
}
ENGAGEMENT_TYPES = frozenset({"calls", "emails", "meetings"})
ENTITY_TYPES = frozenset({"contacts", "companies", "deals", "owners"})


def hubspot_signature(secret: str, method: str, uri: str, body: bytes, timestamp: str) -> str:
    message = method.encode("utf-8") + uri.encode("utf-8") + body + timestamp.encode("utf-8")
    return b64(hmac_sha256(secret.encode("utf-8"), message))


@dataclass(frozen=True, slots=True)
class HubSpotAdapter:
    """Batches of CRM objects: engagements become activities, the rest entities."""

    source: str = "hubspot"
    version: str = "hubspot/1"

    def verify(self, request: WebhookRequest, secrets: Sequence[str], config: TenantWebhookConfig) -> None:
        require_secrets(secrets)
        signature = require_header(request, SIGNATURE_HEADER)
        timestamp = require_header(request, TIMESTAMP_HEADER)
        if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > 15:
            raise WebhookRejected(401, TIMESTAMP_HEADER, "not a timestamp in milliseconds")
        try:
            sent_at = from_epoch_millis(int(timestamp), TIMESTAMP_HEADER)
        except WebhookRejected:
            raise WebhookRejected(401, TIMESTAMP_HEADER, "timestamp out of range") from None
        check_timestamp_window(
            sent_at, request.received_at, config.signature_window_seconds, TIMESTAMP_HEADER
        )
        # HubSpot signs the URI with some percent-escapes decoded; accept either spelling.
        method = request.method.upper()
        presented = [signature]
        expected = [
            hubspot_signature(secret, method, uri, request.body, timestamp)
            for uri in sorted({request.url, unquote(request.url)})
            for secret in secrets
            if secret
        ]
        if not any_secret_matches(expected, presented, lambda computed: computed):
            raise WebhookRejected(401, SIGNATURE_HEADER, "does not match")

    def parse(
        self, request: WebhookRequest, config: TenantWebhookConfig, secrets: Sequence[str] = ()
    ) -> AdapterResult:
        batch = load_json(request.body)
        if not isinstance(batch, list):
            raise WebhookRejected(400, "body", "expected a JSON array")
        if len(batch) > MAX_BATCH:
            raise WebhookRejected(413, "body", f"more than {MAX_BATCH} items")
        items = objects_in(batch, "")
        index = _BatchIndex.of(items, config.account_countries, config.crm_people)
        out = Converted()
        entities: list[CrmEntity] = []
        ignored = out.ignored
        for item in items:
            try:
                object_type = item.opt_str("objectType")
                if object_type is None:
                    retired, deleted, reason = _notification(item, request.received_at)
                    entities.extend(retired)
                    out.deletions.extend(deleted)
                    if reason:
                        ignored.append(Ignored(f"{item.path} {reason}", OTHER))
                elif object_type in ENGAGEMENT_TYPES:
                    activity, reason = _engagement(item, object_type, index, config, request.received_at)
                    out.add(activity, reason, f"{item.path} {object_type}/{item.opt_str('id')}")
                elif object_type in ENTITY_TYPES:
                    region: Regions = config.default_phone_region
                    if object_type == "contacts":
                        region = index.phone_regions(item, config.default_phone_region)
                    entities.append(_entity(item, object_type, region, request.received_at))
                else:
                    ignored.append(Ignored(f"{item.path} {object_type}: object type not used", OTHER))
            except AheadOfReceipt as ahead:
                # One item dated ahead of receipt is left out, never the whole batch.
                kind = item.opt_str("objectType") or item.opt_str("subscriptionType")
                ignored.append(ignored_line(f"{item.path} {kind}/{item.opt_str('id')}", ahead_reason(ahead)))
        return AdapterResult(
            activities=tuple(out.activities),
            entities=tuple(entities),
            ignored=tuple(ignored),
            deletions=tuple(out.deletions),
            time_blocks=tuple(out.blocks),
            people_to_look_up=index.people_not_carried(items),
        )


#: The object of a native notification (``{object}.deletion``, ``{object}.merge``) -> what it is here.
NOTIFIED_ENTITIES: dict[str, type[ContactV1 | AccountV1 | DealV1]] = {
    "contact": ContactV1,
    "company": AccountV1,
    "deal": DealV1,
}


#: ``objectTypeId`` of the generic notifications (``object.deletion``, ``object.merge``, ...)
#: -> the object they name, as the legacy ones (``contact.deletion``) spell it.
OBJECT_TYPE_IDS: dict[str, str] = {
    "0-1": "contact",
    "0-2": "company",
    "0-3": "deal",
    "0-47": "meeting",
    "0-48": "call",
    "0-49": "email",
}
#: Engagements ingested as activities (``ENGAGEMENT_TYPES``), as notifications name them.
NOTIFIED_ENGAGEMENTS = frozenset({"call", "email", "meeting"})


def _notification(
    item: JsonObject, received_at: datetime
) -> tuple[tuple[CrmEntity, ...], tuple[SourceDeletion, ...], str | None]:
    """One of HubSpot's own notifications: the records it retires, the activities it deletes,
    or why it is acknowledged and ignored.

    Legacy subscriptions name the object (``deal.deletion``); generic ones (``object.deletion``)
    name it by ``objectTypeId`` (``0-48`` a call, ``0-49`` an email, ``0-47`` a meeting). A
    deleted call, email or meeting is retracted like an archived one. A restore publishes
    nothing: the object comes back with its next sync, and attribution decides what a restore at
    the source does.
    """
    subscription = item.opt_str("subscriptionType") or "unknown"
    object_name, _, change = subscription.partition(".")
    type_id = item.opt_str("objectTypeId")
    if object_name == "object":
        object_name = OBJECT_TYPE_IDS.get(type_id or "", "")
    named = subscription + (f" (objectTypeId {type_id})" if type_id else "")
    if object_name in NOTIFIED_ENGAGEMENTS and change == "deletion":
        return (), (source_deletion("hubspot", item.req_str("objectId"), item.field("objectId")),), None
    retired = _retired(item, object_name, change, received_at)
    if retired:
        return retired, (), None
    if change == "restore":
        return (), (), f"{named}: a restore; nothing is published (the object comes back with its next sync)"
    if not object_name:
        return (), (), f"{named}: object type not used"
    return (), (), f"{named}: a change notification without object data"


def _retired(item: JsonObject, object_name: str, change: str, received_at: datetime) -> tuple[CrmEntity, ...]:
    """The records a native ``deletion`` or ``merge`` notification retires, as tombstones and
    merges (``merged_into`` the record kept: ``newObjectId`` when HubSpot made one, else
    ``primaryObjectId``), dated ``occurredAt``; nothing for any other notification. The rest of
    a change comes as the object itself (a sync job), which these notifications do not carry."""
    entity_type = NOTIFIED_ENTITIES.get(object_name)
    if entity_type is None or change not in ("deletion", "merge"):
        return ()
    occurred_at = not_ahead(
        from_epoch_millis(item.req_int("occurredAt"), item.field("occurredAt")),
        received_at,
        item.field("occurredAt"),
    )
    dated: dict[str, object] = {"updated_at": occurred_at}
    if entity_type is DealV1:
        dated["created_at"] = occurred_at  # never read: a retired deal is skipped
    try:
        if change == "deletion":
            return (entity_type(id=item.req_str("objectId"), deleted=True, **dated),)
        kept = item.opt_str("newObjectId") or item.req_str("primaryObjectId")
        losers = dict.fromkeys([*_ids(item, "mergedObjectIds"), item.req_str("primaryObjectId")])
        return tuple(entity_type(id=loser, merged_into=kept, **dated) for loser in losers if loser != kept)
    except ValidationError as error:
        raise validation_to_rejection(item.path, error) from None


def _ids(item: JsonObject, key: str) -> tuple[str, ...]:
    """A list of object ids (numbers or strings); absent means none."""
    value = item.data.get(key)
    if value is None:
        return ()
    if not isinstance(value, list):
        raise WebhookRejected(422, item.field(key), "expected a list")
    ids: list[str] = []
    for index, raw in enumerate(value):
        if isinstance(raw, bool) or not isinstance(raw, str | int) or not str(raw).strip():
            raise WebhookRejected(422, f"{item.field(key)}[{index}]", "expected an id")
        ids.append(str(raw).strip())
    return tuple(ids)


@dataclass(frozen=True, slots=True)
class _BatchIndex:
    """Contacts and owners delivered in the same batch, to put addresses on engagements, and
    companies, whose country is where their contacts' phones are read."""

    contacts: Mapping[str, JsonObject]
    owners: Mapping[str, JsonObject]
    #: The country of each company in the batch (alpha-2, ``None`` when it states none).
    company_countries: Mapping[str, str | None]
    #: The countries held for companies not in the batch (``TenantWebhookConfig.account_countries``).
    held_countries: Mapping[str, str]
    #: Owners and contacts not in the batch, as held (``TenantWebhookConfig.crm_people``).
    held_people: Mapping[str, tuple[str | None, str | None]]

    @classmethod
    def of(
        cls,
        items: Sequence[JsonObject],
        held_countries: Mapping[str, str],
        held_people: Mapping[str, tuple[str | None, str | None]],
    ) -> _BatchIndex:
        found: dict[str, dict[str, JsonObject]] = {"contacts": {}, "owners": {}, "companies": {}}
        for item in items:
            object_type = item.data.get("objectType")
            object_id = item.data.get("id")
            if not isinstance(object_id, str | int) or isinstance(object_id, bool):
                continue
            if isinstance(object_type, str) and object_type in found:
                found[object_type][str(object_id)] = item
        company_countries = {
            company_id: _country(_properties(company)) for company_id, company in found["companies"].items()
        }
        return cls(found["contacts"], found["owners"], company_countries, held_countries, held_people)

    def people_not_carried(self, items: Sequence[JsonObject]) -> tuple[str, ...]:
        """The owners and contacts the batch's live engagements name that it does not carry and
        that are not held yet: a sync job posts engagements apart from the people they name."""
        wanted: dict[str, None] = {}
        for item in items:
            if item.data.get("objectType") not in ENGAGEMENT_TYPES or item.data.get("archived") is True:
                continue
            properties = item.data.get("properties")
            owner = properties.get("hubspot_owner_id") if isinstance(properties, dict) else None
            if isinstance(owner, str | int) and not isinstance(owner, bool) and str(owner) not in self.owners:
                wanted[f"owners/{owner}"] = None
            try:
                contacts = _associated_ids(item, "contacts")
            except WebhookRejected:
                contacts = ()
            wanted.update((f"contacts/{c}", None) for c in contacts if c not in self.contacts)
        return tuple(key for key in wanted if key not in self.held_people)

    def phone_regions(self, contact: JsonObject, default: str) -> tuple[str, ...]:
        """Where ``contact``'s national-format phones are read: its ``country``, then its
        company's (delivered in this batch, else as held), then the tenant's region."""
        properties = _properties(contact)
        return contact_phone_regions(
            _country(properties),
            _contact_account_id(contact, properties),
            self.company_countries,
            self.held_countries,
            default,
        )

    def owner_field(self, owner_id: str | None) -> str | None:
        """Where the batch gives the owner's email, if it carries the owner."""
        owner = self.owners.get(owner_id or "")
        return owner.field("email") if owner is not None else None

    def owner_email(self, owner_id: str | None) -> str | None:
        owner = self.owners.get(owner_id or "")
        if owner is None:
            return self.held_people.get(f"owners/{owner_id}", (None, None))[0]
        return owner.opt_str("email")

    def contact_participants(
        self, contact_ids: Sequence[str], role: ParticipantRole, region: str
    ) -> list[Participant | None]:
        found: list[Participant | None] = []
        for contact_id in contact_ids:
            contact = self.contacts.get(contact_id)
            if contact is None:
                found.append(self._held_contact(contact_id, role))
                continue
            properties = _properties(contact)
            email = normalize_email(properties.opt_str("email"))
            # A field listing several numbers gives each (``read_phones``); one party has one
            # number, and every listed number is this contact's: the first is the participant's.
            listed = read_phones([properties.opt_str("phone")], self.phone_regions(contact, region)).phones
            phone = listed[0] if listed else None
            if email or phone:
                try:
                    participant = Participant(
                        email=email, phone=phone, name=_contact_name(properties), role=role
                    )
                except ValidationError as error:
                    named = {
                        "email": properties.field("email"),
                        "phone": properties.field("phone"),
                        "name": part_field(properties, ("firstname", "lastname")),
                    }
                    raise validation_to_rejection(contact.path, error, named) from None
                found.append(participant)
        return found

    def _held_contact(self, contact_id: str, role: ParticipantRole) -> Participant | None:
        """A contact the batch does not carry, with the address held for it (already normalised)."""
        email, phone = self.held_people.get(f"contacts/{contact_id}", (None, None))
        if not (email or phone):
            return None
        try:
            return Participant(email=email, phone=phone, role=role)
        except ValidationError:  # held as attribution stored it; one it cannot read is left out
            return None


def _properties(item: JsonObject) -> JsonObject:
    return item.opt_obj("properties") or JsonObject({}, item.field("properties"))


def _country(properties: JsonObject) -> str | None:
    """A contact's or a company's ``country`` as its ISO 3166 alpha-2 code; ``None`` when it
    states none that can be read (its phones are then read in the next region known)."""
    return country_of(properties.opt_str("country"))


#: The association HubSpot marks a record's primary company with, by the record's type: its
#: name in the v3 objects API's ``associations`` (any other company is ``..._unlabeled``, typeId
#: 279 from a contact, 341 from a deal) and its HUBSPOT_DEFINED typeId in v4's
#: ``associationTypes`` (labelled "Primary", "Contact with Primary Company" since 2024; HubSpot
#: says to rely on the typeId, not the label).
_PRIMARY_COMPANY: dict[str, tuple[str, int]] = {
    "contacts": ("contact_to_company", 1),
    "deals": ("deal_to_company", 5),
}


def _primary_company(item: JsonObject, object_type: str) -> str | None:
    """The company the association marks primary, or ``None`` when none is marked."""
    result = _primary_company_result(item, object_type)
    return result.req_str("id") if result is not None else None


def _account_field(item: JsonObject, object_type: str) -> str:
    """Where the account of a contact or deal was read (a refusal names it there): the primary
    company's association, else a contact's ``associatedcompanyid``, else the first company."""
    primary = _primary_company_result(item, object_type)
    if primary is not None:
        return primary.field("id")
    properties = item.opt_obj("properties")
    if object_type == "contacts" and properties is not None and properties.opt_str("associatedcompanyid"):
        return properties.field("associatedcompanyid")
    return _association_field(item, "companies")


def _primary_company_result(item: JsonObject, object_type: str) -> JsonObject | None:
    name, type_id = _PRIMARY_COMPANY[object_type]
    associations = item.opt_obj("associations")
    group = associations.opt_obj("companies") if associations is not None else None
    for result in group.objs("results") if group is not None else ():
        if result.opt_str("type") == name or any(
            t.opt_int("typeId") == type_id
            and (t.opt_str("category") or "HUBSPOT_DEFINED") == "HUBSPOT_DEFINED"
            for t in result.objs("associationTypes")
        ):
            return result
    return None


def _contact_account_id(item: JsonObject, properties: JsonObject) -> str | None:
    """A contact's primary company: the association marked primary, else ``associatedcompanyid``
    (the property HubSpot keeps the primary company's id in), else the first company associated
    (a payload marking none). Never merely the first of several: their order is not HubSpot's
    promise, and another order (or a second company added) read as a move to another account."""
    companies = _associated_ids(item, "companies")
    return (
        _primary_company(item, "contacts")
        or properties.opt_str("associatedcompanyid")
        or (companies[0] if companies else None)
    )


def _associated_ids(item: JsonObject, association: str) -> tuple[str, ...]:
    return tuple(_associated(item, association))


def _associated(item: JsonObject, association: str) -> dict[str, JsonObject]:
    """The ids associated, each once, with the result first listing it."""
    associations = item.opt_obj("associations")
    if associations is None:
        return {}
    group = associations.opt_obj(association)
    if group is None:
        return {}
    found: dict[str, JsonObject] = {}
    for result in group.objs("results"):
        found.setdefault(result.req_str("id"), result)
    return found


def _refused_association_field(item: JsonObject, association: str) -> str:
    """Where the first id associated that no line may hold (a control character) was read."""
    results = list(_associated(item, association).values())
    for result in results:
        try:
            check_line(result.req_str("id"))
        except ValueError:
            return result.field("id")
    return _association_field(item, association)


def _association_field(item: JsonObject, association: str, position: int = 0) -> str:
    """Where the ``position``-th id associated (each once) was read: its result's ``id``."""
    results = list(_associated(item, association).values())
    return results[position].field("id") if position < len(results) else f"{item.field('associations')}"


def _crm_references(item: JsonObject, properties: JsonObject) -> CrmReferences:
    # An explicit link is taken as certain by attribution, so only a single association is
    # one: an engagement associated with several deals (or companies) names none of them for
    # sure, and the ranking decides between them as it would without a link.
    deals = _associated_ids(item, "deals")
    companies = _associated_ids(item, "companies")
    try:
        return CrmReferences(
            deal_id=deals[0] if len(deals) == 1 else None,
            account_id=companies[0] if len(companies) == 1 else None,
            # The first CONTACT_IDS_LIMIT, as POST /v1/events accepts (a mass email's associations).
            contact_ids=_associated_ids(item, "contacts")[:CONTACT_IDS_LIMIT],
            owner_rep_id=properties.opt_str("hubspot_owner_id"),
        )
    except ValidationError as error:
        location = error.errors(include_input=False)[0]["loc"]
        position = location[1] if location[0] == "contact_ids" and len(location) > 1 else 0
        named = {
            "deal_id": _association_field(item, "deals"),
            "account_id": _association_field(item, "companies"),
            "contact_ids": _association_field(item, "contacts", int(position)),
            "owner_rep_id": properties.field("hubspot_owner_id"),
        }
        raise validation_to_rejection(f"{item.path}.associations", error, named) from None


def _time(properties: JsonObject, key: str, received_at: datetime | None = None) -> datetime | None:
    """HubSpot writes datetimes as ISO 8601 in the v3 API and as epoch ms in older payloads.
    With ``received_at``, one more than a day ahead of it is a 422 naming the property."""
    raw = properties.opt_str(key)
    if raw is None:
        return None
    if raw.isascii() and raw.isdigit():
        read = from_epoch_millis(int(raw), properties.field(key))
    else:
        read = parse_iso_datetime(raw, properties.field(key))
    return read if received_at is None else not_ahead(read, received_at, properties.field(key))


def _revision(item: JsonObject, properties: JsonObject, received_at: datetime) -> int:
    modified = _time(properties, "hs_lastmodifieddate", received_at) or _time(item, "updatedAt", received_at)
    return epoch_millis(modified) if modified is not None else 0


def _not_done(properties: JsonObject, object_type: str) -> Ignored | None:
    """Why a call or an email has not happened yet (ignored), else None: a call still under way,
    or an email whose ``hs_email_status`` is not SENT (SCHEDULED, SENDING, FAILED, BOUNCED); an
    email without a status (logged by hand or by an integration) was sent."""
    if object_type == "calls":
        status = (properties.opt_str("hs_call_status") or "COMPLETED").upper()
        if status in CALL_STATUSES_IN_PROGRESS:
            return Ignored(f"hs_call_status={status}: {HUBSPOT_CALL_UNDER_WAY}", NOT_DONE)
    elif object_type == "emails":
        status = (properties.opt_str("hs_email_status") or "SENT").upper()
        if status != "SENT":
            return Ignored(f"hs_email_status={status}: {HUBSPOT_EMAIL_NOT_SENT}", NOT_DONE)
    return None


def _engagement(
    item: JsonObject,
    object_type: str,
    index: _BatchIndex,
    config: TenantWebhookConfig,
    received_at: datetime,
) -> tuple[ActivityIn | SourceDeletion | TimeBlock | None, str]:
    if item.opt_bool("archived"):
        # Deleted in HubSpot (an archived engagement is in the recycling bin): retracted.
        # Its revision, read as a live engagement's (or when it was archived, if later): a
        # later restore is newer, a stale copy of the live engagement is not.
        archived_at = _time(item, "archivedAt", received_at)
        revision = max(
            _revision(
                item, item.opt_obj("properties") or JsonObject({}, item.field("properties")), received_at
            ),
            epoch_millis(archived_at) if archived_at is not None else 0,
        )
        return source_deletion("hubspot", item.req_str("id"), item.field("id"), revision or None), ""
    properties = item.req_obj("properties")
    # A call under way or a mail not sent is left out before its time is read: a queued call
    # or a scheduled mail is dated when it will happen, ahead of receipt.
    if (pending := _not_done(properties, object_type)) is not None:
        return None, pending
    # A meeting's start may be months ahead; a call's, an email's or a note's time may not (the
    # batch lists the engagement as ignored: an email's hs_timestamp is its sender's clock).
    ahead_of = None if object_type == "meetings" else received_at
    occurred_at = _time(properties, "hs_timestamp", ahead_of) or _time(item, "createdAt", received_at)
    if occurred_at is None:
        raise WebhookRejected(422, properties.field("hs_timestamp"), "required")
    common = {
        "source": "hubspot",
        "external_id": item.req_str("id"),
        "crm": _crm_references(item, properties),
        "revision": _revision(item, properties, received_at),
    }
    region = config.default_phone_region
    owner_id = properties.opt_str("hubspot_owner_id")
    owner_email = index.owner_email(owner_id)
    owner_named = {"email": index.owner_field(owner_id) or properties.field("hubspot_owner_id")}
    contact_ids = _associated_ids(item, "contacts")
    if object_type == "calls":
        status = (properties.opt_str("hs_call_status") or "COMPLETED").upper()
        outcome = CALL_STATUS_OUTCOMES.get(status)
        if outcome is None:
            raise WebhookRejected(422, properties.field("hs_call_status"), "unknown call status")
        disposition = properties.opt_str("hs_call_disposition")
        if status == "COMPLETED" and disposition in CALL_DISPOSITION_OUTCOMES:
            outcome = CALL_DISPOSITION_OUTCOMES[disposition]
        direction = CALL_DIRECTIONS.get((properties.opt_str("hs_call_direction") or "OUTBOUND").upper())
        if direction is None:
            raise WebhookRejected(422, properties.field("hs_call_direction"), "expected INBOUND or OUTBOUND")
        rep_phone, other_phone = (
            (properties.opt_str("hs_call_from_number"), properties.opt_str("hs_call_to_number"))
            if direction is Direction.OUTBOUND
            else (properties.opt_str("hs_call_to_number"), properties.opt_str("hs_call_from_number"))
        )
        rep_role, other_role = (
            (ParticipantRole.CALLER, ParticipantRole.CALLEE)
            if direction is Direction.OUTBOUND
            else (ParticipantRole.CALLEE, ParticipantRole.CALLER)
        )
        number_field = properties.field(
            "hs_call_to_number" if direction is Direction.OUTBOUND else "hs_call_from_number"
        )
        participants = unique_participants(
            [
                make_participant(
                    role=rep_role,
                    field=number_field,
                    region=region,
                    email=owner_email,
                    phone=rep_phone,
                    named=owner_named,
                )
                if owner_email or rep_phone
                else None,
                make_participant(role=other_role, field=number_field, region=region, phone=other_phone)
                if other_phone
                else None,
                *index.contact_participants(contact_ids, other_role, region),
            ]
        )
        if not participants:
            # A call logged by hand names no number: its people are its owner and contacts.
            return None, "no owner or contact with an address in this batch or held"
        duration_ms = properties.opt_int("hs_call_duration") or 0
        return build_activity(
            item.path,
            {"external_id": item.field("id"), "subject": properties.field("hs_call_title")},
            kind=ActivityKind.CALL,
            direction=direction,
            outcome=outcome,
            occurred_at=occurred_at,
            duration_seconds=reported_duration(duration_ms // 1000, properties.field("hs_call_duration")),
            participants=participants,
            subject=properties.opt_str("hs_call_title"),
            **common,
        ), ""
    if object_type == "emails":
        senders = parse_address_list(
            properties.opt_str("hs_email_from_email"), properties.field("hs_email_from_email")
        )
        to = parse_address_list(
            properties.opt_str("hs_email_to_email"), properties.field("hs_email_to_email")
        )
        cc = parse_address_list(
            properties.opt_str("hs_email_cc_email"), properties.field("hs_email_cc_email")
        )
        participants = unique_participants(
            [
                *(
                    make_participant(
                        role=ParticipantRole.FROM,
                        field=properties.field("hs_email_from_email"),
                        region=region,
                        email=a,
                        name=n,
                        named={
                            "email": properties.field("hs_email_from_email"),
                            "name": properties.field("hs_email_from_email"),
                        },
                    )
                    for n, a in senders[:1]
                ),
                *(
                    make_participant(
                        role=ParticipantRole.TO,
                        field=properties.field("hs_email_to_email"),
                        region=region,
                        email=a,
                        name=n,
                        named={
                            "email": properties.field("hs_email_to_email"),
                            "name": properties.field("hs_email_to_email"),
                        },
                    )
                    for n, a in to
                ),
                *(
                    make_participant(
                        role=ParticipantRole.CC,
                        field=properties.field("hs_email_cc_email"),
                        region=region,
                        email=a,
                        name=n,
                        named={
                            "email": properties.field("hs_email_cc_email"),
                            "name": properties.field("hs_email_cc_email"),
                        },
                    )
                    for n, a in cc
                ),
            ]
        )
        sender = next((p.email for p in participants if p.role is ParticipantRole.FROM), None)
        recipients = [p.email for p in participants if p.role is not ParticipantRole.FROM and p.email]
        direction = direction_for(sender, recipients, config.internal_domains)
        return build_activity(
            item.path,
            {
                "external_id": item.field("id"),
                "subject": properties.field("hs_email_subject"),
                "thread_id": properties.field("hs_email_thread_id"),
            },
            kind=ActivityKind.EMAIL,
            direction=direction,
            outcome=email_outcome(direction),
            occurred_at=occurred_at,
            participants=participants,
            thread_id=properties.opt_str("hs_email_thread_id"),
            subject=properties.opt_str("hs_email_subject"),
            **common,
        ), ""
    start = _time(properties, "hs_meeting_start_time") or occurred_at
    end = _time(properties, "hs_meeting_end_time")
    stated = (properties.opt_str("hs_meeting_outcome") or "SCHEDULED").upper()
    outcome = MEETING_OUTCOMES.get(stated)
    if outcome is None:
        outcome = Outcome.HELD if (end or start) <= received_at else Outcome.SCHEDULED
    attendees = index.contact_participants(contact_ids, ParticipantRole.ATTENDEE, region)
    participants = unique_participants(
        [
            make_participant(
                role=ParticipantRole.ORGANIZER,
                field=item.path,
                region=region,
                email=owner_email,
                named=owner_named,
            )
            if owner_email
            else None,
            *attendees,
        ]
    )
    if not participants:
        return None, "no owner or contact with an address in this batch or held"
    title = properties.opt_str("hs_meeting_title")
    # "HOLD: Acme demo" with no contact but colleagues: time blocked, not a meeting (a later
    # revision of a meeting published retracts it as no meeting).
    hold = colleagues_only_hold(
        title,
        participants,
        config.internal_domains,
        filed_with_a_customer=_a_contact_not_a_colleague(contact_ids, attendees, config.internal_domains),
    )
    if hold is not None:
        return TimeBlock("hubspot", item.req_str("id"), _revision(item, properties, received_at), hold), ""
    return build_activity(
        item.path,
        {"external_id": item.field("id"), "subject": properties.field("hs_meeting_title")},
        kind=ActivityKind.MEETING,
        direction=meeting_direction(participants, config.internal_domains),
        outcome=outcome,
        occurred_at=start,
        duration_seconds=duration_between(start, end),
        participants=participants,
        subject=title,
        **common,
    ), ""


def _a_contact_not_a_colleague(
    contact_ids: Sequence[str], attendees: Sequence[Participant | None], internal_domains: Iterable[str]
) -> bool:
    """Whether a meeting's associated contacts include one not known to be a colleague: every
    contact is a customer but one held with an address at the tenant's domains (a colleague kept
    as a contact). One known by a phone alone, or not in the batch nor held, is a customer."""
    colleagues = sum(
        1
        for p in attendees
        if p is not None and p.email is not None and is_internal(p.email, internal_domains)
    )
    return len(contact_ids) > colleagues


def _contact_emails(properties: JsonObject) -> tuple[str, ...]:
    """A contact's ``email``, then the others HubSpot keeps in ``hs_additional_emails``
    (``;``-separated: a former employer's, a personal one), each read as an address once; one
    that cannot be read is left out, and those after the first ``MAX_CONTACT_EMAILS`` too."""
    listed = [properties.opt_str("email"), *(properties.opt_str("hs_additional_emails") or "").split(";")]
    emails: dict[str, None] = {}
    for raw in listed:
        if len(emails) == MAX_CONTACT_EMAILS:
            break
        email = normalize_email(raw) if raw else None
        if email:
            emails[email] = None
    return tuple(emails)


def _contact_name(properties: JsonObject) -> str | None:
    names = [n for n in (properties.opt_str("firstname"), properties.opt_str("lastname")) if n]
    return " ".join(names)[:256] or None


def _entity(item: JsonObject, object_type: str, region: Regions, received_at: datetime) -> CrmEntity:
    try:
        return _build_entity(item, object_type, region, received_at)
    except ValidationError as error:
        raise validation_to_rejection(item.path, error, _entity_fields(item, object_type)) from None


def _entity_fields(item: JsonObject, object_type: str) -> dict[str, str]:
    """Where each field of the entity of ``item`` was read (a refusal names it there)."""
    if object_type == "owners":
        return {"name": part_field(item, ("firstName", "lastName")), "emails": item.field("email")}
    properties = item.opt_obj("properties") or JsonObject({}, item.field("properties"))
    named = {"id": item.field("id"), "country": properties.field("country")}
    if object_type == "contacts":
        return {
            **named,
            "name": part_field(properties, ("firstname", "lastname")),
            "emails": part_field(properties, ("email", "hs_additional_emails")),
            "raw_phones": part_field(properties, ("phone", "mobilephone")),
            "account_id": _account_field(item, "contacts"),
        }
    if object_type == "companies":
        return {
            **named,
            "name": properties.field("name"),
            "domains": part_field(properties, ("domain", "hs_additional_domains")),
            "account_type": properties.field("type"),
        }
    return {
        **named,
        "name": properties.field("dealname"),
        "stage": properties.field("dealstage"),
        "owner_rep_id": properties.field("hubspot_owner_id"),
        "account_id": _account_field(item, "deals"),
        "contact_id": _refused_association_field(item, "contacts"),
        "amount": properties.field("amount"),
    }


def _build_entity(item: JsonObject, object_type: str, region: Regions, received_at: datetime) -> CrmEntity:
    # The record's revision clock: never more than a day ahead of receipt.
    updated_at = _time(item, "updatedAt", received_at)
    if updated_at is None:
        raise WebhookRejected(422, item.field("updatedAt"), "required")
    deleted = bool(item.opt_bool("archived"))
    object_id = item.req_str("id")
    if object_type == "owners":
        names = [n for n in (item.opt_str("firstName"), item.opt_str("lastName")) if n]
        email = normalize_email(item.opt_str("email"))
        # An archived owner is a deactivated user (HubSpot never deletes owners): a seller who
        # left, inactive, still the one who did her work. A tombstone would hand it to whoever
        # owns her deals the next time they are re-decided.
        return RepV1(
            id=object_id,
            updated_at=updated_at,
            name=" ".join(names)[:256],
            emails=(email,) if email else (),
            active=not deleted,
        )
    properties = item.req_obj("properties")
    if object_type == "contacts":
        phones = read_phones((properties.opt_str(k) for k in ("phone", "mobilephone")), region)
        return ContactV1(
            id=object_id,
            updated_at=updated_at,
            deleted=deleted,
            name=_contact_name(properties) or "",
            emails=_contact_emails(properties),
            phones=phones.phones,
            raw_phones=phones.raw_phones,
            phone_extensions=phones.phone_extensions,
            unread_phones=phones.unread,
            account_id=_contact_account_id(item, properties),
            country=_country(properties),
        )
    if object_type == "companies":
        # ``domain``, then the others HubSpot keeps in ``hs_additional_domains`` (``;``-separated).
        domain = normalize_domain(properties.opt_str("domain"))
        others = [
            d
            for part in (properties.opt_str("hs_additional_domains") or "").split(";")
            for d in normalize_domains(part)
        ]
        return AccountV1(
            id=object_id,
            updated_at=updated_at,
            deleted=deleted,
            name=(properties.opt_str("name") or "")[:256],
            # The first LIST_LIMITS["domains"] (the contract's cap): a list grown by an import
            # gone wrong keeps its first domains rather than refusing the batch.
            domains=tuple(dict.fromkeys([*([domain] if domain else []), *others]))[: LIST_LIMITS["domains"]],
            country=_country(properties),
            # ``PROSPECT``, ``PARTNER``, ``RESELLER``, ``VENDOR``, ``OTHER`` (or a portal's own
            # option): kept as sent, its relationship read by the contract (``relationship_of``).
            account_type=(properties.opt_str("type") or "")[:128] or None,
        )
    created_at = _time(properties, "createdate") or _time(item, "createdAt")
    if created_at is None:
        raise WebhookRejected(422, properties.field("createdate"), "required")
    companies = _associated_ids(item, "companies")
    deal = DealV1(
        id=object_id,
        updated_at=updated_at,
        deleted=deleted,
        name=(properties.opt_str("dealname") or "")[:256],
        account_id=_primary_company(item, "deals") or (companies[0] if companies else None),
        owner_rep_id=properties.opt_str("hubspot_owner_id"),
        stage=(properties.opt_str("dealstage") or "")[:128],
        amount=_decimal(properties, "amount"),
        created_at=created_at,
        closed_at=_time(properties, "closedate"),
        contacts=tuple(
            DealContactRole(contact_id=c)
            for c in _associated_ids(item, "contacts")[: LIST_LIMITS["contacts"]]
        ),
        **_closed_flags(properties),
    )
    return deal.model_copy(update=read_deal(deal))


def _closed_flags(properties: JsonObject) -> dict[str, bool]:
    """``hs_is_closed`` / ``hs_is_closed_won`` when the deal carries them. HubSpot returns them
    only when asked for (they are not among a deal's default properties): without them the
    stage decides (``closedwon``, ``closedlost``; :func:`crm_sync.read_deal`)."""
    is_closed = properties.opt_bool("hs_is_closed")
    is_won = properties.opt_bool("hs_is_closed_won")
    if is_closed is None and is_won is None:
        return {}
    return {"is_closed": bool(is_closed or is_won), "is_won": bool(is_won)}


def _decimal(properties: JsonObject, key: str) -> Decimal | None:
    raw = properties.opt_str(key)
    if raw is None:
        return None
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise WebhookRejected(422, properties.field(key), "not a number") from None
    if not value.is_finite():
        raise WebhookRejected(422, properties.field(key), "not a finite number")
    return value
