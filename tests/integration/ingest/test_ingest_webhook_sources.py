"""Every vendor source end to end against the embedded broker: a valid delivery, a redelivery,
a bad signature, an expired timestamp (where the vendor signs one) and a malformed body; then
exactly what reached the topics.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.settings import DatabaseSettings, KafkaSettings
from services.ingest.domain.capture import capture_body

from .ingest_integration_support import (
    NOW_SECONDS,
    ORGANIZATION_ID,
    SECRETS,
    activities_on_topic,
    endpoint,
    entities_on_topic,
    expected_activity,
    fixture,
    ingest_client,
    person,
    raw_on_topic,
    setup_tenant,
    sign,
)

ANA = "ana.seller@acme.example"
BO = "bo.buyer@globex.example"


@dataclass(frozen=True)
class Case:
    source: str
    body: bytes
    activities: list[dict[str, Any]]
    #: Entity (type, id) pairs published to crm-entity-changed.
    entities: list[tuple[str, str]] = field(default_factory=list)
    #: The header or body field named when the signature is wrong, and a body carrying a wrong credential.
    signature_field: str = ""
    forged_body: bytes | None = None
    #: The field named when the signed timestamp is an hour old; None when the vendor signs no time.
    timestamp_field: str | None = None


CASES = [
    Case(
        "twilio",
        fixture("twilio", "completed.txt"),
        [
            expected_activity(
                "twilio",
                "CA5f1c3b0a7e9d4c2b8a6f0e1d2c3b4a59",
                "call",
                "outbound",
                "connected",
                "2026-11-24T15:10:08Z",
                312,
                [person("caller", phone="+16505551234"), person("callee", phone="+14155552671")],
                3,
            )
        ],
        signature_field="x-twilio-signature",
    ),
    Case(
        "aircall",
        fixture("aircall", "call.ended.json"),
        [
            expected_activity(
                "aircall",
                "812345678",
                "call",
                "outbound",
                "connected",
                "2026-11-24T15:00:00Z",
                312,
                [
                    person("caller", ANA, "+16505551234", "Ana Seller"),
                    person("callee", BO, "+33612345678", "Bo Buyer"),
                ],
                21795532745000,
            )
        ],
        signature_field="token",
        forged_body=fixture("aircall", "call.ended.json").replace(
            b"aircall-webhook-token-1", b"guessed-token"
        ),
    ),
    Case(
        "calendly",
        fixture("calendly", "invitee.created.json"),
        [
            expected_activity(
                "calendly",
                "https://api.calendly.com/scheduled_events/NEWEVENT000000002",
                "meeting",
                "outbound",
                "scheduled",
                "2026-11-26T15:00:00Z",
                1800,
                [
                    person("organizer", ANA, name="Ana Seller"),
                    person("attendee", BO, "+14155552671", "Bo Buyer"),
                ],
                1795511702000,
            )
        ],
        signature_field="calendly-webhook-signature",
        timestamp_field="calendly-webhook-signature",
    ),
    Case(
        "hubspot",
        fixture("hubspot", "calls.json"),
        [
            expected_activity(
                "hubspot",
                "40120001",
                "call",
                "outbound",
                "connected",
                "2026-11-24T13:30:00Z",
                312,
                [person("caller", ANA, "+16505551234"), person("callee", phone="+14155552671")],
                1795527372345,
                crm={"deal_id": "3301", "account_id": "5501", "contact_ids": ["901"], "owner_rep_id": "7701"},
            ),
            expected_activity(
                "hubspot",
                "40120002",
                "call",
                "outbound",
                "voicemail",
                "2026-11-24T13:50:00Z",
                25,
                [person("caller", ANA, "+16505551234"), person("callee", phone="+442071838750")],
                1795528260000,
                crm={"owner_rep_id": "7701"},
            ),
        ],
        entities=[("rep", "7701")],
        signature_field="x-hubspot-signature-v3",
        timestamp_field="x-hubspot-request-timestamp",
    ),
    Case(
        "salesforce",
        fixture("salesforce", "Task.xml"),
        [
            expected_activity(
                "salesforce",
                "00T5j00000Q1a2bEAB",
                "call",
                "outbound",
                "voicemail",
                "2026-11-24T10:14:19Z",  # completed 10:15:00, 41 s long
                41,
                [person("caller", ANA), person("callee", phone="+14155552671")],
                1795515302000,
                crm={
                    "deal_id": "0065j00000Lm4NoAAJ",
                    "account_id": "0015j00000ZkM3hAAF",
                    "contact_ids": ["0035j00000Hq9RsAAJ"],
                    "owner_rep_id": "0055j000004Vb8nAAC",
                },
            ),
            expected_activity(
                "salesforce",
                "00T5j00000Q1a2cEAB",
                "email",
                "outbound",
                "sent",
                "2026-11-24T11:00:00Z",
                0,
                [person("from", ANA), person("to", BO)],
                1795518005000,
                crm={
                    "account_id": "0015j00000ZkM3hAAF",
                    "contact_ids": ["0035j00000Hq9RsAAJ"],
                    "owner_rep_id": "0055j000004Vb8nAAC",
                },
            ),
        ],
        signature_field="token",
        forged_body=fixture("salesforce", "Task.xml").replace(
            ORGANIZATION_ID.encode(), b"00D000000000001EAA"
        ),
    ),
    Case(
        "google-calendar",
        fixture("google-calendar", "event.confirmed.json"),
        [
            expected_activity(
                "google-calendar",
                "7cbh8rpc10lrc0ckih9tafss99_20261124T090000Z",
                "meeting",
                "outbound",
                "held",
                "2026-11-24T09:00:00Z",
                1800,
                [
                    person("organizer", ANA, name="Ana Seller"),
                    {**person("attendee", BO, name="Bo Buyer"), "response_status": "accepted"},
                ],
                1795178096789,
                thread_id="7cbh8rpc10lrc0ckih9tafss99",
                ical_uid="7cbh8rpc10lrc0ckih9tafss99@google.com",
            )
        ],
        signature_field="webhook-signature",
        timestamp_field="webhook-timestamp",
    ),
    Case(
        "microsoft-graph",
        fixture("microsoft-graph", "event.json"),
        [
            expected_activity(
                "microsoft-graph",
                "AAMkAGIAAAoZDOFAAA=",
                "meeting",
                "outbound",
                "held",
                "2026-11-23T13:00:00Z",
                3600,
                [person("organizer", ANA, name="Ana Seller"), person("attendee", BO, name="Bo Buyer")],
                1795426200123,
                ical_uid="040000008200E00074C5B7101A82E00800000000D02AB1F5E0A5D801000000000000000010000000F3C1",
            )
        ],
        signature_field="webhook-signature",
        timestamp_field="webhook-timestamp",
    ),
    Case(
        "gmail",
        fixture("gmail", "message.json"),
        [
            expected_activity(
                "gmail",
                "<CAF=8x3mQ1v7yK2pE9@mail.gmail.com>",
                "email",
                "outbound",
                "sent",
                "2026-11-24T11:05:00Z",
                0,
                [
                    person("from", ANA, name="Ana Seller"),
                    person("to", BO, name="Buyer, Bo"),
                    person("to", "cy.cfo@globex.example"),
                    person("cc", "sam.se@acme.example", name="Sam SE"),
                ],
                1795518300000,
                thread_id="18c5f09988776655",
            )
        ],
        signature_field="webhook-signature",
        timestamp_field="webhook-timestamp",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.source for c in CASES])
async def test_each_source_publishes_exactly_its_canonical_records_once(
    case: Case, kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    await setup_tenant(db_engine)
    secret, previous_secret = SECRETS.get(case.source, ("", ""))
    url = endpoint(case.source, secret)
    async with ingest_client(kafka_settings, database_settings) as client:
        first = await client.post(url, content=case.body, headers=sign(case.source, case.body, secret))
        # A redelivery signed with the other secret still valid during a rotation.
        again = await client.post(
            endpoint(case.source, previous_secret or secret),
            content=case.body,
            headers=sign(case.source, case.body, previous_secret or secret),
        )

        forged = case.forged_body or case.body
        bad_signature = await client.post(
            endpoint(case.source, "wrong-secret"),
            content=forged,
            headers=sign(case.source, forged, "wrong-secret"),
        )
        malformed_body = b"{not json"
        malformed = await client.post(
            url, content=malformed_body, headers=sign(case.source, malformed_body, secret)
        )
        expired = None
        if case.timestamp_field is not None:
            expired = await client.post(
                url, content=case.body, headers=sign(case.source, case.body, secret, NOW_SECONDS - 3_600)
            )

    n = len(case.activities)
    if case.source == "salesforce":
        # Salesforce retries until it receives the SOAP Ack.
        for response in (first, again):
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/xml")
            assert b"<Ack>true</Ack>" in response.content
    else:
        assert first.status_code == 200, first.text
        assert first.json() == {
            "accepted": n,
            "duplicates": 0,
            "excluded": 0,
            "automated": 0,
            "activity_ids": [a["activity_id"] for a in case.activities],
            "entities": len(case.entities),
            "deleted": 0,
            "ignored": [],
        }
        assert again.status_code == 200, again.text
        assert again.json()["accepted"] == n
        assert again.json()["duplicates"] == n
        assert again.json()["activity_ids"] == []

    assert bad_signature.status_code == 401
    assert bad_signature.headers["content-type"] == "application/problem+json"
    assert bad_signature.json()["errors"][0]["field"] == case.signature_field
    assert malformed.status_code == 400, malformed.text
    assert malformed.json()["errors"] == [
        {"in": "body", "field": "body", "reason": malformed.json()["errors"][0]["reason"]}
    ]
    if expired is not None:
        assert expired.status_code == 401
        assert expired.json()["errors"][0] == {
            "in": "header",
            "field": case.timestamp_field,
            "reason": "timestamp outside the accepted window",
        }

    # Exactly one copy of each activity, subjects stripped (the tenant did not opt in), and
    # nothing from the refused deliveries.
    assert await activities_on_topic(kafka_settings) == case.activities
    entities = await entities_on_topic(kafka_settings)
    assert [(e["entity"]["entity_type"], e["entity"]["id"]) for e in entities] == case.entities * 2
    raw = await raw_on_topic(kafka_settings)
    assert [(r["source"], r["adapter_version"], r["body"]) for r in raw] == [
        # Kept as received, but for content (the tenant did not opt in) and the shared secret some
        # vendors put in the body: what keep_of_delivery allows.
        (case.source, f"{case.source}/1", capture_body(case.source, case.body, keep_content=False).decode())
    ] * 2
    for captured in raw:
        assert not {"x-twilio-signature", "calendly-webhook-signature", "webhook-signature"} & set(
            captured["headers"]
        )
        assert not any(h.startswith(("x-hubspot-signature", "x-zm-signature")) for h in captured["headers"])
