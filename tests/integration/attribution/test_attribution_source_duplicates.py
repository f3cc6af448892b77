"""One phone call reported by a dialer and by a CRM's call log, one email captured from the
mailbox and logged by the CRM, through ingest, the real broker, attribution, metrics, PostgreSQL
and the gateway: both reports are attributed and readable, the call or email is counted once
(under the report attributed first); two calls of one source to the same number minutes apart are
two calls, two emails to one buyer under different subjects two emails; another tenant's report of
the same call is its own."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.contracts.activities import activity_id_for
from libs.common.settings import DatabaseSettings, KafkaSettings
from libs.common.tenancy import create_tenant
from libs.common.testing.stack import TEST_SECRET_KEY, in_process_stack
from services.attribution.reattribution import reattribute
from tests.integration.attribution.test_attribution_real_crm import ACCOUNT, DEAL, REP, TENANT, _attribution
from tests.integration.polling import poll_json, poll_rows, references_landed

OTHER = "globex"
CONTACT = {"entity_type": "contact", "id": "con-1", "account_id": "acc-1", "phones": ["+14155550100"]}
CRM: dict[str, Any] = {
    "source": "test",
    "entities": [{"updated_at": "2026-11-01T00:00:00Z", **e} for e in (REP, ACCOUNT, CONTACT, DEAL)],
}


def _dialed(external_id: str, at: str, seconds: int) -> dict[str, Any]:
    """The dialer's report: the rep's line calls the contact, in E.164."""
    return {
        "source": "aircall",
        "external_id": external_id,
        "kind": "call",
        "direction": "outbound",
        "outcome": "connected",
        "occurred_at": at,
        "duration_seconds": seconds,
        "participants": [
            {"phone": "+14155550001", "role": "caller"},
            {"phone": "+14155550100", "role": "callee"},
        ],
    }


def _logged(external_id: str, at: str, seconds: int) -> dict[str, Any]:
    """The CRM's call log of a call: the rep by email, the number as the rep typed it."""
    return {
        "source": "hubspot-calls",
        "external_id": external_id,
        "kind": "call",
        "direction": "outbound",
        "outcome": "connected",
        "occurred_at": at,
        "duration_seconds": seconds,
        "participants": [
            {"email": "ana@seller.example", "role": "caller"},
            {"phone": "(415) 555-0100", "role": "callee"},
        ],
        "crm": {"contact_ids": ["con-1"]},
    }


async def _tenant(engine: AsyncEngine, tenant_id: str) -> dict[str, str]:
    async with engine.begin() as conn:
        tenant = await create_tenant(conn, tenant_id, TEST_SECRET_KEY)
    keys: dict[str, str] = tenant["api_keys"]  # type: ignore[assignment]
    return keys


async def _post(stack: Any, key: str, *activities: dict[str, Any]) -> None:
    posted = await stack.ingest.post(
        "/v1/events", json={"activities": list(activities)}, headers={"Authorization": f"Bearer {key}"}
    )
    assert posted.status_code == 202, posted.text


async def test_a_dialer_call_and_its_crm_log_count_once_and_both_stay_readable(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    keys = await _tenant(db_engine, TENANT)
    other = await _tenant(db_engine, OTHER)
    ids = {
        name: activity_id_for(TENANT, source, name)
        for name, source in (
            ("dial-1", "aircall"),
            ("log-1", "hubspot-calls"),
            ("log-2", "hubspot-calls"),
            ("dial-2", "aircall"),
            ("dial-3", "aircall"),
            ("dial-4", "aircall"),
        )
    }
    async with in_process_stack(kafka_settings, database_settings) as stack:
        for key in (keys["ingest"], other["ingest"]):
            crm = await stack.ingest.post(
                "/v1/crm/sync", json=CRM, headers={"Authorization": f"Bearer {key}"}
            )
            assert crm.status_code == 202, crm.text
        for tenant in (TENANT, OTHER):
            await references_landed(db_engine, tenant, CRM["entities"])
        # The dialer first, the CRM's log 40 s later (its clock, its rounding): the log is the duplicate.
        await _post(stack, keys["ingest"], _dialed("dial-1", "2026-11-02T17:00:00Z", 60))
        await _attribution(db_engine, ids["dial-1"])
        await _post(stack, keys["ingest"], _logged("log-1", "2026-11-02T17:00:40Z", 62))
        # The other way round an hour later: the log first, the dialer's report is the duplicate.
        await _post(stack, keys["ingest"], _logged("log-2", "2026-11-02T18:00:00Z", 300))
        await _attribution(db_engine, ids["log-2"])
        await _post(stack, keys["ingest"], _dialed("dial-2", "2026-11-02T18:01:30Z", 297))
        # Two calls of one source to the same number three minutes apart: a redial, two calls.
        await _post(
            stack,
            keys["ingest"],
            _dialed("dial-3", "2026-11-02T19:00:00Z", 45),
            _dialed("dial-4", "2026-11-02T19:03:00Z", 30),
        )
        # Another tenant's log of the 17:00 call, same rep id and number: nothing of acme's applies.
        await _post(stack, other["ingest"], _logged("log-1", "2026-11-02T17:00:40Z", 62))
        contributions = await poll_rows(
            db_engine,
            "SELECT tenant_id, activity_id, version, status, deal_id, dials, connects, conversations, "
            "talk_seconds, activities FROM metric_contributions ORDER BY tenant_id, occurred_at, activity_id",
            {},
            lambda rows: len(rows) == 7,
        )
        read = {"Authorization": f"Bearer {keys['read']}"}
        scores = await poll_json(
            stack.gateway,
            "/v1/reps/rep-1/scores?granularity=day",
            read,
            lambda body: bool(body["periods"]) and body["periods"][0]["counts"]["dials"] == 4,
        )
        activities = {}
        for name in ("dial-1", "log-1", "log-2", "dial-2"):
            response = await stack.gateway.get(f"/v1/activities/{ids[name]}", headers=read)
            assert response.status_code == 200, response.text
            activities[name] = response.json()
        listed = await stack.gateway.get("/v1/activities?kind=call&limit=10", headers=read)

    got = {(row[0], row[1]): row[2:] for row in contributions}
    other_log = activity_id_for(OTHER, "hubspot-calls", "log-1")
    assert got == {
        # version, status, deal, dials, connects, conversations, talk seconds, activities
        (TENANT, ids["dial-1"]): (1, "attributed", "deal-1", 1, 1, 1, 60, 1),
        # A second report credits nothing, as an automated or excluded activity: counted nowhere.
        (TENANT, ids["log-1"]): (1, "attributed", None, 0, 0, 0, 0, 0),
        (TENANT, ids["log-2"]): (1, "attributed", "deal-1", 1, 1, 1, 300, 1),
        (TENANT, ids["dial-2"]): (1, "attributed", None, 0, 0, 0, 0, 0),
        (TENANT, ids["dial-3"]): (1, "attributed", "deal-1", 1, 1, 0, 45, 1),
        (TENANT, ids["dial-4"]): (1, "attributed", "deal-1", 1, 1, 0, 30, 1),
        (OTHER, other_log): (1, "attributed", "deal-1", 1, 1, 1, 62, 1),
    }
    counts = scores["periods"][0]["counts"]
    assert (counts["dials"], counts["connects"], counts["conversations"], counts["talk_seconds"]) == (
        4,
        4,
        2,
        435,
    )
    assert counts["activities"] == 4
    # 4 dials x 1 + 4 connects x 2 + 2 conversations x 3 (the default model); 30 when counted twice.
    assert scores["periods"][0]["score"] == 18.0
    # Both reports of each call are read back, attributed alike; the second names the first.
    attribution = {name: body["attribution"] for name, body in activities.items()}
    assert {name: (a["status"], a["deal_id"], a["rep_id"]) for name, a in attribution.items()} == {
        name: ("attributed", "deal-1", "rep-1") for name in ("dial-1", "log-1", "log-2", "dial-2")
    }
    assert {name: a["duplicate_of"] for name, a in attribution.items()} == {
        "dial-1": None,
        "log-1": str(ids["dial-1"]),
        "log-2": None,
        "dial-2": str(ids["log-2"]),
    }
    assert attribution["log-1"]["explanation"]["duplicate"] == {
        "of": str(ids["dial-1"]),
        "source": "aircall",
        "seconds_apart": 40.0,
        "reason": "the same call as the report from aircall attributed first: same rep, a shared counterpart "
        "number, at most 120 s apart; attributed as usual, counted once, under the first report",
    }
    assert activities["log-1"]["payload"]["participants"][1]["phone"] == "+14155550100"
    assert listed.status_code == 200, listed.text
    assert {item["activity_id"]: item["duplicate_of"] for item in listed.json()["items"]} == {
        str(ids["dial-4"]): None,
        str(ids["dial-3"]): None,
        str(ids["dial-2"]): str(ids["log-2"]),
        str(ids["log-2"]): None,
        str(ids["log-1"]): str(ids["dial-1"]),
        str(ids["dial-1"]): None,
    }

    # Re-deciding them (each alone, or all together, in either arrival order) leaves every pair
    # as it is: nothing would change.
    for batch_size in (1, 500):
        again = await reattribute(
            db_engine,
            None,
            "t.",
            TENANT,
            datetime(2026, 11, 2, tzinfo=UTC),
            dry_run=True,
            batch_size=batch_size,
        )
        assert (again.examined, again.changed) == (6, 0)


def _mail(source: str, external_id: str, at: str, subject: str, **fields: Any) -> dict[str, Any]:
    """Ana's email to Amy, as a mailbox connector or a CRM's email log reports it."""
    return {
        "source": source,
        "external_id": external_id,
        "kind": "email",
        "direction": "outbound",
        "outcome": "sent",
        "occurred_at": at,
        "subject": subject,
        "participants": [
            {"email": "ana@seller.example", "role": "from"},
            {"email": "amy@buyer.example", "role": "to"},
        ],
        **fields,
    }


async def test_an_email_from_the_mailbox_and_its_crm_log_count_once(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    keys = await _tenant(db_engine, TENANT)
    contact = {
        "entity_type": "contact",
        "id": "con-1",
        "account_id": "acc-1",
        "emails": ["amy@buyer.example"],
    }
    crm: dict[str, Any] = {
        "source": "test",
        "entities": [{"updated_at": "2026-11-01T00:00:00Z", **e} for e in (REP, ACCOUNT, contact, DEAL)],
    }
    mails = {
        # The CRM's log of the mailbox's email arrives first (a BCC-logging address, seconds
        # later by its clock), in capitals and as a reply: the mailbox's is the duplicate.
        "logged": _mail("hubspot-emails", "logged", "2026-11-02T17:00:04Z", "RE: Pricing for Q1"),
        "sent": _mail("gmail", "sent", "2026-11-02T17:00:00Z", "Re: pricing  for Q1"),
        # Another email to Amy from the mailbox 90 s later, and the CRM's log of a third 90 s
        # after that: two emails more (subjects are dropped by default: time tells them apart).
        "contract": _mail("gmail", "contract", "2026-11-02T17:01:30Z", "Contract"),
        "agenda": _mail("hubspot-emails", "agenda", "2026-11-02T17:03:00Z", "Agenda"),
    }
    ids = {name: activity_id_for(TENANT, mail["source"], name) for name, mail in mails.items()}
    async with in_process_stack(kafka_settings, database_settings) as stack:
        synced = await stack.ingest.post(
            "/v1/crm/sync", json=crm, headers={"Authorization": f"Bearer {keys['ingest']}"}
        )
        assert synced.status_code == 202, synced.text
        await references_landed(db_engine, TENANT, crm["entities"])
        await _post(stack, keys["ingest"], mails["logged"])
        await _attribution(db_engine, ids["logged"])
        await _post(stack, keys["ingest"], mails["sent"], mails["contract"], mails["agenda"])
        contributions = await poll_rows(
            db_engine,
            "SELECT activity_id, status, deal_id, emails_sent, activities FROM metric_contributions "
            "WHERE tenant_id = :t ORDER BY occurred_at, activity_id",
            {"t": TENANT},
            lambda rows: len(rows) == 4,
        )
        read = {"Authorization": f"Bearer {keys['read']}"}
        sent = await stack.gateway.get(f"/v1/activities/{ids['sent']}", headers=read)

    assert {row[0]: tuple(row[1:]) for row in contributions} == {
        ids["logged"]: ("attributed", "deal-1", 1, 1),
        ids["sent"]: ("attributed", None, 0, 0),
        ids["contract"]: ("attributed", "deal-1", 1, 1),
        ids["agenda"]: ("attributed", "deal-1", 1, 1),
    }
    assert sent.status_code == 200, sent.text
    attribution = sent.json()["attribution"]
    assert (attribution["status"], attribution["deal_id"], attribution["duplicate_of"]) == (
        "attributed",
        "deal-1",
        str(ids["logged"]),
    )
    assert attribution["explanation"]["duplicate"]["reason"] == (
        "the same email as the report from hubspot-emails attributed first: same rep, a shared counterpart "
        "address, the same subject, at most 60 s apart; attributed as usual, counted once, under the first report"
    )
