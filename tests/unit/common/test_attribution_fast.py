"""The msgspec decoder of ``activity-attributed`` against its contract, ``ActivityAttributedV1``.

Every sample is decoded both ways: whatever the fast path takes must be accepted by the contract
with equal values (same types, same instants and offsets), and ``decode_attributed`` must accept
exactly what the contract accepts, refusing the rest with the contract's own reason.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import msgspec
import orjson
import pytest
from pydantic import BaseModel

from libs.common.contracts.attribution import ActivityAttributedV1, ActivityFacts, AttributionStatus
from libs.common.contracts.attribution_fast import (
    Attributed,
    AttributedFacts,
    decode_attributed,
    decode_fast,
)
from libs.common.contracts.envelope import InvalidMessage, decode_body, encode_body
from libs.common.contracts.export import SCHEMA_DIR
from libs.common.topics import ACTIVITY_ATTRIBUTED
from tests.unit.common.fast_path_samples import OCCURRED, assert_same_value, at_time, common_samples, edit
from tests.unit.metrics.events import attributed

EXAMPLE = (Path(SCHEMA_DIR).parent / "examples" / "activity-attributed.json").read_bytes()


def _full() -> bytes:
    event = attributed(
        external_contact_ids=("c-1", "c-2"),
        secondary_deal_ids=("deal-2", "deal-3"),
        duration_seconds=312,
        revision=7,
        version=3,
        decided_at=datetime(2026, 11, 24, 16, 0, 0, 123456, tzinfo=UTC),
    )
    return encode_body(
        event.model_copy(update={"explanation": {"rule_path": "deal.single", "ingested_at": "2026-11-24"}})
    )


FULL = _full()
MINIMAL = orjson.dumps(
    {
        "tenant_id": "acme",
        "activity_id": "00000000-0000-4000-8000-000000000002",
        "version": 1,
        "status": "unmatched",
        "confidence": 0,
        "facts": {"kind": "email", "direction": "inbound", "outcome": "received", "occurred_at": OCCURRED},
        "decided_at": "2026-11-24T15:00:01+05:30",
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
    ("offset -00:00", _time("2026-11-24T15:00:00-00:00"), "fast"),
    ("confidence as an integer", _edit('"confidence":1.0', '"confidence":1'), "fast"),
    ("confidence -0.0", _edit('"confidence":1.0', '"confidence":-0.0'), "fast"),
    (
        "an explanation of any JSON",
        _edit('"rule_path":"deal.single"', '"x":[1,{"y":null,"z":1e-3}],"n":99999999999999999999999'),
        "fast",
    ),
    ("a repeated key (the last wins)", _edit('"version":3', '"version":2,"version":3'), "fast"),
    (
        "a repeated explanation key",
        _edit('"rule_path":"deal.single"', '"rule_path":"a","rule_path":"b"'),
        "fast",
    ),
    ("revision at bigint's maximum", _edit('"revision":7', '"revision":9223372036854775807'), "fast"),
    ("an astral character in an id", _edit('"rep-1"', '"rep-\U0001f600"'), "fast"),
    # The contract accepts these; the fast path leaves them to it.
    ("nine fraction digits", _time("2026-11-24T15:00:00.999999999Z"), "contract"),
    ("an escaped dot in a time", _time("2026-11-24T15:00:00\\u002e1234567Z"), "contract"),
    ("an escape anywhere", _edit('"rep-1"', '"rep\\u002d1"'), "contract"),
    ("a comma before the fraction", _time("2026-11-24T15:00:00,5Z"), "contract"),
    (
        "UUID as a URN",
        _edit('"00000000-0000-4000-8000-000000000001"', '"urn:uuid:00000000-0000-4000-8000-000000000001"'),
        "contract",
    ),
    ("confidence as a string", _edit('"confidence":1.0', '"confidence":"0.5"'), "contract"),
    ("a no-break space in an id", _edit('"rep-1"', '"rep\u00a01"'), "contract"),
    ("a zero-width space in a contact id", _edit('"c-1"', '"c\u200b1"'), "contract"),
    ("an infinite number in the explanation", _edit('"rule_path":"deal.single"', '"x":1.5e400'), "contract"),
    ("NaN in the explanation", _edit('"rule_path":"deal.single"', '"x":NaN'), "contract"),
    # Both refuse.
    ("a byte-order mark", "\ufeff".encode() + FULL, "invalid"),
    ("invalid UTF-8 in an id", _edit('"rep-1"', '"rep-1"').replace(b"rep-1", b"rep-\xff"), "invalid"),
    ("a lone surrogate", _edit('"rule_path":"deal.single"', '"x":"\\ud800"'), "invalid"),
    ("30 February", _time("2026-02-30T15:00:00Z"), "invalid"),
    ("second 60", _time("2026-11-24T15:00:60Z"), "invalid"),
    ("offset +24:00", _time("2026-11-24T15:00:00+24:00"), "invalid"),
    ("tenant with a newline", _edit('"acme"', '"acme\\n"'), "invalid"),
    ("tenant too long", _edit('"acme"', '"' + "a" * 64 + '"'), "invalid"),
    ("an empty id", _edit('"rep-1"', '""'), "invalid"),
    ("an id of 257 characters", _edit('"rep-1"', '"' + "r" * 257 + '"'), "invalid"),
    ("an id of 256 characters", _edit('"rep-1"', '"' + "r" * 256 + '"'), "fast"),
    ("a NEL in an id", _edit('"rep-1"', '"rep\u00851"'), "invalid"),
    ("a NUL in a contact id", _edit('"c-1"', '"c\\u00001"'), "invalid"),
    ("a noncharacter in a deal id", _edit('"deal-2"', '"deal\ufdd02"'), "invalid"),
    ("a NEL in a team id", _edit('"team-1"', '"team\u00851"'), "invalid"),
    ("a NUL in an account id", _edit('"acc-1"', '"acc\\u00001"'), "invalid"),
    ("a noncharacter in the deal id", _edit('"deal-1"', '"deal\ufdd01"'), "invalid"),
    ("version 0", _edit('"version":3', '"version":0'), "invalid"),
    ("version 1.0", _edit('"version":3', '"version":1.0'), "invalid"),
    ("version true", _edit('"version":3', '"version":true'), "invalid"),
    ("version as a string", _edit('"version":3', '"version":"3"'), "invalid"),
    ("version past integer", _edit('"version":3', '"version":2147483648'), "invalid"),
    ("confidence above 1", _edit('"confidence":1.0', '"confidence":1.5'), "invalid"),
    ("duration above a day", _edit('"duration_seconds":312', '"duration_seconds":86401'), "invalid"),
    ("negative participants", _edit('"external_participants":1', '"external_participants":-1'), "invalid"),
    ("revision past bigint", _edit('"revision":7', '"revision":9223372036854775808'), "invalid"),
    ("automated as 0", _edit('"automated":false', '"automated":0'), "invalid"),
    ("an unknown status", _edit('"status":"attributed"', '"status":"maybe"'), "invalid"),
    ("an unknown kind", _edit('"kind":"call"', '"kind":"fax"'), "invalid"),
    ("an extra field", _edit('"version":3', '"version":3,"extra":1'), "invalid"),
    ("an extra fact", _edit('"revision":7', '"revision":7,"extra":1'), "invalid"),
    ("no facts", _edit('"facts":{', '"other":{'), "invalid"),
    ("a null explanation", _edit('"explanation":{', '"explanation":null,"x":{'), "invalid"),
    (
        "null secondary deals",
        _edit('"secondary_deal_ids":["deal-2","deal-3"]', '"secondary_deal_ids":null'),
        "invalid",
    ),
    # A second report of a call: the id of the first, or nothing (null is the contract's).
    (
        "a duplicate of another report",
        FULL[:-1] + b',"duplicate_of":"00000000-0000-4000-8000-0000000000aa"}',
        "fast",
    ),
    ("duplicate_of null", FULL[:-1] + b',"duplicate_of":null}', "contract"),
    ("duplicate_of not a UUID", FULL[:-1] + b',"duplicate_of":"call-1"}', "invalid"),
]


def _contract(body: bytes | None) -> ActivityAttributedV1 | str:
    try:
        return decode_body(ActivityAttributedV1, body)
    except InvalidMessage as exc:
        return str(exc)


_MIRRORS: dict[type[BaseModel], type[msgspec.Struct]] = {
    ActivityAttributedV1: Attributed,
    ActivityFacts: AttributedFacts,
}


def _assert_same_value(fast: Any, model: Any) -> None:
    assert_same_value(fast, model, _MIRRORS)


@pytest.mark.parametrize(("name", "body", "outcome"), SAMPLES, ids=[s[0] for s in SAMPLES])
def test_the_fast_path_takes_only_what_the_contract_accepts_with_equal_values(
    name: str, body: bytes, outcome: str
) -> None:
    contract = _contract(body)
    fast = decode_fast(body)
    assert (fast is not None, isinstance(contract, ActivityAttributedV1)) == {
        "fast": (True, True),
        "contract": (False, True),
        "invalid": (False, False),
    }[outcome]
    if fast is not None:
        _assert_same_value(fast, contract)
    if isinstance(contract, str):
        with pytest.raises(InvalidMessage) as refused:
            decode_attributed(body)
        assert str(refused.value) == contract
    else:
        decoded: Any = decode_attributed(body)
        if fast is None:
            # The contract's own model (NaN is not equal to itself, so compared as JSON).
            assert type(decoded) is ActivityAttributedV1
            assert encode_body(decoded) == encode_body(contract)
        else:
            _assert_same_value(decoded, contract)


def test_an_empty_body_is_the_contract_s_invalid_message() -> None:
    with pytest.raises(InvalidMessage, match=r"^empty message body$"):
        decode_attributed(None)
    with pytest.raises(InvalidMessage, match=r"^body is not JSON"):
        decode_attributed(b"")


def test_the_structs_mirror_the_models_fields_and_defaults() -> None:
    for struct, model in ((Attributed, ActivityAttributedV1), (AttributedFacts, ActivityFacts)):
        fields = msgspec.structs.fields(struct)
        assert [f.name for f in fields] == list(model.model_fields)
        for field in fields:
            info = model.model_fields[field.name]
            if info.is_required():
                assert (field.default, field.default_factory) == (msgspec.NODEFAULT, msgspec.NODEFAULT)
            elif field.default_factory is not msgspec.NODEFAULT:
                assert field.default_factory() == info.get_default(call_default_factory=True)
            elif field.default is msgspec.UNSET:
                # Omitted when unset as the model omits it when none (``exclude_if``).
                assert info.get_default() is None
                assert info.exclude_if is not None
            else:
                assert field.default == info.get_default(call_default_factory=True)


@pytest.mark.parametrize("status", list(AttributionStatus), ids=[s.value for s in AttributionStatus])
def test_every_status_and_offset_round_trips_through_the_fast_path(status: AttributionStatus) -> None:
    for offset in (UTC, timezone(timedelta(hours=-7)), timezone(timedelta(hours=5, minutes=45))):
        model = attributed(status=status, occurred_at=datetime(2026, 3, 8, 9, 30, 1, 7, tzinfo=offset))
        body = encode_body(model)
        fast = decode_fast(body)
        assert fast is not None
        _assert_same_value(fast, model)


def test_the_topic_decodes_with_the_fast_path() -> None:
    decoded = ACTIVITY_ATTRIBUTED.decode(FULL)
    assert type(decoded) is Attributed
    assert ACTIVITY_ATTRIBUTED.decode(_time("2026-11-24T15:00Z")) == decode_body(
        ActivityAttributedV1, _time("2026-11-24T15:00Z")
    )
