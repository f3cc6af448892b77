"""Export one JSON Schema per topic payload (``python -m libs.common.contracts.export``).

The exported files are checked in under ``schemas/``; a test fails when a model changes
without re-exporting, so every contract change is visible in review.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import orjson

from libs.common.topics import REGISTRY

SCHEMA_DIR = Path(__file__).parent / "schemas"


def topic_schemas() -> dict[str, dict[str, Any]]:
    """``{topic name: JSON Schema of its payload}`` with the CloudEvents type recorded."""
    out: dict[str, dict[str, Any]] = {}
    for topic in REGISTRY:
        schema = topic.payload.model_json_schema(mode="serialization")
        schema["$id"] = f"urn:spm:topic:{topic.name}"
        schema["x-cloudevents-type"] = topic.event_type
        schema["x-kafka-key"] = topic.key
        out[topic.name] = schema
        for variant in topic.variants:
            schema = variant.payload.model_json_schema(mode="serialization")
            schema["$id"] = f"urn:spm:topic:{topic.name}:{variant.name}"
            schema["x-cloudevents-type"] = variant.event_type
            schema["x-kafka-key"] = topic.key
            schema["x-kafka-topic"] = topic.name
            out[variant.name] = schema
    return out


def render(schema: dict[str, Any]) -> bytes:
    return orjson.dumps(schema, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"


def export(directory: Path = SCHEMA_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in topic_schemas().items():
        path = directory / f"{name}.json"
        path.write_bytes(render(schema))
        written.append(path)
    return written


if __name__ == "__main__":
    for path in export():
        sys.stdout.write(f"wrote {path}\n")
