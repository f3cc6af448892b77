"""Values PostgreSQL or JSON cannot hold are refused at the door with a 422 naming the field.

Control characters, times outside 1970..2200 (once in UTC), integers past PostgreSQL's types,
non-finite or absurd amounts and coerced types, through the canonical API, the CRM sync, a
vendor webhook and every gateway parameter. Ingest and the gateway run in-process on the
session's real broker and PostgreSQL.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from .stack import Services, bearer, operations, problem
from .test_api_security import sign

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "webhooks"
NOW = datetime.now(UTC).replace(microsecond=0).isoformat()


def call(**fields: Any) -> dict[str, Any]:
    return {
        "source": "dialer",
        "external_id": "c-1",
        "kind": "call",
        "direction": "outbound",
        "outcome": "connected",
        "occurred_at": NOW,
        "duration_seconds": 60,
        "participants": [{"phone": "+14155550001", "role": "caller", "name": "Ana"}],
        **fields,
    }


def meeting(**fields: Any) -> dict[str, Any]:
    return call(
        kind="meeting",
        outcome="held",
        participants=[
            {"email": "ana@seller.example", "role": "organizer"},
            {"email": "bo@buyer.example", "role": "attendee"},
        ],
        **fields,
    )


#: (case, activity, field named in the 422, words in the reason)
REFUSED_ACTIVITIES: list[tuple[str, dict[str, Any], str, str]] = [
    ("NUL in external_id", call(external_id="c-\x00"), "external_id", "U+0000"),
    (
        "NUL in a participant name",
        call(participants=[{"phone": "+14155550001", "role": "caller", "name": "A\x00na"}]),
        "participants.0.name",
        "control character",
    ),
    ("NUL in a meeting's ical_uid", meeting(ical_uid="uid-\x00@x"), "ical_uid", "control character"),
    ("bell in the subject", call(subject="ding \x07"), "subject", "U+0007"),
    ("line feed in thread_id", call(thread_id="t\n1"), "thread_id", "U+000A"),
    ("lone surrogate in subject", call(subject="a\ud800b"), "subject", "surrogate"),
    ("year 1 at +14:00", call(occurred_at="0001-01-01T00:00:00+14:00"), "occurred_at", "1970"),
    ("year 9999 at -14:00", call(occurred_at="9999-12-31T23:59:59-14:00"), "occurred_at", "2200"),
    ("revision past bigint", call(revision=2**63), "revision", "less than or equal"),
    ("negative revision", call(revision=-1), "revision", "greater than or equal"),
    ("duration as a string", call(duration_seconds="30"), "duration_seconds", "valid integer"),
    ("duration as a boolean", call(duration_seconds=True), "duration_seconds", "valid integer"),
    ("duration as a float", call(duration_seconds=30.5), "duration_seconds", "valid integer"),
    ("duration past a day", call(duration_seconds=2**31), "duration_seconds", "less than or equal"),
    ("revision as a string", call(revision="5"), "revision", "valid integer"),
]


@pytest.mark.parametrize(("case", "activity", "field", "reason"), REFUSED_ACTIVITIES, ids=lambda v: v)
async def test_hostile_activity_fields_are_refused_with_422_naming_the_field(
    services: Services, case: str, activity: dict[str, Any], field: str, reason: str
) -> None:
    if "surrogate" in case:  # orjson refuses to write one; a client's JSON escape carries it
        body = orjson.dumps({"activities": [{**activity, "subject": "@@"}]}).replace(b"@@", b"a\\ud800b")
    else:
        body = orjson.dumps({"activities": [activity]})
    response = await services.ingest.post(
        "/v1/events",
        content=body,
        headers={**bearer(services.keys["ingest"]), "content-type": "application/json"},
    )
    if "surrogate" in case:
        # pydantic's JSON reader refuses it first: a 400 (malformed), still never a 5xx.
        assert response.status_code in (400, 422), response.text
        return
    assert response.status_code == 422, (case, response.text)
    errors = problem(response)["errors"]
    assert errors[0]["field"] == f"activities.0.{field}", errors
    assert reason in errors[0]["reason"], errors


async def test_what_free_text_and_the_limits_allow_is_accepted(services: Services) -> None:
    accepted = [
        call(external_id="ok-1", subject="line one\nline two\ttabbed\r\n"),
        call(external_id="ok-2", revision=2**63 - 1),
        call(external_id="ok-3", occurred_at=datetime.now(UTC).isoformat(), duration_seconds=86_400),
    ]
    response = await services.ingest.post(
        "/v1/events", json={"activities": accepted}, headers=bearer(services.keys["ingest"])
    )
    assert response.status_code == 202, response.text
    assert response.json()["accepted"] == 3


T0 = "2026-11-02T15:00:00Z"

REFUSED_ENTITIES: list[tuple[str, dict[str, Any], str]] = [
    (
        "updated_at year 1 at +14:00",
        {"entity_type": "team", "id": "t-1", "updated_at": "0001-01-01T00:00:00+14:00"},
        "updated_at",
    ),
    (
        "updated_at without offset",
        {"entity_type": "team", "id": "t-1", "updated_at": "2026-11-02T15:00:00"},
        "updated_at",
    ),
    ("NUL in a rep name", {"entity_type": "rep", "id": "r-1", "name": "A\x00", "updated_at": T0}, "name"),
    ("NUL in an id", {"entity_type": "rep", "id": "r-\x00", "updated_at": T0}, "id"),
    (
        "deleted as a string",
        {"entity_type": "rep", "id": "r-1", "deleted": "true", "updated_at": T0},
        "deleted",
    ),
    (
        "membership from year 1",
        {
            "entity_type": "team_membership",
            "id": "m",
            "rep_id": "r",
            "team_id": "t",
            "valid_from": "0001-01-01",
            "updated_at": T0,
        },
        "valid_from",
    ),
]
DEAL = {"entity_type": "deal", "id": "d-1", "created_at": "2026-10-01T00:00:00Z", "updated_at": T0}
REFUSED_ENTITIES += [
    ("deal created in 2300", {**DEAL, "created_at": "2300-01-01T00:00:00Z"}, "created_at"),
    ("deal closed in 1900", {**DEAL, "closed_at": "1900-01-01T00:00:00Z"}, "closed_at"),
    ("amount NaN", {**DEAL, "amount": "NaN"}, "amount"),
    ("amount Infinity", {**DEAL, "amount": "Infinity"}, "amount"),
    ("amount 1e400", {**DEAL, "amount": "1e400"}, "amount"),
    ("amount 1e-400", {**DEAL, "amount": "1e-400"}, "amount"),
    ("amount true", {**DEAL, "amount": True}, "amount"),
    ("is_won as 1", {**DEAL, "is_won": 1, "is_closed": True}, "is_won"),
    # Lists far beyond any real CRM record's (one held the shared attribution consumer for seconds).
    (
        "a contact with 101 emails",
        {
            "entity_type": "contact",
            "id": "c",
            "emails": [f"bo{n}@b.example" for n in range(101)],
            "updated_at": T0,
        },
        "emails",
    ),
    (
        "a rep with 51 phones",
        {
            "entity_type": "rep",
            "id": "r",
            "phones": [f"+1415555{n:04d}" for n in range(51)],
            "updated_at": T0,
        },
        "phones",
    ),
    (
        "an account with 201 domains",
        {
            "entity_type": "account",
            "id": "a",
            "domains": [f"b{n}.example" for n in range(201)],
            "updated_at": T0,
        },
        "domains",
    ),
    (
        "a contact whose 60 email values list 120 addresses",
        {
            "entity_type": "contact",
            "id": "c",
            "emails": [f"bo{n}@b.example; li{n}@b.example" for n in range(60)],
            "updated_at": T0,
        },
        "emails",
    ),
]


@pytest.mark.parametrize(("case", "entity", "field"), REFUSED_ENTITIES, ids=lambda v: v)
async def test_hostile_crm_fields_are_refused_with_422_naming_the_field(
    services: Services, case: str, entity: dict[str, Any], field: str
) -> None:
    response = await services.ingest.post(
        "/v1/crm/sync", json={"source": "test", "entities": [entity]}, headers=bearer(services.keys["ingest"])
    )
    assert response.status_code == 422, (case, response.text)
    errors = problem(response)["errors"]
    # One error: not also "entities: Tuple should have at least 1 item after validation, not 0".
    assert [e["field"] for e in errors] == [f"entities.0.{entity['entity_type']}.{field}"], errors


async def test_a_vendor_webhook_with_a_nul_gets_a_422_naming_the_field(services: Services) -> None:
    secret = services.webhook_secrets["zoom"]
    document = orjson.loads((FIXTURES / "zoom" / "meeting.participant_joined.json").read_bytes())
    url = "/v1/webhooks/zoom/acme"
    for path, value, field in (
        (("participant", "user_name"), "Bo\x00", "payload.object.participant.user_name"),
        (("uuid",), "4444\x00==", "payload.object.uuid"),
        (("topic",), "renewal \x1b[31m", "payload.object.topic"),
    ):
        hostile = orjson.loads(orjson.dumps(document))
        target = hostile["payload"]["object"]
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
        body = orjson.dumps(hostile)
        headers, _ = sign("zoom", secret, body, int(time.time()), "unused")
        response = await services.ingest.post(url, content=body, headers=headers)
        assert response.status_code == 422, (field, response.text)
        assert problem(response)["errors"][0]["field"] == field


async def test_a_vendor_revision_dated_2099_is_a_422_naming_the_field_and_later_revisions_still_count(
    services: Services,
) -> None:
    """Signed now, dated 2099 (``event_ts``, the folded meeting's revision clock): refused, so the
    meeting is not frozen; the same delivery dated now is accepted."""
    secret = services.webhook_secrets["zoom"]
    document = orjson.loads((FIXTURES / "zoom" / "meeting.started.json").read_bytes())
    url = "/v1/webhooks/zoom/acme"
    for event_ts, status in ((4_070_908_800_000, 422), (int(time.time() * 1000), 200)):
        body = orjson.dumps({**document, "event_ts": event_ts})
        headers, _ = sign("zoom", secret, body, int(time.time()), "unused")
        response = await services.ingest.post(url, content=body, headers=headers)
        assert response.status_code == status, response.text
        if status == 422:
            [error] = problem(response)["errors"]
            assert (error["in"], error["field"]) == ("body", "event_ts")
            assert error["reason"].startswith("more than 86400 s in the future (received ")


async def test_every_gateway_parameter_with_a_control_character_is_a_422_naming_it(
    services: Services,
) -> None:
    """Routes and parameters are read from the OpenAPI document: a new route is covered unedited."""
    auth = bearer(services.keys["admin"])
    checked = 0
    for method, path, operation in operations(services.apps["gateway"]):
        for parameter in operation.get("parameters", []):
            name, where = parameter["name"], parameter["in"]
            if where == "path":
                url, params = path.replace("x1", "x%00y", 1), None
            elif where == "query":
                url, params = path, {name: "x\x00y"}
            else:
                continue
            response = await services.gateway.request(
                method, url, params=params, headers=auth, json={} if method == "PUT" else None
            )
            assert response.status_code == 422, (method, url, name, response.status_code, response.text[:300])
            errors = problem(response)["errors"]
            assert errors[0]["in"] == where, errors
            if where == "query":
                assert errors[0]["field"] == name, errors
            assert "U+0000" in errors[0]["reason"], errors
            checked += 1
    assert checked >= 20
    assert "Traceback" not in services.log.getvalue()


async def test_gateway_cursors_and_dates_out_of_bounds_are_422(services: Services) -> None:
    import base64

    auth = bearer(services.keys["read"])

    def cursor(values: list[str]) -> str:
        return base64.urlsafe_b64encode(orjson.dumps(values)).decode().rstrip("=")

    cases = [
        ("/v1/reps", {"cursor": cursor(["rep\x00"])}, "cursor"),
        (
            "/v1/activities",
            {"cursor": cursor(["0001-01-01T00:00:00+14:00", "6f1c1f8e-0000-4000-8000-000000000000"])},
            "cursor",
        ),
        (
            "/v1/activities",
            {"cursor": cursor(["9999-12-31T23:59:59-14:00", "6f1c1f8e-0000-4000-8000-000000000000"])},
            "cursor",
        ),
        ("/v1/activities", {"from": "0001-01-01"}, "from"),
        ("/v1/activities", {"to": "9999-12-31"}, "to"),
        ("/v1/leaderboard", {"date": "9999-12-31"}, "date"),
        ("/v1/funnel", {"from": "2026-01-01", "to": "9999-12-31"}, "to"),
        ("/v1/reps/x1/scores", {"to": "9999-12-31"}, "to"),
    ]
    for url, params, field in cases:
        response = await services.gateway.get(url, params=params, headers=auth)
        assert response.status_code == 422, (url, params, response.text[:300])
        assert problem(response)["errors"][0]["field"] == field, (url, response.text)


async def test_json_numbers_beyond_a_double_are_422_naming_the_field_and_bare_nan_is_400(
    services: Services,
) -> None:
    auth = {**bearer(services.keys["ingest"]), "content-type": "application/json"}
    events = orjson.dumps({"activities": [call(revision=123456789)]})
    crm = orjson.dumps({"entities": [{**DEAL, "amount": 123456789}]})
    for path, body, status, field in (
        ("/v1/events", events.replace(b"123456789", b"1e400"), 422, "activities.0.revision"),
        ("/v1/events", events.replace(b"123456789", b"-1e400"), 422, "activities.0.revision"),
        ("/v1/events", events.replace(b"123456789", b"1" + b"0" * 30), 422, "activities.0.revision"),
        ("/v1/crm/sync", crm.replace(b"123456789", b"1e400"), 422, "entities.0.deal.amount"),
        ("/v1/events", events.replace(b"123456789", b"NaN"), 400, None),
        ("/v1/crm/sync", crm.replace(b"123456789", b"Infinity"), 400, None),
    ):
        response = await services.ingest.post(path, content=body, headers=auth)
        assert response.status_code == status, (body[-80:], response.text)
        if field is not None:
            assert problem(response)["errors"][0]["field"] == field, response.text
