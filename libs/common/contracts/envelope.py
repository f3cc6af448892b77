"""CloudEvents 1.0 envelope in Kafka binary mode.

Attributes travel as ``ce_*`` headers and the body is the JSON payload (orjson), so a
consumer can route and deduplicate on headers without decoding the body.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

import orjson
from pydantic import BaseModel, ValidationError

SPEC_VERSION = "1.0"
CONTENT_TYPE = "application/json"

ModelT = TypeVar("ModelT", bound=BaseModel)


class InvalidMessage(Exception):
    """A message that can never be processed: it goes to the dead-letter topic, not retried."""


@dataclass(frozen=True, slots=True)
class Envelope:
    """The CloudEvents context attributes of one event."""

    id: str
    source: str
    type: str
    subject: str
    tenant: str
    time: datetime = field(default_factory=lambda: datetime.now(UTC))

    def to_headers(self) -> list[tuple[str, bytes]]:
        return [
            ("ce_specversion", SPEC_VERSION.encode()),
            ("ce_id", self.id.encode()),
            ("ce_source", self.source.encode()),
            ("ce_type", self.type.encode()),
            ("ce_subject", self.subject.encode()),
            ("ce_time", self.time.isoformat().encode()),
            ("ce_tenant", self.tenant.encode()),
            ("content-type", CONTENT_TYPE.encode()),
        ]

    @classmethod
    def from_headers(cls, headers: Sequence[tuple[str, bytes]]) -> Envelope:
        values: dict[str, str] = {}
        for key, raw in headers:
            if key.startswith("ce_"):
                try:
                    values[key[3:]] = raw.decode()
                except UnicodeDecodeError as exc:
                    raise InvalidMessage(f"header {key} is not UTF-8") from exc
        missing = [name for name in ("id", "source", "type", "time") if name not in values]
        if missing:
            raise InvalidMessage(f"missing CloudEvents headers: {', '.join('ce_' + m for m in missing)}")
        try:
            time = datetime.fromisoformat(values["time"])
        except ValueError as exc:
            raise InvalidMessage("ce_time is not an ISO 8601 timestamp") from exc
        return cls(
            id=values["id"],
            source=values["source"],
            type=values["type"],
            subject=values.get("subject", ""),
            tenant=values.get("tenant", ""),
            time=time,
        )


def encode_body(model: BaseModel) -> bytes:
    """Serialise a payload model to compact JSON."""
    return orjson.dumps(model.model_dump(mode="json"))


def decode_body(model: type[ModelT], body: bytes | None) -> ModelT:
    """Parse and validate a payload; anything undecodable or invalid is an :class:`InvalidMessage`."""
    if body is None:
        raise InvalidMessage("empty message body")
    try:
        return model.model_validate(orjson.loads(body))
    except orjson.JSONDecodeError as exc:
        raise InvalidMessage(f"body is not JSON: {exc}") from exc
    except ValidationError as exc:
        raise InvalidMessage(
            f"body is not a valid {model.__name__}: {exc.errors(include_url=False)}"
        ) from exc
