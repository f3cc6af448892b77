"""An internal meeting parked for a caller no contact lists is re-checked only by a CRM change
that lists a phone (``repository.activities_to_rematch``), through the real broker and PostgreSQL.

Ana's "Pipeline sync" with Cy and a caller from ``+1 415-555-0199`` (no CRM record) is her
internal meeting, parked; her "Intro" with ``pat@unknown.example`` is unmatched, parked. A change
of Cy's address selects the unmatched one only (before, both: every parked internal meeting's
participants were read for every change); a change listing the caller's number selects the
internal one (and only it), as does a contact given that number.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.contracts.activities import activity_id_for
from libs.common.settings import DatabaseSettings, KafkaSettings
from libs.common.testing.stack import in_process_stack
from services.attribution.adapters import repository as repo
from tests.integration.attribution.test_attribution_held_out_situations_meetings2 import CRM, CY, _tenant
from tests.integration.attribution.test_attribution_holds_other_sources import EXPORT, _exported, _post
from tests.integration.ingest.ingest_integration_support import TENANT
from tests.integration.quarter.quarter_support import get, settle, sync

CALLER = "+14155550199"


async def test_a_parked_internal_meeting_is_rechecked_only_by_a_phone(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    pipeline = _exported("sync", 10, "Pipeline sync", (CY, "accepted"))
    pipeline["participants"].append({"phone": CALLER, "role": "attendee"})
    intro = _exported("intro", 11, "Intro", ("pat@unknown.example", "accepted"))
    tenant = await _tenant(db_engine)
    async with in_process_stack(kafka_settings, database_settings) as stack:
        await sync(stack, db_engine, tenant, "2026-10-01T00:00:00Z", *CRM)
        await _post(stack, tenant, pipeline, intro)
        await settle(kafka_settings)
        listed = await get(stack, tenant, "/v1/activities?limit=100")
    sync_id, intro_id = activity_id_for(TENANT, EXPORT, "sync"), activity_id_for(TENANT, EXPORT, "intro")
    assert {a["activity_id"]: a["status"] for a in listed["items"]} == {
        str(sync_id): "internal",
        str(intro_id): "unmatched",
    }
    now = datetime(2026, 11, 20, tzinfo=UTC)
    async with db_engine.connect() as conn:

        async def selected(*identities: str) -> list[object]:
            changed = repo.ChangedReferences(identities=set(identities))
            return list(await repo.activities_to_rematch(conn, TENANT, changed, now))

        assert await selected(CY, "pat@unknown.example") == [intro_id]
        assert await selected(CALLER) == [sync_id]
        assert await selected(CALLER, "pat@unknown.example") == [sync_id, intro_id]
