"""Calendar holds, as a RevOps admin who wired Google Calendar and Microsoft 365 sends them and a
sales manager reads them on the scorecard.

Ana's Google calendar and Bo's Outlook mailbox through their signed webhooks (as the connectors
post them), the roster and CRM of ``test_attribution_held_out_situations_meetings2`` through
``POST /v1/crm/sync``; the real broker, attribution, metrics and PostgreSQL; the activities and
each rep's November scorecard read back through the API.

A rep blocks the slot she means to offer a customer and invites the SE who will demo, or a
colleague: "HOLD: Globex demo", "Hold \u2013 Globex QBR (tentative)", "Placeholder: Globex", Bo's
"HOLD: Hooli pilot" in Outlook, and one the connector forwards as the word alone (``hold``: the
tenant keeps no subjects). Time blocked for a meeting, none held. A hold Dana attends is the
meeting with her; Ana's hold edited into the real invitation (title changed, Dana added) is the
meeting from that revision; a hold Dana accepted and then declined is retracted (the meeting
published while she attended, `excluded` as no meeting: ``not_a_meeting``, with why); "Holding company review with
Globex CFO" is a meeting, and the colleagues' "Holding company review" an internal one.

Before, each hold sent to colleagues was an internal meeting held once its time passed, and the
declined one too: Ana's November read 3 meetings booked and held and 6 internal meetings held (a
manager counts 1), Bo's 1 internal (a manager counts none).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.contracts.activities import activity_id_for
from libs.common.settings import DatabaseSettings, KafkaSettings
from libs.common.testing.stack import in_process_stack
from services.ingest.domain.normalize import HOLD_TIME
from tests.integration.attribution.attribution_support import rows
from tests.integration.attribution.test_attribution_calendar_time_away import _november
from tests.integration.attribution.test_attribution_held_out_situations_meetings2 import (
    ANA,
    BO,
    CRM,
    CY,
    DANA,
    ELI,
    GC,
    MS,
    _ana,
    _graph,
    _in_anas_calendar,
    _tenant,
)
from tests.integration.attribution.test_attribution_held_out_situations_vendors import _deliver, _guest
from tests.integration.ingest.ingest_integration_support import TENANT, dumps
from tests.integration.quarter.quarter_support import get, settle, sync


def _slot(day: int, *guests: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """An hour Ana organised on ``day`` November 2026, 10:00 Los Angeles time."""
    return _ana(
        f"x{day}", f"2026-11-{day:02d}T10:00:00-08:00", f"2026-11-{day:02d}T11:00:00-08:00", *guests, **fields
    )


#: Ana's hold for the Globex pilot review, the SE keeping the hour free; edited two days later
#: into the invitation Dana accepts (same event: title changed, Dana added, a newer ``updated``).
PILOT_HOLD = _slot(20, _guest(CY), summary="HOLD: Globex pilot review", updated="2026-11-02T09:00:00.000Z")
PILOT = {
    **PILOT_HOLD,
    "summary": "Globex pilot review",
    "attendees": [*PILOT_HOLD["attendees"], _guest(DANA)],
    "updated": "2026-11-04T09:00:00.000Z",
}
#: Ana's hold Dana accepted (the meeting with her), then declined: a hold only colleagues attend
#: again, a later state of the meeting published, which it retracts (as no meeting, not deleted).
WORKSHOP = _slot(
    23, _guest(CY), _guest(DANA), summary="HOLD: Globex workshop", updated="2026-11-05T09:00:00.000Z"
)
WORKSHOP_DECLINED = {
    **WORKSHOP,
    "attendees": [*WORKSHOP["attendees"][:-1], _guest(DANA, "declined")],
    "updated": "2026-11-06T09:00:00.000Z",
}
ANA_CALENDAR: list[dict[str, Any]] = [
    _slot(9, _guest(CY), summary="HOLD: Globex demo"),
    _slot(10, _guest(BO, "needsAction"), summary="Hold \u2013 Globex QBR (tentative)"),
    _slot(11, _guest(CY), summary="Placeholder: Globex"),
    # As the connector forwards a hold for a tenant that keeps no subjects: the word alone.
    _slot(12, _guest(CY), summary="hold"),
    # Dana accepted Ana's hold: the meeting with her.
    _slot(13, _guest(CY), _guest(DANA), summary="HOLD: Globex demo"),
    _slot(16, _guest(ELI), summary="Holding company review with Globex CFO"),
    _slot(17, _guest(CY), summary="Holding company review"),
]
BO_MAILBOX: list[dict[str, Any]] = [
    _graph(
        "AAMkBoHold=",
        "2026-11-18T10:00:00",
        "2026-11-18T11:00:00",
        "HOLD: Hooli pilot",
        (ANA, "required", "none"),
    ),
]
#: Ana's November: the demo Dana attended, the CFO review and the pilot review booked and held;
#: the colleagues' review her one internal meeting. Bo, whose only entry is a hold, has none.
NOVEMBER = {"rep-ana": [(3, 3, 0, 0, 1)], "rep-bo": []}


async def test_holds_only_colleagues_attend_are_no_meetings_and_one_a_customer_attends_is(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    tenant = await _tenant(db_engine)
    async with in_process_stack(kafka_settings, database_settings) as stack:
        await sync(stack, db_engine, tenant, "2026-10-01T00:00:00Z", *CRM)
        ana = await _in_anas_calendar(stack, *ANA_CALENDAR, PILOT_HOLD)
        pilot = await _in_anas_calendar(stack, PILOT)
        workshop = await _in_anas_calendar(stack, WORKSHOP)
        await settle(kafka_settings)
        declined = await _in_anas_calendar(stack, WORKSHOP_DECLINED)
        bo = await _deliver(stack, MS, dumps({"mailbox": BO, "value": BO_MAILBOX}))
        await settle(kafka_settings)
        listed = await get(stack, tenant, "/v1/activities?limit=100")
        scorecards = {rep: await _november(stack, tenant, rep) for rep in NOVEMBER}
        # What a manager opening the retracted workshop reads: no meeting, and why (it was not
        # deleted); an admin's override does not bring it back, as for a deleted one.
        workshop_id = activity_id_for(TENANT, GC, "x23")
        pinned = await stack.gateway.put(
            f"/v1/activities/{workshop_id}/attribution",
            json={"deal_id": "deal-globex", "reason": "the workshop happened"},
            headers=tenant.admin,
        )
        assert pinned.status_code == 202, pinned.text
        await settle(kafka_settings)
        shown = await get(stack, tenant, f"/v1/activities/{workshop_id}")
        (retracted,) = await rows(
            db_engine,
            "SELECT retracted FROM activities WHERE tenant_id = :t AND activity_id = :a",
            {"t": TENANT, "a": workshop_id},
        )
    assert (ana["accepted"], len(ana["ignored"])) == (3, 5)
    assert all("a hold or placeholder only colleagues are invited to" in reason for reason in ana["ignored"])
    assert (pilot["accepted"], pilot["ignored"]) == (1, [])
    assert (bo["accepted"], len(bo["ignored"])) == (0, 1)
    assert (workshop["accepted"], declined["accepted"], len(declined["ignored"])) == (1, 0, 1)
    found = {
        a["activity_id"]: (a["outcome"], a["status"], a["deal_id"], a["rep_id"]) for a in listed["items"]
    }
    assert found == {
        str(activity_id_for(TENANT, GC, "x13")): ("held", "attributed", "deal-globex", "rep-ana"),
        str(activity_id_for(TENANT, GC, "x16")): ("held", "attributed", "deal-globex", "rep-ana"),
        str(activity_id_for(TENANT, GC, "x20")): ("held", "attributed", "deal-globex", "rep-ana"),
        str(activity_id_for(TENANT, GC, "x17")): ("held", "internal", None, "rep-ana"),
        # Published while Dana attended, retracted when she declined: counted nowhere.
        str(activity_id_for(TENANT, GC, "x23")): ("held", "excluded", None, None),
    }
    assert scorecards == NOVEMBER
    attribution = shown["attribution"]
    assert (attribution["status"], attribution["version"], attribution["rule_path"]) == (
        "excluded",
        2,
        "not_a_meeting",
    )
    explanation = attribution["explanation"]
    assert (explanation["reason"], explanation["read_by"]) == (HOLD_TIME, "google-calendar/1")
    assert "deleted_at" not in explanation
    assert [v["status"] for v in shown["history"]] == ["attributed", "excluded"]
    # Out of the held sweep's index as a deleted meeting is (migration 0035).
    assert retracted == (True,)
