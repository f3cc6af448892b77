"""What an account is to the tenant (``AccountV1.account_type`` / ``relationship``), as the
canonical sync, HubSpot's company ``type`` and Salesforce's ``Account.Type`` send it."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from libs.common.contracts.crm import AccountV1, relationship_of
from libs.common.web import Problem
from services.ingest import handlers
from services.ingest.domain.crm_sync import read_entities
from services.ingest.domain.webhooks import ADAPTERS

from .ingest_webhook_helpers import CONFIG, dumps, fixture_json, make_request

AT = "2026-11-01T00:00:00Z"


@pytest.mark.parametrize(
    ("account_type", "relationship"),
    [
        # HubSpot's company ``type`` options.
        ("PROSPECT", "prospect"),
        ("PARTNER", "partner"),
        ("RESELLER", "partner"),
        ("VENDOR", "vendor"),
        ("OTHER", "other"),
        # Salesforce's default ``Account.Type`` picklist.
        ("Prospect", "prospect"),
        ("Customer - Direct", "customer"),
        ("Customer - Channel", "customer"),
        ("Channel Partner / Reseller", "partner"),
        ("Installation Partner", "partner"),
        ("Technology Partner", "partner"),
        ("Other", "other"),
        # A tenant's own options.
        ("Systems Integrator", "partner"),
        ("Distributor", "partner"),
        ("Supplier", "vendor"),
        ("Client", "customer"),
        ("Press", "other"),
    ],
)
def test_a_crms_account_type_names_a_relationship(account_type: str, relationship: str) -> None:
    assert relationship_of(account_type) == relationship


def _read(*accounts: dict[str, Any]) -> list[dict[str, Any]]:
    entities = [{"entity_type": "account", "updated_at": AT, **a} for a in accounts]
    read, warnings = read_entities(
        handlers.parse_crm_sync(orjson.dumps({"entities": entities})).entities, "US"
    )
    assert list(warnings) == []
    return [e.model_dump(mode="json", include={"id", "account_type", "relationship"}) for e in read]


def test_the_canonical_sync_reads_the_relationship_from_the_type_or_takes_it_as_sent() -> None:
    assert _read(
        {"id": "a1", "account_type": "Channel Partner / Reseller"},
        {"id": "a2", "relationship": " Partner "},
        # Sent both: the relationship as sent, the type kept for display.
        {"id": "a3", "account_type": "Strategic", "relationship": "customer"},
        {"id": "a4", "account_type": "", "relationship": None},
        {"id": "a5"},
    ) == [
        {"id": "a1", "account_type": "Channel Partner / Reseller", "relationship": "partner"},
        {"id": "a2", "relationship": "partner"},
        {"id": "a3", "account_type": "Strategic", "relationship": "customer"},
        # None: written as before the fields existed.
        {"id": "a4"},
        {"id": "a5"},
    ]


def test_a_relationship_that_is_none_of_the_five_is_refused_naming_the_field() -> None:
    with pytest.raises(Problem) as caught:
        _read({"id": "a1", "relationship": "friend"})
    assert [(e["field"], e["reason"]) for e in caught.value.errors] == [
        (
            "entities.0.account.relationship",
            "Input should be 'customer', 'prospect', 'partner', 'vendor' or 'other'",
        )
    ]


def test_a_hubspot_companys_type_is_its_account_type() -> None:
    company = fixture_json("hubspot", "crm-objects.json")[0]
    assert company["objectType"] == "companies"
    typed = {**company, "properties": {**company["properties"], "type": "RESELLER"}}
    url = "https://ingest.example.com/v1/webhooks/hubspot/acme"
    (account,) = ADAPTERS["hubspot"].parse(make_request(dumps([typed]), url=url), CONFIG).entities
    (untyped,) = ADAPTERS["hubspot"].parse(make_request(dumps([company]), url=url), CONFIG).entities
    assert isinstance(account, AccountV1)
    assert isinstance(untyped, AccountV1)
    assert (account.account_type, account.relationship) == ("RESELLER", "partner")
    assert (untyped.account_type, untyped.relationship) == (None, None)


def _sf_account(*fields: str) -> bytes:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
 <soapenv:Body>
  <notifications xmlns="http://soap.sforce.com/2005/09/outbound">
   <OrganizationId>00D5j00000ABCDEEA2</OrganizationId>
   <Notification>
    <Id>04l5j00000Gx7R9AAK</Id>
    <sObject xsi:type="sf:Account" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">
     <sf:Id>0015j00000ZkM4iAAF</sf:Id>
     <sf:Name>Channel Co</sf:Name>
     <sf:Website>https://channel.example</sf:Website>
     <sf:LastModifiedDate>2026-11-03T09:00:00.000Z</sf:LastModifiedDate>
     {"".join(fields)}
    </sObject>
   </Notification>
  </notifications>
 </soapenv:Body>
</soapenv:Envelope>""".encode()


def test_a_salesforce_accounts_type_is_its_account_type() -> None:
    adapter = ADAPTERS["salesforce"]
    (account,) = adapter.parse(
        make_request(_sf_account("<sf:Type>Channel Partner / Reseller</sf:Type>")), CONFIG
    ).entities
    (untyped,) = adapter.parse(make_request(_sf_account()), CONFIG).entities
    assert isinstance(account, AccountV1)
    assert isinstance(untyped, AccountV1)
    assert (account.account_type, account.relationship) == ("Channel Partner / Reseller", "partner")
    assert (untyped.account_type, untyped.relationship) == (None, None)
