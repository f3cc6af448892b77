"""A customer who dialled into a Zoom meeting by phone, as Zoom's webhooks post it and a sales
manager reads it on the scorecard.

The roster and CRM of ``test_attribution_held_out_situations_meetings2`` through
``POST /v1/crm/sync`` (Gil at Initech, his phone typed ``(212) 555-0198``; the tenant's default
region US); the Zoom account's signed webhooks; the real broker, attribution, metrics and
PostgreSQL; the meetings and each rep's November scorecard read back through the API.

Zoom's join event of a participant who dialled in carries no email and the number called from
(``phone_number``). Gil calls into Ana's "Initech analytics review" from ``+1 212-555-0198``: the
meeting with him, on Initech's deal. Before, the join was a person without an address: the
meeting Ana's internal one (November: 0 booked, 0 held, 1 internal). A caller whose number
Zoom masks (the account hides dial-in numbers) is nobody identified: Bo's meeting with him stays
internal, as before.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.contracts.activities import activity_id_for
from libs.common.settings import DatabaseSettings, KafkaSettings
from libs.common.testing.stack import in_process_stack
from tests.integration.attribution.test_attribution_calendar_time_away import _november
from tests.integration.attribution.test_attribution_held_out_situations_meetings2 import (
    ANA,
    BO,
    CRM,
    _tenant,
    _zoom,
)
from tests.integration.attribution.test_attribution_held_out_situations_vendors import _deliver
from tests.integration.ingest.ingest_integration_support import TENANT, dumps
from tests.integration.quarter.quarter_support import get, settle, sync


def _dial_in_meeting(
    uuid: str, host: tuple[str, str], topic: str, start: str, end: str, number: str
) -> list[bytes]:
    """The host's join, a caller's join by phone from ``number`` and the end, as Zoom posts them."""
    user_id, address = host
    joined = {"user_id": user_id, "user_name": address.split("@")[0].title(), "id": user_id, "email": address}
    caller = {"user_id": "16778300", "user_name": "Caller", "id": "", "email": "", "phone_number": number}
    bodies = [
        _zoom(
            "meeting.participant_joined",
            uuid,
            user_id,
            topic,
            start,
            start_time=start,
            participant={**person, "participant_uuid": f"{uuid}-{n}", "join_time": start},
        )
        for n, person in enumerate((joined, caller))
    ]
    bodies.append(_zoom("meeting.ended", uuid, user_id, topic, end, start_time=start, end_time=end))
    return [dumps(body) for body in bodies]


ZOOM = [
    *_dial_in_meeting(
        "zoomGilPhone==",
        ("zu-ana", ANA),
        "Initech analytics review",
        "2026-11-19T18:00:00+00:00",
        "2026-11-19T18:40:00+00:00",
        "+1 212-555-0198",
    ),
    *_dial_in_meeting(
        "zoomMasked==",
        ("zu-bo", BO),
        "Umbrella check-in",
        "2026-11-20T18:00:00+00:00",
        "2026-11-20T18:30:00+00:00",
        "+1 917****321",
    ),
]
#: Each rep's November (booked, held, cancelled, no-show, internal held).
NOVEMBER = {"rep-ana": [(1, 1, 0, 0, 0)], "rep-bo": [(0, 0, 0, 0, 1)]}


async def test_a_customer_who_dialled_into_a_zoom_meeting_is_matched_by_the_number_he_called_from(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    tenant = await _tenant(db_engine)
    async with in_process_stack(kafka_settings, database_settings) as stack:
        await sync(stack, db_engine, tenant, "2026-10-01T00:00:00Z", *CRM)
        zoom = [await _deliver(stack, "zoom", body) for body in ZOOM]
        await settle(kafka_settings)
        listed = await get(stack, tenant, "/v1/activities?limit=100")
        scorecards = {rep: await _november(stack, tenant, rep) for rep in NOVEMBER}
    assert [z["accepted"] for z in zoom] == [0, 0, 1, 0, 0, 1]
    found = {
        a["activity_id"]: (a["direction"], a["status"], a["account_id"], a["deal_id"], a["rep_id"])
        for a in listed["items"]
    }
    assert found == {
        str(activity_id_for(TENANT, "zoom", "zoomGilPhone==")): (
            "outbound",
            "attributed",
            "acc-initech",
            "deal-initech",
            "rep-ana",
        ),
        str(activity_id_for(TENANT, "zoom", "zoomMasked==")): ("internal", "internal", None, None, "rep-bo"),
    }
    assert scorecards == NOVEMBER
