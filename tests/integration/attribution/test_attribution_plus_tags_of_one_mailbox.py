"""Two reps of one CRM listing two ``+tags`` of one mailbox are two people, not one.

Rep identity (``domain.reps``) links the reps sharing a mailbox, ``+tags`` and case aside: a
HubSpot owner ``dan+hubspot@`` is the canonical rep ``dan@``. A mailbox two reps of one source
list beside different addresses links nobody (a team inbox each SDR lists with her own): a
source lists one person twice only as the same record again. Two records of one source each
listing its own tag of a shared mailbox (``sales+ana@``, ``sales+bob@``: a team's reply-to
addresses) list different addresses too; they were compared by their mailbox (``sales@``, the
same), so Bob became Ana's alias: his mail credited to her, one rep in ``GET /v1/reps``.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.settings import DatabaseSettings, KafkaSettings
from libs.common.testing.stack import in_process_stack
from tests.integration.quarter.quarter_support import email, get, new_tenant, post, settle, sync


def _rep(key: str, *emails: str) -> dict[str, object]:
    return {"entity_type": "rep", "id": f"rep-{key}", "name": key.title(), "emails": list(emails)}


async def test_two_reps_of_one_source_with_tags_of_one_mailbox_stay_two_people(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    tenant = await new_tenant(db_engine)
    async with in_process_stack(kafka_settings, database_settings) as stack:
        await sync(
            stack,
            db_engine,
            tenant,
            "2026-11-01T00:00:00Z",
            _rep("ana", "sales+ana@acme.example"),
            _rep("bob", "sales+bob@acme.example"),
            # One person twice in one source as the same address again (case aside) stays one.
            _rep("cy", "cy@acme.example"),
            _rep("cy2", "Cy@acme.example"),
        )
        await post(
            stack,
            tenant,
            email("bob-1", "sales+bob@acme.example", "max@globex.example", "2026-11-03T15:00:00Z"),
        )
        await settle(kafka_settings)
        reps = [r["rep_id"] for r in (await get(stack, tenant, "/v1/reps?limit=100"))["items"]]
        seen = await get(stack, tenant, "/v1/activities?limit=10")
    assert sorted(reps) == ["rep-ana", "rep-bob", "rep-cy"]
    assert [a["rep_id"] for a in seen["items"]] == ["rep-bob"]
