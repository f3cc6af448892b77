"""The batch hot path keeps its contract: published bytes equal the contract model's JSON, a
valid batch parses the same in one pass, a faulty one still names every bad index."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from libs.common.contracts.activities import (
    ActivityIn,
    ActivityIngestedV1,
    CrmReferences,
    Participant,
    activity_json,
)
from libs.common.web import Problem
from services.ingest.domain.meetings import rounded_start
from services.ingest.domain.normalize import domain_matches, email_domain, is_internal
from services.ingest.handlers import ingested_timestamp, parse_activity_batch, parse_crm_sync, to_ingested
from services.ingest.settings import IngestOptions
from tests.unit.ingest.address_shapes import ODD_SHAPES, shapes_around

NOW = datetime(2026, 11, 24, 16, 0, 0, 250_000, tzinfo=UTC)


def activity(**changes: Any) -> dict[str, Any]:
    return {
        "source": "api",
        "external_id": "call-1",
        "kind": "call",
        "direction": "outbound",
        "outcome": "connected",
        "occurred_at": "2026-11-02T15:04:05Z",
        "duration_seconds": 312,
        "participants": [
            {"email": "Ana@Acme.example", "role": "caller", "name": "Ana Ñúñez"},
            {"phone": "+14155550100", "role": "callee"},
        ],
        **changes,
    }


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"occurred_at": "2026-11-02T15:04:05.123456+02:00", "subject": 'Re: "pricing"', "revision": 7},
        {"occurred_at": "2026-11-02T15:04:05+00:00", "thread_id": "t-1", "ical_uid": "uid@cal"},
        {"occurred_at": "2026-11-02T09:34:05.5-05:30", "crm": {"deal_id": "d-1", "contact_ids": ["c-1"]}},
    ],
)
def test_the_published_body_is_the_contract_models_json_byte_for_byte(changes: dict[str, Any]) -> None:
    source = ActivityIn.model_validate_json(json.dumps(activity(**changes)))
    activity_id = uuid.UUID("2f1d1d2e-8f43-4a34-9a3f-0d1e4c1c7b10")

    published = to_ingested(
        source, "acme", ingested_timestamp(NOW), "canonical/1", automated=True, activity_id=activity_id
    ).body()

    expected = ActivityIngestedV1(
        **{**source.model_dump(), "occurred_at": source.occurred_at.astimezone(UTC)},
        tenant_id="acme",
        activity_id=activity_id,
        ingested_at=NOW,
        automated=True,
        adapter_version="canonical/1",
    ).model_dump_json()
    assert published == expected.encode()


def test_a_valid_batch_parses_in_one_pass_to_the_same_activities() -> None:
    items = [activity(external_id=f"call-{n}", revision=n) for n in range(3)]

    parsed = parse_activity_batch(json.dumps({"activities": items}).encode(), IngestOptions(), NOW)

    assert parsed == [ActivityIn.model_validate(item) for item in items]


def test_a_faulty_batch_names_every_bad_index_whatever_the_kind_of_fault() -> None:
    items = [
        activity(external_id="ok"),
        activity(external_id="future", occurred_at="2026-11-26T16:00:01Z"),
        activity(external_id="bad-kind", kind="fax"),
        activity(external_id="bad-phone", participants=[{"phone": "12345", "role": "callee"}]),
    ]

    with pytest.raises(Problem) as refused:
        parse_activity_batch(json.dumps({"activities": items}).encode(), IngestOptions(), NOW)

    assert refused.value.status == 422
    assert [e["field"] for e in refused.value.errors] == [
        "activities.1.occurred_at",
        "activities.2.kind",
        "activities.3.participants.0.phone",
    ]


def test_one_bad_item_is_one_error_not_also_an_empty_container() -> None:
    # pydantic-core also reported "participants" / "entities": "Tuple should have at least 1 item
    # after validation, not 0" when the only item failed: a wrong reason next to the right one.
    nul_name = [{"email": "a@x.example", "name": "Bo\x00", "role": "caller"}]
    with pytest.raises(Problem) as refused:
        parse_activity_batch(
            json.dumps({"activities": [activity(participants=nul_name)]}).encode(), IngestOptions(), NOW
        )
    assert refused.value.errors == [
        {
            "in": "body",
            "field": "activities.0.participants.0.name",
            "reason": "must not contain a control character (U+0000 at position 2)",
        }
    ]
    rep = {"entity_type": "rep", "id": "r\x00", "updated_at": "2026-11-02T15:04:05Z"}
    with pytest.raises(Problem) as refused:
        parse_crm_sync(json.dumps({"entities": [rep]}).encode())
    assert (
        refused.value.detail
        == "entities.0.rep.id: must not contain a control character (U+0000 at position 1)"
    )
    with pytest.raises(Problem) as refused:
        parse_crm_sync(json.dumps({"entities": []}).encode())
    assert refused.value.detail == "entities: Tuple should have at least 1 item after validation, not 0"


@pytest.mark.parametrize(
    ("domain", "domains", "matches"),
    [
        ("acme.example", ("acme.example",), True),
        ("EU.Acme.Example", frozenset({"acme.example"}), True),
        ("eu.acme.example", ["ACME.example"], True),
        ("notacme.example", ("acme.example",), False),
        ("acme.example.org", ("acme.example",), False),
        ("example", ("acme.example",), False),
        ("acme.example", (), False),
    ],
)
def test_a_domain_matches_itself_and_its_subdomains_only(domain: str, domains: Any, matches: bool) -> None:
    assert domain_matches(domain, domains) is matches


def test_an_address_is_internal_as_its_domain_matches_each_parent_domain_in_turn() -> None:
    """``is_internal`` over a tuple or frozenset (``in_domains``: one ``endswith`` over the
    domains' suffixes) against ``domain_matches`` of the address's domain, which looks each
    parent domain up in turn; and a rounded start is the same in any zone."""
    domains = ("Acme.Example", "acme.co.uk", ".dotted.example", "@at.example", "a@b.example", "", "co")
    shapes = [*ODD_SHAPES, "BO@ACME.CO.UK"]
    shapes += shapes_around(["acme.example", "acme.co.uk", "dotted.example", "at.example", "b.example"])
    for given in (domains, frozenset(domains)):
        found = [a for a in shapes if is_internal(a, given)]
        assert found == [a for a in shapes if domain_matches(email_domain(a), list(given))]
        assert 40 < len(found) < len(shapes) - 40
    assert not is_internal("bo@acme.example", ())
    for zone in (UTC, timezone(timedelta(hours=-7, minutes=-30)), timezone(timedelta(hours=13))):
        for minute, second in ((7, 29), (7, 30), (52, 30), (0, 0)):
            at = datetime(2026, 11, 24, 14, minute, second, tzinfo=UTC)
            assert rounded_start(at.astimezone(zone)) == rounded_start(at)


#: What a subject may hold that JSON writers could escape differently: every character allowed.
_ODD = '\t\n\r"\\/\x7f\x80\x9f\u00e9\u2028\u2029\ufeff\U0001f600'


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"occurred_at": "2026-11-02T15:04:05.123456+02:00", "subject": 'Re: "pricing"\tq\n\r', "revision": 7},
        {"thread_id": "t-\u00e9", "ical_uid": "uid@cal", "duration_seconds": 0, "subject": None},
        {"crm": {"deal_id": "d-1", "account_id": "a", "contact_ids": ["c-1", "c-2"], "owner_rep_id": "r"}},
        {"crm": {"owner_identities": ["sip:ana@acme.sip.twilio.com", "ana"]}, "external_id": "x" * 256},
        {
            "kind": "meeting",
            "outcome": "held",
            "direction": "internal",
            "participants": [
                {"email": "ana@acme.example", "role": "organizer", "response_status": "accepted"},
                {"phone": "+14155550100", "extension": "12", "name": "Bo \u00d1", "role": "attendee"},
                {
                    "email": "cy@buyer.example",
                    "phone": "+14155550101",
                    "role": "attendee",
                    "response_status": "DECLINED",
                },
            ],
        },
    ],
)
def test_an_activity_is_written_as_its_models_json_byte_for_byte(changes: dict[str, Any]) -> None:
    source = ActivityIn.model_validate(activity(**changes))
    assert activity_json(source) == source.__pydantic_serializer__.to_json(source)


def test_an_activity_with_odd_text_is_written_as_its_models_json_byte_for_byte() -> None:
    source = ActivityIn.model_validate(activity(subject=_ODD))
    assert activity_json(source) == source.__pydantic_serializer__.to_json(source)


def test_an_activity_is_written_with_every_field_of_its_models() -> None:
    # A field added to any of the three models must be written by ``activity_json`` too.
    everyone = {
        "email": "a@b.example",
        "phone": "+14155550100",
        "extension": "1",
        "name": "A",
        "role": "callee",
    }
    crm = {
        "deal_id": "d",
        "account_id": "a",
        "contact_ids": ["c"],
        "owner_rep_id": "r",
        "owner_identities": ["i"],
    }
    written = json.loads(
        activity_json(
            ActivityIn.model_validate(
                activity(participants=[{**everyone, "response_status": "accepted"}], crm=crm, subject="s")
            )
        )
    )
    assert set(written) == set(ActivityIn.model_fields)
    assert set(written["participants"][0]) == set(Participant.model_fields)
    assert set(written["crm"]) == set(CrmReferences.model_fields)
