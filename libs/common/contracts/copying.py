"""A contract model with some fields replaced: ``model_copy(update=...)`` in a third of the CPU.

Ingest copies activities on its hot path (the subject a tenant does not keep, a time moved to
UTC, phones read to E.164, an erased participant masked): about 3 us per activity with
``model_copy``, whose ``__copy__`` runs ``copy.copy`` on the field dict, the extra fields and
the set of fields given, then checks for private attributes. The contracts' models forbid
extra fields and hold no private attributes, so one merged dict and one set do.
"""

from __future__ import annotations

from typing import Any, TypeVar, cast

import msgspec
from msgspec.structs import force_setattr
from pydantic import BaseModel

ModelT = TypeVar("ModelT", bound=BaseModel)

_object_new = object.__new__
_object_setattr = object.__setattr__


def copy_with(model: ModelT, changes: dict[str, Any]) -> ModelT:
    """``model.model_copy(update=changes)``, equal in every attribute (values not validated,
    as there); a model with extra fields or private attributes takes ``model_copy`` itself."""
    if model.__pydantic_extra__ is not None or model.__pydantic_private__ is not None:
        return model.model_copy(update=changes)
    copied = _object_new(type(model))
    _object_setattr(copied, "__dict__", {**model.__dict__, **changes})
    _object_setattr(copied, "__pydantic_fields_set__", model.__pydantic_fields_set__ | changes.keys())
    _object_setattr(copied, "__pydantic_extra__", None)
    _object_setattr(copied, "__pydantic_private__", None)
    return copied


ValueT = TypeVar("ValueT")


def with_changes(value: ValueT, changes: dict[str, Any]) -> ValueT:
    """``value`` with some fields replaced, for a contract model (:func:`copy_with`) or a msgspec
    struct (``msgspec.structs.replace``): rules written over both copy through this one function.

    A struct whose class sets ``copied_unchecked`` (the canonical activity's, whose
    ``__post_init__`` only refuses what the decoder read and never changes a field) is copied
    (``__copy__``) and its fields set, without that ``__post_init__`` again, as a model's copy is
    not validated again: ``replace`` runs it, about 1,900 instructions an activity on ingest's
    batch path, which copies every activity whose subject the tenant does not keep."""
    if isinstance(value, msgspec.Struct):
        if getattr(value, "copied_unchecked", False):
            copied = value.__copy__()  # type: ignore[attr-defined]
            for name, new in changes.items():
                force_setattr(copied, name, new)
            return cast("ValueT", copied)
        return cast("ValueT", msgspec.structs.replace(value, **changes))
    if isinstance(value, BaseModel):
        return cast("ValueT", copy_with(value, changes))
    raise TypeError(f"cannot copy a {type(value).__name__} with changes")
