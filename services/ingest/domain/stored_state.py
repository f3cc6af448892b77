"""State ingest keeps between deliveries (``webhook_state``) that a rolling deploy shares.

A model stored by one version is read by the one before it while a deploy rolls or after a
rollback, and that one forbids fields it does not know (``extra="forbid"``). So a field a version
adds is written only when it differs from its default: a state that does not use it reads as
before, and only one that does needs the newer version.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, SerializerFunctionWrapHandler, model_serializer


class StoredState(BaseModel):
    """A stored model whose ``written_when_set`` fields are left out while at their default."""

    #: The fields written only when set (another value than their default).
    written_when_set: ClassVar[tuple[str, ...]] = ()

    @model_serializer(mode="wrap")
    def _stored(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        for name in self.written_when_set:
            if getattr(self, name) == type(self).model_fields[name].default:
                data.pop(name, None)
        return data
