"""CRM reference entities: reps, teams, memberships, accounts, contacts and deals.

Every entity carries ``updated_at``: the consumer keeps the newest (last writer wins)
and ignores an older version delivered late; a version under the same ``updated_at`` whose
content differs is a correction and replaces what is held (the last received wins), an
identical one changes nothing. ``deleted`` tombstones an entity;
``merged_into`` points a merged entity at its survivor.

An optional field sent ``null``, or blank where its absence is ``null`` (an export's empty
column: ``"account_id": ""``, ``"closed_at": " "``), is absent (:func:`_as_exported`),
as a participant's blank email is none. Emails are read by ingest (``crm_sync.read_entities``):
the contract lower-cases an address and keeps a value that is not one for ingest to drop with
a warning, as it does a phone.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from libs.common.contracts.fields import (
    AMOUNT_DECIMAL_PLACES,
    AMOUNT_LIMIT,
    Amount,
    DayOrUtcDatetime,
    ExternalId,
    RoleName,
    SafeDate,
    SafeStr,
    StrictBool,
    TenantId,
    UtcDatetime,
    lower_email,
)

Name = Annotated[SafeStr, Field(max_length=256)]
#: The longest phone value a record stores (its ``phones``, ``raw_phones``, ``unread_phones``).
PHONE_MAX_LENGTH = 40
Phone = Annotated[SafeStr, Field(max_length=PHONE_MAX_LENGTH)]
#: A line and its extension, ``+14155550100;ext=12`` (``activities.phone_key``).
PhoneKey = Annotated[str, Field(pattern=r"^\+[0-9]{1,15};ext=[0-9]{1,20}$")]
#: Where a contact or an account is, as the CRM holds it (``GB``, ``GBR``, ``United Kingdom``);
#: ingest reads it as an ISO 3166 alpha-2 code, the region of the record's national-format phones
#: (``services.ingest.domain.countries``), and drops a value naming no country with a warning.
Country = Annotated[SafeStr, Field(max_length=64)]


def _is_empty(value: tuple[str, ...]) -> bool:
    return not value


def _is_none(value: object) -> bool:
    return value is None


def _lower_when_an_email(value: str) -> str:
    try:
        return lower_email(value)
    except ValueError:
        return value


#: An email as a CRM record holds it: lower-cased when shaped like an address; anything else
#: (``"N/A"``, ``""``) kept for ingest to drop with a warning naming it, the entity accepted.
CrmEmail = Annotated[SafeStr, Field(max_length=320), AfterValidator(_lower_when_an_email)]


#: Fields holding a CRM id: an export's numeric id (HubSpot's ``12345``) is that id's text.
_ID_FIELDS = frozenset(
    {
        "id",
        "account_id",
        "owner_rep_id",
        "manager_id",
        "merged_into",
        "parent_id",
        "rep_id",
        "team_id",
        "contact_id",
    }
)
#: The most values a record's list may hold, far beyond any real CRM record (HubSpot keeps up to
#: 51 emails for a contact): one contact listing 120,000 addresses held the attribution consumer,
#: and every tenant behind it, for seconds. Also once ingest read them (a value listing several
#: is each of them): ingest refuses a record whose list reads longer.
LIST_LIMITS: dict[str, int] = {
    "emails": 100,
    "phones": 50,
    "raw_phones": 50,
    "phone_extensions": 50,
    "unread_phones": 50,
    "domains": 200,
    #: A deal's contact roles: one deal listing 150,000 held the attribution consumer (and every
    #: tenant behind it) for 9 s, and ingest's event loop for 4 s; a buying group is a few dozen.
    #: Checked at ingest's doors only (``DealV1.contacts``).
    "contacts": 500,
}

#: Lists of text: one value sent bare (``"emails": "bo@buyer.example"``) is a list of one.
_TEXT_LISTS = frozenset({"emails", "phones", "raw_phones", "phone_extensions", "unread_phones", "domains"})


def _as_exported(model: type[BaseModel], data: Any) -> Any:
    """``data`` as a CRM export means it: an optional field sent ``null``, or blank where the
    field's default is ``None``, absent (its default applies; a required one is left to be refused
    by name); a numeric id as its text; a bare value of a list a list of one."""
    if not isinstance(data, dict):
        return data
    fields = model.model_fields
    read: dict[str, Any] = {}
    for key, value in data.items():
        field = fields.get(key)
        if (
            field is not None
            and not field.is_required()
            and (value is None or (field.default is None and isinstance(value, str) and not value.strip()))
        ):
            continue
        if value.__class__ is int and key in _ID_FIELDS:
            value = str(value)
        elif isinstance(value, str) and key in _TEXT_LISTS:
            value = [value]
        read[key] = value
    return read


_MILLIONTH = Decimal(1).scaleb(-AMOUNT_DECIMAL_PLACES)


def _to_the_millionth(value: object) -> object:
    """An amount finer than the millionth rounded to it (half to even): a spreadsheet's or a
    script's float (``19999.990000000002``, ``0.1 + 0.2``) is the money it meant, not a 422 for
    the whole batch. Anything else is left to ``Amount`` (and refused there, naming the field),
    a non-zero amount under the millionth (``1e-400``) too: rounding would make it nothing."""
    if value.__class__ not in (float, str, Decimal):
        return value
    try:
        amount = Decimal(repr(value) if isinstance(value, float) else str(value).strip())
    except InvalidOperation:
        return value
    exponent = amount.as_tuple().exponent
    if not amount.is_finite() or not isinstance(exponent, int) or exponent >= -AMOUNT_DECIMAL_PLACES:
        return value
    if abs(amount) > AMOUNT_LIMIT or 0 < abs(amount) < _MILLIONTH:
        return value  # absurd, or a non-zero amount that would round to nothing: refused
    return amount.quantize(_MILLIONTH, rounding=ROUND_HALF_EVEN)


class _Entity(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: ExternalId
    updated_at: UtcDatetime
    deleted: StrictBool = False
    merged_into: ExternalId | None = None

    @model_validator(mode="before")
    @classmethod
    def _empty_is_absent(cls, data: Any) -> Any:
        return _as_exported(cls, data)


class RepV1(_Entity):
    entity_type: Literal["rep"] = "rep"
    name: Name = ""
    emails: tuple[CrmEmail, ...] = Field(default=(), max_length=LIST_LIMITS["emails"])
    #: E.164 once ingest has read them (``raw_phones`` keeps what the source sent, same order).
    phones: tuple[Phone, ...] = Field(default=(), max_length=LIST_LIMITS["phones"])
    raw_phones: tuple[Phone, ...] = Field(default=(), max_length=LIST_LIMITS["raw_phones"])
    #: The phones listed with an extension, as ingest reads them: ``+14155550100;ext=12`` (the
    #: line is in ``phones`` too). Kept while its line is. Written only when there is one, so a
    #: record without is the same JSON as before the field existed.
    phone_extensions: tuple[PhoneKey, ...] = Field(
        default=(), exclude_if=_is_empty, max_length=LIST_LIMITS["phone_extensions"]
    )
    #: The phones sent that the tenant's region could not read, as sent: not matched, and read
    #: again when the tenant's phone region changes (ingest's ``reread_phones`` job), as a
    #: contact's. Written only when there is one.
    unread_phones: tuple[Phone, ...] = Field(
        default=(), exclude_if=_is_empty, max_length=LIST_LIMITS["unread_phones"]
    )
    active: StrictBool = True
    manager_id: ExternalId | None = None
    #: What the addresses this version no longer lists were, when it lists another in their place:
    #: ``"rename"``, her former addresses (``gia.lopez@`` when she became ``gia.moreno@``), which
    #: still link her to a source that has not synced her new one; ``"correction"``, never hers
    #: to link by (a colleague's address typed on her record by mistake). Absent, a rename when
    #: the version also changes her ``name``, else a correction (the safer reading: a correction
    #: read as a rename makes two people one). Written only when sent.
    email_change: Literal["rename", "correction"] | None = Field(default=None, exclude_if=_is_none)
    #: The rep's job role as the CRM names it ("SDR"); role goals apply to the reps whose current
    #: role it is. Absent when the source has none (an older producer, a CRM without roles).
    role: RoleName | None = None


class TeamV1(_Entity):
    entity_type: Literal["team"] = "team"
    name: Name = ""
    parent_id: ExternalId | None = None


class TeamMembershipV1(_Entity):
    """A rep belongs to a team from ``valid_from`` (inclusive) to ``valid_to`` (exclusive, open if null)."""

    entity_type: Literal["team_membership"] = "team_membership"
    rep_id: ExternalId
    team_id: ExternalId
    valid_from: SafeDate
    valid_to: SafeDate | None = None

    @model_validator(mode="after")
    def _ordered(self) -> TeamMembershipV1:
        if self.valid_to is not None and self.valid_to <= self.valid_from:
            raise ValueError("valid_to must be after valid_from")
        return self


#: What an account is to the tenant: the company it sells to (``customer``), may sell to
#: (``prospect``), sells through or with (``partner``: a reseller, a distributor, a systems
#: integrator), buys from (``vendor``), or anything else (``other``).
Relationship = Literal["customer", "prospect", "partner", "vendor", "other"]
RELATIONSHIPS: tuple[Relationship, ...] = ("customer", "prospect", "partner", "vendor", "other")

#: Words of a CRM's account type, first match wins: a partner's before a customer's (Salesforce's
#: ``Channel Partner / Reseller`` is a partner, its ``Customer - Channel`` a customer).
_RELATIONSHIP_WORDS: tuple[tuple[Relationship, frozenset[str]], ...] = (
    (
        "partner",
        frozenset(
            {
                "partner",
                "partners",
                "reseller",
                "resellers",
                "distributor",
                "distributors",
                "integrator",
                "integrators",
            }
        ),
    ),
    ("customer", frozenset({"customer", "customers", "client", "clients"})),
    ("prospect", frozenset({"prospect", "prospects", "lead", "leads"})),
    ("vendor", frozenset({"vendor", "vendors", "supplier", "suppliers"})),
)
_TYPE_WORD = re.compile(r"[a-z]+")


def relationship_of(account_type: str) -> Relationship:
    """The relationship a CRM's free-text account type names: HubSpot's company ``type``
    (``PROSPECT``, ``PARTNER``, ``RESELLER``, ``VENDOR``, ``OTHER``), Salesforce's ``Account.Type``
    (``Prospect``, ``Customer - Direct``, ``Customer - Channel``, ``Channel Partner / Reseller``,
    ``Installation Partner``, ``Technology Partner``, ``Other``) or a tenant's own picklist
    (``Systems Integrator``); ``other`` when no word of it is known."""
    words = set(_TYPE_WORD.findall(account_type.lower()))
    for relationship, known in _RELATIONSHIP_WORDS:
        if words & known:
            return relationship
    return "other"


def _lower_text(value: object) -> object:
    return value.strip().lower() if isinstance(value, str) else value


class AccountV1(_Entity):
    entity_type: Literal["account"] = "account"
    name: Name = ""
    domains: tuple[Annotated[SafeStr, Field(max_length=253)], ...] = Field(
        default=(), max_length=LIST_LIMITS["domains"]
    )
    #: Where the account is (``BillingCountry``): its contacts' phones are read there when the
    #: contact states no country of its own.
    country: Country | None = None
    #: The account's type as the CRM holds it (HubSpot's company ``type``, Salesforce's
    #: ``Account.Type``), kept as sent for display. Written only when there is one.
    account_type: Annotated[SafeStr, Field(max_length=128)] | None = Field(default=None, exclude_if=_is_none)
    #: What the account is to the tenant, one of ``RELATIONSHIPS`` (any case); another value is
    #: refused naming the field. Sent without it, it is read from ``account_type``
    #: (:func:`relationship_of`); absent when neither is sent (an untyped account is no partner).
    #: Written only when there is one, so a record without is the same JSON as before.
    relationship: Annotated[Relationship | None, BeforeValidator(_lower_text)] = Field(
        default=None, exclude_if=_is_none
    )

    @model_validator(mode="before")
    @classmethod
    def _relationship_from_type(cls, data: Any) -> Any:
        if not isinstance(data, dict) or data.get("relationship") is not None:
            return data
        account_type = data.get("account_type")
        if isinstance(account_type, str) and account_type.strip():
            return {**data, "relationship": relationship_of(account_type)}
        return data


class ContactV1(_Entity):
    entity_type: Literal["contact"] = "contact"
    name: Name = ""
    emails: tuple[CrmEmail, ...] = Field(default=(), max_length=LIST_LIMITS["emails"])
    #: E.164 once ingest has read them (``raw_phones`` keeps what the source sent, same order).
    phones: tuple[Phone, ...] = Field(default=(), max_length=LIST_LIMITS["phones"])
    raw_phones: tuple[Phone, ...] = Field(default=(), max_length=LIST_LIMITS["raw_phones"])
    #: The phones listed with an extension, as ingest reads them: ``+14155550100;ext=12`` (the
    #: line is in ``phones`` too). Kept while its line is. Written only when there is one, so a
    #: record without is the same JSON as before the field existed.
    phone_extensions: tuple[PhoneKey, ...] = Field(
        default=(), exclude_if=_is_empty, max_length=LIST_LIMITS["phone_extensions"]
    )
    #: The phones sent that no region tried could read (``020 7946 0958`` of a contact stating no
    #: country, read in a US tenant's region), as sent: not matched, and read again when the
    #: contact's account is later given a country (ingest). Written only when there is one.
    unread_phones: tuple[Phone, ...] = Field(
        default=(), exclude_if=_is_empty, max_length=LIST_LIMITS["unread_phones"]
    )
    account_id: ExternalId | None = None
    #: Where the contact is (``MailingCountry``): its national-format phones are read there.
    country: Country | None = None


class DealContactRole(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    contact_id: ExternalId
    role: SafeStr = Field(default="", max_length=128)

    @model_validator(mode="before")
    @classmethod
    def _empty_is_absent(cls, data: Any) -> Any:
        return _as_exported(cls, data)


class DealV1(_Entity):
    entity_type: Literal["deal"] = "deal"
    name: Name = ""
    account_id: ExternalId | None = None
    owner_rep_id: ExternalId | None = None
    stage: SafeStr = Field(default="", max_length=128)
    #: Rounded to the millionth when sent finer (:func:`_to_the_millionth`).
    amount: Annotated[Amount | None, BeforeValidator(_to_the_millionth)] = None
    is_closed: StrictBool = False
    is_won: StrictBool = False
    #: A time, or a day (its start in UTC) as CRMs keep deal dates.
    created_at: DayOrUtcDatetime
    closed_at: DayOrUtcDatetime | None = None
    #: At most ``LIST_LIMITS["contacts"]`` from ingest's doors (``POST /v1/crm/sync`` refuses more,
    #: HubSpot's associations are cut to it), not checked here: the model also decodes the deal
    #: versions accepted before that limit, still on ``crm-entity-changed``.
    contacts: tuple[DealContactRole, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _won_is_closed(cls, data: Any) -> Any:
        """``is_won: true`` without ``is_closed`` (an export with a "Won" column only) is a closed
        deal; a won deal sent ``is_closed: false`` is still refused, the two contradict."""
        if isinstance(data, dict) and data.get("is_won") is True and data.get("is_closed") is None:
            return {**data, "is_closed": True}
        return data

    @model_validator(mode="after")
    def _closed_consistently(self) -> DealV1:
        if self.is_won and not self.is_closed:
            raise ValueError("a won deal must be closed")
        return self


CrmEntity = Annotated[
    RepV1 | TeamV1 | TeamMembershipV1 | AccountV1 | ContactV1 | DealV1,
    Field(discriminator="entity_type"),
]


#: The ``source`` of a contact ingest publishes again after the tenant's phone region changed (a
#: ``reread_phones`` job): the contact as held, with the numbers its ``unread_phones`` read in the
#: new region added, under the ``updated_at`` held. Attribution writes it only over the very
#: version the job read (a CRM correction under the same ``updated_at`` received meanwhile wins).
PHONE_REREAD_SOURCE = "ingest-phone-region"


class CrmSyncIn(BaseModel):
    """Body of ``POST /v1/crm/sync``: a batch of CRM entities."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: SafeStr = Field(default="api", min_length=1, max_length=64)
    entities: tuple[CrmEntity, ...] = Field(min_length=1, max_length=1_000)

    @field_validator("source")
    @classmethod
    def _not_ingests_own_source(cls, source: str) -> str:
        if source == PHONE_REREAD_SOURCE:
            raise ValueError(f"{PHONE_REREAD_SOURCE!r} is reserved for ingest's own phone re-reads")
        return source


class CrmEntityChangedV1(BaseModel):
    """Event ``crm-entity-changed``: one entity as the CRM last reported it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tenant_id: TenantId
    source: SafeStr = Field(min_length=1, max_length=64)
    entity: CrmEntity
