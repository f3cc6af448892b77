"""Calendar holds from the other sources that carry a meeting's title: canonical meetings posted
to ``POST /v1/events`` (a calendar export) and HubSpot's meetings through its signed webhook,
the real broker, attribution, metrics and PostgreSQL, read back through the API.

The roster and CRM of ``test_attribution_held_out_situations_meetings2`` (Ana's Globex deal, Dana
its champion, Cy the SE). Ana's calendar export posts "HOLD: Globex demo" with Cy (time blocked,
no meeting), the same hold Dana attends (the meeting with her), the colleagues' "Holding company
review" (an internal meeting) and the Globex workshop, a meeting with Dana at revision 1 that
revision 2 turns into "HOLD: Globex workshop" Dana declined. HubSpot logs Ana's "HOLD: Globex
pilot" with no contact (time blocked), her "Globex pilot review" with Dana that a later edit makes
a hold with no contact, and "HOLD: Globex security review" with Dana (the meeting). The two
meetings that became holds are retracted as no meeting (``not_a_meeting``, with why), not as
deleted at their source.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.contracts.activities import activity_id_for
from libs.common.settings import DatabaseSettings, KafkaSettings
from libs.common.testing.stack import in_process_stack
from services.ingest.domain.ignored import OLDER_THAN_A_TIME_BLOCK
from services.ingest.domain.normalize import HOLD_TIME
from tests.integration.attribution.attribution_support import rows
from tests.integration.attribution.test_attribution_calendar_time_away import _november
from tests.integration.attribution.test_attribution_held_out_situations_meetings2 import (
    ANA,
    CRM,
    CY,
    DANA,
    _tenant,
)
from tests.integration.attribution.test_attribution_held_out_situations_vendors import _deliver
from tests.integration.ingest.ingest_integration_support import TENANT, dumps
from tests.integration.quarter.quarter_support import Tenant, get, settle, sync

EXPORT = "calendar-export"


def _exported(
    external_id: str, day: int, subject: str, *guests: tuple[str, str], revision: int = 1
) -> dict[str, Any]:
    """An hour Ana organised on ``day`` November 2026 at 10:00 Los Angeles time, as her calendar
    export posts it; ``guests`` (address, answer)."""
    external = any(not email.endswith("@acme.example") and answer != "declined" for email, answer in guests)
    return {
        "source": EXPORT,
        "external_id": external_id,
        "kind": "meeting",
        "direction": "outbound" if external else "internal",
        "outcome": "held",
        "occurred_at": f"2026-11-{day:02d}T18:00:00Z",
        "duration_seconds": 3600,
        "participants": [
            {"email": ANA, "role": "organizer", "response_status": "accepted"},
            *({"email": email, "role": "attendee", "response_status": answer} for email, answer in guests),
        ],
        "subject": subject,
        "revision": revision,
    }


def _hubspot(engagement_id: str, day: int, title: str, modified: str, *contacts: str) -> dict[str, Any]:
    """Ana's HubSpot meeting on ``day`` November 2026, 10:00 Los Angeles time, naming its owner
    and ``contacts`` by their CRM ids (their addresses are the ones held: a sync job's post)."""
    start = f"2026-11-{day:02d}T18:00:00.000Z"
    return {
        "objectType": "meetings",
        "id": engagement_id,
        "properties": {
            "hs_timestamp": start,
            "hs_meeting_title": title,
            "hs_meeting_start_time": start,
            "hs_meeting_end_time": f"2026-11-{day:02d}T19:00:00.000Z",
            "hs_meeting_outcome": "COMPLETED",
            "hubspot_owner_id": "rep-ana",
            "hs_lastmodifieddate": modified,
        },
        "associations": {
            "contacts": {"results": [{"id": c, "type": "meeting_event_to_contact"} for c in contacts]}
        },
        "createdAt": "2026-11-01T09:00:00.000Z",
        "updatedAt": modified,
        "archived": False,
    }


async def _post(stack: Any, tenant: Tenant, *activities: dict[str, Any]) -> dict[str, Any]:
    response = await stack.ingest.post(
        "/v1/events", json={"activities": list(activities)}, headers=tenant.ingest
    )
    assert response.status_code == 202, response.text
    return dict(response.json())


def _retraction(shown: dict[str, Any]) -> tuple[Any, ...]:
    attribution = shown["attribution"]
    explanation = attribution["explanation"]
    return (
        attribution["status"],
        attribution["rule_path"],
        explanation["reason"],
        explanation["read_by"],
        [v["status"] for v in shown["history"]],
    )


async def test_holds_posted_as_canonical_meetings_and_logged_in_hubspot_are_no_meetings(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    tenant = await _tenant(db_engine)
    async with in_process_stack(kafka_settings, database_settings) as stack:
        await sync(stack, db_engine, tenant, "2026-10-01T00:00:00Z", *CRM)
        export = await _post(
            stack,
            tenant,
            _exported("hold", 9, "HOLD: Globex demo", (CY, "accepted")),
            _exported("demo", 10, "HOLD: Globex demo", (CY, "accepted"), (DANA, "accepted")),
            _exported("review", 11, "Holding company review", (CY, "accepted")),
            _exported("workshop", 12, "Globex workshop", (CY, "accepted"), (DANA, "accepted")),
        )
        hubspot = await _deliver(
            stack,
            "hubspot",
            dumps(
                [
                    _hubspot("hs-hold", 16, "HOLD: Globex pilot", "2026-11-02T09:00:00.000Z"),
                    _hubspot("hs-pilot", 17, "Globex pilot review", "2026-11-02T09:00:00.000Z", "con-dana"),
                    _hubspot(
                        "hs-security",
                        18,
                        "HOLD: Globex security review",
                        "2026-11-02T09:00:00.000Z",
                        "con-dana",
                    ),
                ]
            ),
        )
        await settle(kafka_settings)
        # Dana declines the workshop, which Ana relabels a hold; the pilot review loses Dana.
        workshop = await _post(
            stack,
            tenant,
            _exported(
                "workshop", 12, "HOLD: Globex workshop", (CY, "accepted"), (DANA, "declined"), revision=2
            ),
        )
        pilot = await _deliver(
            stack,
            "hubspot",
            dumps([_hubspot("hs-pilot", 17, "HOLD: Globex pilot review", "2026-11-03T09:00:00.000Z")]),
        )
        await settle(kafka_settings)
        listed = await get(stack, tenant, "/v1/activities?limit=100")
        november = await _november(stack, tenant, "rep-ana")
        workshop_id, pilot_id = (
            activity_id_for(TENANT, EXPORT, "workshop"),
            activity_id_for(TENANT, "hubspot", "hs-pilot"),
        )
        shown = {
            name: await get(stack, tenant, f"/v1/activities/{i}")
            for name, i in (("workshop", workshop_id), ("pilot", pilot_id))
        }
        retracted = await rows(
            db_engine,
            "SELECT external_id, retracted FROM activities WHERE tenant_id = :t AND retracted ORDER BY external_id",
            {"t": TENANT},
        )

    assert (export["accepted"], export["ignored"]) == (3, [f"activities[0]: {HOLD_TIME}"])
    assert (hubspot["accepted"], hubspot["ignored"]) == (2, [f"[0] meetings/hs-hold: {HOLD_TIME}"])
    assert (workshop["accepted"], workshop["ignored"]) == (0, [f"activities[0]: {HOLD_TIME}"])
    assert (pilot["accepted"], pilot["ignored"]) == (0, [f"[0] meetings/hs-pilot: {HOLD_TIME}"])
    found = {
        a["activity_id"]: (a["outcome"], a["status"], a["deal_id"], a["rep_id"]) for a in listed["items"]
    }
    assert found == {
        str(activity_id_for(TENANT, EXPORT, "demo")): ("held", "attributed", "deal-globex", "rep-ana"),
        str(activity_id_for(TENANT, EXPORT, "review")): ("held", "internal", None, "rep-ana"),
        str(workshop_id): ("held", "excluded", None, None),
        str(pilot_id): ("held", "excluded", None, None),
        str(activity_id_for(TENANT, "hubspot", "hs-security")): (
            "held",
            "attributed",
            "deal-globex",
            "rep-ana",
        ),
    }
    # Booked and held: the demo and the security review Dana attends; the colleagues' review internal.
    assert november == [(2, 2, 0, 0, 1)]
    assert _retraction(shown["workshop"]) == (
        "excluded",
        "not_a_meeting",
        HOLD_TIME,
        "canonical/1",
        ["attributed", "excluded"],
    )
    assert _retraction(shown["pilot"]) == (
        "excluded",
        "not_a_meeting",
        HOLD_TIME,
        "hubspot/1",
        ["attributed", "excluded"],
    )
    # Out of the held sweep's index, as a meeting deleted at its source is.
    assert retracted == [("hs-pilot", True), ("workshop", True)]


async def test_a_hold_a_caller_attends_is_a_meeting_and_one_superseded_by_a_hold_is_none(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """One export posts "HOLD: Globex pricing call" with Cy and a customer on the phone from
    ``+1 415-555-0199`` (no CRM record), reported held and filed under the Globex deal: the meeting,
    on that deal (before: ignored as a hold; and, identified by no contact, Ana's internal meeting);
    Ana's "Pipeline sync" with Cy and the same caller, naming nothing: her internal meeting; and
    the workshop at revision 1 (Dana accepted) with its revision 2, a hold Dana declined: no
    meeting (before: revision 1 was published and attributed). Then the kickoff's hold at
    revision 2, and its meeting at revision 1 posted after it (a retried post): ignored as an
    older state (before: published, a customer meeting counted); revision 3, a meeting again, is
    the meeting. HubSpot's review hold delivered before its older meeting version: the same."""
    caller = {"phone": "+14155550199", "role": "attendee"}
    pricing = _exported("pricing", 9, "HOLD: Globex pricing call", (CY, "accepted"))
    pricing["participants"].append(caller)
    pricing["crm"] = {"deal_id": "deal-globex"}
    # The client knows the caller is the customer.
    pricing["direction"] = "outbound"
    sync_call = _exported("sync", 10, "Pipeline sync", (CY, "accepted"))
    sync_call["participants"].append(caller)
    tenant = await _tenant(db_engine)
    async with in_process_stack(kafka_settings, database_settings) as stack:
        await sync(stack, db_engine, tenant, "2026-10-01T00:00:00Z", *CRM)
        export = await _post(
            stack,
            tenant,
            pricing,
            sync_call,
            _exported("workshop", 12, "Globex workshop", (CY, "accepted"), (DANA, "accepted")),
            _exported(
                "workshop", 12, "HOLD: Globex workshop", (CY, "accepted"), (DANA, "declined"), revision=2
            ),
        )
        await settle(kafka_settings)
        # The kickoff's hold (revision 2) is posted before its meeting (revision 1, a retried
        # post): the meeting is an older state. Revision 3, a meeting again, is the meeting.
        kickoff = [
            await _post(
                stack, tenant, _exported("kickoff", 13, "HOLD: Globex kickoff", (CY, "accepted"), revision=2)
            ),
            await _post(
                stack,
                tenant,
                _exported("kickoff", 13, "Globex kickoff", (CY, "accepted"), (DANA, "accepted")),
            ),
        ]
        await settle(kafka_settings)
        before_restore = await get(stack, tenant, "/v1/activities?limit=100")
        kickoff.append(
            await _post(
                stack,
                tenant,
                _exported("kickoff", 13, "Globex kickoff", (CY, "accepted"), (DANA, "accepted"), revision=3),
            )
        )
        # HubSpot: the review's hold (edited 3 November) delivered before its meeting with Dana
        # (the version of 2 November, a sync job's late page): the meeting is an older state.
        hubspot = [
            await _deliver(
                stack,
                "hubspot",
                dumps([_hubspot("hs-review", 16, "HOLD: Globex review", "2026-11-03T09:00:00.000Z")]),
            ),
            await _deliver(
                stack,
                "hubspot",
                dumps([_hubspot("hs-review", 16, "Globex review", "2026-11-02T09:00:00.000Z", "con-dana")]),
            ),
        ]
        await settle(kafka_settings)
        listed = await get(stack, tenant, "/v1/activities?limit=100")
        november = await _november(stack, tenant, "rep-ana")
        blocks = await rows(
            db_engine,
            "SELECT revision FROM ingest_time_blocks WHERE tenant_id = :t ORDER BY 1",
            {"t": TENANT},
        )

    assert (export["accepted"], export["ignored"]) == (
        2,
        [f"activities[2]: {OLDER_THAN_A_TIME_BLOCK}", f"activities[3]: {HOLD_TIME}"],
    )
    assert [(k["accepted"], k["ignored"]) for k in kickoff] == [
        (0, [f"activities[0]: {HOLD_TIME}"]),
        (0, [f"activities[0]: {OLDER_THAN_A_TIME_BLOCK}"]),
        (1, []),
    ]
    assert len(before_restore["items"]) == 2
    assert [(h["accepted"], h["ignored"]) for h in hubspot] == [
        (0, [f"[0] meetings/hs-review: {HOLD_TIME}"]),
        (0, [f"hubspot hs-review: {OLDER_THAN_A_TIME_BLOCK}"]),
    ]
    # The workshop's hold at revision 2, the kickoff's at 2, the HubSpot review's at its edit.
    assert blocks == [(2,), (2,), (1793696400000,)]
    found = {
        a["activity_id"]: (a["outcome"], a["status"], a["rule_path"], a["deal_id"], a["rep_id"])
        for a in listed["items"]
    }
    assert found == {
        str(activity_id_for(TENANT, EXPORT, "pricing")): (
            "held",
            "attributed",
            "explicit_deal",
            "deal-globex",
            "rep-ana",
        ),
        str(activity_id_for(TENANT, EXPORT, "sync")): ("held", "internal", "internal", None, "rep-ana"),
        str(activity_id_for(TENANT, EXPORT, "kickoff")): (
            "held",
            "attributed",
            "contact_role",
            "deal-globex",
            "rep-ana",
        ),
    }
    # Booked and held: the pricing call and the kickoff (revision 3); the pipeline sync
    # internal; the workshop nothing.
    assert november == [(2, 2, 0, 0, 1)]
