"""CRM reference entities: reps, teams, memberships, accounts, contacts and deals.

Every entity carries ``updated_at``: the consumer keeps the newest (last writer wins)
and ignores an older version delivered late; a version under the same ``updated_at`` whose
content differs is a correction and replaces what is held (the last received wins), an
identical one changes nothing. ``deleted`` tombstones an entity;
``merged_into`` points a merged entity at its survivor.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from libs.common.contracts.fields import (
    Amount,
    DayOrUtcDatetime,
    Email,
    ExternalId,
    RoleName,
    SafeDate,
    SafeStr,
    StrictBool,
    TenantId,
    UtcDatetime,
)

Name = Annotated[SafeStr, Field(max_length=256)]
Phone = Annotated[SafeStr, Field(max_length=40)]


class _Entity(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: ExternalId
    updated_at: UtcDatetime
    deleted: StrictBool = False
    merged_into: ExternalId | None = None


class RepV1(_Entity):
    entity_type: Literal["rep"] = "rep"
    name: Name = ""
    emails: tuple[Email, ...] = ()
    #: E.164 once ingest has read them (``raw_phones`` keeps what the source sent, same order).
    phones: tuple[Phone, ...] = ()
    raw_phones: tuple[Phone, ...] = ()
    active: StrictBool = True
    manager_id: ExternalId | None = None
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


class AccountV1(_Entity):
    entity_type: Literal["account"] = "account"
    name: Name = ""
    domains: tuple[Annotated[SafeStr, Field(max_length=253)], ...] = ()


class ContactV1(_Entity):
    entity_type: Literal["contact"] = "contact"
    name: Name = ""
    emails: tuple[Email, ...] = ()
    #: E.164 once ingest has read them (``raw_phones`` keeps what the source sent, same order).
    phones: tuple[Phone, ...] = ()
    raw_phones: tuple[Phone, ...] = ()
    account_id: ExternalId | None = None


class DealContactRole(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    contact_id: ExternalId
    role: SafeStr = Field(default="", max_length=128)


class DealV1(_Entity):
    entity_type: Literal["deal"] = "deal"
    name: Name = ""
    account_id: ExternalId | None = None
    owner_rep_id: ExternalId | None = None
    stage: SafeStr = Field(default="", max_length=128)
    amount: Amount | None = None
    is_closed: StrictBool = False
    is_won: StrictBool = False
    #: A time, or a day (its start in UTC) as CRMs keep deal dates.
    created_at: DayOrUtcDatetime
    closed_at: DayOrUtcDatetime | None = None
    contacts: tuple[DealContactRole, ...] = ()

    @model_validator(mode="after")
    def _closed_consistently(self) -> DealV1:
        if self.is_won and not self.is_closed:
            raise ValueError("a won deal must be closed")
        return self


CrmEntity = Annotated[
    RepV1 | TeamV1 | TeamMembershipV1 | AccountV1 | ContactV1 | DealV1,
    Field(discriminator="entity_type"),
]


class CrmSyncIn(BaseModel):
    """Body of ``POST /v1/crm/sync``: a batch of CRM entities."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: SafeStr = Field(default="api", min_length=1, max_length=64)
    entities: tuple[CrmEntity, ...] = Field(min_length=1, max_length=1_000)


class CrmEntityChangedV1(BaseModel):
    """Event ``crm-entity-changed``: one entity as the CRM last reported it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tenant_id: TenantId
    source: SafeStr = Field(min_length=1, max_length=64)
    entity: CrmEntity
