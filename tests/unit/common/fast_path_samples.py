"""What the tests of the msgspec fast paths share: editing a JSON body, the samples any contract
of ours answers alike (times, UUIDs, JSON's shape), and comparing a struct with the model.

A sample is (name, body, expected outcome): "fast" (msgspec takes it), "contract" (pydantic
accepts what the fast path leaves to it), "invalid" (both refuse).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import Enum
from typing import Any
from uuid import UUID

import msgspec
from pydantic import BaseModel

OCCURRED = "2026-11-24T15:00:00Z"
FIRST_ID = "00000000-0000-4000-8000-000000000001"

Sample = tuple[str, bytes, str]


def edit(body: bytes, old: str, new: str) -> bytes:
    """``body`` with the first ``old`` replaced (which must be there); lone surrogates kept."""
    text = body.decode()
    assert old in text, old
    return text.replace(old, new, 1).encode("utf-8", "surrogatepass")


def at_time(body: bytes, value: str) -> bytes:
    """``body`` with its ``occurred_at`` (``OCCURRED``) written as ``value``."""
    return edit(body, f'"occurred_at":"{OCCURRED}"', f'"occurred_at":"{value}"')


def common_samples(full: bytes) -> list[Sample]:
    """The samples every contract answers alike, built on ``full`` (which holds ``OCCURRED`` as
    its ``occurred_at``, ``FIRST_ID`` as a UUID and ``"tenant_id":"acme"``)."""
    return [
        ("lower-case t and z", at_time(full, "2026-11-24t15:00:00z"), "fast"),
        ("space for T", at_time(full, "2026-11-24 15:00:00Z"), "fast"),
        ("offset without colon", at_time(full, "2026-11-24T15:00:00+0100"), "fast"),
        ("milliseconds and +05:30", at_time(full, "2026-11-24T15:00:00.123+05:30"), "fast"),
        ("last microsecond before 2200", at_time(full, "2199-12-31T23:59:59.999999Z"), "fast"),
        ("UUID without hyphens", edit(full, FIRST_ID, "0" * 12 + "40008" + "0" * 14 + "1"), "fast"),
        ("UUID upper case", edit(full, FIRST_ID, "00000000-0000-4000-8000-0000000000AB"), "fast"),
        ("white space around", b" \n" + full + b"\n ", "fast"),
        ("seven fraction digits", at_time(full, "2026-11-24T15:00:00.1234567Z"), "contract"),
        ("no seconds", at_time(full, "2026-11-24T15:00Z"), "contract"),
        ("UUID in braces", edit(full, f'"{FIRST_ID}"', f'"{{{FIRST_ID}}}"'), "contract"),
        (
            "a repeated key, the first invalid",
            edit(full, '"tenant_id":"acme"', '"tenant_id":"ACME","tenant_id":"acme"'),
            "contract",
        ),
        ("not JSON", b"\xff{", "invalid"),
        ("trailing characters", full + b"x", "invalid"),
        ("a JSON array", b"[]", "invalid"),
        ("no offset", at_time(full, "2026-11-24T15:00:00"), "invalid"),
        ("before 1970", at_time(full, "1969-12-31T23:59:59Z"), "invalid"),
        ("2200", at_time(full, "2200-01-01T00:00:00Z"), "invalid"),
        (
            "a time as a number",
            edit(full, f'"occurred_at":"{OCCURRED}"', '"occurred_at":1764000000'),
            "invalid",
        ),
        ("tenant upper case", edit(full, '"acme"', '"ACME"'), "invalid"),
    ]


def assert_same_value(fast: Any, model: Any, mirrors: Mapping[type[BaseModel], type[msgspec.Struct]]) -> None:
    """Equal values of the same type, field by field through ``mirrors`` (each model's struct);
    times of the same instant and offset; enums the same member."""
    if isinstance(model, BaseModel):
        assert type(fast) is mirrors[type(model)]
        for name in type(model).model_fields:
            assert_same_value(getattr(fast, name), getattr(model, name), mirrors)
    elif isinstance(model, tuple):
        assert isinstance(fast, tuple)
        assert len(fast) == len(model)
        for one, other in zip(fast, model, strict=True):
            assert_same_value(one, other, mirrors)
    elif isinstance(model, datetime):
        assert isinstance(fast, datetime)
        assert (fast, fast.utcoffset()) == (model, model.utcoffset())
    elif isinstance(model, Enum):
        assert fast is model
    elif isinstance(model, UUID):
        # attribution's decoder gives asyncpg's ``UUID``, a subclass that is equal and hashes,
        # orders and prints the same
        assert isinstance(fast, UUID)
        assert (fast, hash(fast), str(fast)) == (model, hash(model), str(model))
    elif model is None and fast is msgspec.UNSET:
        pass  # a participant's response_status: unset in the struct, none in the model, omitted by both
    else:
        assert type(fast) is type(model)
        assert fast == model
