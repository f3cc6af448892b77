"""Ingest behaviours beyond one delivery: handshakes, Zoom's folded meetings, unknown endpoints,
the broker being down, privacy exclusions, one meeting seen from three sources, and batches.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import time
from typing import Any

from prometheus_client import REGISTRY
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.contracts.activities import activity_id_for
from libs.common.settings import DatabaseSettings, KafkaSettings
from libs.common.tenancy import WEBHOOK_SOURCES

from .ingest_integration_support import (
    NOW_SECONDS,
    ORGANIZATION_ID,
    SECRETS,
    TENANT_SETTINGS,
    activities_on_topic,
    dumps,
    endpoint,
    entities_on_topic,
    expected_activity,
    fixture,
    fixture_json,
    ingest_client,
    person,
    raw_on_topic,
    setup_tenant,
    sign,
    url_for,
)

ANA = "ana.seller@acme.example"
BO = "bo.buyer@globex.example"
HOST_ID = "z8yCxTTTTSiw02QgCAp8uQ"
ZOOM_SECRET = SECRETS["zoom"][0]
ZOOM_UUID = "4444AAAiAAAAAiAiAiiAii=="


def zoom_host_joined() -> dict[str, Any]:
    payload: dict[str, Any] = fixture_json("zoom", "meeting.participant_joined.json")
    payload["event_ts"] = 1795528810000
    payload["payload"]["object"]["participant"].update(
        id=HOST_ID,
        user_name="Ana Seller",
        participant_uuid="HOSTPARTICIPANTUUID",
        join_time="2026-11-24T14:00:10Z",
        email="Ana.Seller@acme.example",
    )
    return payload


def zoom_meeting() -> list[bytes]:
    """One meeting as Zoom delivers it: started, two joins, a leave, ended."""
    return [
        fixture("zoom", "meeting.started.json"),
        dumps(zoom_host_joined()),
        fixture("zoom", "meeting.participant_joined.json"),
        fixture("zoom", "meeting.participant_left.json"),
        fixture("zoom", "meeting.ended.json"),
    ]


def counter(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_zoom_meeting_is_folded_into_one_held_meeting_and_handshake_is_answered(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    await setup_tenant(db_engine)
    url = url_for("zoom")
    validation = fixture("zoom", "endpoint.url_validation.json")
    refused_before = counter("spm_ingest_rejections_total", source="zoom", reason="unauthenticated")
    async with ingest_client(kafka_settings, database_settings) as client:
        handshake = await client.post(url, content=validation, headers=sign("zoom", validation, ZOOM_SECRET))
        answers = [
            await client.post(url, content=body, headers=sign("zoom", body, ZOOM_SECRET))
            for body in zoom_meeting()
        ]
        ended = fixture("zoom", "meeting.ended.json")
        redelivered = await client.post(url, content=ended, headers=sign("zoom", ended, ZOOM_SECRET))
        bad = await client.post(url, content=ended, headers=sign("zoom", ended, "not-the-secret"))
        expired = await client.post(
            url, content=ended, headers=sign("zoom", ended, ZOOM_SECRET, NOW_SECONDS - 301)
        )
        malformed = await client.post(url, content=b"{", headers=sign("zoom", b"{", ZOOM_SECRET))

    assert handshake.status_code == 200
    assert handshake.headers["content-type"] == "application/json"
    expected_token = hmac.new(ZOOM_SECRET.encode(), b"qgg8vlvZRS6UYooatFL8Aw", hashlib.sha256).hexdigest()
    assert handshake.json() == {"plainToken": "qgg8vlvZRS6UYooatFL8Aw", "encryptedToken": expected_token}
    assert [a.status_code for a in answers] == [200] * 5
    assert [a.json()["accepted"] for a in answers] == [0, 0, 0, 0, 1]
    assert redelivered.status_code == 200
    assert (redelivered.json()["accepted"], redelivered.json()["duplicates"]) == (1, 1)
    assert (bad.status_code, bad.json()["errors"][0]["field"]) == (401, "x-zm-signature")
    assert (expired.status_code, expired.json()["errors"][0]["field"]) == (401, "x-zm-request-timestamp")
    assert (malformed.status_code, malformed.json()["errors"][0]["field"]) == (400, "body")
    refused = counter("spm_ingest_rejections_total", source="zoom", reason="unauthenticated") - refused_before
    assert refused == 2

    assert await activities_on_topic(kafka_settings) == [
        expected_activity(
            "zoom",
            ZOOM_UUID,
            "meeting",
            "outbound",
            "held",
            "2026-11-24T14:00:00Z",
            2700,
            [person("organizer", ANA, name="Ana Seller"), person("attendee", BO, name="Bo Buyer")],
            1795531500000,
        )
    ]
    # The handshake is not a payload: six meeting deliveries were captured raw, nothing else.
    assert len(await raw_on_topic(kafka_settings)) == 6
    async with db_engine.connect() as conn:
        state = (
            await conn.execute(
                text(
                    "SELECT state FROM webhook_state WHERE tenant_id = 'acme' AND source = 'zoom' AND object_key = :k"
                ),
                {"k": ZOOM_UUID},
            )
        ).scalar_one()
    stored = state if isinstance(state, dict) else json.loads(state)
    assert stored["ended"] is True
    assert stored["emitted_revision"] == 1795531500000
    assert sorted(p["key"] for p in stored["participants"]) == [
        "55555AAAiAAAAAiAiAiiAii",
        "HOSTPARTICIPANTUUID",
    ]


async def test_graph_validation_token_is_echoed_as_text_for_any_tenant_id_alike(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    await setup_tenant(db_engine)
    query = "?validationToken=Validation%3A%20Testing%20client"
    async with ingest_client(kafka_settings, database_settings) as client:
        # Echoing for known tenants only would tell which tenants exist: every tenant id is answered.
        answers = [
            await client.post(url_for("microsoft-graph", tenant) + query)
            for tenant in ("acme", "globex", "ACME!")
        ]
        too_long = await client.post(url_for("microsoft-graph", "globex") + "?validationToken=" + "x" * 1025)
        known_too_long = await client.post(url_for("microsoft-graph") + "?validationToken=" + "x" * 1025)
    for answer in answers:
        assert answer.status_code == 200
        assert answer.headers["content-type"] == "text/plain; charset=utf-8"
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.text == "Validation: Testing client"
    assert too_long.status_code == known_too_long.status_code == 422
    assert too_long.content == known_too_long.content
    assert too_long.json()["errors"] == [
        {"in": "query", "field": "validationToken", "reason": "longer than 1024 characters"}
    ]
    assert await raw_on_topic(kafka_settings) == []


#: One delivery per source with a wrong credential, and the field its refusal names.
FORGED = {
    "twilio": (fixture("twilio", "completed.txt"), {"x-twilio-signature": "bm9wZQ=="}, "x-twilio-signature"),
    "aircall": (
        fixture("aircall", "call.ended.json").replace(b"aircall-webhook-token-1", b"guess"),
        {},
        "token",
    ),
    "zoom": (
        fixture("zoom", "meeting.ended.json"),
        {"x-zm-signature": "v0=" + "0" * 64, "x-zm-request-timestamp": str(NOW_SECONDS)},
        "x-zm-signature",
    ),
    "calendly": (
        fixture("calendly", "invitee.created.json"),
        {"calendly-webhook-signature": f"t={NOW_SECONDS},v1=" + "0" * 64},
        "calendly-webhook-signature",
    ),
    "hubspot": (
        fixture("hubspot", "calls.json"),
        {"x-hubspot-signature-v3": "bm9wZQ==", "x-hubspot-request-timestamp": str(NOW_SECONDS * 1000)},
        "x-hubspot-signature-v3",
    ),
    "salesforce": (fixture("salesforce", "User.xml"), {}, "token"),
    "google-calendar": (
        fixture("google-calendar", "event.confirmed.json"),
        {"webhook-id": "msg_1", "webhook-timestamp": str(NOW_SECONDS), "webhook-signature": "v1,bm9wZQ=="},
        "webhook-signature",
    ),
    "microsoft-graph": (
        fixture("microsoft-graph", "change-notification.json"),
        {},
        "value[0].clientState",
    ),
    "gmail": (
        fixture("gmail", "message.json"),
        {"webhook-id": "msg_1", "webhook-timestamp": str(NOW_SECONDS), "webhook-signature": "v1,bm9wZQ=="},
        "webhook-signature",
    ),
    "ringcentral": (
        fixture("ringcentral", "session.disconnected.json"),
        {"verification-token": "guessed"},
        "verification-token",
    ),
}


async def test_unknown_tenants_are_answered_as_a_known_tenant_with_a_bad_signature(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    await setup_tenant(db_engine)
    assert sorted(FORGED) == sorted(WEBHOOK_SOURCES)
    async with ingest_client(kafka_settings, database_settings) as client:
        for source, (body, headers, field) in FORGED.items():
            answers = {
                tenant: await client.post(
                    endpoint(source, "guessed-token", tenant), content=body, headers=headers
                )
                for tenant in ("acme", "globex", "ACME!")
            }
            known = answers["acme"]
            assert known.status_code == 401, (source, known.text)
            assert known.headers["content-type"] == "application/problem+json"
            assert known.json()["errors"][0]["field"] == field, source
            assert "instance" not in known.json()  # the URL (and a token in it) is not echoed
            for tenant in ("globex", "ACME!"):
                assert answers[tenant].status_code == 401, (source, tenant)
                assert answers[tenant].content == known.content, (source, tenant)
                assert answers[tenant].headers["content-type"] == known.headers["content-type"]
            # Without any signature: the same for both again.
            bare = [await client.post(url_for(source, t), content=body) for t in ("acme", "globex")]
            assert bare[0].status_code == bare[1].status_code == 401, source
            assert bare[0].content == bare[1].content, source
        # An unknown source is a 404 (sources are public); a token only follows Salesforce.
        no_source = await client.post(url_for("fax"), content=b"{}")
        token_elsewhere = await client.post(url_for("twilio") + "/token", content=b"{}")
        too_large = [
            await client.post(url_for("aircall", t), content=b"{" + b" " * (2 * 1024 * 1024) + b"}")
            for t in ("acme", "globex")
        ]
    assert no_source.status_code == token_elsewhere.status_code == 404
    assert no_source.content == token_elsewhere.content
    assert no_source.json() == {
        "type": "about:blank",
        "title": "Not found",
        "status": 404,
        "detail": "no webhook endpoint at this URL",
    }
    assert [r.status_code for r in too_large] == [413, 413]
    assert await raw_on_topic(kafka_settings) == []
    assert await activities_on_topic(kafka_settings) == []
    assert await entities_on_topic(kafka_settings) == []


async def test_a_forged_salesforce_user_without_the_url_token_creates_nothing(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    await setup_tenant(db_engine)
    user = fixture("salesforce", "User.xml")  # the tenant's own OrganizationId: no secret
    token = SECRETS["salesforce"][0]
    async with ingest_client(kafka_settings, database_settings) as client:
        unsigned = await client.post(url_for("salesforce"), content=user)
        guessed = await client.post(endpoint("salesforce", "guessed-token"), content=user)
        other_org = await client.post(
            endpoint("salesforce", token),
            content=user.replace(ORGANIZATION_ID.encode(), b"00D000000000001EAA"),
        )
    assert unsigned.status_code == guessed.status_code == other_org.status_code == 401
    assert unsigned.json()["errors"] == [
        {
            "in": "path",
            "field": "token",
            "reason": "missing: the endpoint URL must end with the tenant's salesforce secret",
        }
    ]
    assert guessed.json()["errors"] == [{"in": "path", "field": "token", "reason": "does not match"}]
    # The OrganizationId stays a second check behind the token.
    assert other_org.json()["errors"] == [
        {"in": "body", "field": "OrganizationId", "reason": "not this tenant's organization"}
    ]
    assert await entities_on_topic(kafka_settings) == []
    assert await raw_on_topic(kafka_settings) == []


async def test_broker_down_answers_503_with_retry_after_quickly_and_marks_nothing_seen(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    await setup_tenant(db_engine)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    down = kafka_settings.model_copy(update={"bootstrap_servers": f"127.0.0.1:{closed_port}"})
    body = fixture("twilio", "completed.txt")
    async with ingest_client(down, database_settings, publish_timeout_seconds=1.0) as client:
        started = time.monotonic()
        answer = await client.post(
            url_for("twilio"), content=body, headers=sign("twilio", body, SECRETS["twilio"][0])
        )
        elapsed = time.monotonic() - started
    assert answer.status_code == 503
    assert answer.headers["retry-after"] == "2"
    # Within the 1 s timeout, not the client's default (tens of seconds): thrice it leaves a
    # loaded machine room for the rest of the request.
    assert elapsed < 3.0
    async with db_engine.connect() as conn:
        seen = (await conn.execute(text("SELECT count(*) FROM ingest_seen_events"))).scalar_one()
    assert seen == 0


def _event(
    external_id: str, sender: str, to: str, subject: str, direction: str = "outbound"
) -> dict[str, Any]:
    return {
        "source": "mail",
        "external_id": external_id,
        "kind": "email",
        "direction": direction,
        "outcome": "sent",
        "occurred_at": "2026-11-24T10:00:00Z",
        "subject": subject,
        "participants": [{"email": sender, "role": "from"}, {"email": to, "role": "to"}],
    }


PRIVACY = {
    **TENANT_SETTINGS,
    "privacy": {
        # The second written in punycode: it excludes the address mail carries decoded.
        "excluded_addresses": ["ceo@globex.example", "CFO@xn--bcher-kva.example"],
        "excluded_domains": ["lawfirm.example"],
        "excluded_subject_keywords": ["Confidential"],
        "drop_internal_only": True,
    },
}


async def test_privacy_exclusions_are_counted_and_never_published(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    keys = await setup_tenant(db_engine, PRIVACY)
    batch = [
        _event("e-ok", ANA, BO, "Proposal"),
        _event("e-address", ANA, "ceo@globex.example", "Hello"),
        _event("e-address-idn", ANA, "cfo@bücher.example", "Hello"),
        _event("e-domain", ANA, "counsel@eu.lawfirm.example", "Hello"),
        _event("e-keyword", ANA, BO, "CONFIDENTIAL: pricing"),
        _event("e-internal", ANA, "sam.se@acme.example", "Lunch", direction="internal"),
        _event("e-robot", "no-reply@globex.example", ANA, "Your invoice", direction="inbound"),
    ]
    before = {
        r: counter("spm_ingest_excluded_total", source="api", reason=r)
        for r in ("excluded_address", "excluded_domain", "excluded_keyword", "internal_only")
    }
    gmail = fixture("gmail", "message.json").replace(b"cy.cfo@globex.example", b"ceo@globex.example")
    async with ingest_client(kafka_settings, database_settings) as client:
        answer = await client.post(
            "/v1/events", json={"activities": batch}, headers={"Authorization": f"Bearer {keys['ingest']}"}
        )
        excluded_webhook = await client.post(
            url_for("gmail"), content=gmail, headers=sign("gmail", gmail, SECRETS["gmail"][0])
        )
    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert (body["accepted"], body["excluded"], body["duplicates"], body["automated"]) == (2, 5, 0, 1)
    after = {r: counter("spm_ingest_excluded_total", source="api", reason=r) for r in before}
    assert {r: after[r] - before[r] for r in before} == {
        "excluded_address": 2,
        "excluded_domain": 1,
        "excluded_keyword": 1,
        "internal_only": 1,
    }
    assert excluded_webhook.status_code == 200
    assert (excluded_webhook.json()["accepted"], excluded_webhook.json()["excluded"]) == (0, 1)

    published = await activities_on_topic(kafka_settings)
    assert [(a["external_id"], a["subject"], a["automated"], a["adapter_version"]) for a in published] == [
        ("e-ok", None, False, "canonical/1"),
        ("e-robot", None, True, "canonical/1"),
    ]
    # The delivery that held an excluded activity is not captured raw either.
    assert await raw_on_topic(kafka_settings) == []


async def test_subjects_are_kept_when_the_tenant_opts_in(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    keys = await setup_tenant(db_engine, {**TENANT_SETTINGS, "privacy": {"keep_subjects": True}})
    async with ingest_client(kafka_settings, database_settings) as client:
        answer = await client.post(
            "/v1/events",
            json={"activities": [_event("e-1", ANA, BO, "Proposal")]},
            headers={"Authorization": f"Bearer {keys['ingest']}"},
        )
    assert answer.status_code == 202
    assert [a["subject"] for a in await activities_on_topic(kafka_settings)] == ["Proposal"]


async def test_one_meeting_seen_from_calendly_google_and_zoom_is_one_activity(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    await setup_tenant(db_engine)
    calendly: dict[str, Any] = fixture_json("calendly", "invitee.created.json")
    calendly["payload"]["scheduled_event"].update(
        start_time="2026-11-24T14:00:00.000000Z", end_time="2026-11-24T14:30:00.000000Z"
    )
    google: dict[str, Any] = fixture_json("google-calendar", "event.confirmed.json")
    google.update(
        id="globexrenewal0001",
        iCalUID="globexrenewal0001@google.com",
        updated="2026-11-24T14:50:00.000Z",
        start={"dateTime": "2026-11-24T15:00:00+01:00", "timeZone": "Europe/Paris"},
        end={"dateTime": "2026-11-24T15:45:00+01:00", "timeZone": "Europe/Paris"},
    )
    del google["recurringEventId"], google["originalStartTime"]
    calendly_body, google_body = dumps(calendly), dumps(google)
    before = counter("spm_ingest_events_total", source="google-calendar", outcome="duplicate")
    async with ingest_client(kafka_settings, database_settings) as client:
        booked = await client.post(
            url_for("calendly"),
            content=calendly_body,
            headers=sign("calendly", calendly_body, SECRETS["calendly"][0]),
        )
        held_google = await client.post(
            url_for("google-calendar"),
            content=google_body,
            headers=sign("google-calendar", google_body, SECRETS["google-calendar"][0]),
        )
        zoom_answers = [
            await client.post(url_for("zoom"), content=body, headers=sign("zoom", body, ZOOM_SECRET))
            for body in zoom_meeting()
        ]
        # Someone joins after the end: Zoom emits the meeting again with other people (so other
        # keys), and it must keep the id it was published under.
        late: dict[str, Any] = fixture_json("zoom", "meeting.participant_joined.json")
        late["event_ts"] = 1795531600000
        late["payload"]["object"]["participant"].update(
            participant_uuid="LATEJOINER",
            email="dee@initech.example",
            user_name="Dee",
            join_time="2026-11-24T14:46:00Z",
        )
        late_body = dumps(late)
        late_answer = await client.post(
            url_for("zoom"), content=late_body, headers=sign("zoom", late_body, ZOOM_SECRET)
        )
    canonical = str(
        activity_id_for("acme", "calendly", "https://api.calendly.com/scheduled_events/NEWEVENT000000002")
    )
    assert (booked.json()["accepted"], booked.json()["duplicates"], booked.json()["activity_ids"]) == (
        1,
        0,
        [canonical],
    )
    assert (held_google.json()["accepted"], held_google.json()["duplicates"]) == (1, 1)
    assert held_google.json()["activity_ids"] == [canonical]
    assert (zoom_answers[-1].json()["accepted"], zoom_answers[-1].json()["duplicates"]) == (1, 1)
    assert counter("spm_ingest_events_total", source="google-calendar", outcome="duplicate") - before == 1
    assert late_answer.json()["activity_ids"] == [canonical]

    published = await activities_on_topic(kafka_settings)
    # Three sightings, one activity id: downstream keeps the highest revision (the latest news).
    assert [(a["source"], a["activity_id"], a["outcome"], a["revision"]) for a in published] == [
        ("zoom", canonical, "held", 1795531500000),
        ("zoom", canonical, "held", 1795531600000),
        ("google-calendar", canonical, "held", 1795531800000),
        ("calendly", canonical, "scheduled", 1795511702000),
    ]


async def test_events_batch_with_bad_items_lists_every_index_and_publishes_nothing(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    keys = await setup_tenant(db_engine)
    good = _event("e-1", ANA, BO, "Hi")
    bad_kind = {**_event("e-2", ANA, BO, "Hi"), "kind": "fax"}
    bad_phone = {
        **_event("e-3", ANA, BO, "Hi"),
        "kind": "call",
        "outcome": "connected",
        "participants": [{"phone": "555-0100", "role": "caller"}, {"email": BO, "role": "callee"}],
    }
    no_time = {k: v for k, v in _event("e-4", ANA, BO, "Hi").items() if k != "occurred_at"}
    headers = {"Authorization": f"Bearer {keys['ingest']}"}
    async with ingest_client(kafka_settings, database_settings) as client:
        refused = await client.post(
            "/v1/events", json={"activities": [good, bad_kind, bad_phone, no_time]}, headers=headers
        )
        first = await client.post("/v1/events", json={"activities": [good]}, headers=headers)
        again = await client.post("/v1/events", json={"activities": [good]}, headers=headers)
    assert refused.status_code == 422
    assert [(e["field"]) for e in refused.json()["errors"]] == [
        "activities.1.kind",
        "activities.2.participants.0.phone",
        "activities.3.occurred_at",
    ]
    assert (first.json()["accepted"], first.json()["duplicates"]) == (1, 0)
    assert (again.json()["accepted"], again.json()["duplicates"]) == (1, 1)
    assert [a["external_id"] for a in await activities_on_topic(kafka_settings)] == ["e-1"]


async def test_internal_domains_default_to_the_reps_email_domains(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    await setup_tenant(db_engine, {"privacy": {}})
    async with db_engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO ref_reps (tenant_id, rep_id, emails, updated_at) "
                "VALUES ('acme', 'rep-1', ARRAY['Ana.Seller@ACME.example'], now())"
            )
        )
    body = fixture("google-calendar", "event.confirmed.json")
    secret = SECRETS["google-calendar"][0]
    async with ingest_client(kafka_settings, database_settings) as client:
        answer = await client.post(
            url_for("google-calendar"), content=body, headers=sign("google-calendar", body, secret)
        )
    assert answer.status_code == 200, answer.text
    # Organised by acme.example (a rep's domain) with an external guest; with no internal
    # domains at all the same event would read as inbound.
    [meeting] = await activities_on_topic(kafka_settings)
    assert meeting["direction"] == "outbound"


async def test_a_reps_gmail_address_does_not_make_gmail_customers_colleagues(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """No internal domains configured: the reps' domains but free-mail ones (the list attribution
    uses). A customer writing from Gmail to a rep who also uses Gmail is inbound mail, and the
    rep's answer outbound, not two internal emails."""
    await setup_tenant(db_engine, {"privacy": {}})
    async with db_engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO ref_reps (tenant_id, rep_id, emails, updated_at) "
                "VALUES ('acme', 'rep-1', ARRAY['Ana.Seller@ACME.example', 'ana.seller@gmail.com'], now())"
            )
        )
    message = fixture("gmail", "message.json")
    inbound = (
        message.replace(b"Ana Seller <Ana.Seller@acme.example>", b"Victor <victor@gmail.com>")
        .replace(
            b'\\"Buyer, Bo\\" <bo.buyer@globex.example>, cy.cfo@globex.example', b"Ana.Seller@acme.example"
        )
        .replace(b"18c5f0a1b2c3d4e5", b"18c5f0a1b2c3d4e6")
        .replace(b"<CAF=8x3mQ1v7yK2pE9@mail.gmail.com>", b"<victor-1@mail.gmail.com>")
        .replace(b'"labelIds": ["SENT"]', b'"labelIds": ["INBOX"]')
    )
    outbound = message.replace(
        b'\\"Buyer, Bo\\" <bo.buyer@globex.example>, cy.cfo@globex.example', b"victor@gmail.com"
    ).replace(b"Sam SE <sam.se@acme.example>", b"ana.seller@gmail.com")
    secret = SECRETS["gmail"][0]
    async with ingest_client(kafka_settings, database_settings) as client:
        for body in (inbound, outbound):
            answer = await client.post(url_for("gmail"), content=body, headers=sign("gmail", body, secret))
            assert answer.status_code == 200, answer.text
    found = {
        a["external_id"]: (a["direction"], a["outcome"], [p["email"] for p in a["participants"]])
        for a in await activities_on_topic(kafka_settings)
    }
    assert found == {
        "<victor-1@mail.gmail.com>": (
            "inbound",
            "received",
            ["victor@gmail.com", "ana.seller@acme.example", "sam.se@acme.example"],
        ),
        "<CAF=8x3mQ1v7yK2pE9@mail.gmail.com>": (
            "outbound",
            "sent",
            ["ana.seller@acme.example", "victor@gmail.com", "ana.seller@gmail.com"],
        ),
    }


async def test_a_misspelt_privacy_setting_stored_by_hand_refuses_only_that_tenant(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    keys = await setup_tenant(db_engine, {"privacy": {"excluded_domain": ["lawfirm.example"]}})
    other = await setup_tenant(db_engine, TENANT_SETTINGS, tenant="globex")
    async with ingest_client(kafka_settings, database_settings) as client:
        answer = await client.post(
            "/v1/events",
            json={"activities": [_event("e-1", ANA, "counsel@lawfirm.example", "Hi")]},
            headers={"Authorization": f"Bearer {keys['ingest']}"},
        )
        served = await client.post(
            "/v1/events",
            json={"activities": [_event("e-2", ANA, "buyer@customer.example", "Hi")]},
            headers={"Authorization": f"Bearer {other['ingest']}"},
        )
    # Guessing a privacy policy could publish what the tenant excluded: unavailable, naming it.
    assert answer.status_code == 503
    assert answer.headers["Retry-After"] == "2"
    assert answer.json()["errors"] == [
        {
            "in": "tenant settings",
            "field": "privacy.excluded_domain",
            "reason": "Extra inputs are not permitted",
        }
    ]
    assert answer.json()["detail"].startswith(
        "tenant 'acme' has invalid settings: privacy.excluded_domain: Extra inputs are not permitted;"
    )
    assert served.status_code == 202, served.text
    assert [(a["tenant_id"], a["external_id"]) for a in await activities_on_topic(kafka_settings)] == [
        ("globex", "e-2")
    ]


async def test_one_source_double_booking_stays_two_meetings_but_another_source_joins_the_first(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    keys = await setup_tenant(db_engine)

    def booked(source: str, external_id: str, start: str, revision: int = 0) -> dict[str, Any]:
        return {
            "revision": revision,
            "source": source,
            "external_id": external_id,
            "kind": "meeting",
            "direction": "outbound",
            "outcome": "scheduled",
            "occurred_at": start,
            "participants": [{"email": ANA, "role": "organizer"}, {"email": BO, "role": "attendee"}],
        }

    headers = {"Authorization": f"Bearer {keys['ingest']}"}
    async with ingest_client(kafka_settings, database_settings) as client:
        calendar = await client.post(
            "/v1/events",
            json={
                "activities": [
                    booked("calendar", "evt-1", "2026-11-24T09:00:00Z"),
                    booked("calendar", "evt-2", "2026-11-24T09:05:00Z"),
                ]
            },
            headers=headers,
        )
        crm = await client.post(
            "/v1/events",
            json={"activities": [booked("crm", "mtg-9", "2026-11-24T08:58:00Z", revision=1)]},
            headers=headers,
        )
    first, second = (str(activity_id_for("acme", "calendar", e)) for e in ("evt-1", "evt-2"))
    assert (calendar.json()["duplicates"], calendar.json()["activity_ids"]) == (0, [first, second])
    # Published under the first booking's id; with revision 0 it would equal that booking's
    # revision and be a redelivery of it (same id and revision), counted and not republished.
    assert (crm.json()["duplicates"], crm.json()["activity_ids"]) == (1, [first])


async def test_invalid_settings_are_told_only_to_a_verified_delivery_of_that_tenant(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    # acme exists with a misspelt setting; globex does not exist at all.
    await setup_tenant(db_engine, {"privacy": {"keep_subject": True}})
    reason = {
        "in": "tenant settings",
        "field": "privacy.keep_subject",
        "reason": "Extra inputs are not permitted",
    }
    query = "?validationToken=Validation%3A%20Testing%20client"
    completed = fixture("twilio", "completed.txt")
    user = fixture("salesforce", "User.xml")
    async with ingest_client(kafka_settings, database_settings) as client:
        for source, (body, headers, _field) in FORGED.items():
            forged = [
                await client.post(endpoint(source, "guessed-token", t), content=body, headers=headers)
                for t in ("acme", "globex")
            ]
            bare = [await client.post(url_for(source, t), content=body) for t in ("acme", "globex")]
            for answers in (forged, bare):
                assert answers[0].status_code == answers[1].status_code == 401, (source, answers[0].text)
                assert answers[0].content == answers[1].content, source
        echoes = [await client.post(url_for("microsoft-graph", t) + query) for t in ("acme", "globex")]
        signed = await client.post(
            url_for("twilio"), content=completed, headers=sign("twilio", completed, SECRETS["twilio"][0])
        )
        # Salesforce checks OrganizationId against a setting: only once the URL token matched.
        salesforce = await client.post(endpoint("salesforce", SECRETS["salesforce"][0]), content=user)
    assert [(e.status_code, e.text) for e in echoes] == [(200, "Validation: Testing client")] * 2
    for verified in (signed, salesforce):
        assert verified.status_code == 503, verified.text
        assert verified.json()["errors"] == [reason]
        assert verified.json()["detail"].startswith(
            "tenant 'acme' has invalid settings: privacy.keep_subject"
        )
    assert await raw_on_topic(kafka_settings) == []
    assert await activities_on_topic(kafka_settings) == []
    assert await entities_on_topic(kafka_settings) == []
