"""A 422 names the field the sender wrote, as the sender wrote it: a control character put in any
string of a documented payload is refused naming that very string's path (``[0].properties.
hs_call_title``, ``payload.scheduled_event.uri``), never the contract's name for the value
(``[0].subject``, ``payload.external_id``) or a path the payload does not hold
(``data.user.email.name`` for the user's ``name``)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from services.ingest.domain.webhooks import ADAPTERS, WebhookRejected

from .ingest_webhook_helpers import CONFIG, FIXTURES, make_request, poisoned_json, poisoned_twilio_forms

_STEP = re.compile(r"\[(\d+)\]|([^.\[\]]+)")


def _at(document: Any, field: str) -> Any:
    """The value a refusal's field names in the payload (``KeyError`` / ``IndexError`` if none)."""
    node = document
    for index, key in _STEP.findall(field):
        node = node[int(index)] if index else node[key]
    return node


def test_a_refused_string_is_named_where_the_sender_wrote_it() -> None:
    misnamed: list[str] = []
    refused = 0
    for source, poisoned, document in poisoned_json("\x01"):
        try:
            ADAPTERS[source].parse(make_request(json.dumps(document).encode()), CONFIG, ["secret"])
        except WebhookRejected as rejection:
            if rejection.status_code != 422 or rejection.reason == "required":
                continue  # a field required and absent is named as the contract names it
            refused += 1
            try:
                named = _at(document, rejection.field)
            except (KeyError, IndexError, TypeError):
                named = None
            if not (isinstance(named, str) and "\x01" in named):
                misnamed.append(f"{source} {poisoned} -> {rejection.field}")
    assert refused >= 100
    assert misnamed == []


def test_a_refused_twilio_parameter_is_named_as_posted() -> None:
    """Twilio posts a form: a refused value is named by its parameter (``CallSid``), a <Dial>
    leg's ids too (they were refused past the adapter, as ``body.call_sid``)."""
    misnamed: list[str] = []
    refused = 0
    for fixture, name, body in poisoned_twilio_forms("\x01"):
        try:
            ADAPTERS["twilio"].parse(make_request(body), CONFIG, ["secret"])
        except WebhookRejected as rejection:
            if rejection.status_code == 422 and rejection.reason != "required":
                refused += 1
                if rejection.field != name:
                    misnamed.append(f"{fixture}:{name} -> {rejection.field}")
    assert refused >= 10
    assert misnamed == []


def test_an_address_list_nested_past_the_parser_is_a_422_naming_it_not_a_crash() -> None:
    """RFC 5322 comments nest (``(a (b))``) and groups end with ``;``: the standard library's
    parser recurses on each, so a header of 2,000 ``(`` or ``:`` raised RecursionError out of the
    adapter, a 500 for the delivery. It is refused naming the header or property."""
    gmail = json.loads((FIXTURES / "gmail" / "message.json").read_bytes())
    to = next(i for i, h in enumerate(gmail["payload"]["headers"]) if h["name"].lower() == "to")
    hubspot = json.loads((FIXTURES / "hubspot" / "emails.json").read_bytes())
    for nested in ("(" * 2_000, ":" * 2_000):
        gmail["payload"]["headers"][to]["value"] = nested
        hubspot[0]["properties"]["hs_email_to_email"] = nested
        for source, document, field in (
            ("gmail", gmail, f"payload.headers[{to}].value"),
            ("hubspot", hubspot, "[0].properties.hs_email_to_email"),
        ):
            with pytest.raises(WebhookRejected) as refused:
                ADAPTERS[source].parse(make_request(json.dumps(document).encode()), CONFIG, ["secret"])
            assert (refused.value.status_code, refused.value.field) == (422, field)
            assert refused.value.reason == "not an address list: nested too deep"
