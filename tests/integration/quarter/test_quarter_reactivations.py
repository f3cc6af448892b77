"""A rep who leaves and comes back: her addresses credit her only in her active spells."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.contracts.activities import activity_id_for
from libs.common.settings import DatabaseSettings, KafkaSettings
from libs.common.testing.stack import in_process_stack
from tests.integration.quarter.quarter_support import (
    Tenant,
    activity,
    counted,
    east_and_west,
    email,
    get,
    new_tenant,
    post,
    received,
    renewal,
    rep,
    settle,
    sync,
)

Q_START = "2026-10-01T00:00:00Z"
LEFT = "2026-10-10T09:00:00Z"
BACK = "2026-11-01T09:00:00Z"
ANA = "ana@seller.example"
BEA = "bea@seller.example"
BO = "bo@buyer.example"
QUARTER = ("quarter", "2026-10-01", "2026-10-01")


CRM = east_and_west(rep("rep-ana", ANA), rep("rep-bea", BEA), BO)


def _to_bea(external_id: str, at: str) -> dict[str, Any]:
    """Bo (the buyer) writing to Bea's address."""
    return received(external_id, BO, BEA, at)


async def _seen(stack: Any, tenant: Tenant, *names: str) -> dict[str, tuple[Any, ...]]:
    return {
        n: (a["status"], a["rep"], a["team"], a["deal"], a["version"])
        for n in names
        for a in [await activity(stack, tenant, "mail", n)]
    }


async def test_mail_to_a_rep_while_she_was_away_is_the_deal_owners_and_hers_again_once_back(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """Bea (East) owns deal-1. The CRM deactivates her on 10 October (deal-1 passes to Ana, West)
    and reactivates her on 1 November (deal-1 stays Ana's). Bo's mail to her address on 20
    October, and on 22 October arriving only after her return, is deal-1's and its owner's of the
    time, Ana's (West): she was away. His mail of 5 November is Bea's again (East), on deal-1."""
    tenant = await new_tenant(db_engine)
    async with in_process_stack(kafka_settings, database_settings) as stack:
        await sync(stack, db_engine, tenant, Q_START, *CRM)
        await post(stack, tenant, email("oct-bea", BEA, BO, "2026-10-05T15:00:00Z"))
        await settle(kafka_settings)
        await sync(stack, db_engine, tenant, LEFT, rep("rep-bea", BEA, active=False), renewal("rep-ana"))
        await post(stack, tenant, _to_bea("oct-bo", "2026-10-20T15:00:00Z"))
        await settle(kafka_settings)
        await sync(stack, db_engine, tenant, BACK, rep("rep-bea", BEA))
        await post(
            stack,
            tenant,
            _to_bea("oct-bo-late", "2026-10-22T15:00:00Z"),
            _to_bea("nov-bo", "2026-11-05T15:00:00Z"),
        )
        await settle(kafka_settings)
        assert await _seen(stack, tenant, "oct-bea", "oct-bo", "oct-bo-late", "nov-bo") == {
            "oct-bea": ("attributed", "rep-bea", "team-east", "deal-1", 1),
            "oct-bo": ("attributed", "rep-ana", "team-west", "deal-1", 1),
            "oct-bo-late": ("attributed", "rep-ana", "team-west", "deal-1", 1),
            "nov-bo": ("attributed", "rep-bea", "team-east", "deal-1", 1),
        }
        assert await counted(stack, tenant, "reps", "rep-bea", *QUARTER) == {"2026-10-01": 2}
        assert await counted(stack, tenant, "reps", "rep-ana", *QUARTER) == {"2026-10-01": 2}
        assert await counted(stack, tenant, "teams", "team-east", *QUARTER) == {"2026-10-01": 2}
        assert await counted(stack, tenant, "teams", "team-west", *QUARTER) == {"2026-10-01": 2}
        listed = await get(stack, tenant, "/v1/activities?rep_id=rep-bea")
        assert [i["occurred_at"][:10] for i in listed["items"]] == ["2026-11-05", "2026-10-05"]
        # Back on East's roster.
        assert (await get(stack, tenant, "/v1/teams/team-east"))["member_ids"] == ["rep-bea"]


async def test_a_reactivation_synced_late_re_decides_only_what_came_after_her_return(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """Bea leaves on 10 October (deal-1 to Ana); the CRM reactivates her on 1 November but the sync
    sends it only after Bo's mails of 20 October, 5 and 6 November to her address were credited
    to Ana, the one of 6 November then set to Cy by hand. The reactivation gives Bea the mail of
    5 November (a new version); 20 October, while she was away, stays Ana's (no new version), and
    the override stays. Globex's Bea, same id and address, never left: hers throughout."""
    tenant = await new_tenant(db_engine)
    globex = await new_tenant(db_engine, "globex")
    async with in_process_stack(kafka_settings, database_settings) as stack:
        await sync(stack, db_engine, tenant, Q_START, *CRM)
        await sync(stack, db_engine, globex, Q_START, *CRM)
        await sync(
            stack,
            db_engine,
            tenant,
            LEFT,
            rep("rep-bea", BEA, active=False),
            renewal("rep-ana"),
            rep("rep-cy", "cy@seller.example"),
        )
        mails = [
            _to_bea("oct-bo", "2026-10-20T15:00:00Z"),
            _to_bea("nov-bo", "2026-11-05T15:00:00Z"),
            _to_bea("nov-bo-2", "2026-11-06T15:00:00Z"),
        ]
        await post(stack, tenant, *mails)
        await post(stack, globex, mails[0])
        await settle(kafka_settings)
        fixed = activity_id_for(tenant.tenant_id, "mail", "nov-bo-2")
        response = await stack.gateway.put(
            f"/v1/activities/{fixed}/attribution",
            json={"rep_id": "rep-cy", "reason": "Cy answered it"},
            headers=tenant.admin,
        )
        assert response.status_code == 202, response.text
        await settle(kafka_settings)
        assert await _seen(stack, tenant, "oct-bo", "nov-bo", "nov-bo-2") == {
            "oct-bo": ("attributed", "rep-ana", "team-west", "deal-1", 1),
            "nov-bo": ("attributed", "rep-ana", "team-west", "deal-1", 1),
            "nov-bo-2": ("attributed", "rep-cy", None, "deal-1", 2),
        }

        await sync(stack, db_engine, tenant, BACK, rep("rep-bea", BEA))
        await settle(kafka_settings)
        assert await _seen(stack, tenant, "oct-bo", "nov-bo", "nov-bo-2") == {
            "oct-bo": ("attributed", "rep-ana", "team-west", "deal-1", 1),
            "nov-bo": ("attributed", "rep-bea", "team-east", "deal-1", 2),
            "nov-bo-2": ("attributed", "rep-cy", None, "deal-1", 2),
        }
        assert (await get(stack, tenant, f"/v1/activities/{fixed}"))["attribution"]["is_override"] is True
        assert await counted(stack, tenant, "reps", "rep-bea", *QUARTER) == {"2026-10-01": 1}
        assert await counted(stack, tenant, "reps", "rep-ana", *QUARTER) == {"2026-10-01": 1}
        assert await counted(stack, tenant, "reps", "rep-cy", *QUARTER) == {"2026-10-01": 1}
        assert await counted(stack, tenant, "teams", "team-east", *QUARTER) == {"2026-10-01": 1}
        assert await counted(stack, tenant, "teams", "team-west", *QUARTER) == {"2026-10-01": 1}
        assert await _seen(stack, globex, "oct-bo") == {
            "oct-bo": ("attributed", "rep-bea", "team-east", "deal-1", 1)
        }
        assert await counted(stack, globex, "reps", "rep-bea", *QUARTER) == {"2026-10-01": 1}


async def test_a_rep_who_leaves_twice_is_credited_in_each_of_her_spells_only(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """Bea leaves on 10 October, is back on 1 November, leaves again on 20 November (deal-1 is
    Ana's from the first departure) and is back on 1 December. Bo's mails to her address arrive
    late, after each change: the ones of 5 October, 5 November and 3 December are Bea's; those
    of 20 October and 25 November, while she was away, are Ana's as deal-1's owner."""
    tenant = await new_tenant(db_engine)
    async with in_process_stack(kafka_settings, database_settings) as stack:
        await sync(stack, db_engine, tenant, Q_START, *CRM)
        await sync(stack, db_engine, tenant, LEFT, rep("rep-bea", BEA, active=False), renewal("rep-ana"))
        await sync(stack, db_engine, tenant, BACK, rep("rep-bea", BEA))
        await sync(stack, db_engine, tenant, "2026-11-20T09:00:00Z", rep("rep-bea", BEA, active=False))
        await post(
            stack,
            tenant,
            _to_bea("oct-5", "2026-10-05T15:00:00Z"),
            _to_bea("oct-20", "2026-10-20T15:00:00Z"),
            _to_bea("nov-5", "2026-11-05T15:00:00Z"),
            _to_bea("nov-25", "2026-11-25T15:00:00Z"),
        )
        await settle(kafka_settings)
        away = ("attributed", "rep-ana", "team-west", "deal-1", 1)
        hers = ("attributed", "rep-bea", "team-east", "deal-1", 1)
        assert await _seen(stack, tenant, "oct-5", "oct-20", "nov-5", "nov-25") == {
            "oct-5": hers,
            "oct-20": away,
            "nov-5": hers,
            "nov-25": away,
        }

        await sync(stack, db_engine, tenant, "2026-12-01T09:00:00Z", rep("rep-bea", BEA))
        await post(
            stack,
            tenant,
            _to_bea("oct-21", "2026-10-21T15:00:00Z"),
            _to_bea("nov-26", "2026-11-26T15:00:00Z"),
            _to_bea("dec-3", "2026-12-03T15:00:00Z"),
        )
        await settle(kafka_settings)
        assert await _seen(
            stack, tenant, "oct-5", "oct-20", "oct-21", "nov-5", "nov-25", "nov-26", "dec-3"
        ) == {
            "oct-5": hers,
            "oct-20": away,
            "oct-21": away,
            "nov-5": hers,
            "nov-25": away,
            "nov-26": away,
            "dec-3": hers,
        }
        assert await counted(stack, tenant, "reps", "rep-bea", *QUARTER) == {"2026-10-01": 3}
        assert await counted(stack, tenant, "reps", "rep-ana", *QUARTER) == {"2026-10-01": 4}
        listed = await get(stack, tenant, "/v1/activities?rep_id=rep-bea")
        assert [i["occurred_at"][:10] for i in listed["items"]] == ["2026-12-03", "2026-11-05", "2026-10-05"]
