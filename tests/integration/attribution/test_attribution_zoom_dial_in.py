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

A colleague who dials in is no customer. Ana's "Pipeline review" with Bo, and Cy calling in from
her mobile ``+1 415-555-0123``, which no CRM record lists: nobody identified, so the meeting stays
Ana's internal one; so does her "Hooli pilot sync" with a caller from ``+1 646-555-0142``, until
the CRM gives Fay that number: then it is Hooli's (re-decided, version 2). Bo dialling into Cy's
"SE sync" from his desk phone, which his rep record lists, is Bo: Cy's internal meeting. Ana's
November: 1 booked, 1 held, 2 internal, then 2, 2 and 1 once Fay's number is synced; before
rules 2026.12.31 each unplaced number made a customer meeting (3 booked, 3 held, 0 internal).
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
    CY,
    _tenant,
    _zoom,
)
from tests.integration.attribution.test_attribution_held_out_situations_vendors import _deliver
from tests.integration.ingest.ingest_integration_support import TENANT, dumps
from tests.integration.quarter.quarter_support import get, settle, sync


def _dial_in_meeting(
    uuid: str, host: tuple[str, str], topic: str, start: str, end: str, *numbers: str, colleague: str = ""
) -> list[bytes]:
    """The host's join, a colleague's by email (when given), callers' joins by phone from
    ``numbers`` and the end, as Zoom posts them."""
    user_id, address = host
    joined = {"user_id": user_id, "user_name": address.split("@")[0].title(), "id": user_id, "email": address}
    people = [joined]
    if colleague:
        name = colleague.split("@")[0]
        people.append(
            {"user_id": f"zu-{name}", "user_name": name.title(), "id": f"zu-{name}", "email": colleague}
        )
    people += [
        {"user_id": f"1677830{n}", "user_name": "Caller", "id": "", "email": "", "phone_number": number}
        for n, number in enumerate(numbers)
    ]
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
        for n, person in enumerate(people)
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
    *_dial_in_meeting(
        "zoomCyMobile==",
        ("zu-ana", ANA),
        "Pipeline review",
        "2026-11-24T18:00:00+00:00",
        "2026-11-24T18:30:00+00:00",
        "+1 415-555-0123",
        colleague=BO,
    ),
    *_dial_in_meeting(
        "zoomBoDesk==",
        ("zu-cy", CY),
        "SE sync",
        "2026-11-25T18:00:00+00:00",
        "2026-11-25T18:20:00+00:00",
        "+1 415-555-0177",
    ),
    *_dial_in_meeting(
        "zoomFayLater==",
        ("zu-ana", ANA),
        "Hooli pilot sync",
        "2026-11-26T18:00:00+00:00",
        "2026-11-26T18:30:00+00:00",
        "+1 646-555-0142",
    ),
]
#: Bo's rep record lists his desk phone.
CRM_WITH_BOS_DESK = [
    {**entity, "phones": ["(415) 555-0177"]} if entity.get("id") == "rep-bo" else entity for entity in CRM
]
#: Fay's record, as the CRM sends it once it lists the number she called from.
FAYS_PHONE = {**next(e for e in CRM if e.get("id") == "con-fay"), "phones": ["(646) 555-0142"]}
#: Each rep's November (booked, held, cancelled, no-show, internal held).
NOVEMBER = {
    "rep-ana": [(1, 1, 0, 0, 2)],
    "rep-bo": [(0, 0, 0, 0, 1)],
    "rep-cy": [(0, 0, 0, 0, 1)],
}


def _zoom_id(meeting_uuid: str) -> str:
    """The activity id of the Zoom meeting ``meeting_uuid``."""
    return str(activity_id_for(TENANT, "zoom", meeting_uuid))


async def test_a_customer_who_dialled_into_a_zoom_meeting_is_matched_by_the_number_he_called_from(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    tenant = await _tenant(db_engine)
    async with in_process_stack(kafka_settings, database_settings) as stack:
        await sync(stack, db_engine, tenant, "2026-10-01T00:00:00Z", *CRM_WITH_BOS_DESK)
        zoom = [await _deliver(stack, "zoom", body) for body in ZOOM]
        await settle(kafka_settings)
        listed = await get(stack, tenant, "/v1/activities?limit=100")
        scorecards = {rep: await _november(stack, tenant, rep) for rep in NOVEMBER}
        await sync(stack, db_engine, tenant, "2026-11-27T00:00:00Z", FAYS_PHONE)
        await settle(kafka_settings)
        fay = await get(stack, tenant, f"/v1/activities/{_zoom_id('zoomFayLater==')}")
        anas_after = await _november(stack, tenant, "rep-ana")
    assert [z["accepted"] for z in zoom] == [0, 0, 1, 0, 0, 1, 0, 0, 0, 1, 0, 0, 1, 0, 0, 1]
    found = {
        a["activity_id"]: (a["direction"], a["status"], a["account_id"], a["deal_id"], a["rep_id"])
        for a in listed["items"]
    }
    assert found == {
        _zoom_id("zoomGilPhone=="): ("outbound", "attributed", "acc-initech", "deal-initech", "rep-ana"),
        _zoom_id("zoomMasked=="): ("internal", "internal", None, None, "rep-bo"),
        # Ingest places no number (it knows no contact): attribution finds it nobody's.
        _zoom_id("zoomCyMobile=="): ("outbound", "internal", None, None, "rep-ana"),
        _zoom_id("zoomBoDesk=="): ("outbound", "internal", None, None, "rep-cy"),
        # A number no contact lists yet: internal until one does (kept for re-matching).
        _zoom_id("zoomFayLater=="): ("outbound", "internal", None, None, "rep-ana"),
    }
    assert scorecards == NOVEMBER
    # The CRM gives Fay the number: the meeting is re-decided as Hooli's, a customer meeting.
    now = fay["attribution"]
    assert (now["status"], now["account_id"], now["deal_id"], now["rep_id"], now["version"]) == (
        "attributed",
        "acc-hooli",
        "deal-hooli",
        "rep-ana",
        2,
    )
    assert anas_after == [(2, 2, 0, 0, 1)]
