"""``copy_with`` gives what ``model_copy(update=...)`` gives, attribute for attribute."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import uuid4

import msgspec
import pytest
from pydantic import BaseModel, ConfigDict, PrivateAttr

from libs.common.contracts.activities import ActivityIn, ActivityIngestedV1, Participant, ParticipantRole
from libs.common.contracts.activities_fast import ActivityStruct, ParticipantStruct, decode_fast
from libs.common.contracts.copying import copy_with, with_changes
from libs.common.contracts.envelope import encode_body

ACTIVITY = ActivityIn.model_validate(
    {
        "source": "api",
        "external_id": "call-1",
        "kind": "call",
        "direction": "outbound",
        "outcome": "connected",
        "occurred_at": "2026-11-02T15:04:05+02:00",
        "subject": "Pricing",
        "participants": [
            {"email": "ana@acme.example", "role": "caller"},
            {"phone": "4155550100", "role": "callee"},
        ],
    }
)


def _state(model: BaseModel) -> tuple[Any, ...]:
    return (
        type(model),
        model.__dict__,
        model.__pydantic_fields_set__,
        model.__pydantic_extra__,
        model.__pydantic_private__,
        model.model_dump_json(),
    )


@pytest.mark.parametrize(
    ("model", "changes"),
    [
        (ACTIVITY, {"subject": None}),
        (ACTIVITY, {"occurred_at": datetime(2026, 11, 2, 13, 4, 5, tzinfo=UTC)}),
        (ACTIVITY, {"participants": (ACTIVITY.participants[0],), "revision": 3}),
        (ACTIVITY.participants[1], {"phone": "+14155550100"}),
        (ACTIVITY, {}),
    ],
)
def test_a_copy_equals_model_copy_in_every_attribute(model: BaseModel, changes: dict[str, Any]) -> None:
    copied = copy_with(model, changes)

    assert _state(copied) == _state(model.model_copy(update=changes))
    assert copied is not model
    assert copied.__dict__ is not model.__dict__
    assert copied.__pydantic_fields_set__ is not model.__pydantic_fields_set__


def test_the_original_is_left_as_it_was() -> None:
    before = _state(ACTIVITY)

    copy_with(
        ACTIVITY, {"subject": None, "occurred_at": datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=1)))}
    )

    assert _state(ACTIVITY) == before
    assert ACTIVITY.subject == "Pricing"


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str


class _Private(BaseModel):
    name: str
    _seen: int = PrivateAttr(default=0)


@pytest.mark.parametrize("model", [_Open.model_validate({"name": "a", "more": 1}), _Private(name="a")])
def test_a_model_with_extra_fields_or_private_attributes_is_copied_by_model_copy(model: BaseModel) -> None:
    copied = copy_with(model, {"name": "b"})

    assert _state(copied) == _state(model.model_copy(update={"name": "b"}))
    assert copied.__pydantic_extra__ is not model.__pydantic_extra__ or model.__pydantic_extra__ is None


def test_a_participant_copy_stays_frozen() -> None:
    copied = copy_with(Participant(email="a@b.example", role="to"), {"name": "A"})

    with pytest.raises(ValueError, match="frozen"):
        copied.name = "B"  # type: ignore[misc]


def test_with_changes_copies_a_model_as_copy_with_and_a_struct_as_msgspec_replace() -> None:
    struct = ParticipantStruct(email="Ana@Acme.example", role=ParticipantRole.CALLER)

    copied = with_changes(struct, {"phone": "+14155550100", "name": "Ana"})

    assert copied == ParticipantStruct(
        email="ana@acme.example", phone="+14155550100", name="Ana", role=ParticipantRole.CALLER
    )
    assert struct.phone is None
    assert _state(with_changes(ACTIVITY, {"subject": None})) == _state(copy_with(ACTIVITY, {"subject": None}))
    with pytest.raises(TypeError, match="cannot copy a dict with changes"):
        with_changes({"subject": "x"}, {"subject": None})


_STRUCT = msgspec.json.decode(ACTIVITY.model_dump_json(), type=ActivityStruct)
_INGESTED = decode_fast(
    encode_body(
        ActivityIngestedV1(
            **ACTIVITY.model_dump(),
            tenant_id="acme",
            activity_id=uuid4(),
            ingested_at=datetime(2026, 11, 2, tzinfo=UTC),
        )
    )
)


@pytest.mark.parametrize("struct", [_STRUCT, _INGESTED])
@pytest.mark.parametrize(
    "changes",
    [
        {"subject": None},
        {"occurred_at": datetime(2026, 11, 2, 13, 4, 5, tzinfo=UTC)},
        {"participants": (ParticipantStruct(email="bo@buyer.example", role=ParticipantRole.CALLEE),)},
        {"thread_id": None, "ical_uid": None, "subject": None},
        {},
    ],
)
def test_an_activity_struct_is_copied_as_replace_copies_it(struct: Any, changes: dict[str, Any]) -> None:
    copied = with_changes(struct, changes)

    replaced = msgspec.structs.replace(struct, **changes)
    assert copied == replaced
    assert type(copied) is type(replaced)
    assert msgspec.json.encode(copied) == msgspec.json.encode(replaced)
    assert copied is not struct


@pytest.mark.parametrize("struct", [_STRUCT, _INGESTED])
def test_an_activity_struct_s_copy_does_not_run_its_checks_again(struct: Any) -> None:
    # ``replace`` runs ``__post_init__``, which refuses an unprintable subject; the copy, as a
    # model's copy, is not validated again: its changes are the domain's own.
    with pytest.raises(ValueError, match="not printable"):
        msgspec.structs.replace(struct, subject="a\x00b")

    assert with_changes(struct, {"subject": "a\x00b"}).subject == "a\x00b"
    assert struct.subject == "Pricing"
