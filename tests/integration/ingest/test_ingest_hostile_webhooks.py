"""Every string a vendor sends, with a control character in it: a clean 4xx or a 2xx, never a 5xx.

Each string leaf of every JSON fixture (and each field of the Twilio forms) in turn gets a NUL,
is signed as the vendor would sign it, and is delivered to the running ingest app (real broker
and PostgreSQL). The adapters build the shared contract models, whose field rules refuse the
character with a 422 naming the field; a field no adapter reads is simply ignored.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.settings import DatabaseSettings, KafkaSettings
from tests.unit.ingest.ingest_webhook_helpers import poisoned_json, poisoned_twilio_forms

from .ingest_integration_support import FIXTURES, SECRETS, ingest_client, setup_tenant, sign, url_for


def deliveries() -> Iterator[tuple[str, str, bytes]]:
    """(source, what was poisoned, signed body) for every string of every fixture."""
    for source, poisoned, document in poisoned_json("\x00"):
        yield source, poisoned, json.dumps(document).encode()
    for fixture, name, body in poisoned_twilio_forms("\x00"):
        yield "twilio", f"{fixture}:{name}", body


async def test_a_nul_in_any_vendor_field_is_a_4xx_or_ignored_never_a_5xx(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    await setup_tenant(db_engine)
    answers: dict[int, int] = {}
    refused_fields: set[str] = set()
    async with ingest_client(kafka_settings, database_settings) as client:
        for source, poisoned, body in deliveries():
            headers = {"content-type": "application/json", **sign(source, body, SECRETS[source][0])}
            response = await client.post(url_for(source), content=body, headers=headers)
            answers[response.status_code] = answers.get(response.status_code, 0) + 1
            assert response.status_code < 500, (source, poisoned, response.text[:300])
            if response.status_code == 422:
                refused_fields.add(f"{source}:{response.json()['errors'][0]['field']}")
    assert sum(answers.values()) >= 400, answers
    # The characters were refused where they matter, and named.
    assert answers.get(422, 0) >= 100, answers
    assert {"zoom:payload.object.participant.user_name", "zoom:payload.object.uuid"} <= refused_fields


#: A delivery per JSON source that reaches the raw capture (verified and parsed).
DEEP_CARRIERS = {
    "aircall": "call.ended.json",
    "calendly": "invitee.created.json",
    "gmail": "message.json",
    "google-calendar": "event.confirmed.json",
    "hubspot": "calls.json",
    "microsoft-graph": "message.json",
    "ringcentral": "session.disconnected.json",
    "zoom": "meeting.started.json",
}


async def test_a_body_nested_deeper_than_the_capture_reads_is_a_400_never_a_5xx(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """A signed delivery with 300 nested arrays in a field no adapter reads (valid JSON: the
    parsers read 1,000 levels): the raw capture, which drops content fields, could not write it
    back (a 500 the vendor retried for ever). It is refused naming the body; a source whose
    capture keeps the body as received (RingCentral) accepts it."""
    await setup_tenant(db_engine)
    deep = json.loads("[" * 300 + "]" * 300)
    answers: dict[str, tuple[int, Any]] = {}
    async with ingest_client(kafka_settings, database_settings) as client:
        for source, name in DEEP_CARRIERS.items():
            document = json.loads((FIXTURES / source / name).read_bytes())
            (document[0] if isinstance(document, list) else document)["extra"] = deep
            body = json.dumps(document).encode()
            headers = {"content-type": "application/json", **sign(source, body, SECRETS[source][0])}
            response = await client.post(url_for(source), content=body, headers=headers)
            answers[source] = (response.status_code, response.json().get("errors"))
    refused = (400, [{"in": "body", "field": "body", "reason": "nested more than 128 levels deep"}])
    assert answers == {
        "aircall": refused,
        "calendly": refused,
        "gmail": refused,
        "google-calendar": refused,
        "hubspot": refused,
        "microsoft-graph": refused,
        "ringcentral": (200, None),
        "zoom": refused,
    }
