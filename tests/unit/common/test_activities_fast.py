"""The msgspec decoder of ``activity-ingested`` against its contract, ``ActivityIngestedV1``.

Every sample is decoded both ways: whatever the fast path takes must be accepted by the contract
with equal values (same types, same instants and offsets) and encode to the contract's bytes,
and ``decode_ingested`` must accept exactly what the contract accepts, refusing the rest with the
contract's own reason.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import msgspec
import orjson
import pytest
from asyncpg.pgproto.pgproto import UUID as PgUUID
from pydantic import BaseModel

from libs.common.contracts.activities import (
    ActivityIngestedV1,
    ActivityKind,
    CrmReferences,
    Direction,
    Outcome,
    Participant,
    ParticipantRole,
)
from libs.common.contracts.activities_fast import (
    CrmReferencesStruct,
    Ingested,
    ParticipantStruct,
    as_contract,
    decode_fast,
    decode_ingested,
    encode_ingested,
    with_crm,
)
from libs.common.contracts.envelope import InvalidMessage, decode_body, encode_body
from libs.common.contracts.export import SCHEMA_DIR
from libs.common.topics import ACTIVITY_INGESTED
from spm.evaluation.attribution.world import generate_dataset
from tests.unit.common.fast_path_samples import OCCURRED, assert_same_value, at_time, common_samples, edit

EXAMPLE = (Path(SCHEMA_DIR).parent / "examples" / "activity-ingested.json").read_bytes()
FULL = encode_body(
    ActivityIngestedV1(
        tenant_id="acme",
        activity_id=uuid.UUID("00000000-0000-4000-8000-000000000001"),
        source="gmail",
        external_id="msg-1",
        kind=ActivityKind.EMAIL,
        direction=Direction.OUTBOUND,
        outcome=Outcome.SENT,
        occurred_at=datetime(2026, 11, 24, 15, 0, tzinfo=UTC),
        duration_seconds=12,
        participants=(
            Participant(email="ana@seller.example", name="Ana Adams", role=ParticipantRole.FROM),
            Participant(email="amy@acme.com", phone="+12125550101", role=ParticipantRole.TO),
            Participant(phone="+12125550100", role=ParticipantRole.CC),
        ),
        thread_id="thread-1",
        ical_uid="uid-1@acme.com",
        subject="Renewal: pricing",
        crm=CrmReferences(
            deal_id="deal-1", account_id="acc-1", contact_ids=("c-1", "c-2"), owner_rep_id="rep-1"
        ),
        revision=7,
        ingested_at=datetime(2026, 11, 24, 15, 0, 1, 123456, tzinfo=UTC),
        automated=True,
        adapter_version="gmail/2",
    )
)
MINIMAL = orjson.dumps(
    {
        "tenant_id": "acme",
        "activity_id": "00000000-0000-4000-8000-000000000002",
        "source": "api",
        "external_id": "x",
        "kind": "call",
        "direction": "inbound",
        "outcome": "no_answer",
        "occurred_at": OCCURRED,
        "participants": [{"phone": "+14155550001", "role": "callee"}],
        "ingested_at": "2026-11-24T15:00:01+05:30",
    }
)


def _edit(old: str, new: str) -> bytes:
    return edit(FULL, old, new)


def _time(value: str) -> bytes:
    return at_time(FULL, value)


# Samples as in ``fast_path_samples``: (name, body, "fast" | "contract" | "invalid").
SAMPLES: list[tuple[str, bytes, str]] = [
    ("example", EXAMPLE, "fast"),
    ("full", FULL, "fast"),
    ("minimal, defaults", MINIMAL, "fast"),
    *common_samples(FULL),
    ("a repeated key (the last wins)", _edit('"revision":7', '"revision":6,"revision":7'), "fast"),
    ("revision at bigint's maximum", _edit('"revision":7', '"revision":9223372036854775807'), "fast"),
    ("an astral character in a name", _edit('"Ana Adams"', '"Ana \U0001f600"'), "fast"),
    ("a non-ASCII email, lower case", _edit('"amy@acme.com"', '"amé@acme.com"'), "fast"),
    (
        "500 participants",
        _edit('"participants":[', '"participants":[' + '{"phone":"+1","role":"cc"},' * 497),
        "fast",
    ),
    (
        "null optional fields",
        _edit('"thread_id":"thread-1","ical_uid":"uid-1@acme.com"', '"thread_id":null,"ical_uid":null'),
        "fast",
    ),
    # Emails are normalised by the contract's own rule on both paths.
    (
        "an upper-case email (lower-cased by both, with the contract's own rule)",
        _edit('"amy@acme.com"', '"Amy@Acme.com"'),
        "fast",
    ),
    ("an email with spaces around (trimmed by both)", _edit('"amy@acme.com"', '" amy@acme.com "'), "fast"),
    # The contract accepts these; the fast path leaves them to it.
    ("a subject with a tab", _edit('"Renewal: pricing"', '"Renewal:\\tpricing"'), "contract"),
    ("a subject with a line break", _edit('"Renewal: pricing"', '"Renewal:\\npricing"'), "contract"),
    ("a no-break space in a name", _edit('"Ana Adams"', '"Ana\u00a0Adams"'), "contract"),
    ("a zero-width space in a thread", _edit('"thread-1"', '"thread\u200b1"'), "contract"),
    ("an escape anywhere", _edit('"msg-1"', '"msg\\u002d1"'), "contract"),
    # Both refuse.
    (
        "ingested in 2200",
        _edit('"ingested_at":"2026-11-24T15:00:01.123456Z"', '"ingested_at":"2200-01-01T00:00:00Z"'),
        "invalid",
    ),
    ("an outcome of another kind", _edit('"outcome":"sent"', '"outcome":"held"'), "invalid"),
    ("an unknown role", _edit('"role":"cc"', '"role":"bcc-list"'), "invalid"),
    (
        "a participant without address",
        _edit('{"email":null,"phone":"+12125550100"', '{"email":null,"phone":null'),
        "invalid",
    ),
    ("an email without a dot in its domain", _edit('"amy@acme.com"', '"amy@acme"'), "invalid"),
    ("an email with two @", _edit('"amy@acme.com"', '"amy@x@acme.com"'), "invalid"),
    ("an email of 321 characters", _edit('"amy@acme.com"', '"' + "a" * 312 + '@acme.com"'), "invalid"),
    ("an email of 320 characters", _edit('"amy@acme.com"', '"' + "a" * 311 + '@acme.com"'), "fast"),
    ("no participants", _edit('"participants":[', '"participants":[],"x":['), "invalid"),
    (
        "501 participants",
        _edit('"participants":[', '"participants":[' + '{"phone":"+1","role":"cc"},' * 498),
        "invalid",
    ),
    ("a phone of 41 characters", _edit('"+12125550100"', '"' + "1" * 41 + '"'), "invalid"),
    ("a name of 257 characters", _edit('"Ana Adams"', '"' + "n" * 257 + '"'), "invalid"),
    ("a thread of 513 characters", _edit('"thread-1"', '"' + "t" * 513 + '"'), "invalid"),
    ("a subject of 2,001 characters", _edit('"Renewal: pricing"', '"' + "s" * 2_001 + '"'), "invalid"),
    ("a subject with a NUL", _edit('"Renewal: pricing"', '"Renewal\\u0000"'), "invalid"),
    ("a NEL in an external id", _edit('"msg-1"', '"msg\u00851"'), "invalid"),
    ("a noncharacter in a contact id", _edit('"c-1"', '"c\ufdd01"'), "invalid"),
    ("an empty external id", _edit('"msg-1"', '""'), "invalid"),
    ("a source in upper case", _edit('"gmail"', '"Gmail"'), "invalid"),
    ("a source with a newline", _edit('"gmail"', '"gmail\\n"'), "invalid"),
    ("a source of 65 characters", _edit('"gmail"', '"' + "g" * 65 + '"'), "invalid"),
    ("tenant with a newline", _edit('"tenant_id":"acme"', '"tenant_id":"acme\\n"'), "invalid"),
    ("duration above a day", _edit('"duration_seconds":12', '"duration_seconds":86401'), "invalid"),
    ("duration 1.0", _edit('"duration_seconds":12', '"duration_seconds":1.0'), "invalid"),
    ("duration as a string", _edit('"duration_seconds":12', '"duration_seconds":"12"'), "invalid"),
    ("revision past bigint", _edit('"revision":7', '"revision":9223372036854775808'), "invalid"),
    ("automated as 1", _edit('"automated":true', '"automated":1'), "invalid"),
    ("an adapter version of 65 characters", _edit('"gmail/2"', '"' + "a" * 65 + '"'), "invalid"),
    ("an extra field", _edit('"revision":7', '"revision":7,"extra":1'), "invalid"),
    ("an extra CRM reference", _edit('"owner_rep_id":"rep-1"', '"owner_rep_id":"rep-1","x":1'), "invalid"),
    ("an extra participant field", _edit('"name":"Ana Adams"', '"name":"Ana Adams","x":1'), "invalid"),
    # An export's empty columns: none, read by the contract (``CrmReferences._blank_is_none``).
    ("null contact ids", _edit('"contact_ids":["c-1","c-2"]', '"contact_ids":null'), "contract"),
    ("a blank contact id", _edit('"contact_ids":["c-1","c-2"]', '"contact_ids":["c-1",""]'), "contract"),
    ("a blank owner rep id", _edit('"owner_rep_id":"rep-1"', '"owner_rep_id":" "'), "contract"),
    (
        "null CRM references",
        _edit(
            '"crm":{"deal_id":"deal-1","account_id":"acc-1","contact_ids":["c-1","c-2"],"owner_rep_id":"rep-1"}',
            '"crm":null',
        ),
        "contract",
    ),
    ("a null duration", _edit('"duration_seconds":12', '"duration_seconds":null'), "contract"),
    # A vendor's numeric ids are their text (``ActivityIn._numeric_id_is_text``).
    ("a numeric external id", _edit('"msg-1"', "12345"), "contract"),
    ("a numeric contact id", _edit('"contact_ids":["c-1","c-2"]', '"contact_ids":["c-1",2]'), "contract"),
    ("a numeric owner id", _edit('"owner_rep_id":"rep-1"', '"owner_rep_id":7701'), "contract"),
    ("no activity id", _edit('"activity_id"', '"activity"'), "invalid"),
    # A response status: ours on the fast path; a vendor's spelling, another case or null on the contract's.
    ("a declined participant", _edit('"role":"cc"', '"role":"cc","response_status":"declined"'), "fast"),
    ("needs_action", _edit('"role":"to"', '"role":"to","response_status":"needs_action"'), "fast"),
    ("Google's needsAction", _edit('"role":"cc"', '"role":"cc","response_status":"needsAction"'), "contract"),
    (
        "Graph's tentativelyAccepted",
        _edit('"role":"cc"', '"role":"cc","response_status":"tentativelyAccepted"'),
        "contract",
    ),
    ("DECLINED in upper case", _edit('"role":"cc"', '"role":"cc","response_status":"DECLINED"'), "contract"),
    ("a null response status", _edit('"role":"cc"', '"role":"cc","response_status":null'), "contract"),
    ("an unknown response status", _edit('"role":"cc"', '"role":"cc","response_status":"maybe"'), "invalid"),
    ("a response status as a number", _edit('"role":"cc"', '"role":"cc","response_status":1'), "invalid"),
]


def _contract(body: bytes | None) -> ActivityIngestedV1 | str:
    try:
        return decode_body(ActivityIngestedV1, body)
    except InvalidMessage as exc:
        return str(exc)


_MIRRORS: dict[type[BaseModel], type[msgspec.Struct]] = {
    ActivityIngestedV1: Ingested,
    Participant: ParticipantStruct,
    CrmReferences: CrmReferencesStruct,
}


def _assert_same_value(fast: Any, model: Any) -> None:
    assert_same_value(fast, model, _MIRRORS)


@pytest.mark.parametrize(("name", "body", "outcome"), SAMPLES, ids=[s[0] for s in SAMPLES])
def test_the_fast_path_takes_only_what_the_contract_accepts_with_equal_values(
    name: str, body: bytes, outcome: str
) -> None:
    contract = _contract(body)
    fast = decode_fast(body)
    assert (fast is not None, isinstance(contract, ActivityIngestedV1)) == {
        "fast": (True, True),
        "contract": (False, True),
        "invalid": (False, False),
    }[outcome]
    if fast is not None:
        _assert_same_value(fast, contract)
        assert isinstance(contract, ActivityIngestedV1)
        assert encode_ingested(fast) == encode_body(contract)
        assert as_contract(fast) == contract
    if isinstance(contract, str):
        with pytest.raises(InvalidMessage) as refused:
            decode_ingested(body)
        assert str(refused.value) == contract
    else:
        decoded = decode_ingested(body)
        if fast is None:
            assert type(decoded) is ActivityIngestedV1
            assert decoded == contract
        else:
            _assert_same_value(decoded, contract)


def test_an_empty_body_is_the_contract_s_invalid_message() -> None:
    with pytest.raises(InvalidMessage, match=r"^empty message body$"):
        decode_ingested(None)
    with pytest.raises(InvalidMessage, match=r"^body is not JSON"):
        decode_ingested(b"")


#: Fields a struct leaves to the contract (a body naming one is decoded by the contract), each
#: read as its model's default on the struct.
_LEFT_TO_THE_CONTRACT: dict[type[BaseModel], tuple[str, ...]] = {CrmReferences: ("owner_identities",)}


def test_the_structs_mirror_the_models_fields_and_defaults() -> None:
    for model, struct in _MIRRORS.items():
        fields = msgspec.structs.fields(struct)
        left = _LEFT_TO_THE_CONTRACT.get(model, ())
        assert [f.name for f in fields] == [name for name in model.model_fields if name not in left]
        for name in left:
            assert getattr(struct(), name) == model.model_fields[name].get_default(call_default_factory=True)
        for field in fields:
            info = model.model_fields[field.name]
            if info.is_required():
                assert (field.default, field.default_factory) == (msgspec.NODEFAULT, msgspec.NODEFAULT)
            elif isinstance(field.default, msgspec.Struct):
                # The references of an activity that carries none: equal as JSON.
                default = info.get_default(call_default_factory=True)
                assert msgspec.json.encode(field.default) == encode_body(default)
            elif field.default is msgspec.UNSET:
                # Omitted when unset as the model omits it when none (``exclude_if``).
                assert info.get_default() is None
                assert info.exclude_if is not None
            else:
                assert field.default == info.get_default(call_default_factory=True)


def test_every_activity_of_the_evaluation_world_takes_the_fast_path_with_the_contract_s_bytes() -> None:
    offsets = (UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-7)))
    activities = [labelled.activity for labelled in generate_dataset(2_000, seed=13).activities]
    for number, activity in enumerate(activities):
        # Some in another offset: the contract keeps the offset a time was given in.
        moved = activity.model_copy(
            update={"occurred_at": activity.occurred_at.astimezone(offsets[number % 3])}
        )
        body = encode_body(moved)
        fast = decode_fast(body)
        assert fast is not None
        _assert_same_value(fast, decode_body(ActivityIngestedV1, body))
        assert encode_ingested(fast) == body
    assert len(activities) == 2_000


def test_other_references_keep_the_form_of_the_activity() -> None:
    fast = decode_fast(FULL)
    assert fast is not None
    model = decode_body(ActivityIngestedV1, FULL)
    for event in (fast, model):
        moved = with_crm(event, "deal-2", None, ("c-3",), "rep-2")
        assert type(moved) is type(event)
        assert (moved.crm.deal_id, moved.crm.account_id, moved.crm.contact_ids, moved.crm.owner_rep_id) == (
            "deal-2",
            None,
            ("c-3",),
            "rep-2",
        )
        assert encode_ingested(moved) == _edit(
            '"crm":{"deal_id":"deal-1","account_id":"acc-1","contact_ids":["c-1","c-2"],"owner_rep_id":"rep-1"}',
            '"crm":{"deal_id":"deal-2","account_id":null,"contact_ids":["c-3"],"owner_rep_id":"rep-2"}',
        )


def test_the_topic_decodes_with_the_fast_path() -> None:
    assert type(ACTIVITY_INGESTED.decode(FULL)) is Ingested
    awkward = _edit('"Renewal: pricing"', '"Renewal:\\tpricing"')
    decoded = ACTIVITY_INGESTED.decode(awkward)
    assert type(decoded) is ActivityIngestedV1
    assert decoded == decode_body(ActivityIngestedV1, awkward)


def test_the_activity_id_is_asyncpg_s_uuid_equal_to_the_contract_s() -> None:
    fast = decode_fast(FULL)
    assert fast is not None
    contract = decode_body(ActivityIngestedV1, FULL).activity_id
    assert type(fast.activity_id) is PgUUID
    assert type(contract) is uuid.UUID
    assert fast.activity_id == contract
    assert contract == fast.activity_id
    assert {contract: "x"}[fast.activity_id] == "x"
    assert fast.activity_id in {contract}
    ids = [uuid.UUID(int=n << 64 | 7) for n in (3, 0, 2**63, 1)]
    theirs: list[uuid.UUID] = [PgUUID(str(i)) for i in ids]
    assert sorted(theirs) == sorted(ids)
    assert sorted([fast.activity_id, *ids]) == sorted([contract, *ids])
    assert encode_ingested(fast) == FULL


def test_the_sources_ids_of_the_rep_are_left_to_the_contract_and_kept_by_other_references() -> None:
    body = _edit('"owner_rep_id":"rep-1"}', '"owner_rep_id":"rep-1","owner_identities":["62944090008"]}')
    assert decode_fast(body) is None
    call = decode_ingested(body)
    assert type(call) is ActivityIngestedV1
    assert encode_ingested(call) == body
    moved = with_crm(call, None, None, (), "rep-2")
    assert (moved.crm.owner_rep_id, moved.crm.owner_identities) == ("rep-2", ("62944090008",))
    # None: the JSON of an activity from before the field existed.
    assert b"owner_identities" not in encode_ingested(with_crm(decode_ingested(FULL), None, None, (), None))


def test_references_the_struct_leaves_to_the_contract_are_carried_as_the_contract() -> None:
    fast = decode_fast(FULL)
    assert fast is not None
    # A CRM identifier the contract takes but the fast path leaves to it (a no-break space).
    moved = with_crm(fast, "deal\u00a07", "acct-1", ("c\u00a01",), None)
    assert type(moved) is ActivityIngestedV1
    assert (moved.crm.deal_id, moved.crm.contact_ids) == ("deal\u00a07", ("c\u00a01",))
    assert moved.model_dump(exclude={"crm"}) == as_contract(fast).model_dump(exclude={"crm"})
