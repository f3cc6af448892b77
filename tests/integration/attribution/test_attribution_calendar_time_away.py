"""Calendar entries that are time away, not meetings, as a RevOps admin who wired Google Calendar
and Microsoft 365 sends them and a sales manager reads them on the scorecard.

Ana's Google calendar and Bo's Outlook mailbox through their signed webhooks (as the connectors
post them), the roster and CRM of ``test_attribution_held_out_situations_meetings2`` through
``POST /v1/crm/sync``; the real broker, attribution, metrics and PostgreSQL; the activities and
each rep's November scorecard read back through the API.

An all-day entry of Google's default type sent to colleagues ("Ana OOO", the team calendar's
"Company holiday", a three-day "Offsite"), an event shown as free shared with a colleague ("Ana
in Berlin"), and Outlook's all-day offsite and free conference day sent to Ana are time away:
no meeting. Before, each was a meeting held: Ana's November read 2 meetings booked and held
and 4 internal meetings held (the holiday a customer meeting, `unmatched`: its organizer, the
team calendar, taken for an outsider), Bo's 2 internal meetings held; a manager counts Ana's
workshop and her one internal meeting, and nothing for Bo. An all-day workshop a customer
attends is a meeting; a hold with nobody invited, a working-location and a focus-time entry
were none already.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.contracts.activities import activity_id_for
from libs.common.settings import DatabaseSettings, KafkaSettings
from libs.common.testing.stack import in_process_stack
from tests.integration.attribution.test_attribution_held_out_situations_meetings2 import (
    ANA,
    ANA_HOSTS,
    ANA_SELF,
    BO,
    COUNTS,
    CRM,
    CY,
    DANA,
    GC,
    MS,
    _ana,
    _graph,
    _in_anas_calendar,
    _tenant,
)
from tests.integration.attribution.test_attribution_held_out_situations_vendors import _deliver, _gcal, _guest
from tests.integration.ingest.ingest_integration_support import TENANT, dumps
from tests.integration.quarter.quarter_support import Tenant, get, settle, sync

TEAM_CALENDAR = {"email": "c_7f3e9a1b2c@group.calendar.google.com", "displayName": "Acme team"}


def _all_day(
    event_id: str, first: str, after: str, organizer: dict[str, Any], *guests: dict[str, Any], **fields: Any
) -> dict[str, Any]:
    """An all-day event of Google's default type from ``first`` to the day ``after`` it ends."""
    return _gcal(event_id, {"date": first}, {"date": after}, organizer, *guests, **fields)


ANA_CALENDAR: list[dict[str, Any]] = [
    _all_day(
        "ooo1ana", "2026-11-13", "2026-11-14", ANA_HOSTS, ANA_SELF, _guest(BO), _guest(CY), summary="Ana OOO"
    ),
    _all_day(
        "holiday2",
        "2026-11-26",
        "2026-11-28",
        TEAM_CALENDAR,
        _guest(ANA, "needsAction", self=True),
        _guest(BO, "needsAction"),
        _guest(CY, "needsAction"),
        summary="Company holiday",
        transparency="transparent",
    ),
    _all_day(
        "offsite3", "2026-11-16", "2026-11-19", ANA_HOSTS, ANA_SELF, _guest(BO), _guest(CY), summary="Offsite"
    ),
    # A day at Globex with Dana and Cy: the meeting with her.
    _all_day(
        "workshop4globex",
        "2026-11-19",
        "2026-11-20",
        ANA_HOSTS,
        ANA_SELF,
        _guest(CY),
        _guest(DANA),
        summary="Globex on-site workshop",
        transparency="transparent",
    ),
    _ana(
        "berlin5",
        "2026-11-10T09:00:00-08:00",
        "2026-11-10T17:00:00-08:00",
        _guest(CY),
        summary="Ana in Berlin",
        transparency="transparent",
    ),
    _ana("hold6", "2026-11-11T10:00:00-08:00", "2026-11-11T11:00:00-08:00", summary="HOLD: Globex demo"),
    _all_day(
        "wl7",
        "2026-11-12",
        "2026-11-13",
        ANA_HOSTS,
        eventType="workingLocation",
        workingLocationProperties={"type": "homeOffice"},
    ),
    _ana("focus8", "2026-11-12T13:00:00-08:00", "2026-11-12T15:00:00-08:00", eventType="focusTime"),
    _ana(
        "pipeline9",
        "2026-11-20T14:00:00-08:00",
        "2026-11-20T14:30:00-08:00",
        _guest(BO),
        _guest(CY),
        summary="Pipeline review",
    ),
]
BO_MAILBOX: list[dict[str, Any]] = [
    _graph(
        "AAMkBoOffsite=",
        "2026-11-16T00:00:00",
        "2026-11-19T00:00:00",
        "Bo offsite",
        (ANA, "required", "none"),
        isAllDay=True,
    ),
    _graph(
        "AAMkBoConf=",
        "2026-11-24T09:00:00",
        "2026-11-24T17:00:00",
        "Bo at SaaStr",
        (ANA, "required", "none"),
        showAs="free",
    ),
]
#: Each rep's November scorecard (``COUNTS`` of the meetings set): Ana's workshop held and the
#: pipeline review her one internal meeting; Bo, who went to no meeting, has no November at all.
NOVEMBER = {"rep-ana": [(1, 1, 0, 0, 1)], "rep-bo": []}


async def _november(stack: Any, tenant: Tenant, rep: str) -> list[tuple[int, ...]]:
    """The rep's meeting counts of each period of November the scorecard lists."""
    url = f"/v1/reps/{rep}/scores?granularity=month&from=2026-11-01&to=2026-11-01"
    return [tuple(p["counts"][k] for k in COUNTS) for p in (await get(stack, tenant, url))["periods"]]


async def test_all_day_and_free_entries_sent_to_colleagues_are_no_internal_meetings(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    tenant = await _tenant(db_engine)
    async with in_process_stack(kafka_settings, database_settings) as stack:
        await sync(stack, db_engine, tenant, "2026-10-01T00:00:00Z", *CRM)
        ana = await _in_anas_calendar(stack, *ANA_CALENDAR)
        bo = await _deliver(stack, MS, dumps({"mailbox": BO, "value": BO_MAILBOX}))
        await settle(kafka_settings)
        listed = await get(stack, tenant, "/v1/activities?limit=100")
        scorecards = {rep: await _november(stack, tenant, rep) for rep in NOVEMBER}
    assert (ana["accepted"], len(ana["ignored"])) == (2, 7)
    assert (bo["accepted"], len(bo["ignored"])) == (0, 2)
    found = {
        a["activity_id"]: (a["outcome"], a["status"], a["deal_id"], a["rep_id"]) for a in listed["items"]
    }
    assert found == {
        str(activity_id_for(TENANT, GC, "workshop4globex")): ("held", "attributed", "deal-globex", "rep-ana"),
        str(activity_id_for(TENANT, GC, "pipeline9")): ("held", "internal", None, "rep-ana"),
    }
    assert scorecards == NOVEMBER
