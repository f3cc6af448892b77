"""A vendor's phone field listing thousands of numbers: bounded work, the record kept.

The CRM sync route caps a phone value at 40 characters; a vendor webhook's phone property
(HubSpot's ``phone``, Salesforce's ``Phone``) reaches ``phones.parse_phones_in`` as sent, up to
the body limit. Each listed part was read (a ``phonenumbers`` parse per part, per region) before
anything looked at their count: a 99,000-character field of 9,000 numbers cost 9,000 parses on
the event loop every tenant's deliveries share, for a record that can hold 50 phones.
"""

from __future__ import annotations

import json

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common import phones
from libs.common.settings import DatabaseSettings, KafkaSettings

from .ingest_integration_support import (
    SECRETS,
    entities_on_topic,
    fixture_json,
    ingest_client,
    setup_tenant,
    sign,
    url_for,
)

#: 9,000 distinct valid US numbers, slash-separated: 98,999 characters.
LISTED = "/".join(f"(415) 55{i // 10_000}-{i % 10_000:04d}" for i in range(9_000))


async def test_a_phone_field_of_thousands_of_numbers_costs_a_bounded_number_of_reads(
    kafka_settings: KafkaSettings,
    database_settings: DatabaseSettings,
    db_engine: AsyncEngine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await setup_tenant(db_engine)
    reads: list[str] = []
    counted = phones.parse_phone

    def parse_phone(raw: str, region: str) -> phones.ParsedPhone | phones.RefusedPhone:
        reads.append(raw)
        return counted(raw, region)

    monkeypatch.setattr(phones, "parse_phone", parse_phone)
    objects = fixture_json("hubspot", "crm-objects.json")
    contact = next(o for o in objects if o["objectType"] == "contacts")
    contact["properties"]["phone"] = LISTED
    body = json.dumps(objects).encode()
    headers = {"content-type": "application/json", **sign("hubspot", body, SECRETS["hubspot"][0])}
    async with ingest_client(kafka_settings, database_settings) as client:
        response = await client.post(url_for("hubspot"), content=body, headers=headers)
    assert response.status_code == 200, response.text[:500]
    assert response.json()["entities"] == 4
    # The field is refused as one (too long) before its parts are read: no read per listed number
    # (9,000 before), only the mobile's.
    assert reads == ["+33 6 12 34 56 78"]
    stored = [e for e in await entities_on_topic(kafka_settings) if e["entity"]["id"] == "901"]
    assert len(stored) == 1
    # The contact is kept with its other phone (its mobile), the listing dropped.
    assert stored[0]["entity"]["phones"] == ["+33612345678"]


async def test_a_phone_field_longer_than_a_stored_phone_keeps_its_numbers_and_the_batch(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """A HubSpot phone property of 41-64 characters (two numbers with a label, or a UK number
    a US tenant cannot read) is read, but its raw form was kept as sent in ``raw_phones`` /
    ``unread_phones``, whose values the contract caps at 40: the contact failed its model and the
    whole delivery was a 422 (every record of the batch lost for one contact's label)."""
    await setup_tenant(db_engine)
    objects = fixture_json("hubspot", "crm-objects.json")
    contact = next(o for o in objects if o["objectType"] == "contacts")
    contact["properties"]["phone"] = "+1 415 555 0107 / +1 415 555 0108 (office)"
    contact["properties"]["mobilephone"] = "020 7946 0954 / 07700 900124 (UK mobile)"
    body = json.dumps(objects).encode()
    headers = {"content-type": "application/json", **sign("hubspot", body, SECRETS["hubspot"][0])}
    async with ingest_client(kafka_settings, database_settings) as client:
        response = await client.post(url_for("hubspot"), content=body, headers=headers)
    assert response.status_code == 200, response.text[:500]
    assert response.json()["entities"] == 4
    stored = [e for e in await entities_on_topic(kafka_settings) if e["entity"]["id"] == "901"]
    assert len(stored) == 1
    entity = stored[0]["entity"]
    assert entity["phones"] == ["+14155550107", "+14155550108"]
    # What was sent does not fit a stored raw form: the number as read stands for it.
    assert entity["raw_phones"] == ["+14155550107", "+14155550108"]
    # Unread, and too long to keep for a re-read: dropped (a stored raw form is at most 40).
    assert entity.get("unread_phones", []) == []
