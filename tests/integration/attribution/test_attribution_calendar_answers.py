"""Meetings as calendar exports carry them, with each invitee's answer, through ingest, the real
broker, attribution, metrics, PostgreSQL and the gateway: a rep who declined is not credited, a
buyer who declined is no evidence for a deal, a meeting every buyer declined is internal."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.contracts.activities import activity_id_for
from libs.common.settings import DatabaseSettings, KafkaSettings
from libs.common.tenancy import create_tenant
from libs.common.testing.stack import TEST_SECRET_KEY, in_process_stack
from tests.integration.attribution.test_attribution_real_crm import REP, TENANT, _attribution, _sync_crm
from tests.integration.polling import poll_rows

BO = {"entity_type": "rep", "id": "rep-2", "emails": ["bo@seller.example"]}
ACCOUNT = {"entity_type": "account", "id": "acc-1", "domains": ["buyer.example"]}
DANA = {"entity_type": "contact", "id": "con-1", "account_id": "acc-1", "emails": ["dana@buyer.example"]}
LEE = {"entity_type": "contact", "id": "con-2", "account_id": "acc-1", "emails": ["lee@buyer.example"]}
#: Dana is on Ana's deal, Lee on Bo's.
DEAL_ANA = {
    "entity_type": "deal",
    "id": "deal-ana",
    "account_id": "acc-1",
    "owner_rep_id": "rep-1",
    "created_at": "2026-10-01T00:00:00Z",
    "contacts": [{"contact_id": "con-1", "role": "champion"}],
}
DEAL_BO = {
    **DEAL_ANA,
    "id": "deal-bo",
    "owner_rep_id": "rep-2",
    "contacts": [{"contact_id": "con-2", "role": "buyer"}],
}


def _meeting(external_id: str, *people: tuple[str, str, str | None]) -> dict[str, Any]:
    """A held meeting exported from a calendar: (email, role, the invitee's answer as sent)."""
    participants = []
    for email, role, answer in people:
        person: dict[str, Any] = {"email": email, "role": role}
        if answer is not None:
            person["response_status"] = answer
        participants.append(person)
    return {
        "source": "calendar-export",
        "external_id": external_id,
        "kind": "meeting",
        "direction": "outbound",
        "outcome": "held",
        "occurred_at": "2026-11-02T15:00:00Z",
        "duration_seconds": 1800,
        "participants": participants,
    }


MEETINGS = [
    # Dana (Ana's deal) said no in Google's words; Lee (Bo's deal) came: Bo's deal.
    _meeting(
        "buyer-declined",
        ("ana@seller.example", "organizer", "accepted"),
        ("dana@buyer.example", "attendee", "declined"),
        ("lee@buyer.example", "attendee", "accepted"),
    ),
    # Dana's meeting; Ana (the deal's owner) declined in another case, Bo went: Bo is credited.
    _meeting(
        "rep-declined",
        ("dana@buyer.example", "organizer", "organizer"),
        ("ana@seller.example", "attendee", "Declined"),
        ("bo@seller.example", "attendee", "tentativelyAccepted"),
    ),
    # Every buyer declined (Graph's and Google's spellings): Ana met nobody but herself.
    _meeting(
        "all-declined",
        ("ana@seller.example", "organizer", None),
        ("dana@buyer.example", "attendee", "DECLINED"),
        ("lee@buyer.example", "attendee", "declined"),
    ),
    # No answers at all: as before, Dana's and Lee's deals both in play, Ana's leads as she is there.
    _meeting(
        "no-answers",
        ("ana@seller.example", "organizer", None),
        ("dana@buyer.example", "attendee", "needsAction"),
        ("lee@buyer.example", "attendee", None),
    ),
]
NAMES = ("buyer-declined", "rep-declined", "all-declined", "no-answers")


async def test_declined_invitees_neither_credit_a_rep_nor_point_at_a_deal(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    async with db_engine.begin() as conn:
        tenant = await create_tenant(conn, TENANT, TEST_SECRET_KEY)
    keys: dict[str, str] = tenant["api_keys"]  # type: ignore[assignment]
    auth = {"Authorization": f"Bearer {keys['ingest']}"}
    ids = {name: activity_id_for(TENANT, "calendar-export", name) for name in NAMES}
    async with in_process_stack(kafka_settings, database_settings) as stack:
        await _sync_crm(stack, db_engine, auth, REP, BO, ACCOUNT, DANA, LEE, DEAL_ANA, DEAL_BO)
        refused = await stack.ingest.post(
            "/v1/events",
            json={"activities": [_meeting("maybe", ("dana@buyer.example", "attendee", "maybe"))]},
            headers=auth,
        )
        posted = await stack.ingest.post("/v1/events", json={"activities": MEETINGS}, headers=auth)
        assert posted.status_code == 202, posted.text
        rows = {name: await _attribution(db_engine, ids[name]) for name in NAMES}
        contributions = await poll_rows(
            db_engine,
            "SELECT activity_id, rep_id, deal_id, status, meetings_held, internal_meetings_held "
            "FROM metric_contributions WHERE tenant_id = :t",
            {"t": TENANT},
            lambda found: len(found) == 4,
        )
        read = await stack.gateway.get(
            f"/v1/activities/{ids['rep-declined']}", headers={"Authorization": f"Bearer {keys['read']}"}
        )

    assert refused.status_code == 422
    assert refused.json()["errors"] == [
        {
            "in": "body",
            "field": "activities.0.participants.0.response_status",
            "reason": "unknown response status 'maybe': use accepted, declined, tentative or needs_action "
            "(Google's needsAction and Graph's tentativelyAccepted, organizer, none and notResponded are read too)",
        }
    ]
    decided = {
        name: (r.status, r.rep_id, r.deal_id, r.explanation["rule_path"], r.explanation.get("declined"))
        for name, r in rows.items()
    }
    assert decided == {
        "buyer-declined": ("attributed", "rep-1", "deal-bo", "contact_role", [1]),
        "rep-declined": ("attributed", "rep-2", "deal-ana", "contact_role", [1]),
        "all-declined": ("internal", "rep-1", None, "internal", [1, 2]),
        "no-answers": ("attributed", "rep-1", "deal-ana", "owner_participates", None),
    }
    by_id = {r[0]: r[1:] for r in contributions}
    assert by_id == {
        ids["buyer-declined"]: ("rep-1", "deal-bo", "attributed", 1, 0),
        ids["rep-declined"]: ("rep-2", "deal-ana", "attributed", 1, 0),
        ids["all-declined"]: ("rep-1", None, "internal", 0, 1),
        ids["no-answers"]: ("rep-1", "deal-ana", "attributed", 1, 0),
    }
    # The answers are read back as published: ours, whatever the spelling sent.
    assert read.status_code == 200, read.text
    assert [(p["email"], p.get("response_status")) for p in read.json()["payload"]["participants"]] == [
        ("dana@buyer.example", "accepted"),
        ("ana@seller.example", "declined"),
        ("bo@seller.example", "tentative"),
    ]
