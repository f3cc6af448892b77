from __future__ import annotations

from datetime import UTC, datetime

import pytest

from libs.common.contracts.activities import (
    ActivityKind,
    Direction,
    Outcome,
    Participant,
    ParticipantRole,
)
from services.ingest.domain.webhooks import ADAPTERS, WebhookRejected

from .ingest_webhook_helpers import CONFIG, dumps, fixture, fixture_json, make_request

adapter = ADAPTERS["gmail"]


def test_sent_message_is_an_outbound_email() -> None:
    (email,) = adapter.parse(make_request(fixture("gmail", "message.json")), CONFIG).activities
    assert email.source == "gmail"
    assert email.external_id == "<CAF=8x3mQ1v7yK2pE9@mail.gmail.com>"
    assert email.kind is ActivityKind.EMAIL
    assert (email.direction, email.outcome) == (Direction.OUTBOUND, Outcome.SENT)
    assert email.occurred_at == datetime(2026, 11, 24, 11, 5, tzinfo=UTC)
    assert email.thread_id == "18c5f09988776655"
    assert email.subject == "Proposal for Globex"
    assert email.revision == 1795518300000
    assert email.participants == (
        Participant(email="ana.seller@acme.example", name="Ana Seller", role=ParticipantRole.FROM),
        Participant(email="bo.buyer@globex.example", name="Buyer, Bo", role=ParticipantRole.TO),
        Participant(email="cy.cfo@globex.example", role=ParticipantRole.TO),
        Participant(email="sam.se@acme.example", name="Sam SE", role=ParticipantRole.CC),
    )


def test_message_from_outside_is_received() -> None:
    message = fixture_json("gmail", "message.json")
    message["labelIds"] = ["INBOX"]
    headers = message["payload"]["headers"]
    headers[4]["value"] = "bo.buyer@globex.example"
    headers[5]["value"] = "ana.seller@acme.example"
    (email,) = adapter.parse(make_request(dumps({"messages": [message]})), CONFIG).activities
    assert (email.direction, email.outcome) == (Direction.INBOUND, Outcome.RECEIVED)


def test_drafts_are_ignored() -> None:
    message = fixture_json("gmail", "message.json")
    message["labelIds"] = ["DRAFT"]
    result = adapter.parse(make_request(dumps(message)), CONFIG)
    assert result.activities == ()
    assert result.ignored == ("body 18c5f0a1b2c3d4e5: a draft was never sent",)


def test_missing_message_id_is_422() -> None:
    message = fixture_json("gmail", "message.json")
    message["payload"]["headers"] = [h for h in message["payload"]["headers"] if h["name"] != "Message-ID"]
    with pytest.raises(WebhookRejected) as caught:
        adapter.parse(make_request(dumps(message)), CONFIG)
    assert (caught.value.status_code, caught.value.field) == (422, "payload.headers.Message-ID")


def test_bad_internal_date_is_422() -> None:
    message = fixture_json("gmail", "message.json")
    message["internalDate"] = "yesterday"
    with pytest.raises(WebhookRejected) as caught:
        adapter.parse(make_request(dumps(message)), CONFIG)
    assert (caught.value.status_code, caught.value.field) == (422, "internalDate")


def test_a_sent_messages_blind_copies_are_bcc_participants() -> None:
    message = fixture_json("gmail", "message.json")
    message["payload"]["headers"].append(
        {"name": "Bcc", "value": "Log <log@crm.example>, dee@globex.example"}
    )
    (email,) = adapter.parse(make_request(dumps({"messages": [message]})), CONFIG).activities
    assert [(p.email, p.role) for p in email.participants if p.role is ParticipantRole.BCC] == [
        ("log@crm.example", ParticipantRole.BCC),
        ("dee@globex.example", ParticipantRole.BCC),
    ]


def test_a_blind_copy_to_the_crms_logging_address_is_no_participant() -> None:
    """Reps BCC HubSpot (or Email to Salesforce) to file the mail: a filing cabinet, not a person."""
    message = fixture_json("gmail", "message.json")
    message["payload"]["headers"].append(
        {"name": "Bcc", "value": "HubSpot <4711@BCC.hubspot.com>, emailtosalesforce@x9.na1.le.salesforce.com"}
    )
    (email,) = adapter.parse(make_request(dumps({"messages": [message]})), CONFIG).activities
    assert [p.email for p in email.participants] == [
        "ana.seller@acme.example",
        "bo.buyer@globex.example",
        "cy.cfo@globex.example",
        "sam.se@acme.example",
    ]
