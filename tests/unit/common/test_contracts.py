"""Topic contracts: exported schemas are current, every topic has a valid example, ids are deterministic."""

from __future__ import annotations

import copy
import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import jsonschema
import orjson
import pytest
from pydantic import BaseModel

from libs.common.contracts.activities import ActivityIn, ActivityIngestedV1, activity_id_for
from libs.common.contracts.envelope import Envelope, InvalidMessage, check_tenant, decode_body, encode_body
from libs.common.contracts.export import SCHEMA_DIR, render, topic_schemas
from libs.common.topics import ACTIVITY_INGESTED, REGISTRY, physical_names

EXAMPLES = Path(SCHEMA_DIR).parent / "examples"


#: Every payload a topic carries: each topic's own, and its other event types' (``variants``).
PAYLOADS = [
    *((topic.name, topic.payload) for topic in REGISTRY),
    *((variant.name, variant.payload) for topic in REGISTRY for variant in topic.variants),
]


@pytest.mark.parametrize(("name", "payload"), PAYLOADS, ids=[name for name, _ in PAYLOADS])
def test_exported_schema_is_current(name: str, payload: type[BaseModel]) -> None:
    checked_in = (SCHEMA_DIR / f"{name}.json").read_bytes()
    assert checked_in == render(topic_schemas()[name]), "run `make schemas` and commit the result"


@pytest.mark.parametrize(("name", "payload"), PAYLOADS, ids=[name for name, _ in PAYLOADS])
def test_example_validates_against_model_and_schema(name: str, payload: type[BaseModel]) -> None:
    example = orjson.loads((EXAMPLES / f"{name}.json").read_bytes())
    payload.model_validate(example)
    jsonschema.validate(example, topic_schemas()[name])


def test_topic_names_are_kebab_case_with_dlq_twins() -> None:
    names = physical_names("")
    assert names == [
        "webhook-received",
        "activity-ingested",
        "activity-ingested-dlq",
        "crm-entity-changed",
        "crm-entity-changed-dlq",
        "attribution-overridden",
        "attribution-overridden-dlq",
        "activity-attributed",
        "activity-attributed-dlq",
        "settings-changed",
        # Published for integrations; nothing in the system consumes it, so no dead letters.
        "insight-changed",
    ]
    assert physical_names("t1.")[0] == "t1.webhook-received"


def test_activity_id_is_deterministic_per_tenant_source_and_external_id() -> None:
    first = activity_id_for("acme", "twilio", "CA1")
    assert first == activity_id_for("acme", "twilio", "CA1")
    assert first != activity_id_for("acme", "aircall", "CA1")
    assert first != activity_id_for("globex", "twilio", "CA1")
    assert first.version == 5
    assert isinstance(first, uuid.UUID)


@pytest.mark.parametrize("external_id", ["CA1", "", "é-ü 漢字", "x" * 300, "a\x1fb"])
def test_activity_id_is_the_rfc_4122_name_based_uuid(external_id: str) -> None:
    name = f"acme\x1ftwilio\x1f{external_id}"
    expected = uuid.uuid5(uuid.UUID("5b0f8a52-7d0e-4c7a-9b1a-2f6f4f3e9a10"), name)
    derived = activity_id_for("acme", "twilio", external_id)
    assert (derived, str(derived), derived.variant) == (expected, str(expected), uuid.RFC_4122)
    assert (derived.is_safe, hash(derived), derived.bytes) == (
        expected.is_safe,
        hash(expected),
        expected.bytes,
    )
    assert copy.deepcopy(derived) == expected


def test_activity_ids_derived_in_a_row_are_each_the_rfc_4122_name_based_uuid() -> None:
    # The namespace's hash state is shared and copied per id: no id leaves anything in it.
    namespace = uuid.UUID("5b0f8a52-7d0e-4c7a-9b1a-2f6f4f3e9a10")
    names = [("acme", "bench", f"b-{n}" * (n % 7)) for n in range(200)]
    assert [activity_id_for(*name) for name in names] == [
        uuid.uuid5(namespace, "\x1f".join(name)) for name in names
    ]


def test_envelope_headers_carry_each_envelopes_own_time_even_when_times_are_shared() -> None:
    shared = datetime(2026, 11, 24, 16, 0, 0, 250_000, tzinfo=UTC)
    same_instant_elsewhere = shared.astimezone(timezone(timedelta(hours=2)))
    times = [shared, shared, same_instant_elsewhere, shared, datetime(2026, 11, 24, 16, 0, tzinfo=UTC)]

    headers = [
        dict(Envelope(id=f"e-{n}", source="/s", type="t", subject="s", tenant="acme", time=t).to_headers())
        for n, t in enumerate(times)
    ]

    assert [h["ce_time"] for h in headers] == [
        b"2026-11-24T16:00:00.250000+00:00",
        b"2026-11-24T16:00:00.250000+00:00",
        b"2026-11-24T18:00:00.250000+02:00",
        b"2026-11-24T16:00:00.250000+00:00",
        b"2026-11-24T16:00:00+00:00",
    ]
    assert [h["ce_id"] for h in headers] == [b"e-0", b"e-1", b"e-2", b"e-3", b"e-4"]


def test_envelope_round_trips_through_binary_mode_headers() -> None:
    envelope = Envelope(
        id="e-1", source="/ingest/api", type=ACTIVITY_INGESTED.event_type, subject="s", tenant="acme"
    )
    headers = envelope.to_headers()
    assert dict(headers)["ce_specversion"] == b"1.0"
    assert dict(headers)["content-type"] == b"application/json"
    assert Envelope.from_headers(headers) == envelope


def test_our_headers_read_by_position_are_what_any_order_of_them_reads() -> None:
    """``to_headers``' own order is read by position and its time remembered; any other order,
    a repeated header (the last wins), a bad byte or a bad time reads as the general way says."""
    times = [datetime(2026, 11, 24, 15, tzinfo=UTC), datetime(2026, 11, 24, 15, 0, 0, 1, tzinfo=UTC)]
    for time in [*times, times[0], times[0], times[1]]:
        envelope = Envelope(id="e-1", source="/ingest/api", type="t", subject="s", tenant="acme", time=time)
        headers = envelope.to_headers()
        assert Envelope.from_headers(headers) == envelope
        assert Envelope.from_headers(list(reversed(headers))) == envelope
        assert Envelope.from_headers(headers).time == time
    ours = Envelope(id="e-1", source="/a", type="t", subject="s", tenant="acme", time=times[1]).to_headers()
    names = [name for name, _ in ours]
    repeated = [*ours[:1], ("ce_id", b"e-0"), *ours[1:]]
    assert Envelope.from_headers(repeated).id == "e-1"
    assert Envelope.from_headers([*ours[:7], ("ce_id", b"e-2")]).id == "e-2"  # 8 headers, not ours
    for name, value, reason in [
        ("ce_id", b"\xff", "header ce_id is not UTF-8"),
        ("ce_tenant", b"\xfe", "header ce_tenant is not UTF-8"),
        ("ce_time", b"yesterday", "ce_time is not an ISO 8601 timestamp"),
    ]:
        bad = [(n, value if n == name else v) for n, v in ours]
        assert [n for n, _ in bad] == names
        with pytest.raises(InvalidMessage) as read:
            Envelope.from_headers(bad)
        assert str(read.value) == reason


def test_envelope_without_required_headers_is_poison() -> None:
    with pytest.raises(InvalidMessage, match="ce_id, ce_source"):
        Envelope.from_headers([("ce_type", b"x"), ("ce_time", b"2026-01-01T00:00:00+00:00")])


def test_undecodable_and_invalid_bodies_are_poison() -> None:
    example = orjson.loads((EXAMPLES / "activity-ingested.json").read_bytes())
    model = ACTIVITY_INGESTED.payload
    assert decode_body(model, encode_body(model.model_validate(example))) == model.model_validate(example)
    with pytest.raises(InvalidMessage, match="not JSON"):
        decode_body(model, b"\xff{")
    with pytest.raises(InvalidMessage, match="not a valid ActivityIngestedV1"):
        decode_body(model, orjson.dumps({**example, "kind": "fax"}))
    with pytest.raises(InvalidMessage, match="empty"):
        decode_body(model, None)
    # The dead letter's reason names the one bad field, not also its now-empty container.
    nul_name = [{"email": "a@x.example", "name": "Bo\x00", "role": "caller"}]
    with pytest.raises(InvalidMessage) as caught:
        decode_body(model, orjson.dumps({**example, "participants": nul_name}))
    assert str(caught.value) == (
        "body is not a valid ActivityIngestedV1: "
        "participants.0.name: must not contain a control character (U+0000 at position 2)"
    )


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"occurred_at": "2026-11-02T15:04:05"}, "timezone"),
        ({"kind": "email", "outcome": "connected"}, "not valid for a email"),
        ({"participants": []}, "at least 1"),
        ({"participants": [{"role": "to"}]}, "email or a phone"),
        ({"participants": [{"email": "not-an-address", "role": "to"}]}, "not an email address"),
        ({"duration_seconds": -1}, "greater than or equal to 0"),
    ],
)
def test_canonical_activity_rejects_with_a_reason(change: dict[str, object], reason: str) -> None:
    base = {
        "source": "api",
        "external_id": "x-1",
        "kind": "call",
        "direction": "outbound",
        "outcome": "connected",
        "occurred_at": "2026-11-02T15:04:05Z",
        "participants": [{"phone": "+14155550001", "role": "caller"}],
    }
    with pytest.raises(ValueError, match=reason):
        ActivityIn.model_validate({**base, **change})


def test_canonical_activity_lower_cases_emails() -> None:
    activity = ActivityIn.model_validate(
        {
            "source": "api",
            "external_id": "x-1",
            "kind": "email",
            "direction": "outbound",
            "outcome": "sent",
            "occurred_at": "2026-11-02T15:04:05+01:00",
            "participants": [{"email": " Ana@Seller.Example ", "role": "from"}],
        }
    )
    assert activity.participants[0].email == "ana@seller.example"


def test_a_ce_tenant_that_is_not_the_payloads_tenant_is_poison() -> None:
    example = orjson.loads((EXAMPLES / "activity-ingested.json").read_bytes())
    payload = ActivityIngestedV1.model_validate(example)
    envelope = Envelope(
        id="e-1",
        source="/ingest/api",
        type=ACTIVITY_INGESTED.event_type,
        subject="s",
        tenant=payload.tenant_id,
    )
    check_tenant(envelope, payload)  # the same tenant: accepted
    for header in ("ghost", ""):
        with pytest.raises(
            InvalidMessage, match=f"ce_tenant '{header}' does not match the payload's tenant_id"
        ):
            check_tenant(Envelope(id="e-1", source="/s", type="t", subject="s", tenant=header), payload)


REP_ENTITY = {"entity_type": "rep", "id": "rep-1", "name": "Ana", "updated_at": "2026-11-01T09:00:00Z"}
REP_EVENT = {"tenant_id": "acme", "source": "salesforce", "entity": REP_ENTITY}


def test_a_reps_role_is_an_additive_field_of_crm_entity_changed_v1() -> None:
    from libs.common.contracts.crm import CrmEntityChangedV1, RepV1

    schema = topic_schemas()["crm-entity-changed"]
    # An event an older producer wrote (no role) still decodes: the rep has no role.
    jsonschema.validate(REP_EVENT, schema)
    older = CrmEntityChangedV1.model_validate(REP_EVENT).entity
    assert isinstance(older, RepV1)
    assert older.role is None

    with_role = {**REP_EVENT, "entity": {**REP_ENTITY, "role": "SDR"}}
    jsonschema.validate(with_role, schema)
    rep = CrmEntityChangedV1.model_validate(with_role).entity
    assert isinstance(rep, RepV1)
    assert rep.role == "SDR"
    assert RepV1.model_validate({**REP_ENTITY, "role": "  Account Executive "}).role == "Account Executive"


def test_a_blank_role_is_no_role() -> None:
    """An export's empty column: the rep is accepted without a role (a role goal, which names a
    role, still refuses a blank one)."""
    from libs.common.contracts.crm import RepV1

    assert [RepV1.model_validate({**REP_ENTITY, "role": role}).role for role in ("", "   ", None)] == [
        None
    ] * 3


@pytest.mark.parametrize("role", ["SDR\x00", "x" * 129, " \x00 "])
def test_an_unstorable_role_is_refused_naming_the_field(role: str) -> None:
    from pydantic import ValidationError

    from libs.common.contracts.crm import RepV1

    with pytest.raises(ValidationError) as caught:
        RepV1.model_validate({**REP_ENTITY, "role": role})
    assert [e["loc"] for e in caught.value.errors()] == [("role",)]
